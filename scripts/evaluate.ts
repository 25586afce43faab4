// npm run evaluate -- --pairs FILE [--model M|pretrained] [--detect] [--threads N] [--json OUT]
// Verification on an LFW-format pair list: 10-fold accuracy (threshold chosen on
// the other 9 folds), AUC, EER, TAR@FAR, for the distance and, when the model has
// one, the learned head.
import * as fs from 'fs';
import { z } from 'zod';
import { calibrate } from '../lib/face/metrics';
import { fail, startPairsScript } from './face-common';

const HELP = `
Usage: npm run evaluate -- --pairs FILE [--model M] [--detect] [--threads N] [--json OUT]
  --pairs FILE   LFW pair list (pairsDevTest.txt); images are read from the same folder
  --model M      a model file, or 'pretrained' (face-api's network; the default)
  --detect       detect + align each face (face-api SSD + landmarks) instead of LFW's central face region
  --threads N    libtorch threads (default 1: fastest on a busy 2-core machine)
  --json OUT     also write the metrics as JSON`;

const schema = z
  .object({
    pairs: z.string(),
    model: z.string().default('pretrained'),
    detect: z.boolean().default(false),
    threads: z.coerce.number().int().positive().default(1),
    json: z.string().optional(),
    help: z.boolean().optional(),
  })
  .strict();

function summary(c: ReturnType<typeof calibrate>) {
  return {
    tenFoldAccuracy: c.kFold.mean,
    tenFoldStd: c.kFold.std,
    auc: c.auc,
    eer: c.eer,
    tarAtFar: c.thresholdAtFar.map((t) => ({ far: t.far, tar: t.tar, achievedFar: t.achievedFar, threshold: t.threshold })),
    bestAccuracyThreshold: c.bestAccuracyThreshold,
    pairs: c.pairs,
  };
}

async function main(): Promise<void> {
  const start = await startPairsScript(HELP, schema);
  if (!start) return;
  const { o, model, r } = start;
  const dist = calibrate(r.pairs.map((p, i) => ({ score: r.distances[i], same: p.same })), { far: [1e-3, 1e-2] });
  const out: Record<string, unknown> = { model: o.model, pairs: o.pairs, detect: o.detect, images: r.emb.size, embedSeconds: r.seconds, distance: summary(dist) };
  if (typeof model.metadata.threshold === 'number') {
    const t = model.metadata.threshold;
    out.storedThreshold = { threshold: t, accuracy: r.pairs.filter((p, i) => (r.distances[i] <= t) === p.same).length / r.pairs.length };
  }
  if (r.headProbabilities) {
    const head = calibrate(r.pairs.map((p, i) => ({ score: r.headProbabilities![i], same: p.same })), { far: [1e-3, 1e-2], higherIsSame: true });
    const t = model.head!.threshold;
    out.head = { ...summary(head), variant: model.head!.variant, storedThreshold: t, accuracyAtStoredThreshold: r.pairs.filter((p, i) => (r.headProbabilities![i] >= t) === p.same).length / r.pairs.length };
  }
  console.log(JSON.stringify(out, null, 1));
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(out, null, 1));
}

main().catch(fail);
