// Checkpoints of a training run, written atomically after each epoch beside the
// output model: the model with the run's state (epoch, step, seed, history) in
// its metadata, the optimizer with the learning-rate schedule, and with model
// selection the best candidate's weights. `resume: true` continues from them
// exactly (same seed, same schedule, same selection).
import * as fs from 'fs';
import { ArgumentError } from '../../core/errors';
import { loadStateDict, saveStateDict } from '../../io/state-dict';
import type { Module } from '../../nn';
import type { Optimizer } from '../../optim';
import { loadOptimizer, saveOptimizer } from '../../optim/serialization';
import { outputBase, type EpochRecord, type SelectionRecord } from './options';
import type { ModelSelection } from './selection';

/** Paths of the checkpoint files of a model file. */
export function checkpointPaths(out: string): { model: string; optimizer: string; best: string } {
  const base = outputBase(out);
  return { model: `${base}.ckpt.safetensors`, optimizer: `${base}.ckpt-optim.safetensors`, best: `${base}.ckpt-best.safetensors` };
}

/** The run's state in the model checkpoint's metadata. */
export interface CheckpointMeta {
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

/** The learning-rate schedule of a run (an LRScheduler or a SequentialLR). */
export interface Schedule {
  step(): void;
  stateDict(): unknown;
  loadStateDict(state: never): void;
}

/** What the optimizer checkpoint keeps beside the optimizer's own state. */
interface OptimizerExtra {
  epoch: number;
  scheduler?: unknown;
}

/** Where a resumed run continues. */
export interface Resumed {
  epoch: number;
  globalStep: number;
  history: EpochRecord[];
  stepLoss: number[];
}

/**
 * Restores a run from the checkpoints at `out` into module, optimizer, scheduler
 * and selection; null when there are none. Refuses checkpoints of another seed
 * or of two different epochs (a crash between the optimizer's and the model's write).
 */
export async function resumeCheckpoint(out: string, seed: number, module: Module, optimizer: Optimizer, scheduler: Schedule, selection: ModelSelection): Promise<Resumed | null> {
  const ckpt = checkpointPaths(out);
  if (!fs.existsSync(ckpt.model) || !fs.existsSync(ckpt.optimizer)) return null;
  const loaded = await loadStateDict(ckpt.model);
  const meta = loaded.metadata.checkpoint as CheckpointMeta | undefined;
  try {
    if (!meta) throw new ArgumentError('resume', `a checkpoint written by trainFaceModel at ${ckpt.model}`, 'a file without checkpoint metadata');
    if (meta.seed !== seed) throw new ArgumentError('options.seed', `the checkpoint's seed ${meta.seed} to resume exactly`, seed);
    module.loadStateDict(loaded.stateDict);
  } finally {
    for (const t of loaded.stateDict.values()) t.dispose();
  }
  const startLrs = optimizer.paramGroups.map((g) => g.lr);
  const extra = (await loadOptimizer(ckpt.optimizer, optimizer)) as OptimizerExtra | undefined;
  if (extra?.epoch !== meta.epoch) throw new ArgumentError('resume', `optimizer and model checkpoints of the same epoch`, `model epoch ${meta.epoch}, optimizer epoch ${extra?.epoch}`);
  if (extra.scheduler) scheduler.loadStateDict(extra.scheduler as never);
  else {
    // A checkpoint written before the schedule was saved with it: replay the schedule from its start to the step count.
    optimizer.paramGroups.forEach((g, i) => (g.lr = startLrs[i]));
    for (let s = 0; s < meta.globalStep; s++) scheduler.step();
  }
  if (selection.enabled) {
    if (!meta.selection?.length || !fs.existsSync(ckpt.best)) throw new ArgumentError('resume', `a checkpoint with selection history and ${ckpt.best} (selectPairs was not used when it was written)`, ckpt.model);
    selection.restore(meta.selection, (await loadStateDict(ckpt.best)).stateDict, meta.selectionBestCorrect ?? '');
  }
  return { epoch: meta.epoch, globalStep: meta.globalStep, history: meta.history, stepLoss: meta.stepLoss };
}

/**
 * Writes the checkpoints of a finished epoch: optimizer first, model last (the
 * model checkpoint names the epoch, and resume refuses a pair whose epochs
 * differ), the best candidate's weights before the checkpoint that refers to
 * them. `savedBestAfter`: the candidate already on disk; returns the one now there.
 */
export async function saveCheckpoint(
  out: string,
  state: { meta: CheckpointMeta; module: Module; modelMetadata: Record<string, unknown>; optimizer: Optimizer; scheduler: Schedule; selection: ModelSelection; savedBestAfter: number },
): Promise<number> {
  const ckpt = checkpointPaths(out);
  const { meta, selection } = state;
  const extra: OptimizerExtra = { epoch: meta.epoch, scheduler: state.scheduler.stateDict() };
  await saveOptimizer(ckpt.optimizer, state.optimizer, extra);
  let savedBestAfter = state.savedBestAfter;
  if (selection.bestState && savedBestAfter !== selection.bestAfter()) {
    await saveStateDict(ckpt.best, selection.bestState, { ...state.modelMetadata, selectedAfterEpochs: selection.bestAfter() });
    savedBestAfter = selection.bestAfter();
  }
  await saveStateDict(ckpt.model, state.module.stateDict(), { ...state.modelMetadata, checkpoint: meta });
  return savedBestAfter;
}
