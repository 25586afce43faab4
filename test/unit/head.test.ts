// The verification head: its two formulas against direct computation (negative
// and zero descriptor entries included), training to the optimum of the convex
// logistic loss (gradient ~ 0), Adam and L-BFGS agreeing, and state round trips.
import { strict as assert } from 'assert';
import * as tf from '../../lib';
import { VerificationHead, tensor, trainVerificationHead } from '../../lib';
import { rng } from '../helpers/util';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Pairs of D-dim embeddings: same pairs differ little on the first `informative` dims, different pairs a lot. */
function synthPairs(seed: number, n: number, D: number, informative = 4): { a: Float32Array; b: Float32Array; same: boolean }[] {
  const r = rng(seed);
  const out: { a: Float32Array; b: Float32Array; same: boolean }[] = [];
  for (let i = 0; i < n; i++) {
    const same = i % 2 === 0;
    const a = Float32Array.from({ length: D }, () => r() * 2 - 1);
    const b = a.map((v, k) => (k < informative ? v + (same ? 0.15 : 0.8) * (r() * 2 - 1) : r() * 2 - 1));
    out.push({ a, b, same });
  }
  return out;
}

describe('face/head: VerificationHead', () => {
  it('l1 and chi2 logits equal the formulas, with negative and zero entries (no NaN)', () => {
    const fi = [[0.5, -0.25, 0, 1.5], [-1, 0, 0.3, 0.2]];
    const fj = [[-0.5, -0.75, 0, 0.5], [1, 0, -0.3, 0.2]];
    const w = [0.3, -1.2, 2.0, 0.7];
    const b = -0.4;
    for (const variant of ['l1', 'chi2'] as const) {
      const head = new VerificationHead(4, { variant, eps: 1e-6 });
      tf.noGrad(() => {
        head.weight.copy_(tensor([w]));
        head.bias.copy_(tensor([b]));
      });
      const logits = Array.from(head.forward(tensor(fi), tensor(fj)).data() as Float32Array);
      const probs = Array.from(head.probability(tensor(fi), tensor(fj)).data() as Float32Array);
      fi.forEach((row, n) => {
        let z = b;
        for (let k = 0; k < 4; k++) {
          const d = row[k] - fj[n][k];
          z += w[k] * (variant === 'l1' ? Math.abs(d) : (d * d) / (Math.abs(row[k]) + Math.abs(fj[n][k]) + 1e-6));
        }
        assert.ok(Math.abs(logits[n] - z) < 1e-5, `${variant} pair ${n}: ${logits[n]} vs ${z}`);
        assert.ok(Math.abs(probs[n] - sigmoid(z)) < 1e-6);
        assert.ok(Number.isFinite(logits[n]));
      });
    }
    // f_i + f_j = 0 in a coordinate (0.5 and -0.5): DeepFace's denominator would be 0; ours is |0.5| + |-0.5|
    const h = new VerificationHead(1, { variant: 'chi2' });
    tf.noGrad(() => h.weight.fill_(1));
    assert.ok(Math.abs(h.forward(tensor([[0.5]]), tensor([[-0.5]])).item() - 1 / (1 + 1e-6)) < 1e-6);
  });

  it('rejects bad shapes and options', () => {
    const h = new VerificationHead(3);
    assert.throws(() => h.forward(tf.zeros([2, 3]), tf.zeros([2, 4])), /fi, fj/);
    assert.throws(() => new VerificationHead(3, { variant: 'cos' as 'l1' }), /variant/);
    assert.throws(() => trainVerificationHead([]), /pairs/);
    assert.throws(() => trainVerificationHead(synthPairs(1, 4, 3), { optimizer: 'sgd' as 'adam' }), /options\.optimizer/);
  });
});

describe('face/head: trainVerificationHead', () => {
  for (const variant of ['l1', 'chi2'] as const) {
    it(`${variant}: trains on a seeded train/validation split and separates the pairs, weighting the informative dimensions`, () => {
      const pairs = synthPairs(3, 400, 16);
      const { head, metrics } = trainVerificationHead(pairs, { variant, weightDecay: 1e-3, validationFraction: 0.25, seed: 1 });
      assert.equal(metrics.train.pairs, 300);
      assert.equal(metrics.validation!.pairs, 100);
      // chance is 0.5; the informative dims make the pairs separable to ~0.9+
      assert.ok(metrics.train.accuracy > 0.85, `train accuracy ${metrics.train.accuracy}`);
      assert.ok(metrics.validation!.accuracy > 0.8, `validation accuracy ${metrics.validation!.accuracy}`);
      assert.ok(metrics.validation!.auc > 0.9, `validation AUC ${metrics.validation!.auc}`);
      assert.ok(metrics.lossHistory[metrics.lossHistory.length - 1] < metrics.lossHistory[0]);
      // the learnt weights put (negative) weight on the informative dims: larger differences, less alike
      const w = Array.from(head.weight.data() as Float32Array);
      const informative = w.slice(0, 4).reduce((s, v) => s + v, 0) / 4;
      const noise = w.slice(4).reduce((s, v) => s + Math.abs(v), 0) / 12;
      assert.ok(informative < 0 && Math.abs(informative) > 3 * noise, `weights ${w.map((v) => v.toFixed(2))}`);
      const pred = head.predict(pairs.slice(0, 4));
      assert.equal(pred.length, 4);
    });
  }

  it('Adam on mini-batches reaches the loss L-BFGS finds (same objective), and the L-BFGS gradient is ~0', () => {
    const pairs = synthPairs(5, 300, 8);
    const l = trainVerificationHead(pairs, { optimizer: 'lbfgs', weightDecay: 1e-2, epochs: 30 });
    const a = trainVerificationHead(pairs, { optimizer: 'adam', weightDecay: 1e-2, epochs: 300, lr: 0.05, batchSize: 300 });
    const objective = (h: VerificationHead) => {
      const A = tensor(Float32Array.from(pairs.flatMap((p) => Array.from(p.a))), { shape: [300, 8] });
      const B = tensor(Float32Array.from(pairs.flatMap((p) => Array.from(p.b))), { shape: [300, 8] });
      const y = tensor(Float32Array.from(pairs, (p) => (p.same ? 1 : 0)));
      const loss = tf.binaryCrossEntropyWithLogits(h.forward(A, B), y).add(h.weight.square().sum().mul(1e-2 / 2));
      loss.backward();
      const g = Math.max(...Array.from(h.weight.grad!.data() as Float32Array, Math.abs), Math.abs(h.bias.grad!.item()));
      h.zeroGrad();
      return { loss: loss.item(), grad: g };
    };
    const ol = objective(l.head);
    const oa = objective(a.head);
    assert.ok(ol.grad < 1e-3, `L-BFGS gradient ${ol.grad}`);
    assert.ok(Math.abs(ol.loss - oa.loss) < 2e-3, `L-BFGS ${ol.loss} vs Adam ${oa.loss}`);
    assert.ok(ol.loss <= oa.loss + 1e-5);
  });

  it('metadata + state dict round trip to an identical head', () => {
    const { head } = trainVerificationHead(synthPairs(7, 100, 6), { variant: 'chi2' });
    head.threshold = 0.61;
    const copy = VerificationHead.fromStateDict(head.metadata(), head.stateDict());
    assert.deepEqual(copy.metadata(), { variant: 'chi2', embeddingDim: 6, eps: 1e-6, threshold: 0.61 });
    const p = synthPairs(8, 10, 6);
    assert.deepEqual(Array.from(copy.predict(p)), Array.from(head.predict(p)));
    assert.deepEqual([...head.stateDict().keys()], ['weight', 'bias']);
  });
});
