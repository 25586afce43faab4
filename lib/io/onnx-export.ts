// ONNX export of torchface modules, from a traced forward:
//
//   await saveOnnx(net, [example], 'net.onnx', { dynamicBatch: true });
//
// The forward is recorded once (lib/jit trace: every ATen operator call with
// its arguments), then each recorded operator becomes ONNX nodes (opset 13).
// Parameters and buffers become initializers under their stateDict names, so
// loadOnnx (or PyTorch) finds the same names. With dynamicBatch the inputs'
// and outputs' first dimension is symbolic ('batch'), and reshapes that copied
// the example's batch size copy the input's instead (ONNX Reshape's 0).
// An operator without a mapping is an UnsupportedOperatorError naming it.
import { TorchfaceError, invalid } from '../core/errors';
import { trace, TraceDescription } from '../core/jit';
import { Module } from '../nn';
import { Tensor, noGrad, toBytes } from '../core';
import { writeFileAtomic } from './atomic';
import { packageVersion } from '../util/paths';
import { ONNX_TYPE_OF, UnsupportedOperatorError, onnxProto } from './onnx';

export interface SaveOnnxOptions {
  /** A symbolic first (batch) dimension on inputs and outputs (default true). */
  dynamicBatch?: boolean;
  inputNames?: string[];
  outputNames?: string[];
  /** What to export instead of module.forward (e.g. (x) => net.embed(x)); parameters still come from `module`. */
  forward?: (...inputs: Tensor[]) => Tensor | Tensor[];
}

const OPSET = 13;

type Arg = TraceDescription['code'][number]['args'][number];

interface NodeOut {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, number | number[] | string>;
}

class GraphBuilder {
  readonly nodes: NodeOut[] = [];
  readonly initializers = new Map<string, { dims: number[]; dataType: number; rawData: Uint8Array }>();
  private counter = 0;
  constructor(
    private readonly d: TraceDescription,
    private readonly constNames: string[],
    private readonly slotNames: Map<number, string>,
  ) {}

  fresh(base: string): string {
    return `${base}_${this.counter++}`;
  }
  node(op: string, inputs: string[], attrs?: NodeOut['attrs'], outputs = [this.fresh(op.toLowerCase())]): string {
    this.nodes.push({ op, inputs, outputs, attrs });
    return outputs[0];
  }
  /** A tensor argument's value name (a computed value or an initializer). */
  value(a: Arg | undefined, what: string): string {
    if (!a) throw new TorchfaceError(`saveOnnx: missing argument ${what}`);
    if (a.slot !== undefined) return this.slotNames.get(a.slot) ?? `v${a.slot}`;
    if (a.const !== undefined) return this.useConst(a.const);
    throw new TorchfaceError(`saveOnnx: argument ${a.name} is not a tensor`);
  }
  optionalValue(a: Arg | undefined): string {
    if (!a || (a.slot === undefined && a.const === undefined)) return '';
    return this.value(a, a.name);
  }
  useConst(i: number): string {
    const name = this.constNames[i];
    if (!this.initializers.has(name)) {
      const t = this.d.consts[i];
      const dt = ONNX_TYPE_OF[t.dtype];
      if (!dt) throw new TorchfaceError(`saveOnnx: a ${t.dtype} tensor cannot be stored in ONNX`);
      const host = t.cpu();
      this.initializers.set(name, { dims: t.shape, dataType: dt, rawData: toBytes(host) });
      host.dispose();
    }
    return name;
  }
  ints(values: number[], base = 'shape'): string {
    const name = this.fresh(base);
    this.initializers.set(name, { dims: [values.length], dataType: 7, rawData: new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(Math.trunc(v)))).buffer) });
    return name;
  }
  scalar(v: number, dataType = 1): string {
    const name = this.fresh('scalar');
    const raw = dataType === 7 ? new Uint8Array(BigInt64Array.from([BigInt(v)]).buffer) : dataType === 11 ? new Uint8Array(Float64Array.from([v]).buffer) : new Uint8Array(Float32Array.from([v]).buffer);
    this.initializers.set(name, { dims: [], dataType, rawData: raw });
    return name;
  }
}

