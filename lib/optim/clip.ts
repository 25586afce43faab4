import { invalid } from '../core/errors';
import * as F from '../ops';
import { Tensor, noGrad, tidy } from '../core';

/**
 * Scales gradients in place so that their total norm (over all parameters,
 * as if concatenated) is at most maxNorm, like torch.nn.utils.clip_grad_norm_.
 * Returns the total norm before clipping. normType may be Infinity.
 */
export function clipGradNorm(parameters: Iterable<Tensor>, maxNorm: number, normType = 2): number {
  if (typeof maxNorm !== 'number' || !(maxNorm >= 0)) invalid('maxNorm', 'a non-negative number', maxNorm);
  if (typeof normType !== 'number' || !(normType > 0)) invalid('normType', 'a positive number or Infinity', normType);
  return noGrad(() =>
    tidy(() => {
      const grads = [...parameters].map((p) => p.grad).filter((g): g is Tensor => g !== null);
      if (grads.length === 0) return 0;
      let total: Tensor;
      if (normType === Infinity) {
        const norms = grads.map((g) => F.max(F.abs(g)));
        total = norms.length === 1 ? norms[0] : F.max(F.stack(norms));
      } else total = F.norm(F.stack(grads.map((g) => F.norm(g, normType))), normType);
      // max_norm / (total + 1e-6) is reciprocal() * max_norm in PyTorch (Tensor.__rtruediv__).
      const coef = F.clamp(F.mul(F.reciprocal(F.add(total, 1e-6)), maxNorm), null, 1);
      for (const g of grads) g.mul_(coef);
      return total.item();
    }),
  );
}
