/**
 * Which face crop gives better LFW verification with the pretrained embedding:
 * the similarity (dlib chip) alignment or face-api's axis-aligned descriptor box?
 * LFW view 1 DevTest pairs (500 same + 500 different), 10-fold accuracy with the
 * distance threshold chosen on the other 9 folds.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/alignment-compare.js [--limit N]
 *
 * Embedding: FaceModel.pretrained().embed(crop, { detect: false }) from
 * lib/face/model.ts when it exists; otherwise face-api's own faceRecognitionNet
 * (tfjs wasm, the same weights) on the 150x150 crops, so the comparison does not
 * wait for it. Faces: FaceDetector.detectLargest (SSD with the fallback chain).
 */
import * as fs from 'fs';
import * as path from 'path';
import { alignFace } from '../lib';
import { FaceDetector } from '../lib/face/detect';
import { RgbImage, loadImage } from '../lib/image';
import { facesDir } from '../lib/util/paths';
import { lfwPairs } from './detection-recall';

type Embed = (img: RgbImage) => Promise<Float32Array>;

async function embedder(): Promise<{ name: string; embed: Embed }> {
  const modelPath = path.join(__dirname, '..', 'lib', 'face', 'model.js');
  if (fs.existsSync(modelPath) && !process.argv.includes('--faceapi')) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { FaceModel } = require(modelPath);
    const model = await FaceModel.pretrained();
    return {
      name: 'FaceModel.pretrained() (lib/face/model.ts)',
      embed: async (img) => {
        const e = await model.embed(img, { detect: false });
        const arr = e.data ? (e.data() as Float32Array) : (e as Float32Array);
        if (e.dispose) e.dispose();
        return Float32Array.from(arr);
      },
    };
  }
  /* eslint-disable @typescript-eslint/no-var-requires */
  const tf = require('@tensorflow/tfjs');
  const wasm = require('@tensorflow/tfjs-backend-wasm');
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
  /* eslint-enable @typescript-eslint/no-var-requires */
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep, false);
  await tf.setBackend('wasm');
  await tf.ready();
  await faceapi.nets.faceRecognitionNet.loadFromDisk(path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model'));
  return {
    name: "face-api's faceRecognitionNet (tfjs wasm; lib/face/model.ts not built yet)",
    embed: async (img) => {
      const t = tf.tensor3d(new Int32Array(img.data), [img.height, img.width, 3], 'int32');
      const d = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(t);
      t.dispose();
      return Float32Array.from(d);
    },
  };
}

/** 10-fold accuracy: threshold picked on 9 folds (maximising their accuracy), applied to the 10th. */
export function tenFold(dist: number[], same: boolean[]): { mean: number; std: number; folds: number[] } {
  const n = dist.length;
  const fold = (i: number) => i % 10;
  const acc = (idx: number[], t: number) => idx.filter((i) => dist[i] < t === same[i]).length / idx.length;
  const folds: number[] = [];
  for (let f = 0; f < 10; f++) {
    const train = [...Array(n).keys()].filter((i) => fold(i) !== f);
    const test = [...Array(n).keys()].filter((i) => fold(i) === f);
    const cands = [...new Set(train.map((i) => dist[i]))].sort((a, b) => a - b);
    let best = { t: 0, a: -1 };
    for (let k = 0; k < cands.length; k++) {
      const t = k + 1 < cands.length ? (cands[k] + cands[k + 1]) / 2 : cands[k] + 1e-6;
      const a = acc(train, t);
      if (a > best.a) best = { t, a };
    }
    folds.push(acc(test, best.t));
  }
  const mean = folds.reduce((a, b) => a + b, 0) / 10;
  const std = Math.sqrt(folds.reduce((a, b) => a + (b - mean) ** 2, 0) / 10);
  return { mean, std, folds };
}

async function main() {
  const dir = facesDir();
  if (!dir) {
    console.log('skipped: no face data (../shared/data/faces or TORCHFACE_FACES_DIR)');
    return;
  }
  const lfw = path.join(dir, 'lfw-view1');
  let pairs = lfwPairs(lfw);
  const li = process.argv.indexOf('--limit');
  if (li >= 0) {
    const m = Number(process.argv[li + 1]) / 2;
    pairs = [...pairs.filter((p) => p.same).slice(0, m), ...pairs.filter((p) => !p.same).slice(0, m)];
  }
  const det = await FaceDetector.load({ model: 'ssd' });
  const { name, embed } = await embedder();
  const methods = ['similarity', 'box'] as const;
  const cache = new Map<string, Record<string, Float32Array>>();
  const stages: Record<string, number> = {};
  const t0 = Date.now();
  const get = async (file: string) => {
    let e = cache.get(file);
    if (!e) {
      const img = await loadImage(file);
      const face = await det.detectLargest(img);
      if (!face) throw new Error(`no face in ${file}`);
      stages[face.stage] = (stages[face.stage] ?? 0) + 1;
      e = {};
      for (const m of methods) e[m] = await embed(await alignFace(img, face.landmarks, { method: m, size: 150 }));
      cache.set(file, e);
      if (cache.size % 200 === 0) console.error(`  ${cache.size} images (${((Date.now() - t0) / cache.size).toFixed(0)} ms/image)`);
    }
    return e;
  };
  const dists: Record<string, number[]> = { similarity: [], box: [] };
  // fold k = pair index within its group mod 10, so each fold holds 50 same + 50 different pairs
  const ordered = [...pairs.filter((p) => p.same), ...pairs.filter((p) => !p.same)];
  const same: boolean[] = [];
  for (const p of ordered) {
    const [a, b] = [await get(p.a), await get(p.b)];
    for (const m of methods) {
      let s = 0;
      for (let i = 0; i < a[m].length; i++) s += (a[m][i] - b[m][i]) ** 2;
      dists[m].push(Math.sqrt(s));
    }
    same.push(p.same);
  }
  console.log(`LFW DevTest: ${ordered.length} pairs, ${cache.size} images, embedding: ${name}`);
  console.log(`face found by stage: ${JSON.stringify(stages)}; ${((Date.now() - t0) / cache.size).toFixed(0)} ms/image (detect + 2 crops + 2 embeddings)`);
  const res: Record<string, number> = {};
  for (const m of methods) {
    const r = tenFold(dists[m], same);
    res[m] = r.mean;
    console.log(`  ${m.padEnd(10)} 10-fold accuracy ${(100 * r.mean).toFixed(2)}% ± ${(100 * r.std).toFixed(2)}  (folds ${r.folds.map((f) => (100 * f).toFixed(0)).join(' ')})`);
  }
  console.log(`better: ${res.similarity >= res.box ? 'similarity' : 'box'}`);
  await det.dispose();
}

if (require.main === module)
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
