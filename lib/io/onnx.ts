// ONNX models as trainable torchface modules.
//
//   const net = await loadOnnx('model.onnx');     // an nn.Module
//   const y = net.forward(x);                      // eager, autograd flows to the initializers
//   const [y2] = await net.run(x);                 // a traced program on a worker thread
//
// The file is decoded with protobufjs and ONNX's own onnx.proto (the onnx-proto
// package). Float initializers become Parameters named after them (PyTorch's
// exporter keeps state_dict names: "layer1.0.conv1.weight" becomes the nested
// modules layer1 -> 0 -> conv1 with a parameter weight, so stateDict() keys
// match the PyTorch model's), BatchNormalization's statistics become buffers,
// and integer initializers (shapes, axes, indices) stay constants. Every node
// is checked against the operator table when the file is loaded: an unsupported
// operator is an UnsupportedOperatorError naming it, its node and the opset.
//
// forward() interprets the graph with torchface ops in the file's (topological)
// order. Shape arithmetic (Shape -> Gather -> Unsqueeze -> Concat -> Reshape,
// what exporters emit for a dynamic batch) runs on small int64 tensors whose
// values are read where an op needs numbers, so a traced program is specific to
// its input shapes; `run()` traces once per shape (lib/jit `traced`).
import * as fs from 'fs';
import * as path from 'path';
import { ArgumentError, FileFormatError, TorchError, TorchfaceError, invalid } from '../core/errors';
import { traced } from '../core/jit';
import { Module } from '../nn';
import * as F from '../ops';
import { DType, Op, Tensor, arange, fromBytes, full, isGradEnabled, noGrad, tensor, tidy, zeros } from '../core';

// onnx-proto: ONNX's onnx.proto compiled for protobufjs (loaded on first use).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Proto = any;
let protoCache: Proto | null = null;
export function onnxProto(): Proto {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (protoCache ??= require('onnx-proto').onnx);
}

/**
 * An operator (or an attribute of one) the ONNX importer or exporter does not
 * implement: an ArgumentError (the model is the bad argument), with the same
 * code as the TensorFlow.js importer's UnsupportedTfjsOpError.
 */
export class UnsupportedOperatorError extends ArgumentError {
  override readonly code: string = 'ERR_UNSUPPORTED_OP';
  constructor(
    readonly op: string,
    readonly node: string,
    readonly opset: number,
    detail = '',
  ) {
    super(`node '${node}'`, 'an operator torchface implements', op);
    this.message =
      node === 'saveOnnx'
        ? `${op}${detail ? ` (${detail})` : ''} cannot be exported to ONNX opset ${opset} by torchface`
        : `ONNX operator ${op}${detail ? ` (${detail})` : ''} in node '${node}' (opset ${opset}) is not supported by torchface's importer`;
  }
}

// TensorProto.DataType -> torchface dtype and element size.
const ONNX_DTYPES: Record<number, { dtype: DType; name: string }> = {
  1: { dtype: 'float32', name: 'FLOAT' },
  2: { dtype: 'uint8', name: 'UINT8' },
  3: { dtype: 'int8', name: 'INT8' },
  5: { dtype: 'int16', name: 'INT16' },
  6: { dtype: 'int32', name: 'INT32' },
  7: { dtype: 'int64', name: 'INT64' },
  9: { dtype: 'bool', name: 'BOOL' },
  10: { dtype: 'float16', name: 'FLOAT16' },
  11: { dtype: 'float64', name: 'DOUBLE' },
  16: { dtype: 'bfloat16', name: 'BFLOAT16' },
};
export const ONNX_TYPE_OF: Partial<Record<DType, number>> = { float32: 1, uint8: 2, int8: 3, int16: 5, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11, bfloat16: 16 };

interface TensorProto {
  name?: string;
  dims?: number[];
  dataType?: number;
  rawData?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  dataLocation?: number;
  externalData?: { key: string; value: string }[];
}

/** A TensorProto as a tensor (raw or typed data, or external data next to the model file). Float16 stays float16 here. */
export function tensorFromProto(t: TensorProto, baseDir: string | null): Tensor {
  const type = ONNX_DTYPES[t.dataType ?? 0];
  if (!type) throw new FileFormatError(`ONNX tensor '${t.name}': data type ${t.dataType} is not supported`);
  const dims = (t.dims ?? []).map(Number);
  const numel = dims.reduce((a, b) => a * b, 1);
  const size = { float32: 4, uint8: 1, int8: 1, int16: 2, int32: 4, int64: 8, bool: 1, float16: 2, float64: 8, bfloat16: 2 }[type.dtype];
  let bytes: Uint8Array;
  if (t.dataLocation === 1) {
    const kv = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
    if (!baseDir) throw new FileFormatError(`ONNX tensor '${t.name}' is stored in an external file (${kv.location}); load the model from its path, not a buffer`);
    const file = path.resolve(baseDir, kv.location ?? '');
    if (!file.startsWith(path.resolve(baseDir) + path.sep)) throw new FileFormatError(`ONNX tensor '${t.name}': external data location '${kv.location}' is outside the model's folder`);
    const offset = Number(kv.offset ?? 0);
    const length = kv.length !== undefined ? Number(kv.length) : numel * size;
    const fd = fs.openSync(file, 'r');
    try {
      bytes = Buffer.alloc(length);
      const read = fs.readSync(fd, bytes, 0, length, offset);
      if (read !== length) throw new FileFormatError(`ONNX tensor '${t.name}': external file ${kv.location} ended after ${read} of ${length} bytes`);
    } finally {
      fs.closeSync(fd);
    }
  } else if (t.rawData && t.rawData.length) {
    bytes = t.rawData;
  } else {
    // Typed fields: float_data (float), int32_data (int32 and every type of <= 32 bits, float16 as bit patterns), int64_data, double_data.
    const d = type.dtype;
    let arr: ArrayBufferView;
    if (d === 'float32') arr = Float32Array.from(t.floatData ?? []);
    else if (d === 'float64') arr = Float64Array.from(t.doubleData ?? []);
    else if (d === 'int64') arr = BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(v)));
    else if (d === 'int32') arr = Int32Array.from(t.int32Data ?? []);
    else if (d === 'int16') arr = Int16Array.from(t.int32Data ?? []);
    else if (d === 'float16' || d === 'bfloat16') arr = Uint16Array.from(t.int32Data ?? []);
    else if (d === 'int8') arr = Int8Array.from(t.int32Data ?? []);
    else arr = Uint8Array.from(t.int32Data ?? []);
    bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  }
  if (bytes.length !== numel * size) throw new FileFormatError(`ONNX tensor '${t.name}': ${bytes.length} bytes for shape [${dims}] of ${type.name} (expected ${numel * size})`);
  // fromBytes copies, so a view into the decoded file is fine.
  return fromBytes(new Uint8Array(bytes), dims, type.dtype);
}

