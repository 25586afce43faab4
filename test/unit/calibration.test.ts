// Trustworthy answers: operating points (false-accept rates instead of magic
// thresholds), open-set identification, ambiguity, enrolment quality.
import { strict as assert } from 'assert';
import * as path from 'path';
import sharp from 'sharp';
import { FaceGallery, FaceModel, FaceQualityError } from '../../lib';
import { PixelFaceModel } from '../../lib/testing/pixel-face-model';
import { OperatingPoints, farAt, operatingPoints, perComparisonFar, thresholdForFar } from '../../lib/face/calibration';
import { similarityTransform } from '../../lib/face/align';
import { seededRandom } from '../../lib/util/random';
import { packageRoot } from '../../lib/util/paths';

const root = packageRoot;
const sample = (n: number) => path.join(root, 'node_modules', '@vladmandic', 'face-api', 'demo', `sample${n}.jpg`);

/** Distances like a face network's: genuine ~ N(0.35, 0.08), impostor ~ N(0.9, 0.1). */
function synthetic(seed = 1): OperatingPoints {
  const r = seededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const genuine = Array.from({ length: 4000 }, () => Math.max(0.01, 0.35 + 0.08 * normal()));
  const impostor = Array.from({ length: 200000 }, () => Math.max(0.01, 0.9 + 0.1 * normal()));
  return operatingPoints(genuine, impostor, { source: 'synthetic', kind: 'colour', metric: 'euclidean' });
}

/** A PixelFaceModel with a calibration: galleries then choose thresholds by false-accept rate. */
class CalibratedEmbedder extends PixelFaceModel {
  constructor(readonly op: OperatingPoints) {
    super({ name: 'calibrated-fake', threshold: 0.6 });
  }
  operatingPoints(): OperatingPoints {
    return this.op;
  }
}