const num = (a: Arg | undefined, d: number): number => (a && typeof a.value === 'number' ? a.value : a && typeof a.value === 'boolean' ? Number(a.value) : d);
const list = (a: Arg | undefined, d: number[] = []): number[] => (a && Array.isArray(a.value) ? (a.value as number[]) : a && typeof a.value === 'number' ? [a.value] : d);
const isTensorArg = (a: Arg | undefined) => !!a && (a.slot !== undefined || a.const !== undefined);

/**
 * Writes an ONNX file computing module.forward (or options.forward) on inputs
 * shaped like exampleInputs. The module is traced in its current mode: call
 * eval() first for inference (BatchNorm with running statistics).
 */
export async function saveOnnx(module: Module, exampleInputs: Tensor[], file: string, options: SaveOnnxOptions = {}): Promise<void> {
  if (!(module instanceof Module)) invalid('module', 'an nn.Module', module);
  if (!Array.isArray(exampleInputs) || !exampleInputs.length || !exampleInputs.every((t) => Tensor.isTensor(t))) invalid('exampleInputs', 'a non-empty array of tensors', exampleInputs);
  const bytes = exportOnnx(module, exampleInputs, options);
  await writeFileAtomic(file, bytes);
}

/** The ONNX model as bytes (see saveOnnx). */
export function exportOnnx(module: Module, exampleInputs: Tensor[], options: SaveOnnxOptions = {}): Uint8Array {
  const dynamicBatch = options.dynamicBatch ?? true;
  const fn = options.forward ?? ((...xs: Tensor[]) => module.forward(...xs) as Tensor | Tensor[]);
  const named = [...module.namedParameters(), ...module.namedBuffers()];
  const traced = trace(fn, exampleInputs);
  const d = noGrad(() => traced.describe(named.map(([, t]) => t)));
  try {
    const inputNames = options.inputNames ?? exampleInputs.map((_, i) => (exampleInputs.length === 1 ? 'input' : `input${i}`));
    const outputCount = d.outputs.length;
    const outputNames = options.outputNames ?? Array.from({ length: outputCount }, (_, i) => (outputCount === 1 ? 'output' : `output${i}`));
    if (inputNames.length !== exampleInputs.length) invalid('options.inputNames', `${exampleInputs.length} names`, inputNames);
    if (outputNames.length !== outputCount) invalid('options.outputNames', `${outputCount} names`, outputNames);
    const constNames = d.consts.map((_, i) => (d.constOf[i] >= 0 ? named[d.constOf[i]][0] : `const_${i}`));
    const slotNames = new Map<number, string>(inputNames.map((n, i) => [i, n]));
    const g = new GraphBuilder(d, constNames, slotNames);
    const batch = exampleInputs[0].shape[0];
    // Shapes of every slot, for ops whose ONNX form needs them (the trace ran on real tensors).
    const shapes = new Map<number, number[]>(exampleInputs.map((t, i) => [i, t.shape]));
    const shapeOf = (a: Arg): number[] => (a.slot !== undefined ? shapes.get(a.slot) ?? [] : a.const !== undefined ? d.consts[a.const].shape : []);
    for (const ins of d.code) {
      const out = `v${ins.outs[0]}`;
      const outShape = convert(g, ins.op, ins.args, out, { shapeOf, batch, dynamicBatch });
      ins.outs.forEach((s) => s >= 0 && shapes.set(s, outShape));
    }
    // Graph outputs: rename the final values (an Identity when an output is an input or a constant).
    d.outputs.forEach((a, i) => {
      const src = g.value(a, `output ${i}`);
      g.node('Identity', [src], undefined, [outputNames[i]]);
    });
    const P = onnxProto();
    const dimsOf = (shape: number[]) => ({ dim: shape.map((v, k) => (k === 0 && dynamicBatch ? { dimParam: 'batch' } : { dimValue: v })) });
    const outShapes = d.outputs.map((a) => shapeOf(a));
    const valueInfo = (name: string, shape: number[], dtype: number) => ({ name, type: { tensorType: { elemType: dtype, shape: dimsOf(shape) } } });
    const model = {
      irVersion: 7,
      producerName: 'torchface',
      producerVersion: packageVersion(),
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: module.constructor.name,
        node: g.nodes.map((n, k) => ({
          name: `${n.op}_${k}`,
          opType: n.op,
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attrs ?? {}).map(([name, v]) =>
            typeof v === 'string' ? { name, type: 3, s: Buffer.from(v) } : Array.isArray(v) ? { name, type: 7, ints: v } : Number.isInteger(v) && !FLOAT_ATTRS.has(name) ? { name, type: 2, i: v } : { name, type: 1, f: v },
          ),
        })),
        initializer: [...g.initializers.entries()].map(([name, t]) => ({ name, dims: t.dims, dataType: t.dataType, rawData: t.rawData })),
        input: exampleInputs.map((t, i) => valueInfo(inputNames[i], t.shape, ONNX_TYPE_OF[t.dtype] ?? 1)),
        output: outputNames.map((n, i) => valueInfo(n, outShapes[i], 1)),
      },
    };
    const msg = P.ModelProto.fromObject(model);
    return P.ModelProto.encode(msg).finish() as Uint8Array;
  } finally {
    for (const t of d.consts) t.dispose();
  }
}

