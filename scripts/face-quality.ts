// Measures the enrolment quality figures (lib/face/quality.ts) on real photos
// and on the same photos degraded as a careless enrolment would be: blurred,
// shrunk, turned to a profile-like crop. The figures behind QUALITY_DEFAULTS.
// Usage: node dist/scripts/face-quality.js [N photos of LFW DevTrain, default 60]
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { setNumThreads } from '../lib';
import { alignLargestFace } from '../lib/face/align';
import { QUALITY_DEFAULTS, assessFace, qualityProblems } from '../lib/face/quality';
import { readLfwPairs } from '../lib/face/metrics';
import { facesDir } from '../lib/util/paths';

const quantiles = (v: number[]) => {
  if (!v.length) return null;
  const s = [...v].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { min: +s[0].toFixed(2), p5: +q(0.05).toFixed(2), median: +q(0.5).toFixed(2), p95: +q(0.95).toFixed(2), max: +s[s.length - 1].toFixed(2) };
};

async function main(): Promise<void> {
  setNumThreads(1);
  const dir = facesDir();
  if (!dir) throw new Error('no face data');
  const n = Number(process.argv[2] ?? 60);
  const files = [...new Set(readLfwPairs(path.join(dir, 'lfw-view1', 'pairsDevTrain.txt')).map((p) => p.pathA))].slice(0, n);
  const variants: Record<string, (b: Buffer) => Promise<Buffer>> = {
    original: async (b) => b,
    'blurred (sigma 3)': (b) => sharp(b).blur(3).jpeg().toBuffer(),
    'shrunk to 60 px': (b) => sharp(b).resize(60, 60).jpeg().toBuffer(),
  };
  const out: Record<string, unknown> = { limits: QUALITY_DEFAULTS, photos: files.length };
  for (const [name, make] of Object.entries(variants)) {
    const qs = [];
    let refused = 0;
    let noFace = 0;
    for (const f of files) {
      try {
        const face = await alignLargestFace(await make(fs.readFileSync(f)), { size: 150 });
        const q = assessFace(face);
        qs.push(q);
        if (qualityProblems(q).length) refused++;
      } catch (e) {
        if ((e as Error).name !== 'NoFaceError') throw e;
        noFace++;
      }
    }
    out[name] = { faces: qs.length, noFace, refused, size: quantiles(qs.map((q) => q.size)), score: quantiles(qs.map((q) => q.score)), sharpness: quantiles(qs.map((q) => q.sharpness)), yaw: quantiles(qs.map((q) => Math.abs(q.yaw))) };
  }
  console.log(JSON.stringify(out, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
