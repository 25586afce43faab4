/**
 * TensorFlow.js graph models (`model.json` with `format: "graph-model"` and its
 * `.bin` weight shards) imported as trainable torchface modules.
 *
 * `await loadTfjsGraphModel(file)` parses `modelTopology.node` (the GraphDef
 * nodes the tfjs converter writes: `name`, `op`, `input`, `attr`), decodes the
 * weights with the same reader as loadTfjsWeights (float32 / int32, uint8 /
 * uint16 / float16 quantization), orders the nodes the graph's outputs need
 * topologically and maps each TF op to torchface ops. The result is an
 * nn.Module: `forward(...inputs)` runs the graph with autograd, the graph's
 * float constants are Parameters (scalars: buffers) named after their TF node,
 * so `stateDict()` / `saveStateDict` / `loadStateDict` and the optimizers work.
 *
 * Semantics follow tfjs (tfjs-converter 4.22), the reference runtime:
 *  - inputs: the signature's inputs if the model.json has a signature
 *    (`signature` or `userDefinedMetadata.signature`), else the Placeholders in
 *    node order; outputs: the signature's outputs in its order, else every
 *    node no other node reads (model.execute(x) gives the same list);
 *  - NHWC at the edges, exactly as tfjs gives them: every value keeps its TF
 *    layout; convolutions and pooling permute to NCHW around the libtorch call
 *    (a view), bias add and activation run after the permute back;
 *  - SAME padding is explicit and asymmetric as in TF (the odd extra row /
 *    column at the bottom / right, which matters at stride 2); EXPLICIT
 *    paddings are read from `explicit_paddings`;
 *  - the fused ops `_FusedConv2D`, `FusedDepthwiseConv2dNative`, `_FusedMatMul`
 *    with `fused_ops` [BiasAdd, activation] (Relu, Relu6, Elu, Selu, Sigmoid,
 *    Tanh, LeakyRelu with `leakyrelu_alpha`, Prelu with its alpha argument).
 *
 * Parameters keep the TF layout and shapes of the weights manifest (conv
 * filters HWIO, depthwise filters [kh, kw, C, M], MatMul weights [in, out]):
 * the permutes to libtorch's layouts are part of the forward pass (and of its
 * backward). State-dict keys are the TF node names (`/` kept; a `.` becomes
 * `_`, as Module names may not hold dots).
 *
 * Errors, all at load time: a malformed model.json or weights is a
 * FileFormatError; an op (or an attribute value, such as NCHW data_format or
 * fused FusedBatchNorm) this importer does not implement is an
 * UnsupportedTfjsOpError (an ArgumentError, code ERR_UNSUPPORTED_OP) naming the
 * op, the node, and the model's format / producer version.
 */
import { ArgumentError, FileAccessError, FileFormatError, TorchError, invalid } from '../core/errors';
import { traced } from '../core/jit';
import { Module } from '../nn';
import * as F from '../ops';
import { Device, DType, Op, Tensor, noGrad, ones, tensor, tidy } from '../core';
import { readFileChecked } from './atomic';
import { MAX_MANIFEST_BYTES, TfjsTensor, readTfjsWeights } from './tfjs';

// model.json structures ---------------------------------------------------------------

interface AttrList {
  s?: string[];
  i?: (string | number)[];
  f?: number[];
  b?: boolean[];
  type?: string[];
}
interface AttrValue {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  list?: AttrList;
  shape?: { dim?: { size?: string | number }[]; unknownRank?: boolean };
  tensor?: unknown;
}
export interface TfjsGraphNodeDef {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, AttrValue>;
  device?: string;
}
interface SignatureEntry {
  name?: string;
}
interface Signature {
  inputs?: Record<string, SignatureEntry>;
  outputs?: Record<string, SignatureEntry>;
}
interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  modelTopology?: { node?: TfjsGraphNodeDef[]; library?: { function?: unknown[] }; versions?: { producer?: number; minConsumer?: number } };
  weightsManifest?: unknown;
  signature?: Signature;
  userDefinedMetadata?: { signature?: Signature };
}

/** An op (or attribute value) of a graph model that the importer does not implement. Raised at load time. */
export class UnsupportedTfjsOpError extends ArgumentError {
  override readonly code: string = 'ERR_UNSUPPORTED_OP';
  constructor(
    readonly op: string,
    readonly node: string,
    readonly formatVersion: string,
    detail?: string,
    file?: string,
  ) {
    super(`node '${node}'`, 'an op torchface implements', op);
    this.message = `${file ? `${file}: ` : ''}unsupported TensorFlow.js op '${op}' at node '${node}'${detail ? ` (${detail})` : ''} [${formatVersion}]; supported ops: ${SUPPORTED_OPS.join(', ')}`;
  }
}

// Attribute readers ------------------------------------------------------------------------------

const b64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

/** A value that is either produced at run time (a tensor) or known at load time (a constant). */
type Value = { kind: 'tensor'; node: string; index: number } | { kind: 'const'; node: string };

interface Ctx {
  node: TfjsGraphNodeDef;
  /** The node's data inputs (control inputs `^x` dropped). */
  inputs: Value[];
  module: TfjsGraphModule;
  fail(detail: string, op?: string): never;
}

function attr(n: TfjsGraphNodeDef, key: string): AttrValue | undefined {
  return n.attr?.[key];
}
function attrString(n: TfjsGraphNodeDef, key: string, dflt?: string): string {
  const a = attr(n, key);
  if (a?.s === undefined) {
    if (dflt === undefined) throw new FileFormatError(`node '${n.name}' (${n.op}) lacks attribute '${key}'`);
    return dflt;
  }
  return b64(a.s);
}
function attrInts(n: TfjsGraphNodeDef, key: string, dflt?: number[]): number[] {
  const a = attr(n, key);
  const l = a?.list?.i;
  if (!l) {
    if (dflt === undefined) throw new FileFormatError(`node '${n.name}' (${n.op}) lacks list attribute '${key}'`);
    return dflt;
  }
  return l.map((v) => {
    const x = Number(v);
    if (!Number.isSafeInteger(x)) throw new FileFormatError(`node '${n.name}' (${n.op}): attribute '${key}' holds a non-integer ${JSON.stringify(v)}`);
    return x;
  });
}
function attrInt(n: TfjsGraphNodeDef, key: string, dflt: number): number {
  const a = attr(n, key);
  if (a?.i === undefined) return dflt;
  const x = Number(a.i);
  if (!Number.isSafeInteger(x)) throw new FileFormatError(`node '${n.name}' (${n.op}): attribute '${key}' is not an integer`);
  return x;
}
function attrFloat(n: TfjsGraphNodeDef, key: string, dflt: number): number {
  const a = attr(n, key);
  return typeof a?.f === 'number' ? a.f : dflt;
}
function attrBool(n: TfjsGraphNodeDef, key: string, dflt: boolean): boolean {
  const a = attr(n, key);
  return typeof a?.b === 'boolean' ? a.b : dflt;
}
function attrStrings(n: TfjsGraphNodeDef, key: string): string[] {
  return (attr(n, key)?.list?.s ?? []).map(b64);
}

