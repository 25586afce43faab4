// Embeds the shared face data sets once per network with the default pipeline,
// for calibration and accuracy work (scripts/accuracy.ts): each image's
// descriptor and the descriptor of its mirror image (for test-time
// augmentation), the detection stage, and the set / identity / split.
// LFW view 1 and a CelebA subset are detected (SSD + 68 landmarks, with
// FaceModel's fallback chain) once, the detections cached, and each network
// aligns them its own way (dlib's chip for face-api's net, insightface's
// template for MobileFaceNet), as FaceModel.embed({ detect: true }) does;
// AT&T and Extended Yale B are embedded as the greyscale crops they are.
// Output: .cache/embeddings/{index.json, detections.json, NETWORK/{plain,flip}.f32}.
// The fusion needs no embedding of its own: accuracy.ts combines its members'.
// Usage: node dist/scripts/embed-sets.js [--networks faceapi,mobilefacenet | --onnx FILE --as NAME [--mean M --std S]] [--sets lfw,att,yaleb,celeba] [--per-identity N]
import * as fs from 'fs';
import * as path from 'path';
import { FaceModel, loadImage, setNumThreads } from '../lib';
import { alignFace } from '../lib/face/align';
import type { DetectionStage } from '../lib/face/detect';
import type { Point } from '../lib/models/face-landmark-68';
import { isGreyscale, mirrorImage } from '../lib/face/model';
import { NETWORKS, NetworkName } from '../lib/face/networks';
import { sharedDetector } from '../lib/face/detect';
import { readLfwPairs } from '../lib/face/metrics';
import { facesDir, packageRoot } from '../lib/util/paths';
import { ProgressBar } from '../lib/util/progress';

export interface EmbeddedImage {
  set: string;
  identity: string;
  file: string;
  /** 'train' (calibration may use it) or 'test' (evaluation only), by identity. */
  split: 'train' | 'test';
  greyscale: boolean;
  /** Detection stage, 'crop' for detect: false, or 'no-face'. */
  stage: string;
}
export const CACHE = path.join(packageRoot, '.cache', 'embeddings');

interface Detection {
  stage: DetectionStage | 'no-face';
  select?: 'largest' | 'central';
  landmarks?: Point[];
}

/** The images of each set, with their split (by identity) and whether they are detected. */
function listJobs(dir: string, sets: string[], perIdentity: number): (EmbeddedImage & { detect: boolean })[] {
  const jobs: (EmbeddedImage & { detect: boolean })[] = [];
  const list = (p: string) => fs.readdirSync(p).sort();
  if (sets.includes('lfw')) {
    const lfw = path.join(dir, 'lfw-view1');
    const testIds = new Set(readLfwPairs(path.join(lfw, 'pairsDevTest.txt')).flatMap((p) => [p.nameA, p.nameB]));
    for (const id of list(lfw).filter((d) => fs.statSync(path.join(lfw, d)).isDirectory()))
      for (const f of list(path.join(lfw, id))) jobs.push({ set: 'lfw', identity: id, file: path.join('lfw-view1', id, f), split: testIds.has(id) ? 'test' : 'train', greyscale: false, stage: '', detect: true });
  }
  const crops = (set: string, folder: string, split: (i: number) => 'train' | 'test', detect: boolean) => {
    list(path.join(dir, folder)).forEach((id, i) => {
      for (const f of list(path.join(dir, folder, id)).slice(0, perIdentity)) jobs.push({ set, identity: id, file: path.join(folder, id, f), split: split(i), greyscale: false, stage: '', detect });
    });
  };
  // AT&T is the greyscale evaluation set; Yale B calibrates greyscale crops.
  if (sets.includes('att')) crops('att', 'att', () => 'test', false);
  if (sets.includes('yaleb')) crops('yaleb', 'yaleb', () => 'train', false);
  // CelebA: half the identities for calibration, half for the open-set evaluation.
  if (sets.includes('celeba')) crops('celeba', 'celeba299', (i) => (i % 2 ? 'test' : 'train'), true);
  return jobs;
}

/**
 * The face of every detected image (cached in detections.json: the detector is
 * the slow part): the largest, except in LFW, whose photos are framed on their
 * subject (its protocol: the face of interest is the centred one) and where the
 * largest is sometimes a bystander at the edge: there the face nearest the
 * centre. Cached largest faces of LFW whose landmarks' centroid lies more than
 * 25 px from (125, 135) (50 of 4,992 images, where a more central face can be
 * another one) are detected again with select 'central'; nearer ones are the
 * central face already.
 */
