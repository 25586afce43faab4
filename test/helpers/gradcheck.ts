// Finite-difference gradient checking, like torch.autograd.gradcheck but
// projected: for a random weighting v of the outputs, the autograd gradient of
// f(x) = sum(v * fn(x)) (a vector-Jacobian product, J^T v) is compared with
// central differences (f(x + eps e_i) - f(x - eps e_i)) / 2 eps for every
// element i of every input that requires grad. A random v makes a wrong
// Jacobian entry show up with probability 1, at the cost of one backward pass
// and 2 * numel forward passes.
import { strict as assert } from 'assert';
import { Tensor, grad, noGrad, tensor, tidy } from '../../lib';
import { randomValues } from './util';

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-6, as torch.autograd.gradcheck). */
  eps?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Relative tolerance (default 1e-3). */
  rtol?: number;
  /** Seed of the output weighting v. */
  seed?: number;
  /** Name used in failure messages. */
  name?: string;
}

export interface GradcheckReport {
  /** Number of input elements whose derivative was compared. */
  checked: number;
  /** Largest |analytic - numeric| seen. */
  maxAbsError: number;
}

type Fn = (...inputs: Tensor[]) => Tensor | Tensor[];

const asList = (r: Tensor | Tensor[]) => (Array.isArray(r) ? r : [r]);

/**
 * Checks autograd gradients of fn at `inputs` (float64 tensors; those with
 * requiresGrad are differentiated, the others are held constant). Throws an
 * AssertionError naming the input and element on the first mismatch.
 */
export function gradcheck(fn: Fn, inputs: Tensor[], options: GradcheckOptions = {}): GradcheckReport {
  const eps = options.eps ?? 1e-6;
  const atol = options.atol ?? 1e-5;
  const rtol = options.rtol ?? 1e-3;
  const name = options.name ?? 'fn';
  const wrt = inputs.map((t, i) => (t.requiresGrad ? i : -1)).filter((i) => i >= 0);
  assert.ok(wrt.length > 0, `${name}: no input requires grad`);
  for (const i of wrt) assert.equal(inputs[i].dtype, 'float64', `${name}: input ${i} must be float64 for a gradient check`);

  // The output weighting, fixed for the analytic and numeric passes.
  const shapes = noGrad(() => tidy(() => asList(fn(...inputs)).map((o) => o.shape)));
  const weights = shapes.map((s, k) => tensor(randomValues(s.reduce((a, b) => a * b, 1), (options.seed ?? 7) + k), { shape: s, dtype: 'float64' }));
  const objective = (outs: Tensor[]): Tensor => outs.map((o, k) => o.to('float64').mul(weights[k]).sum()).reduce((a, b) => a.add(b));

  // Analytic: J^T v by autograd.
  const analytic = tidy(() => {
    const outs = asList(fn(...inputs));
    const s = objective(outs);
    assert.ok(s.requiresGrad, `${name}: the output does not require grad`);
    return grad(s, wrt.map((i) => inputs[i]), { allowUnused: true }).map((g, k) => (g ? Array.from(g.data() as Float64Array) : new Array(inputs[wrt[k]].numel).fill(0)));
  });

  // Numeric: central differences, one element at a time.
  const f = (args: Tensor[]): number => noGrad(() => tidy(() => objective(asList(fn(...args))).item()));
  let checked = 0;
  let maxAbsError = 0;
  try {
    wrt.forEach((inputIndex, k) => {
      const x = inputs[inputIndex];
      const base = Float64Array.from(x.data() as Float64Array);
      const shape = x.shape;
      for (let e = 0; e < base.length; e++) {
        const probe = (delta: number): number => {
          const moved = Float64Array.from(base);
          moved[e] += delta;
          const xt = tensor(moved, { shape });
          try {
            return f(inputs.map((t, i) => (i === inputIndex ? xt : t)));
          } finally {
            xt.dispose();
          }
        };
        const numeric = (probe(eps) - probe(-eps)) / (2 * eps);
        const a = analytic[k][e];
        const err = Math.abs(a - numeric);
        maxAbsError = Math.max(maxAbsError, err);
        checked++;
        if (!(err <= atol + rtol * Math.abs(numeric))) {
          assert.fail(`${name}: gradient of input ${inputIndex} (shape [${shape}]) at element ${e}: autograd ${a}, finite differences ${numeric} (|diff| ${err.toExponential(2)})`);
        }
      }
    });
  } finally {
    for (const w of weights) w.dispose();
  }
  return { checked, maxAbsError };
}

/** A float64 tensor of seeded values in [lo, hi) that requires grad. */
export function input(shape: number[], seed: number, lo = -1, hi = 1, requiresGrad = true): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = randomValues(n, seed).map((u) => lo + ((u + 1) / 2) * (hi - lo));
  return tensor(v, { shape, dtype: 'float64', requiresGrad });
}
