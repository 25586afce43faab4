// Validation of an embedding network on pairs of image files: same/different
// pairs of held-out identities, embeddings in batches (decoding overlapped with
// the forward pass, the event loop served between batches), and the metrics.
import type { Device } from '../../core';
import { noGrad, tidy } from '../../core';
import type { RgbImage } from '../../image';
import { calibrate, thinRoc, type ScoredPair } from '../metrics';
import type { TrainableNetwork } from '../trainable';
import { mixSeed, seededRandom, shuffle } from '../../util/random';
import { Identity, imagesToBatch, loadFaceImage } from './dataset';
import type { ValidationMetrics } from './options';

/** A rectangle of an image (pixels) to use before resizing. */
export type LoadRegion = { x: number; y: number; width: number; height: number };
/** Two image files and whether they show the same person. */
export type FilePair = { a: string; b: string; same: boolean };
/** What validation needs of a network. */
export type ValidatedNetwork = Pick<TrainableNetwork, 'module' | 'embed' | 'inputSize'>;

export const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Same and different pairs of images of the given identities (seeded; at most maxPairs of each kind). */
export function makeValidationPairs(identities: Identity[], maxPairs: number, seed: number): FilePair[] {
  const random = seededRandom(mixSeed(seed, 0x7a11d));
  const same: FilePair[] = [];
  for (const id of identities) for (let i = 0; i < id.files.length; i++) for (let j = i + 1; j < id.files.length; j++) same.push({ a: id.files[i], b: id.files[j], same: true });
  const sameSel = shuffle(same, random).slice(0, maxPairs);
  const diff: FilePair[] = [];
  const seen = new Set<string>();
  const eligible = identities.filter((i) => i.files.length > 0);
  if (eligible.length < 2) return sameSel;
  let guard = 0;
  while (diff.length < sameSel.length && guard++ < sameSel.length * 20) {
    const x = Math.floor(random() * eligible.length);
    let y = Math.floor(random() * (eligible.length - 1));
    if (y >= x) y++;
    const a = eligible[x].files[Math.floor(random() * eligible[x].files.length)];
    const b = eligible[y].files[Math.floor(random() * eligible[y].files.length)];
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    if (seen.has(key)) continue;
    seen.add(key);
    diff.push({ a, b, same: false });
  }
  return [...sameSel, ...diff];
}

/**
 * Embeddings of image files (evaluation: centre crop, no augmentation), in
 * batches, yielding to the event loop between batches. Decoding of the next
 * batch overlaps the current forward pass.
 */
export async function embedFiles(
  embedder: ValidatedNetwork,
  files: string[],
  options: { batchSize?: number; device?: Device; region?: LoadRegion; load?: (file: string) => Promise<RgbImage> } = {},
): Promise<Map<string, Float32Array>> {
  const bs = options.batchSize ?? 64;
  const unique = [...new Set(files)];
  const out = new Map<string, Float32Array>();
  const wasTraining = embedder.module.training;
  embedder.module.eval();
  const load = options.load ?? ((f: string) => loadFaceImage(f, 0, { size: embedder.inputSize, augment: false, region: options.region }));
  const batches: string[][] = [];
  for (let i = 0; i < unique.length; i += bs) batches.push(unique.slice(i, i + bs));
  try {
    let pending: Promise<RgbImage[]> | null = batches.length ? Promise.all(batches[0].map(load)) : null;
    for (let b = 0; b < batches.length; b++) {
      const images = await pending!;
      pending = b + 1 < batches.length ? Promise.all(batches[b + 1].map(load)) : null;
      pending?.catch(() => undefined);
      const emb = noGrad(() =>
        tidy(() => {
          const x = imagesToBatch(images).to({ device: options.device ?? 'cpu' });
          return embedder.embed(x).to('cpu').data() as Float32Array;
        }),
      );
      const D = emb.length / images.length;
      batches[b].forEach((f, k) => out.set(f, emb.slice(k * D, (k + 1) * D)));
      await yieldToLoop();
    }
  } finally {
    embedder.module.train(wasTraining);
  }
  return out;
}

export function squaredDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s;
}

const NON_FINITE_DISTANCE = 1e30;

/** Validation metrics of an embedder on file pairs. */
export async function validatePairs(embedder: ValidatedNetwork, pairs: FilePair[], options: { device?: Device; region?: LoadRegion } = {}): Promise<ValidationMetrics> {
  return (await scoreAndValidate(embedder, pairs, options)).metrics;
}

export async function scoreAndValidate(embedder: ValidatedNetwork, pairs: FilePair[], options: { device?: Device; region?: LoadRegion }): Promise<{ metrics: ValidationMetrics; scored: ScoredPair[] }> {
  const emb = await embedFiles(embedder, pairs.flatMap((p) => [p.a, p.b]), options);
  // A diverged network's non-finite distances count as very far (predicted 'different'), so such weights score low instead of failing the run.
  let nonFinite = 0;
  const scored: ScoredPair[] = pairs.map((p) => {
    const d = squaredDistance(emb.get(p.a)!, emb.get(p.b)!);
    if (!Number.isFinite(d)) nonFinite++;
    return { score: Number.isFinite(d) ? d : NON_FINITE_DISTANCE, same: p.same };
  });
  const c = calibrate(scored, { far: [1e-3] });
  const metrics: ValidationMetrics = {
    pairs: c.pairs,
    nonFinitePairs: nonFinite,
    accuracy: c.kFold.mean,
    bestAccuracy: c.bestAccuracy,
    threshold: c.bestAccuracyThreshold,
    auc: c.auc,
    eer: c.eer,
    tarAtFar1e3: c.thresholdAtFar[0].tar,
    achievedFar: c.thresholdAtFar[0].achievedFar,
    roc: thinRoc(c.roc, 200),
  };
  return { metrics, scored };
}
