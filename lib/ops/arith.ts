// Pointwise arithmetic, activations, comparisons and linear algebra: functions with PyTorch's names, and the Tensor methods of the same ops.
import type { TensorHandle } from '../../binding';
import { TorchError, invalid } from '../core/errors';
import { native } from '../core/native';
import { Op, Tensor } from '../core/tensor';
import { addTensorMethods, h, int, num, op, tensors } from './dispatch';

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


// Linear layers ------------------------------------------------------------------------------

export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor => op('aten::linear').t(h(x, 'input'), h(weight, 'weight'), bias ? h(bias, 'bias') : null);

declare module '../core/tensor' {
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
    maskedFill(mask: Tensor, value: number): Tensor;
    maskedSelect(mask: Tensor): Tensor;
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
  maskedFill(this: Tensor, mask: Tensor, value: number): Tensor {
    return maskedFill(this, mask, value);
  },
  maskedSelect(this: Tensor, mask: Tensor): Tensor {
    return maskedSelect(this, mask);
  },
} satisfies Partial<Record<keyof Tensor, unknown>>;
// Each implementation matches its declaration above.
const typed: Pick<Tensor, keyof typeof methods> = methods;
addTensorMethods(typed);
