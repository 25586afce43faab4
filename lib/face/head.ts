// A learned verification head on top of face embeddings (DeepFace, Taigman et
// al. 2014): the probability that two faces are the same person,
//
//   l1:   y = sigmoid( sum_k w_k |f_i,k - f_j,k| + b )
//   chi2: y = sigmoid( sum_k w_k (f_i,k - f_j,k)^2 / (|f_i,k| + |f_j,k| + eps) + b )
//
// DeepFace's chi-square distance divides by (f_i + f_j) because its features are
// non-negative (after ReLU). Ours are not: embeddings that are L2-normalised or
// come from a final linear layer have negative entries, and f_i + f_j can be 0
// (or negative, flipping the sign of a term) for a perfectly ordinary pair. So
// the denominator is |f_i| + |f_j| + eps: positive, equal to DeepFace's for
// non-negative features, and >= eps (default 1e-6) when both are 0, where the
// numerator is 0 too, so the term is 0 instead of NaN.
//
// The head is trained with binary cross-entropy on same/different pairs of
// PRECOMPUTED embeddings (a database's encodings are computed once), so
// training it takes seconds; its parameters are saved with the model under
// `head.*` together with its metadata (variant, eps, threshold).
import { z } from 'zod';
import { invalid, parseOptions } from '../core/errors';
import { Module } from '../nn';
import * as F from '../ops';
import { Adam, LBFGS } from '../optim';
import { Tensor, manualSeed, noGrad, randperm, tensor, tidy, zeros } from '../core';
import { auc, bestAccuracyThreshold, rocCurve } from './metrics';

export type HeadVariant = 'l1' | 'chi2';

export interface HeadMetadata {
  variant: HeadVariant;
  embeddingDim: number;
  eps: number;
  /** Probability above which a pair is accepted as the same person (0.5 unless calibrated). */
  threshold: number;
}

export class VerificationHead extends Module {
  readonly variant: HeadVariant;
  readonly embeddingDim: number;
  readonly eps: number;
  /** Decision threshold on the probability; set by training (0.5) or calibration. */
  threshold = 0.5;

  constructor(embeddingDim: number, options: { variant?: HeadVariant; eps?: number } = {}) {
    super();
    if (!Number.isInteger(embeddingDim) || embeddingDim < 1) invalid('embeddingDim', 'a positive integer', embeddingDim);
    const variant = options.variant ?? 'l1';
    if (variant !== 'l1' && variant !== 'chi2') invalid('options.variant', "'l1' or 'chi2'", variant);
    const eps = options.eps ?? 1e-6;
    if (typeof eps !== 'number' || !(eps > 0)) invalid('options.eps', 'a positive number', eps);
    this.variant = variant;
    this.embeddingDim = embeddingDim;
    this.eps = eps;
    // Zero init: the logistic regression starts at p = 0.5 for every pair.
    this.registerParameter('weight', zeros([1, embeddingDim]));
    this.registerParameter('bias', zeros([1]));
  }

  get weight(): Tensor {
    return this.param('weight');
  }
  get bias(): Tensor {
    return this.param('bias');
  }

  /** The per-dimension pair features (N x D) the linear layer weighs. */
  features(fi: Tensor, fj: Tensor): Tensor {
    if (!(fi instanceof Tensor) || !(fj instanceof Tensor)) invalid('fi, fj', 'two embedding tensors', [fi, fj]);
    if (fi.shape.join('x') !== fj.shape.join('x') || fi.shape[fi.ndim - 1] !== this.embeddingDim)
      invalid('fi, fj', `two tensors of the same shape ending in ${this.embeddingDim}`, `[${fi.shape}] and [${fj.shape}]`);
    return tidy(() => {
      const diff = fi.sub(fj);
      if (this.variant === 'l1') return diff.abs();
      return diff.square().div(fi.abs().add(fj.abs()).add(this.eps));
    });
  }

  /** Logits (N) of "same person" for pairs of embeddings (N x D each, or D). */
  forward(fi: Tensor, fj: Tensor): Tensor {
    return tidy(() => F.linear(this.features(fi, fj), this.weight, this.bias).squeeze(-1));
  }

  /** Probabilities (N) that each pair is the same person. */
  probability(fi: Tensor, fj: Tensor): Tensor {
    return tidy(() => this.forward(fi, fj).sigmoid());
  }