type AttrValue = number | number[] | string | string[] | Tensor | null;
interface Node {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

function decodeAttrs(n: Proto, baseDir: string | null): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const a of n.attribute ?? []) {
    switch (a.type) {
      case 1: out[a.name] = a.f ?? 0; break;
      case 2: out[a.name] = Number(a.i ?? 0); break;
      case 3: out[a.name] = Buffer.from(a.s ?? []).toString('utf8'); break;
      case 4: out[a.name] = tensorFromProto(a.t, baseDir); break;
      case 6: out[a.name] = (a.floats ?? []).map(Number); break;
      case 7: out[a.name] = (a.ints ?? []).map(Number); break;
      case 8: out[a.name] = (a.strings ?? []).map((s: Uint8Array) => Buffer.from(s).toString('utf8')); break;
      default: out[a.name] = null; // graphs (If/Loop bodies): those ops are refused anyway
    }
  }
  return out;
}

// Inputs of these ops (by position) are shapes, axes, sizes or pads: read as numbers, never trained.
const SHAPE_INPUTS: Record<string, number[]> = {
  Reshape: [1], Slice: [1, 2, 3, 4], Unsqueeze: [1], Squeeze: [1], Pad: [1, 2, 3], Resize: [1, 2, 3], Upsample: [1], Split: [1], ConstantOfShape: [0],
  Expand: [1], Tile: [1], ReduceSum: [1], ReduceMean: [1], ReduceMax: [1], ReduceMin: [1], ReduceL2: [1], Clip: [1, 2], Gather: [1], TopK: [1], Range: [0, 1, 2],
};
const BN_STATS = [3, 4]; // BatchNormalization: mean, var

/** A module holding one level of the initializers' dotted names (its forward is never called). */
class NamedContainer extends Module {
  forward(): never {
    throw new TorchfaceError('a container of imported ONNX weights is not callable');
  }
}

const sanitize = (part: string) => (part.replace(/[^A-Za-z0-9_]/g, '_') || '_');

export interface OnnxModelInfo {
  irVersion: number;
  opset: number;
  producer: string;
  inputs: { name: string; shape: (number | string)[]; dtype: DType | null }[];
  outputs: { name: string; shape: (number | string)[] }[];
  ops: Record<string, number>;
}

/** An ONNX graph as an nn.Module (see loadOnnx). */
export class OnnxModule extends Module {
  readonly info: OnnxModelInfo;
  /** ONNX initializer name -> the tensor (Parameter, buffer or constant). */
  private readonly values = new Map<string, Tensor>();
  /** ONNX initializer name -> dotted stateDict name, for the trained ones and the buffers. */
  readonly stateNames = new Map<string, string>();
  private readonly nodes: Node[];
  private readonly graphInputs: string[];
  private readonly graphOutputs: string[];
  private runner: ((...inputs: Tensor[]) => Promise<Tensor[]>) | null = null;
  /** Conv node index -> what inference fuses into it (planFusions). */
  private readonly fusions: Map<number, ConvFusion>;
  /** Nodes a fusion absorbs: skipped when the fused path runs (their conv runs them if it cannot fuse). */
  private readonly absorbed: Set<number>;