// Padding ---------------------------------------------------------------------------------------

/** TF 'SAME' padding of one spatial dim for an effective window k: [before, after] (the extra pixel after). */
function samePad(size: number, k: number, s: number): [number, number] {
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

interface Window {
  padding: 'SAME' | 'VALID' | 'EXPLICIT';
  /** [top, bottom, left, right] for EXPLICIT */
  explicit: number[];
  strides: [number, number];
  dilations: [number, number];
}

function readWindow(c: Ctx, stridesKey = 'strides'): Window {
  const n = c.node;
  const format = attrString(n, 'data_format', 'NHWC');
  if (format !== 'NHWC') c.fail(`data_format '${format}' (only NHWC)`);
  const padding = attrString(n, 'padding');
  if (padding !== 'SAME' && padding !== 'VALID' && padding !== 'EXPLICIT') c.fail(`padding '${padding}'`);
  const strides = attrInts(n, stridesKey, [1, 1, 1, 1]);
  const dil = attrInts(n, 'dilations', [1, 1, 1, 1]);
  if (strides.length !== 4 || strides[0] !== 1 || strides[3] !== 1) c.fail(`strides [${strides}] (batch and channel strides must be 1)`);
  if (dil.length !== 4 || dil[0] !== 1 || dil[3] !== 1) c.fail(`dilations [${dil}]`);
  let explicit: number[] = [0, 0, 0, 0];
  if (padding === 'EXPLICIT') {
    const e = attrInts(n, 'explicit_paddings', []);
    if (e.length !== 8 || e[0] || e[1] || e[6] || e[7]) c.fail(`explicit_paddings [${e}]`);
    explicit = [e[2], e[3], e[4], e[5]];
  }
  return { padding, explicit, strides: [strides[1], strides[2]], dilations: [dil[1], dil[2]] };
}

/** [left, right, top, bottom] padding of an NCHW tensor x for window kh x kw. */
function padsFor(w: Window, h: number, wd: number, kh: number, kw: number): number[] {
  if (w.padding === 'VALID') return [0, 0, 0, 0];
  if (w.padding === 'EXPLICIT') return [w.explicit[2], w.explicit[3], w.explicit[0], w.explicit[1]];
  const [t, b] = samePad(h, (kh - 1) * w.dilations[0] + 1, w.strides[0]);
  const [l, r] = samePad(wd, (kw - 1) * w.dilations[1] + 1, w.strides[1]);
  return [l, r, t, b];
}

const toNCHW = (x: Tensor): Tensor => x.permute([0, 3, 1, 2]);
const toNHWC = (x: Tensor): Tensor => x.permute([0, 2, 3, 1]);

function padded(x: Tensor, pads: number[], value = 0): Tensor {
  return pads.some((p) => p !== 0) ? F.pad(x, pads, 'constant', value) : x;
}

// Activations -------------------------------------------------------------------------------------

type Activation = (x: Tensor, alpha: Tensor | null) => Tensor;

const SELU = new Op('aten::selu');

const preluTf = (x: Tensor, alpha: Tensor): Tensor => F.where(F.lt(x, 0), F.mul(x, alpha), x);

const ACTIVATIONS: Record<string, Activation> = {
  relu: (x) => F.relu(x),
  relu6: (x) => F.clamp(x, 0, 6),
  elu: (x) => F.elu(x),
  selu: (x) => SELU.t(x.handle),
  sigmoid: (x) => F.sigmoid(x),
  tanh: (x) => F.tanh(x),
  prelu: (x, a) => preluTf(x, a!),
};

/** fused_ops of a fused conv / matmul: [BiasAdd?, activation?] -> which inputs are bias and prelu alpha. */
function readFused(c: Ctx, firstExtra: number): { bias: Value | null; alpha: Value | null; act: Activation | null } {
  const ops = attrStrings(c.node, 'fused_ops').map((s) => s.toLowerCase());
  const numArgs = attrInt(c.node, 'num_args', c.inputs.length - firstExtra);
  let i = 0;
  let bias: Value | null = null;
  let alpha: Value | null = null;
  let act: Activation | null = null;
  const extra = c.inputs.slice(firstExtra);
  if (ops[i] === 'biasadd') {
    if (extra.length < 1) c.fail('BiasAdd without a bias input');
    bias = extra[0];
    i++;
  } else if (ops[i] === 'fusedbatchnorm') {
    c.fail('fused FusedBatchNorm (tfjs does not support it either)', `${c.node.op}+FusedBatchNorm`);
  }
  const a = ops[i];
  if (a !== undefined) {
    if (a === 'leakyrelu') {
      const slope = attrFloat(c.node, 'leakyrelu_alpha', 0.2);
      act = (x) => F.leakyRelu(x, slope);
    } else if (Object.hasOwn(ACTIVATIONS, a)) act = ACTIVATIONS[a];
    else c.fail(`fused activation '${a}'`, `${c.node.op}+${a}`);
    if (a === 'prelu') {
      alpha = extra[bias ? 1 : 0] ?? null;
      if (!alpha) c.fail('fused Prelu without an alpha input');
    }
    i++;
  }
  if (i < ops.length) c.fail(`fused_ops [${ops}]`);
  if (numArgs !== extra.length) c.fail(`num_args ${numArgs} but ${extra.length} extra inputs`);
  return { bias, alpha, act };
}

// Op implementations ----------------------------------------------------------------------------

/** Run time: looks up tensors of inputs. */
type Get = (v: Value) => Tensor;
/** A compiled node: computes its outputs from earlier values. */
type Kernel = (get: Get) => Tensor[];
type Builder = (c: Ctx) => Kernel;

/** Values known at load time (int32 shapes, axes, paddings): the raw decoded constant. */
function constOf(c: Ctx, i: number, what: string): TfjsTensor {
  const v = c.inputs[i];
  if (!v) c.fail(`missing input ${i} (${what})`);
  if (v.kind !== 'const') c.fail(`${what} computed at run time (input '${v.node}'); only constant ${what}s are supported`);
  return c.module._constData(v.node);
}
function constInts(c: Ctx, i: number, what: string): number[] {
  const t = constOf(c, i, what);
  const out = Array.from(t.data, Number);
  if (!out.every(Number.isInteger)) c.fail(`${what} holds non-integers`);
  return out;
}

function convLike(depthwise: boolean, fused: boolean): Builder {
  return (c) => {
    if (c.inputs.length < 2) c.fail('needs input and filter');
    const w = readWindow(c);
    const [x, f] = c.inputs;
    const { bias, alpha, act } = fused ? readFused(c, 2) : { bias: null, alpha: null, act: null };
    const fshape = c.module._shapeOf(f);
    if (fshape && fshape.length !== 4) c.fail(`a filter of rank ${fshape.length}`);
    const onednnAct = act === ACTIVATIONS.relu ? 'relu' : act === ACTIVATIONS.relu6 ? 'relu6' : null;
    const undilated = w.dilations[0] === 1 && w.dilations[1] === 1;
    let refused = false;
    return (get) => {
      const input = get(x);
      if (input.ndim !== 4) throw new ArgumentError(`input of node '${c.node.name}'`, 'a 4-D NHWC tensor', `shape [${input.shape}]`);
      const filter = get(f);
      const [kh, kw, cin, m] = filter.shape;
      // HWIO -> OIHW; depthwise [kh, kw, C, M] -> [C*M, 1, kh, kw]
      const weight = depthwise ? filter.permute([2, 3, 0, 1]).reshape([cin * m, 1, kh, kw]) : filter.permute([3, 2, 0, 1]);
      const xn = toNCHW(input);
      const pads = padsFor(w, xn.shape[2], xn.shape[3], kh, kw);
      const groups = depthwise ? cin : Math.max(1, Math.round(xn.shape[1] / cin));
      const b = bias ? get(bias) : null;
      // Inference on the CPU: one oneDNN call (the primitive and reordered weight cached, TF's
      // asymmetric padding given as is, relu / relu6 inside it; see onnx.ts "Inference fusion").
      // mobilefacenet batch 16 took 13.6 ms/face through aten, batch 1 10.9.
      if (!refused && undilated && F.onednnInference(input, filter, b)) {
        const xl = xn.contiguous({ channelsLast: true });
        try {
          let y = toNHWC(F.onednnConv2d(xl, weight, b, { stride: w.strides, padding: [pads[2], pads[0], pads[3], pads[1]], groups, layout: 'channelsLast', activation: onednnAct }));
          if (act && !onednnAct) y = act(y, alpha ? get(alpha) : null);
          return [y];
        } catch (e) {
          if (!(e instanceof TorchError)) throw e;
          refused = true; // no optimized oneDNN kernel for this one: aten from now on
        } finally {
          xl.dispose();
        }
      }
      let y = F.conv2d(padded(xn, pads), weight, b, { stride: w.strides, dilation: w.dilations, groups });
      y = toNHWC(y);
      if (act) y = act(y, alpha ? get(alpha) : null);
      return [y];
    };
  };
}

function pool(kind: 'max' | 'avg'): Builder {
  return (c) => {
    const w = readWindow(c);
    const ks = attrInts(c.node, 'ksize');
    if (ks.length !== 4 || ks[0] !== 1 || ks[3] !== 1) c.fail(`ksize [${ks}]`);
    const [kh, kw] = [ks[1], ks[2]];
    if (w.dilations[0] !== 1 || w.dilations[1] !== 1) c.fail('dilated pooling');
    const x = c.inputs[0];
    return (get) => {
      const xn = toNCHW(get(x));
      const pads = padsFor(w, xn.shape[2], xn.shape[3], kh, kw);
      const any = pads.some((p) => p !== 0);
      if (kind === 'max') return [toNHWC(F.maxPool2d(padded(xn, pads, -Infinity), [kh, kw], { stride: w.strides }))];
      const sum = F.avgPool2d(padded(xn, pads), [kh, kw], { stride: w.strides });
      if (!any) return [toNHWC(sum)];
      // TF averages over the window's elements inside the input (the padding does not count).
      const mask = F.pad(ones([1, 1, xn.shape[2], xn.shape[3]], { dtype: xn.dtype, device: xn.device }), pads, 'constant', 0);
      const count = F.avgPool2d(mask, [kh, kw], { stride: w.strides });
      return [toNHWC(F.div(sum, count))];
    };
  };
}

const unaryOp =
  (fn: (x: Tensor) => Tensor): Builder =>
  (c) => {
    const x = c.inputs[0];
    if (!x) c.fail('missing input');
    return (get) => [fn(get(x))];
  };
const binaryOp =
  (fn: (a: Tensor, b: Tensor) => Tensor): Builder =>
  (c) => {
    if (c.inputs.length !== 2) c.fail(`${c.inputs.length} inputs (expected 2)`);
    const [a, b] = c.inputs;
    return (get) => [fn(get(a), get(b))];
  };

/** TF axis (may be negative) -> dim. */
const axisOf = (a: number, rank: number): number => (a < 0 ? a + rank : a);

function reduce(fn: (x: Tensor, dims: number[], keep: boolean) => Tensor): Builder {
  return (c) => {
    const axes = constInts(c, 1, 'reduction axis');
    const keep = attrBool(c.node, 'keep_dims', false);
    const x = c.inputs[0];
    return (get) => {
      const t = get(x);
      const dims = [...new Set(axes.map((a) => axisOf(a, t.ndim)))];
      return [fn(t, dims, keep)];
    };
  };
}

function matmul(fused: boolean): Builder {
  return (c) => {
    const ta = attrBool(c.node, 'transpose_a', false) || attrBool(c.node, 'adj_x', false);
    const tb = attrBool(c.node, 'transpose_b', false) || attrBool(c.node, 'adj_y', false);
    const [a, b] = c.inputs;
    if (!a || !b) c.fail('needs two inputs');
    const { bias, alpha, act } = fused ? readFused(c, 2) : { bias: null, alpha: null, act: null };
    return (get) => {
      let x = get(a);
      let y = get(b);
      if (ta) x = x.transpose(-2, -1);
      if (tb) y = y.transpose(-2, -1);
      let out = F.matmul(x, y);
      if (bias) out = F.add(out, get(bias));
      if (act) out = act(out, alpha ? get(alpha) : null);
      return [out];
    };
  };
}

const ALIAS = new Op('aten::alias');
const AMAX = new Op('aten::amax');
const AMIN = new Op('aten::amin');

const BUILDERS: Record<string, Builder> = {
  Identity: unaryOp((x) => ALIAS.t(x.handle)),
  StopGradient: unaryOp((x) => x.detach()),
  Snapshot: unaryOp((x) => ALIAS.t(x.handle)),
  Conv2D: convLike(false, false),
  _FusedConv2D: convLike(false, true),
  DepthwiseConv2dNative: convLike(true, false),
  DepthwiseConv2d: convLike(true, false),
  FusedDepthwiseConv2dNative: convLike(true, true),
  MatMul: matmul(false),
  BatchMatMul: matmul(false),
  BatchMatMulV2: matmul(false),
  _FusedMatMul: matmul(true),
  MaxPool: pool('max'),
  AvgPool: pool('avg'),
  BiasAdd: (c) => {
    if (attrString(c.node, 'data_format', 'NHWC') !== 'NHWC') c.fail('data_format NCHW');
    return binaryOp(F.add)(c);
  },
  Relu: unaryOp(F.relu),
  Relu6: unaryOp((x) => F.clamp(x, 0, 6)),
  Elu: unaryOp((x) => F.elu(x)),
  Selu: unaryOp(ACTIVATIONS.selu as (x: Tensor) => Tensor),
  LeakyRelu: (c) => {
    const slope = attrFloat(c.node, 'alpha', 0.2);
    return unaryOp((x) => F.leakyRelu(x, slope))(c);
  },
  Prelu: binaryOp(preluTf),
  Sigmoid: unaryOp(F.sigmoid),
  Tanh: unaryOp(F.tanh),
  Softmax: unaryOp((x) => F.softmax(x, -1)),
  LogSoftmax: unaryOp((x) => F.logSoftmax(x, -1)),
  Abs: unaryOp(F.abs),
  Neg: unaryOp(F.neg),
  Exp: unaryOp(F.exp),
  Log: unaryOp(F.log),
  Sqrt: unaryOp(F.sqrt),
  Rsqrt: unaryOp(F.rsqrt),
  Square: unaryOp(F.square),
  Reciprocal: unaryOp(F.reciprocal),
  Add: binaryOp(F.add),
  AddV2: binaryOp(F.add),
  Sub: binaryOp(F.sub),
  Mul: binaryOp(F.mul),
  RealDiv: binaryOp(F.div),
  Div: binaryOp(F.div),
  Maximum: binaryOp(F.maximum),
  Minimum: binaryOp(F.minimum),
  SquaredDifference: binaryOp((a, b) => F.square(F.sub(a, b))),
  AddN: (c) => {
    if (c.inputs.length < 1) c.fail('no inputs');
    const xs = c.inputs;
    return (get) => [xs.slice(1).reduce((acc, v) => F.add(acc, get(v)), get(xs[0]))];
  },
  Sum: reduce((x, d, k) => F.sum(x, d, k)),
  Mean: reduce((x, d, k) => F.mean(x, d, k)),
  Max: reduce((x, d, k) => AMAX.t(x.handle, d, k)),
  Min: reduce((x, d, k) => AMIN.t(x.handle, d, k)),
  Reshape: (c) => {
    const shape = constInts(c, 1, 'shape');
    const x = c.inputs[0];
    return (get) => [F.reshape(get(x), shape)];
  },
  Squeeze: (c) => {
    const dims = attrInts(c.node, 'squeeze_dims', attrInts(c.node, 'axis', []));
    const x = c.inputs[0];
    return (get) => {
      let t = get(x);
      if (dims.length === 0) return [F.squeeze(t)];
      const ds = dims.map((d) => axisOf(d, t.ndim)).sort((p, q) => q - p);
      for (const d of ds) {
        if (t.shape[d] !== 1) throw new ArgumentError(`input of node '${c.node.name}'`, `size 1 in squeezed dim ${d}`, `shape [${t.shape}]`);
        t = F.squeeze(t, d);
      }
      return [t];
    };
  },
  ExpandDims: (c) => {
    const [axis] = constInts(c, 1, 'axis');
    const x = c.inputs[0];
    return (get) => {
      const t = get(x);
      return [F.unsqueeze(t, axis < 0 ? axis + t.ndim + 1 : axis)];
    };
  },
  Transpose: (c) => {
    const perm = constInts(c, 1, 'permutation');
    const x = c.inputs[0];
    return (get) => [F.permute(get(x), perm)];
  },
  Pad: (c) => padOp(c, 0),
  PadV2: (c) => {
    const v = constOf(c, 2, 'pad value');
    return padOp(c, Number(v.data[0]));
  },
  ConcatV2: (c) => {
    if (c.inputs.length < 2) c.fail('no inputs');
    const [axis] = constInts(c, c.inputs.length - 1, 'axis');
    const xs = c.inputs.slice(0, -1);
    return (get) => {
      const ts = xs.map(get);
      return [F.cat(ts, axisOf(axis, ts[0].ndim))];
    };
  },
  Slice: sliceOp,
  StridedSlice: stridedSliceOp,
  Conv2DBackpropInput: convBackpropInputOp,
  DepthToSpace: depthToSpaceOp,
  ResizeBilinear: resizeOp('bilinear'),
  ResizeNearestNeighbor: resizeOp('nearest'),
  Cast: (c) => {
    const to = attr(c.node, 'DstT')?.type;
    const dtype = to ? TF_DTYPES[to] : undefined;
    if (!dtype) c.fail(`DstT ${to}`);
    const dt = dtype as DType;
    return unaryOp((x) => x.to(dt))(c);
  },
  Pack: (c) => {
    const axis = attrInt(c.node, 'axis', 0);
    const xs = c.inputs;
    if (!xs.length) c.fail('no inputs');
    return (get) => {
      const ts = xs.map(get);
      return [F.stack(ts, axis < 0 ? axis + ts[0].ndim + 1 : axis)];
    };
  },
  Split: (c) => {
    const [axis] = constInts(c, 0, 'axis');
    const n = attrInt(c.node, 'num_split', 0);
    if (n < 1) c.fail(`num_split ${n}`);
    const x = c.inputs[1];
    return (get) => {
      const t = get(x);
      const d = axisOf(axis, t.ndim);
      if (t.shape[d] % n) throw new ArgumentError(`input of node '${c.node.name}'`, `dim ${d} divisible by ${n}`, `shape [${t.shape}]`);
      return F.split(t, t.shape[d] / n, d);
    };
  },
  SplitV: (c) => {
    const sizes = constInts(c, 1, 'size_splits');
    const [axis] = constInts(c, 2, 'axis');
    const x = c.inputs[0];
    return (get) => {
      const t = get(x);
      const d = axisOf(axis, t.ndim);
      const known = sizes.filter((v) => v >= 0).reduce((a, b) => a + b, 0);
      return F.split(t, sizes.map((v) => (v < 0 ? t.shape[d] - known : v)), d);
    };
  },
  FusedBatchNorm: batchNormOp,
  FusedBatchNormV2: batchNormOp,
  FusedBatchNormV3: batchNormOp,
};

/** TF / tfjs resize source coordinates for one axis (tfjs-backend-cpu's formulas). */
function resizeAxis(inSize: number, outSize: number, alignCorners: boolean, halfPixel: boolean): { lo: number[]; hi: number[]; frac: number[]; nearest: number[] } {
  const ratio = (alignCorners && outSize > 1 ? inSize - 1 : inSize) / (alignCorners && outSize > 1 ? outSize - 1 : outSize);
  const lo: number[] = [];
  const hi: number[] = [];
  const frac: number[] = [];
  const nearest: number[] = [];
  for (let i = 0; i < outSize; i++) {
    const src = halfPixel ? ratio * (i + 0.5) - 0.5 : ratio * i;
    const f = Math.max(0, Math.floor(src));
    lo.push(f);
    hi.push(Math.min(inSize - 1, Math.ceil(src)));
    frac.push(src - f);
    const ns = halfPixel ? ratio * (i + 0.5) : ratio * i;
    let n = Math.min(inSize - 1, alignCorners ? Math.round(ns) : Math.floor(ns));
    if (halfPixel) n = Math.max(0, n);
    nearest.push(n);
  }
  return { lo, hi, frac, nearest };
}

function resizeOp(mode: 'bilinear' | 'nearest'): Builder {
  return (c) => {
    const size = constInts(c, 1, 'size');
    if (size.length !== 2) c.fail(`size [${size}]`);
    const align = attrBool(c.node, 'align_corners', false);
    const half = attrBool(c.node, 'half_pixel_centers', false);
    const x = c.inputs[0];
    return (get) => {
      const t = get(x);
      if (t.ndim !== 4) throw new ArgumentError(`input of node '${c.node.name}'`, 'a 4-D NHWC tensor', `shape [${t.shape}]`);
      const idx = (v: number[]) => tensor(BigInt64Array.from(v, (n) => BigInt(n)), { device: t.device });
      const axis = (dim: 1 | 2, y: Tensor): Tensor => {
        const a = resizeAxis(t.shape[dim], size[dim - 1], align, half);
        if (mode === 'nearest') return F.indexSelect(y, dim, idx(a.nearest));
        const shape = dim === 1 ? [1, a.frac.length, 1, 1] : [1, 1, a.frac.length, 1];
        const w = tensor(Float32Array.from(a.frac), { shape, device: t.device }).to(t.dtype);
        const lo = F.indexSelect(y, dim, idx(a.lo));
        return F.add(lo, F.mul(F.sub(F.indexSelect(y, dim, idx(a.hi)), lo), w));
      };
      return [axis(2, axis(1, t))];
    };
  };
}

function sliceOp(c: Ctx): Kernel {
  const begin = constInts(c, 1, 'begin');
  const size = constInts(c, 2, 'size');
  const x = c.inputs[0];
  return (get) => {
    let t = get(x);
    if (begin.length !== t.ndim || size.length !== t.ndim) throw new ArgumentError(`begin/size of node '${c.node.name}'`, `${t.ndim} values`, `[${begin}] / [${size}]`);
    for (let d = 0; d < t.ndim; d++) {
      const len = size[d] < 0 ? t.shape[d] - begin[d] : size[d];
      if (begin[d] !== 0 || len !== t.shape[d]) t = F.narrow(t, d, begin[d], len);
    }
    return [t];
  };
}

/** StridedSlice with begin / end / shrink-axis masks (no ellipsis or new-axis masks). */
function stridedSliceOp(c: Ctx): Kernel {
  const begin = constInts(c, 1, 'begin');
  const end = constInts(c, 2, 'end');
  const strides = constInts(c, 3, 'strides');
  const bm = attrInt(c.node, 'begin_mask', 0);
  const em = attrInt(c.node, 'end_mask', 0);
  const shrink = attrInt(c.node, 'shrink_axis_mask', 0);
  if (attrInt(c.node, 'ellipsis_mask', 0) !== 0) c.fail('ellipsis_mask');
  if (attrInt(c.node, 'new_axis_mask', 0) !== 0) c.fail('new_axis_mask');
  if (strides.some((v) => v <= 0)) c.fail(`strides [${strides}] (only positive)`);
  const x = c.inputs[0];
  return (get) => {
    let t = get(x);
    const rank = t.ndim;
    const shrunk: number[] = [];
    for (let d = 0; d < begin.length && d < rank; d++) {
      const n = t.shape[d];
      const norm = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
      if (shrink & (1 << d)) {
        const b = begin[d] < 0 ? begin[d] + n : begin[d];
        t = F.narrow(t, d, b, 1);
        shrunk.push(d);
        continue;
      }
      const b = bm & (1 << d) ? 0 : norm(begin[d]);
      const e = em & (1 << d) ? n : norm(end[d]);
      if (b !== 0 || e !== n || strides[d] !== 1) t = F.slice(t, d, b, Math.max(b, e), strides[d]);
    }
    for (const d of shrunk.reverse()) t = F.squeeze(t, d);
    return [t];
  };
}

function convBackpropInputOp(c: Ctx): Kernel {
  const w = readWindow(c);
  const outShape = constInts(c, 0, 'output shape');
  if (outShape.length !== 4) c.fail(`output shape [${outShape}]`);
  if (w.dilations[0] !== 1 || w.dilations[1] !== 1) c.fail('dilations');
  const f = c.inputs[1];
  const x = c.inputs[2];
  return (get) => {
    const filter = get(f); // [kh, kw, outC, inC]: inC = channels of x
    const [kh, kw] = filter.shape;
    const [H, W] = [outShape[1], outShape[2]];
    const pads = padsFor(w, H, W, kh, kw); // [l, r, t, b] of the forward conv
    const xn = toNCHW(get(x));
    const full = F.convTranspose2d(xn, filter.permute([3, 2, 0, 1]), null, { stride: w.strides });
    // crop the forward conv's padding (top / left) and keep H x W, zero-filling what the transposed conv does not reach
    const rows = F.pad(full, [0, Math.max(0, pads[0] + W - full.shape[3]), 0, Math.max(0, pads[2] + H - full.shape[2])]);
    return [toNHWC(F.narrow(F.narrow(rows, 2, pads[2], H), 3, pads[0], W))];
  };
}

function depthToSpaceOp(c: Ctx): Kernel {
  const bs = attrInt(c.node, 'block_size', 0);
  if (bs < 1) c.fail(`block_size ${bs}`);
  if (attrString(c.node, 'data_format', 'NHWC') !== 'NHWC') c.fail('data_format NCHW');
  const x = c.inputs[0];
  return (get) => {
    const t = get(x);
    const [n, h, w, ch] = t.shape;
    if (ch % (bs * bs)) throw new ArgumentError(`input of node '${c.node.name}'`, `channels divisible by ${bs * bs}`, `shape [${t.shape}]`);
    const co = ch / (bs * bs);
    return [F.reshape(F.permute(F.reshape(t, [n, h, w, bs, bs, co]), [0, 1, 3, 2, 4, 5]), [n, h * bs, w * bs, co])];
  };
}

const TF_DTYPES: Record<string, DType> = { DT_FLOAT: 'float32', DT_INT32: 'int32', DT_INT64: 'int64', DT_BOOL: 'bool', DT_DOUBLE: 'float64', DT_HALF: 'float16', DT_UINT8: 'uint8', DT_INT8: 'int8' };

function padOp(c: Ctx, value: number): Kernel {
  const p = constInts(c, 1, 'paddings');
  const mode = attrString(c.node, 'mode', 'CONSTANT');
  if (mode !== 'CONSTANT') c.fail(`mode '${mode}'`);
  const x = c.inputs[0];
  return (get) => {
    const t = get(x);
    if (p.length !== 2 * t.ndim) throw new ArgumentError(`paddings of node '${c.node.name}'`, `${t.ndim}x2 values`, `${p.length}`);
    // TF: [[before, after] per dim, first dim first]; libtorch: last dim first.
    const pads: number[] = [];
    for (let d = t.ndim - 1; d >= 0; d--) pads.push(p[2 * d], p[2 * d + 1]);
    return [padded(t, pads, value)];
  };
}

function batchNormOp(c: Ctx): Kernel {
  if (attrBool(c.node, 'is_training', false)) c.fail('is_training = true');
  if (attrString(c.node, 'data_format', 'NHWC') !== 'NHWC') c.fail('data_format NCHW');
  const eps = attrFloat(c.node, 'epsilon', 1e-3);
  const [x, scale, offset, mean, variance] = c.inputs;
  if (!variance) c.fail('needs x, scale, offset, mean and variance');
  return (get) => {
    const inv = F.mul(F.rsqrt(F.add(get(variance), eps)), get(scale));
    return [F.add(F.mul(F.sub(get(x), get(mean)), inv), get(offset))];
  };
}

/** The ops loadTfjsGraphModel implements (besides Const and Placeholder). */
export const SUPPORTED_OPS: readonly string[] = Object.keys(BUILDERS).sort();

// The module ---------------------------------------------------------------------------------

interface CompiledNode {
  name: string;
  op: string;
  kernel: Kernel;
  /** Tensor values read (deduplicated keys) */
  reads: string[];
}

const key = (node: string, index: number): string => `${node}:${index}`;

/** A TensorFlow.js graph model as an nn.Module; see loadTfjsGraphModel. */
export class TfjsGraphModule extends Module {
  /** Graph input names (Placeholders), in forward()'s argument order. */
  readonly inputNames: string[] = [];
  /** Graph output names, in the order forward() returns them. */
  readonly outputNames: string[] = [];
  /** Static shapes of the inputs from the model.json (-1: any). */
  readonly inputShapes: (number[] | null)[] = [];
  /** format / producer of the model.json, e.g. "graph-model, producer 440". */
  readonly formatVersion: string = '';
  /** The file it was loaded from. */
  readonly source: string = '';

  private readonly plan: CompiledNode[] = [];
  private readonly consts = new Map<string, TfjsTensor>();
  /** Const node -> state-dict name. */
  private readonly constNames = new Map<string, string>();
  /** Const nodes used as tensors -> their tensor (a parameter or buffer). */
  private readonly constTensors = new Map<string, Tensor>();
  /** How many plan steps read each value; the last reader disposes it. */
  private readonly lastRead = new Map<string, number>();
  private tracedRun?: (...inputs: Tensor[]) => Promise<Tensor[]>;

  /** @internal Use loadTfjsGraphModel. */
  constructor() {
    super();
  }

  /** @internal */
  _constData(node: string): TfjsTensor {
    const t = this.consts.get(node);
    if (!t) throw new FileFormatError(`const node '${node}' has no weight in the weights manifest`);
    return t;
  }
  /** @internal */
  _shapeOf(v: Value): number[] | null {
    return v.kind === 'const' ? this._constData(v.node).shape : null;
  }

  /** The state-dict name of a TF const node (or undefined if it is not a tensor of the module). */
  parameterName(tfNodeName: string): string | undefined {
    return this.constNames.get(tfNodeName);
  }

  /**
   * Runs the graph: one tensor per graph input (NHWC images as tfjs takes
   * them), in `inputNames` order. Returns the output tensor, or an array in
   * `outputNames` order when the graph has several.
   */
  forward(...inputs: Tensor[]): Tensor | Tensor[] {
    const outs = this.forwardAll(inputs);
    return outs.length === 1 ? outs[0] : outs;
  }

  /** forward() that always returns an array (in `outputNames` order). */
  forwardAll(inputs: Tensor[]): Tensor[] {
    if (inputs.length !== this.inputNames.length) invalid('inputs', `${this.inputNames.length} tensor(s) (${this.inputNames.join(', ')})`, inputs);
    const env = new Map<string, Tensor>();
    inputs.forEach((t, i) => {
      if (!Tensor.isTensor(t)) invalid(`inputs[${i}]`, 'a Tensor', t);
      const shape = this.inputShapes[i];
      const actual = t.shape;
      if (shape && (shape.length !== actual.length || shape.some((d, j) => d >= 0 && d !== actual[j]))) {
        invalid(`inputs[${i}] (${this.inputNames[i]})`, `a tensor of shape [${shape.map((d) => (d < 0 ? '?' : d))}]`, `shape [${actual}]`);
      }
      env.set(key(this.inputNames[i], 0), t);
    });
    const created = new Set<Tensor>();
    const foreign = new Set<Tensor>([...inputs, ...this.constTensors.values()]);
    const own = (t: Tensor): Tensor => {
      // a kernel may hand back one of its inputs unchanged (a zero Pad): give it a handle of its own
      const r = created.has(t) || foreign.has(t) ? ALIAS.t(t.handle) : t;
      created.add(r);
      return r;
    };
    const outputKeys = this.outputNames.map((n) => (n.includes(':') ? n : key(n, 0)));
    const keepKeys = new Set(outputKeys);
    const reads = new Map<string, number>();
    const get = (v: Value): Tensor => {
      if (v.kind === 'const') return this.constTensors.get(v.node)!;
      const t = env.get(key(v.node, v.index));
      if (!t) throw new FileFormatError(`node output '${key(v.node, v.index)}' was not computed`);
      return t;
    };
    try {
      for (const step of this.plan) {
        let results: Tensor[];
        try {
          results = tidy(() => step.kernel(get));
        } catch (e) {
          // name the graph node that failed (libtorch's message says which shapes did not fit)
          if (e instanceof TorchError) throw new TorchError(e.op, `${e.message} (at node '${step.name}', op ${step.op})`);
          throw e;
        }
        results.forEach((t, i) => env.set(key(step.name, i), own(t)));
        for (const k of step.reads) {
          const n = (reads.get(k) ?? 0) + 1;
          reads.set(k, n);
          if (n === this.lastRead.get(k) && !keepKeys.has(k)) {
            const t = env.get(k);
            if (t && created.has(t)) {
              t.dispose();
              created.delete(t);
            }
            env.delete(k);
          }
        }
      }
      const outs = outputKeys.map((k) => {
        const node = k.replace(/:\d+$/, '');
        const t = this.constTensors.get(node) ?? env.get(k);
        if (!t) throw new FileFormatError(`graph output '${k}' was not computed`);
        return created.has(t) ? t : own(t);
      });
      const kept = new Set(outs);
      for (const t of created) if (!kept.has(t)) t.dispose();
      return outs;
    } catch (e) {
      for (const t of created) t.dispose();
      throw e;
    }
  }

  /**
   * Runs the graph as a traced program on a worker thread (off the event
   * loop), like the built-in networks: the first call per input shape, dtype
   * and device traces forward() (without autograd), later calls replay it.
   * Always resolves to an array in `outputNames` order.
   */
  async run(...inputs: Tensor[]): Promise<Tensor[]> {
    this.tracedRun ??= traced((...xs: Tensor[]) => this.forwardAll(xs));
    return this.tracedRun(...inputs);
  }

  override to(target: Parameters<Module['to']>[0]): this {
    super.to(target);
    this.tracedRun = undefined; // traces hold the old tensors
    return this;
  }

  override extraRepr(): string {
    return `${this.inputNames.length} input(s), ${this.outputNames.length} output(s), ${this.plan.length} ops`;
  }

  /** @internal Builds the module from an analysed graph and its decoded weights. */
  static _build(g: Graph, weights: Map<string, TfjsTensor>, options: { device?: Device; dtype?: DType } = {}): TfjsGraphModule {
    const m = new TfjsGraphModule();
    try {
      m.compile(g, weights);
      if (options.device !== undefined || options.dtype !== undefined) m.to({ device: options.device, dtype: options.dtype });
    } catch (e) {
      m.dispose();
      throw e;
    }
    return m;
  }

  private compile(g: Graph, weights: Map<string, TfjsTensor>): void {
    const m = this as TfjsGraphModule;
    const w = m as unknown as { -readonly [K in 'formatVersion' | 'source']: string };
    w.source = g.file;
    w.formatVersion = g.formatVersion;
    m.inputNames.push(...g.inputNames);
    m.outputNames.push(...g.outputNames);
    m.inputShapes.push(...g.inputShapes);
    const { file, byName, dataInputs, order, fail } = g;
    const inputSet = new Set(g.inputNames);
    const usedAsTensor = new Set<string>();
    /** Constants that are statistics, not weights (batch norm mean and variance): buffers. */
    const asBuffer = new Set<string>();
    for (const [name, t] of weights) m.consts.set(name, t);
    for (const name of order) {
      const n = byName.get(name)!;
      if (n.op === 'Const') {
        if (!m.consts.has(name)) throw new FileFormatError(`${file}: const node '${name}' has no weight in the weights manifest`);
      }
    }
    const compiled: CompiledNode[] = [];
    for (const name of order) {
      const n = byName.get(name)!;
      if (inputSet.has(name) || n.op === 'Const') continue;
      const inputs = dataInputs.get(name)!;
      for (const v of inputs) if (v.kind === 'const' && !m.consts.has(v.node)) throw new FileFormatError(`${file}: const node '${v.node}' has no weight in the weights manifest`);
      const ctx: Ctx = { node: n, inputs, module: m, fail: fail(n) };
      const kernel = BUILDERS[n.op](ctx);
      // Which constants does the kernel read as tensors? Those not consumed as static values:
      // record every const input; static-only ones are recognised by the op kind below.
      const staticSlots = STATIC_INPUTS[n.op] ?? [];
      inputs.forEach((v, i) => {
        const isStatic = staticSlots.includes(i) || (staticSlots.includes(-1) && i === inputs.length - 1);
        if (v.kind === 'const' && !isStatic) usedAsTensor.add(v.node);
        if (v.kind === 'const' && BUFFER_INPUTS[n.op]?.includes(i)) asBuffer.add(v.node);
      });
      const reads = [...new Set(inputs.filter((v) => v.kind === 'tensor').map((v) => key(v.node, v.index)))];
      compiled.push({ name, op: n.op, kernel, reads });
    }
    for (const c of compiled) for (const k of c.reads) m.lastRead.set(k, (m.lastRead.get(k) ?? 0) + 1);
    m.plan.push(...compiled);

    // Register the constants read as tensors: float ones with more than one element are
    // Parameters (trainable), scalars and integer ones buffers. Names: the TF node's, '.' -> '_'.
    const taken = new Set<string>();
    for (const out of g.outputNames) if (byName.get(out.replace(/:\d+$/, ''))!.op === 'Const') usedAsTensor.add(out.replace(/:\d+$/, ''));
    for (const name of usedAsTensor) {
      const c = m.consts.get(name)!;
      let sdName = name.replace(/\./g, '_');
      for (let i = 2; taken.has(sdName); i++) sdName = `${name.replace(/\./g, '_')}_${i}`;
      taken.add(sdName);
      m.constNames.set(name, sdName);
      const t = tensor(c.data, { shape: c.shape });
      if (c.dtype === 'float32' && c.data.length > 1 && !asBuffer.has(name)) m.registerParameter(sdName, t);
      else m.registerBuffer(sdName, t);
      m.constTensors.set(name, t);
    }
    m.consts.clear(); // the decoded weights live on in the tensors; shapes and axes are in the kernels
  }

  override dispose(): void {
    super.dispose();
    this.tracedRun = undefined;
  }
}

/** The parsed, checked graph: what loadTfjsGraphModel knows before it reads the weights. */
interface Graph {
  file: string;
  formatVersion: string;
  byName: Map<string, TfjsGraphNodeDef>;
  dataInputs: Map<string, Value[]>;
  inputNames: string[];
  inputShapes: (number[] | null)[];
  outputNames: string[];
  /** Nodes the outputs need, inputs before readers. */
  order: string[];
  fail: (n: TfjsGraphNodeDef) => (detail: string, op?: string) => never;
}

/** Parses modelTopology: nodes, inputs and outputs as tfjs picks them, topological order; unsupported ops throw. */
function analyzeGraph(json: ModelJson, file: string): Graph {
  const topo = json.modelTopology;
  const nodes = topo?.node;
  if (!topo || typeof topo !== 'object' || !Array.isArray(nodes)) throw new FileFormatError(`${file}: modelTopology.node is not a list of nodes (is this a tfjs graph model?)`);
  const producer = topo.versions?.producer;
  const formatVersion = `format ${json.format ?? 'graph-model'}${producer !== undefined ? `, producer ${producer}` : ''}${json.convertedBy ? `, converted by ${json.convertedBy}` : ''}`;
  const byName = new Map<string, TfjsGraphNodeDef>();
  for (const n of nodes) {
    if (!n || typeof n !== 'object' || typeof n.name !== 'string' || typeof n.op !== 'string' || n.name === '') throw new FileFormatError(`${file}: a node without a name or op: ${JSON.stringify(n).slice(0, 200)}`);
    if (n.input !== undefined && (!Array.isArray(n.input) || !n.input.every((s) => typeof s === 'string'))) throw new FileFormatError(`${file}: node '${n.name}' has a malformed input list`);
    if (byName.has(n.name)) throw new FileFormatError(`${file}: duplicate node name '${n.name}'`);
    byName.set(n.name, n);
  }
  // Input references: "name", "name:1", "^control" (dropped).
  const parseRef = (ref: string, from: string): Value | null => {
    if (ref.startsWith('^')) return null;
    const mm = /^(.*?)(?::(\d+))?$/.exec(ref)!;
    const name = mm[1];
    const index = mm[2] === undefined ? 0 : Number(mm[2]);
    const src = byName.get(name);
    if (!src) throw new FileFormatError(`${file}: node '${from}' reads '${ref}', which is not a node of the graph`);
    if (src.op === 'Const') {
      if (index !== 0) throw new FileFormatError(`${file}: node '${from}' reads output ${index} of const '${name}'`);
      return { kind: 'const', node: name };
    }
    return { kind: 'tensor', node: name, index };
  };
  const dataInputs = new Map<string, Value[]>();
  const children = new Map<string, number>();
  for (const n of nodes) {
    const vs: Value[] = [];
    for (const ref of n.input ?? []) {
      const v = parseRef(ref, n.name);
      if (!v) continue;
      vs.push(v);
    }
    dataInputs.set(n.name, vs);
    for (const ref of n.input ?? []) {
      const nm = ref.replace(/^\^/, '').replace(/:\d+$/, '');
      children.set(nm, (children.get(nm) ?? 0) + 1);
    }
  }
  // Inputs and outputs, as tfjs-converter's OperationMapper picks them.
  const signature = json.signature ?? json.userDefinedMetadata?.signature;
  const stripIndex = (s: string): string => s.replace(/:0$/, '');
  const sigNames = (entries: Record<string, SignatureEntry> | undefined): string[] =>
    entries && typeof entries === 'object' ? Object.entries(entries).map(([k, e]) => stripIndex(typeof e?.name === 'string' ? e.name : k)).filter((s) => byName.has(s.replace(/:\d+$/, ''))) : [];
  const inputNames = sigNames(signature?.inputs);
  if (inputNames.length === 0) for (const n of nodes) if (n.op.startsWith('Placeholder')) inputNames.push(n.name);
  const outputNames = sigNames(signature?.outputs);
  if (outputNames.length === 0) for (const n of nodes) if (!children.has(n.name)) outputNames.push(n.name);
  if (outputNames.length === 0) throw new FileFormatError(`${file}: the graph has no outputs`);
  const inputShapes: (number[] | null)[] = [];
  for (const name of inputNames) {
    const n = byName.get(name)!;
    if (!n.op.startsWith('Placeholder')) throw new UnsupportedTfjsOpError(n.op, n.name, formatVersion, 'a signature input that is not a Placeholder', file);
    const dims = n.attr?.shape?.shape?.dim;
    inputShapes.push(Array.isArray(dims) && !n.attr?.shape?.shape?.unknownRank ? dims.map((d) => Number(d.size ?? -1)) : null);
  }

  // Topological order of what the outputs need (iterative DFS; a cycle is a FileFormatError).
  const order: string[] = [];
  const state = new Map<string, 1 | 2>();
  const inputSet = new Set(inputNames);
  for (const out of outputNames) {
    const stack: [string, number][] = [[out.replace(/:\d+$/, ''), 0]];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [name, i] = top;
      if (i === 0) {
        if (state.get(name) === 2) {
          stack.pop();
          continue;
        }
        state.set(name, 1);
        // check each op when first reached: a control-flow loop (Enter / Merge / NextIteration) is
        // then reported as the unsupported op it is, before its cycle is closed
        const node = byName.get(name)!;
        if (!inputSet.has(name) && node.op !== 'Const' && !node.op.startsWith('Placeholder') && !Object.hasOwn(BUILDERS, node.op)) {
          throw new UnsupportedTfjsOpError(node.op, node.name, formatVersion, CONTROL_FLOW.has(node.op) ? 'control flow is not supported' : 'no implementation', file);
        }
      }
      const deps = byName.get(name)!.op === 'Const' || inputSet.has(name) ? [] : dataInputs.get(name)!.filter((v) => v.kind === 'tensor').map((v) => v.node);
      if (i < deps.length) {
        top[1]++;
        const d = deps[i];
        const s = state.get(d);
        if (s === 1) throw new FileFormatError(`${file}: the graph has a cycle through node '${d}' (control flow is not supported)`);
        if (s !== 2) stack.push([d, 0]);
        continue;
      }
      state.set(name, 2);
      order.push(name);
      stack.pop();
    }
  }

  const fail = (n: TfjsGraphNodeDef) => (detail: string, op = n.op): never => {
    throw new UnsupportedTfjsOpError(op, n.name, formatVersion, detail, file);
  };
  // Check every op first: an unsupported op anywhere in the needed graph is reported before any work.
  for (const name of order) {
    const n = byName.get(name)!;
    if (inputSet.has(name) || n.op === 'Const') continue;
    if (n.op.startsWith('Placeholder')) throw new UnsupportedTfjsOpError(n.op, n.name, formatVersion, 'a Placeholder that is not a graph input', file);
    if (!Object.hasOwn(BUILDERS, n.op)) fail(n)('no implementation');
  }
  return { file, formatVersion, byName, dataInputs, inputNames, inputShapes, outputNames, order, fail };
}

