// The options of trainFaceModel (validated with zod at the call) and the events
// and results it reports.
import { z } from 'zod';
import type { ProcessGroup } from '../../distributed/process-group';
import { EMBEDDING_ARCHITECTURES, EmbeddingArchitecture } from '../../models/embedding-net';
import type { RocPoint } from '../metrics';
import type { TrainableNetwork } from '../trainable';

export const trainSchema = z
  .object({
    /** Data set folders (one sub-folder per identity), combined. */
    data: z.union([z.string(), z.array(z.string()).nonempty()]),
    /** The model file to write (.safetensors); checkpoints go beside it. */
    out: z.string().min(1),
    /** 'scratch' (default) or 'pretrained' (fine-tune FaceModel.pretrained(); needs `embedder`). */
    from: z.enum(['scratch', 'pretrained']).default('scratch'),
    architecture: z.enum(Object.keys(EMBEDDING_ARCHITECTURES) as [EmbeddingArchitecture, ...EmbeddingArchitecture[]]).default('resnet10'),
    embeddingDim: z.number().int().min(2).max(4096).default(128),
    inputSize: z.number().int().min(32).max(256).default(96),
    stem: z.enum(['imagenet', 'small']).default('imagenet'),
    mining: z.enum(['batch-all', 'batch-hard', 'semi-hard']).default('semi-hard'),
    margin: z.number().positive().default(0.2),
    epochs: z.number().int().positive().default(10),
    batchP: z.number().int().min(2).default(8),
    batchK: z.number().int().min(2).default(4),
    /** Steps per epoch (default: about one pass over the training images). */
    stepsPerEpoch: z.number().int().positive().optional(),
    lr: z.number().positive().default(1e-3),
    weightDecay: z.number().nonnegative().default(5e-4),
    /** Linear warm-up length in epochs (may be fractional), then cosine decay to lr * minLrFactor. */
    warmupEpochs: z.number().nonnegative().default(1),
    minLrFactor: z.number().min(0).max(1).default(0.01),
    device: z.string().default('cpu'),
    seed: z.number().int().nonnegative().default(0),
    validationFraction: z.number().min(0).max(0.9).default(0.15),
    /** At most this many same (and as many different) validation pairs. */
    validationPairs: z.number().int().positive().default(1000),
    maxPerIdentity: z.number().int().positive().optional(),
    minImages: z.number().int().min(2).default(2),
    augment: z.boolean().default(true),
    resume: z.boolean().default(false),
    /** Write checkpoints each epoch (default true). */
    checkpoint: z.boolean().default(true),
    /** Write the metrics JSON and PNG plot at the end (default true). */
    report: z.boolean().default(true),
    prefetch: z.number().int().min(1).max(8).default(2),
    /** libtorch intra-op threads for the run (default: unchanged). On a loaded machine 1 is often fastest: measured here, 2 threads made a resnet-mini step ~10x slower under contention. */
    threads: z.number().int().positive().optional(),
    /** Also validate the untrained network (result.initial), to see what training added. */
    validateInitial: z.boolean().default(false),
    /** The image region to use before resizing (e.g. LFW_FACE_REGION), for data that is not face crops. */
    region: z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() }).optional(),
    /** Model selection: an LFW-format pair list (images beside it) whose identities are not in the training data; the output is the best of the starting weights and each epoch's weights on it. */
    selectPairs: z.string().min(1).optional(),
    /** Face region of the selection images before resizing (default LFW_FACE_REGION, as scripts/evaluate.ts). */
    selectRegion: z.object({ x: z.number(), y: z.number(), width: z.number(), height: z.number() }).optional(),
    /** Use at most this many same (and as many different) pairs of the selection list (seeded subset; default all). */
    selectMaxPairs: z.number().int().positive().optional(),
    /** L2-SP: adds (l2sp / 2) * sum ||w - w_start||^2 over the trained parameters to the loss (default 0: off). */
    l2sp: z.number().nonnegative().default(0),
    /** Selection rule: a candidate replaces the best when b - c > selectZ * sqrt(b + c) (one-sided McNemar on the pairs' 10-fold decisions; 1.645: 5%). 0: any net gain. */
    selectZ: z.number().nonnegative().default(1.645),
  })
  .strict();