  constructor(model: Proto, baseDir: string | null, options: { keepFloat16?: boolean } = {}) {
    super();
    const graph = model.graph;
    if (!graph) throw new FileFormatError('ONNX file has no graph');
    const opset = Number((model.opsetImport ?? []).find((o: Proto) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0);
    const baseOf = (n: Proto): Node => ({ name: n.name || `${n.opType}_${n.output?.[0] ?? ''}`, op: n.opType, inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs: decodeAttrs(n, baseDir) });
    this.nodes = (graph.node ?? []).map(baseOf);
    for (const [i, n] of (graph.node ?? []).entries()) {
      if (n.domain && n.domain !== 'ai.onnx') throw new UnsupportedOperatorError(`${n.domain}.${n.opType}`, this.nodes[i].name, opset, 'custom domain');
      checkSupported(this.nodes[i], opset);
    }
    // How each initializer is used decides what it becomes.
    const shapeLike = new Set<string>();
    const bnStats = new Set<string>();
    for (const n of this.nodes) {
      for (const i of SHAPE_INPUTS[n.op] ?? []) if (n.inputs[i]) shapeLike.add(n.inputs[i]);
      if (n.op === 'BatchNormalization') for (const i of BN_STATS) if (n.inputs[i]) bnStats.add(n.inputs[i]);
    }
    const taken = new Set<string>();
    for (const init of graph.initializer ?? []) {
      let t = tensorFromProto(init, baseDir);
      if (t.dtype === 'float16' && !options.keepFloat16) t = t.to('float32');
      const trainable = ['float32', 'float64', 'float16', 'bfloat16'].includes(t.dtype) && !shapeLike.has(init.name) && !bnStats.has(init.name);
      if (trainable || bnStats.has(init.name)) {
        const parts = String(init.name).split('.').map(sanitize);
        let dotted = parts.join('.');
        for (let k = 2; taken.has(dotted); k++) dotted = `${parts.join('.')}_${k}`;
        taken.add(dotted);
        const segs = dotted.split('.');
        let m: Module = this;
        for (const seg of segs.slice(0, -1)) {
          const child = (m as unknown as { _modules: Map<string, Module> })._modules.get(seg);
          m = child ?? m.registerModule(seg, new NamedContainer());
        }
        const leaf = segs[segs.length - 1];
        if (trainable) m.registerParameter(leaf, t);
        else m.registerBuffer(leaf, t);
        this.stateNames.set(init.name, dotted);
      }
      this.values.set(init.name, t);
    }
    const inits = new Set((graph.initializer ?? []).map((i: Proto) => i.name));
    this.graphInputs = (graph.input ?? []).map((i: Proto) => i.name).filter((n: string) => !inits.has(n));
    this.graphOutputs = (graph.output ?? []).map((o: Proto) => o.name);
    const dimsOf = (vi: Proto) => (vi.type?.tensorType?.shape?.dim ?? []).map((d: Proto) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 0)));
    const ops: Record<string, number> = {};
    for (const n of this.nodes) ops[n.op] = (ops[n.op] ?? 0) + 1;
    this.info = {
      irVersion: Number(model.irVersion ?? 0),
      opset,
      producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim(),
      inputs: (graph.input ?? []).filter((i: Proto) => !inits.has(i.name)).map((i: Proto) => ({ name: i.name, shape: dimsOf(i), dtype: ONNX_DTYPES[i.type?.tensorType?.elemType]?.dtype ?? null })),
      outputs: (graph.output ?? []).map((o: Proto) => ({ name: o.name, shape: dimsOf(o) })),
      ops,
    };
    this.fusions = F.onednnBlock() > 0 ? planFusions(this.nodes, this.values, this.graphOutputs) : new Map();
    this.absorbed = new Set([...this.fusions.values()].flatMap((f) => f.absorbed));
    this.eval(); // an imported model starts in inference mode, as the runtime that exported it
  }

  /**
   * Whether this forward takes the fused inference path: a build with oneDNN convolutions and no
   * gradient to record (autograd off, or nothing requires grad). The mode does not matter: what a
   * fusion absorbs (Conv, Add, Relu, Clip) computes the same in training.
   */
  private fusing(inputs: Tensor[]): boolean {
    if (!this.fusions.size) return false;
    if (!isGradEnabled()) return true;
    return !inputs.some((t) => t.requiresGrad) && !this.parameters().some((p) => p.requiresGrad);
  }

  /** Runs the graph; one output is returned as a Tensor, several as an array in the graph's order. */
  forward(...inputs: Tensor[]): Tensor | Tensor[] {
    if (inputs.length !== this.graphInputs.length) invalid('inputs', `${this.graphInputs.length} tensor(s) (${this.graphInputs.join(', ')})`, inputs.length);
    const env = new Map<string, Tensor | null>(this.values);
    this.graphInputs.forEach((name, i) => {
      if (!Tensor.isTensor(inputs[i])) invalid(`inputs[${i}]`, `a Tensor for graph input '${name}'`, inputs[i]);
      env.set(name, inputs[i]);
    });
    const opset = this.info.opset;
    const temporaries: Tensor[] = [];
    const fusing = this.fusing(inputs);
    const batch = this.batching && inputs[0].ndim > 0 && inputs[0].shape[0] > 1 ? inputs[0].shape[0] : null;
    const argsOf = (node: Node) => node.inputs.map((n) => (n === '' ? null : env.get(n) ?? missing(node, n)));
    const step = (node: Node) => {
      const outs = runNode(node, argsOf(node), opset, this.training, batch);
      node.outputs.forEach((name, i) => {
        if (!name) return;
        const t = outs[i] ?? null;
        env.set(name, t);
        if (t) temporaries.push(t);
      });
    };
    try {
      for (let i = 0; i < this.nodes.length; i++) {
        const node = this.nodes[i];
        if (fusing && this.absorbed.has(i)) continue;
        const fusion = fusing ? this.fusions.get(i) : undefined;
        const fused = fusion ? fusedConv(node, fusion, argsOf(node), (name) => env.get(name) ?? null) : null;
        if (fused) {
          env.set(fusion!.output, fused);
          temporaries.push(fused);
        } else {
          step(node);
          // A fusion that could not run here (shapes, a layout oneDNN refused): its nodes one by one.
          if (fusion) for (const j of fusion.absorbed) step(this.nodes[j]);
        }
      }
      const results = this.graphOutputs.map((n) => env.get(n) ?? missing({ name: 'graph output', op: 'output', inputs: [], outputs: [], attrs: {} }, n));
      return results.length === 1 ? results[0] : results;
    } finally {
      // Intermediate values not returned are released now rather than by the GC.
      const keep = new Set(this.graphOutputs.map((n) => env.get(n)));
      for (const t of temporaries) if (!keep.has(t) && !this.isValue(t) && !inputs.includes(t)) t.dispose();
    }
  }

  /** Set by enableBatching: a fixed-batch-1 graph runs whole batches. */
  private batching = false;

  /**
   * For a graph exported with a fixed batch of 1 (its Reshapes hard-code the 1, as PyTorch's
   * exporter writes them without dynamic axes): tries running `probe` (2 or more items) as one
   * batch, reading a Reshape's leading 1 as the batch size, against running its items one by one.
   * When every output agrees (within 1e-5 of the outputs' scale) later forwards run batches that
   * way and this returns true; otherwise nothing changes (false). FaceModel.fromOnnx does this,
   * so that a batch of faces is one pass of the network instead of one per face.
   */
  enableBatching(probe: Tensor): boolean {
    if (!Tensor.isTensor(probe) || probe.ndim < 1 || probe.shape[0] < 2) invalid('probe', 'a tensor of 2 or more items', Tensor.isTensor(probe) ? `shape [${probe.shape}]` : probe);
    if (this.graphInputs.length !== 1) return false;
    const outputs = (x: Tensor) => {
      const o = this.forward(x);
      return Array.isArray(o) ? o : [o];
    };
    return noGrad(() =>
      tidy(() => {
        const singles = F.split(probe, 1, 0).map(outputs);
        this.batching = true;
        try {
          const whole = outputs(probe);
          const agree = whole.every((w, k) => {
            const single = F.cat(singles.map((s) => s[k]), 0);
            if (w.shape.join() !== single.shape.join()) return false;
            const scale = Math.max(1, F.abs(single).max().item());
            return F.sub(w, single).abs().max().item() <= 1e-5 * scale;
          });
          this.batching = agree;
          return agree;
        } catch {
          this.batching = false; // a shape error: the graph's batch of 1 is not only in its Reshapes
          return false;
        }
      }),
    );
  }

  /**
   * What inference fuses in this graph (no gradient to record, CPU float32 tensors, a build with
   * oneDNN convolutions; otherwise every node runs by itself): `convs` 2-D Convs run as one oneDNN
   * call each, `absorbed` the nodes folded into them by operator, `refused` the convs oneDNN had no
   * optimized kernel for (node by node from then on; known once a forward has run).
   */
  inferencePlan(): { convs: number; absorbed: Record<string, number>; refused: number } {
    const absorbed: Record<string, number> = {};
    for (const i of this.absorbed) absorbed[this.nodes[i].op] = (absorbed[this.nodes[i].op] ?? 0) + 1;
    return { convs: this.fusions.size, absorbed, refused: [...this.fusions.values()].filter((f) => f.refused).length };
  }

  private isValue(t: Tensor): boolean {
    this.valueSet ??= new Set(this.values.values());
    return this.valueSet.has(t);
  }
  private valueSet: Set<Tensor> | null = null;

  /** Inference as a traced program on a worker thread (autograd off): the event loop stays free. One trace per input shape. */
  async run(...inputs: Tensor[]): Promise<Tensor[]> {
    this.runner ??= traced((...xs: Tensor[]) => {
      const out = this.forward(...xs);
      return Array.isArray(out) ? out : [out];
    });
    return this.runner(...inputs);
  }
}

function missing(node: Node, name: string): never {
  throw new FileFormatError(`ONNX node '${node.name}' (${node.op}) reads '${name}', which no earlier node or input produces`);
}

/** Loads an ONNX file (path or bytes) as a trainable nn.Module. */
export async function loadOnnx(source: string | Uint8Array, options: { keepFloat16?: boolean } = {}): Promise<OnnxModule> {
  let bytes: Uint8Array;
  let baseDir: string | null = null;
  if (typeof source === 'string') {
    bytes = await fs.promises.readFile(source);
    baseDir = path.dirname(path.resolve(source));
  } else if (source instanceof Uint8Array) bytes = source;
  else invalid('source', 'a path or the bytes of an .onnx file', source);
  let model: Proto;
  try {
    const M = onnxProto().ModelProto;
    model = M.toObject(M.decode(bytes), { longs: Number, enums: Number, defaults: false, arrays: true });
  } catch (e) {
    throw new FileFormatError(`not an ONNX model (${(e as Error).message})`);
  }
  return new OnnxModule(model, baseDir, options);
}

// Inference fusion ------------------------------------------------------------------------------------

