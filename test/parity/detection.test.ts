// Equivalence with face-api: SSD boxes, scores and 68 landmarks on face-api's own
// sample photos (test/fixtures/faceapi-detections.json, made by face-api 1.7.15 on tfjs).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ArgumentError, MOBILENET_V1_LAYERS, MobileNetV1, interpolate, noGrad, rand, tensor, tidy } from '../../lib';
import sharp from 'sharp';
import { SsdMobileNetV1, ssdAnchors } from '../../lib/models/ssd-mobilenet-v1';
import { imageToTensor } from '../../lib/image';
import { needs } from '../helpers/peers';
import { FaceDetector, ssdInputSizeFor } from '../../lib/face/detect';
import { loadImage } from '../../lib/image';
import { ImageTensor } from '../../lib/image/image-tensor';
import { nonMaxSuppression } from '../../lib/face/detect';
import { packageRoot } from '../../lib/util/paths';
import { settledTensorCount } from '../helpers/util';

const root = packageRoot;
const fixture = JSON.parse(fs.readFileSync(path.join(root, 'test', 'fixtures', 'faceapi-detections.json'), 'utf8'));
const demo = (f: string) => path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), f);

interface RefFace {
  score: number;
  box: { x: number; y: number; width: number; height: number };
  landmarks: [number, number][];
  dlibAlignedRect: { x: number; y: number; width: number; height: number };
}

