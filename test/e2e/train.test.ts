// Training from scratch with triplet loss on AT&T faces (40 people x 10
// greyscale crops): a few epochs of a small ResNet at 64 px, validation on
// held-out identities, and exact resume from a checkpoint. Needs the shared
// face data (../shared/data/faces or TORCHFACE_FACES_DIR); skips without it.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadStateDict, trainFaceModel, trainFaceModelIter, learningRateAt, PKSampler, scanIdentities, splitByIdentity } from '../../lib';
import { needs } from '../helpers/peers';
import type { TrainEvent } from '../../lib';
import { facesDir } from '../../lib/util/paths';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-train-'));

describe('face/train: data and schedule', () => {
  it('splits by identity (seeded, disjoint) and P x K batches hold P identities x K images', function () {
    const dir = facesDir();
    needs(this, 'face-data');
    const ids = scanIdentities(path.join(dir!, 'att'));
    assert.equal(ids.length, 40);
    const a = splitByIdentity(ids, { validationFraction: 0.25, seed: 3 });
    const b = splitByIdentity(ids, { validationFraction: 0.25, seed: 3 });
    const c = splitByIdentity(ids, { validationFraction: 0.25, seed: 4 });
    assert.equal(a.validation.length, 10);
    assert.deepEqual(a.validation.map((i) => i.name), b.validation.map((i) => i.name));
    assert.notDeepEqual(a.validation.map((i) => i.name), c.validation.map((i) => i.name));
    const names = new Set(a.train.map((i) => i.name));
    for (const v of a.validation) assert.ok(!names.has(v.name));
    const s = new PKSampler(a.train, 6, 4, 1);
    const batches = s.epoch(0);
    assert.equal(batches.length, Math.round(300 / 24));
    for (const bt of batches) {
      assert.equal(bt.files.length, 24);
      const counts = new Map<number, number>();
      for (const l of bt.labels) counts.set(l, (counts.get(l) ?? 0) + 1);
      assert.equal(counts.size, 6);
      for (const n of counts.values()) assert.equal(n, 4);
      assert.equal(new Set(bt.files).size, 24); // 10 images each: K = 4 drawn without replacement
    }
    assert.deepEqual(s.epoch(0), batches); // deterministic in (seed, epoch)
    assert.notDeepEqual(s.epoch(1), batches);
  });

  it('learning rate: linear warm-up then cosine to lr * minFactor', () => {
    assert.equal(learningRateAt(0, 100, 1, 10, 0.01), 0.1);
    assert.equal(learningRateAt(9, 100, 1, 10, 0.01), 1);
    assert.equal(learningRateAt(10, 100, 1, 10, 0.01), 1);
    assert.ok(Math.abs(learningRateAt(55, 100, 1, 10, 0.01) - (0.01 + 0.99 * 0.5)) < 1e-12);
    assert.ok(Math.abs(learningRateAt(100, 100, 1, 10, 0.01) - 0.01) < 1e-12);
  });
});

describe('face/train: triplet training on att', function () {
  this.timeout(180_000);
  it('from scratch (resnet-mini, 64 px, 8 epochs): loss falls and validation accuracy is clearly above chance', async function () {
    const dir = facesDir();
    needs(this, 'face-data');
    const out = path.join(tmp(), 'att.safetensors');
    const events: TrainEvent[] = [];
    const t0 = Date.now();
    const r = await trainFaceModel({
      data: path.join(dir!, 'att'),
      out,
      architecture: 'resnet-mini',
      inputSize: 64,
      embeddingDim: 64,
      epochs: 8,
      batchP: 8,
      batchK: 4,
      lr: 3e-3,
      mining: 'semi-hard',
      validationFraction: 0.25,
      threads: 1,
      seed: 7,
      onProgress: (e) => events.push(e),
    });
    const seconds = (Date.now() - t0) / 1000;
    const epochs = events.filter((e) => e.type === 'epoch');
    assert.equal(epochs.length, 8);
    assert.equal(events.filter((e) => e.type === 'step').length, 8 * Math.round(300 / 32));
    assert.equal(events[events.length - 1].type, 'done');
    // loss falls: mean of the last two epochs below the first epoch's
    const losses = r.epochs.map((e) => e.trainLoss);
    const late = (losses[6] + losses[7]) / 2;
    assert.ok(late < losses[0] * 0.9, `epoch losses ${losses.map((l) => l.toFixed(3))}`);
    // chance is 0.5 (balanced same/different pairs of 10 unseen people); the bound: >= 0.7 accuracy, AUC >= 0.75
    const v = r.final!;
    assert.equal(v.pairs.same, v.pairs.different);
    assert.ok(v.accuracy >= 0.7, `validation 10-fold accuracy ${v.accuracy}`);
    assert.ok(v.auc >= 0.75, `validation AUC ${v.auc}`);
    // outputs: model file with metadata, metrics JSON and plot PNG
    const loaded = await loadStateDict(out);
    assert.equal((loaded.metadata.hyperParameters as { inputSize: number }).inputSize, 64);
    assert.equal(typeof loaded.metadata.threshold, 'number');
    const metrics = JSON.parse(fs.readFileSync(r.metricsFile!, 'utf8'));
    assert.equal(metrics.epochs.length, 8);
    const png = fs.readFileSync(r.plotFile!);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    // the event loop was yielded to between steps
    assert.ok(r.maxBlockMs < 5000, `longest block ${r.maxBlockMs} ms`);
    console.log(`      att from scratch: ${seconds.toFixed(1)} s, ${r.imagesPerSecond.toFixed(0)} images/s, loss ${losses[0].toFixed(3)} -> ${losses[7].toFixed(3)}, validation accuracy ${v.accuracy.toFixed(3)}, AUC ${v.auc.toFixed(3)}, TAR@FAR1e-3 ${v.tarAtFar1e3.toFixed(3)}`);
  });

  it('resume continues exactly: 2 epochs straight = 1 epoch + resume for the 2nd (bit-identical weights and losses)', async function () {
    const dir = facesDir();
    needs(this, 'face-data');
    const common = { data: path.join(dir!, 'att'), architecture: 'resnet-mini' as const, inputSize: 40, embeddingDim: 16, batchP: 4, batchK: 3, stepsPerEpoch: 3, lr: 2e-3, validationFraction: 0.2, validationPairs: 30, threads: 1, seed: 11, report: false };
    const d = tmp();
    const straight = await trainFaceModel({ ...common, out: path.join(d, 'a.safetensors'), epochs: 2 });
    // interrupted run: stop after epoch 0 by aborting, then resume
    const ac = new AbortController();
    const it = trainFaceModelIter({ ...common, out: path.join(d, 'b.safetensors'), epochs: 2, signal: ac.signal });
    for (;;) {
      const n = await it.next();
      if (n.done) break;
      if (n.value.type === 'epoch' && n.value.epoch === 0) ac.abort();
    }
    const resumed = await trainFaceModel({ ...common, out: path.join(d, 'b.safetensors'), epochs: 2, resume: true });
    assert.equal(resumed.resumedFromEpoch, 0);
    assert.deepEqual(resumed.stepLoss, straight.stepLoss);
    const [A, B] = await Promise.all([loadStateDict(path.join(d, 'a.safetensors')), loadStateDict(path.join(d, 'b.safetensors'))]);
    assert.deepEqual([...A.stateDict.keys()], [...B.stateDict.keys()]);
    for (const [k, t] of A.stateDict) assert.deepEqual(Buffer.from(t.data().buffer), Buffer.from(B.stateDict.get(k)!.data().buffer), k);
    assert.deepEqual(resumed.final!.roc, straight.final!.roc);
  });
});