// With no gradient to record, on the CPU, a 2-D Conv runs as one oneDNN call (F.onednnConv2d: the primitive and the
// reordered weight cached, activations channels-last) with what follows it fused when the conv's output
// has no other reader: a residual Add (the other operand computed earlier), then Relu or Clip(0, 6).
// Exported ResNets and MobileNets are chains of these; aten ran them as NCHW convolutions (a slow
// path at batch 1 in libtorch 1.13) plus a pass over memory per elementwise node. PRelu is not fused:
// oneDNN 2.6 has only its reference kernel for a convolution with a prelu post-op (measured: every
// layout); it runs as aten::prelu on the channels-last output. With gradients to record (fine-tuning),
// on other devices or dtypes, every node runs by itself. faceplugin's fr_feature.onnx at batch 1, one
// thread: 12.7 ms node by node (NCHW aten), 3.7 ms fused (scripts/bench/cases/networks.ts).

interface ConvFusion {
  /** Node indices the fused call replaces after the conv, in order. */
  absorbed: number[];
  /** The Add's other operand, or null. */
  residual: string | null;
  activation: 'relu' | 'relu6' | null;
  /** The value the fused call produces (the last absorbed node's output, or the conv's). */
  output: string;
  /** Set when oneDNN refused this conv once (no optimized kernel for its layout): node by node from then on. */
  refused: boolean;
}

/** What each 2-D Conv of the graph can absorb (see above). */
function planFusions(nodes: Node[], values: Map<string, Tensor>, graphOutputs: string[]): Map<number, ConvFusion> {
  const readers = new Map<string, number[]>();
  nodes.forEach((n, i) => n.inputs.forEach((name) => name && readers.set(name, [...(readers.get(name) ?? []), i])));
  for (const name of graphOutputs) readers.set(name, [...(readers.get(name) ?? []), -1]);
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.outputs.forEach((name) => name && producer.set(name, i)));
  // The single node reading value `name`, or -1.
  const onlyReader = (name: string): number => {
    const r = readers.get(name) ?? [];
    return r.length === 1 ? r[0] : -1;
  };
  const constant = (name: string | undefined): number | null => {
    const t = name ? values.get(name) : undefined;
    return t && t.numel === 1 ? first(t) : null;
  };
  const plans = new Map<number, ConvFusion>();
  nodes.forEach((node, i) => {
    if (node.op !== 'Conv') return;
    const w = values.get(node.inputs[1]);
    const b = node.inputs[2] ? values.get(node.inputs[2]) : null;
    if (!w || w.ndim !== 4 || w.dtype !== 'float32' || b === undefined || (b && b.dtype !== 'float32')) return;
    if (attrInts(node.attrs.dilations, [1, 1]).some((d) => d !== 1)) return;
    const plan: ConvFusion = { absorbed: [], residual: null, activation: null, output: node.outputs[0], refused: false };
    let j = onlyReader(plan.output);
    if (j >= 0 && nodes[j].op === 'Add') {
      const other = nodes[j].inputs[0] === plan.output ? nodes[j].inputs[1] : nodes[j].inputs[0];
      // Computed before the conv runs (an earlier node's output), and not the conv's own output twice.
      if (other !== plan.output && (producer.get(other) ?? Infinity) < i) {
        plan.absorbed.push(j);
        plan.residual = other;
        plan.output = nodes[j].outputs[0];
        j = onlyReader(plan.output);
      }
    }
    if (j >= 0) {
      const n = nodes[j];
      let activation: ConvFusion['activation'] = null;
      if (n.op === 'Relu') activation = 'relu';
      else if (n.op === 'Clip') {
        const lo = n.attrs.min !== undefined ? (n.attrs.min as number) : n.inputs[1] ? constant(n.inputs[1]) : null;
        const hi = n.attrs.max !== undefined ? (n.attrs.max as number) : n.inputs[2] ? constant(n.inputs[2]) : null;
        if (lo === 0 && hi === 6 && (n.attrs.max !== undefined || n.inputs[2])) activation = 'relu6';
        else if (lo === 0 && n.attrs.max === undefined && !n.inputs[2]) activation = 'relu';
      }
      if (activation) {
        plan.absorbed.push(j);
        plan.activation = activation;
        plan.output = n.outputs[0];
      }
    }
    plans.set(i, plan);
  });
  return plans;
}

/** The fused call of a planned conv, or null when this input does not fit it (the caller runs the nodes). */
function fusedConv(node: Node, plan: ConvFusion, a: Args, read: (name: string) => Tensor | null): Tensor | null {
  if (plan.refused) return null;
  const [x, w, b] = a;
  if (!x || !w || x.ndim !== 4) return null;
  const groups = attrNum(node.attrs.group, 1);
  if (x.shape[1] !== w.shape[1] * groups || w.shape[0] % groups !== 0) return null;
  const kernel = attrInts(node.attrs.kernel_shape, w.shape.slice(2));
  if (kernel[0] !== w.shape[2] || kernel[1] !== w.shape[3]) return null;
  const strides = attrInts(node.attrs.strides, [1, 1]);
  const pads = onnxPads(x, node.attrs, kernel, strides, [1, 1]);
  const outH = Math.floor((x.shape[2] + pads[0] + pads[2] - kernel[0]) / strides[0]) + 1;
  const outW = Math.floor((x.shape[3] + pads[1] + pads[3] - kernel[1]) / strides[1]) + 1;
  if (outH <= 0 || outW <= 0) return null;
  const residual = plan.residual ? read(plan.residual) : null;
  const outShape = [x.shape[0], w.shape[0], outH, outW];
  if (plan.residual && (!residual || residual.shape.join() !== outShape.join())) return null;
  if (!F.onednnInference(x, w, b, residual)) return null; // CPU float32 throughout
  // oneDNN's optimized kernels take a channels-last input for a channels-last output (an NCHW one
  // has only the reference kernel): the graph's input is converted once, convs' outputs already are.
  const xl = x.contiguous({ channelsLast: true });
  try {
    return F.onednnConv2d(xl, w, b, { stride: strides, padding: [pads[0], pads[1], pads[2], pads[3]], groups, layout: 'channelsLast', activation: plan.activation, residual });
  } catch (e) {
    if (!(e instanceof TorchError)) throw e;
    plan.refused = true;
    return null;
  } finally {
    xl.dispose();
  }
}

// Operators ------------------------------------------------------------------------------------------

type Args = (Tensor | null)[];
/** batch: the batch size a graph exported at a fixed batch of 1 runs at (OnnxModule.enableBatching), else null. */
type Impl = (a: Args, at: Record<string, AttrValue>, ctx: { opset: number; training: boolean; node: Node; batch: number | null }) => (Tensor | null)[] | Tensor;

/** A tensor's values as JS numbers (via a CPU view that is released at once). */
function values(t: Tensor): number[] {
  const c = t.cpu();
  try {
    return Array.from(c.data() as ArrayLike<number | bigint>, Number);
  } finally {
    c.dispose();
  }
}
const ints = (t: Tensor | null | undefined): number[] => (t ? values(t) : []);
const first = (t: Tensor): number => values(t)[0];
const attrInts = (v: AttrValue | undefined, d: number[] = []): number[] => (Array.isArray(v) ? (v as number[]) : v === undefined || v === null ? d : [v as number]);
const attrNum = (v: AttrValue | undefined, d: number): number => (typeof v === 'number' ? v : d);
const attrStr = (v: AttrValue | undefined, d: string): string => (typeof v === 'string' ? v : d);
const need = (a: Args, i: number, node: Node): Tensor => a[i] ?? missing(node, `input ${i}`);
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const isInt = (t: Tensor) => !['float32', 'float64', 'float16', 'bfloat16'].includes(t.dtype);