describe('face detection (face-api equivalence)', function () {
  this.timeout(300000);
  let detector: FaceDetector;
  const worst = { box: 0, score: 0, landmark: 0 };

  before(async () => {
    detector = await FaceDetector.load({ model: 'ssd' });
  });
  after(() => {
    console.log(`      max |diff| over all samples: box ${worst.box.toExponential(2)} px, score ${worst.score.toExponential(2)}, landmarks ${worst.landmark.toExponential(2)} px`);
  });

  for (const entry of fixture.images as { file: string; width: number; height: number; faces: RefFace[] }[]) {
    it(`${entry.file}: ${entry.faces.length} faces, boxes and landmarks within a pixel, scores within 1e-3`, async () => {
      const img = await loadImage(demo(entry.file));
      assert.strictEqual(img.width, entry.width);
      assert.strictEqual(img.height, entry.height);
      const faces = await detector.detect(img);
      assert.strictEqual(faces.length, entry.faces.length, 'number of faces');
      faces.forEach((f, i) => {
        const r = entry.faces[i];
        const db = Math.max(Math.abs(f.box.x - r.box.x), Math.abs(f.box.y - r.box.y), Math.abs(f.box.width - r.box.width), Math.abs(f.box.height - r.box.height));
        const ds = Math.abs(f.score - r.score);
        assert.strictEqual(f.landmarks.length, 68);
        const dl = Math.max(...f.landmarks.map((p, k) => Math.max(Math.abs(p.x - r.landmarks[k][0]), Math.abs(p.y - r.landmarks[k][1]))));
        worst.box = Math.max(worst.box, db);
        worst.score = Math.max(worst.score, ds);
        worst.landmark = Math.max(worst.landmark, dl);
        assert.ok(db < 1, `face ${i}: box differs by ${db} px`);
        assert.ok(ds < 1e-3, `face ${i}: score differs by ${ds}`);
        assert.ok(dl < 1, `face ${i}: landmarks differ by ${dl} px`);
      });
    });
  }

  it('minConfidence and maxResults are honoured', async () => {
    const entry = fixture.images.find((e: { faces: unknown[] }) => e.faces.length >= 4);
    const img = await loadImage(demo(entry.file));
    const two = await detector.detect(img, { maxResults: 2, landmarks: false });
    assert.strictEqual(two.length, 2);
    const strict = await detector.detect(img, { minConfidence: 0.999, landmarks: false });
    assert.ok(strict.every((f) => f.score > 0.999));
    assert.ok(strict.length < entry.faces.length);
  });

  it('SSD runs once per image: another threshold on the same image reuses its output (the fallback chain\'s low-threshold stage)', async () => {
    const entry = fixture.images.find((e: { faces: unknown[] }) => e.faces.length >= 4);
    const img = await loadImage(demo(entry.file));
    // Count the network's runs through the detector's cached SSD program.
    const ssd = await (detector as unknown as { ssd(): Promise<{ run: (...a: unknown[]) => Promise<unknown> }> }).ssd();
    const run = ssd.run;
    let runs = 0;
    ssd.run = (...a: unknown[]) => (runs++, run(...a));
    try {
      const before = await settledTensorCount();
      const it = new ImageTensor(img, 'cpu');
      const strict = await detector.ssdBoxes(it, { minConfidence: 0.9 });
      const loose = await detector.ssdBoxes(it, { minConfidence: 0.3 });
      it.dispose();
      assert.equal(await settledTensorCount(), before, 'the cached SSD output left tensors behind');
      assert.equal(runs, 1);
      // The same boxes as on a fresh image each time.
      const fresh = async (minConfidence: number) => {
        const t = new ImageTensor(img, 'cpu');
        try {
          return await detector.ssdBoxes(t, { minConfidence });
        } finally {
          t.dispose();
        }
      };
      assert.deepEqual(strict, await fresh(0.9));
      assert.deepEqual(loose, await fresh(0.3));
      assert.equal(runs, 3);
      assert.ok(loose.length > strict.length, `${loose.length} vs ${strict.length} boxes`);
    } finally {
      ssd.run = run;
    }
  });

  it('the tiny detector matches face-api\'s (boxes within a pixel, scores within 1e-3)', async () => {
    const tinyRef = JSON.parse(fs.readFileSync(path.join(root, 'test', 'fixtures', 'faceapi-tiny-detections.json'), 'utf8'));
    const tiny = await FaceDetector.load({ model: 'tiny' });
    let worstBox = 0;
    for (const entry of tinyRef.images as { file: string; faces: RefFace[] }[]) {
      const faces = await tiny.detect(await loadImage(demo(entry.file)), { landmarks: false });
      assert.strictEqual(faces.length, entry.faces.length, entry.file);
      faces.forEach((f, i) => {
        const r = entry.faces[i];
        const db = Math.max(Math.abs(f.box.x - r.box.x), Math.abs(f.box.y - r.box.y), Math.abs(f.box.width - r.box.width), Math.abs(f.box.height - r.box.height));
        worstBox = Math.max(worstBox, db);
        assert.ok(db < 1, `${entry.file} face ${i}: box differs by ${db} px`);
        assert.ok(Math.abs(f.score - r.score) < 1e-3, `${entry.file} face ${i}: score ${f.score} vs ${r.score}`);
      });
    }
    console.log(`      tiny detector: max box |diff| ${worstBox.toExponential(2)} px`);
    await tiny.dispose();
  });

  it('non-max suppression keeps the best of overlapping boxes', () => {
    const boxes = tensor([
      [0, 0, 1, 1],
      [0, 0.05, 1, 1.05], // IoU ~0.9 with box 0
      [2, 2, 3, 3],
      [0, 0.6, 1, 1.6], // IoU 0.25 with box 0
    ]);
    assert.deepStrictEqual(nonMaxSuppression(boxes, [0.9, 0.95, 0.4, 0.8], { iouThreshold: 0.5, scoreThreshold: 0.5 }), [1, 3]);
    assert.deepStrictEqual(nonMaxSuppression(boxes, [0.9, 0.95, 0.6, 0.8], { iouThreshold: 0.5, scoreThreshold: 0.5, maxResults: 2 }), [1, 3]);
    assert.deepStrictEqual(nonMaxSuppression(boxes, [0.9, 0.95, 0.6, 0.8], { iouThreshold: 0.5, scoreThreshold: 0.5 }), [1, 3, 2]);
    boxes.dispose();
  });

  it('detection does not leak tensors', async () => {
    const img = await loadImage(demo('demo/sample1.jpg'));
    await detector.detect(img);
    const before = await settledTensorCount();
    await detector.detect(img);
    assert.strictEqual(await settledTensorCount(), before);
  });

  it('detection runs off the event loop', async () => {
    const img = await loadImage(demo('demo/sample2.jpg'));
    await detector.detect(img);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const t0 = Date.now();
    await detector.detect(img);
    const ms = Date.now() - t0;
    clearInterval(timer);
    console.log(`      detect (SSD + landmarks, 1920x1367, 3 faces): ${ms} ms, ${ticks} timer ticks meanwhile`);
    assert.ok(ticks > ms / 20, `event loop blocked: ${ticks} ticks in ${ms} ms`);
  });
});