  /** Probabilities for pairs of Float32Arrays (no autograd). */
  predict(pairs: { a: Float32Array | number[]; b: Float32Array | number[] }[]): Float32Array {
    if (pairs.length === 0) return new Float32Array(0);
    return noGrad(() =>
      tidy(() => {
        const [A, B] = stackPairs(pairs, this.embeddingDim);
        return this.probability(A, B).data() as Float32Array;
      }),
    );
  }

  metadata(): HeadMetadata {
    return { variant: this.variant, embeddingDim: this.embeddingDim, eps: this.eps, threshold: this.threshold };
  }

  /** A head from its metadata and state dict (parameter names `weight`, `bias`, i.e. `head.*` without the prefix). */
  static fromStateDict(meta: HeadMetadata, state: Map<string, Tensor> | Record<string, Tensor>): VerificationHead {
    if (!meta || typeof meta !== 'object') invalid('meta', 'head metadata { variant, embeddingDim, eps, threshold }', meta);
    const h = new VerificationHead(meta.embeddingDim, { variant: meta.variant, eps: meta.eps });
    h.loadStateDict(state);
    if (typeof meta.threshold === 'number') h.threshold = meta.threshold;
    return h;
  }

  extraRepr(): string {
    return `embeddingDim=${this.embeddingDim}, variant=${this.variant}, eps=${this.eps}`;
  }
}

function stackPairs(pairs: { a: ArrayLike<number>; b: ArrayLike<number> }[], dim: number): [Tensor, Tensor] {
  const A = new Float32Array(pairs.length * dim);
  const B = new Float32Array(pairs.length * dim);
  pairs.forEach((p, i) => {
    if (!p || !p.a || !p.b || p.a.length !== dim || p.b.length !== dim) invalid(`pairs[${i}]`, `{ a, b } embeddings of length ${dim}`, p);
    A.set(p.a, i * dim);
    B.set(p.b, i * dim);
  });
  return [tensor(A, { shape: [pairs.length, dim] }), tensor(B, { shape: [pairs.length, dim] })];
}

const trainOptions = z
  .object({
    variant: z.enum(['l1', 'chi2']).default('l1'),
    optimizer: z.enum(['lbfgs', 'adam']).default('lbfgs'),
    /** LBFGS: outer steps of up to 20 iterations each (full batch). Adam: epochs over mini-batches. */
    epochs: z.number().int().positive().default(20),
    lr: z.number().positive().optional(),
    batchSize: z.number().int().positive().default(256),
    /** L2 penalty on the weights (not the bias), added to the loss. */
    weightDecay: z.number().nonnegative().default(1e-4),
    /** Fraction of the pairs held out to report validation metrics (0: none). */
    validationFraction: z.number().min(0).max(0.9).default(0),
    seed: z.number().int().nonnegative().default(0),
    eps: z.number().positive().default(1e-6),
  })
  .strict();
export type TrainHeadOptions = z.input<typeof trainOptions>;

export interface HeadSetMetrics {
  pairs: number;
  loss: number;
  /** Accuracy at probability 0.5. */
  accuracy: number;
  auc: number;
  /** Best-accuracy probability threshold on this set (and that accuracy). */
  bestThreshold: number;
  bestAccuracy: number;
}

export interface TrainHeadResult {
  head: VerificationHead;
  metrics: { train: HeadSetMetrics; validation?: HeadSetMetrics; lossHistory: number[]; optimizer: 'lbfgs' | 'adam'; seconds: number };
}

function setMetrics(head: VerificationHead, A: Tensor, B: Tensor, y: Tensor): HeadSetMetrics {
  return noGrad(() =>
    tidy(() => {
      const logits = head.forward(A, B);
      const loss = F.binaryCrossEntropyWithLogits(logits, y).item();
      const p = Array.from(logits.sigmoid().data() as Float32Array);
      const labels = Array.from(y.data() as Float32Array, (v) => v > 0.5);
      const pairs = p.map((score, i) => ({ score, same: labels[i] }));
      const accuracy = pairs.filter((q) => (q.score >= 0.5) === q.same).length / pairs.length;
      const both = labels.some((l) => l) && labels.some((l) => !l);
      const best = bestAccuracyThreshold(pairs, { higherIsSame: true });
      return { pairs: pairs.length, loss, accuracy, auc: both ? auc(rocCurve(pairs, { higherIsSame: true })) : NaN, bestThreshold: best.threshold, bestAccuracy: best.accuracy };
    }),
  );
}

