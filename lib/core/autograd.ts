// Autograd outside the Tensor methods: noGrad() scopes and torch.autograd.grad.
import { ArgumentError, TorchError, TorchfaceError, invalid } from './errors';
import { native } from './native';
import { Tensor, handleOf } from './tensor';

/** Runs fn with autograd recording off on this thread (fn must be synchronous). */
export function noGrad<T>(fn: () => T): T {
  const previous = native.setGradEnabled(false);
  try {
    const r = fn();
    if (r instanceof Promise) throw new ArgumentError('noGrad(fn)', 'a synchronous function', 'a function returning a Promise');
    return r;
  } finally {
    native.setGradEnabled(previous);
  }
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/** Gradients of outputs with respect to inputs, like torch.autograd.grad. */
export function grad(
  outputs: Tensor | Tensor[],
  inputs: Tensor | Tensor[],
  options: { gradOutputs?: (Tensor | null)[]; retainGraph?: boolean; createGraph?: boolean; allowUnused?: boolean } = {},
): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  options ??= {};
  const gradOutputs = options.gradOutputs ?? outs.map(() => null);
  if (!Array.isArray(gradOutputs) || gradOutputs.length !== outs.length) invalid('gradOutputs', `an array of ${outs.length} tensors or nulls`, gradOutputs);
  try {
    const r = native.autogradGrad(
      outs.map((t, i) => handleOf(t, `outputs[${i}]`)),
      ins.map((t, i) => handleOf(t, `inputs[${i}]`)),
      gradOutputs.map((g, i) => (g ? handleOf(g, `gradOutputs[${i}]`) : null)),
      options.retainGraph ?? null,
      !!options.createGraph,
      !!options.allowUnused,
    );
    return r.map((h) => (h ? new Tensor(h) : null));
  } catch (e) {
    if (e instanceof TorchfaceError) throw e; // ArgumentError / DisposedError from handleOf
    throw new TorchError('grad', (e as Error).message);
  }
}