describe('SSD-MobileNet-v1 at other input sizes', function () {
  this.timeout(120000);
  it("ssdAnchors reproduces face-api's 5,118 shipped anchors for the 512 input", async () => {
    const net = await SsdMobileNetV1.load();
    const shipped = net.buffer('anchors')!.data() as Float32Array;
    const made = ssdAnchors([32, 16, 8, 4, 2, 1], 512);
    assert.equal(made.length, shipped.length);
    let worst = 0;
    for (let i = 0; i < made.length; i++) worst = Math.max(worst, Math.abs(made[i] - shipped[i]));
    assert.ok(worst < 1e-4, `max |diff| ${worst}`);
    // At 256 the grids halve and the normalised anchor sizes double (the same pixel sizes).
    const half = ssdAnchors([16, 8, 4, 2, 1, 1], 256);
    assert.equal(half.length, 4 * (16 * 16 * 3 + (64 + 16 + 4 + 1 + 1) * 6));
    assert.ok(Math.abs(half[2] - half[0] - 2 * (shipped[2] - shipped[0])) < 1e-6);
    net.dispose();
  });

  it('a small photo detected at its own size (256) finds the face at 512\'s place, through the fallback chain\'s first stage', async () => {
    const detector = await FaceDetector.load({ model: 'ssd' });
    const entry = fixture.images[0];
    const big = await loadImage(demo(entry.file));
    // The largest face's region, as a 240 x 240 photo (what LFW's look like).
    const f = entry.faces.reduce((m: RefFace, x: RefFace) => (x.box.width * x.box.height > m.box.width * m.box.height ? x : m));
    const { x: bx, y: by, width: bw, height: bh } = f.box;
    const side = Math.round(Math.max(bw, bh) * 2.2);
    const x0 = Math.max(0, Math.round(bx + bw / 2 - side / 2));
    const y0 = Math.max(0, Math.round(by + bh / 2 - side / 2));
    const crop = await sharp(big.data, { raw: { width: big.width, height: big.height, channels: 3 } }).extract({ left: x0, top: y0, width: Math.min(side, big.width - x0), height: Math.min(side, big.height - y0) }).resize(240, 240).raw().toBuffer({ resolveWithObject: true });
    const small = { data: new Uint8Array(crop.data), width: 240, height: 240, channels: 3 as const };
    assert.equal(ssdInputSizeFor(240, 240), 256);
    const at512 = await detector.detect(small, { landmarks: false });
    await detector.detectLargest(small); // traces the 256 program: the count below is of one more call
    const before = await settledTensorCount();
    const found = await detector.detectLargest(small);
    assert.equal(await settledTensorCount(), before, 'detectLargest at 256 left tensors behind');
    assert.ok(found && found.stage === 'ssd', `stage ${found?.stage}`);
    const ref = at512.reduce((m, x) => (x.box.width * x.box.height > m.box.width * m.box.height ? x : m));
    const centre = (b: { x: number; y: number; width: number; height: number }) => [b.x + b.width / 2, b.y + b.height / 2];
    const [c0, c1] = [centre(ref.box), centre(found!.box)];
    assert.ok(Math.hypot(c0[0] - c1[0], c0[1] - c1[1]) < 0.1 * ref.box.width, `centres ${c0} vs ${c1}`);
    assert.ok(Math.abs(found!.box.width / ref.box.width - 1) < 0.25, `widths ${found!.box.width} vs ${ref.box.width}`);
    // detect() takes an SSD size too; one the network cannot run is an ArgumentError, not a crash.
    for (const inputSize of [32, 100, -64]) await assert.rejects(detector.detect(small, { inputSize }), ArgumentError);
  });
});

