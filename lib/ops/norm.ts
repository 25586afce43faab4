// Normalisation and dropout: functions with PyTorch's names, and the Tensor methods of the same ops.
import { invalid } from '../core/errors';
import { Tensor } from '../core/tensor';
import { h, ints, op, opts } from './dispatch';
import { clamp, div } from './arith';
import { norm } from './reduce';

// Normalisation and dropout ---------------------------------------------------------------------------

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
/** L2-normalises along dim (x / max(||x||, eps)), like torch.nn.functional.normalize. */
export function normalize(x: Tensor, p = 2, dim = 1, eps = 1e-12): Tensor {
  const n = norm(x, p, dim, true);
  const c = clamp(n, eps);
  n.dispose();
  const out = div(x, c);
  c.dispose();
  return out;
}
