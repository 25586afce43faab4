// FaceModel: descriptors equal face-api's computeFaceDescriptor
// (test/fixtures/faceapi-descriptors.json, made by face-api 1.7.15 on tfjs wasm),
// every input kind, typed errors, verify() on real faces, the event loop stays
// free while batches run, and no tensors leak.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';
import sharp from 'sharp';
import { ArgumentError, FaceModel, FaceRecognitionNet, ImageError, NoFaceError, Tensor, embeddingDistance, memory, mkldnnAvailable, noGrad, onednnBlock, rand, tensor, tidy, trace, traced } from '../../lib';
import { needs } from '../helpers/peers';
import type { RgbImage } from '../../lib/image';
import { facesDir, packageRoot } from '../../lib/util/paths';
import { settledTensorCount } from '../helpers/util';

const root = packageRoot;
const descriptorsFixture = JSON.parse(fs.readFileSync(path.join(root, 'test', 'fixtures', 'faceapi-descriptors.json'), 'utf8')) as {
  inputs: { name: string; shape: number[]; rgbBase64: string; descriptor: number[] }[];
};
const detectionsFixture = JSON.parse(fs.readFileSync(path.join(root, 'test', 'fixtures', 'faceapi-detections.json'), 'utf8')) as {
  images: { file: string; faces: { box: { width: number; height: number }; descriptor: number[] }[] }[];
};
const demo = (f: string) => path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), f);

const fixtureImage = (e: { shape: number[]; rgbBase64: string }): RgbImage => ({ data: new Uint8Array(Buffer.from(e.rgbBase64, 'base64')), width: e.shape[1], height: e.shape[0], channels: 3 });
const crops150 = descriptorsFixture.inputs.filter((e) => e.shape[0] === 150 && e.shape[1] === 150).map(fixtureImage);
const l2 = (a: ArrayLike<number>, b: ArrayLike<number>) => embeddingDistance(a, b, 'euclidean');
const png = (img: RgbImage) => sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();

