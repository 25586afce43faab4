// Adam and AdamW (optionally AMSGrad), exactly as torch.optim.Adam / AdamW
// (PyTorch 1.13, single-tensor path): same operations in the same order.
import { invalid } from '../core/errors';
import * as F from '../ops';
import { Tensor } from '../core';
import { Optimizer, ParamGroup, Params, checkNumber } from './optimizer';

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** L2 penalty added to the gradient (Adam) or decoupled decay (AdamW). */
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
}

abstract class AdamBase extends Optimizer {
  protected abstract readonly decoupled: boolean;
  constructor(params: Params, options: AdamOptions, defaultWeightDecay: number) {
    if (options === null || typeof options !== 'object') invalid('options', 'an object', options);
    super(params, { lr: options.lr ?? 1e-3, betas: options.betas ?? [0.9, 0.999], eps: options.eps ?? 1e-8, weightDecay: options.weightDecay ?? defaultWeightDecay, amsgrad: options.amsgrad ?? false, maximize: options.maximize ?? false });
  }
  protected validateGroup(g: ParamGroup): void {
    super.validateGroup(g);
    const b = g.betas as number[];
    if (!Array.isArray(b) || b.length !== 2) invalid('betas', 'two numbers in [0, 1)', b);
    checkNumber(b[0], 'betas[0]', 0, 1);
    checkNumber(b[1], 'betas[1]', 0, 1);
    if (b[0] >= 1 || b[1] >= 1) invalid('betas', 'two numbers in [0, 1)', b);
    checkNumber(g.eps, 'eps');
    checkNumber(g.weightDecay, 'weightDecay');
  }
  protected updateParam(p: Tensor, g: ParamGroup): void {
    const grad0 = p.grad;
    if (!grad0) return;
    const [beta1, beta2] = g.betas as [number, number];
    const lr = g.lr;
    const weightDecay = g.weightDecay as number;
    const eps = g.eps as number;
    let grad = g.maximize ? grad0.neg() : grad0;
    const st = this.stateOf(p);
    if (st.step === undefined) {
      st.step = 0;
      st.exp_avg = this.keepState(F.callOp('aten::zeros_like', '', p) as Tensor);
      st.exp_avg_sq = this.keepState(F.callOp('aten::zeros_like', '', p) as Tensor);
      if (g.amsgrad) st.max_exp_avg_sq = this.keepState(F.callOp('aten::zeros_like', '', p) as Tensor);
    }
    const expAvg = st.exp_avg as Tensor;
    const expAvgSq = st.exp_avg_sq as Tensor;
    const step = (st.step = (st.step as number) + 1);
    if (this.decoupled) p.mul_(1 - lr * weightDecay);
    else if (weightDecay !== 0) grad = grad.add(p, weightDecay);
    expAvg.mul_(beta1).add_(grad, 1 - beta1);
    F.addcmul_(expAvgSq.mul_(beta2), grad, grad, 1 - beta2);
    const biasCorrection1 = 1 - beta1 ** step;
    const biasCorrection2 = 1 - beta2 ** step;
    const stepSize = lr / biasCorrection1;
    const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
    let second = expAvgSq;
    if (g.amsgrad) {
      if (!st.max_exp_avg_sq) st.max_exp_avg_sq = this.keepState(F.callOp('aten::zeros_like', '', p) as Tensor);
      second = st.max_exp_avg_sq as Tensor;
      F.callOp('aten::maximum', 'out', second, expAvgSq, second);
    }
    const denom = second.sqrt().div(biasCorrection2Sqrt).add_(eps);
    F.addcdiv_(p, expAvg, denom, -stepSize);
  }
}

/** Adam (Kingma & Ba): lr 1e-3, betas [0.9, 0.999], eps 1e-8, weightDecay 0 (an L2 term added to the gradient). */
export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: Params, options: AdamOptions = {}) {
    super(params, options, 0);
  }
}

/** AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, default 1e-2. */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: Params, options: AdamOptions = {}) {
    super(params, options, 1e-2);
  }
}