async function detections(dir: string, files: string[]): Promise<Map<string, Detection>> {
  const file = path.join(CACHE, 'detections.json');
  const cache = new Map<string, Detection>(fs.existsSync(file) ? Object.entries(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Detection>) : []);
  const central = (f: string) => f.startsWith('lfw-view1');
  const offCentre = (d: Detection) => {
    if (!d.landmarks) return false;
    const c = d.landmarks.reduce((a, p) => ({ x: a.x + p.x / d.landmarks!.length, y: a.y + p.y / d.landmarks!.length }), { x: 0, y: 0 });
    return Math.hypot(c.x - 125, c.y - 135) > 25;
  };
  const todo = files.filter((f) => !cache.has(f) || (central(f) && cache.get(f)!.select !== 'central' && offCentre(cache.get(f)!)));
  if (todo.length) {
    const det = await sharedDetector();
    const bar = new ProgressBar({ total: todo.length, label: 'detecting' });
    for (const [k, f] of todo.entries()) {
      const select = central(f) ? 'central' : 'largest';
      const face = await det.detectLargest(await loadImage(path.join(dir, f)), { fallback: true, select });
      cache.set(f, face ? { stage: face.stage, select, landmarks: face.landmarks.map((p) => ({ x: +p.x.toFixed(3), y: +p.y.toFixed(3) })) } : { stage: 'no-face', select });
      bar.tick(1);
      if (k % 500 === 499 || k === todo.length - 1) {
        fs.mkdirSync(CACHE, { recursive: true });
        fs.writeFileSync(file, JSON.stringify(Object.fromEntries(cache)));
      }
    }
    bar.done();
  }
  return cache;
}

/** A network to embed with: a pretrained one, or an ONNX face model (`--onnx FILE --as NAME`, insightface conventions). */
type NetworkSpec = { name: string; load(): Promise<FaceModel> };

async function embedNetwork(spec: NetworkSpec, dir: string, jobs: (EmbeddedImage & { detect: boolean })[], found: Map<string, Detection>): Promise<void> {
  const network = spec.name;
  const model = await spec.load();
  const S = model.inputSize;
  const D = model.embeddingDim;
  const plain = new Float32Array(jobs.length * D);
  const flip = new Float32Array(jobs.length * D);
  const bar = new ProgressBar({ total: jobs.length, label: `embedding (${network})` });
  const t0 = Date.now();
  for (const [i, j] of jobs.entries()) {
    const img = await loadImage(path.join(dir, j.file));
    j.greyscale = isGreyscale(img);
    let chip = img;
    const d = j.detect ? found.get(j.file)! : null;
    j.stage = d ? d.stage : 'crop';
    if (d && d.landmarks) chip = await alignFace(img, d.landmarks, { method: model.alignment, size: S });
    if (d && !d.landmarks) {
      plain.fill(NaN, i * D, (i + 1) * D);
      flip.fill(NaN, i * D, (i + 1) * D);
    } else {
      const [a, b] = await model.embedRgb([chip, mirrorImage(chip)]);
      plain.set(a, i * D);
      flip.set(b, i * D);
    }
    bar.tick(1);
  }
  bar.done();
  const out = path.join(CACHE, network);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'plain.f32'), Buffer.from(plain.buffer));
  fs.writeFileSync(path.join(out, 'flip.f32'), Buffer.from(flip.buffer));
  fs.writeFileSync(path.join(out, 'model.json'), JSON.stringify({ model: model.name, weightsHash: model.weightsHash, dim: D, inputSize: S, alignment: model.alignment ?? 'similarity', made: new Date().toISOString(), seconds: (Date.now() - t0) / 1000 }));
  console.log(`${network}: embedded ${jobs.length} images in ${((Date.now() - t0) / 1000).toFixed(0)} s -> ${out}`);
  model.dispose();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (k: string, d: string) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
  const sets = arg('--sets', 'lfw,att,yaleb,celeba').split(',');
  const perIdentity = Number(arg('--per-identity', '12'));
  const onnx = args.includes('--onnx') ? arg('--onnx', '') : null;
  const networks = (onnx ? [] : arg('--networks', 'faceapi,mobilefacenet').split(',')) as NetworkName[];
  for (const n of networks) if (!NETWORKS[n] || NETWORKS[n].members) throw new Error(`--networks: one of ${Object.keys(NETWORKS).filter((k) => !NETWORKS[k as NetworkName].members).join(', ')}, not '${n}'`);
  const specs: NetworkSpec[] = networks.map((network) => ({ name: network, load: () => FaceModel.pretrained({ network }) }));
  if (onnx) {
    // e.g. --onnx .cache/test-models/fr_feature.onnx --as faceplugin --mean 127 --std 128
    const name = arg('--as', path.basename(onnx, '.onnx'));
    specs.push({ name, load: () => FaceModel.fromOnnx(onnx, { mean: Number(arg('--mean', '127.5')), std: Number(arg('--std', '128')), alignment: 'arcface', name }) });
  }
  setNumThreads(1);
  const dir = facesDir();
  if (!dir) throw new Error('no face data (../shared/data/faces or TORCHFACE_FACES_DIR)');
  const jobs = listJobs(dir, sets, perIdentity);
  const found = await detections(
    dir,
    jobs.filter((j) => j.detect).map((j) => j.file),
  );
  for (const n of specs) await embedNetwork(n, dir, jobs, found);
  const index = jobs.map(({ detect: _d, ...rest }) => rest);
  fs.writeFileSync(path.join(CACHE, 'index.json'), JSON.stringify({ made: new Date().toISOString(), sets, perIdentity, images: index }));
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
