// Small helpers shared by the core tests: closeness assertions on flat or
// nested numbers, a seeded PRNG and a naive reference convolution.
import { strict as assert } from 'assert';
import { memory, setNumThreads, threadMode, type Tensor } from '../../lib';
import { seededRandom } from '../../lib/util/random';

/** Flattens nested arrays of numbers / booleans / bigints into numbers. */
export function flat(v: unknown): number[] {
  if (Array.isArray(v)) return v.flatMap(flat);
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number | bigint>, Number);
  if (typeof v === 'boolean') return [v ? 1 : 0];
  return [Number(v)];
}

/** The elements of a tensor as plain numbers (row-major). */
export function values(t: Tensor): number[] {
  return Array.from(t.data() as ArrayLike<number | bigint>, Number);
}

/** Asserts |a - e| <= atol + rtol * |e| elementwise (NaNs must match). */
export function assertClose(actual: unknown, expected: unknown, atol = 1e-5, rtol = 1e-5, what = 'value'): void {
  const a = typeof actual === 'object' && actual !== null && 'data' in (actual as object) && typeof (actual as Tensor).data === 'function' ? values(actual as Tensor) : flat(actual);
  const e = flat(expected);
  assert.equal(a.length, e.length, `${what}: ${a.length} elements, expected ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(e[i])) {
      assert.ok(Number.isNaN(a[i]), `${what}[${i}]: ${a[i]}, expected NaN`);
      continue;
    }
    const tol = atol + rtol * Math.abs(e[i]);
    if (!(Math.abs(a[i] - e[i]) <= tol)) assert.fail(`${what}[${i}] = ${a[i]}, expected ${e[i]} (tolerance ${tol})`);
  }
}

/** Max |a - b| over two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A small seeded PRNG (the library's mulberry32), so that fuzz and random tests are reproducible. */
export const rng = seededRandom;

/** Deterministic pseudo-random values in [-1, 1) from a seed. */
export function randomValues(n: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => r() * 2 - 1);
}

/**
 * Naive N-d convolution (cross-correlation, as in PyTorch) of x (N, C, ...spatial)
 * with w (O, C/groups, ...kernel), on flat row-major arrays. The reference the
 * libtorch results are checked against.
 */
export function referenceConv(
  x: number[],
  xShape: number[],
  w: number[],
  wShape: number[],
  bias: number[] | null,
  o: { stride?: number[]; padding?: number[]; dilation?: number[]; groups?: number } = {},
): { data: number[]; shape: number[] } {
  const nd = xShape.length - 2;
  const [N, C] = xShape;
  const O = wShape[0];
  const groups = o.groups ?? 1;
  const cg = C / groups;
  const og = O / groups;
  const stride = o.stride ?? new Array(nd).fill(1);
  const padding = o.padding ?? new Array(nd).fill(0);
  const dilation = o.dilation ?? new Array(nd).fill(1);
  const inSp = xShape.slice(2);
  const kSp = wShape.slice(2);
  const outSp = inSp.map((s, d) => Math.floor((s + 2 * padding[d] - dilation[d] * (kSp[d] - 1) - 1) / stride[d]) + 1);
  const strides = (shape: number[]) => shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const xs = strides(xShape);
  const ws = strides(wShape);
  const outShape = [N, O, ...outSp];
  const os = strides(outShape);
  const out = new Array(outShape.reduce((a, b) => a * b, 1)).fill(0);
  const outPositions = cartesian(outSp);
  const kPositions = cartesian(kSp);
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < O; oc++) {
      const g = Math.floor(oc / og);
      for (const op of outPositions) {
        let acc = bias ? bias[oc] : 0;
        for (let c = 0; c < cg; c++) {
          const ic = g * cg + c;
          for (const kp of kPositions) {
            let xi = n * xs[0] + ic * xs[1];
            let inside = true;
            for (let d = 0; d < nd; d++) {
              const p = op[d] * stride[d] - padding[d] + kp[d] * dilation[d];
              if (p < 0 || p >= inSp[d]) {
                inside = false;
                break;
              }
              xi += p * xs[d + 2];
            }
            if (!inside) continue;
            let wi = oc * ws[0] + c * ws[1];
            for (let d = 0; d < nd; d++) wi += kp[d] * ws[d + 2];
            acc += x[xi] * w[wi];
          }
        }
        let oi = n * os[0] + oc * os[1];
        for (let d = 0; d < nd; d++) oi += op[d] * os[d + 2];
        out[oi] = acc;
      }
    }
  return { data: out, shape: outShape };
}

/**
 * Naive transposed convolution: scatters every input element times the kernel
 * (w: C_in, C_out/groups, ...kernel), the adjoint of referenceConv.
 */
export function referenceConvTranspose(
  x: number[],
  xShape: number[],
  w: number[],
  wShape: number[],
  bias: number[] | null,
  o: { stride?: number[]; padding?: number[]; outputPadding?: number[]; dilation?: number[]; groups?: number } = {},
): { data: number[]; shape: number[] } {
  const nd = xShape.length - 2;
  const [N, C] = xShape;
  const groups = o.groups ?? 1;
  const cg = C / groups;
  const og = wShape[1];
  const O = og * groups;
  const stride = o.stride ?? new Array(nd).fill(1);
  const padding = o.padding ?? new Array(nd).fill(0);
  const outPad = o.outputPadding ?? new Array(nd).fill(0);
  const dilation = o.dilation ?? new Array(nd).fill(1);
  const inSp = xShape.slice(2);
  const kSp = wShape.slice(2);
  const outSp = inSp.map((s, d) => (s - 1) * stride[d] - 2 * padding[d] + dilation[d] * (kSp[d] - 1) + outPad[d] + 1);
  const strides = (shape: number[]) => shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const xs = strides(xShape);
  const ws = strides(wShape);
  const outShape = [N, O, ...outSp];
  const os = strides(outShape);
  const out = new Array(outShape.reduce((a, b) => a * b, 1)).fill(0);
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < O; oc++) {
      const base = n * os[0] + oc * os[1];
      for (const op of cartesian(outSp)) {
        let oi = base;
        for (let d = 0; d < nd; d++) oi += op[d] * os[d + 2];
        out[oi] = bias ? bias[oc] : 0;
      }
    }
  const inPositions = cartesian(inSp);
  const kPositions = cartesian(kSp);
  for (let n = 0; n < N; n++)
    for (let ic = 0; ic < C; ic++) {
      const g = Math.floor(ic / cg);
      for (const ip of inPositions) {
        let xi = n * xs[0] + ic * xs[1];
        for (let d = 0; d < nd; d++) xi += ip[d] * xs[d + 2];
        for (let c = 0; c < og; c++) {
          const oc = g * og + c;
          for (const kp of kPositions) {
            let oi = n * os[0] + oc * os[1];
            let inside = true;
            for (let d = 0; d < nd; d++) {
              const p = ip[d] * stride[d] - padding[d] + kp[d] * dilation[d];
              if (p < 0 || p >= outSp[d]) {
                inside = false;
                break;
              }
              oi += p * os[d + 2];
            }
            if (!inside) continue;
            let wi = ic * ws[0] + c * ws[1];
            for (let d = 0; d < nd; d++) wi += kp[d] * ws[d + 2];
            out[oi] += x[xi] * w[wi];
          }
        }
      }
    }
  return { data: out, shape: outShape };
}

function cartesian(sizes: number[]): number[][] {
  let acc: number[][] = [[]];
  for (const s of sizes) {
    const next: number[][] = [];
    for (const prefix of acc) for (let i = 0; i < s; i++) next.push([...prefix, i]);
    acc = next;
  }
  return acc;
}

/**
 * Live tensors once the garbage of earlier tests is collected (mocha runs with
 * --expose-gc): a leak check that awaits sees the finalizers of other tests'
 * dropped tensors run in between, so it counts after a collection on both sides.
 */
export async function settledTensorCount(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return memory().tensors;
}

/**
 * Runs the enclosing describe's tests with libtorch at one thread (thousands of
 * tiny ops: intra-op threads only add synchronisation; on a busy 2-core machine a
 * 4x4 conv2d took 3.7 ms with 2 threads, 80 us with 1). Call it inside a describe:
 * root-level hooks would apply to every test file in the run.
 */
export function singleThreaded(): void {
  let previous: number | 'auto' = 'auto';
  before(() => {
    previous = threadMode();
    setNumThreads(1);
  });
  after(() => setNumThreads(previous));
}
