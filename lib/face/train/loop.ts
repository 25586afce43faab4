// Training face embedding networks with triplet loss (FaceNet), as a library
// call and an async iterator, so that a service can run it and report progress.
//
//   for await (const ev of trainFaceModelIter(options)) ...   // step / epoch / done events
//   const result = await trainFaceModel({ ...options, onProgress })
//
// Each step: P x K images (decoded and augmented by sharp on libuv's threads,
// the next batch prefetched while this one trains) -> embeddings -> in-batch
// triplet mining -> backward -> Adam step, with a warm-up + cosine learning-rate
// schedule. After each epoch: validation on held-out identities (accuracy, ROC
// AUC, TAR@FAR 1e-3) and an atomic checkpoint (model, optimizer, epoch, seed)
// from which `resume: true` continues exactly.
//
// Model selection (`selectPairs`, an LFW-format pair list of identities not used
// for training, e.g. LFW's pairsDevTrain.txt): the starting weights (after 0
// epochs) and each epoch's weights are scored on it (10-fold accuracy of the
// squared L2 distance, faces by `selectRegion` as scripts/evaluate.ts crops LFW)
// and the output model is the best candidate, the starting weights included; a
// later candidate replaces the best only when better by more than chance (a
// one-sided McNemar test on the pairs' 10-fold decisions, `selectZ`). Fine-tuning
// can then not return a model worse on that list than the one it started from.
// Validation on held-out identities of the training data did not predict LFW
// (docs/training.md). `l2sp` > 0 adds (l2sp / 2) * ||w - w_start||^2 over the
// trained parameters to the loss (L2-SP: a fine-tune that stays near its start).
//
// Event loop: a step's tensor work is synchronous libtorch calls on the calling
// thread (autograd cannot be replayed by the traced worker-thread programs). The
// loop yields to the event loop with setImmediate after every step and every
// validation batch, so a service stays responsive with latency bounded by one
// step (measured and reported as `maxBlockMs`; about 0.1-1 s for the small
// networks here on 2 cores). Image decoding never blocks: it runs in sharp.
//
// Data parallel (`processGroup` of worldSize > 1, see lib/distributed): every
// rank trains on its share of each global batch (DistributedSampler: batchP
// identities per rank), DistributedDataParallel averages the gradients in
// backward, so all ranks take the same Adam step; only rank 0 validates,
// selects, checkpoints and writes the model and report, and the ranks meet at
// a barrier after each epoch. A failed step names the rank that is gone.
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { ArgumentError, invalid, parseOptions } from '../../core/errors';
import { RgbImage } from '../../image';
import { loadOptimizer, loadStateDict, saveOptimizer, saveStateDict } from '../../io/state-dict';
import { Module } from '../../nn';
import { Adam, Optimizer } from '../../optim';
import { Device, Tensor, checkDevice, manualSeed, noGrad, tensor, tidy } from '../../core';
import { setNumThreads, useAllCoresForEager } from '../../core/threads';
import { DistributedDataParallel } from '../../distributed/data-parallel';
import { DistributedError, type ProcessGroup } from '../../distributed/process-group';
import { DistributedSampler, Identity, LFW_FACE_REGION, PKSampler, imagesToBatch, loadFaceImage, mixSeed, prefetchBatches, scanIdentities, seededRandom, shuffle, splitByIdentity } from './dataset';
import { EMBEDDING_ARCHITECTURES, EmbeddingArchitecture, EmbeddingNet } from '../../models/embedding-net';
import { calibrate, kFoldCorrect, readLfwPairs, thinRoc, RocPoint, ScoredPair } from '../metrics';
import { mineTriplets } from '../triplet';
import { renderTrainingPlot } from '../../util/plot';
import { savePng } from '../../image';
import { writeFileAtomic } from '../../io/atomic';

/** A network being trained: maps N x 3 x S x S (0..255) to N x D embeddings. */
export interface TrainableEmbedder {
  module: Module;
  inputSize: number;
  embeddingDim: number;
  /** Forward pass (train or eval mode is set on `module` by the trainer). */
  embed(x: Tensor): Tensor;
  /** Parameters to optimise (fine-tuning may freeze some). */
  trainableParameters(): Tensor[];
  /** Metadata stored in the model file to rebuild it. */
  metadata(): Record<string, unknown>;
}

