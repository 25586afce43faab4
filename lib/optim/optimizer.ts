// Optimizer: the base of torchface's optimizers, after torch.optim.Optimizer.
// Parameters are updated in place under noGrad with in-place ops, so the
// parameter tensors (and references to them) never change; temporaries are
// disposed after each parameter's update.
import { ArgumentError, invalid } from '../core/errors';
import { native } from '../core/native';
import '../ops'; // the Tensor methods used here (zero_())
import { Tensor, isFloatingDType, keep, noGrad, tidy } from '../core';

/** A value kept per parameter: a tensor (moments, buffers) or a number (step counts). */
export type StateValue = Tensor | number | Tensor[] | number[] | null;
export type ParamState = Record<string, StateValue>;

/** A group of parameters sharing hyper-parameters (lr, momentum, ...). */
export interface ParamGroup {
  params: Tensor[];
  lr: number;
  /** Set by the first learning-rate scheduler attached (PyTorch's initial_lr). */
  initialLr?: number;
  [option: string]: unknown;
}
/** What the constructor accepts: parameters, or groups of parameters with their own options. */
export type Params = Iterable<Tensor> | Array<{ params: Iterable<Tensor> } & Record<string, unknown>>;

/**
 * A snapshot of an optimizer: per-parameter state by parameter index (in group
 * order, as PyTorch numbers them) and the groups' hyper-parameters with their
 * parameter indices. Tensors in it are copies owned by the caller (dispose them
 * with `dispose(sd.state)`); see saveOptimizer() in torchface's model files to
 * store one.
 */
export interface OptimizerStateDict {
  state: Map<number, ParamState>;
  paramGroups: Array<Record<string, unknown> & { params: number[] }>;
}

/** A function that recomputes the loss: clears gradients, runs forward and backward, returns the loss. A returned Tensor is read and disposed by the optimizer. */
export type Closure = () => Tensor | number;

export abstract class Optimizer {
  readonly paramGroups: ParamGroup[] = [];
  readonly state = new Map<Tensor, ParamState>();
  readonly defaults: Record<string, unknown>;

  constructor(params: Params, defaults: Record<string, unknown>) {
    this.defaults = { ...defaults };
    if (params === null || typeof params !== 'object' || typeof (params as Iterable<unknown>)[Symbol.iterator] !== 'function')
      invalid('params', 'an iterable of tensors or of parameter groups', params);
    const list = [...(params as Iterable<unknown>)];
    if (list.length === 0) invalid('params', 'a non-empty list of parameters', list);
    if (list[0] instanceof Tensor) this.addParamGroup({ params: list as Tensor[] });
    else for (const g of list) this.addParamGroup(g as { params: Iterable<Tensor> });
  }

  /** Adds a group of parameters; options not given take the optimizer's defaults. */
  addParamGroup(group: { params: Iterable<Tensor> } & Record<string, unknown>): void {
    if (group === null || typeof group !== 'object' || !group.params) invalid('paramGroup', 'an object with params', group);
    const params = group.params instanceof Tensor ? [group.params] : [...group.params];
    params.forEach((p, i) => {
      if (!(p instanceof Tensor)) invalid(`params[${i}]`, 'a Tensor', p);
      if (!isFloatingDType(p.dtype)) invalid(`params[${i}]`, 'a floating-point tensor', `a ${p.dtype} tensor`);
      if (!p.isLeaf) invalid(`params[${i}]`, 'a leaf tensor (a parameter, not the result of an operation)', 'a non-leaf tensor');
    });
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    for (const p of params) {
      if (seen.has(p)) throw new ArgumentError('params', 'each parameter in only one group', 'a parameter given twice');
      seen.add(p);
    }
    const full = { ...this.defaults, ...group, params } as ParamGroup;
    this.validateGroup(full);
    this.paramGroups.push(full);
  }

  /** Checks a group's hyper-parameters; subclasses extend it. */
  protected validateGroup(g: ParamGroup): void {
    if (typeof g.lr !== 'number' || !(g.lr >= 0)) invalid('lr', 'a non-negative number', g.lr);
  }

  /** All parameters, in group order. */
  get params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** Clears the gradients of every parameter (to none by default, as PyTorch 2 does). */
  zeroGrad(setToNone = true): void {
    for (const p of this.params) {
      if (setToNone) p.grad = null;
      else {
        const g = p.grad;
        if (g) {
          noGrad(() => g.zero_());
          g.dispose();
        }
      }
    }
  }

  /**
   * One optimisation step. With a closure, it is called first (with autograd
   * on) and the loss it returns is returned.
   */
  step(closure?: Closure): number | undefined {
    const loss = closure ? evaluate(closure) : undefined;
    noGrad(() => {
      for (const group of this.paramGroups) for (const p of group.params) tidy(() => this.updateParam(p, group));
    });
    return loss;
  }

