// Tensor operators with PyTorch's semantics and names (camelCase). Each is a
// thin call into an ATen operator through the dispatcher; TypeScript checks the
// argument kinds, libtorch checks shapes and broadcasting and its messages are
// passed on in a TorchError.
import type { NativeArg, TensorHandle } from '../binding';
import { TorchError, invalid } from './errors';
import { native } from './native';
import { DType, Op, Tensor, dtypeCode, handleOf, zeros } from './tensor';

const h = handleOf;
const isTensor = (v: unknown): v is Tensor => Tensor.isTensor(v);
/** An options argument: undefined gives {}; anything but an object is an ArgumentError (not a TypeError on o.x). */
function opts<T extends object>(o: T | undefined, parameter = 'options'): T {
  if (o === undefined) return {} as T;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) invalid(parameter, 'an options object', o);
  return o;
}

function int(v: unknown, parameter: string): number {
  if (!Number.isInteger(v)) invalid(parameter, 'an integer', v);
  return v as number;
}
function ints(v: unknown, parameter: string): number[] {
  if (typeof v === 'number') return [int(v, parameter)];
  if (!Array.isArray(v)) invalid(parameter, 'an integer or an array of integers', v);
  for (const e of v) int(e, parameter);
  return v as number[];
}
/** Two integers (a single one repeated), for kernels that read an int[2] without checking its length. */
function int2(v: unknown, parameter: string): number[] {
  const a = ints(v, parameter);
  if (a.length === 1) return [a[0], a[0]];
  if (a.length !== 2) invalid(parameter, 'an integer or 2 integers', v);
  return a;
}
function num(v: unknown, parameter: string): number {
  if (typeof v !== 'number' || Number.isNaN(v)) invalid(parameter, 'a number', v);
  return v;
}
function tensors(v: unknown, parameter: string): TensorHandle[] {
  if (!Array.isArray(v)) invalid(parameter, 'an array of tensors', v);
  return v.map((t, i) => h(t, `${parameter}[${i}]`));
}

// Ops are created once; ids are resolved on first use.
// Two-level cache (name, then overload): no string building on the hot path.
const ops = new Map<string, Map<string, Op>>();
function op(name: string, overload = ''): Op {
  let byOverload = ops.get(name);
  if (!byOverload) ops.set(name, (byOverload = new Map()));
  let o = byOverload.get(overload);
  if (!o) byOverload.set(overload, (o = new Op(name, overload)));
  return o;
}

/**
 * Calls any ATen operator by schema name, for what has no wrapper yet:
 * callOp('aten::erf', '', x). Arguments are checked against the operator's
 * schema (a Tensor where an int is expected, or the reverse, is an
 * ArgumentError: tensor handles are numbers, so the addon could not tell).
 * Private operators (`aten::_...`) are refused: some crash libtorch 1.13 on
 * inputs it does not check; callPrivateOp is the explicit opt-in.
 */
export function callOp(name: string, overload: string, ...args: CallArg[]): unknown {
  if (typeof name !== 'string') invalid('name', "an operator name such as 'aten::erf'", name);
  if (isPrivate(name)) invalid('name', `a public operator (${name} is private to libtorch: callPrivateOp() opts in)`, name);
  return callChecked(name, overload, args);
}

/**
 * callOp for libtorch's private (`_`-prefixed) operators. They skip checks the
 * public ones make; the inputs known to crash libtorch 1.13 itself are refused here.
 */
export function callPrivateOp(name: string, overload: string, ...args: CallArg[]): unknown {
  if (typeof name !== 'string') invalid('name', "an operator name such as 'aten::_softmax'", name);
  KNOWN_CRASHERS[name]?.(args);
  return callChecked(name, overload, args);
}

/** An argument of callOp: tensors (alone or in lists) where the schema has Tensor, plain values elsewhere. */
export type CallArg = Tensor | NativeArg | (Tensor | null)[];

const isPrivate = (name: string): boolean => /^[a-z_]+::_/.test(name) || name.startsWith('_');

/** Inputs of private operators that crash libtorch 1.13 (found by fuzzing): refused before the call. */
const KNOWN_CRASHERS: Record<string, (args: unknown[]) => void> = {
  'aten::_local_scalar_dense': ([self]) => {
    if (isTensor(self) && self.numel !== 1) invalid('self', 'a tensor with exactly one element', `shape [${self.shape}]`);
  },
  'aten::_reshape_alias': ([self, size, stride]) => {
    // A view must stay inside its tensor's elements (libtorch does not check: reading past them crashes).
    if (!isTensor(self) || !Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length) return;
    let extent = 1;
    for (let i = 0; i < size.length; i++) {
      const n = Number(size[i]);
      const st = Number(stride[i]);
      if (n === 0) return;
      if (st < 0) invalid('stride', 'non-negative strides', stride);
      extent += (n - 1) * st;
    }
    if (extent > self.numel) invalid('size', `a view within the tensor's ${self.numel} elements`, `one spanning ${extent}`);
  },
  'aten::_sparse_coo_tensor_unsafe': () => {
    invalid('name', 'a checked constructor (aten::sparse_coo_tensor validates indices; the unsafe one crashes on bad ones)', 'aten::_sparse_coo_tensor_unsafe');
  },
};

function callChecked(name: string, overload: string, args: CallArg[]): unknown {
  if (typeof overload !== 'string') invalid('overload', "an overload name ('' for the default)", overload);
  const o = op(name, overload);
  let schema: ReturnType<Op['arguments']>;
  try {
    schema = o.arguments();
  } catch (e) {
    throw new TorchError(overload ? `${name}.${overload}` : name, (e as Error).message);
  }
  if (args.length > schema.length) invalid('args', `at most ${schema.length} arguments for ${name}${overload ? '.' + overload : ''}`, args);
  return o.any(...args.map((a, i) => toNativeArg(a, schema[i].type, `${name} argument '${schema[i].name}'`)));
}

