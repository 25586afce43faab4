// Shared parts of the face scripts (train, train:head, calibrate, evaluate):
// embedding the images of an LFW pair list with a model, with either LFW's
// central face region (default for LFW's deep-funneled 250 x 250 images) or
// detection + alignment (--detect).
import type { ZodError } from 'zod';
import { setNumThreads } from '../lib';
import { parseOptions } from '../lib/core/errors';
import { RgbImage } from '../lib/image';
import { LFW_FACE_REGION, loadFaceImage } from '../lib/face/train/dataset';
import { readLfwPairs, LfwPair } from '../lib/face/metrics';
import { alignLargestFace } from '../lib/face/align';
import { FaceModelFile, loadTrainedModel } from '../lib/face/model-file';
import { embedFiles, squaredDistance } from '../lib/face/train';
import { ProgressBar } from '../lib/util/progress';
import { parseArgs } from './cli';

export interface PairEmbeddings {
  pairs: LfwPair[];
  emb: Map<string, Float32Array>;
  /** Squared L2 distances of the (L2-normalised unless the model says otherwise) embeddings. */
  distances: number[];
  /** Head probabilities when the model has a head. */
  headProbabilities: number[] | null;
  seconds: number;
}

export function loaderFor(size: number, detect: boolean): (file: string) => Promise<RgbImage> {
  if (!detect) return (f) => loadFaceImage(f, 0, { size, augment: false, region: LFW_FACE_REGION });
  return async (f) => (await alignLargestFace(f, { size })).aligned;
}

export async function embedPairs(model: FaceModelFile, pairsFile: string, options: { detect?: boolean; quiet?: boolean } = {}): Promise<PairEmbeddings> {
  const t0 = Date.now();
  const pairs = readLfwPairs(pairsFile);
  const files = [...new Set(pairs.flatMap((p) => [p.pathA, p.pathB]))];
  const bar = options.quiet ? null : new ProgressBar({ total: files.length, label: 'embed' });
  const load = loaderFor(model.embedder.inputSize, !!options.detect);
  const emb = await embedFiles(model.embedder, files, {
    batchSize: 32,
    load: async (f) => {
      const img = await load(f);
      bar?.tick(1);
      return img;
    },
  });
  bar?.done();
  const distances = pairs.map((p) => squaredDistance(emb.get(p.pathA)!, emb.get(p.pathB)!));
  const headProbabilities = model.head ? Array.from(model.head.predict(pairs.map((p) => ({ a: emb.get(p.pathA)!, b: emb.get(p.pathB)! })))) : null;
  return { pairs, emb, distances, headProbabilities, seconds: (Date.now() - t0) / 1000 };
}

/** Options every pair-list script has. */
export interface PairsScriptOptions {
  model: string;
  pairs: string;
  detect: boolean;
  threads: number;
}

/**
 * The common start of train:head, calibrate and evaluate: parse and validate
 * the command line (null after printing `help` for --help), set the thread
 * count, load the model and embed the images of the pair list.
 */
export async function startPairsScript<T extends PairsScriptOptions>(
  help: string,
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: ZodError } },
): Promise<{ o: T; model: FaceModelFile; r: PairEmbeddings } | null> {
  const args = parseArgs(process.argv.slice(2));
  if (usage(help, args)) return null;
  const o = parseOptions(schema, args, 'args');
  setNumThreads(o.threads);
  const model = await loadTrainedModel(o.model);
  const r = await embedPairs(model, o.pairs, { detect: o.detect });
  return { o, model, r };
}

export function usage(text: string, args: Record<string, unknown>): boolean {
  if (args.help) {
    console.log(text.trim());
    return true;
  }
  return false;
}

export function fail(e: unknown): never {
  console.error(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  process.exit(1);
}
