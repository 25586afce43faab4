// Summarises how real face embeddings are distributed, so that benchmarks can
// generate millions of embeddings shaped like real ones without shipping any
// face data: the mean, a Cholesky factor of the covariance of single photos
// (T: how far apart different people's photos lie) and one of the
// within-person covariance (W: how a person's photos differ from their mean).
// Uniformly random unit vectors are a poor stand-in: real embeddings fill a
// much flatter ellipsoid (a few directions carry most of the variance), and an
// approximate index behaves very differently on them.
// Input: the cache of scripts/embed-sets.ts (run it first, e.g. with
// --networks faceapi --sets lfw). Output: scripts/bench/fixtures/face-embedding-statistics.json.
// Usage: node dist/scripts/embedding-statistics.js [--network faceapi] [--sets lfw]
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { parseArgs } from './cli';
import { CACHE, EmbeddedImage } from './embed-sets';
import { fail } from './face-common';
import { STATISTICS } from './bench/face-like';

const argsSchema = z
  .object({
    network: z.string().default('faceapi'),
    sets: z.string().default('lfw'),
  })
  .strict();

/** Lower-triangular L with L L^T = A (A symmetric positive definite, n x n, row-major). */
export function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (!(s > 0)) throw new Error(`covariance is not positive definite (pivot ${i}: ${s})`);
        l[i * n + i] = Math.sqrt(s);
      } else l[i * n + j] = s / l[j * n + j];
    }
  }
  return l;
}

/** Covariance of rows (each a length-n vector) around `mean`. */
function covariance(rows: Float64Array[], mean: Float64Array, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (const r of rows)
    for (let i = 0; i < n; i++) {
      const di = r[i] - mean[i];
      for (let j = 0; j <= i; j++) c[i * n + j] += di * (r[j] - mean[j]);
    }
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      c[i * n + j] /= rows.length - 1;
      c[j * n + i] = c[i * n + j];
    }
  return c;
}

const packLower = (l: Float64Array, n: number): string => {
  const out = new Float32Array((n * (n + 1)) / 2);
  let k = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) out[k++] = l[i * n + j];
  return Buffer.from(out.buffer).toString('base64');
};

async function main(): Promise<void> {
  const args = argsSchema.parse(parseArgs(process.argv.slice(2)));
  const sets = args.sets.split(',');
  const index = JSON.parse(fs.readFileSync(path.join(CACHE, 'index.json'), 'utf8')) as { images: EmbeddedImage[] };
  const model = JSON.parse(fs.readFileSync(path.join(CACHE, args.network, 'model.json'), 'utf8')) as { model: string; weightsHash: string; dim: number };
  const raw = fs.readFileSync(path.join(CACHE, args.network, 'plain.f32'));
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const n = model.dim;
  const byIdentity = new Map<string, Float64Array[]>();
  index.images.forEach((im, i) => {
    if (!sets.includes(im.set)) return;
    const v = Float64Array.from(all.subarray(i * n, (i + 1) * n));
    if (Number.isNaN(v[0])) return; // no face found
    const key = `${im.set}/${im.identity}`;
    if (!byIdentity.has(key)) byIdentity.set(key, []);
    byIdentity.get(key)!.push(v);
  });
  const photos = [...byIdentity.values()].flat();
  if (photos.length < 4 * n) fail(`only ${photos.length} embeddings in ${sets.join(',')}: need at least ${4 * n}`);
  const mean = new Float64Array(n);
  for (const p of photos) for (let i = 0; i < n; i++) mean[i] += p[i] / photos.length;
  const total = covariance(photos, mean, n);
  // Within-person: residuals from each person's mean (people with 2+ photos),
  // scaled by sqrt(m / (m - 1)) so that each residual has the covariance W.
  const residuals: Float64Array[] = [];
  for (const group of byIdentity.values()) {
    const m = group.length;
    if (m < 2) continue;
    const mu = new Float64Array(n);
    for (const p of group) for (let i = 0; i < n; i++) mu[i] += p[i] / m;
    const s = Math.sqrt(m / (m - 1));
    for (const p of group) residuals.push(p.map((x, i) => (x - mu[i]) * s));
  }
  if (residuals.length < 2 * n) fail(`only ${residuals.length} within-person residuals: need at least ${2 * n}`);
  const within = covariance(residuals, new Float64Array(n), n);
  const trace = (c: Float64Array) => Array.from({ length: n }, (_, i) => c[i * n + i]).reduce((a, b) => a + b, 0);
  const out = {
    about: 'Statistics of real face embeddings (scripts/embedding-statistics.ts): mean, and lower-triangular Cholesky factors (row-major, packed, float32, base64) of the covariance of single photos and of the within-person covariance.',
    model: model.model,
    weightsHash: model.weightsHash,
    sets,
    photos: photos.length,
    people: byIdentity.size,
    withinResiduals: residuals.length,
    dim: n,
    meanDistanceSquared: { differentPeople: 2 * trace(total), samePerson: 2 * trace(within) },
    mean: Array.from(mean, (x) => +x.toFixed(6)),
    totalCholesky: packLower(cholesky(total, n), n),
    withinCholesky: packLower(cholesky(within, n), n),
  };
  fs.mkdirSync(path.dirname(STATISTICS), { recursive: true });
  fs.writeFileSync(STATISTICS, JSON.stringify(out, null, 1) + '\n');
  console.log(`${photos.length} photos of ${byIdentity.size} people, ${residuals.length} within-person residuals; mean squared distance: different people ${out.meanDistanceSquared.differentPeople.toFixed(3)}, same person ${out.meanDistanceSquared.samePerson.toFixed(3)} -> ${path.relative(process.cwd(), STATISTICS)}`);
}

if (require.main === module) main().catch(fail);