/** One argument converted by its schema type; the wrong kind is an ArgumentError naming the argument. */
function toNativeArg(v: unknown, type: string, parameter: string): NativeArg {
  const optional = type.endsWith('?');
  const base = optional ? type.slice(0, -1) : type;
  if (v === undefined || (v === null && optional)) return v as null | undefined;
  const list = /^(.*)\[\d*\]$/.exec(base);
  const elem = list ? list[1] : base;
  const one = (x: unknown, where: string): NativeArg => {
    const t = elem.replace(/\?$/, '');
    if (t === 'Tensor') {
      if (x === null && elem.endsWith('?')) return null;
      return h(x, where);
    }
    if (isTensor(x)) invalid(where, `${/^(int|SymInt)$/.test(t) ? 'an integer' : `a ${t}`}, not a Tensor (the schema says ${type})`, x);
    if (/^(int|SymInt|ScalarType|Layout|MemoryFormat)$/.test(t)) {
      if (typeof x === 'boolean') return x;
      if (!Number.isInteger(x)) invalid(where, 'an integer', x);
    } else if (/^(float|SymFloat)$/.test(t)) {
      if (typeof x !== 'number') invalid(where, 'a number', x);
    } else if (t === 'Scalar') {
      if (typeof x !== 'number' && typeof x !== 'boolean') invalid(where, 'a number', x);
    } else if (t === 'bool') {
      if (typeof x !== 'boolean') invalid(where, 'a boolean', x);
    } else if (t === 'str' || t === 'Device') {
      if (typeof x !== 'string') invalid(where, 'a string', x);
    }
    return x as NativeArg;
  };
  if (!list) return one(v, parameter);
  // "int[2] stride" also takes a single int (or [int]), as in PyTorch: repeated to the schema's
  // length here, because some kernels read all N without checking (mkldnn_reorder_conv2d_weight
  // given [0] as its padding died of SIGFPE). An empty list stays: some schemas mean "default" by it.
  const n = Number(/\[(\d+)\]$/.exec(base)?.[1] ?? 0);
  if (!Array.isArray(v)) {
    if (!/^(int|SymInt)$/.test(elem)) invalid(parameter, `an array (the schema says ${type})`, v);
    return n > 1 ? Array.from({ length: n }, () => one(v, parameter)) : one(v, parameter);
  }
  if (n > 1 && v.length === 1) return Array.from({ length: n }, () => one(v[0], `${parameter}[0]`));
  if (n > 1 && v.length !== 0 && v.length !== n) invalid(parameter, `${n} integers (the schema says ${type})`, v);
  return v.map((x, i) => one(x, `${parameter}[${i}]`));
}

// Arithmetic -----------------------------------------------------------------------

// Binary operators: the Tensor and Scalar overloads, looked up once.
// `fast`: the code of native.binary, an unboxed entry for the hottest ones (two
// tensors): same operator, same autograd, without the generic call's argument
// conversion; it answers undefined while a trace records (then the generic call records it).
type OpPair = { scalar: Op; tensor: Op; fast?: 0 | 1 | 2 | 3 };
function binaryOp(name: string, fast?: 0 | 1 | 2 | 3): OpPair {
  return { scalar: op(name, 'Scalar'), tensor: op(name, 'Tensor'), fast };
}
function fastBinary(pair: OpPair, a: Tensor, b: Tensor, alpha: number): Tensor | null {
  if (pair.fast === undefined) return null;
  const ha = h(a, 'input');
  const hb = h(b, 'other');
  let r: TensorHandle | undefined;
  try {
    r = native.binary(pair.fast, ha, hb, alpha);
  } catch (e) {
    // as the generic call names it (Op.t): the overload too
    throw new TorchError(`${pair.tensor.name}.${pair.tensor.overload}`, (e as Error).message);
  }
  return r === undefined ? null : new Tensor(r);
}
function binary(pair: OpPair, a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return pair.scalar.t(h(a, 'input'), b);
  return fastBinary(pair, a, b, 1) ?? pair.tensor.t(h(a, 'input'), h(b, 'other'));
}
function binaryAlpha(pair: OpPair, a: Tensor, b: Tensor | number, alpha: number): Tensor {
  if (typeof b === 'number') return pair.scalar.t(h(a, 'input'), b, alpha);
  return fastBinary(pair, a, b, alpha) ?? pair.tensor.t(h(a, 'input'), h(b, 'other'), alpha);
}
const ADD = binaryOp('aten::add', 0);
const SUB = binaryOp('aten::sub', 1);
const MUL = binaryOp('aten::mul', 2);
const DIV = binaryOp('aten::div', 3);
const REMAINDER = binaryOp('aten::remainder');
const EQ = binaryOp('aten::eq');
const NE = binaryOp('aten::ne');
const LT = binaryOp('aten::lt');
const LE = binaryOp('aten::le');
const GT = binaryOp('aten::gt');
const GE = binaryOp('aten::ge');

export const add = (a: Tensor, b: Tensor | number, alpha = 1): Tensor => binaryAlpha(ADD, a, b, alpha === 1 ? 1 : num(alpha, 'alpha'));
export const sub = (a: Tensor, b: Tensor | number, alpha = 1): Tensor => binaryAlpha(SUB, a, b, alpha === 1 ? 1 : num(alpha, 'alpha'));
export const mul = (a: Tensor, b: Tensor | number): Tensor => binary(MUL, a, b);
export const div = (a: Tensor, b: Tensor | number): Tensor => binary(DIV, a, b);
export const remainder = (a: Tensor, b: Tensor | number): Tensor => binary(REMAINDER, a, b);
export const maximum = (a: Tensor, b: Tensor): Tensor => op('aten::maximum').t(h(a, 'input'), h(b, 'other'));
export const minimum = (a: Tensor, b: Tensor): Tensor => op('aten::minimum').t(h(a, 'input'), h(b, 'other'));
export function pow(a: Tensor | number, exponent: Tensor | number): Tensor {
  if (typeof a === 'number') return op('aten::pow', 'Scalar').t(a, h(exponent, 'exponent'));
  if (typeof exponent === 'number') return op('aten::pow', 'Tensor_Scalar').t(h(a, 'input'), exponent);
  return op('aten::pow', 'Tensor_Tensor').t(h(a, 'input'), h(exponent, 'exponent'));
}
// In-place operators return an alias of their input; release that extra handle
// at once rather than leaving it to the garbage collector.
function release(r: unknown): void {
  if (typeof r === 'number') native.dispose(r as TensorHandle);
}
/** In place: a += alpha * b. */
export function add_(a: Tensor, b: Tensor | number, alpha = 1): Tensor {
  if (typeof b === 'number') release(op('aten::add_', 'Scalar').call(h(a, 'input'), b, alpha));
  else release(op('aten::add_', 'Tensor').call(h(a, 'input'), h(b, 'other'), alpha));
  return a;
}
export function mul_(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') release(op('aten::mul_', 'Scalar').call(h(a, 'input'), b));
  else release(op('aten::mul_', 'Tensor').call(h(a, 'input'), h(b, 'other')));
  return a;
}
export function copy_(dst: Tensor, src: Tensor): Tensor {
  release(op('aten::copy_').call(h(dst, 'self'), h(src, 'src')));
  return dst;
}
export function zero_(t: Tensor): Tensor {
  release(op('aten::zero_').call(h(t, 'input')));
  return t;
}
export function fill_(t: Tensor, value: number): Tensor {
  release(op('aten::fill_', 'Scalar').call(h(t, 'input'), num(value, 'value')));
  return t;
}
/** In place: t += value * t1 * t2 (as Adam needs). */
export function addcmul_(t: Tensor, t1: Tensor, t2: Tensor, value = 1): Tensor {
  release(op('aten::addcmul_').call(h(t, 'input'), h(t1, 'tensor1'), h(t2, 'tensor2'), value));
  return t;
}
/** In place: t += value * t1 / t2. */
export function addcdiv_(t: Tensor, t1: Tensor, t2: Tensor, value = 1): Tensor {
  release(op('aten::addcdiv_').call(h(t, 'input'), h(t1, 'tensor1'), h(t2, 'tensor2'), value));
  return t;
}
/** In place linear interpolation: t += weight * (end - t). */
export function lerp_(t: Tensor, end: Tensor, weight: number): Tensor {
  release(op('aten::lerp_', 'Scalar').call(h(t, 'input'), h(end, 'end'), weight));
  return t;
}