/**
 * Trains a VerificationHead on same/different pairs of precomputed embeddings
 * with binary cross-entropy (plus an L2 penalty on the weights). L-BFGS on the
 * full batch by default (a convex logistic regression on 128 features: it
 * converges in a few dozen iterations); Adam on mini-batches as an option.
 */
export function trainVerificationHead(pairs: { a: Float32Array | number[]; b: Float32Array | number[]; same: boolean }[], options: TrainHeadOptions = {}): TrainHeadResult {
  const o = parseOptions(trainOptions, options);
  if (!Array.isArray(pairs) || pairs.length < 2) invalid('pairs', 'an array of at least 2 { a, b, same } pairs', pairs);
  const dim = pairs[0]?.a?.length;
  if (!Number.isInteger(dim) || dim < 1) invalid('pairs[0].a', 'an embedding (Float32Array)', pairs[0]?.a);
  pairs.forEach((p, i) => {
    if (typeof p.same !== 'boolean') invalid(`pairs[${i}].same`, 'a boolean', p.same);
  });
  const t0 = Date.now();
  manualSeed(o.seed);
  // Seeded split: a permutation from libtorch's generator.
  const order = Array.from(randperm(pairs.length).data() as BigInt64Array, Number);
  const nVal = Math.floor(pairs.length * o.validationFraction);
  const valIdx = order.slice(0, nVal);
  const trainIdx = order.slice(nVal);
  const [A, B] = stackPairs(trainIdx.map((i) => pairs[i]), dim);
  const y = tensor(Float32Array.from(trainIdx, (i) => (pairs[i].same ? 1 : 0)));
  const head = new VerificationHead(dim, { variant: o.variant, eps: o.eps });
  const X = noGrad(() => head.features(A, B)); // features are fixed: compute once
  const lossOf = (xs: Tensor, ys: Tensor): Tensor =>
    tidy(() => {
      const logits = F.linear(xs, head.weight, head.bias).squeeze(-1);
      const bce = F.binaryCrossEntropyWithLogits(logits, ys);
      return o.weightDecay > 0 ? bce.add(head.weight.square().sum().mul(o.weightDecay / 2)) : bce;
    });
  const lossHistory: number[] = [];
  if (o.optimizer === 'lbfgs') {
    const opt = new LBFGS(head.parameters(), { lr: o.lr ?? 1, maxIter: 20, lineSearchFn: 'strongWolfe', historySize: 20 });
    for (let e = 0; e < o.epochs; e++) {
      const l = opt.step(() => {
        opt.zeroGrad();
        const loss = lossOf(X, y);
        loss.backward();
        return loss;
      })!;
      lossHistory.push(l);
      if (e > 0 && Math.abs(lossHistory[e - 1] - l) < 1e-9) break;
    }
    opt.dispose();
  } else {
    const opt = new Adam(head.parameters(), { lr: o.lr ?? 1e-2 });
    const n = trainIdx.length;
    for (let e = 0; e < o.epochs; e++) {
      const perm = randperm(n);
      let total = 0;
      for (let s = 0; s < n; s += o.batchSize) {
        const l = tidy(() => {
          const idx = perm.slice(0, s, Math.min(n, s + o.batchSize));
          opt.zeroGrad();
          const loss = lossOf(X.indexSelect(0, idx), y.indexSelect(0, idx));
          loss.backward();
          opt.step();
          return loss.item();
        });
        total += l * Math.min(o.batchSize, n - s);
      }
      perm.dispose();
      lossHistory.push(total / n);
    }
    opt.dispose();
  }
  head.zeroGrad();
  const train = setMetrics(head, A, B, y);
  let validation: HeadSetMetrics | undefined;
  if (nVal > 0) {
    const [VA, VB] = stackPairs(valIdx.map((i) => pairs[i]), dim);
    const vy = tensor(Float32Array.from(valIdx, (i) => (pairs[i].same ? 1 : 0)));
    validation = setMetrics(head, VA, VB, vy);
    for (const t of [VA, VB, vy]) t.dispose();
  }
  for (const t of [A, B, y, X]) t.dispose();
  return { head, metrics: { train, validation, lossHistory, optimizer: o.optimizer, seconds: (Date.now() - t0) / 1000 } };
}

