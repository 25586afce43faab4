// npm run calibrate -- --model M --pairs FILE [--far 1e-3] [--choose best-accuracy|eer|far] [--detect]
// ROC, AUC, EER, TAR@FAR and thresholds on an LFW-format pair list; the chosen
// distance threshold (and the head's probability threshold, if any) are stored
// in the model file.
import { z } from 'zod';
import { operatingPoints } from '../lib/face/calibration';
import { calibrate, thinRoc } from '../lib/face/metrics';
import { saveTrainedModel } from '../lib/face/model-file';
import { fail, startPairsScript } from './face-common';

const HELP = `
Usage: npm run calibrate -- --model M --pairs FILE [--far 1e-3] [--choose best-accuracy|eer|far] [--out FILE] [--detect]
  --model M      model file (or 'pretrained' with --out)
  --pairs FILE   LFW pair list to calibrate on (pairsDevTrain.txt)
  --far F        false-accept rate for TAR@FAR and for --choose far (default 1e-3)
  --choose       which threshold to store: best-accuracy (default), eer, or far`;

const schema = z
  .object({
    model: z.string(),
    pairs: z.string(),
    out: z.string().optional(),
    far: z.coerce.number().min(0).max(1).default(1e-3),
    choose: z.enum(['best-accuracy', 'eer', 'far']).default('best-accuracy'),
    detect: z.boolean().default(false),
    threads: z.coerce.number().int().positive().default(1),
    help: z.boolean().optional(),
  })
  .strict()
  .refine((o) => o.model !== 'pretrained' || !!o.out, { message: '--out FILE for --model pretrained', path: ['out'] });

async function main(): Promise<void> {
  const start = await startPairsScript(HELP, schema);
  if (!start) return;
  const { o, model, r } = start;
  const c = calibrate(r.pairs.map((p, i) => ({ score: r.distances[i], same: p.same })), { far: [o.far], choose: o.choose });
  const stored: Record<string, unknown> = { threshold: c.threshold, thresholdMetric: 'squared L2 distance of the embeddings; same person when <= threshold' };
  // The same operating points the bundled model ships (lib/face/calibration.ts): thresholds for
  // FAR 1e-2 / 1e-3 / 1e-4 where the pair list has enough impostor pairs, and the impostor CDF.
  const genuine = r.pairs.flatMap((p, i) => (p.same ? [r.distances[i]] : []));
  const impostor = r.pairs.flatMap((p, i) => (p.same ? [] : [r.distances[i]]));
  stored.calibration = { colour: operatingPoints(genuine, impostor, { source: o.pairs, kind: 'colour', metric: 'squared L2 distance' }) };
  const calibration = { pairs: o.pairs, chosenBy: c.chosenBy, auc: c.auc, eer: c.eer, eerThreshold: c.eerThreshold, thresholdAtFar: c.thresholdAtFar, bestAccuracy: c.bestAccuracy, bestAccuracyThreshold: c.bestAccuracyThreshold, tenFoldAccuracy: c.kFold.mean, roc: thinRoc(c.roc, 100) };
  if (model.head && r.headProbabilities) {
    const h = calibrate(r.pairs.map((p, i) => ({ score: r.headProbabilities![i], same: p.same })), { far: [o.far], choose: o.choose, higherIsSame: true });
    model.head.threshold = h.threshold;
    stored.headCalibration = { auc: h.auc, eer: h.eer, threshold: h.threshold, tenFoldAccuracy: h.kFold.mean, thresholdAtFar: h.thresholdAtFar };
  }
  await saveTrainedModel(o.out ?? o.model, { embedder: model.embedder, head: model.head, metadata: { ...model.metadata, ...stored, pairCalibration: calibration } });
  const { roc: _roc, ...printable } = calibration;
  console.log(JSON.stringify({ out: o.out ?? o.model, threshold: c.threshold, ...printable, head: stored.headCalibration ?? null }, null, 1));
}

main().catch(fail);
