// SGD with momentum, dampening, Nesterov momentum and weight decay, exactly as
// torch.optim.SGD (PyTorch 1.13, single-tensor path).
import { invalid } from '../core/errors';
import '../ops'; // the Tensor methods used here (neg(), add(), mul_(), add_())
import { Tensor } from '../core';
import { Optimizer, ParamGroup, Params, checkNumber } from './optimizer';

export interface SGDOptions {
  /** Learning rate (required, as in PyTorch). */
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  maximize?: boolean;
}

export class SGD extends Optimizer {
  constructor(params: Params, options: SGDOptions) {
    if (options === null || typeof options !== 'object') invalid('options', 'an object with lr', options);
    super(params, { lr: options.lr, momentum: options.momentum ?? 0, dampening: options.dampening ?? 0, weightDecay: options.weightDecay ?? 0, nesterov: options.nesterov ?? false, maximize: options.maximize ?? false });
  }
  protected validateGroup(g: ParamGroup): void {
    super.validateGroup(g);
    checkNumber(g.momentum, 'momentum');
    checkNumber(g.dampening, 'dampening');
    checkNumber(g.weightDecay, 'weightDecay');
    if (g.nesterov && (!((g.momentum as number) > 0) || g.dampening !== 0)) invalid('nesterov', 'false unless momentum > 0 and dampening = 0', g.nesterov);
  }
  protected updateParam(p: Tensor, g: ParamGroup): void {
    const grad = p.grad;
    if (!grad) return;
    const momentum = g.momentum as number;
    const weightDecay = g.weightDecay as number;
    let d = g.maximize ? grad.neg() : grad;
    if (weightDecay !== 0) d = d.add(p, weightDecay);
    if (momentum !== 0) {
      const st = this.stateOf(p);
      let buf = st.momentum_buffer as Tensor | undefined | null;
      if (!buf) st.momentum_buffer = buf = this.keepState(d.clone());
      else buf.mul_(momentum).add_(d, 1 - (g.dampening as number));
      d = g.nesterov ? d.add(buf, momentum) : buf;
    }
    p.add_(d, -g.lr);
  }
}