export type TrainFaceModelOptions = z.input<typeof trainSchema> & {
  /** A network to train instead of a new EmbeddingNet (fine-tuning: FaceModel.pretrained()'s recognition net). */
  embedder?: TrainableNetwork;
  /** Called for every event (step, epoch, done). */
  onProgress?: (event: TrainEvent) => void;
  /** Stops after the current step when aborted (a checkpoint of the last full epoch stays). */
  signal?: AbortSignal;
  /** Train data-parallel over this group (every rank calls trainFaceModelIter with the same options; see lib/distributed). */
  processGroup?: ProcessGroup;
};

export interface ValidationMetrics {
  pairs: { same: number; different: number };
  /** Pairs whose distance was not finite (NaN/Inf embeddings of a diverged network), scored as very far apart. */
  nonFinitePairs: number;
  /** 10-fold accuracy (threshold chosen on the other 9 folds). */
  accuracy: number;
  bestAccuracy: number;
  threshold: number;
  auc: number;
  eer: number;
  tarAtFar1e3: number;
  achievedFar: number;
  roc: RocPoint[];
}

export type TrainEvent =
  | { type: 'step'; epoch: number; step: number; stepsPerEpoch: number; globalStep: number; loss: number; triplets: number; candidates: number; lr: number; imagesPerSecond: number; stepMs: number; waitedMs: number }
  | { type: 'selection'; candidate: SelectionRecord; bestAfterEpochs: number }
  | { type: 'epoch'; epoch: number; epochs: number; trainLoss: number; validation: ValidationMetrics | null; seconds: number; imagesPerSecond: number; checkpoint: string | null }
  | { type: 'done'; result: TrainResult };

/** One candidate of model selection: the weights after `afterEpochs` epochs (0: the starting weights) scored on the selection pairs. */
export interface SelectionRecord {
  afterEpochs: number;
  /** 10-fold accuracy (the selection criterion). */
  accuracy: number;
  bestAccuracy: number;
  threshold: number;
  auc: number;
  eer: number;
  tarAtFar1e3: number;
  nonFinitePairs: number;
  /** Against the best candidate before it: pairs only this candidate / only the best got right (10-fold decisions). */
  versusBest: { candidateOnly: number; bestOnly: number } | null;
  seconds: number;
  /** Whether this candidate became the best so far. */
  best: boolean;
}

export interface SelectionResult {
  pairsFile: string;
  pairs: { same: number; different: number };
  criterion: string;
  history: SelectionRecord[];
  /** The candidate written to the output file (0: the starting weights). */
  selectedAfterEpochs: number;
  selected: SelectionRecord;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  tripletsPerStep: number;
  imagesPerSecond: number;
  seconds: number;
  lr: number;
  validation: ValidationMetrics | null;
  /** With selectPairs: this epoch's weights on the selection pairs. */
  selection?: SelectionRecord | null;
}

export interface TrainResult {
  modelFile: string;
  metricsFile: string | null;
  plotFile: string | null;
  epochs: EpochRecord[];
  /** Per-step training loss (whole run, resumed parts included). */
  stepLoss: number[];
  identities: { train: number; validation: number };
  images: { train: number; validation: number };
  seconds: number;
  imagesPerSecond: number;
  /** Longest synchronous stretch between event-loop turns (ms). */
  maxBlockMs: number;
  resumedFromEpoch: number | null;
  /** With validateInitial: the untrained network's validation metrics. */
  initial: ValidationMetrics | null;
  /** Held-out-identity validation of the last epoch's weights (not necessarily the selected ones). */
  final: ValidationMetrics | null;
  /** With selectPairs: the candidates and the one written to modelFile. */
  selection: SelectionResult | null;
}

/** A model file's path without `.safetensors`: checkpoints and the report are named from it. */
export function outputBase(out: string): string {
  return out.replace(/\.safetensors$/, '');
}

/** The options after validation, defaults filled in. */
export type TrainOptions = z.output<typeof trainSchema>;
