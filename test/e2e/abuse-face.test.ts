// Robustness issue #5: with detection on, a picture without a face must not be
// turned into a face by the detector's fallbacks (a blank image "verified" as
// the same person as another blank image, a grey image enrolled as a person).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as os from 'os';
import { FaceGallery, FaceModel, FileFormatError, NoFaceError, RgbImage, noGrad } from '../../lib';
import { EmbeddingNet } from '../../lib/models/embedding-net';
import { scratchNetwork } from '../../lib/face/trainable';
import { loadTrainedModel, saveTrainedModel } from '../../lib/face/model-file';
import { packageRoot } from '../../lib/util/paths';

const root = packageRoot;
const fixture = JSON.parse(fs.readFileSync(path.join(root, 'test', 'fixtures', 'faceapi-descriptors.json'), 'utf8')) as { inputs: { shape: number[]; rgbBase64: string }[] };
const faceCrops = fixture.inputs.filter((e) => e.shape[0] === 150 && e.shape[1] === 150).map((e): RgbImage => ({ data: new Uint8Array(Buffer.from(e.rgbBase64, 'base64')), width: 150, height: 150, channels: 3 }));

function image(size: number, fill: (i: number) => number): RgbImage {
  return { data: Uint8Array.from({ length: size * size * 3 }, (_, i) => fill(i)), width: size, height: size, channels: 3 };
}
let seed = 7;
const noise = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 255;

describe('abuse: pictures without a face are not faces (#5)', function () {
  this.timeout(180_000);
  let model: FaceModel;
  before(async () => {
    model = await FaceModel.pretrained();
  });

  it('#5 verify(black, white) and verify(noise, noise) with detection: NoFaceError, not "same person"', async () => {
    await assert.rejects(model.verify(image(150, () => 0), image(150, () => 255), { detect: true }), NoFaceError);
    await assert.rejects(model.verify(image(150, noise), image(150, noise), { detect: true }), NoFaceError);
    for (const size of [150, 250]) {
      for (const [what, fill] of [['black', () => 0], ['white', () => 255], ['grey', () => 128], ['noise', noise]] as const) {
        await assert.rejects(model.embed(image(size, fill), { detect: true }), NoFaceError, `${what} ${size}px`);
      }
    }
  });

  it('#5 a grey image is not enrolled as a person, and nothing is written', async () => {
    const g = await FaceGallery.open(':memory:', { model });
    await assert.rejects(g.enroll('grey', image(250, () => 128)), NoFaceError);
    assert.deepEqual(await g.counts(), { people: 0, embeddings: 0 });
    await g.close();
  });

  it('#5 real faces still pass: the sample photo, and face-api\'s tight 150x150 crops (most with detection, all without)', async () => {
    let found = 0;
    for (const crop of faceCrops) {
      assert.equal((await model.embed(crop, { detect: false })).length, 128);
      found += await model.embed(crop, { detect: true }).then(
        () => 1,
        (e) => (e instanceof NoFaceError ? 0 : Promise.reject(e)),
      );
    }
    // Measured: 9 of these 12 tight crops pass the landmark check (see FALLBACK_DEFAULTS.maxLandmarkDrift).
    assert.ok(found >= faceCrops.length - 3, `${found} of ${faceCrops.length} tight crops found with detection`);
    const faces = await model.faces(path.join(root, 'node_modules', '@vladmandic', 'face-api', 'demo', 'sample1.jpg'));
    assert.ok(faces.length >= 3, `${faces.length} faces in sample1.jpg`);
  });
});

describe('abuse: model files with NaN weights (#14)', function () {
  this.timeout(120_000);
  it('#14 a model file with a NaN weight is refused at load with a FileFormatError naming the tensor', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-nan-'));
    try {
      const file = path.join(dir, 'nan.safetensors');
      const net = new EmbeddingNet({ embeddingDim: 16, inputSize: 32 });
      const embedder = scratchNetwork(net);
      await saveTrainedModel(file, { embedder, head: null, metadata: embedder.metadata() });
      assert.ok(await loadTrainedModel(file), 'the finite model loads');
      const [name, p] = [...net.namedParameters()][0];
      noGrad(() => p.mul_(Infinity)); // infinite (and 0 * inf = NaN) weights, as a diverged run leaves
      await saveTrainedModel(file, { embedder, head: null, metadata: embedder.metadata() });
      await assert.rejects(loadTrainedModel(file), (e: unknown) => e instanceof FileFormatError && (e as Error).message.includes(name) && /NaN or infinite/.test((e as Error).message));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
