// Loss functions: functions with PyTorch's names, and the Tensor methods of the same ops.
import { invalid } from '../core/errors';
import { Tensor } from '../core/tensor';
import { h, op, opts } from './dispatch';

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
