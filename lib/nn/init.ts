// Initialisation (torch.nn.init), in place and without autograd.
import { invalid } from '../core/errors';
import { Tensor, noGrad } from '../core';
import * as F from '../ops';

/** Fills t with U(low, high). */
export function uniform_(t: Tensor, low: number, high: number): Tensor {
  noGrad(() => (F.callOp('aten::uniform_', '', t, low, high, null) as Tensor).dispose());
  return t;
}
/** Fills t with N(mean, std^2). */
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  noGrad(() => (F.callOp('aten::normal_', '', t, mean, std, null) as Tensor).dispose());
  return t;
}
export function constant_(t: Tensor, value: number): Tensor {
  noGrad(() => t.fill_(value));
  return t;
}
/** fan_in and fan_out of a weight (PyTorch's _calculate_fan_in_and_fan_out). */
export function fans(shape: number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) invalid('weight', 'a tensor with at least 2 dimensions', `shape [${shape}]`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}
/** He (Kaiming) uniform initialisation; PyTorch's default for Linear and Conv uses a = sqrt(5). */
export function kaimingUniform_(t: Tensor, a = 0, mode: 'fanIn' | 'fanOut' = 'fanIn', nonlinearity: 'relu' | 'leaky_relu' | 'linear' = 'leaky_relu'): Tensor {
  const fan = fans(t.shape)[mode];
  const gain = nonlinearity === 'relu' ? Math.SQRT2 : nonlinearity === 'linear' ? 1 : Math.sqrt(2 / (1 + a * a));
  const bound = Math.sqrt(3) * (gain / Math.sqrt(fan));
  return uniform_(t, -bound, bound);
}
export function kaimingNormal_(t: Tensor, mode: 'fanIn' | 'fanOut' = 'fanOut'): Tensor {
  const fan = fans(t.shape)[mode];
  return normal_(t, 0, Math.SQRT2 / Math.sqrt(fan));
}
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = fans(t.shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}