const unary = (name: string) => {
  const o = op(name);
  return (x: Tensor): Tensor => o.t(h(x, 'input'));
};
export const neg = unary('aten::neg');
export const exp = unary('aten::exp');
export const log = unary('aten::log');
export const log1p = unary('aten::log1p');
export const sqrt = unary('aten::sqrt');
export const rsqrt = unary('aten::rsqrt');
export const abs = unary('aten::abs');
export const sign = unary('aten::sign');
export const square = unary('aten::square');
export const sin = unary('aten::sin');
export const cos = unary('aten::cos');
export const floor = unary('aten::floor');
export const ceil = unary('aten::ceil');
export const round = unary('aten::round');
export const reciprocal = unary('aten::reciprocal');
export const isnan = unary('aten::isnan');
export const isfinite = unary('aten::isfinite');
export const relu = unary('aten::relu');
export const sigmoid = unary('aten::sigmoid');
export const tanh = unary('aten::tanh');
export const logicalNot = unary('aten::logical_not');

export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  if (min != null) num(min, 'min');
  if (max != null) num(max, 'max');
  return op('aten::clamp').t(h(x, 'input'), min ?? null, max ?? null);
}
export const leakyRelu = (x: Tensor, negativeSlope = 0.01): Tensor => op('aten::leaky_relu').t(h(x, 'input'), num(negativeSlope, 'negativeSlope'));
export const prelu = (x: Tensor, weight: Tensor): Tensor => op('aten::prelu').t(h(x, 'input'), h(weight, 'weight'));
export const elu = (x: Tensor, alpha = 1): Tensor => op('aten::elu').t(h(x, 'input'), alpha);
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor => op('aten::gelu').t(h(x, 'input'), approximate);
export const softplus = (x: Tensor, beta = 1, threshold = 20): Tensor => op('aten::softplus').t(h(x, 'input'), beta, threshold);
export const hardtanh = (x: Tensor, minVal = -1, maxVal = 1): Tensor => op('aten::hardtanh').t(h(x, 'input'), minVal, maxVal);
export const softmax = (x: Tensor, dim: number): Tensor => op('aten::softmax', 'int').t(h(x, 'input'), int(dim, 'dim'), null);
export const logSoftmax = (x: Tensor, dim: number): Tensor => op('aten::log_softmax', 'int').t(h(x, 'input'), int(dim, 'dim'), null);

// Comparison --------------------------------------------------------------------------

export const eq = (a: Tensor, b: Tensor | number): Tensor => binary(EQ, a, b);
export const ne = (a: Tensor, b: Tensor | number): Tensor => binary(NE, a, b);
export const lt = (a: Tensor, b: Tensor | number): Tensor => binary(LT, a, b);
export const le = (a: Tensor, b: Tensor | number): Tensor => binary(LE, a, b);
export const gt = (a: Tensor, b: Tensor | number): Tensor => binary(GT, a, b);
export const ge = (a: Tensor, b: Tensor | number): Tensor => binary(GE, a, b);
export const logicalAnd = (a: Tensor, b: Tensor): Tensor => op('aten::logical_and').t(h(a, 'input'), h(b, 'other'));
export const logicalOr = (a: Tensor, b: Tensor): Tensor => op('aten::logical_or').t(h(a, 'input'), h(b, 'other'));
export const allclose = (a: Tensor, b: Tensor, rtol = 1e-5, atol = 1e-8): boolean => op('aten::allclose').call(h(a, 'input'), h(b, 'other'), rtol, atol, false) as boolean;

/** where(condition, x, y): x where condition holds, else y. Numbers become scalars of the other side's dtype. */
export function where(condition: Tensor, x: Tensor | number, y: Tensor | number): Tensor {
  if (typeof x === 'number' && typeof y === 'number') return op('aten::where', 'Scalar').t(h(condition, 'condition'), x, y);
  if (typeof x === 'number') return op('aten::where', 'ScalarSelf').t(h(condition, 'condition'), x, h(y, 'other'));
  if (typeof y === 'number') return op('aten::where', 'ScalarOther').t(h(condition, 'condition'), h(x, 'input'), y);
  return op('aten::where', 'self').t(h(condition, 'condition'), h(x, 'input'), h(y, 'other'));
}
export const maskedFill = (x: Tensor, mask: Tensor, value: number): Tensor => op('aten::masked_fill', 'Scalar').t(h(x, 'input'), h(mask, 'mask'), num(value, 'value'));
export const maskedSelect = (x: Tensor, mask: Tensor): Tensor => op('aten::masked_select').t(h(x, 'input'), h(mask, 'mask'));

// Linear algebra ------------------------------------------------------------------------

export const matmul = (a: Tensor, b: Tensor): Tensor => op('aten::matmul').t(h(a, 'input'), h(b, 'other'));
export const mm = (a: Tensor, b: Tensor): Tensor => op('aten::mm').t(h(a, 'input'), h(b, 'mat2'));
export const bmm = (a: Tensor, b: Tensor): Tensor => op('aten::bmm').t(h(a, 'input'), h(b, 'mat2'));
export const outer = (a: Tensor, b: Tensor): Tensor => op('aten::outer').t(h(a, 'input'), h(b, 'vec2'));
export const einsum = (equation: string, ...operands: Tensor[]): Tensor => op('aten::einsum').t(equation, tensors(operands, 'operands'));
/** Pairwise p-norm distances between the rows of x1 (B x P x M) and x2 (B x R x M). */
export const cdist = (x1: Tensor, x2: Tensor, p = 2): Tensor => op('aten::cdist').t(h(x1, 'x1'), h(x2, 'x2'), num(p, 'p'), null);

// Reductions -------------------------------------------------------------------------------

const dims = (dim: number | number[] | undefined): number[] | null => (dim === undefined ? null : ints(dim, 'dim'));