const DIV_MODE = new Op('aten::div', 'Tensor_mode');
const SLICE = new Op('aten::slice', 'Tensor');

/** ONNX pads [b1, b2, ..., e1, e2, ...] for the last k dims -> torch's F.pad order [bk, ek, ..., b1, e1]. */
function torchPads(pads: number[], k: number): number[] {
  const out: number[] = [];
  for (let i = k - 1; i >= 0; i--) out.push(pads[i], pads[i + k]);
  return out;
}

/** A conv/pool's pads in ONNX's order [b1, b2, ..., e1, e2, ...], auto_pad resolved for this input. */
function onnxPads(x: Tensor, at: Record<string, AttrValue>, kernel: number[], strides: number[], dilations: number[]): number[] {
  const k = kernel.length;
  const autoPad = attrStr(at.auto_pad, 'NOTSET');
  if (autoPad === 'VALID') return new Array(2 * k).fill(0);
  if (autoPad !== 'SAME_UPPER' && autoPad !== 'SAME_LOWER') return attrInts(at.pads, new Array(2 * k).fill(0));
  const pads = new Array(2 * k).fill(0);
  for (let i = 0; i < k; i++) {
    const inSize = x.shape[2 + i];
    const out = Math.ceil(inSize / strides[i]);
    const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - inSize);
    const small = Math.floor(total / 2);
    pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
    pads[i + k] = total - pads[i];
  }
  return pads;
}

/** Spatial padding of a conv/pool: symmetric pads for the op itself, else a separate pad first. */
function spatialPadding(x: Tensor, at: Record<string, AttrValue>, kernel: number[], strides: number[], dilations: number[], padValue: number): { x: Tensor; padding: number[] } {
  const k = kernel.length;
  const pads = onnxPads(x, at, kernel, strides, dilations);
  const symmetric = pads.slice(0, k).every((p, i) => p === pads[i + k]);
  if (symmetric) return { x, padding: pads.slice(0, k) };
  return { x: F.pad(x, torchPads(pads, k), 'constant', padValue), padding: new Array(k).fill(0) };
}

function conv(a: Args, at: Record<string, AttrValue>, node: Node): Tensor {
  const x = need(a, 0, node);
  const w = need(a, 1, node);
  const k = w.ndim - 2;
  const kernel = attrInts(at.kernel_shape, w.shape.slice(2));
  const strides = attrInts(at.strides, new Array(k).fill(1));
  const dilations = attrInts(at.dilations, new Array(k).fill(1));
  const p = spatialPadding(x, at, kernel, strides, dilations, 0);
  const o = { stride: strides, padding: p.padding, dilation: dilations, groups: attrNum(at.group, 1) };
  const f = k === 1 ? F.conv1d : k === 2 ? F.conv2d : F.conv3d;
  return f(p.x, w, a[2] ?? null, o);
}

function pool(kind: 'max' | 'avg', a: Args, at: Record<string, AttrValue>, node: Node): Tensor {
  const x = need(a, 0, node);
  const kernel = attrInts(at.kernel_shape);
  const k = kernel.length;
  const strides = attrInts(at.strides, new Array(k).fill(1));
  const dilations = attrInts(at.dilations, new Array(k).fill(1));
  const p = spatialPadding(x, at, kernel, strides, dilations, kind === 'max' ? -Infinity : 0);
  if (kind === 'avg' && p.x !== x && !attrNum(at.count_include_pad, 0)) throw new UnsupportedOperatorError(node.op, node.name, 0, 'asymmetric padding without count_include_pad');
  const o = { stride: strides, padding: p.padding, ceilMode: !!attrNum(at.ceil_mode, 0) };
  if (kind === 'max') return (k === 1 ? F.maxPool1d : k === 2 ? F.maxPool2d : F.maxPool3d)(p.x, kernel, { ...o, dilation: dilations });
  return (k === 1 ? F.avgPool1d : k === 2 ? F.avgPool2d : F.avgPool3d)(p.x, kernel, { ...o, countIncludePad: !!attrNum(at.count_include_pad, 0) });
}

function reduce(kind: 'mean' | 'sum' | 'max' | 'min' | 'l2', a: Args, at: Record<string, AttrValue>, ctx: { opset: number; node: Node }): Tensor {
  const x = need(a, 0, ctx.node);
  // Axes: an attribute before opset 18 (13 for ReduceSum), then an input.
  let axes = at.axes !== undefined ? attrInts(at.axes) : ints(a[1]);
  const keep = !!attrNum(at.keepdims, 1);
  if (!axes.length) {
    if (attrNum(at.noop_with_empty_axes, 0)) return x.clone();
    axes = x.shape.map((_, i) => i);
  }
  axes = axes.map((d) => norm(d, x.ndim));
  if (kind === 'mean') return F.mean(x, axes, keep);
  if (kind === 'sum') return F.sum(x, axes, keep);
  if (kind === 'l2') return F.norm(x, 2, axes, keep);
  let y = x;
  for (const d of [...axes].sort((p, q) => q - p)) y = kind === 'max' ? F.max(y, d, keep).values : F.min(y, d, keep).values;
  return y;
}

function resize(a: Args, at: Record<string, AttrValue>, ctx: { opset: number; node: Node }): Tensor {
  const x = need(a, 0, ctx.node);
  const mode = attrStr(at.mode, 'nearest');
  const coord = attrStr(at.coordinate_transformation_mode, 'half_pixel');
  const scales = a[2] ? values(a[2]) : [];
  const sizes = ints(a[3]);
  const spatial = x.ndim - 2;
  const options: F.InterpolateOptions = sizes.length ? { size: sizes.slice(2) } : { scaleFactor: scales.slice(2) };
  if (!sizes.length && scales.slice(0, 2).some((s) => s !== 1)) throw new UnsupportedOperatorError('Resize', ctx.node.name, ctx.opset, 'scaling of batch or channels');
  if (mode === 'nearest') {
    // PyTorch's nearest is ONNX's asymmetric + floor.
    if (coord !== 'asymmetric' || attrStr(at.nearest_mode, 'round_prefer_floor') !== 'floor') throw new UnsupportedOperatorError('Resize', ctx.node.name, ctx.opset, `nearest with ${coord}/${attrStr(at.nearest_mode, 'round_prefer_floor')}`);
    return F.interpolate(x, { ...options, mode: 'nearest' });
  }
  if (mode === 'linear') {
    const alignCorners = coord === 'align_corners';
    if (!alignCorners && coord !== 'half_pixel' && coord !== 'pytorch_half_pixel') throw new UnsupportedOperatorError('Resize', ctx.node.name, ctx.opset, `linear with ${coord}`);
    return F.interpolate(x, { ...options, mode: spatial === 1 ? 'linear' : spatial === 2 ? 'bilinear' : 'trilinear', alignCorners });
  }
  throw new UnsupportedOperatorError('Resize', ctx.node.name, ctx.opset, `mode ${mode}`);
}