const CONTROL_FLOW = new Set(['Enter', 'Exit', 'Merge', 'Switch', 'NextIteration', 'LoopCond', 'While', 'StatelessWhile', 'If', 'StatelessIf', 'PartitionedCall', 'StatefulPartitionedCall', 'TensorListReserve', 'TensorArrayV3']);

// Constant inputs that are statistics rather than weights, by op: registered as buffers (not trained).
const BUFFER_INPUTS: Record<string, number[]> = { FusedBatchNorm: [3, 4], FusedBatchNormV2: [3, 4], FusedBatchNormV3: [3, 4] };

// Inputs that are read at load time (shape, axes, paddings), by op: -1 = the last input.
const STATIC_INPUTS: Record<string, number[]> = {
  Sum: [1],
  Mean: [1],
  Max: [1],
  Min: [1],
  Reshape: [1],
  ExpandDims: [1],
  Transpose: [1],
  Pad: [1],
  PadV2: [1, 2],
  ConcatV2: [-1],
  Slice: [1, 2],
  StridedSlice: [1, 2, 3],
  Conv2DBackpropInput: [0],
  ResizeBilinear: [1],
  ResizeNearestNeighbor: [1],
  Split: [0],
  SplitV: [1, 2],
};

/**
 * Loads a TensorFlow.js graph model (`model.json` + its weight shards) as a
 * trainable nn.Module (TfjsGraphModule): `module.forward(x)` runs the graph with
 * torchface ops and autograd, `await module.run(x)` as a traced program on a
 * worker thread. Inputs and outputs are as tfjs's `model.execute(x)` (NHWC).
 * Options: `device` moves the parameters after loading; `dtype` casts them.
 */