describe('FaceModel', function () {
  this.timeout(600000);
  let model: FaceModel;
  let maxDiff = 0;

  before(async () => {
    model = await FaceModel.pretrained();
  });
  after(() => {
    model?.dispose();
  });

  describe('descriptor equivalence with face-api computeFaceDescriptor', () => {
    after(() => console.log(`      max L2 difference to face-api over ${descriptorsFixture.inputs.length} fixtures: ${maxDiff.toExponential(2)}`));
    for (const entry of descriptorsFixture.inputs) {
      it(`${entry.name} (${entry.shape[1]}x${entry.shape[0]}): L2 < 1e-4`, async () => {
        const d = await model.embed(fixtureImage(entry));
        assert.ok(d instanceof Float32Array && d.length === 128);
        const diff = l2(d, entry.descriptor);
        maxDiff = Math.max(maxDiff, diff);
        assert.ok(diff < 1e-4, `L2 ${diff}`);
        // not normalised, like face-api (norms ~1.4-1.5 on these crops)
        assert.ok(Math.abs(Math.hypot(...d) - Math.hypot(...entry.descriptor)) < 1e-4);
      });
    }

    it('the trainable network, the fused one and the fused channels-last one agree (< 1e-4) on random batches', async () => {
      const variants = await Promise.all([FaceModel.pretrained({ fused: false, channelsLast: false }), FaceModel.pretrained({ fused: true, channelsLast: false })]);
      const x = tidy(() => rand([3, 3, 150, 150]).mul(255));
      try {
        const [a, b, c] = await Promise.all([variants[0].embedTensor(x), variants[1].embedTensor(x), model.embedTensor(x)]);
        for (let i = 0; i < 3; i++) {
          assert.ok(l2(a[i], b[i]) < 1e-4, `unfused vs fused ${l2(a[i], b[i])}`);
          assert.ok(l2(a[i], c[i]) < 1e-4, `unfused vs fused channels-last ${l2(a[i], c[i])}`);
        }
        assert.ok(l2(a[0], a[1]) > 1e-3, 'different inputs give different descriptors');
      } finally {
        x.dispose();
        for (const v of variants) v.dispose();
      }
    });
  });

  describe('FaceRecognitionNet module', () => {
    let net: FaceRecognitionNet;
    before(async () => {
      net = await FaceRecognitionNet.load();
    });
    after(() => net?.dispose());

    it('has PyTorch-layout parameters under face-api names', () => {
      const sd = net.stateDict();
      assert.strictEqual([...net.namedParameters()].length, 117); // = face-api's manifest
      assert.deepStrictEqual(sd.get('conv32_down.conv.weight')!.shape, [32, 3, 7, 7]);
      assert.deepStrictEqual(sd.get('conv64_down.conv1.conv.weight')!.shape, [64, 32, 3, 3]);
      assert.deepStrictEqual(sd.get('conv256_down_out.conv2.scale.bias')!.shape, [256]);
      assert.deepStrictEqual(sd.get('fc.weight')!.shape, [128, 256]);
      assert.strictEqual(sd.get('fc.bias'), undefined);
      const fused = net.fuse();
      try {
        assert.deepStrictEqual([...fused.stateDict().keys()].slice(0, 4), ['conv32_down.weight', 'conv32_down.bias', 'conv32_1.conv1.weight', 'conv32_1.conv1.bias']);
        assert.ok(fused.parameters().every((p) => !p.requiresGrad));
      } finally {
        fused.dispose();
      }
    });

    it("fuse({ onednn: true }): a program traced on the main thread replays at 1 and 2 threads and other batch sizes with the network's descriptors (oneDNN's per-thread scratchpad once crashed such replays)", async function () {
      needs(this, 'onednn');
      const fused = net.fuse({ onednn: true });
      try {
        for (const batch of [1, 16]) {
          const x = rand([batch, 3, 150, 150]).mul(255);
          const ref = noGrad(() => net.forward(x));
          const program = trace((t: Tensor) => noGrad(() => fused.forward(t)), [x]);
          for (const threads of [1, 2, 1]) {
            const [y] = await program.runWith({ threads }, x);
            const d = noGrad(() => tidy(() => y.sub(ref).abs().max().item()));
            assert.ok(d < 1e-4, `batch ${batch}, ${threads} thread(s): max difference ${d}`);
            y.dispose();
          }
          ref.dispose();
          x.dispose();
        }
      } finally {
        fused.dispose();
      }
    });

    it("fuse(): folded, channels-last and oneDNN-format ('mkldnn') variants give the network's descriptors, eager and traced, without leaks", async function () {
      const x = rand([3, 3, 150, 150]).mul(255);
      const ref = noGrad(() => net.forward(x));
      const variants = [{}, { channelsLast: true }, ...(mkldnnAvailable() ? [{ mkldnn: true }] : []), ...(onednnBlock() ? [{ onednn: true }] : [])];
      for (const options of variants) {
        const before = await settledTensorCount();
        const fused = net.fuse(options);
        try {
          const eager = noGrad(() => fused.forward(x));
          const run = traced((t) => fused.forward(t));
          const [replayed] = await run(x);
          const [again] = await run(x);
          for (const [what, y] of [['eager', eager], ['traced', replayed], ['replayed', again]] as const) {
            const d = noGrad(() => tidy(() => y.sub(ref).abs().max().item()));
            assert.ok(d < 1e-4, `${JSON.stringify(options)} ${what}: max difference ${d}`);
            y.dispose();
          }
        } finally {
          fused.dispose();
        }
        const after = await settledTensorCount();
        assert.ok(after <= before + 1, `${JSON.stringify(options)}: ${after - before} tensors left`); // + the traced program's cached handle at most
      }
      assert.throws(() => net.fuse({ mkldnn: true, channelsLast: true }), ArgumentError);
      assert.throws(() => net.fuse({ onednn: true, mkldnn: true }), ArgumentError);
      ref.dispose();
      x.dispose();
    });

    it('is trainable: gradients reach the convs and the scale layers', () => {
      const before = memory().tensors;
      tidy(() => {
        const x = rand([2, 3, 150, 150]).mul(255);
        net.forward(x).square().sum().backward();
      });
      for (const name of ['conv32_down.conv.weight', 'conv32_down.scale.weight', 'conv256_down_out.conv2.scale.bias', 'fc.weight']) {
        const g = net.stateDict().get(name)!.grad;
        assert.ok(g, `${name} has a gradient`);
        const n = noGrad(() => tidy(() => g.abs().sum().item()));
        g.dispose();
        assert.ok(n > 0, `${name} gradient is non-zero`);
      }
      net.zeroGrad();
      assert.strictEqual(memory().tensors, before);
    });
  });

  describe('trainable()', () => {
    it('unfreezes the network and keeps embedding through it (same descriptors), for fine-tuning', async () => {
      const m = await FaceModel.pretrained();
      try {
        const before = await m.embed(crops150[0]);
        const hash = m.weightsHash;
        const t = m.trainable();
        assert.strictEqual(t.inputSize, 150);
        assert.strictEqual(t.embeddingDim, 128);
        assert.strictEqual(t.trainableParameters().length, 117);
        const after = await m.embed(crops150[0]);
        assert.ok(l2(before, after) < 1e-4, `${l2(before, after)}`);
        // an update to the trainable weights shows in the next embed
        noGrad(() => m.net.stateDict().get('fc.weight')!.mul_(2));
        const scaled = await m.embed(crops150[0]);
        assert.ok(l2(scaled, after.map((v) => 2 * v)) < 1e-4);
        assert.notStrictEqual(m.weightsHash, hash);
      } finally {
        m.dispose();
      }
    });
  });

  describe('inputs', () => {
    const ref = crops150[0];
    let refDesc: Float32Array;
    before(async () => {
      refDesc = await model.embed(ref);
    });

    it('file path, PNG / lossless WebP buffers give exactly the raw-pixel descriptor; JPEG nearly', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-fm-'));
      try {
        const p = path.join(dir, 'face.png');
        fs.writeFileSync(p, await png(ref));
        const raw = sharp(Buffer.from(ref.data), { raw: { width: 150, height: 150, channels: 3 } });
        const [fromPath, fromPng, fromWebp, fromJpeg] = await Promise.all([
          model.embed(p),
          model.embed(await png(ref)),
          model.embed(await raw.clone().webp({ lossless: true }).toBuffer()),
          model.embed(await raw.clone().jpeg({ quality: 95 }).toBuffer()),
        ]);
        // Concurrent calls are batched together; a batch of N runs other oneDNN blocking than a batch of 1
        // (1.04e-6 measured on an AVX2 AMD EPYC, 0 elsewhere): "exactly" means to float32 rounding.
        const SAME = 1e-5;
        assert.ok(l2(fromPath, refDesc) < SAME);
        assert.ok(l2(fromPng, refDesc) < SAME);
        assert.ok(l2(fromWebp, refDesc) < SAME);
        const dj = l2(fromJpeg, refDesc);
        assert.ok(dj > 0 && dj < 0.1, `JPEG q95 descriptor moved by ${dj}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('greyscale (1-channel raw, greyscale PNG) equals RGB with the grey value in every channel', async () => {
      const grey = new Uint8Array(150 * 150);
      for (let i = 0; i < grey.length; i++) grey[i] = Math.round(0.299 * ref.data[i * 3] + 0.587 * ref.data[i * 3 + 1] + 0.114 * ref.data[i * 3 + 2]);
      const rgb = new Uint8Array(150 * 150 * 3);
      for (let i = 0; i < grey.length; i++) rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = grey[i];
      const greyPng = await sharp(Buffer.from(grey), { raw: { width: 150, height: 150, channels: 1 } }).png().toBuffer();
      const [a, b, c] = await Promise.all([model.embed({ data: grey, width: 150, height: 150, channels: 1 }), model.embed(greyPng), model.embed({ data: rgb, width: 150, height: 150, channels: 3 })]);
      // 1e-5, not 0: concurrent calls are batched, and each forward pass runs at the thread count the
      // scheduler picks (lib/core/threads.ts); both change float32 summation order (measured ~1e-6).
      assert.ok(l2(a, c) < 1e-5 && l2(b, c) < 1e-5, `${l2(a, c)}, ${l2(b, c)}`);
      assert.ok(l2(a, refDesc) > 1e-3, 'grey is not the colour image');
    });

    it('RGBA drops alpha; tensors (uint8 HxWx3, float 3xHxW, 1x3xHxW) equal the pixels', async () => {
      const rgba = new Uint8Array(150 * 150 * 4);
      for (let i = 0; i < 150 * 150; i++) rgba.set([...ref.data.subarray(i * 3, i * 3 + 3), 77], i * 4);
      const hwc = tensor(ref.data, { shape: [150, 150, 3] });
      const chw = tidy(() => hwc.permute([2, 0, 1]).to('float32').contiguous());
      const nchw = chw.unsqueeze(0);
      try {
        const ds = await Promise.all([model.embed({ data: rgba, width: 150, height: 150, channels: 4 }), model.embed(hwc), model.embed(chw), model.embed(nchw)]);
        for (const d of ds) assert.ok(l2(d, refDesc) < 1e-5, `${l2(d, refDesc)}`); // batched together: see above
        const [t] = await model.embedTensor(nchw);
        assert.ok(l2(t, refDesc) < 1e-5);
      } finally {
        for (const t of [hwc, chw, nchw]) t.dispose();
      }
    });

    it('embedBatch equals embed for every image, across chunks and mixed sizes, in input order', async () => {
      const imgs = descriptorsFixture.inputs.map(fixtureImage); // 10 x 150x150, 120x90, 171x200
      const batch = await model.embedBatch(imgs, { batchSize: 5 });
      assert.strictEqual(batch.length, imgs.length);
      let worst = 0;
      for (let i = 0; i < imgs.length; i++) {
        const single = await model.embed(imgs[i]);
        worst = Math.max(worst, l2(batch[i], single));
        assert.ok(l2(batch[i], descriptorsFixture.inputs[i].descriptor) < 1e-4, descriptorsFixture.inputs[i].name);
      }
      assert.ok(worst < 1e-5, `batch vs single L2 ${worst}`);
      assert.deepStrictEqual(await model.embedBatch([]), []);
    });

    it('concurrent embedBatch calls give the same results as sequential ones', async () => {
      const imgs = descriptorsFixture.inputs.map(fixtureImage);
      const seq = await model.embedBatch(imgs);
      const par = await Promise.all([0, 1, 2, 3].map((k) => model.embedBatch(k % 2 ? [...imgs].reverse() : imgs, { batchSize: 3 + k })));
      par.forEach((res, k) => res.forEach((d, i) => assert.ok(l2(d, seq[k % 2 ? imgs.length - 1 - i : i]) < 1e-5)));
    });
  });

  describe('errors are typed', () => {
    let jpeg: Buffer;
    before(async () => {
      jpeg = await sharp(Buffer.from(crops150[1].data), { raw: { width: 150, height: 150, channels: 3 } }).jpeg().toBuffer();
    });
    const rejects = (p: Promise<unknown>, type: new (...a: never[]) => Error, re?: RegExp) => assert.rejects(p, (e: Error) => e instanceof type && (!re || re.test(e.message)));

    it('corrupt, truncated and empty buffers, unsupported formats', async () => {
      await rejects(model.embed(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5, 6, 7, 8])), ImageError);
      await rejects(model.embed(jpeg.subarray(0, Math.floor(jpeg.length / 2))), ImageError);
      await rejects(model.embed(Buffer.alloc(0)), ImageError, /empty/);
      await rejects(model.embed(Buffer.from('this is plain text, not an image at all')), ImageError, /unsupported/);
      await rejects(model.embed('/nonexistent/face.png'), ImageError);
    });

    it('pixel limit, wrong channel count, bad raw sizes, NaN tensors, bad options', async () => {
      await rejects(model.embed(jpeg, { maxPixels: 100 }), ImageError, /pixel limit/);
      await rejects(model.embed({ data: new Uint8Array(150 * 150 * 3), width: 150, height: 150, channels: 3 }, { maxPixels: 1000 }), ImageError, /limit/);
      await rejects(model.embed({ data: new Uint8Array(10 * 10 * 2), width: 10, height: 10, channels: 2 }), ArgumentError, /channels/);
      await rejects(model.embed({ data: new Uint8Array(5), width: 10, height: 10, channels: 3 }), ArgumentError);
      const nan = tensor(new Float32Array(3 * 20 * 20).fill(100), { shape: [3, 20, 20] });
      nan.data(); // (values are copied in; set one NaN below)
      const withNan = tidy(() => nan.div(tensor(Float32Array.from({ length: 1200 }, (_, i) => (i === 7 ? 0 : 1)), { shape: [3, 20, 20] })).sub(tensor(Float32Array.from({ length: 1200 }, (_, i) => (i === 7 ? Infinity : 0)), { shape: [3, 20, 20] })));
      try {
        await rejects(model.embed(withNan), ImageError, /NaN/);
      } finally {
        nan.dispose();
        withNan.dispose();
      }
      const four = tensor(new Float32Array(2 * 20 * 20), { shape: [2, 20, 20] });
      try {
        await rejects(model.embed(four), ArgumentError);
      } finally {
        four.dispose();
      }
      await rejects(model.embed(jpeg, { detect: 'yes' } as never), ArgumentError, /options\.detect/);
      await rejects(model.embedBatch([jpeg], { batchSize: 0 }), ArgumentError, /batchSize/);
      await rejects(model.embedBatch(jpeg as never), ArgumentError);
      await rejects(model.embed(42 as never), ImageError);
      const wrong = tensor(new Float32Array(3 * 100 * 100), { shape: [1, 3, 100, 100] });
      try {
        await rejects(model.embedTensor(wrong), ArgumentError);
      } finally {
        wrong.dispose();
      }
    });

    it('a disposed model rejects', async () => {
      const m = await FaceModel.pretrained();
      m.dispose();
      await rejects(m.embed(crops150[0]), ArgumentError, /disposed/);
    });
  });

  describe('distance and verify', () => {
    it('distance: euclidean, squared, cosine (hand-computed), argument checks', () => {
      assert.strictEqual(model.distance([3, 0], [0, 4]), 5);
      assert.strictEqual(model.distance([3, 0], [0, 4], 'squared'), 25);
      assert.ok(Math.abs(model.distance([1, 0], [0, 2], 'cosine') - 1) < 1e-12);
      assert.ok(Math.abs(model.distance([1, 1], [2, 2], 'cosine')) < 1e-12);
      assert.ok(Math.abs(model.distance([1, 0], [1, 1], 'cosine') - (1 - Math.SQRT1_2)) < 1e-12);
      assert.throws(() => model.distance([1, 2], [1, 2, 3]), ArgumentError);
      assert.throws(() => model.distance([1, 2], [1, 2], 'manhattan' as never), ArgumentError);
      assert.throws(() => model.distance('ab' as never, [1, 2]), ArgumentError);
    });

    it('verify on embeddings: distance <= threshold (the calibrated one at FAR 1e-3, else 0.6 L2), threshold override', async () => {
      const [a, b] = descriptorsFixture.inputs.slice(0, 2).map((e) => Float32Array.from(e.descriptor));
      const t = model.threshold;
      assert.ok(model.calibration ? t > 0.2 && t < 0.6 : t === 0.6, `threshold ${t}`);
      const same = await model.verify(a, a);
      assert.deepStrictEqual(same, model.calibration ? { same: true, distance: 0, threshold: t, metric: 'euclidean', far: 0, targetFar: 1e-3 } : { same: true, distance: 0, threshold: 0.6, metric: 'euclidean' });
      const d = l2(a, b);
      const r = await model.verify(a, b);
      assert.strictEqual(r.distance, d);
      assert.strictEqual(r.same, d <= t);
      assert.strictEqual((await model.verify(a, b, { threshold: d + 0.01 })).same, true);
      assert.strictEqual((await model.verify(a, b, { threshold: d - 0.01 })).same, false);
      await assert.rejects(model.verify(new Float32Array(3), a), ArgumentError);
    });

    it('verify on AT&T faces (92x112 greyscale crops): a same and a different pair; ranking over 20 people', async function () {
      needs(this, 'face-data');
      const dir = facesDir()!;
      const att = (s: number, i: number) => path.join(dir, 'att', `s${s}`, `${i}.png`);
      const same = await model.verify(att(2, 1), att(2, 2));
      const diff = await model.verify(att(1, 1), att(19, 5));
      console.log(`      AT&T s2/1 vs s2/2: ${same.distance.toFixed(3)}, s1/1 vs s19/5: ${diff.distance.toFixed(3)}`);
      assert.strictEqual(same.same, true);
      assert.strictEqual(diff.same, false);
      // Ranking: P(same-person distance < different-person distance) over 20 people x 3 images.
      // (These are loose, unaligned low-resolution crops: the 0.6 threshold, meant for
      // aligned faces, accepts many different pairs here; the ranking is what holds.)
      const people = Array.from({ length: 20 }, (_, i) => i + 1);
      const embs = await model.embedBatch(people.flatMap((s) => [att(s, 1), att(s, 2), att(s, 5)]));
      const sameD: number[] = [];
      const diffD: number[] = [];
      for (let i = 0; i < embs.length; i++) for (let j = i + 1; j < embs.length; j++) (Math.floor(i / 3) === Math.floor(j / 3) ? sameD : diffD).push(l2(embs[i], embs[j]));
      let wins = 0;
      for (const s of sameD) for (const d of diffD) wins += s < d ? 1 : s === d ? 0.5 : 0;
      const aucValue = wins / (sameD.length * diffD.length);
      const far = diffD.filter((d) => d <= 0.6).length / diffD.length;
      const tar = sameD.filter((d) => d <= 0.6).length / sameD.length;
      console.log(`      AT&T 20 people x 3: AUC ${aucValue.toFixed(3)}; at 0.6: TAR ${tar.toFixed(2)}, FAR ${far.toFixed(2)}`);
      assert.ok(aucValue > 0.85, `AUC ${aucValue}`);
    });
  });

  describe('detect: true', () => {
    it("sample1.jpg: the largest face's descriptor with face-api's box crop is close to face-api's full pipeline", async () => {
      const entry = detectionsFixture.images.find((i) => i.file === 'demo/sample1.jpg')!;
      const largest = entry.faces.reduce((m, f) => (f.box.width * f.box.height > m.box.width * m.box.height ? f : m));
      const d = await model.embed(demo('demo/sample1.jpg'), { detect: true, align: 'box', tta: 'none' }); // face-api has no mirror averaging
      const dist = l2(d, largest.descriptor);
      console.log(`      detect + box crop vs face-api pipeline: L2 ${dist.toExponential(2)}`);
      assert.ok(dist < 0.05, `L2 ${dist}`);
      const others = entry.faces.filter((f) => f !== largest).map((f) => l2(d, f.descriptor));
      assert.ok(Math.min(...others) > 0.3, 'and far from the other faces');
    });

    it("faces(): every face of sample1.jpg, descriptors (box crop) match face-api's pipeline face by face", async () => {
      const entry = detectionsFixture.images.find((i) => i.file === 'demo/sample1.jpg')!;
      const faces = await model.faces(demo('demo/sample1.jpg'), { align: 'box', tta: 'none' });
      assert.strictEqual(faces.length, entry.faces.length);
      let worst = 0;
      faces.forEach((f, i) => {
        assert.strictEqual(f.landmarks.length, 68);
        assert.ok(f.descriptor instanceof Float32Array && f.descriptor.length === 128);
        const ref = entry.faces[i] as unknown as { box: { x: number; y: number }; descriptor: number[] };
        assert.ok(Math.abs(f.box.x - ref.box.x) < 1 && Math.abs(f.box.y - ref.box.y) < 1, 'same order and boxes as face-api');
        worst = Math.max(worst, l2(f.descriptor, ref.descriptor));
      });
      console.log(`      faces() vs face-api pipeline descriptors: max L2 ${worst.toExponential(2)}`);
      assert.ok(worst < 0.05);
      const dets = await model.detect(demo('demo/sample1.jpg'));
      // The same boxes up to float32 rounding: the two detections may run at different thread counts (lib/core/threads.ts).
      assert.strictEqual(dets.length, faces.length);
      dets.forEach((d, i) => {
        for (const k of ['x', 'y', 'width', 'height'] as const) assert.ok(Math.abs(d.box[k] - faces[i].box[k]) < 1e-3, `face ${i} box.${k}: ${d.box[k]} vs ${faces[i].box[k]}`);
      });
    });

    it('no face: NoFaceError', async () => {
      const flat = { data: new Uint8Array(640 * 480 * 3).fill(128), width: 640, height: 480, channels: 3 };
      await assert.rejects(model.embed(flat, { detect: true }), NoFaceError);
    });
  });

  describe('event loop and memory', () => {
    it('4 concurrent embedBatch calls of 16 crops keep event-loop delay p99 < 20 ms (and the monitor does catch blocking)', async () => {
      const batch = Array.from({ length: 16 }, (_, i) => crops150[i % crops150.length]);
      await model.embedBatch(batch); // warm (oneDNN primitives for batch 16)
      const h = monitorEventLoopDelay({ resolution: 1 });
      h.enable();
      // Rounds of 4 concurrent calls until the monitor has watched at least 300 ms of work: on a fast
      // machine one round can end in under 100 ms, too short for a p99 to mean anything.
      const t0 = performance.now();
      let rounds = 0;
      while (performance.now() - t0 < 300 && rounds < 50) {
        const results = await Promise.all([0, 1, 2, 3].map(() => model.embedBatch(batch)));
        assert.strictEqual(results.length, 4);
        assert.ok(results.every((r) => r.length === 16));
        rounds++;
      }
      const wall = performance.now() - t0;
      h.disable();
      const p99 = h.percentile(99) / 1e6;
      console.log(`      ${rounds} rounds of 4 x 16 crops in ${wall.toFixed(0)} ms; event-loop delay p50 ${(h.percentile(50) / 1e6).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${(h.max / 1e6).toFixed(1)} ms`);
      assert.ok(wall >= 300, `the work took long enough to measure (${wall.toFixed(0)} ms in ${rounds} rounds)`);
      assert.ok(p99 < 20, `p99 ${p99} ms`);
      // Control: the same monitor sees a 60 ms synchronous block.
      const c = monitorEventLoopDelay({ resolution: 1 });
      c.enable();
      await new Promise((r) => setTimeout(r, 20));
      const end = Date.now() + 60;
      while (Date.now() < end);
      await new Promise((r) => setTimeout(r, 20));
      c.disable();
      assert.ok(c.max / 1e6 >= 50, `control block seen as ${c.max / 1e6} ms`);
    });

    it('memory().tensors returns to baseline after many embeds', async () => {
      const imgs = descriptorsFixture.inputs.map(fixtureImage);
      await model.embedBatch(imgs);
      const base = await settledTensorCount();
      for (let i = 0; i < 5; i++) {
        await model.embedBatch(imgs, { batchSize: 4 });
        await model.embed(imgs[i]);
        await model.embed(imgs[imgs.length - 1]);
        await model.verify(imgs[0], imgs[1]);
        await model.embed(Buffer.alloc(0)).catch(() => undefined);
      }
      assert.strictEqual(await settledTensorCount(), base);
    });
  });
});