describe('SSD-MobileNet-v1 fused (oneDNN convolutions)', function () {
  this.timeout(120000);
  it('fuse(): boxes and scores of the unfused network on a photo and on noise (float32 rounding), no tensors left', async function () {
    needs(this, 'onednn');
    const before = await settledTensorCount();
    const net = await SsdMobileNetV1.load();
    const fused = net.fuse();
    const img = await loadImage(demo(fixture.images[0].file));
    const photo = noGrad(() => tidy(() => interpolate(imageToTensor(img), { size: [512, 512], mode: 'bilinear' })));
    for (const x of [photo, rand([1, 3, 512, 512]).mul(255)]) {
      const [b0, s0] = noGrad(() => net.forward(x));
      const [b1, s1] = noGrad(() => fused.forward(x));
      const db = tidy(() => b0.sub(b1).abs().max().item() as number);
      const ds = tidy(() => s0.sub(s1).abs().max().item() as number);
      assert.ok(db < 1e-3 && ds < 1e-4, `boxes ${db}, scores ${ds}`);
      for (const t of [b0, s0, b1, s1, x]) t.dispose();
    }
    net.dispose();
    fused.dispose();
    assert.ok((await settledTensorCount()) <= before, 'tensors left');
  });
});

describe('MobileNet-v1 feature network', () => {
  it('returns the requested layers with the documented sizes', async () => {
    const net = await MobileNetV1.pretrained();
    const x = tensor(new Float32Array(3 * 64 * 96).fill(128), { shape: [1, 3, 64, 96] });
    const f = net.features(x, ['conv_0', 'conv_5', 'conv_13']);
    assert.deepStrictEqual([...f.keys()], ['conv_0', 'conv_5', 'conv_13']);
    for (const [name, t] of f) {
      const g = MOBILENET_V1_LAYERS.find((l) => l.layer === name)!;
      assert.deepStrictEqual(t.shape, [1, g.channels, 64 / g.stride, 96 / g.stride], name);
      t.dispose();
    }
    assert.deepStrictEqual(
      MOBILENET_V1_LAYERS.map((l) => [l.stride, l.receptiveField]),
      [[2, 3], [2, 7], [4, 11], [4, 19], [8, 27], [8, 43], [16, 59], [16, 91], [16, 123], [16, 155], [16, 187], [16, 219], [32, 251], [32, 315]],
    );
    assert.throws(() => net.features(x, ['conv_14']), /conv_0 \.\.\. conv_13/);
    x.dispose();
    net.dispose();
  });

  it('receptive field table matches the gradient footprint of a unit', async () => {
    const net = await MobileNetV1.pretrained();
    const S = 96;
    const x = tensor(new Float32Array(3 * S * S).fill(100), { shape: [1, 3, S, S], requiresGrad: true });
    const layer = 'conv_5';
    const g = MOBILENET_V1_LAYERS.find((l) => l.layer === layer)!;
    const f = net.features(x, [layer]).get(layer)!;
    const i = 5;
    const unit = f.select(0, 0).select(1, i).select(1, i).sum();
    unit.backward();
    const grad = x.grad!.abs().sum(1).squeeze(0); // S x S
    const data = grad.data() as Float32Array;
    let lo = S;
    let hi = -1;
    for (let r = 0; r < S; r++) for (let c = 0; c < S; c++) if (data[r * S + c] !== 0) { lo = Math.min(lo, r); hi = Math.max(hi, r); }
    const centre = g.offset + i * g.stride;
    assert.ok(hi - lo + 1 <= g.receptiveField, `gradient footprint ${hi - lo + 1} > receptive field ${g.receptiveField}`);
    assert.ok(lo >= centre - (g.receptiveField - 1) / 2 && hi <= centre + (g.receptiveField - 1) / 2, `footprint [${lo}, ${hi}] outside the documented field around ${centre}`);
    net.dispose();
  });
});