function unit(seed: number, dim = 128): Float32Array {
  const r = seededRandom(seed);
  const v = Float32Array.from({ length: dim }, () => r() - 0.5);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

describe('calibration: operating points', () => {
  const op = synthetic();

  it('far(distance) is non-decreasing, 0 at 0, 1 far away, and equals the table at its knots', () => {
    let last = 0;
    for (let d = 0; d <= 2; d += 0.001) {
      const f = farAt(op, d);
      assert.ok(f >= last - 1e-15, `far(${d}) = ${f} < ${last}`);
      last = f;
    }
    assert.equal(farAt(op, 0), 0);
    assert.equal(farAt(op, 10), 1);
    for (const [d, f] of op.impostorCdf) assert.ok(Math.abs(farAt(op, d) - f) <= 1e-12 * f, `knot ${d}: ${farAt(op, d)} vs ${f}`);
    // The knots are the measured shares of impostors at or below each distance.
    assert.ok(op.impostorCdf.length > 20);
  });

  it('thresholdForFar inverts far(), and the table reports TAR at 1e-2, 1e-3 and 1e-4', () => {
    for (const far of [1e-4, 3e-4, 1e-3, 1e-2, 0.1]) assert.ok(Math.abs(farAt(op, thresholdForFar(op, far)) - far) <= 1e-9 * far + 1e-12, String(far));
    assert.deepEqual(op.atFar.map((a) => a.far), [1e-2, 1e-3, 1e-4]);
    // Stricter rates give smaller thresholds and lower TAR; best accuracy is between the two classes.
    assert.ok(op.atFar[0].threshold > op.atFar[1].threshold && op.atFar[1].threshold > op.atFar[2].threshold);
    assert.ok(op.atFar[0].tar >= op.atFar[2].tar);
    assert.ok(op.bestAccuracy.threshold > 0.5 && op.bestAccuracy.threshold < 0.75 && op.bestAccuracy.accuracy > 0.99);
    assert.throws(() => thresholdForFar(op, 2));
  });

  it('open-set: the per-comparison rate shrinks with K as 1 - (1 - FAR)^(1/K), and a gallery\'s threshold with it', async () => {
    assert.ok(Math.abs(perComparisonFar(0.01, 1) - 0.01) < 1e-15);
    assert.ok(Math.abs(1 - (1 - perComparisonFar(0.01, 100)) ** 100 - 0.01) < 1e-12);
    const g = await FaceGallery.open(':memory:', { model: new CalibratedEmbedder(op) });
    const thresholds: number[] = [];
    for (const K of [1, 10, 100, 1000]) {
      while ((await g.counts()).people < K) await g.enrollEmbeddings(`p${(await g.counts()).people}`, unit(1000 + (await g.counts()).people));
      const [r] = await g.identifyEmbeddings([unit(5)]);
      assert.equal(r.falseAcceptRate, 0.01);
      assert.ok(Math.abs(r.threshold - thresholdForFar(op, perComparisonFar(0.01, K))) < 1e-12);
      thresholds.push(r.threshold);
    }
    for (let i = 1; i < thresholds.length; i++) assert.ok(thresholds[i] < thresholds[i - 1], `threshold for more people is stricter: ${thresholds}`);
    // A fixed threshold still wins when asked for.
    assert.equal((await g.identifyEmbeddings([unit(5)], { threshold: 0.3 }))[0].threshold, 0.3);
    await g.close();
  });

  it('identify: reason match / no-match / ambiguous (two people too close to tell apart), with the far of the best distance', async () => {
    const g = await FaceGallery.open(':memory:', { model: new CalibratedEmbedder(op), ambiguityMargin: 0.05 });
    const a = unit(1);
    const b = unit(2);
    // c is almost a: a probe near both cannot be told apart.
    const c = a.map((x, i) => x + 0.01 * b[i]);
    await g.enrollEmbeddings('a', a);
    await g.enrollEmbeddings('b', b);
    const [m] = await g.identifyEmbeddings([a.map((x, i) => x + 0.05 * (b[i] - x))]);
    assert.equal(m.reason, 'match');
    assert.equal(m.id, 'a');
    assert.ok(m.far! >= 0 && m.far! < 1e-3, `far ${m.far}`);
    const [n] = await g.identifyEmbeddings([unit(99)]);
    assert.deepEqual([n.id, n.reason], [null, 'no-match']);
    await g.enrollEmbeddings('c', c);
    const [amb] = await g.identifyEmbeddings([a]);
    assert.deepEqual([amb.id, amb.reason], [null, 'ambiguous']);
    assert.deepEqual(amb.candidates.slice(0, 2).map((x) => x.id).sort(), ['a', 'c']);
    await g.close();
  });
});

describe('alignment transform against points computed by hand', () => {
  it('maps two eyes and a nose: scale 2, rotation 90 degrees, shift (10, 20)', () => {
    // dst = 2 * R(90) * src + (10, 20), R(90) (x, y) = (-y, x): by hand,
    // (1, 0) -> (10, 22), (0, 1) -> (8, 20), (1, 1) -> (8, 22).
    const t = similarityTransform(
      [
        { x: 1, y: 0 },
        { x: 0, y: 1 },
        { x: 1, y: 1 },
      ],
      [
        { x: 10, y: 22 },
        { x: 8, y: 20 },
        { x: 8, y: 22 },
      ],
    );
    assert.ok(Math.abs(t.a - 0) < 1e-12 && Math.abs(t.b - 2) < 1e-12, `a ${t.a}, b ${t.b}`);
    assert.ok(Math.abs(t.tx - 10) < 1e-12 && Math.abs(t.ty - 20) < 1e-12, `t ${t.tx}, ${t.ty}`);
  });
});

describe('enrolment quality and calibrated verify with the real model', function () {
  this.timeout(180_000);
  let model: FaceModel;
  before(async () => {
    model = await FaceModel.pretrained();
  });

  it('a blurred or tiny face is refused at enrolment with the reason; force: true enrols it; a good one reports its quality', async () => {
    const g = await FaceGallery.open(':memory:', { model });
    // sample1: faces about 200 px wide, detected with scores 0.98.
    const photo = await sharp(sample(1)).jpeg().toBuffer();
    const good = await g.enroll('good', photo);
    assert.ok(good.quality && good.quality[0]!.sharpness > 9 && good.quality[0]!.size > 150, JSON.stringify(good.quality));
    // Blur is relative to the face: sigma 6 on a 200 px face is sigma 4.5 on the 150 px crop.
    const blurred = await sharp(photo).blur(6).jpeg().toBuffer();
    await assert.rejects(g.enroll('blurred', blurred), (e: unknown) => e instanceof FaceQualityError && /blurred/.test((e as Error).message) && (e as FaceQualityError).code === 'ERR_FACE_QUALITY');
    const tiny = await sharp(photo).resize(160).jpeg().toBuffer(); // faces about 16 px wide
    await assert.rejects(g.enroll('tiny', tiny), (e: unknown) => e instanceof FaceQualityError && /px wide/.test((e as Error).message));
    assert.equal((await g.counts()).people, 1, 'nothing written for refused faces');
    await g.enroll('forced', blurred, { force: true });
    assert.equal((await g.counts()).people, 2);
    await g.close();
  });

  it('verify: { far } instead of a threshold, and the estimated far of the distance (monotonic), when calibrated', async function () {
    if (!model.calibration) this.skip(); // the bundled calibration file is written by scripts/accuracy.ts
    const faces = await model.faces(sample(1));
    const [a, b] = faces.map((f) => f.descriptor);
    const r = await model.verify(a, b);
    assert.equal(r.targetFar, 1e-3);
    assert.ok(r.far! > 0 && r.far! <= 1);
    const strict = await model.verify(a, a.map((x, i) => x + 0.001 * (b[i] - x)), { far: 1e-4 });
    assert.equal(strict.same, true);
    assert.ok(strict.threshold < (await model.verify(a, b, { far: 1e-2 })).threshold);
    assert.deepEqual(model.operatingPoints('colour')!.atFar.map((x) => x.far), [1e-2, 1e-3, 1e-4]);
    assert.ok(model.operatingPoints('greyscale')!.atFar[1].threshold < model.operatingPoints('colour')!.atFar[1].threshold, 'greyscale faces are closer: a stricter threshold');
    // far grows with the distance: a pair twice as far apart has at least the same far.
    const near = await model.verify(a, a.map((x, i) => x + 0.5 * (b[i] - x)));
    assert.ok(near.distance < r.distance && near.far! <= r.far!, `${near.distance}: ${near.far} vs ${r.distance}: ${r.far}`);
    await assert.rejects(model.verify(a, b, { far: 1e-3, threshold: 0.5 }));
  });
});
