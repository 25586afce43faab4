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
import { z } from 'zod';
import { FaceModel, NoFaceError } from '../lib';
import { parseOptions } from '../lib/core/errors';
import { auc, kFoldAccuracy, readLfwPairs, rocCurve } from '../lib/face/metrics';
import { NETWORK_NAMES, NetworkName } from '../lib/face/networks';
import { facesDir } from '../lib/util/paths';
import { ProgressBar } from '../lib/util/progress';
import { parseArgs } from './cli';
import { fail } from './face-common';

const schema = z
  .object({
    network: z.enum(NETWORK_NAMES as [NetworkName, ...NetworkName[]]).default('faceapi'),
    /** At most this many pairs, half of them same-person (a quick check). */
    limit: z.coerce.number().int().min(2).optional(),
  })
  .strict();

async function main(): Promise<void> {
  const { network, limit } = parseOptions(schema, parseArgs(process.argv.slice(2)), 'args');
  const dir = facesDir();
  if (!dir) throw new Error('no face data: set TORCHFACE_FACES_DIR or put it at ../shared/data/faces');
  let pairs = readLfwPairs(path.join(dir, 'lfw-view1', 'pairsDevTest.txt'));
  if (limit) pairs = [...pairs.filter((p) => p.same).slice(0, limit / 2), ...pairs.filter((p) => !p.same).slice(0, limit / 2)];
  const model = await FaceModel.pretrained({ network });
  const files = [...new Set(pairs.flatMap((p) => [p.pathA, p.pathB]))];
  const t0 = performance.now();
  const bar = new ProgressBar({ label: `embedding (${network})`, total: files.length });
  const emb = new Map<string, Float32Array | null>();
  for (const f of files) {
    // A photo where no face is found scores its pairs as "different"; any other error stops the run.
    emb.set(f, await model.embed(f, { detect: true, select: 'central' }).catch((e) => (e instanceof NoFaceError ? null : Promise.reject(e))));
    bar.tick();
  }
  bar.done();
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
