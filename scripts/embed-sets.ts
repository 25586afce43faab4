// Embeds the shared face data sets once with the pretrained network and the
// default pipeline, for calibration and accuracy work (scripts/accuracy.ts):
// each image's descriptor and the descriptor of its mirror image (for
// test-time augmentation), the detection stage, and the set / identity / split.
// LFW view 1 (detect + similarity alignment, as FaceModel.embed({ detect: true }));
// AT&T and Extended Yale B as the greyscale crops they are (detect: false);
// a CelebA subset (detect). Output: .cache/embeddings/{index.json,plain.f32,flip.f32}.
// Usage: node dist/scripts/embed-sets.js [--sets lfw,att,yaleb,celeba] [--per-identity N]
import * as fs from 'fs';
import * as path from 'path';
import { FaceModel, loadImage, setNumThreads } from '../lib';
import { isGreyscale, mirrorImage } from '../lib/face/model';
import { alignLargestFace } from '../lib/face/pipeline';
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

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (k: string, d: string) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
  const sets = arg('--sets', 'lfw,att,yaleb,celeba').split(',');
  const perIdentity = Number(arg('--per-identity', '12'));
  setNumThreads(1);
  const dir = facesDir();
  if (!dir) throw new Error('no face data (../shared/data/faces or TORCHFACE_FACES_DIR)');
  const jobs: (EmbeddedImage & { detect: boolean })[] = [];
  const list = (p: string) => fs.readdirSync(p).sort();
  if (sets.includes('lfw')) {
    const lfw = path.join(dir, 'lfw-view1');
    const testIds = new Set(readLfwPairs(path.join(lfw, 'pairsDevTest.txt')).flatMap((p) => [p.nameA, p.nameB]));
    for (const id of list(lfw).filter((d) => fs.statSync(path.join(lfw, d)).isDirectory()))
      for (const f of list(path.join(lfw, id))) jobs.push({ set: 'lfw', identity: id, file: path.join(lfw, id, f), split: testIds.has(id) ? 'test' : 'train', greyscale: false, stage: '', detect: true });
  }
  const crops = (set: string, folder: string, split: (i: number) => 'train' | 'test', detect: boolean) => {
    const root = path.join(dir, folder);
    list(root).forEach((id, i) => {
      for (const f of list(path.join(root, id)).slice(0, perIdentity)) jobs.push({ set, identity: id, file: path.join(root, id, f), split: split(i), greyscale: false, stage: '', detect });
    });
  };
  // AT&T is the greyscale evaluation set; Yale B calibrates greyscale crops.
  if (sets.includes('att')) crops('att', 'att', () => 'test', false);
  if (sets.includes('yaleb')) crops('yaleb', 'yaleb', () => 'train', false);
  // CelebA: half the identities for calibration, half for the open-set evaluation.
  if (sets.includes('celeba')) crops('celeba', 'celeba299', (i) => (i % 2 ? 'test' : 'train'), true);

  const model = await FaceModel.pretrained();
  const plain = new Float32Array(jobs.length * 128);
  const flip = new Float32Array(jobs.length * 128);
  const bar = new ProgressBar({ total: jobs.length, label: 'embedding' });
  const t0 = Date.now();
  for (const [i, j] of jobs.entries()) {
    try {
      const img = await loadImage(j.file);
      j.greyscale = isGreyscale(img);
      let chip = img;
      if (j.detect) {
        const face = await alignLargestFace(img, { size: 150 });
        chip = face.aligned;
        j.stage = face.stage ?? 'ssd';
      } else j.stage = 'crop';
      const [a, b] = await model.embedRgb([chip, mirrorImage(chip)]);
      plain.set(a, i * 128);
      flip.set(b, i * 128);
    } catch (e) {
      j.stage = (e as Error).name === 'NoFaceError' ? 'no-face' : `error: ${(e as Error).message}`;
      plain.fill(NaN, i * 128, (i + 1) * 128);
      flip.fill(NaN, i * 128, (i + 1) * 128);
    }
    bar.tick(1);
  }
  bar.done();
  fs.mkdirSync(CACHE, { recursive: true });
  fs.writeFileSync(path.join(CACHE, 'plain.f32'), Buffer.from(plain.buffer));
  fs.writeFileSync(path.join(CACHE, 'flip.f32'), Buffer.from(flip.buffer));
  const index = jobs.map(({ detect: _d, ...rest }) => ({ ...rest, file: path.relative(dir, rest.file) }));
  fs.writeFileSync(path.join(CACHE, 'index.json'), JSON.stringify({ model: model.name, weightsHash: model.weightsHash, made: new Date().toISOString(), seconds: (Date.now() - t0) / 1000, images: index }));
  console.log(`embedded ${jobs.length} images in ${((Date.now() - t0) / 1000).toFixed(0)} s -> ${CACHE}`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