export function sum(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  if (dim === undefined && !keepdim) return op('aten::sum').t(h(x, 'input'), null);
  return op('aten::sum', 'dim_IntList').t(h(x, 'input'), dims(dim) ?? [], keepdim, null);
}
export function mean(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  if (dim === undefined && !keepdim) return op('aten::mean').t(h(x, 'input'), null);
  return op('aten::mean', 'dim').t(h(x, 'input'), dims(dim) ?? [], keepdim, null);
}
export function prod(x: Tensor, dim?: number, keepdim = false): Tensor {
  if (dim === undefined) return op('aten::prod').t(h(x, 'input'), null);
  return op('aten::prod', 'dim_int').t(h(x, 'input'), int(dim, 'dim'), keepdim, null);
}
export function max(x: Tensor): Tensor;
export function max(x: Tensor, dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
export function max(x: Tensor, dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
  if (dim === undefined) return op('aten::max').t(h(x, 'input'));
  const [values, indices] = op('aten::max', 'dim').ts(h(x, 'input'), int(dim, 'dim'), keepdim);
  return { values, indices };
}
export function min(x: Tensor): Tensor;
export function min(x: Tensor, dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
export function min(x: Tensor, dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
  if (dim === undefined) return op('aten::min').t(h(x, 'input'));
  const [values, indices] = op('aten::min', 'dim').ts(h(x, 'input'), int(dim, 'dim'), keepdim);
  return { values, indices };
}
export const argmax = (x: Tensor, dim?: number, keepdim = false): Tensor => op('aten::argmax').t(h(x, 'input'), dim === undefined ? null : int(dim, 'dim'), keepdim);
export const argmin = (x: Tensor, dim?: number, keepdim = false): Tensor => op('aten::argmin').t(h(x, 'input'), dim === undefined ? null : int(dim, 'dim'), keepdim);
export const any = (x: Tensor): Tensor => op('aten::any').t(h(x, 'input'));
export const all = (x: Tensor): Tensor => op('aten::all').t(h(x, 'input'));
export const logsumexp = (x: Tensor, dim: number | number[], keepdim = false): Tensor => op('aten::logsumexp').t(h(x, 'input'), ints(dim, 'dim'), keepdim);
/** Vector p-norm over all elements or the given dims. */
export const norm = (x: Tensor, p = 2, dim?: number | number[], keepdim = false): Tensor =>
  op('aten::linalg_vector_norm').t(h(x, 'input'), num(p, 'p'), dims(dim), keepdim, null);
export function variance(x: Tensor, dim?: number | number[], options: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
  options = opts(options);
  return op('aten::var', 'correction').t(h(x, 'input'), dims(dim), options.unbiased === false ? 0 : 1, !!options.keepdim);
}
export function std(x: Tensor, dim?: number | number[], options: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
  options = opts(options);
  return op('aten::std', 'correction').t(h(x, 'input'), dims(dim), options.unbiased === false ? 0 : 1, !!options.keepdim);
}
export function topk(x: Tensor, k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
  const [values, indices] = op('aten::topk').ts(h(x, 'input'), int(k, 'k'), int(dim, 'dim'), largest, sorted);
  return { values, indices };
}
export function sort(x: Tensor, dim = -1, descending = false): { values: Tensor; indices: Tensor } {
  const [values, indices] = op('aten::sort').ts(h(x, 'input'), int(dim, 'dim'), descending);
  return { values, indices };
}
export const argsort = (x: Tensor, dim = -1, descending = false): Tensor => op('aten::argsort').t(h(x, 'input'), int(dim, 'dim'), descending);
export const cumsum = (x: Tensor, dim: number): Tensor => op('aten::cumsum').t(h(x, 'input'), int(dim, 'dim'), null);

// Shapes ---------------------------------------------------------------------------------

export const reshape = (x: Tensor, shape: number[]): Tensor => op('aten::reshape').t(h(x, 'input'), ints(shape, 'shape'));
export const view = (x: Tensor, shape: number[]): Tensor => op('aten::view').t(h(x, 'input'), ints(shape, 'shape'));
export const permute = (x: Tensor, dimsOrder: number[]): Tensor => op('aten::permute').t(h(x, 'input'), ints(dimsOrder, 'dims'));
export const transpose = (x: Tensor, dim0: number, dim1: number): Tensor => op('aten::transpose', 'int').t(h(x, 'input'), int(dim0, 'dim0'), int(dim1, 'dim1'));
export const squeeze = (x: Tensor, dim?: number): Tensor =>
  dim === undefined ? op('aten::squeeze').t(h(x, 'input')) : op('aten::squeeze', 'dim').t(h(x, 'input'), int(dim, 'dim'));
export const unsqueeze = (x: Tensor, dim: number): Tensor => op('aten::unsqueeze').t(h(x, 'input'), int(dim, 'dim'));
export const flatten = (x: Tensor, startDim = 0, endDim = -1): Tensor => op('aten::flatten', 'using_ints').t(h(x, 'input'), int(startDim, 'startDim'), int(endDim, 'endDim'));
export const unflatten = (x: Tensor, dim: number, sizes: number[]): Tensor => op('aten::unflatten', 'int').t(h(x, 'input'), int(dim, 'dim'), ints(sizes, 'sizes'));
export const expand = (x: Tensor, shape: number[]): Tensor => op('aten::expand').t(h(x, 'input'), ints(shape, 'shape'), false);
export const repeat = (x: Tensor, repeats: number[]): Tensor => op('aten::repeat').t(h(x, 'input'), ints(repeats, 'repeats'));
export const flip = (x: Tensor, dimsToFlip: number[]): Tensor => op('aten::flip').t(h(x, 'input'), ints(dimsToFlip, 'dims'));
export const cat = (xs: Tensor[], dim = 0): Tensor => op('aten::cat').t(tensors(xs, 'tensors'), int(dim, 'dim'));
export const stack = (xs: Tensor[], dim = 0): Tensor => op('aten::stack').t(tensors(xs, 'tensors'), int(dim, 'dim'));
export function split(x: Tensor, splitSize: number | number[], dim = 0): Tensor[] {
  if (Array.isArray(splitSize)) return op('aten::split_with_sizes').ts(h(x, 'input'), ints(splitSize, 'splitSizes'), int(dim, 'dim'));
  if (!Number.isInteger(splitSize) || splitSize <= 0) invalid('splitSize', 'a positive integer or an array of sizes', splitSize);
  return op('aten::split', 'Tensor').ts(h(x, 'input'), splitSize, int(dim, 'dim'));
}
export const chunk = (x: Tensor, chunks: number, dim = 0): Tensor[] => op('aten::chunk').ts(h(x, 'input'), int(chunks, 'chunks'), int(dim, 'dim'));
/** x[start:end:step] along dim (null for open ends, negatives count from the end). */
export const slice = (x: Tensor, dim: number, start: number | null = null, end: number | null = null, step = 1): Tensor =>
  op('aten::slice', 'Tensor').t(h(x, 'input'), int(dim, 'dim'), start === null ? null : int(start, 'start'), end === null ? null : int(end, 'end'), int(step, 'step'));
export const narrow = (x: Tensor, dim: number, start: number, length: number): Tensor => op('aten::narrow').t(h(x, 'input'), int(dim, 'dim'), int(start, 'start'), int(length, 'length'));
export const select = (x: Tensor, dim: number, index: number): Tensor => op('aten::select', 'int').t(h(x, 'input'), int(dim, 'dim'), int(index, 'index'));
export const indexSelect = (x: Tensor, dim: number, index: Tensor): Tensor => op('aten::index_select').t(h(x, 'input'), int(dim, 'dim'), h(index, 'index'));
export const gather = (x: Tensor, dim: number, index: Tensor): Tensor => op('aten::gather').t(h(x, 'input'), int(dim, 'dim'), h(index, 'index'), false);
export const scatter = (x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor => op('aten::scatter', 'src').t(h(x, 'input'), int(dim, 'dim'), h(index, 'index'), h(src, 'src'));
/** Advanced indexing x[i0, i1, ...] with index tensors (null for a full slice). */
export const index = (x: Tensor, indices: (Tensor | null)[]): Tensor =>
  op('aten::index', 'Tensor').t(h(x, 'input'), (Array.isArray(indices) ? indices : invalid('indices', 'an array of index tensors or nulls', indices)).map((t, i) => (t === null ? null : h(t, `indices[${i}]`))));
export const tril = (x: Tensor, diagonal = 0): Tensor => op('aten::tril').t(h(x, 'input'), int(diagonal, 'diagonal'));
export const triu = (x: Tensor, diagonal = 0): Tensor => op('aten::triu').t(h(x, 'input'), int(diagonal, 'diagonal'));
export const diagonal = (x: Tensor, offset = 0, dim1 = 0, dim2 = 1): Tensor => op('aten::diagonal').t(h(x, 'input'), int(offset, 'offset'), int(dim1, 'dim1'), int(dim2, 'dim2'));
export const cast = (x: Tensor, dtype: DType): Tensor => (h(x, 'input'), x.to(dtype));
export const dtypeOf = (dtype: DType): number => dtypeCode(dtype);

// Padding and resampling ----------------------------------------------------------------------

/** pad(x, [left, right, top, bottom, ...]) with mode 'constant' | 'reflect' | 'replicate' | 'circular'. */
export function pad(x: Tensor, padding: number[], mode: 'constant' | 'reflect' | 'replicate' | 'circular' = 'constant', value = 0): Tensor {
  if (!['constant', 'reflect', 'replicate', 'circular'].includes(mode)) invalid('mode', "'constant', 'reflect', 'replicate' or 'circular'", mode);
  if (mode === 'constant') return op('aten::constant_pad_nd').t(h(x, 'input'), ints(padding, 'pad'), num(value, 'value'));
  return op('aten::pad').t(h(x, 'input'), ints(padding, 'pad'), mode, null);
}

export interface InterpolateOptions {
  size?: number | number[];
  scaleFactor?: number | number[];
  mode?: 'nearest' | 'linear' | 'bilinear' | 'bicubic' | 'trilinear';
  alignCorners?: boolean;
}
/** Resizes N x C x (L | H x W | D x H x W) inputs, like torch.nn.functional.interpolate. */
export function interpolate(x: Tensor, options: InterpolateOptions): Tensor {
  h(x, 'input');
  if (options === null || typeof options !== 'object') invalid('options', 'an object with size or scaleFactor', options);
  const spatial = x.ndim - 2;
  if (spatial < 1 || spatial > 3) invalid('input', 'a 3-D, 4-D or 5-D tensor (N, C, spatial...)', `shape [${x.shape}]`);
  const mode = options.mode ?? 'nearest';
  const expand = (v: number | number[] | undefined, name: string, isInt: boolean): number[] | null => {
    if (v === undefined) return null;
    const arr = Array.isArray(v) ? v : new Array(spatial).fill(v);
    if (arr.length !== spatial || arr.some((e) => (isInt ? !Number.isInteger(e) || e <= 0 : typeof e !== 'number' || !(e > 0))))
      invalid(name, `${spatial} positive ${isInt ? 'integers' : 'numbers'}`, v);
    return arr;
  };
  const size = expand(options.size, 'size', true);
  const scale = size ? null : expand(options.scaleFactor, 'scaleFactor', false);
  if (!size && !scale) invalid('options', 'size or scaleFactor', options);
  const align = !!options.alignCorners;
  const input = h(x, 'input');
  if (mode === 'nearest') return op(`aten::upsample_nearest${spatial}d`, 'vec').t(input, size, scale);
  const expected = { linear: 1, bilinear: 2, bicubic: 2, trilinear: 3 }[mode];
  if (expected !== spatial) invalid('mode', `a mode for ${spatial} spatial dimension(s)`, mode);
  const name = { linear: 'upsample_linear1d', bilinear: 'upsample_bilinear2d', bicubic: 'upsample_bicubic2d', trilinear: 'upsample_trilinear3d' }[mode];
  return op(`aten::${name}`, 'vec').t(input, size, align, scale);
}

// Convolution and pooling ------------------------------------------------------------------------

export interface ConvOptions {
  stride?: number | number[];
  /** Numbers, or 'same' / 'valid' (stride 1 only for 'same', as in PyTorch). */
  padding?: number | number[] | 'same' | 'valid';
  dilation?: number | number[];
  groups?: number;
}

function conv(nd: number, x: Tensor, weight: Tensor, bias: Tensor | null | undefined, o?: ConvOptions): Tensor {
  o = opts(o);
  if (Tensor.isTensor(x) && x.ndim !== nd + 2 && x.ndim !== nd + 1) invalid('input', `a ${nd + 2}-D tensor (N, C, spatial...) or ${nd + 1}-D unbatched`, `shape [${x.shape}]`);
  const stride = ints(o.stride ?? 1, 'stride');
  const dilation = ints(o.dilation ?? 1, 'dilation');
  const groups = int(o.groups ?? 1, 'groups');
  const b = bias ? h(bias, 'bias') : null;
  if (o.padding === 'same' || o.padding === 'valid') {
    return op(`aten::conv${nd}d`, 'padding').t(h(x, 'input'), h(weight, 'weight'), b, stride, o.padding, dilation, groups);
  }
  return op(`aten::conv${nd}d`).t(h(x, 'input'), h(weight, 'weight'), b, stride, ints(o.padding ?? 0, 'padding'), dilation, groups);
}
export const conv1d = (x: Tensor, weight: Tensor, bias?: Tensor | null, options?: ConvOptions): Tensor => conv(1, x, weight, bias, options);
export const conv2d = (x: Tensor, weight: Tensor, bias?: Tensor | null, options?: ConvOptions): Tensor => conv(2, x, weight, bias, options);
export const conv3d = (x: Tensor, weight: Tensor, bias?: Tensor | null, options?: ConvOptions): Tensor => conv(3, x, weight, bias, options);

// oneDNN's blocked memory format (libtorch's "mkldnn" layout, CPU, float32): a
// network whose activations stay in it runs its convolutions without a reorder
// per call, with weights reordered once (mkldnnPackConv2dWeight). On the face
// recognition net (traced, 1 thread) batch 1 took 4.8 ms instead of channels-last's
// 6.2, batch 16 the same (docs/models.md has the ONNX comparison). Such tensors support
// conv, relu, add, pooling and toDense(); most other ops (and data()) need toDense() first.
let mkldnnKnown: boolean | undefined;
/** Whether this libtorch build has oneDNN (MKL-DNN) tensors. */
export function mkldnnAvailable(): boolean {
  if (mkldnnKnown === undefined) {
    try {
      const z = zeros([1]);
      try {
        toMkldnn(z).dispose();
      } finally {
        z.dispose();
      }
      mkldnnKnown = true;
    } catch {
      mkldnnKnown = false;
    }
  }
  return mkldnnKnown;
}
/** A dense CPU float32 tensor as a oneDNN (mkldnn-layout) tensor. */
export const toMkldnn = (x: Tensor): Tensor => op('aten::to_mkldnn').t(h(x, 'input'), null);
/** A oneDNN (mkldnn-layout) tensor back as an ordinary dense tensor. */
export const toDense = (x: Tensor): Tensor => op('aten::to_dense').t(h(x, 'input'), null);
/** The settings of a oneDNN conv2d: a packed weight is made for them and used with them. */
export type MkldnnConv2dOptions = Omit<ConvOptions, 'padding'> & { padding?: number | number[] };
/** A conv2d weight (O x I/groups x kH x kW, dense) reordered once into the blocked format oneDNN wants for these settings. */
export function mkldnnPackConv2dWeight(weight: Tensor, o: MkldnnConv2dOptions = {}): Tensor {
  const dense = toMkldnn(weight);
  try {
    return op('aten::mkldnn_reorder_conv2d_weight').t(h(dense, 'weight'), int2(o.padding ?? 0, 'padding'), int2(o.stride ?? 1, 'stride'), int2(o.dilation ?? 1, 'dilation'), int(o.groups ?? 1, 'groups'));
  } finally {
    dense.dispose();
  }
}
/** conv2d of a oneDNN tensor with a packed weight (mkldnnPackConv2dWeight, same settings); the result is a oneDNN tensor. */
export function mkldnnConv2d(x: Tensor, packedWeight: Tensor, bias: Tensor | null, o: MkldnnConv2dOptions = {}): Tensor {
  return op('aten::mkldnn_convolution').t(h(x, 'input'), h(packedWeight, 'weight'), bias ? h(bias, 'bias') : null, int2(o.padding ?? 0, 'padding'), int2(o.stride ?? 1, 'stride'), int2(o.dilation ?? 1, 'dilation'), int(o.groups ?? 1, 'groups'));
}

export interface ConvTransposeOptions {
  stride?: number | number[];
  padding?: number | number[];
  outputPadding?: number | number[];
  groups?: number;
  dilation?: number | number[];
}
function convTranspose(nd: number, x: Tensor, weight: Tensor, bias: Tensor | null | undefined, o?: ConvTransposeOptions): Tensor {
  o = opts(o);
  // libtorch names the overloads conv_transpose1d (default), conv_transpose2d.input, conv_transpose3d.input.
  return op(`aten::conv_transpose${nd}d`, nd === 1 ? '' : 'input').t(
    h(x, 'input'),
    h(weight, 'weight'),
    bias ? h(bias, 'bias') : null,
    ints(o.stride ?? 1, 'stride'),
    ints(o.padding ?? 0, 'padding'),
    ints(o.outputPadding ?? 0, 'outputPadding'),
    int(o.groups ?? 1, 'groups'),
    ints(o.dilation ?? 1, 'dilation'),
  );
}
export const convTranspose1d = (x: Tensor, w: Tensor, b?: Tensor | null, o?: ConvTransposeOptions): Tensor => convTranspose(1, x, w, b, o);
export const convTranspose2d = (x: Tensor, w: Tensor, b?: Tensor | null, o?: ConvTransposeOptions): Tensor => convTranspose(2, x, w, b, o);
export const convTranspose3d = (x: Tensor, w: Tensor, b?: Tensor | null, o?: ConvTransposeOptions): Tensor => convTranspose(3, x, w, b, o);

export interface PoolOptions {
  stride?: number | number[];
  padding?: number | number[];
  dilation?: number | number[];
  ceilMode?: boolean;
  /** avg pooling only */
  countIncludePad?: boolean;
}
function maxPool(nd: number, x: Tensor, kernelSize: number | number[], o?: PoolOptions): Tensor {
  o = opts(o);
  return op(`aten::max_pool${nd}d`).t(h(x, 'input'), ints(kernelSize, 'kernelSize'), o.stride === undefined ? [] : ints(o.stride, 'stride'), ints(o.padding ?? 0, 'padding'), ints(o.dilation ?? 1, 'dilation'), !!o.ceilMode);
}
function avgPool(nd: number, x: Tensor, kernelSize: number | number[], o?: PoolOptions): Tensor {
  o = opts(o);
  const args: NativeArg[] = [h(x, 'input'), ints(kernelSize, 'kernelSize'), o.stride === undefined ? [] : ints(o.stride, 'stride'), ints(o.padding ?? 0, 'padding'), !!o.ceilMode, o.countIncludePad ?? true];
  if (nd > 1) args.push(null); // divisor_override
  return op(`aten::avg_pool${nd}d`).t(...args);
}
export const maxPool1d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => maxPool(1, x, k, o);
export const maxPool2d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => maxPool(2, x, k, o);
export const maxPool3d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => maxPool(3, x, k, o);
export const avgPool1d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => avgPool(1, x, k, o);
export const avgPool2d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => avgPool(2, x, k, o);
export const avgPool3d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => avgPool(3, x, k, o);
export const adaptiveAvgPool1d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_avg_pool1d').t(h(x, 'input'), ints(size, 'outputSize'));
export const adaptiveAvgPool2d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_avg_pool2d').t(h(x, 'input'), typeof size === 'number' ? [size, size] : ints(size, 'outputSize'));
export const adaptiveAvgPool3d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_avg_pool3d').t(h(x, 'input'), typeof size === 'number' ? [size, size, size] : ints(size, 'outputSize'));
export const adaptiveMaxPool1d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_max_pool1d').ts(h(x, 'input'), ints(size, 'outputSize'))[0];
export const adaptiveMaxPool2d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_max_pool2d').ts(h(x, 'input'), typeof size === 'number' ? [size, size] : ints(size, 'outputSize'))[0];
export const adaptiveMaxPool3d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_max_pool3d').ts(h(x, 'input'), typeof size === 'number' ? [size, size, size] : ints(size, 'outputSize'))[0];

// Normalisation, dropout, linear ---------------------------------------------------------------------

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  training?: boolean;
  momentum?: number;
  eps?: number;
}
/** Batch normalisation; in training mode the running statistics are updated in place. */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, o?: BatchNormOptions): Tensor {
  o = opts(o);
  const opt = (t: Tensor | null | undefined, n: string) => (t ? h(t, n) : null);
  return op('aten::batch_norm').t(h(x, 'input'), opt(o.weight, 'weight'), opt(o.bias, 'bias'), opt(runningMean, 'runningMean'), opt(runningVar, 'runningVar'), !!o.training, o.momentum ?? 0.1, o.eps ?? 1e-5, true);
}
export function layerNorm(x: Tensor, normalizedShape: number[], o?: { weight?: Tensor | null; bias?: Tensor | null; eps?: number }): Tensor {
  o = opts(o);
  return op('aten::layer_norm').t(h(x, 'input'), ints(normalizedShape, 'normalizedShape'), o.weight ? h(o.weight, 'weight') : null, o.bias ? h(o.bias, 'bias') : null, o.eps ?? 1e-5, true);
}
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  if (typeof p !== 'number' || p < 0 || p > 1) invalid('p', 'a probability in [0, 1]', p);
  return op('aten::dropout').t(h(x, 'input'), p, !!training);
}
export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor => op('aten::linear').t(h(x, 'input'), h(weight, 'weight'), bias ? h(bias, 'bias') : null);
/** L2-normalises along dim (x / max(||x||, eps)), like torch.nn.functional.normalize. */
export function normalize(x: Tensor, p = 2, dim = 1, eps = 1e-12): Tensor {
  const n = norm(x, p, dim, true);
  const c = clamp(n, eps);
  n.dispose();
  const out = div(x, c);
  c.dispose();
  return out;
}

