// Triplet loss and in-batch mining, checked against a brute-force JS reference
// (loops over every anchor / positive / negative in float64) on small random
// batches for several seeds, and gradients against central finite differences.
import { strict as assert } from 'assert';
import * as tf from '../../lib';
import { Tensor, mineTriplets, pairwiseSquaredDistances, tensor, tripletLoss } from '../../lib';
import type { MiningStrategy } from '../../lib';
import { assertClose, rng, values } from '../helpers/util';

type Vec = number[];

/** P identities x K images of D-dim embeddings: a random centre per identity plus noise of the given spread. */
function batch(seed: number, P: number, K: number, D: number, spread: number): { emb: Vec[]; labels: number[] } {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  const emb: Vec[] = [];
  const labels: number[] = [];
  for (let p = 0; p < P; p++) {
    const centre = Array.from({ length: D }, gauss);
    for (let k = 0; k < K; k++) {
      emb.push(centre.map((c) => c + spread * gauss()));
      labels.push(p * 7 + 3); // arbitrary, non-contiguous identity ids
    }
  }
  // shuffle rows so identities are not in blocks
  const order = emb.map((_, i) => i).sort(() => r() - 0.5);
  return { emb: order.map((i) => emb[i]), labels: order.map((i) => labels[i]) };
}

const l2n = (v: Vec): Vec => {
  const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  return v.map((x) => x / Math.max(n, 1e-12));
};
const sqd = (a: Vec, b: Vec): number => a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0);

interface RefTriplet {
  a: number;
  p: number;
  n: number;
  loss: number;
}

/** The brute-force reference of each strategy: selected triplets (a, p, n, loss), candidate count and reduced loss. */
function reference(embIn: Vec[], labels: number[], strategy: MiningStrategy, margin: number, fallback: 'hard' | 'none' = 'hard'): { loss: number; triplets: number; candidates: number; selected: RefTriplet[] } {
  const emb = embIn.map(l2n);
  const N = emb.length;
  const d = (i: number, j: number) => (i === j ? 0 : sqd(emb[i], emb[j]));
  const selected: RefTriplet[] = [];
  if (strategy === 'batch-all') {
    let candidates = 0;
    let sum = 0;
    for (let a = 0; a < N; a++)
      for (let p = 0; p < N; p++) {
        if (p === a || labels[p] !== labels[a]) continue;
        for (let n = 0; n < N; n++) {
          if (labels[n] === labels[a]) continue;
          candidates++;
          const l = Math.max(d(a, p) - d(a, n) + margin, 0);
          if (l > 0) {
            selected.push({ a, p, n, loss: l });
            sum += l;
          }
        }
      }
    return { loss: sum / Math.max(selected.length, 1), triplets: selected.length, candidates, selected };
  }
  if (strategy === 'batch-hard') {
    let sum = 0;
    let used = 0;
    for (let a = 0; a < N; a++) {
      let p = -1;
      let n = -1;
      for (let j = 0; j < N; j++) {
        if (j !== a && labels[j] === labels[a] && (p < 0 || d(a, j) > d(a, p))) p = j;
        if (labels[j] !== labels[a] && (n < 0 || d(a, j) < d(a, n))) n = j;
      }
      if (p < 0 || n < 0) continue;
      const l = Math.max(d(a, p) - d(a, n) + margin, 0);
      selected.push({ a, p, n, loss: l });
      sum += l;
      if (l > 0) used++;
    }
    return { loss: sum / Math.max(selected.length, 1), triplets: used, candidates: selected.length, selected };
  }
  // semi-hard (FaceNet), fallback as documented in lib/face/triplet.ts
  let sum = 0;
  let used = 0;
  let candidates = 0;
  for (let a = 0; a < N; a++)
    for (let p = 0; p < N; p++) {
      if (p === a || labels[p] !== labels[a]) continue;
      const dap = d(a, p);
      let semi = -1;
      let hard = -1;
      let anyNeg = false;
      for (let n = 0; n < N; n++) {
        if (labels[n] === labels[a]) continue;
        anyNeg = true;
        const dan = d(a, n);
        if (dan > dap && dan < dap + margin && (semi < 0 || dan < d(a, semi))) semi = n;
        if (dan <= dap && (hard < 0 || dan > d(a, hard))) hard = n;
      }
      const n = semi >= 0 ? semi : fallback === 'hard' ? hard : -1;
      if (fallback === 'hard' ? anyNeg : n >= 0) candidates++;
      if (n < 0) continue;
      const l = Math.max(dap - d(a, n) + margin, 0);
      selected.push({ a, p, n, loss: l });
      sum += l;
      if (l > 0) used++;
    }
  return { loss: sum / Math.max(candidates, 1), triplets: used, candidates, selected };
}