export function scratchEmbedder(net: EmbeddingNet): TrainableEmbedder {
  return {
    module: net,
    inputSize: net.inputSize,
    embeddingDim: net.embeddingDim,
    embed: (x) => net.forward(x),
    trainableParameters: () => net.parameters().filter((p) => p.requiresGrad),
    metadata: () => ({ architecture: 'torchface-embedding', hyperParameters: net.config() }),
  };
}

const trainSchema = z
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
  embedder?: TrainableEmbedder;
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

/** Paths of the checkpoint files of a model file. */
export function checkpointPaths(out: string): { model: string; optimizer: string; best: string } {
  const base = out.replace(/\.safetensors$/, '');
  return { model: `${base}.ckpt.safetensors`, optimizer: `${base}.ckpt-optim.safetensors`, best: `${base}.ckpt-best.safetensors` };
}

/** A copy of a module's parameters and buffers (the caller disposes it). */
function snapshotState(module: Module): Map<string, Tensor> {
  return noGrad(() => new Map([...module.stateDict()].map(([k, t]) => [k, t.clone()] as [string, Tensor])));
}
const disposeState = (s: Map<string, Tensor> | null) => s?.forEach((t) => t.dispose());

/** Learning rate at a global step: linear warm-up from lr/warmupSteps to lr, then cosine to lr * minFactor. */
export function learningRateAt(step: number, total: number, lr: number, warmupSteps: number, minFactor: number): number {
  if (warmupSteps > 0 && step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  const span = Math.max(1, total - warmupSteps);
  const t = Math.min(1, (step - warmupSteps) / span);
  return lr * (minFactor + ((1 - minFactor) * (1 + Math.cos(Math.PI * t))) / 2);
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Same and different pairs of images of the given identities (seeded; at most maxPairs of each kind). */
export function makeValidationPairs(identities: Identity[], maxPairs: number, seed: number): { a: string; b: string; same: boolean }[] {
  const random = seededRandom(mixSeed(seed, 0x7a11d));
  const same: { a: string; b: string; same: boolean }[] = [];
  for (const id of identities) for (let i = 0; i < id.files.length; i++) for (let j = i + 1; j < id.files.length; j++) same.push({ a: id.files[i], b: id.files[j], same: true });
  const sameSel = shuffle(same, random).slice(0, maxPairs);
  const diff: { a: string; b: string; same: boolean }[] = [];
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
  embedder: Pick<TrainableEmbedder, 'module' | 'embed' | 'inputSize'>,
  files: string[],
  options: { batchSize?: number; device?: Device; region?: { x: number; y: number; width: number; height: number }; load?: (file: string) => Promise<RgbImage> } = {},
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
export async function validatePairs(embedder: Pick<TrainableEmbedder, 'module' | 'embed' | 'inputSize'>, pairs: { a: string; b: string; same: boolean }[], options: { device?: Device; region?: LoadRegion } = {}): Promise<ValidationMetrics> {
  return (await scoreAndValidate(embedder, pairs, options)).metrics;
}

async function scoreAndValidate(embedder: Pick<TrainableEmbedder, 'module' | 'embed' | 'inputSize'>, pairs: { a: string; b: string; same: boolean }[], options: { device?: Device; region?: LoadRegion }): Promise<{ metrics: ValidationMetrics; scored: ScoredPair[] }> {
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

/**
 * The selection rule: a candidate replaces the best so far when its 10-fold
 * accuracy is higher by more than chance, by a one-sided McNemar test on the
 * pairs' 10-fold decisions: with b pairs only the candidate gets right and c
 * pairs only the best gets right, it replaces when b - c > z * sqrt(b + c).
 * z = 0: any net gain of a pair.
 */
export function selectionBeats(candidate: boolean[], best: boolean[], z: number): { better: boolean; candidateOnly: number; bestOnly: number } {
  let b = 0;
  let c = 0;
  for (let i = 0; i < candidate.length; i++) {
    if (candidate[i] && !best[i]) b++;
    else if (!candidate[i] && best[i]) c++;
  }
  return { better: b - c > 0 && b - c > z * Math.sqrt(b + c), candidateOnly: b, bestOnly: c };
}
type LoadRegion = { x: number; y: number; width: number; height: number };

interface CheckpointMeta {
  epoch: number;
  globalStep: number;
  seed: number;
  options: Record<string, unknown>;
  history: EpochRecord[];
  stepLoss: number[];
  selection?: SelectionRecord[];
  /** The best candidate's 10-fold decisions on the selection pairs ('1' correct), for the selection rule after resume. */
  selectionBestCorrect?: string;
}

/** The training loop as an async iterator of events; the generator's return value is the result. */
export async function* trainFaceModelIter(options: TrainFaceModelOptions): AsyncGenerator<TrainEvent, TrainResult> {
  const { embedder: givenEmbedder, onProgress, signal, processGroup, ...rest } = options ?? ({} as TrainFaceModelOptions);
  const group = processGroup && processGroup.worldSize > 1 ? processGroup : null;
  const world = group?.worldSize ?? 1;
  // Rank 0 leads: it alone validates, checkpoints and writes files.
  const lead = !group || group.rank === 0;
  const o = parseOptions(trainSchema, rest);
  const device = checkDevice(o.device, 'options.device');
  if (o.from === 'pretrained' && !givenEmbedder) throw new ArgumentError('options.embedder', "a TrainableEmbedder for from: 'pretrained' (see FaceModel.pretrained().trainable())", undefined);
  const t0 = Date.now();
  const dataDirs = Array.isArray(o.data) ? o.data : [o.data];
  let identities: Identity[] = [];
  for (const d of dataDirs) identities.push(...scanIdentities(d, { minImages: o.minImages, maxPerIdentity: o.maxPerIdentity, prefix: dataDirs.length > 1 ? path.basename(path.resolve(d)) : undefined }));
  if (identities.length < 3) invalid('options.data', 'folders with at least 3 identities of 2+ images', dataDirs);
  const { train, validation } = splitByIdentity(identities, { validationFraction: o.validationFraction, seed: o.seed });
  identities = [];
  const batchP = Math.min(o.batchP, Math.floor(train.length / world));
  if (batchP < 2) invalid('options.data', `at least ${2 * world} training identities for ${world} ranks`, train.length);
  const sampler = group ? new DistributedSampler(train, batchP, o.batchK, o.seed, group.rank, world) : new PKSampler(train, batchP, o.batchK, o.seed);
  const steps = o.stepsPerEpoch ?? sampler.stepsPerEpoch();
  const valPairs = validation.length >= 2 ? makeValidationPairs(validation, o.validationPairs, o.seed) : [];
  let selectPairs: { a: string; b: string; same: boolean }[] = [];
  if (o.selectPairs) {
    if (!fs.existsSync(o.selectPairs)) invalid('options.selectPairs', 'an existing LFW-format pair list', o.selectPairs);
    const all = readLfwPairs(o.selectPairs).map((p) => ({ a: p.pathA, b: p.pathB, same: p.same }));
    if (o.selectMaxPairs) {
      const random = seededRandom(mixSeed(o.seed, 0x5e1ec7));
      const pick = (same: boolean) => shuffle(all.filter((p) => p.same === same), random).slice(0, o.selectMaxPairs);
      selectPairs = [...pick(true), ...pick(false)];
    } else selectPairs = all;
    const trainNames = new Set(train.map((i) => i.name.split('/').pop()!));
    const shared = [...new Set(selectPairs.flatMap((p) => [path.basename(path.dirname(p.a)), path.basename(path.dirname(p.b))]))].filter((n) => trainNames.has(n));
    if (shared.length) invalid('options.selectPairs', 'a pair list of identities not in the training data', `${shared.length} shared (e.g. ${shared.slice(0, 3).join(', ')})`);
  }
  const selectRegion = o.selectRegion ?? LFW_FACE_REGION;

  if (o.threads) setNumThreads(o.threads);
  else useAllCoresForEager(); // an eager loop: all cores (replays keep their policy)
  manualSeed(o.seed);
  const embedder = givenEmbedder ?? scratchEmbedder(new EmbeddingNet({ architecture: o.architecture, embeddingDim: o.embeddingDim, inputSize: o.inputSize, stem: o.stem }));
  embedder.module.to(device);
  const params = embedder.trainableParameters();
  const opt: Optimizer = new Adam(params, { lr: o.lr, weightDecay: o.weightDecay });
  const ckpt = checkpointPaths(o.out);
  let startEpoch = 0;
  let globalStep = 0;
  let history: EpochRecord[] = [];
  let stepLoss: number[] = [];
  let resumedFromEpoch: number | null = null;
  let selection: SelectionRecord[] = [];
  let bestState: Map<string, Tensor> | null = null;
  let bestCorrect: boolean[] | null = null;
  let anchor: Tensor[] | null = null;
  if (o.l2sp > 0) anchor = noGrad(() => params.map((p) => p.clone()));
  if (o.resume && fs.existsSync(ckpt.model) && fs.existsSync(ckpt.optimizer)) {
    const loaded = await loadStateDict(ckpt.model);
    const meta = loaded.metadata.checkpoint as CheckpointMeta;
    if (!meta) throw new ArgumentError('resume', `a checkpoint written by trainFaceModel at ${ckpt.model}`, 'a file without checkpoint metadata');
    if (meta.seed !== o.seed) throw new ArgumentError('options.seed', `the checkpoint's seed ${meta.seed} to resume exactly`, o.seed);
    embedder.module.loadStateDict(loaded.stateDict);
    for (const t of loaded.stateDict.values()) t.dispose();
    const extra = (await loadOptimizer(ckpt.optimizer, opt)) as { epoch: number };
    if (extra?.epoch !== meta.epoch) throw new ArgumentError('resume', `optimizer and model checkpoints of the same epoch`, `model epoch ${meta.epoch}, optimizer epoch ${extra?.epoch}`);
    startEpoch = meta.epoch + 1;
    globalStep = meta.globalStep;
    history = meta.history;
    stepLoss = meta.stepLoss;
    resumedFromEpoch = meta.epoch;
    if (selectPairs.length) {
      if (!meta.selection?.length || !fs.existsSync(ckpt.best)) throw new ArgumentError('resume', `a checkpoint with selection history and ${ckpt.best} (selectPairs was not used when it was written)`, ckpt.model);
      selection = meta.selection;
      bestState = (await loadStateDict(ckpt.best)).stateDict;
      bestCorrect = [...(meta.selectionBestCorrect ?? '')].map((ch) => ch === '1');
    }
    // L2-SP's anchor is the starting weights: the run's start, which a resumed run only has if it starts from the same weights.
    if (anchor) throw new ArgumentError('resume', 'a run without l2sp (the anchor weights are not checkpointed)', `l2sp ${o.l2sp}`);
  }
  // Wrapped after resume: the wrap broadcasts rank 0's weights to every rank.
  const ddp = group ? new DistributedDataParallel(embedder.module, { group }) : null;
  const totalSteps = o.epochs * steps;
  const warmupSteps = Math.round(o.warmupEpochs * steps);
  const emit = function* (ev: TrainEvent) {
    onProgress?.(ev);
    yield ev;
  };
  const initial = lead && o.validateInitial && valPairs.length && resumedFromEpoch === null ? await validatePairs(embedder, valPairs, { device, region: o.region }) : null;
  const bestAfter = () => selection.reduce((b, s) => (s.best ? s.afterEpochs : b), 0);
  // Scores the current weights on the selection pairs; keeps a copy when strictly better than the best so far.
  const selectCandidate = async (afterEpochs: number): Promise<SelectionRecord> => {
    const ts = Date.now();
    const { metrics: v, scored } = await scoreAndValidate(embedder, selectPairs, { device, region: selectRegion });
    const correct = kFoldCorrect(scored);
    const vs = bestCorrect ? selectionBeats(correct, bestCorrect, o.selectZ) : null;
    const best = !vs || vs.better;
    const rec: SelectionRecord = { afterEpochs, accuracy: v.accuracy, bestAccuracy: v.bestAccuracy, threshold: v.threshold, auc: v.auc, eer: v.eer, tarAtFar1e3: v.tarAtFar1e3, nonFinitePairs: v.nonFinitePairs, versusBest: vs ? { candidateOnly: vs.candidateOnly, bestOnly: vs.bestOnly } : null, seconds: (Date.now() - ts) / 1000, best };
    selection.push(rec);
    if (best) {
      disposeState(bestState);
      bestState = snapshotState(embedder.module);
      bestCorrect = correct;
    }
    return rec;
  };
  let savedBestAfter = resumedFromEpoch === null ? -1 : bestAfter();
  if (lead && selectPairs.length && resumedFromEpoch === null) {
    const rec = await selectCandidate(0);
    yield* emit({ type: 'selection', candidate: rec, bestAfterEpochs: bestAfter() });
  }
  let maxBlockMs = 0;
  let trainedImages = 0;
  let trainedMs = 0;
  for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
    if (signal?.aborted) break;
    const te = Date.now();
    embedder.module.train();
    let lossSum = 0;
    let tripletSum = 0;
    let epochImages = 0;
    let epochComputeMs = 0;
    const specs = sampler.epoch(epoch, steps);
    let step = 0;
    for await (const { spec, images, waitedMs } of prefetchBatches(specs, { size: embedder.inputSize, augment: o.augment, prefetch: o.prefetch, region: o.region })) {
      const ts = Date.now();
      const lr = learningRateAt(globalStep, totalSteps, o.lr, warmupSteps, o.minLrFactor);
      for (const g of opt.paramGroups) g.lr = lr;
      const step1 = () =>
        tidy(() => {
          const x = imagesToBatch(images).to({ device });
          const emb = ddp ? ddp.forwardWith(() => embedder.embed(x)) : embedder.embed(x);
          const m = mineTriplets(emb, spec.labels, { strategy: o.mining, margin: o.margin, normalize: true });
          let loss = m.loss;
          if (anchor) loss = params.reduce((acc, p, i) => acc.add(p.sub(anchor![i]).square().sum().mul(o.l2sp / 2)), loss);
          opt.zeroGrad();
          loss.backward(); // with ddp: the gradients are averaged across ranks here
          opt.step();
          return { loss: m.loss.item(), triplets: m.triplets, candidates: m.candidates };
        });
      let r: { loss: number; triplets: number; candidates: number };
      if (group) {
        try {
          r = step1();
          // The reported loss and counts are the whole global batch's.
          const stats = tensor([r.loss, r.triplets, r.candidates], { dtype: 'float64' });
          await group.allReduce(stats, { op: 'sum' });
          const [l, t, c] = Array.from(stats.data() as Float64Array);
          stats.dispose();
          r = { loss: l / world, triplets: t, candidates: c };
        } catch (e) {
          // A bad argument is not a distributed failure; anything else is explained by who is gone.
          if (e instanceof ArgumentError || (e instanceof DistributedError && e.ranks.length)) throw e;
          throw await group.diagnose(`training step (epoch ${epoch}, step ${step})`, e);
        }
      } else r = step1();
      const stepMs = Date.now() - ts;
      maxBlockMs = Math.max(maxBlockMs, stepMs);
      if (!Number.isFinite(r.loss)) throw new Error(`training diverged: loss ${r.loss} at epoch ${epoch} step ${step}`);
      lossSum += r.loss;
      tripletSum += r.triplets;
      stepLoss.push(r.loss);
      epochImages += images.length;
      epochComputeMs += stepMs + waitedMs;
      globalStep++;
      const ev: TrainEvent = { type: 'step', epoch, step, stepsPerEpoch: steps, globalStep, loss: r.loss, triplets: r.triplets, candidates: r.candidates, lr, imagesPerSecond: images.length / ((stepMs + waitedMs) / 1000 || 1e-3), stepMs, waitedMs };
      yield* emit(ev);
      step++;
      await yieldToLoop();
      if (signal?.aborted) break;
    }
    if (signal?.aborted && step < steps) break;
    trainedImages += epochImages;
    trainedMs += epochComputeMs;
    const validationMetrics = lead && valPairs.length ? await validatePairs(embedder, valPairs, { device, region: o.region }) : null;
    const selectionRecord = lead && selectPairs.length ? await selectCandidate(epoch + 1) : null;
    const record: EpochRecord = {
      epoch,
      trainLoss: lossSum / Math.max(1, step),
      tripletsPerStep: tripletSum / Math.max(1, step),
      imagesPerSecond: epochImages / (epochComputeMs / 1000 || 1e-3),
      seconds: (Date.now() - te) / 1000,
      lr: opt.paramGroups[0].lr,
      validation: validationMetrics,
      selection: selectionRecord,
    };
    history.push(record);
    let checkpointFile: string | null = null;
    if (lead && o.checkpoint) {
      // Optimizer first, model second: the model checkpoint names the epoch, and
      // resume refuses a pair whose epochs differ (a crash between the writes).
      await saveOptimizer(ckpt.optimizer, opt, { epoch });
      // The best candidate's weights before the checkpoint that refers to them.
      if (bestState && savedBestAfter !== bestAfter()) {
        await saveStateDict(ckpt.best, bestState, { ...embedder.metadata(), selectedAfterEpochs: bestAfter() });
        savedBestAfter = bestAfter();
      }
      const meta: CheckpointMeta = { epoch, globalStep, seed: o.seed, options: { ...o }, history, stepLoss, selection: selectPairs.length ? selection : undefined, selectionBestCorrect: bestCorrect?.map((c) => (c ? '1' : '0')).join('') };
      await saveStateDict(ckpt.model, embedder.module.stateDict(), { ...embedder.metadata(), checkpoint: meta });
      checkpointFile = ckpt.model;
    }
    if (selectionRecord) yield* emit({ type: 'selection', candidate: selectionRecord, bestAfterEpochs: bestAfter() });
    // The other ranks wait here while rank 0 validates and checkpoints.
    if (group) await group.barrier();
    yield* emit({ type: 'epoch', epoch, epochs: o.epochs, trainLoss: record.trainLoss, validation: validationMetrics, seconds: record.seconds, imagesPerSecond: record.imagesPerSecond, checkpoint: checkpointFile });
  }
  ddp?.release();
  opt.dispose();
  anchor?.forEach((t) => t.dispose());
  const final = history.length ? history[history.length - 1].validation : null;
  let selectionResult: SelectionResult | null = null;
  if (lead && selectPairs.length && selection.length) {
    const selected = selection.filter((s) => s.best).pop()!;
    selectionResult = { pairsFile: o.selectPairs!, pairs: { same: selectPairs.filter((p) => p.same).length, different: selectPairs.filter((p) => !p.same).length }, criterion: `10-fold accuracy; a candidate replaces the best when b - c > ${o.selectZ} * sqrt(b + c) (b, c: pairs only the candidate, only the best decides correctly)`, history: selection, selectedAfterEpochs: selected.afterEpochs, selected };
    // The output holds the selected candidate's weights (copied back always: after an abort the
    // current weights may be part-way through an epoch that was never scored).
    embedder.module.loadStateDict(bestState!);
  }
  disposeState(bestState);
  const sel = selectionResult?.selected;
  const meta = {
    ...embedder.metadata(),
    threshold: sel ? sel.threshold : final?.threshold ?? null,
    thresholdSource: sel ? `selection pairs best-accuracy (squared L2 distance, ${path.basename(o.selectPairs!)})` : final ? 'validation best-accuracy (squared L2 distance)' : null,
    training: {
      data: dataDirs, mining: o.mining, margin: o.margin, epochs: history.length, batchP: o.batchP, batchK: o.batchK, lr: o.lr, l2sp: o.l2sp, inputSize: embedder.inputSize, seed: o.seed, from: o.from,
      validation: final ? { accuracy: final.accuracy, auc: final.auc, tarAtFar1e3: final.tarAtFar1e3 } : null,
      selection: selectionResult ? { pairsFile: selectionResult.pairsFile, pairs: selectionResult.pairs, criterion: selectionResult.criterion, selectedAfterEpochs: selectionResult.selectedAfterEpochs, history: selectionResult.history.map(({ afterEpochs, accuracy, bestAccuracy, auc, eer, tarAtFar1e3, nonFinitePairs, versusBest, best }) => ({ afterEpochs, accuracy, bestAccuracy, auc, eer, tarAtFar1e3, nonFinitePairs, versusBest, best })) } : null,
    },
  };
  if (lead) await saveStateDict(o.out, embedder.module.stateDict(), meta);
  const base = o.out.replace(/\.safetensors$/, '');
  const result: TrainResult = {
    modelFile: o.out,
    metricsFile: o.report ? `${base}.metrics.json` : null,
    plotFile: o.report ? `${base}.plot.png` : null,
    epochs: history,
    stepLoss,
    identities: { train: train.length, validation: validation.length },
    images: { train: sampler.images, validation: validation.reduce((n, i) => n + i.files.length, 0) },
    seconds: (Date.now() - t0) / 1000,
    imagesPerSecond: trainedImages / (trainedMs / 1000 || 1e-3),
    maxBlockMs,
    resumedFromEpoch,
    initial,
    final,
    selection: selectionResult,
  };
  if (lead && o.report) {
    await writeFileAtomic(result.metricsFile!, JSON.stringify({ ...result, options: o }, null, 1));
    await savePng(result.plotFile!, renderTrainingPlot(stepLoss, history.map((h) => h.validation?.roc ?? null)));
  }
  yield* emit({ type: 'done', result });
  return result;
}

/** Runs trainFaceModelIter to the end, reporting through options.onProgress; resolves to the result. */
export async function trainFaceModel(options: TrainFaceModelOptions): Promise<TrainResult> {
  const it = trainFaceModelIter(options);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
