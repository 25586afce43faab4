/**
 * Detection recall on LFW (view 1, deep-funneled 250x250 crops): how often does
 * SSD at face-api's defaults miss the face, and how much each fallback stage of
 * FaceDetector.detectLargest recovers (SSD at a low threshold, the tiny
 * detector, the centred box for inputs that are face crops already).
 *
 *   npm run detect:recall [-- --all] [-- --limit N]
 *
 * Default image set: the images of pairsDevTest.txt; --all: every image of lfw-view1.
 * Also prints a threshold sweep and the median SSD box (the centred-box fallback).
 */
import * as fs from 'fs';
import * as path from 'path';
import { FALLBACK_DEFAULTS } from '../lib';
import { FaceDetector } from '../lib/face/detect';
import { loadImage } from '../lib/image';
import { ImageTensor } from '../lib/image/image-tensor';
import { facesDir } from '../lib/util/paths';

export function lfwPairs(dir: string, file = 'pairsDevTest.txt'): { a: string; b: string; same: boolean }[] {
  const lines = fs.readFileSync(path.join(dir, file), 'utf8').trim().split('\n').slice(1);
  const img = (name: string, i: string) => path.join(dir, name, `${name}_${String(Number(i)).padStart(4, '0')}.jpg`);
  return lines.map((l) => {
    const p = l.trim().split('\t');
    return p.length === 3 ? { a: img(p[0], p[1]), b: img(p[0], p[2]), same: true } : { a: img(p[0], p[1]), b: img(p[2], p[3]), same: false };
  });
}

type Found = { box: { x: number; y: number; width: number; height: number }; score: number };
const largest = (fs_: Found[]) => fs_.reduce<Found | null>((m, f) => (!m || f.box.width * f.box.height > m.box.width * m.box.height ? f : m), null);
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

async function main() {
  const dir = facesDir();
  if (!dir) {
    console.log('skipped: no face data (../shared/data/faces or TORCHFACE_FACES_DIR)');
    return;
  }
  const lfw = path.join(dir, 'lfw-view1');
  const args = process.argv.slice(2);
  let files: string[];
  if (args.includes('--all')) {
    files = fs.readdirSync(lfw).filter((d) => fs.statSync(path.join(lfw, d)).isDirectory()).flatMap((d) => fs.readdirSync(path.join(lfw, d)).map((f) => path.join(lfw, d, f)));
  } else {
    files = [...new Set(lfwPairs(lfw).flatMap((p) => [p.a, p.b]))];
  }
  const li = args.indexOf('--limit');
  if (li >= 0) files = files.slice(0, Number(args[li + 1]));
  files.sort();
  const det = await FaceDetector.load({ model: 'ssd' });
  const rows: { file: string; ssd: number; ssdBox: Found | null; ssdLow: Found | null; tiny: number; tinyBox: Found | null; crop: boolean }[] = [];
  const t0 = Date.now();
  let ssdMs = 0;
  for (const [k, file] of files.entries()) {
    const img = await loadImage(file);
    const it = new ImageTensor(img);
    const t = Date.now();
    const all = await det.ssdBoxes(it, { minConfidence: 0.02 });
    ssdMs += Date.now() - t;
    const best = all.reduce((m, f) => Math.max(m, f.score), 0);
    let tinyBest = 0;
    let tinyBox: Found | null = null;
    if (!all.some((f) => f.score > FALLBACK_DEFAULTS.lowConfidence)) {
      const tf = await det.tinyBoxes(it, { minConfidence: 0.02, inputSize: FALLBACK_DEFAULTS.tinyInputSize });
      tinyBest = tf.reduce((m, f) => Math.max(m, f.score), 0);
      tinyBox = largest(tf.filter((f) => f.score > FALLBACK_DEFAULTS.tinyConfidence));
    }
    it.dispose();
    rows.push({ file, ssd: best, ssdBox: largest(all.filter((f) => f.score > 0.5)), ssdLow: largest(all.filter((f) => f.score > FALLBACK_DEFAULTS.lowConfidence)), tiny: tinyBest, tinyBox, crop: true });
    if ((k + 1) % 200 === 0) console.error(`  ${k + 1}/${files.length} (${((Date.now() - t0) / (k + 1)).toFixed(0)} ms/image)`);
  }
  const n = rows.length;
  const pct = (m: number) => `${((100 * m) / n).toFixed(2)}% (${m}/${n})`;
  const miss1 = rows.filter((r) => !r.ssdBox);
  const miss2 = miss1.filter((r) => !r.ssdLow);
  const miss3 = miss2.filter((r) => !r.tinyBox);
  console.log(`LFW ${args.includes('--all') ? 'view 1, all images' : 'pairsDevTest images'}: ${n} images, SSD ${(ssdMs / n).toFixed(0)} ms/image (preprocess + SSD + NMS), total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  console.log(`miss rate after each stage of FaceDetector.detectLargest:`);
  console.log(`  1. SSD, minConfidence 0.5 (face-api default)        ${pct(miss1.length)}`);
  console.log(`  2. + SSD, minConfidence ${FALLBACK_DEFAULTS.lowConfidence}                      ${pct(miss2.length)}`);
  console.log(`  3. + tiny detector (${FALLBACK_DEFAULTS.tinyInputSize}, score > ${FALLBACK_DEFAULTS.tinyConfidence})            ${pct(miss3.length)}`);
  console.log(`  4. + centred box (face crops only)                  ${pct(0)}  (${miss3.length} images use it)`);
  // Are fallback faces the labelled (centred) face? LFW faces are centred at ~(125, 125).
  const centred = (f: Found | null) => !!f && Math.hypot(f.box.x + f.box.width / 2 - 125, f.box.y + f.box.height / 2 - 125) < 40;
  console.log(`centred (box centre within 40 px of the image centre): stage 1 ${rows.filter((r) => r.ssdBox).filter((r) => centred(r.ssdBox)).length}/${n - miss1.length}, ` +
    `stage 2 ${miss1.filter((r) => r.ssdLow).filter((r) => centred(r.ssdLow)).length}/${miss1.length - miss2.length}, stage 3 ${miss2.filter((r) => r.tinyBox).filter((r) => centred(r.tinyBox)).length}/${miss2.length - miss3.length}`);
  console.log('SSD best-score sweep (miss rate of SSD alone):');
  for (const t of [0.5, 0.4, 0.3, 0.2, 0.1, 0.05]) console.log(`  > ${t}: ${pct(rows.filter((r) => !(r.ssd > t)).length)}`);
  const boxes = rows.filter((r) => r.ssdBox && centred(r.ssdBox)).map((r) => r.ssdBox!.box);
  const W = 250;
  console.log(`median centred SSD box (relative): x ${(median(boxes.map((b) => b.x)) / W).toFixed(3)}, y ${(median(boxes.map((b) => b.y)) / W).toFixed(3)}, ` +
    `w ${(median(boxes.map((b) => b.width)) / W).toFixed(3)}, h ${(median(boxes.map((b) => b.height)) / W).toFixed(3)}`);
  if (miss1.length) console.log(`missed by SSD at 0.5 (first 15): ${miss1.slice(0, 15).map((r) => `${path.basename(r.file)} ${r.ssd.toFixed(2)}`).join(', ')}`);
  await det.dispose();
}

if (require.main === module)
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