// Losses ---------------------------------------------------------------------------------

export type Reduction = 'none' | 'mean' | 'sum';
function reduction(r: Reduction | undefined): number {
  const code = { none: 0, mean: 1, sum: 2 }[r ?? 'mean'];
  if (code === undefined) invalid('reduction', "'none', 'mean' or 'sum'", r);
  return code;
}
export const mseLoss = (input: Tensor, target: Tensor, r?: Reduction): Tensor => op('aten::mse_loss').t(h(input, 'input'), h(target, 'target'), reduction(r));
export const l1Loss = (input: Tensor, target: Tensor, r?: Reduction): Tensor => op('aten::l1_loss').t(h(input, 'input'), h(target, 'target'), reduction(r));
export const binaryCrossEntropy = (input: Tensor, target: Tensor, o?: { weight?: Tensor; reduction?: Reduction }): Tensor =>
  (o = opts(o)) && op('aten::binary_cross_entropy').t(h(input, 'input'), h(target, 'target'), o.weight ? h(o.weight, 'weight') : null, reduction(o.reduction));
export const binaryCrossEntropyWithLogits = (input: Tensor, target: Tensor, o?: { weight?: Tensor; posWeight?: Tensor; reduction?: Reduction }): Tensor =>
  (o = opts(o)) && op('aten::binary_cross_entropy_with_logits').t(h(input, 'input'), h(target, 'target'), o.weight ? h(o.weight, 'weight') : null, o.posWeight ? h(o.posWeight, 'posWeight') : null, reduction(o.reduction));
