// End to end with the real FaceModel (face-api's 128-d ResNet) on AT&T faces:
// enroll one photo per person (one-shot), identify the other nine, and check
// that people who were never enrolled come back as "not recognized" at the
// model's threshold. Skips when the face data set is absent.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { FaceGallery, FaceModel } from '../../lib';
import { facesDir } from '../../lib/util/paths';
import { needs } from '../helpers/peers';

const dir = facesDir();
const att = dir ? path.join(dir, 'att') : null;

describe('gallery end to end: FaceModel on AT&T faces (one-shot)', function () {
  this.timeout(600000);
  let model: FaceModel;
  const photo = (s: number, k: number) => path.join(att!, `s${s}`, `${k}.png`);
  const KNOWN = 30; // s1..s30 enrolled; s31..s40 never seen

  before(async function () {
    needs(this, 'face-data');
    if (!att || !fs.existsSync(att)) throw new Error(`the face data has no AT&T folder (${att})`);
    model = await FaceModel.pretrained({ device: 'cpu' });
  });

  it('identifies enrolled people from one photo each and rejects strangers', async () => {
    const g = await FaceGallery.open(':memory:', { model });
    const enrollEmb = await model.embedBatch(Array.from({ length: KNOWN }, (_, i) => photo(i + 1, 1)), { detect: false });
    for (let i = 0; i < KNOWN; i++) await g.enrollEmbeddings(`s${i + 1}`, enrollEmb[i]);
    // The images path too (one person through enroll(), detect: false): same embedding.
    const viaImages = await FaceGallery.open(':memory:', { model });
    await viaImages.enroll('s1', photo(1, 1), { detect: false });
    const stored = (await viaImages.embeddingsOf('s1'))![0];
    assert.ok(stored.every((v, i) => Math.abs(v - enrollEmb[0][i]) < 1e-4), 'enroll(image) stores the model embedding (batch vs single differ by float noise only)');
    await viaImages.close();

    const probes: { id: string; file: string; s: number }[] = [];
    for (let s = 1; s <= KNOWN; s++) for (let k = 2; k <= 10; k++) probes.push({ id: `s${s}`, file: photo(s, k), s });
    const results = await g.identifyBatch(probes.map((p) => p.file), { detect: false, k: 3 });
    const top1 = results.filter((r, i) => r.candidates[0].id === probes[i].id).length;
    const strangers: { file: string; s: number }[] = [];
    for (let s = KNOWN + 1; s <= 40; s++) for (let k = 1; k <= 10; k++) strangers.push({ file: photo(s, k), s });
    const sr = await g.identifyBatch(strangers.map((x) => x.file), { detect: false });

    // The model's 0.6 (set on LFW) accepts every AT&T probe, strangers included: these
    // small greyscale crops all sit close together. Choose the open-set threshold on a
    // calibration split (probes of s1-s15, strangers s31-s35), evaluate on the rest.
    const calib = (i: number) => probes[i].s <= 15;
    const calibS = (i: number) => strangers[i].s <= 35;
    const score = (t: number, useCalib: boolean) => {
      let right = 0;
      let wrong = 0;
      let n = 0;
      results.forEach((r, i) => {
        if (calib(i) !== useCalib) return;
        n++;
        if (r.distance <= t) r.candidates[0].id === probes[i].id ? right++ : wrong++;
      });
      let rej = 0;
      let m = 0;
      sr.forEach((r, i) => {
        if (calibS(i) !== useCalib) return;
        m++;
        if (r.distance > t) rej++;
      });
      return { right, wrong, n, rej, m, acc: (right + rej) / (n + m) };
    };
    let best = { t: 0, acc: -1 };
    for (let t = 0.2; t <= 0.6; t += 0.005) {
      const a = score(t, true).acc;
      if (a > best.acc) best = { t, acc: a };
    }
    const test = score(best.t, false);
    const at06 = sr.filter((r) => r.id === null).length;
    // The gallery applies the chosen threshold itself: same decisions as computed above.
    const check = await g.identifyBatch(strangers.filter((_, i) => !calibS(i)).map((x) => x.file), { detect: false, threshold: best.t });
    // ('no-match' is "farther than the threshold"; 'ambiguous' answers are also "not recognized", within it.)
    assert.equal(check.filter((r) => r.reason === 'no-match').length, test.rej);
    assert.ok(check.every((r) => r.reason !== 'ambiguous' || r.distance <= best.t));
    console.log(
      `      one-shot AT&T (${KNOWN} enrolled, ${probes.length} probes): top-1 ${((100 * top1) / probes.length).toFixed(1)}%; ` +
        `at the model threshold ${g.threshold}: strangers rejected ${at06}/${sr.length}; ` +
        `threshold ${best.t.toFixed(3)} chosen on s1-15/s31-35: on s16-30/s36-40 right ${test.right}/${test.n}, wrong ${test.wrong}, strangers rejected ${test.rej}/${test.m}, open-set accuracy ${(100 * test.acc).toFixed(1)}%`,
    );
    // Bounds below the measured values (measured: top-1 82%, open-set 69%): a broken search, index or threshold fails them.
    assert.ok(top1 / probes.length >= 0.75, `top-1 ${top1}/${probes.length}`);
    assert.ok(test.rej / test.m >= 0.4, `strangers rejected ${test.rej}/${test.m}`);
    assert.ok(test.right / test.n >= 0.4, `accepted right ${test.right}/${test.n}`);
    await g.close();
  });
});
