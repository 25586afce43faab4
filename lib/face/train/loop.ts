// Training face embedding networks with triplet loss (FaceNet), as a library
// call and an async iterator, so that a service can run it and report progress.
//
//   for await (const ev of trainFaceModelIter(options)) ...   // step / epoch / done events
//   const result = await trainFaceModel({ ...options, onProgress })
//
// Each step: P x K images (decoded and augmented by sharp on libuv's threads,
// the next batch prefetched while this one trains) -> embeddings -> in-batch
// triplet mining -> backward -> Adam step, with a warm-up + cosine learning-rate
// schedule (optim's LinearLR then CosineAnnealingLR). After each epoch: validation on held-out identities (accuracy, ROC
// AUC, TAR@FAR 1e-3) and an atomic checkpoint (model, optimizer, epoch, seed)
// from which `resume: true` continues exactly (checkpoint.ts).
//
// Model selection (selection.ts; `selectPairs`, an LFW-format pair list of identities not used
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
import * as path from 'path';
import { ArgumentError, TorchfaceError, invalid, parseOptions } from '../../core/errors';
import { Device, Tensor, checkDevice, manualSeed, noGrad, tensor, tidy } from '../../core';
import { setNumThreads, useAllCoresForEager } from '../../core/threads';
import { DistributedDataParallel } from '../../distributed/data-parallel';
import { DistributedError, type ProcessGroup } from '../../distributed/process-group';
import { saveStateDict } from '../../io/state-dict';
import { EmbeddingNet } from '../../models/embedding-net';
import { Adam, CosineAnnealingLR, LinearLR, Optimizer, SequentialLR } from '../../optim';
import { TrainableNetwork, scratchNetwork } from '../trainable';
import { mineTriplets } from '../triplet';
import { CheckpointMeta, Schedule, checkpointPaths, resumeCheckpoint, saveCheckpoint } from './checkpoint';
import { DistributedSampler, Identity, PKSampler, imagesToBatch, prefetchBatches, scanIdentities, splitByIdentity } from './dataset';
import { EpochRecord, SelectionRecord, TrainEvent, TrainFaceModelOptions, TrainOptions, TrainResult, ValidationMetrics, trainSchema } from './options';
import { modelFileMetadata, reportPaths, writeReport } from './report';
import { ModelSelection, loadSelectionPairs } from './selection';
import { FilePair, makeValidationPairs, validatePairs, yieldToLoop } from './validation';

/** The training loss stopped being a finite number (too high a learning rate, bad data). */
export class TrainingDivergedError extends TorchfaceError {
  override readonly code: string = 'ERR_TRAINING_DIVERGED';
  constructor(
    readonly epoch: number,
    readonly step: number,
    readonly loss: number,
  ) {
    super(`training diverged: loss ${loss} at epoch ${epoch} step ${step}`);
  }
}