/** Cross-entropy of logits against class indices (int64) or class probabilities. */
export const crossEntropy = (input: Tensor, target: Tensor, o?: { weight?: Tensor; reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number }): Tensor =>
  (o = opts(o)) && op('aten::cross_entropy_loss').t(h(input, 'input'), h(target, 'target'), o.weight ? h(o.weight, 'weight') : null, reduction(o.reduction), o.ignoreIndex ?? -100, o.labelSmoothing ?? 0);
export const nllLoss = (input: Tensor, target: Tensor, o?: { weight?: Tensor; reduction?: Reduction; ignoreIndex?: number }): Tensor =>
  (o = opts(o)) && op('aten::nll_loss_nd').t(h(input, 'input'), h(target, 'target'), o.weight ? h(o.weight, 'weight') : null, reduction(o.reduction), o.ignoreIndex ?? -100);

// Tensor methods ---------------------------------------------------------------------------------

// The operators as Tensor methods (x.mul(w).sum()), added to Tensor.prototype
// here rather than defined in tensor.ts, so that tensor.ts need not import this
// module (as tfjs-core's chained ops do). Declaration merging types them; each
// method calls its operator directly (no extra layer on the hot path).
declare module './tensor' {
  interface Tensor {
    add(other: Tensor | number, alpha?: number): Tensor;
    sub(other: Tensor | number, alpha?: number): Tensor;
    mul(other: Tensor | number): Tensor;
    div(other: Tensor | number): Tensor;
    pow(exponent: Tensor | number): Tensor;
    neg(): Tensor;
    add_(other: Tensor | number, alpha?: number): this;
    sub_(other: Tensor | number, alpha?: number): this;
    mul_(other: Tensor | number): this;
    copy_(src: Tensor): this;
    zero_(): this;
    fill_(value: number): this;
    eq(other: Tensor | number): Tensor;
    ne(other: Tensor | number): Tensor;
    lt(other: Tensor | number): Tensor;
    le(other: Tensor | number): Tensor;
    gt(other: Tensor | number): Tensor;
    ge(other: Tensor | number): Tensor;
    matmul(other: Tensor): Tensor;
    mm(other: Tensor): Tensor;
    bmm(other: Tensor): Tensor;
    sum(dim?: number | number[], keepdim?: boolean): Tensor;
    mean(dim?: number | number[], keepdim?: boolean): Tensor;
    max(): Tensor;
    max(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
    min(): Tensor;
    min(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
    argmax(dim?: number, keepdim?: boolean): Tensor;
    argmin(dim?: number, keepdim?: boolean): Tensor;
    norm(p?: number, dim?: number | number[], keepdim?: boolean): Tensor;
    var(dim?: number | number[], options?: { unbiased?: boolean; keepdim?: boolean }): Tensor;
    std(dim?: number | number[], options?: { unbiased?: boolean; keepdim?: boolean }): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    abs(): Tensor;
    sign(): Tensor;
    square(): Tensor;
    clamp(min?: number | null, max?: number | null): Tensor;
    relu(): Tensor;
    sigmoid(): Tensor;
    tanh(): Tensor;
    softmax(dim: number): Tensor;
    logSoftmax(dim: number): Tensor;
    reshape(shape: number[]): Tensor;
    view(shape: number[]): Tensor;
    permute(dims: number[]): Tensor;
    transpose(dim0: number, dim1: number): Tensor;
    /** Transpose of a 2-D tensor. */
    t(): Tensor;
    squeeze(dim?: number): Tensor;
    unsqueeze(dim: number): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    expand(shape: number[]): Tensor;
    repeat(repeats: number[]): Tensor;
    flip(dims: number[]): Tensor;
    split(splitSize: number | number[], dim?: number): Tensor[];
    chunk(chunks: number, dim?: number): Tensor[];
    slice(dim: number, start?: number | null, end?: number | null, step?: number): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    select(dim: number, index: number): Tensor;
    indexSelect(dim: number, index: Tensor): Tensor;
    gather(dim: number, index: Tensor): Tensor;
    maskedFill(mask: Tensor, value: number): Tensor;
    maskedSelect(mask: Tensor): Tensor;
    topk(k: number, dim?: number, largest?: boolean, sorted?: boolean): { values: Tensor; indices: Tensor };
    sort(dim?: number, descending?: boolean): { values: Tensor; indices: Tensor };
    argsort(dim?: number, descending?: boolean): Tensor;
  }
}

const methods = {
  add(this: Tensor, other: Tensor | number, alpha?: number): Tensor {
    return add(this, other, alpha);
  },
  sub(this: Tensor, other: Tensor | number, alpha?: number): Tensor {
    return sub(this, other, alpha);
  },
  mul(this: Tensor, other: Tensor | number): Tensor {
    return mul(this, other);
  },
  div(this: Tensor, other: Tensor | number): Tensor {
    return div(this, other);
  },
  pow(this: Tensor, exponent: Tensor | number): Tensor {
    return pow(this, exponent);
  },
  neg(this: Tensor): Tensor {
    return neg(this);
  },
  add_(this: Tensor, other: Tensor | number, alpha?: number): Tensor {
    add_(this, other, alpha);
    return this;
  },
  sub_(this: Tensor, other: Tensor | number, alpha?: number): Tensor {
    if (alpha !== undefined && typeof alpha !== 'number') invalid('alpha', 'a number', alpha);
    add_(this, other, -(alpha ?? 1));
    return this;
  },
  mul_(this: Tensor, other: Tensor | number): Tensor {
    mul_(this, other);
    return this;
  },
  copy_(this: Tensor, src: Tensor): Tensor {
    copy_(this, src);
    return this;
  },
  zero_(this: Tensor): Tensor {
    zero_(this);
    return this;
  },
  fill_(this: Tensor, value: number): Tensor {
    fill_(this, value);
    return this;
  },
  eq(this: Tensor, other: Tensor | number): Tensor {
    return eq(this, other);
  },
  ne(this: Tensor, other: Tensor | number): Tensor {
    return ne(this, other);
  },
  lt(this: Tensor, other: Tensor | number): Tensor {
    return lt(this, other);
  },
  le(this: Tensor, other: Tensor | number): Tensor {
    return le(this, other);
  },
  gt(this: Tensor, other: Tensor | number): Tensor {
    return gt(this, other);
  },
  ge(this: Tensor, other: Tensor | number): Tensor {
    return ge(this, other);
  },
  matmul(this: Tensor, other: Tensor): Tensor {
    return matmul(this, other);
  },
  mm(this: Tensor, other: Tensor): Tensor {
    return mm(this, other);
  },
  bmm(this: Tensor, other: Tensor): Tensor {
    return bmm(this, other);
  },
  sum(this: Tensor, dim?: number | number[], keepdim?: boolean): Tensor {
    return sum(this, dim, keepdim);
  },
  mean(this: Tensor, dim?: number | number[], keepdim?: boolean): Tensor {
    return mean(this, dim, keepdim);
  },
  max: function (this: Tensor, dim?: number, keepdim?: boolean): Tensor | { values: Tensor; indices: Tensor } {
    return dim === undefined ? max(this) : max(this, dim, keepdim);
  } as Tensor['max'],
  min: function (this: Tensor, dim?: number, keepdim?: boolean): Tensor | { values: Tensor; indices: Tensor } {
    return dim === undefined ? min(this) : min(this, dim, keepdim);
  } as Tensor['min'],
  argmax(this: Tensor, dim?: number, keepdim?: boolean): Tensor {
    return argmax(this, dim, keepdim);
  },
  argmin(this: Tensor, dim?: number, keepdim?: boolean): Tensor {
    return argmin(this, dim, keepdim);
  },
  norm(this: Tensor, p?: number, dim?: number | number[], keepdim?: boolean): Tensor {
    return norm(this, p, dim, keepdim);
  },
  var(this: Tensor, dim?: number | number[], options?: { unbiased?: boolean; keepdim?: boolean }): Tensor {
    return variance(this, dim, options);
  },
  std(this: Tensor, dim?: number | number[], options?: { unbiased?: boolean; keepdim?: boolean }): Tensor {
    return std(this, dim, options);
  },
  exp(this: Tensor): Tensor {
    return exp(this);
  },
  log(this: Tensor): Tensor {
    return log(this);
  },
  sqrt(this: Tensor): Tensor {
    return sqrt(this);
  },
  rsqrt(this: Tensor): Tensor {
    return rsqrt(this);
  },
  abs(this: Tensor): Tensor {
    return abs(this);
  },
  sign(this: Tensor): Tensor {
    return sign(this);
  },
  square(this: Tensor): Tensor {
    return square(this);
  },
  clamp(this: Tensor, min?: number | null, max?: number | null): Tensor {
    return clamp(this, min, max);
  },
  relu(this: Tensor): Tensor {
    return relu(this);
  },
  sigmoid(this: Tensor): Tensor {
    return sigmoid(this);
  },
  tanh(this: Tensor): Tensor {
    return tanh(this);
  },
  softmax(this: Tensor, dim: number): Tensor {
    return softmax(this, dim);
  },
  logSoftmax(this: Tensor, dim: number): Tensor {
    return logSoftmax(this, dim);
  },
  reshape(this: Tensor, shape: number[]): Tensor {
    return reshape(this, shape);
  },
  view(this: Tensor, shape: number[]): Tensor {
    return view(this, shape);
  },
  permute(this: Tensor, dims: number[]): Tensor {
    return permute(this, dims);
  },
  transpose(this: Tensor, dim0: number, dim1: number): Tensor {
    return transpose(this, dim0, dim1);
  },
  t(this: Tensor): Tensor {
    return transpose(this, 0, 1);
  },
  squeeze(this: Tensor, dim?: number): Tensor {
    return squeeze(this, dim);
  },
  unsqueeze(this: Tensor, dim: number): Tensor {
    return unsqueeze(this, dim);
  },
  flatten(this: Tensor, startDim?: number, endDim?: number): Tensor {
    return flatten(this, startDim, endDim);
  },
  expand(this: Tensor, shape: number[]): Tensor {
    return expand(this, shape);
  },
  repeat(this: Tensor, repeats: number[]): Tensor {
    return repeat(this, repeats);
  },
  flip(this: Tensor, dims: number[]): Tensor {
    return flip(this, dims);
  },
  split(this: Tensor, splitSize: number | number[], dim?: number): Tensor[] {
    return split(this, splitSize, dim);
  },
  chunk(this: Tensor, chunks: number, dim?: number): Tensor[] {
    return chunk(this, chunks, dim);
  },
  slice(this: Tensor, dim: number, start?: number | null, end?: number | null, step?: number): Tensor {
    return slice(this, dim, start, end, step);
  },
  narrow(this: Tensor, dim: number, start: number, length: number): Tensor {
    return narrow(this, dim, start, length);
  },
  select(this: Tensor, dim: number, index: number): Tensor {
    return select(this, dim, index);
  },
  indexSelect(this: Tensor, dim: number, index: Tensor): Tensor {
    return indexSelect(this, dim, index);
  },
  gather(this: Tensor, dim: number, index: Tensor): Tensor {
    return gather(this, dim, index);
  },
  maskedFill(this: Tensor, mask: Tensor, value: number): Tensor {
    return maskedFill(this, mask, value);
  },
  maskedSelect(this: Tensor, mask: Tensor): Tensor {
    return maskedSelect(this, mask);
  },
  topk(this: Tensor, k: number, dim?: number, largest?: boolean, sorted?: boolean): { values: Tensor; indices: Tensor } {
    return topk(this, k, dim, largest, sorted);
  },
  sort(this: Tensor, dim?: number, descending?: boolean): { values: Tensor; indices: Tensor } {
    return sort(this, dim, descending);
  },
  argsort(this: Tensor, dim?: number, descending?: boolean): Tensor {
    return argsort(this, dim, descending);
  },
} satisfies Partial<Record<keyof Tensor, unknown>>;
// Each implementation matches its declaration above.
const typed: Pick<Tensor, keyof typeof methods> = methods;
// Non-enumerable, like class methods.
for (const name of Object.keys(typed) as (keyof typeof methods)[]) {
  Object.defineProperty(Tensor.prototype, name, { value: typed[name], writable: true, configurable: true, enumerable: false });
}
