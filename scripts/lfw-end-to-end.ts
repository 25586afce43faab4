// LFW view 1 DevTest through the public API, end to end: FaceModel.pretrained({ network }),
// then model.embed(photo, { detect: true, select: 'central' }) for each DevTest photo (the
// photo defaults: detection with the fallback chain, alignment, flip averaging; for
// 'fusion' both networks and the fusion), model.distance for each of the 500 + 500 pairs,
// and 10-fold accuracy, AUC and model.verify's decision at the shipped operating point.
// It checks that the figures scripts/accuracy.ts computes from cached embeddings
// (docs/accuracy.md, docs/models.md) are what a user of FaceModel gets.
//
//   node dist/scripts/lfw-end-to-end.js [--network faceapi|faceplugin|fusion] [--limit N]
import * as path from 'path';
import { FaceModel } from '../lib';
import { auc, kFoldAccuracy, readLfwPairs, rocCurve } from '../lib/face/metrics';
import type { NetworkName } from '../lib/face/networks';
import { facesDir } from '../lib/util/paths';
import { ProgressBar } from '../lib/util/progress';
import { fail } from './face-common';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  const network = (arg('--network') ?? 'faceapi') as NetworkName;
  const dir = facesDir();
  if (!dir) throw new Error('no face data: set TORCHFACE_FACES_DIR or put it at ../shared/data/faces');
  let pairs = readLfwPairs(path.join(dir, 'lfw-view1', 'pairsDevTest.txt'));
  const limit = arg('--limit') ? Number(arg('--limit')) : undefined;
  if (limit) pairs = [...pairs.filter((p) => p.same).slice(0, limit / 2), ...pairs.filter((p) => !p.same).slice(0, limit / 2)];
  const model = await FaceModel.pretrained({ network });
  const files = [...new Set(pairs.flatMap((p) => [p.pathA, p.pathB]))];
  const t0 = performance.now();
  const bar = new ProgressBar({ label: `embedding (${network})`, total: files.length });
  const emb = new Map<string, Float32Array | null>();
  for (const f of files) {
    emb.set(f, await model.embed(f, { detect: true, select: 'central' }).catch(() => null));
    bar.tick();
  }
  const seconds = (performance.now() - t0) / 1000;
  // A pair with a photo without a face counts as "different" (the largest distance).
  const scored = pairs.map((p) => {
    const a = emb.get(p.pathA);
    const b = emb.get(p.pathB);
    return { score: a && b ? model.distance(a, b) : Infinity, same: p.same };
  });
  const finite = Math.max(...scored.filter((s) => Number.isFinite(s.score)).map((s) => s.score));
  for (const s of scored) if (!Number.isFinite(s.score)) s.score = finite + 1;
  const tenFold = kFoldAccuracy(scored);
  const verified = await Promise.all(pairs.map(async (p) => {
    const a = emb.get(p.pathA);
    const b = emb.get(p.pathB);
    return a && b ? (await model.verify(a, b)).same === p.same : !p.same;
  }));
  const out = {
    network,
    pairs: pairs.length,
    photos: files.length,
    withoutFace: [...emb.values()].filter((e) => !e).length,
    seconds: +seconds.toFixed(1),
    tenFold: `${(tenFold.mean * 100).toFixed(2)} ± ${(tenFold.std * 100).toFixed(2)}%`,
    auc: +auc(rocCurve(scored)).toFixed(4),
    verifyAtShippedOperatingPoint: `${((verified.filter(Boolean).length / pairs.length) * 100).toFixed(1)}% of pairs decided right (model.verify, FAR ${model.operatingPoints() ? '1e-3' : 'n/a'})`,
  };
  console.log(JSON.stringify(out, null, 1));
  model.dispose();
}

main().catch(fail);