const key = (t: { a: number; p: number; n: number }) => `${t.a},${t.p},${t.n}`;

describe('triplet: tripletLoss formula', () => {
  it('is max(||a-p||^2 - ||a-n||^2 + margin, 0) per triplet, summed by default (J), mean and none', () => {
    for (const seed of [1, 2, 3]) {
      const r = rng(seed);
      const T = 7;
      const D = 5;
      const mk = () => Array.from({ length: T }, () => Array.from({ length: D }, () => r() * 2 - 1));
      const [A, P, N] = [mk(), mk(), mk()];
      for (const margin of [0, 0.2, 1.5]) {
        const expected = A.map((a, i) => Math.max(sqd(a, P[i]) - sqd(a, N[i]) + margin, 0));
        // the cases must include both active and inactive triplets to mean anything
        if (margin === 0.2) assert.ok(expected.some((v) => v === 0) || expected.some((v) => v > 0));
        const [ta, tp, tn] = [A, P, N].map((m) => tensor(m, { dtype: 'float64' }));
        assertClose(tripletLoss(ta, tp, tn, { margin, reduction: 'none' }), expected, 1e-12, 1e-12, 'none');
        assertClose(tripletLoss(ta, tp, tn, { margin }), [expected.reduce((s, v) => s + v, 0)], 1e-12, 1e-12, 'sum (default)');
        assertClose(tripletLoss(ta, tp, tn, { margin, reduction: 'mean' }), [expected.reduce((s, v) => s + v, 0) / T], 1e-12, 1e-12, 'mean');
      }
    }
  });

  it('default margin is 0.2 and a single triplet of vectors works', () => {
    const a = tensor([0, 0]);
    const p = tensor([0.3, 0]); // d_ap = 0.09
    const n = tensor([0.5, 0]); // d_an = 0.25
    assertClose(tripletLoss(a, p, n), [0.09 - 0.25 + 0.2], 1e-6);
    const far = tensor([1, 0]);
    assert.equal(tripletLoss(a, p, far).item(), 0);
  });

  it('rejects mismatched shapes and bad options', () => {
    const a = tf.zeros([3, 4]);
    assert.throws(() => tripletLoss(a, tf.zeros([3, 5]), a), /positive, negative/);
    assert.throws(() => tripletLoss(a, a, a, { margin: -1 }), /options\.margin/);
    assert.throws(() => tripletLoss(a, a, a, { reduction: 'avg' as 'mean' }), /options\.reduction/);
  });
});

describe('triplet: pairwise squared distances', () => {
  it('match the direct computation and are exactly 0 on the diagonal', () => {
    const { emb } = batch(5, 3, 4, 6, 0.5);
    const d = values(pairwiseSquaredDistances(tensor(emb, { dtype: 'float64' })));
    const N = emb.length;
    for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) assert.ok(Math.abs(d[i * N + j] - (i === j ? 0 : sqd(emb[i], emb[j]))) < 1e-10, `d[${i},${j}]`);
    for (let i = 0; i < N; i++) assert.equal(d[i * N + i], 0);
  });
});