  /** Updates one parameter in place from its gradient (called under noGrad inside tidy). */
  protected abstract updateParam(p: Tensor, group: ParamGroup): void;

  /** The state of a parameter, created empty on first use. */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) this.state.set(p, (s = {}));
    return s;
  }

  /** A tensor kept in the optimizer's state (survives the tidy() around the update). */
  protected keepState(t: Tensor): Tensor {
    return keep(t);
  }

  /** A snapshot of the optimizer: state copies by parameter index and the groups' hyper-parameters. */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...rest } = g;
      return { ...structuredClone(rest), params: params.map((p) => (index.has(p) ? index.get(p)! : (index.set(p, index.size), index.size - 1))) };
    });
    const state = new Map<number, ParamState>();
    noGrad(() => {
      for (const [p, s] of this.state) {
        const i = index.get(p);
        if (i === undefined) continue;
        state.set(i, mapState(s, (t) => t.clone()));
      }
    });
    return { state, paramGroups };
  }

  /**
   * Restores a snapshot taken with stateDict() (of an optimizer over parameters
   * of the same shapes, in the same order). State tensors are copied and cast to
   * each parameter's device (and dtype, for floating-point state).
   */
  loadStateDict(sd: OptimizerStateDict): void {
    if (!sd || !(sd.state instanceof Map) || !Array.isArray(sd.paramGroups)) invalid('stateDict', 'an optimizer state dict ({ state: Map, paramGroups })', sd);
    if (sd.paramGroups.length !== this.paramGroups.length)
      throw new ArgumentError('stateDict', `${this.paramGroups.length} parameter group(s)`, `${sd.paramGroups.length} group(s)`);
    sd.paramGroups.forEach((g, i) => {
      if (!Array.isArray(g.params) || g.params.length !== this.paramGroups[i].params.length)
        throw new ArgumentError(`stateDict.paramGroups[${i}]`, `${this.paramGroups[i].params.length} parameters`, `${g.params?.length} parameters`);
    });
    const byIndex = new Map<number, Tensor>();
    sd.paramGroups.forEach((g, gi) => g.params.forEach((idx, k) => byIndex.set(idx, this.paramGroups[gi].params[k])));
    const fresh = new Map<Tensor, ParamState>();
    noGrad(() => {
      for (const [idx, s] of sd.state) {
        const p = byIndex.get(idx);
        if (!p) throw new ArgumentError('stateDict.state', 'parameter indices of the groups', idx);
        fresh.set(
          p,
          mapState(s, (t, key) => {
            if (!(t instanceof Tensor)) invalid(`stateDict.state[${idx}].${key}`, 'a Tensor', t);
            // As PyTorch: floating-point state follows the parameter's dtype, except step counts.
            const cast = isFloatingDType(t.dtype) && key !== 'step' ? p.dtype : undefined;
            return t.to({ device: p.device, dtype: cast, copy: true });
          }),
        );
      }
    });
    this.disposeState();
    for (const [p, s] of fresh) this.state.set(p, s);
    sd.paramGroups.forEach((g, i) => {
      const { params: _ignored, ...rest } = g;
      Object.assign(this.paramGroups[i], structuredClone(rest));
    });
  }

  private disposeState(): void {
    for (const s of this.state.values()) mapState(s, (t) => (t.dispose(), t));
    this.state.clear();
  }

  /** Releases the optimizer's state tensors (the parameters are not touched). */
  dispose(): void {
    this.disposeState();
  }
}

function mapState(s: ParamState, f: (t: Tensor, key: string) => Tensor): ParamState {
  const out: ParamState = {};
  for (const [k, v] of Object.entries(s)) {
    if (v instanceof Tensor) out[k] = f(v, k);
    else if (Array.isArray(v) && v.length && v[0] instanceof Tensor) out[k] = (v as Tensor[]).map((t) => f(t, k));
    else out[k] = Array.isArray(v) ? v.slice() as number[] : v;
  }
  return out;
}

/** Runs a closure with autograd on; returns its loss as a number (disposing a returned tensor). */
export function evaluate(closure: Closure): number {
  if (typeof closure !== 'function') invalid('closure', 'a function returning the loss', closure);
  const previous = native.setGradEnabled(true);
  let r: Tensor | number;
  try {
    r = closure();
  } finally {
    native.setGradEnabled(previous);
  }
  if (r instanceof Tensor) {
    const v = r.item();
    r.dispose();
    return v;
  }
  if (typeof r !== 'number') invalid('closure()', 'a loss Tensor or number', r);
  return r;
}

export function checkNumber(v: unknown, name: string, min = 0, max = Infinity, minInclusive = true): number {
  if (typeof v !== 'number' || Number.isNaN(v) || (minInclusive ? v < min : v <= min) || v > max)
    invalid(name, `a number in ${minInclusive ? '[' : '('}${min}, ${max}${max === Infinity ? ')' : ']'}`, v);
  return v;
}