function slice(a: Args, at: Record<string, AttrValue>, node: Node): Tensor {
  const x = need(a, 0, node);
  const starts = at.starts !== undefined ? attrInts(at.starts) : ints(a[1]);
  const ends = at.ends !== undefined ? attrInts(at.ends) : ints(a[2]);
  const axes = at.axes !== undefined ? attrInts(at.axes) : a[3] ? ints(a[3]) : starts.map((_, i) => i);
  const steps = a[4] ? ints(a[4]) : starts.map(() => 1);
  let y = x;
  axes.forEach((axis0, i) => {
    const axis = norm(axis0, x.ndim);
    const n = y.shape[axis];
    const step = steps[i];
    const clampIdx = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    let s = starts[i] < 0 ? starts[i] + n : starts[i];
    let e = ends[i] < 0 ? ends[i] + n : ends[i];
    if (step > 0) {
      s = clampIdx(s, 0, n);
      e = clampIdx(e, 0, n);
      y = SLICE.t(y.handle, axis, s, Math.max(s, e), step);
    } else {
      s = clampIdx(s, -1, n - 1);
      e = clampIdx(e, -1, n - 1);
      const idx: number[] = [];
      for (let k = s; k > e; k += step) idx.push(k);
      y = F.indexSelect(y, axis, onDeviceOf(tensor(BigInt64Array.from(idx.map(BigInt))), y));
    }
  });
  return y;
}

function gather(a: Args, at: Record<string, AttrValue>, node: Node): Tensor {
  const x = need(a, 0, node);
  const idx = need(a, 1, node);
  const axis = norm(attrNum(at.axis, 0), x.ndim);
  const n = x.shape[axis];
  const flat = onDeviceOf(F.remainder(idx.to('int64').reshape([-1]), n), x); // negative indices count from the end
  const picked = F.indexSelect(x, axis, flat);
  return picked.reshape([...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)]);
}

function unsqueeze(x: Tensor, axes: number[]): Tensor {
  const rank = x.ndim + axes.length;
  let y = x;
  for (const d of axes.map((v) => norm(v, rank)).sort((p, q) => p - q)) y = y.unsqueeze(d);
  return y;
}

/** `t` on `like`'s device: constants (integer initializers, Constant nodes) are made on the CPU, data may be on a GPU. */
function onDeviceOf(t: Tensor, like: Tensor): Tensor {
  return t.device === like.device ? t : t.to({ device: like.device });
}

function binary(f: (x: Tensor, y: Tensor) => Tensor): Impl {
  return (a, _at, ctx) => {
    const x = need(a, 0, ctx.node);
    const y = need(a, 1, ctx.node);
    // A CPU operand joins the other's device (the other way round for a 0-d CPU scalar is libtorch's own rule).
    return x.device === 'cpu' && y.device !== 'cpu' ? f(onDeviceOf(x, y), y) : f(x, onDeviceOf(y, x));
  };
}