describe('triplet: mining against a brute-force reference', () => {
  const strategies: MiningStrategy[] = ['batch-all', 'batch-hard', 'semi-hard'];
  for (const strategy of strategies) {
    it(`${strategy}: same triplets, losses, counts and reduced loss over 8 seeds`, () => {
      let sawPositive = 0;
      let sawZero = 0;
      for (let seed = 10; seed < 18; seed++) {
        const P = 3 + (seed % 3);
        const K = 2 + (seed % 3);
        const spread = [0.3, 0.6, 1.0][seed % 3];
        const margin = [0.2, 0.5, 1.0][(seed >> 1) % 3];
        const { emb, labels } = batch(seed, P, K, 8, spread);
        const ref = reference(emb, labels, strategy, margin);
        const got = mineTriplets(tensor(emb, { dtype: 'float64' }), labels, { strategy, margin, returnTriplets: true });
        const what = `${strategy} seed ${seed}`;
        assertClose(got.loss, [ref.loss], 1e-10, 1e-9, `${what} loss`);
        assert.equal(got.triplets, ref.triplets, `${what} triplets with positive loss`);
        assert.equal(got.candidates, ref.candidates, `${what} candidates`);
        const sel = got.selected!;
        const gotMap = new Map<string, number>();
        for (let i = 0; i < sel.anchor.length; i++) gotMap.set(key({ a: sel.anchor[i], p: sel.positive[i], n: sel.negative[i] }), sel.loss[i]);
        assert.equal(gotMap.size, ref.selected.length, `${what} number of selected triplets`);
        for (const t of ref.selected) {
          assert.ok(gotMap.has(key(t)), `${what}: reference triplet ${key(t)} not selected`);
          assert.ok(Math.abs(gotMap.get(key(t))! - t.loss) < 1e-9, `${what}: loss of ${key(t)}`);
        }
        if (ref.triplets > 0) sawPositive++;
        if (ref.selected.some((t) => t.loss === 0) || ref.triplets < ref.candidates) sawZero++;
      }
      // the seeds must exercise both active and satisfied triplets
      assert.ok(sawPositive >= 4, `only ${sawPositive} seeds with positive-loss triplets`);
      assert.ok(sawZero >= 1, 'no seed with satisfied (zero-loss) candidates');
    });
  }

  it('semi-hard: picks a negative inside (d_ap, d_ap + margin) whenever one exists, and the fallback when none', () => {
    let semiCount = 0;
    let fallbackCount = 0;
    for (let seed = 30; seed < 36; seed++) {
      const { emb, labels } = batch(seed, 4, 3, 6, 0.7);
      const margin = 0.5;
      const e = emb.map(l2n);
      const got = mineTriplets(tensor(emb, { dtype: 'float64' }), labels, { strategy: 'semi-hard', margin, returnTriplets: true }).selected!;
      for (let i = 0; i < got.anchor.length; i++) {
        const [a, p, n] = [got.anchor[i], got.positive[i], got.negative[i]];
        assert.equal(labels[a], labels[p]);
        assert.notEqual(labels[a], labels[n]);
        const dap = sqd(e[a], e[p]);
        const dan = sqd(e[a], e[n]);
        if (dan > dap) {
          assert.ok(dan < dap + margin);
          semiCount++;
        } else fallbackCount++;
      }
      // 'none' drops exactly the fallback pairs
      const strict = reference(emb, labels, 'semi-hard', margin, 'none');
      const gotNone = mineTriplets(tensor(emb, { dtype: 'float64' }), labels, { strategy: 'semi-hard', margin, fallback: 'none', returnTriplets: true });
      assert.equal(gotNone.selected!.anchor.length, strict.selected.length);
      assertClose(gotNone.loss, [strict.loss], 1e-10, 1e-9);
    }
    assert.ok(semiCount > 0 && fallbackCount > 0, `semi-hard ${semiCount}, fallback ${fallbackCount}: both paths must be exercised`);
  });

  it("normalize: false mines on the raw embeddings; reduction 'sum' sums", () => {
    const { emb, labels } = batch(3, 3, 3, 4, 0.5);
    const raw = emb.map((v) => v.map((x) => x * 0.3));
    const t = tensor(raw, { dtype: 'float64' });
    const got = mineTriplets(t, labels, { strategy: 'batch-hard', margin: 0.3, normalize: false });
    // reference on raw vectors: l2n of already unit vectors is identity, so compare with a direct loop
    const N = raw.length;
    let sum = 0;
    for (let a = 0; a < N; a++) {
      let hp = -Infinity;
      let hn = Infinity;
      for (let j = 0; j < N; j++) {
        if (j !== a && labels[j] === labels[a]) hp = Math.max(hp, sqd(raw[a], raw[j]));
        if (labels[j] !== labels[a]) hn = Math.min(hn, sqd(raw[a], raw[j]));
      }
      sum += Math.max(hp - hn + 0.3, 0);
    }
    assertClose(got.loss, [sum / N], 1e-10, 1e-9);
    const s = mineTriplets(t, labels, { strategy: 'batch-hard', margin: 0.3, normalize: false, reduction: 'sum' });
    assertClose(s.loss, [sum], 1e-10, 1e-9);
  });

  it('accepts labels as a tensor and rejects bad labels', () => {
    const { emb, labels } = batch(4, 3, 2, 4, 0.5);
    const t = tensor(emb);
    const a = mineTriplets(t, labels, { strategy: 'batch-all' }).loss.item();
    const b = mineTriplets(t, tensor(Int32Array.from(labels)), { strategy: 'batch-all' }).loss.item();
    assert.equal(a, b);
    assert.throws(() => mineTriplets(t, labels.slice(1)), /labels/);
    assert.throws(() => mineTriplets(t, labels.map((l) => l + 0.5)), /labels\[0\]/);
    assert.throws(() => mineTriplets(t, labels, { strategy: 'hardest' as MiningStrategy }), /options\.strategy/);
  });
});

