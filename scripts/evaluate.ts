// npm run evaluate -- --pairs FILE [--model M|pretrained] [--detect] [--threads N] [--json OUT]
// Verification on an LFW-format pair list: 10-fold accuracy (threshold chosen on
// the other 9 folds), AUC, EER, TAR@FAR, for the distance and, when the model has
// one, the learned head.
import * as fs from 'fs';
import { z } from 'zod';
import sharp from 'sharp';
import { calibrate } from '../lib/face/metrics';
import { svgLineChart } from '../lib/util/plot';
import { fail, startPairsScript } from './face-common';

const HELP = `
Usage: npm run evaluate -- --pairs FILE [--model M] [--detect] [--threads N] [--json OUT]
  --pairs FILE   LFW pair list (pairsDevTest.txt); images are read from the same folder
  --model M      a model file, or 'pretrained' (face-api's network; the default)
  --detect       detect + align each face (face-api SSD + landmarks) instead of LFW's central face region
  --threads N    libtorch threads (default 1: fastest on a busy 2-core machine)
  --json OUT     also write the metrics as JSON
  --png OUT      the ROC and DET curves with the operating points marked (default evaluate-curves.png; 'none' for none)`;

const schema = z
  .object({
    pairs: z.string(),
    model: z.string().default('pretrained'),
    detect: z.boolean().default(false),
    threads: z.coerce.number().int().positive().default(1),
    json: z.string().optional(),
    png: z.string().default('evaluate-curves.png'),
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
  if (o.png !== 'none') await writeCurves(o.png, dist, typeof model.metadata.threshold === 'number' ? model.metadata.threshold : null);
}

/** ROC (TAR vs FAR) and DET (FRR vs FAR, log-log) side by side, with best-accuracy, FAR 1e-3 / 1e-2 and the stored threshold marked. */
async function writeCurves(file: string, c: ReturnType<typeof calibrate>, stored: number | null): Promise<void> {
  const pts = c.roc.filter((p) => p.far > 0).map((p) => [p.far, p.tar] as [number, number]);
  const at = (threshold: number): [number, number] => {
    const p = c.roc.reduce((best, q) => (Math.abs(q.threshold - threshold) < Math.abs(best.threshold - threshold) ? q : best), c.roc[0]);
    return [Math.max(p.far, 1e-4), p.tar];
  };
  const marks = [
    { at: at(c.bestAccuracyThreshold), label: `best accuracy (${c.bestAccuracyThreshold.toFixed(3)})` },
    ...c.thresholdAtFar.map((t) => ({ at: at(t.threshold), label: `FAR ${t.far}` })),
    ...(stored !== null ? [{ at: at(stored), label: `stored threshold ${stored.toFixed(3)}` }] : []),
  ];
  const roc = svgLineChart({ title: `ROC (AUC ${c.auc.toFixed(4)}, 10-fold ${(c.kFold.mean * 100).toFixed(2)}%)`, xLabel: 'false accept rate', yLabel: 'true accept rate', xLog: true, xRange: [1e-3, 1], yRange: [0.5, 1], series: [{ name: 'distance', color: '#1f5fbf', points: pts, marks }] });
  const det = svgLineChart({ title: `DET (EER ${(c.eer * 100).toFixed(2)}%)`, xLabel: 'false accept rate', yLabel: 'false reject rate', xLog: true, yLog: true, xRange: [1e-3, 1], yRange: [1e-3, 1], series: [{ name: 'distance', color: '#c0392b', points: pts.map(([f, t]) => [f, Math.max(1 - t, 1e-3)]), marks: marks.map((m) => ({ at: [m.at[0], Math.max(1 - m.at[1], 1e-3)] as [number, number], label: m.label })) }] });
  const [a, b] = await Promise.all([roc, det].map((svg) => sharp(Buffer.from(svg)).png().toBuffer()));
  await sharp({ create: { width: 1280, height: 440, channels: 3, background: 'white' } })
    .composite([
      { input: a, left: 0, top: 0 },
      { input: b, left: 640, top: 0 },
    ])
    .png()
    .toFile(file);
  console.error(`wrote ${file}`);
}

main().catch(fail);