const OPS: Record<string, Impl> = {
  Conv: (a, at, c) => conv(a, at, c.node),
  ConvTranspose: (a, at, c) => {
    const x = need(a, 0, c.node);
    const w = need(a, 1, c.node);
    const k = w.ndim - 2;
    const pads = attrInts(at.pads, new Array(2 * k).fill(0));
    if (!pads.slice(0, k).every((p, i) => p === pads[i + k]) || at.output_shape !== undefined || (at.auto_pad && at.auto_pad !== 'NOTSET'))
      throw new UnsupportedOperatorError('ConvTranspose', c.node.name, c.opset, 'asymmetric pads, auto_pad or output_shape');
    const o = { stride: attrInts(at.strides, new Array(k).fill(1)), padding: pads.slice(0, k), outputPadding: attrInts(at.output_padding, new Array(k).fill(0)), dilation: attrInts(at.dilations, new Array(k).fill(1)), groups: attrNum(at.group, 1) };
    return (k === 1 ? F.convTranspose1d : k === 2 ? F.convTranspose2d : F.convTranspose3d)(x, w, a[2] ?? null, o);
  },
  Gemm: (a, at, c) => {
    let A = need(a, 0, c.node);
    let B = need(a, 1, c.node);
    const alpha = attrNum(at.alpha, 1);
    const beta = attrNum(at.beta, 1);
    if (attrNum(at.transA, 0)) A = A.transpose(0, 1);
    if (attrNum(at.transB, 0) && alpha === 1 && beta === 1 && A.ndim === 2 && (!a[2] || a[2].ndim <= 1)) return F.linear(A, B, a[2] ?? null);
    if (attrNum(at.transB, 0)) B = B.transpose(0, 1);
    let y = F.matmul(A, B);
    if (alpha !== 1) y = y.mul(alpha);
    if (a[2]) y = y.add(beta === 1 ? a[2] : a[2].mul(beta));
    return y;
  },
  MatMul: binary(F.matmul),
  BatchNormalization: (a, at, c) => {
    const x = need(a, 0, c.node);
    // training_mode (opset 14) or the module's mode: batch statistics, running statistics updated, as torch's BatchNorm.
    const training = c.training || !!attrNum(at.training_mode, 0);
    return F.batchNorm(x, a[3] ?? null, a[4] ?? null, { weight: a[1], bias: a[2], training, momentum: 1 - attrNum(at.momentum, 0.9), eps: attrNum(at.epsilon, 1e-5) });
  },
  InstanceNormalization: (a, at, c) => {
    const x = need(a, 0, c.node);
    const dims = x.shape.slice(2).map((_, i) => i + 2);
    const mu = F.mean(x, dims, true);
    const v = F.variance(x, dims, { keepdim: true, unbiased: false });
    const shape = [1, x.shape[1], ...dims.map(() => 1)];
    return x.sub(mu).div(v.add(attrNum(at.epsilon, 1e-5)).sqrt()).mul(need(a, 1, c.node).reshape(shape)).add(need(a, 2, c.node).reshape(shape));
  },
  Relu: (a, _at, c) => F.relu(need(a, 0, c.node)),
  PRelu: (a, _at, c) => {
    const x = need(a, 0, c.node);
    const slope = need(a, 1, c.node);
    // One slope, or one per channel of an N x C x ... input ([C, 1, 1] or [1, C, 1, 1], as exporters
    // write it): aten::prelu, one pass that keeps a channels-last layout.
    const k = x.ndim - 2;
    const perChannel = x.ndim >= 3 && slope.dtype === x.dtype && (slope.numel === 1 || (slope.numel === x.shape[1] && slope.ndim >= k + 1 && slope.shape.slice(slope.ndim - k).every((d) => d === 1) && slope.shape[slope.ndim - k - 1] === x.shape[1]));
    if (perChannel) return F.prelu(x, slope.reshape([-1]));
    // Otherwise ONNX broadcasts the slope: max(0, x) + slope * min(0, x) is that for any shape.
    return F.relu(x).add(F.clamp(x, null, 0).mul(slope));
  },
  LeakyRelu: (a, at, c) => F.leakyRelu(need(a, 0, c.node), attrNum(at.alpha, 0.01)),
  Sigmoid: (a, _at, c) => F.sigmoid(need(a, 0, c.node)),
  Tanh: (a, _at, c) => F.tanh(need(a, 0, c.node)),
  Elu: (a, at, c) => F.elu(need(a, 0, c.node), attrNum(at.alpha, 1)),
  Softplus: (a, _at, c) => F.softplus(need(a, 0, c.node)),
  HardSigmoid: (a, at, c) => F.clamp(need(a, 0, c.node).mul(attrNum(at.alpha, 0.2)).add(attrNum(at.beta, 0.5)), 0, 1),
  HardSwish: (a, _at, c) => {
    const x = need(a, 0, c.node);
    return x.mul(F.clamp(x.div(6).add(0.5), 0, 1));
  },
  Clip: (a, at, c) => {
    const x = need(a, 0, c.node);
    const lo = at.min !== undefined ? (at.min as number) : a[1] ? first(a[1]) : null;
    const hi = at.max !== undefined ? (at.max as number) : a[2] ? first(a[2]) : null;
    return F.clamp(x, lo, hi);
  },
  Add: binary(F.add),
  Sub: binary(F.sub),
  Mul: binary(F.mul),
  Div: (a, _at, c) => {
    const x = need(a, 0, c.node);
    const y = need(a, 1, c.node);
    // Integer division truncates in ONNX (shape arithmetic uses it).
    return isInt(x) && isInt(y) ? DIV_MODE.t(x.handle, y.handle, 'trunc') : F.div(x, y);
  },
  Pow: binary((x, y) => (y.numel === 1 && y.ndim === 0 ? F.pow(x, first(y)) : F.pow(x, y))),
  Sqrt: (a, _at, c) => F.sqrt(need(a, 0, c.node)),
  Reciprocal: (a, _at, c) => F.reciprocal(need(a, 0, c.node)),
  Exp: (a, _at, c) => F.exp(need(a, 0, c.node)),
  Log: (a, _at, c) => F.log(need(a, 0, c.node)),
  Neg: (a, _at, c) => F.neg(need(a, 0, c.node)),
  Abs: (a, _at, c) => F.abs(need(a, 0, c.node)),
  Floor: (a, _at, c) => F.floor(need(a, 0, c.node)),
  Ceil: (a, _at, c) => F.ceil(need(a, 0, c.node)),
  Max: (a, _at, c) => a.reduce((m, t) => F.maximum(m!, t!), need(a, 0, c.node))!,
  Min: (a, _at, c) => a.reduce((m, t) => F.minimum(m!, t!), need(a, 0, c.node))!,
  Equal: binary(F.eq),
  Less: binary(F.lt),
  Greater: binary(F.gt),
  Not: (a, _at, c) => F.logicalNot(need(a, 0, c.node)),
  Where: (a, _at, c) => {
    const y = need(a, 1, c.node);
    return F.where(onDeviceOf(need(a, 0, c.node), y), y, onDeviceOf(need(a, 2, c.node), y));
  },
  Cast: (a, at, c) => {
    const to = ONNX_DTYPES[attrNum(at.to, 1)];
    if (!to) throw new UnsupportedOperatorError('Cast', c.node.name, c.opset, `to type ${at.to}`);
    return need(a, 0, c.node).to(to.dtype);
  },
  Reshape: (a, at, c) => {
    const x = need(a, 0, c.node);
    const shape = ints(a[1]);
    // 0 copies the input's dimension (unless allowzero).
    const target = shape.map((d, i) => (d === 0 && !attrNum(at.allowzero, 0) ? x.shape[i] : d));
    // A graph exported at a fixed batch of 1 running a batch (enableBatching): its leading 1 is the batch.
    if (c.batch && target[0] === 1 && x.shape[0] === c.batch) target[0] = c.batch;
    return x.reshape(target);
  },
  Flatten: (a, at, c) => {
    const x = need(a, 0, c.node);
    const axis = norm(attrNum(at.axis, 1), x.ndim);
    const lead = x.shape.slice(0, axis).reduce((p, q) => p * q, 1);
    return x.reshape([lead, -1]);
  },
  Transpose: (a, at, c) => {
    const x = need(a, 0, c.node);
    return x.permute(attrInts(at.perm, x.shape.map((_, i) => x.ndim - 1 - i)));
  },
  Squeeze: (a, at, c) => {
    const x = need(a, 0, c.node);
    const axes = at.axes !== undefined ? attrInts(at.axes) : ints(a[1]);
    const dims = (axes.length ? axes.map((d) => norm(d, x.ndim)) : x.shape.map((s, i) => (s === 1 ? i : -1)).filter((i) => i >= 0)).sort((p, q) => q - p);
    let y = x;
    for (const d of dims) y = y.squeeze(d);
    return y;
  },
  Unsqueeze: (a, at, c) => unsqueeze(need(a, 0, c.node), at.axes !== undefined ? attrInts(at.axes) : ints(a[1])),
  Concat: (a, at, c) => {
    const xs = a.filter((t): t is Tensor => !!t && t.numel > 0 || (!!t && a.length === 1));
    const rank = (xs[0] ?? need(a, 0, c.node)).ndim;
    return F.cat(xs.length ? xs : [need(a, 0, c.node)], norm(attrNum(at.axis, 0), rank));
  },
  Split: (a, at, c) => {
    const x = need(a, 0, c.node);
    const axis = norm(attrNum(at.axis, 0), x.ndim);
    let sizes = at.split !== undefined ? attrInts(at.split) : ints(a[1]);
    if (!sizes.length) {
      const parts = at.num_outputs !== undefined ? (at.num_outputs as number) : c.node.outputs.length;
      const each = Math.ceil(x.shape[axis] / parts);
      sizes = Array.from({ length: parts }, (_, i) => Math.min(each, x.shape[axis] - i * each));
    }
    return F.split(x, sizes, axis);
  },
  Slice: (a, at, c) => slice(a, at, c.node),
  Gather: (a, at, c) => gather(a, at, c.node),
  Shape: (a, at, c) => {
    const x = need(a, 0, c.node);
    const r = x.ndim;
    const start = norm(attrNum(at.start, 0), r);
    const end = at.end !== undefined ? norm(at.end as number, r) : r;
    return tensor(BigInt64Array.from(x.shape.slice(start, end).map(BigInt)));
  },
  Size: (a, _at, c) => tensor(BigInt64Array.from([BigInt(need(a, 0, c.node).numel)])).reshape([]),
  Constant: (_a, at, c) => {
    if (Tensor.isTensor(at.value)) return (at.value as Tensor).clone();
    if (typeof at.value_float === 'number') return tensor([at.value_float]).reshape([]);
    if (Array.isArray(at.value_floats)) return tensor(at.value_floats as number[]);
    if (typeof at.value_int === 'number') return tensor(BigInt64Array.from([BigInt(at.value_int)])).reshape([]);
    if (Array.isArray(at.value_ints)) return tensor(BigInt64Array.from((at.value_ints as number[]).map(BigInt)));
    throw new UnsupportedOperatorError('Constant', c.node.name, c.opset, `attribute ${Object.keys(at).join(', ')}`);
  },
  ConstantOfShape: (a, at, c) => {
    const shape = ints(need(a, 0, c.node));
    const v = Tensor.isTensor(at.value) ? (at.value as Tensor) : null;
    if (!v) return zeros(shape);
    return full(shape, first(v), { dtype: v.dtype });
  },
  Expand: (a, _at, c) => {
    const x = need(a, 0, c.node);
    const shape = ints(a[1]);
    // ONNX Expand broadcasts both ways (a 1 in `shape` keeps the input's size).
    const rank = Math.max(shape.length, x.ndim);
    const xs = [...new Array(rank - x.ndim).fill(1), ...x.shape];
    const ss = [...new Array(rank - shape.length).fill(1), ...shape];
    return x.reshape(xs).expand(xs.map((d, i) => (ss[i] === 1 ? d : ss[i]))).contiguous();
  },
  Tile: (a, _at, c) => need(a, 0, c.node).repeat(ints(a[1])),
  Range: (a, _at, c) => {
    const [s, l, d] = [a[0], a[1], a[2]].map((t) => first(t!));
    return arange(s, l, d, { dtype: need(a, 0, c.node).dtype });
  },
  Identity: (a, _at, c) => need(a, 0, c.node),
  Dropout: (a, at, c) => {
    const x = need(a, 0, c.node);
    const ratio = a[1] ? first(a[1]) : attrNum(at.ratio, 0.5);
    return c.training ? F.dropout(x, ratio, true) : x;
  },
  MaxPool: (a, at, c) => pool('max', a, at, c.node),
  AveragePool: (a, at, c) => pool('avg', a, at, c.node),
  GlobalAveragePool: (a, _at, c) => {
    const x = need(a, 0, c.node);
    return F.mean(x, x.shape.slice(2).map((_, i) => i + 2), true);
  },
  GlobalMaxPool: (a, _at, c) => {
    let y = need(a, 0, c.node);
    for (let d = y.ndim - 1; d >= 2; d--) y = F.max(y, d, true).values;
    return y;
  },
  Pad: (a, at, c) => {
    const x = need(a, 0, c.node);
    const pads = at.pads !== undefined ? attrInts(at.pads) : ints(a[1]);
    const value = at.value !== undefined ? (at.value as number) : a[2] && a[2].numel ? first(a[2]) : 0;
    const mode = attrStr(at.mode, 'constant');
    const k = pads.length / 2;
    let tp = torchPads(pads, k);
    // torch's reflect/replicate pad only spatial dims: drop leading all-zero pairs.
    if (mode !== 'constant') {
      while (tp.length > 2 * (x.ndim - 2) && tp[tp.length - 1] === 0 && tp[tp.length - 2] === 0) tp = tp.slice(0, -2);
      if (tp.length > 2 * (x.ndim - 2)) throw new UnsupportedOperatorError('Pad', c.node.name, c.opset, `${mode} padding of batch or channel dimensions`);
    }
    if (mode === 'constant') return F.pad(x, tp, 'constant', value);
    if (mode === 'reflect') return F.pad(x, tp, 'reflect');
    if (mode === 'edge') return F.pad(x, tp, 'replicate');
    throw new UnsupportedOperatorError('Pad', c.node.name, c.opset, `mode ${mode}`);
  },
  Resize: (a, at, c) => resize(a, at, c),
  Softmax: (a, at, c) => {
    const x = need(a, 0, c.node);
    const axis = norm(attrNum(at.axis, c.opset >= 13 ? -1 : 1), x.ndim);
    if (c.opset >= 13 || axis === x.ndim - 1) return F.softmax(x, axis);
    // Before opset 13: softmax over the flattened dims from axis on.
    return F.softmax(x.reshape([...x.shape.slice(0, axis), -1]), axis).reshape(x.shape);
  },
  LogSoftmax: (a, at, c) => {
    const x = need(a, 0, c.node);
    const axis = norm(attrNum(at.axis, c.opset >= 13 ? -1 : 1), x.ndim);
    if (c.opset >= 13 || axis === x.ndim - 1) return F.logSoftmax(x, axis);
    return F.logSoftmax(x.reshape([...x.shape.slice(0, axis), -1]), axis).reshape(x.shape);
  },
  ReduceMean: (a, at, c) => reduce('mean', a, at, c),
  ReduceSum: (a, at, c) => reduce('sum', a, at, c),
  ReduceMax: (a, at, c) => reduce('max', a, at, c),
  ReduceMin: (a, at, c) => reduce('min', a, at, c),
  ReduceL2: (a, at, c) => reduce('l2', a, at, c),
  LpNormalization: (a, at, c) => {
    const x = need(a, 0, c.node);
    const axis = norm(attrNum(at.axis, -1), x.ndim);
    return x.div(F.norm(x, attrNum(at.p, 2), [axis], true));
  },
  Erf: (a, _at, c) => new Op('aten::erf').t(need(a, 0, c.node).handle),
};

