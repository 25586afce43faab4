// npm run train:head -- --model M --pairs FILE [--out FILE] [--variant l1|chi2] [--optimizer lbfgs|adam] [--detect]
// Trains the verification head on the embeddings of an LFW-format pair list
// (e.g. pairsDevTrain.txt; embeddings computed once), then stores it with the
// model under head.* (for --model pretrained, --out names the new file holding
// the head).
import { z } from 'zod';
import { trainVerificationHead } from '../lib/face/head';
import { bestAccuracyThreshold } from '../lib/face/metrics';
import { saveTrainedModel } from '../lib/face/model-file';
import { fail, startPairsScript } from './face-common';

const HELP = `
Usage: npm run train:head -- --model M --pairs FILE [--out FILE] [--variant l1|chi2] [--optimizer lbfgs|adam] [--epochs N] [--detect]
  --model M      model file, or 'pretrained' (then --out is required)
  --pairs FILE   LFW pair list to train on (pairsDevTrain.txt)
  --out FILE     where to write the model with its head (default: --model, rewritten atomically)
  --variant      l1 (default): sigmoid(w . |fi - fj| + b); chi2: w . (fi - fj)^2 / (|fi| + |fj| + eps)
  --optimizer    lbfgs (default, full batch) or adam`;

const schema = z
  .object({
    model: z.string(),
    pairs: z.string(),
    out: z.string().optional(),
    variant: z.enum(['l1', 'chi2']).default('l1'),
    optimizer: z.enum(['lbfgs', 'adam']).default('lbfgs'),
    epochs: z.coerce.number().int().positive().default(20),
    'weight-decay': z.coerce.number().nonnegative().default(1e-4),
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
  const pairs = r.pairs.map((p) => ({ a: r.emb.get(p.pathA)!, b: r.emb.get(p.pathB)!, same: p.same }));
  const { head, metrics } = trainVerificationHead(pairs, { variant: o.variant, optimizer: o.optimizer, epochs: o.epochs, weightDecay: o['weight-decay'] });
  // The decision threshold on the probability: best accuracy on the training pairs.
  const probs = Array.from(head.predict(pairs));
  head.threshold = bestAccuracyThreshold(probs.map((score, i) => ({ score, same: pairs[i].same })), { higherIsSame: true }).threshold;
  const out = o.out ?? o.model;
  await saveTrainedModel(out, { embedder: model.embedder, head, metadata: { ...model.metadata, headTraining: { pairs: o.pairs, variant: o.variant, optimizer: o.optimizer, train: metrics.train } } });
  console.log(JSON.stringify({ out, variant: o.variant, optimizer: o.optimizer, threshold: head.threshold, train: metrics.train, seconds: metrics.seconds, embedSeconds: r.seconds }, null, 1));
}

main().catch(fail);