export async function loadTfjsGraphModel(modelJsonPath: string, options: { device?: Device; dtype?: DType } = {}): Promise<TfjsGraphModule> {
  if (typeof modelJsonPath !== 'string' || modelJsonPath === '' || modelJsonPath.includes('\0')) invalid('modelJsonPath', 'a file path', modelJsonPath);
  if (options === null || typeof options !== 'object') invalid('options', 'an options object', options);
  let text: string;
  try {
    text = Buffer.from(await readFileChecked(modelJsonPath, { maxBytes: MAX_MANIFEST_BYTES })).toString('utf8');
  } catch (err) {
    if (err instanceof FileAccessError) throw err;
    throw new FileAccessError(modelJsonPath, `cannot read tfjs graph model ${modelJsonPath}: ${(err as Error).message}`, { cause: err });
  }
  let json: ModelJson;
  try {
    json = JSON.parse(text) as ModelJson;
  } catch (err) {
    throw new FileFormatError(`tfjs graph model ${modelJsonPath} is not valid JSON: ${(err as Error).message}`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new FileFormatError(`tfjs graph model ${modelJsonPath}: expected a JSON object with modelTopology and weightsManifest`);
  if (json.format !== undefined && json.format !== 'graph-model') {
    throw new FileFormatError(`${modelJsonPath}: format '${String(json.format)}' is not a tfjs graph model (layers models: load their weights with loadTfjsWeights)`);
  }
  if (!Array.isArray(json.weightsManifest)) throw new FileFormatError(`${modelJsonPath}: weightsManifest is missing or not a list`);
  // Parse the graph and check its ops before reading the weights: an unsupported op fails fast.
  const graph = analyzeGraph(json, modelJsonPath);
  const weights = await readTfjsWeights(modelJsonPath);
  return noGrad(() => TfjsGraphModule._build(graph, weights, options));
}