// Attributes that are floats even when their value is an integer.
const FLOAT_ATTRS = new Set(['alpha', 'beta', 'epsilon', 'momentum', 'value', 'min', 'max']);

interface Ctx {
  shapeOf: (a: Arg) => number[];
  batch: number;
  dynamicBatch: boolean;
}

const convPads = (padding: number[], k: number) => {
  const p = padding.length === 1 ? new Array(k).fill(padding[0]) : padding;
  return [...p, ...p];
};
const expandK = (v: number[], k: number) => (v.length === 1 ? new Array(k).fill(v[0]) : v);

/** Emits the ONNX nodes of one ATen call writing `out`; returns the output's shape. */
function convert(g: GraphBuilder, op: string, args: Arg[], out: string, c: Ctx): number[] {
  const A = (name: string) => args.find((a) => a.name === name);
  const x = () => g.value(args[0], 'input');
  const xs = () => c.shapeOf(args[0]);
  const binaryOp = (onnx: string): number[] => {
    const other = args[1];
    let b = isTensorArg(other) ? g.value(other, 'other') : g.scalar(num(other, 0));
    const alpha = num(A('alpha'), 1);
    if (alpha !== 1) b = g.node('Mul', [b, g.scalar(alpha)]);
    g.node(onnx, [x(), b], undefined, [out]);
    return broadcast(xs(), isTensorArg(other) ? c.shapeOf(other) : []);
  };
  const unary = (onnx: string, attrs?: NodeOut['attrs']): number[] => {
    g.node(onnx, [x()], attrs, [out]);
    return xs();
  };
  switch (op) {
    case 'aten::conv1d':
    case 'aten::conv2d':
    case 'aten::conv3d':
    case 'aten::conv1d.padding':
    case 'aten::conv2d.padding':
    case 'aten::conv3d.padding': {
      const wShape = c.shapeOf(args[1]);
      const k = wShape.length - 2;
      const stride = expandK(list(A('stride'), [1]), k);
      const dilation = expandK(list(A('dilation'), [1]), k);
      const attrs: NodeOut['attrs'] = { kernel_shape: wShape.slice(2), strides: stride, dilations: dilation, group: num(A('groups'), 1) };
      const padding = A('padding');
      if (padding && typeof padding.value === 'string') attrs.auto_pad = padding.value === 'same' ? 'SAME_UPPER' : 'VALID';
      else attrs.pads = convPads(list(padding, [0]), k);
      const inputs = [x(), g.value(args[1], 'weight')];
      if (isTensorArg(args[2])) inputs.push(g.value(args[2], 'bias'));
      g.node('Conv', inputs, attrs, [out]);
      const s = xs();
      const pads = (attrs.pads as number[] | undefined) ?? new Array(2 * k).fill(0);
      const outSpatial = s.slice(2).map((n, i) =>
        attrs.auto_pad === 'SAME_UPPER' ? Math.ceil(n / stride[i]) : Math.floor((n + pads[i] + pads[i + k] - dilation[i] * (wShape[2 + i] - 1) - 1) / stride[i]) + 1,
      );
      return [s[0], wShape[0], ...outSpatial];
    }
    case 'aten::batch_norm': {
      if (num(A('training'), 0)) throw new UnsupportedOperatorError('aten::batch_norm (training)', 'saveOnnx', OPSET, 'call module.eval() before exporting');
      const ch = xs()[1];
      const scale = isTensorArg(A('weight')) ? g.value(A('weight'), 'weight') : g.node('ConstantOfShape', [g.ints([ch])], {});
      const bias = isTensorArg(A('bias')) ? g.value(A('bias'), 'bias') : g.node('Sub', [scale, scale]);
      g.node('BatchNormalization', [x(), scale, bias, g.value(A('running_mean'), 'running_mean'), g.value(A('running_var'), 'running_var')], { epsilon: num(A('eps'), 1e-5) }, [out]);
      return xs();
    }
    case 'aten::relu':
    case 'aten::relu_':
      return unary('Relu');
    case 'aten::sigmoid':
    case 'aten::sigmoid_':
      return unary('Sigmoid');
    case 'aten::tanh':
    case 'aten::tanh_':
      return unary('Tanh');
    case 'aten::exp':
      return unary('Exp');
    case 'aten::log':
      return unary('Log');
    case 'aten::sqrt':
      return unary('Sqrt');
    case 'aten::neg':
      return unary('Neg');
    case 'aten::abs':
      return unary('Abs');
    case 'aten::erf':
      return unary('Erf');
    case 'aten::reciprocal':
      return unary('Reciprocal');
    case 'aten::rsqrt': {
      g.node('Reciprocal', [g.node('Sqrt', [x()])], undefined, [out]);
      return xs();
    }
    case 'aten::hardswish':
    case 'aten::hardswish_':
      return unary('HardSwish');
    case 'aten::hardsigmoid':
    case 'aten::hardsigmoid_':
      return unary('HardSigmoid', { alpha: 1 / 6, beta: 0.5 });
    case 'aten::leaky_relu':
    case 'aten::leaky_relu_':
      return unary('LeakyRelu', { alpha: num(A('negative_slope'), 0.01) });
    case 'aten::elu':
      return unary('Elu', { alpha: num(A('alpha'), 1) });
    case 'aten::prelu': {
      const s = xs();
      let slope = g.value(args[1], 'weight');
      // torch's weight is [C]; ONNX broadcasts from the right: make it [C, 1, ...].
      if (s.length > 2) slope = g.node('Reshape', [slope, g.ints([-1, ...new Array(s.length - 2).fill(1)])]);
      g.node('PRelu', [x(), slope], undefined, [out]);
      return s;
    }
    case 'aten::hardtanh':
    case 'aten::hardtanh_':
      g.node('Clip', [x(), g.scalar(num(A('min_val'), -1)), g.scalar(num(A('max_val'), 1))], undefined, [out]);
      return xs();
    case 'aten::clamp':
    case 'aten::clamp_':
    case 'aten::clamp_min':
    case 'aten::clamp_max': {
      const lo = op === 'aten::clamp_max' ? undefined : A('min');
      const hi = op === 'aten::clamp_min' ? undefined : A('max');
      const bound = (a: Arg | undefined) => (isTensorArg(a) ? g.value(a, 'bound') : a && typeof a.value === 'number' ? g.scalar(a.value) : '');
      const inputs = [x(), bound(lo), bound(hi)];
      while (inputs[inputs.length - 1] === '') inputs.pop();
      g.node('Clip', inputs, undefined, [out]);
      return xs();
    }
    case 'aten::add.Tensor':
    case 'aten::add_.Tensor':
    case 'aten::add.Scalar':
    case 'aten::add_.Scalar':
      return binaryOp('Add');
    case 'aten::sub.Tensor':
    case 'aten::sub_.Tensor':
    case 'aten::sub.Scalar':
    case 'aten::sub_.Scalar':
      return binaryOp('Sub');
    case 'aten::mul.Tensor':
    case 'aten::mul_.Tensor':
    case 'aten::mul.Scalar':
    case 'aten::mul_.Scalar':
      return binaryOp('Mul');
    case 'aten::div.Tensor':
    case 'aten::div_.Tensor':
    case 'aten::div.Scalar':
    case 'aten::div_.Scalar':
      return binaryOp('Div');
    case 'aten::pow.Tensor_Scalar':
      g.node('Pow', [x(), g.scalar(num(args[1], 1))], undefined, [out]);
      return xs();
    case 'aten::max_pool1d':
    case 'aten::max_pool2d':
    case 'aten::max_pool3d':
    case 'aten::avg_pool1d':
    case 'aten::avg_pool2d':
    case 'aten::avg_pool3d': {
      const k = op.endsWith('1d') ? 1 : op.endsWith('3d') ? 3 : 2;
      const kernel = expandK(list(A('kernel_size')), k);
      const stride = list(A('stride')).length ? expandK(list(A('stride')), k) : kernel;
      const padding = expandK(list(A('padding'), [0]), k);
      const ceil = num(A('ceil_mode'), 0);
      const isMax = op.includes('max_pool');
      const attrs: NodeOut['attrs'] = { kernel_shape: kernel, strides: stride, pads: [...padding, ...padding], ceil_mode: ceil };
      if (isMax) attrs.dilations = expandK(list(A('dilation'), [1]), k);
      else {
        attrs.count_include_pad = num(A('count_include_pad'), 1);
        if (A('divisor_override') && typeof A('divisor_override')!.value === 'number') throw new UnsupportedOperatorError(op, 'saveOnnx', OPSET, 'divisor_override');
      }
      g.node(isMax ? 'MaxPool' : 'AveragePool', [x()], attrs, [out]);
      const s = xs();
      const dil = (attrs.dilations as number[] | undefined) ?? new Array(k).fill(1);
      const round = ceil ? Math.ceil : Math.floor;
      return [s[0], s[1], ...s.slice(2).map((n, i) => round((n + 2 * padding[i] - dil[i] * (kernel[i] - 1) - 1) / stride[i]) + 1)];
    }
    case 'aten::adaptive_avg_pool1d':
    case 'aten::adaptive_avg_pool2d':
    case 'aten::adaptive_avg_pool3d': {
      const s = xs();
      const size = list(A('output_size'));
      if (size.every((v) => v === 1)) g.node('GlobalAveragePool', [x()], undefined, [out]);
      else {
        const spatial = s.slice(2);
        if (!spatial.every((n, i) => n % size[i] === 0)) throw new UnsupportedOperatorError(op, 'saveOnnx', OPSET, `output size [${size}] not dividing the input [${spatial}]`);
        const kernel = spatial.map((n, i) => n / size[i]);
        g.node('AveragePool', [x()], { kernel_shape: kernel, strides: kernel }, [out]);
      }
      return [s[0], s[1], ...size];
    }
    case 'aten::mean.dim':
    case 'aten::sum.dim_IntList':
    case 'aten::linalg_vector_norm':
    case 'aten::norm.ScalarOpt_dim': {
      const s = xs();
      const dims = list(A('dim'), s.map((_, i) => i)).map((v) => (v < 0 ? v + s.length : v));
      const keep = num(A('keepdim'), 0);
      if (op === 'aten::sum.dim_IntList') g.node('ReduceSum', [x(), g.ints(dims, 'axes')], { keepdims: keep }, [out]);
      else if (op === 'aten::mean.dim') g.node('ReduceMean', [x()], { axes: dims, keepdims: keep }, [out]);
      else {
        const ord = num(A('ord') ?? A('p'), 2);
        if (ord !== 2 && ord !== 1) throw new UnsupportedOperatorError(op, 'saveOnnx', OPSET, `ord ${ord}`);
        g.node(ord === 2 ? 'ReduceL2' : 'ReduceL1', [x()], { axes: dims, keepdims: keep }, [out]);
      }
      return keep ? s.map((n, i) => (dims.includes(i) ? 1 : n)) : s.filter((_, i) => !dims.includes(i));
    }
    case 'aten::sum':
    case 'aten::mean':
      g.node(op === 'aten::sum' ? 'ReduceSum' : 'ReduceMean', [x()], { keepdims: 0 }, [out]);
      return [];
    case 'aten::linear': {
      const s = xs();
      const w = c.shapeOf(args[1]);
      const bias = isTensorArg(args[2]) ? g.value(args[2], 'bias') : null;
      if (s.length === 2) g.node('Gemm', bias ? [x(), g.value(args[1], 'weight'), bias] : [x(), g.value(args[1], 'weight')], { transB: 1 }, [out]);
      else {
        const mm = g.node('MatMul', [x(), g.node('Transpose', [g.value(args[1], 'weight')], { perm: [1, 0] })]);
        if (bias) g.node('Add', [mm, bias], undefined, [out]);
        else g.node('Identity', [mm], undefined, [out]);
      }
      return [...s.slice(0, -1), w[0]];
    }
    case 'aten::matmul':
    case 'aten::mm':
    case 'aten::bmm': {
      const a = xs();
      const b = c.shapeOf(args[1]);
      g.node('MatMul', [x(), g.value(args[1], 'other')], undefined, [out]);
      return [...a.slice(0, -1), b[b.length - 1]];
    }
    case 'aten::flatten.using_ints': {
      const s = xs();
      const start = num(A('start_dim'), 0) < 0 ? num(A('start_dim'), 0) + s.length : num(A('start_dim'), 0);
      const end = num(A('end_dim'), -1) < 0 ? num(A('end_dim'), -1) + s.length : num(A('end_dim'), -1);
      const merged = s.slice(start, end + 1).reduce((p, q) => p * q, 1);
      const target = [...s.slice(0, start), merged, ...s.slice(end + 1)];
      return reshape(g, x(), s, target, out, c);
    }
    case 'aten::view':
    case 'aten::reshape':
    case 'aten::_unsafe_view': {
      const s = xs();
      const size = list(A('size') ?? A('shape'));
      const total = s.reduce((p, q) => p * q, 1);
      const known = size.filter((v) => v !== -1).reduce((p, q) => p * q, 1);
      return reshape(g, x(), s, size.map((v) => (v === -1 ? total / known : v)), out, c, size);
    }
    case 'aten::permute': {
      const perm = list(A('dims')).map((v) => (v < 0 ? v + xs().length : v));
      g.node('Transpose', [x()], { perm }, [out]);
      return perm.map((p) => xs()[p]);
    }
    case 'aten::transpose.int':
    case 'aten::t': {
      const s = xs();
      const d0 = op === 'aten::t' ? 0 : (num(A('dim0'), 0) + s.length) % s.length;
      const d1 = op === 'aten::t' ? 1 : (num(A('dim1'), 1) + s.length) % s.length;
      const perm = s.map((_, i) => (i === d0 ? d1 : i === d1 ? d0 : i));
      g.node('Transpose', [x()], { perm }, [out]);
      return perm.map((p) => s[p]);
    }
    case 'aten::unsqueeze': {
      const s = xs();
      const d = num(A('dim'), 0) < 0 ? num(A('dim'), 0) + s.length + 1 : num(A('dim'), 0);
      g.node('Unsqueeze', [x(), g.ints([d], 'axes')], undefined, [out]);
      return [...s.slice(0, d), 1, ...s.slice(d)];
    }
    case 'aten::squeeze.dim':
    case 'aten::squeeze': {
      const s = xs();
      const dims = op === 'aten::squeeze' ? s.map((n, i) => (n === 1 ? i : -1)).filter((i) => i >= 0) : [(num(A('dim'), 0) + s.length) % s.length].filter((i) => s[i] === 1);
      if (!dims.length) g.node('Identity', [x()], undefined, [out]);
      else g.node('Squeeze', [x(), g.ints(dims, 'axes')], undefined, [out]);
      return s.filter((_, i) => !dims.includes(i));
    }
    case 'aten::cat': {
      const items = args[0].list ?? [];
      const names = items.map((e) => (e.slot !== undefined ? `v${e.slot}` : g.useConst(e.const!)));
      const shapes0 = items.map((e) => (e.slot !== undefined ? c.shapeOf({ name: '', slot: e.slot }) : c.shapeOf({ name: '', const: e.const })));
      const rank = shapes0[0].length;
      const dim = (num(A('dim'), 0) + rank) % rank;
      g.node('Concat', names, { axis: dim }, [out]);
      return shapes0[0].map((n, i) => (i === dim ? shapes0.reduce((acc, s) => acc + s[i], 0) : n));
    }
    case 'aten::softmax.int':
    case 'aten::_softmax':
    case 'aten::log_softmax.int':
    case 'aten::_log_softmax': {
      const s = xs();
      const dim = (num(A('dim'), -1) + s.length) % s.length;
      g.node(op.includes('log') ? 'LogSoftmax' : 'Softmax', [x()], { axis: dim }, [out]);
      return s;
    }
    case 'aten::dropout':
    case 'aten::contiguous':
    case 'aten::clone':
    case 'aten::detach':
    case 'aten::alias':
      g.node('Identity', [x()], undefined, [out]);
      return xs();
    case 'aten::constant_pad_nd':
    case 'aten::pad': {
      const s = xs();
      const pad = list(A('pad'));
      // torch: [last_begin, last_end, prev_begin, prev_end, ...] -> ONNX: [begins..., ends...] over all dims.
      const begins = new Array(s.length).fill(0);
      const ends = new Array(s.length).fill(0);
      for (let i = 0; i < pad.length / 2; i++) {
        begins[s.length - 1 - i] = pad[2 * i];
        ends[s.length - 1 - i] = pad[2 * i + 1];
      }
      const mode = op === 'aten::pad' ? String(A('mode')?.value ?? 'constant') : 'constant';
      const onnxMode = mode === 'replicate' ? 'edge' : mode;
      if (!['constant', 'reflect', 'edge'].includes(onnxMode)) throw new UnsupportedOperatorError(op, 'saveOnnx', OPSET, `mode ${mode}`);
      const inputs = [x(), g.ints([...begins, ...ends], 'pads')];
      if (onnxMode === 'constant') inputs.push(g.scalar(num(A('value'), 0)));
      g.node('Pad', inputs, { mode: onnxMode }, [out]);
      return s.map((n, i) => n + begins[i] + ends[i]);
    }
    case 'aten::upsample_nearest1d.vec':
    case 'aten::upsample_nearest2d.vec':
    case 'aten::upsample_bilinear2d.vec':
    case 'aten::upsample_linear1d.vec': {
      const s = xs();
      const size = list(A('output_size'));
      const scales = list(A('scale_factors'));
      const outSpatial = size.length ? size : s.slice(2).map((n, i) => Math.floor(n * scales[i]));
      const nearest = op.includes('nearest');
      const attrs: NodeOut['attrs'] = nearest
        ? { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }
        : { mode: 'linear', coordinate_transformation_mode: num(A('align_corners'), 0) ? 'align_corners' : 'pytorch_half_pixel' };
      // Scales, not sizes: they stay right for any batch size.
      const sc = [1, 1, ...(scales.length ? scales : outSpatial.map((n, i) => n / s[2 + i]))];
      const scalesName = g.fresh('scales');
      g.initializers.set(scalesName, { dims: [sc.length], dataType: 1, rawData: new Uint8Array(Float32Array.from(sc).buffer) });
      g.node('Resize', [x(), '', scalesName], attrs, [out]);
      return [s[0], s[1], ...outSpatial];
    }
    case 'aten::slice.Tensor':
    case 'aten::narrow': {
      const s = xs();
      const dim = (num(A('dim'), 0) + s.length) % s.length;
      const n = s[dim];
      let start = num(A('start'), 0);
      let end: number;
      let step = 1;
      if (op === 'aten::narrow') end = start + num(A('length'), 0);
      else {
        end = A('end') && typeof A('end')!.value === 'number' ? (A('end')!.value as number) : n;
        step = num(A('step'), 1);
      }
      if (start < 0) start += n;
      if (end < 0) end += n;
      end = Math.min(end, n);
      g.node('Slice', [x(), g.ints([start], 'starts'), g.ints([end], 'ends'), g.ints([dim], 'axes'), g.ints([step], 'steps')], undefined, [out]);
      return s.map((v, i) => (i === dim ? Math.max(0, Math.ceil((end - start) / step)) : v));
    }
    case 'aten::select.int': {
      const s = xs();
      const dim = (num(A('dim'), 0) + s.length) % s.length;
      g.node('Gather', [x(), g.scalar(num(A('index'), 0), 7)], { axis: dim }, [out]);
      return s.filter((_, i) => i !== dim);
    }
    case 'aten::index_select': {
      const s = xs();
      const dim = (num(A('dim'), 0) + s.length) % s.length;
      g.node('Gather', [x(), g.value(A('index'), 'index')], { axis: dim }, [out]);
      return s.map((v, i) => (i === dim ? c.shapeOf(A('index')!)[0] : v));
    }
    case 'aten::expand': {
      const s = xs();
      const size = list(A('size'));
      const target = size.map((v, i) => (v === -1 ? s[i - (size.length - s.length)] : v));
      g.node('Expand', [x(), g.ints(target.map((v, i) => (size[i] === -1 ? 1 : v)))], undefined, [out]);
      return target;
    }
    default:
      throw new UnsupportedOperatorError(op, 'saveOnnx', OPSET, 'no ONNX mapping for this ATen operator');
  }
}

function broadcast(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  const pa = [...new Array(n - a.length).fill(1), ...a];
  const pb = [...new Array(n - b.length).fill(1), ...b];
  return pa.map((v, i) => Math.max(v, pb[i]));
}

/** Reshape to `target`; with dynamicBatch, a leading batch dimension is copied from the input (ONNX's 0). */
function reshape(g: GraphBuilder, x: string, s: number[], target: number[], out: string, c: Ctx, asGiven?: number[]): number[] {
  let shape = asGiven ?? target;
  if (c.dynamicBatch && s[0] === c.batch && target[0] === c.batch) {
    // The rest must then not use -1 for a dimension that depends on the batch: give it explicitly.
    shape = [0, ...target.slice(1)];
  }
  g.node('Reshape', [x, g.ints(shape)], undefined, [out]);
  return target;
}