describe('triplet: gradients', () => {
  for (const strategy of ['batch-all', 'batch-hard', 'semi-hard'] as MiningStrategy[]) {
    it(`${strategy}: autograd matches central finite differences (float64, through L2 normalisation)`, () => {
      for (const seed of [41, 42]) {
        const { emb, labels } = batch(seed, 3, 3, 5, 0.8);
        const margin = 0.5;
        const x = tensor(emb, { dtype: 'float64', requiresGrad: true });
        const r = mineTriplets(x, labels, { strategy, margin });
        assert.ok(r.triplets > 0, `seed ${seed}: no active triplet, gradient check meaningless`);
        r.loss.backward();
        const g = values(x.grad!);
        assert.ok(g.some((v) => Math.abs(v) > 1e-6), 'gradient is all zero');
        const flatEmb = emb.flat();
        const D = emb[0].length;
        const f = (vals: number[]) => mineTriplets(tensor(vals, { dtype: 'float64', shape: [emb.length, D] }), labels, { strategy, margin }).loss.item();
        const h = 1e-6;
        for (let i = 0; i < flatEmb.length; i += 3) {
          const plus = flatEmb.slice();
          const minus = flatEmb.slice();
          plus[i] += h;
          minus[i] -= h;
          const fd = (f(plus) - f(minus)) / (2 * h);
          assert.ok(Math.abs(fd - g[i]) < 1e-6 + 1e-5 * Math.abs(fd), `${strategy} seed ${seed} d/dx[${i}]: autograd ${g[i]}, finite difference ${fd}`);
        }
      }
    });
  }

  it('tripletLoss: autograd matches finite differences', () => {
    const r = rng(7);
    const mk = () => Array.from({ length: 12 }, () => r() * 2 - 1);
    const [A, P, N] = [mk(), mk(), mk()];
    const ta = tensor(A, { dtype: 'float64', shape: [3, 4], requiresGrad: true });
    const loss = tripletLoss(ta, tensor(P, { dtype: 'float64', shape: [3, 4] }), tensor(N, { dtype: 'float64', shape: [3, 4] }), { margin: 1 });
    loss.backward();
    const g = values(ta.grad!);
    const f = (vals: number[]) => tripletLoss(tensor(vals, { dtype: 'float64', shape: [3, 4] }), tensor(P, { dtype: 'float64', shape: [3, 4] }), tensor(N, { dtype: 'float64', shape: [3, 4] }), { margin: 1 }).item();
    for (let i = 0; i < 12; i++) {
      const p = A.slice();
      const m = A.slice();
      p[i] += 1e-6;
      m[i] -= 1e-6;
      assert.ok(Math.abs((f(p) - f(m)) / 2e-6 - g[i]) < 1e-6);
    }
  });

  it('does not leak tensors', () => {
    const { emb, labels } = batch(9, 4, 3, 8, 0.5);
    const x = tensor(emb);
    const before = tf.memory().tensors;
    for (const strategy of ['batch-all', 'batch-hard', 'semi-hard'] as MiningStrategy[]) {
      const r = mineTriplets(x, labels, { strategy, returnTriplets: true });
      r.loss.dispose();
    }
    assert.equal(tf.memory().tensors, before);
  });
});

export type { Tensor };
