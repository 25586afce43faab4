// Model selection in training (selectPairs): the starting weights are a
// candidate, so a fine-tune that makes things worse on the selection pairs
// returns the weights it started from. face-api's pretrained network,
// fine-tuned on AT&T with an absurd learning rate, selected on part of LFW's
// DevTrain list. Needs the shared face data; skips without it. Also the
// trainer's learning-rate schedule (no data needed).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadStateDict, optim, zeros } from '../../lib';
import { needs } from '../helpers/peers';
import { FaceRecognitionNet } from '../../lib/models/face-recognition-net';
import { kFoldAccuracy, kFoldCorrect } from '../../lib/face/metrics';
import { learningRateAt, selectionBeats, trainFaceModel, TrainEvent, warmupCosineSchedule } from '../../lib/face/train';
import { recognitionNetwork } from '../../lib/face/trainable';
import { facesDir } from '../../lib/util/paths';

describe('face/train: learning-rate schedule', () => {
  it("the trainer's schedule (optim's LinearLR then CosineAnnealingLR) equals learningRateAt step by step", () => {
    for (const [warmupSteps, totalSteps, minFactor] of [[10, 100, 0.01], [1, 30, 0.1], [0, 25, 0], [7, 7, 0.05]]) {
      const p = zeros([1], { requiresGrad: true });
      const opt = new optim.Adam([p], { lr: 0.003 });
      const schedule = warmupCosineSchedule(opt, { warmupSteps, totalSteps, minFactor });
      for (let step = 0; step < totalSteps; step++) {
        const want = learningRateAt(step, totalSteps, 0.003, warmupSteps, minFactor);
        const got = opt.paramGroups[0].lr;
        assert.ok(Math.abs(got - want) <= 1e-12 * Math.max(1, want), `warm-up ${warmupSteps}, total ${totalSteps}, step ${step}: ${got} vs ${want}`);
        schedule.step();
      }
      opt.dispose();
      p.dispose();
    }
  });
});

describe('face/train: selection rule', () => {
  it('kFoldCorrect: per-pair 10-fold decisions whose fold means are kFoldAccuracy', () => {
    let x = 12345;
    const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pairs = [...Array(200)].map((_, i) => ({ same: i < 100, score: (i < 100 ? 0.8 : 1.2) + rnd() - 0.5 }));
    const correct = kFoldCorrect(pairs);
    const k = kFoldAccuracy(pairs);
    const acc = correct.filter(Boolean).length / pairs.length;
    assert.ok(Math.abs(acc - k.mean) < 1e-12, `${acc} vs ${k.mean}`); // equal fold sizes: the mean of folds is the overall rate
  });
  it('a candidate replaces the best only when b - c > z * sqrt(b + c)', () => {
    const mk = (n: number, on: number[]) => [...Array(n)].map((_, i) => on.includes(i));
    const all = [...Array(100).keys()];
    const best = mk(100, all.slice(0, 90)); // 90 right
    assert.equal(selectionBeats(best, best, 1.645).better, false); // identical: no change
    const plus3 = mk(100, all.slice(0, 93)); // b = 3, c = 0: 3 > 1.645 * sqrt(3) = 2.85
    assert.deepEqual(selectionBeats(plus3, best, 1.645), { better: true, candidateOnly: 3, bestOnly: 0 });
    const noisy = mk(100, [...all.slice(10, 90), ...all.slice(90, 100), ...all.slice(0, 2)]); // b = 10, c = 8
    assert.equal(selectionBeats(noisy, best, 1.645).better, false);
    assert.equal(selectionBeats(noisy, best, 0).better, true); // z = 0: any net gain
  });
});

describe('face/train: model selection on a held-out pair list', function () {
  this.timeout(180_000);
  const cases: [number, string][] = [
    [1e-2, 'finite but worse: absurd for fine-tuning (the docs use 3e-6)'],
    [1, 'diverges: NaN embeddings are scored as far apart, not an error'],
  ];
  for (const [lr, what] of cases) {
    it(`keeps the starting (pretrained) weights when training makes them worse (lr ${lr}, ${what.split(':')[0]})`, async function () {
      const dir = facesDir();
      const pairs = dir && path.join(dir, 'lfw-view1', 'pairsDevTrain.txt');
      needs(this, 'face-data');
      if (!pairs || !fs.existsSync(pairs)) throw new Error(`the face data has no ${pairs}`);
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-select-')), 'ft.safetensors');
      const start = await FaceRecognitionNet.load();
      const startState = new Map([...start.stateDict()].map(([k, t]) => [k, Buffer.from(t.data().buffer)]));
      const net = await FaceRecognitionNet.load();
      net.train();
      const events: TrainEvent[] = [];
      const r = await trainFaceModel({
        data: path.join(dir!, 'att'),
        out,
        from: 'pretrained',
        embedder: recognitionNetwork(net, { freeze: 8 }),
        epochs: 1,
        stepsPerEpoch: 2,
        batchP: 4,
        batchK: 2,
        lr, // see cases
        warmupEpochs: 0,
        validationFraction: 0.1,
        validationPairs: 10,
        augment: false,
        threads: 1,
        seed: 3,
        selectPairs: pairs!,
        selectMaxPairs: 40,
        onProgress: (e) => events.push(e),
      });
      const sel = r.selection!;
      if (lr === 1) assert.ok(sel.history[1].nonFinitePairs > 0, 'lr 1 was expected to diverge');
      else assert.equal(sel.history[1].nonFinitePairs, 0);
      assert.equal(sel.pairs.same, 40);
      assert.equal(sel.pairs.different, 40);
      assert.deepEqual(sel.history.map((c) => c.afterEpochs), [0, 1]);
      assert.deepEqual(events.filter((e) => e.type === 'selection').map((e) => (e as { candidate: { afterEpochs: number } }).candidate.afterEpochs), [0, 1]);
      const [before, after] = sel.history;
      assert.ok(after.accuracy < before.accuracy, `selection accuracy ${before.accuracy} -> ${after.accuracy}: the absurd step should make it worse`);
      assert.equal(sel.selectedAfterEpochs, 0);
      assert.equal(r.epochs[0].selection!.afterEpochs, 1);
      // the output file holds exactly the starting weights, and says so
      const saved = await loadStateDict(out);
      assert.deepEqual([...saved.stateDict.keys()].sort(), [...startState.keys()].sort());
      for (const [k, t] of saved.stateDict) assert.ok(Buffer.from(t.data().buffer).equals(startState.get(k)!), k);
      const training = saved.metadata.training as { selection: { selectedAfterEpochs: number; history: { accuracy: number }[]; pairsFile: string } };
      assert.equal(training.selection.selectedAfterEpochs, 0);
      assert.equal(training.selection.history.length, 2);
      assert.equal(training.selection.pairsFile, pairs);
      assert.equal(saved.metadata.threshold, before.threshold);
      const metrics = JSON.parse(fs.readFileSync(r.metricsFile!, 'utf8'));
      assert.equal(metrics.selection.selectedAfterEpochs, 0);
      console.log(`      selection (80 DevTrain pairs): start ${before.accuracy.toFixed(3)}, after an lr ${lr} epoch ${after.accuracy.toFixed(3)} (${after.nonFinitePairs} non-finite pairs) -> kept the start; ${r.seconds.toFixed(1)} s`);
    });
  }
});