/** Learning rate at a global step: linear warm-up from lr/warmupSteps to lr, then cosine to lr * minFactor (the closed form of warmupCosineSchedule). */
export function learningRateAt(step: number, total: number, lr: number, warmupSteps: number, minFactor: number): number {
  if (warmupSteps > 0 && step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  const span = Math.max(1, total - warmupSteps);
  const t = Math.min(1, (step - warmupSteps) / span);
  return lr * (minFactor + ((1 - minFactor) * (1 + Math.cos(Math.PI * t))) / 2);
}

/**
 * The trainer's schedule from torch.optim's schedulers: LinearLR from lr/warmupSteps
 * to lr over warmupSteps steps, then CosineAnnealingLR down to lr * minFactor at
 * totalSteps; stepped once per training step. Equal to learningRateAt step by step.
 */
export function warmupCosineSchedule(optimizer: Optimizer, o: { warmupSteps: number; totalSteps: number; minFactor: number }): Schedule {
  const lr = optimizer.paramGroups[0].lr;
  const cosine = (): CosineAnnealingLR => new CosineAnnealingLR(optimizer, { tMax: Math.max(1, o.totalSteps - o.warmupSteps), etaMin: lr * o.minFactor });
  if (o.warmupSteps < 1) return cosine();
  // lr * (step + 1) / warmupSteps for step < warmupSteps (a single warm-up step is at the full rate).
  const warmup = new LinearLR(optimizer, { startFactor: 1 / o.warmupSteps, endFactor: 1, totalIters: Math.max(1, o.warmupSteps - 1) });
  return new SequentialLR(optimizer, [warmup, cosine()], [o.warmupSteps]);
}

/** The data of a run: identities split into train / validation, the batch sampler, the pairs. */
interface RunData {
  dataDirs: string[];
  train: Identity[];
  validation: Identity[];
  sampler: PKSampler | DistributedSampler;
  steps: number;
  validationPairs: FilePair[];
  selectionPairs: FilePair[];
}

function prepareData(o: TrainOptions, group: ProcessGroup | null): RunData {
  const world = group?.worldSize ?? 1;
  const dataDirs = Array.isArray(o.data) ? o.data : [o.data];
  const identities: Identity[] = [];
  for (const d of dataDirs) identities.push(...scanIdentities(d, { minImages: o.minImages, maxPerIdentity: o.maxPerIdentity, prefix: dataDirs.length > 1 ? path.basename(path.resolve(d)) : undefined }));
  if (identities.length < 3) invalid('options.data', 'folders with at least 3 identities of 2+ images', dataDirs);
  const { train, validation } = splitByIdentity(identities, { validationFraction: o.validationFraction, seed: o.seed });
  const batchP = Math.min(o.batchP, Math.floor(train.length / world));
  if (batchP < 2) invalid('options.data', `at least ${2 * world} training identities for ${world} ranks`, train.length);
  const sampler = group ? new DistributedSampler(train, batchP, o.batchK, o.seed, group.rank, world) : new PKSampler(train, batchP, o.batchK, o.seed);
  return {
    dataDirs,
    train,
    validation,
    sampler,
    steps: o.stepsPerEpoch ?? sampler.stepsPerEpoch(),
    validationPairs: validation.length >= 2 ? makeValidationPairs(validation, o.validationPairs, o.seed) : [],
    selectionPairs: loadSelectionPairs(o, train),
  };
}

/** One step's result, over the whole global batch. */
interface StepResult {
  loss: number;
  triplets: number;
  candidates: number;
}

/**
 * A training run: what it trains, its optimizer and schedule, where it stands
 * (epoch, step, history) and what it measured. `start()` validates the options,
 * loads the data and resumes from checkpoints; `events()` trains; `dispose()`
 * releases the optimizer state, the L2-SP anchor and the selection's weights.
 */
class TrainingRun {
  private readonly started = Date.now();
  /** Rank 0 leads: it alone validates, selects, checkpoints and writes files. */
  private readonly lead: boolean;
  private readonly world: number;
  private readonly params: Tensor[];
  private readonly optimizer: Optimizer;
  private readonly schedule: Schedule;
  private readonly selection: ModelSelection;
  /** L2-SP's anchor: the starting weights (null without l2sp). */
  private readonly anchor: Tensor[] | null;
  private ddp: DistributedDataParallel | null = null;
  private startEpoch = 0;
  private globalStep = 0;
  private history: EpochRecord[] = [];
  private stepLoss: number[] = [];
  private resumedFromEpoch: number | null = null;
  private savedBestAfter = -1;
  private maxBlockMs = 0;
  private trainedImages = 0;
  private trainedMs = 0;
  private initial: ValidationMetrics | null = null;

  private constructor(
    private readonly o: TrainOptions,
    private readonly network: TrainableNetwork,
    private readonly device: Device,
    private readonly data: RunData,
    private readonly group: ProcessGroup | null,
    private readonly signal: AbortSignal | undefined,
    private readonly onProgress: ((event: TrainEvent) => void) | undefined,
  ) {
    this.lead = !group || group.rank === 0;
    this.world = group?.worldSize ?? 1;
    network.module.to(device);
    this.params = network.trainableParameters();
    this.optimizer = new Adam(this.params, { lr: o.lr, weightDecay: o.weightDecay });
    this.schedule = warmupCosineSchedule(this.optimizer, { warmupSteps: Math.round(o.warmupEpochs * data.steps), totalSteps: o.epochs * data.steps, minFactor: o.minLrFactor });
    this.selection = new ModelSelection(data.selectionPairs, o, network, device);
    this.anchor = o.l2sp > 0 ? noGrad(() => this.params.map((p) => p.clone())) : null;
  }

  static async start(options: TrainFaceModelOptions): Promise<TrainingRun> {
    const { embedder, onProgress, signal, processGroup, ...rest } = options ?? ({} as TrainFaceModelOptions);
    const group = processGroup && processGroup.worldSize > 1 ? processGroup : null;
    const o = parseOptions(trainSchema, rest);
    const device = checkDevice(o.device, 'options.device');
    if (o.from === 'pretrained' && !embedder) throw new ArgumentError('options.embedder', "a TrainableNetwork for from: 'pretrained' (see FaceModel.pretrained().trainable())", undefined);
    const data = prepareData(o, group);
    if (o.threads) setNumThreads(o.threads);
    else useAllCoresForEager(); // an eager loop: all cores (replays keep their policy)
    manualSeed(o.seed);
    const network = embedder ?? scratchNetwork(new EmbeddingNet({ architecture: o.architecture, embeddingDim: o.embeddingDim, inputSize: o.inputSize, stem: o.stem }));
    const run = new TrainingRun(o, network, device, data, group, signal, onProgress);
    try {
      await run.resume();
      // Wrapped after resume: the wrap broadcasts rank 0's weights to every rank.
      if (group) run.ddp = new DistributedDataParallel(network.module, { group });
    } catch (e) {
      run.dispose();
      throw e;
    }
    return run;
  }

  private async resume(): Promise<void> {
    if (!this.o.resume) return;
    const r = await resumeCheckpoint(this.o.out, this.o.seed, this.network.module, this.optimizer, this.schedule, this.selection);
    if (!r) return;
    // L2-SP's anchor is the starting weights: the run's start, which a resumed run only has if it starts from the same weights.
    if (this.anchor) throw new ArgumentError('resume', 'a run without l2sp (the anchor weights are not checkpointed)', `l2sp ${this.o.l2sp}`);
    this.startEpoch = r.epoch + 1;
    this.globalStep = r.globalStep;
    this.history = r.history;
    this.stepLoss = r.stepLoss;
    this.resumedFromEpoch = r.epoch;
    this.savedBestAfter = this.selection.bestAfter();
  }

  private *emit(event: TrainEvent): Generator<TrainEvent> {
    this.onProgress?.(event);
    yield event;
  }

  async *events(): AsyncGenerator<TrainEvent, TrainResult> {
    const { o, data } = this;
    if (this.lead && o.validateInitial && data.validationPairs.length && this.resumedFromEpoch === null) this.initial = await validatePairs(this.network, data.validationPairs, { device: this.device, region: o.region });
    if (this.lead && this.selection.enabled && this.resumedFromEpoch === null) {
      const candidate = await this.selection.score(0);
      yield* this.emit({ type: 'selection', candidate, bestAfterEpochs: this.selection.bestAfter() });
    }
    for (let epoch = this.startEpoch; epoch < o.epochs && !this.signal?.aborted; epoch++) {
      const finished = yield* this.epoch(epoch);
      if (!finished) break;
    }
    const result = await this.finish();
    yield* this.emit({ type: 'done', result });
    return result;
  }

  /** One epoch: its steps, then (lead rank) validation, selection and checkpoints. False when aborted part-way. */
  private async *epoch(epoch: number): AsyncGenerator<TrainEvent, boolean> {
    const { o, data, network } = this;
    const started = Date.now();
    network.module.train();
    let lossSum = 0;
    let tripletSum = 0;
    let images = 0;
    let computeMs = 0;
    let lr = this.optimizer.paramGroups[0].lr;
    let step = 0;
    for await (const batch of prefetchBatches(data.sampler.epoch(epoch, data.steps), { size: network.inputSize, augment: o.augment, prefetch: o.prefetch, region: o.region })) {
      const ts = Date.now();
      lr = this.optimizer.paramGroups[0].lr;
      const r = await this.step(batch.images, batch.spec.labels, epoch, step);
      this.schedule.step();
      const stepMs = Date.now() - ts;
      this.maxBlockMs = Math.max(this.maxBlockMs, stepMs);
      if (!Number.isFinite(r.loss)) throw new TrainingDivergedError(epoch, step, r.loss);
      lossSum += r.loss;
      tripletSum += r.triplets;
      this.stepLoss.push(r.loss);
      images += batch.images.length;
      computeMs += stepMs + batch.waitedMs;
      this.globalStep++;
      yield* this.emit({ type: 'step', epoch, step, stepsPerEpoch: data.steps, globalStep: this.globalStep, loss: r.loss, triplets: r.triplets, candidates: r.candidates, lr, imagesPerSecond: batch.images.length / ((stepMs + batch.waitedMs) / 1000 || 1e-3), stepMs, waitedMs: batch.waitedMs });
      step++;
      await yieldToLoop();
      if (this.signal?.aborted) break;
    }
    if (this.signal?.aborted && step < data.steps) return false;
    this.trainedImages += images;
    this.trainedMs += computeMs;
    const validation = this.lead && data.validationPairs.length ? await validatePairs(network, data.validationPairs, { device: this.device, region: o.region }) : null;
    const selection: SelectionRecord | null = this.lead && this.selection.enabled ? await this.selection.score(epoch + 1) : null;
    const record: EpochRecord = {
      epoch,
      trainLoss: lossSum / Math.max(1, step),
      tripletsPerStep: tripletSum / Math.max(1, step),
      imagesPerSecond: images / (computeMs / 1000 || 1e-3),
      seconds: (Date.now() - started) / 1000,
      lr,
      validation,
      selection,
    };
    this.history.push(record);
    let checkpoint: string | null = null;
    if (this.lead && o.checkpoint) {
      const meta: CheckpointMeta = { epoch, globalStep: this.globalStep, seed: o.seed, options: { ...o }, history: this.history, stepLoss: this.stepLoss, selection: this.selection.enabled ? this.selection.history : undefined, selectionBestCorrect: this.selection.bestCorrect?.map((c) => (c ? '1' : '0')).join('') };
      this.savedBestAfter = await saveCheckpoint(o.out, { meta, module: network.module, modelMetadata: network.metadata(), optimizer: this.optimizer, scheduler: this.schedule, selection: this.selection, savedBestAfter: this.savedBestAfter });
      checkpoint = checkpointPaths(o.out).model;
    }
    if (selection) yield* this.emit({ type: 'selection', candidate: selection, bestAfterEpochs: this.selection.bestAfter() });
    // The other ranks wait here while rank 0 validates and checkpoints.
    if (this.group) await this.group.barrier();
    yield* this.emit({ type: 'epoch', epoch, epochs: o.epochs, trainLoss: record.trainLoss, validation, seconds: record.seconds, imagesPerSecond: record.imagesPerSecond, checkpoint });
    return true;
  }

  /** One optimisation step on a P x K batch: embed, mine triplets, backward (DDP averages), Adam. */
  private async step(images: Parameters<typeof imagesToBatch>[0], labels: Parameters<typeof mineTriplets>[1], epoch: number, step: number): Promise<StepResult> {
    const { o, network, ddp, anchor, params } = this;
    const compute = (): StepResult =>
      tidy(() => {
        const x = imagesToBatch(images).to({ device: this.device });
        const emb = ddp ? ddp.forwardWith(() => network.embed(x)) : network.embed(x);
        const m = mineTriplets(emb, labels, { strategy: o.mining, margin: o.margin, normalize: true });
        let loss = m.loss;
        if (anchor) loss = params.reduce((acc, p, i) => acc.add(p.sub(anchor[i]).square().sum().mul(o.l2sp / 2)), loss);
        this.optimizer.zeroGrad();
        loss.backward(); // with ddp: the gradients are averaged across ranks here
        this.optimizer.step();
        return { loss: m.loss.item(), triplets: m.triplets, candidates: m.candidates };
      });
    const group = this.group;
    if (!group) return compute();
    try {
      const r = compute();
      // The reported loss and counts are the whole global batch's.
      const stats = tensor([r.loss, r.triplets, r.candidates], { dtype: 'float64' });
      await group.allReduce(stats, { op: 'sum' });
      const [l, t, c] = Array.from(stats.data() as Float64Array);
      stats.dispose();
      return { loss: l / this.world, triplets: t, candidates: c };
    } catch (e) {
      // A bad argument is not a distributed failure; anything else is explained by who is gone.
      if (e instanceof ArgumentError || (e instanceof DistributedError && e.ranks.length)) throw e;
      throw await group.diagnose(`training step (epoch ${epoch}, step ${step})`, e);
    }
  }

  /** The output model (the selected candidate's weights with selection), the report and the result. */
  private async finish(): Promise<TrainResult> {
    const { o, data, network } = this;
    const final = this.history.length ? this.history[this.history.length - 1].validation : null;
    const selection = this.lead ? this.selection.result() : null;
    // The output holds the selected candidate's weights (copied back always: after an abort the
    // current weights may be part-way through an epoch that was never scored).
    if (selection) network.module.loadStateDict(this.selection.bestState!);
    if (this.lead) await saveStateDict(o.out, network.module.stateDict(), modelFileMetadata(network.metadata(), o, { dataDirs: data.dataDirs, epochs: this.history.length, inputSize: network.inputSize, final, selection }));
    const result: TrainResult = {
      modelFile: o.out,
      ...reportPaths(o.out, o.report),
      epochs: this.history,
      stepLoss: this.stepLoss,
      identities: { train: data.train.length, validation: data.validation.length },
      images: { train: data.sampler.images, validation: data.validation.reduce((n, i) => n + i.files.length, 0) },
      seconds: (Date.now() - this.started) / 1000,
      imagesPerSecond: this.trainedImages / (this.trainedMs / 1000 || 1e-3),
      maxBlockMs: this.maxBlockMs,
      resumedFromEpoch: this.resumedFromEpoch,
      initial: this.initial,
      final,
      selection,
    };
    if (this.lead) await writeReport(result, o, this.history);
    return result;
  }

  dispose(): void {
    this.ddp?.release();
    this.ddp = null;
    this.optimizer.dispose();
    this.anchor?.forEach((t) => t.dispose());
    this.selection.dispose();
  }
}

/** The training loop as an async iterator of events; the generator's return value is the result. */
export async function* trainFaceModelIter(options: TrainFaceModelOptions): AsyncGenerator<TrainEvent, TrainResult> {
  const run = await TrainingRun.start(options);
  try {
    return yield* run.events();
  } finally {
    run.dispose();
  }
}

/** Runs trainFaceModelIter to the end, reporting through options.onProgress; resolves to the result. */
export async function trainFaceModel(options: TrainFaceModelOptions): Promise<TrainResult> {
  const it = trainFaceModelIter(options);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