function checkSupported(node: Node, opset: number): void {
  if (!OPS[node.op]) throw new UnsupportedOperatorError(node.op, node.name, opset);
  const at = node.attrs;
  if (node.op === 'Resize') {
    const mode = attrStr(at.mode, 'nearest');
    const coord = attrStr(at.coordinate_transformation_mode, 'half_pixel');
    if (mode === 'nearest' && (coord !== 'asymmetric' || attrStr(at.nearest_mode, 'round_prefer_floor') !== 'floor'))
      throw new UnsupportedOperatorError('Resize', node.name, opset, `nearest with coordinate_transformation_mode ${coord} and nearest_mode ${attrStr(at.nearest_mode, 'round_prefer_floor')}`);
    if (mode === 'linear' && !['half_pixel', 'pytorch_half_pixel', 'align_corners'].includes(coord)) throw new UnsupportedOperatorError('Resize', node.name, opset, `linear with ${coord}`);
    if (mode === 'cubic') throw new UnsupportedOperatorError('Resize', node.name, opset, 'mode cubic');
  }
  if (node.op === 'Pad' && !['constant', 'reflect', 'edge'].includes(attrStr(at.mode, 'constant'))) throw new UnsupportedOperatorError('Pad', node.name, opset, `mode ${at.mode}`);
}

function runNode(node: Node, args: Args, opset: number, training: boolean, batch: number | null = null): (Tensor | null)[] {
  try {
    const r = OPS[node.op](args, node.attrs, { opset, training, node, batch });
    return Array.isArray(r) ? r : [r];
  } catch (e) {
    if (e instanceof TorchfaceError && !(e instanceof TorchError)) throw e;
    throw new FileFormatError(`ONNX node '${node.name}' (${node.op}): ${(e as Error).message}`);
  }
}

/** The operators loadOnnx implements (for docs and error messages). */
export const ONNX_SUPPORTED_OPS: readonly string[] = Object.keys(OPS).sort();
