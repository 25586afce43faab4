// Model selection: the starting weights and each epoch's weights are scored on
// a pair list of identities not used for training (an LFW-format file such as
// pairsDevTrain.txt), and the output model is the best candidate, the starting
// weights included. A later candidate replaces the best only when it is better
// by more than chance (selectionBeats), so fine-tuning cannot return a model
// worse on that list than the one it started from.
import * as fs from 'fs';
import * as path from 'path';
import { invalid } from '../../core/errors';
import { Tensor, noGrad } from '../../core';
import type { Device } from '../../core';
import type { Module } from '../../nn';
import { mixSeed, seededRandom, shuffle } from '../../util/random';
import { kFoldCorrect, readLfwPairs } from '../metrics';
import { LFW_FACE_REGION, type Identity } from './dataset';
import type { SelectionRecord, SelectionResult, TrainOptions } from './options';
import { FilePair, ValidatedNetwork, scoreAndValidate } from './validation';

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

/**
 * The selection pairs of `options.selectPairs` (a seeded subset of selectMaxPairs
 * of each kind), refused when they share identities with the training data.
 */
export function loadSelectionPairs(o: TrainOptions, train: Identity[]): FilePair[] {
  if (!o.selectPairs) return [];
  if (!fs.existsSync(o.selectPairs)) invalid('options.selectPairs', 'an existing LFW-format pair list', o.selectPairs);
  const all = readLfwPairs(o.selectPairs).map((p) => ({ a: p.pathA, b: p.pathB, same: p.same }));
  let pairs = all;
  if (o.selectMaxPairs) {
    const random = seededRandom(mixSeed(o.seed, 0x5e1ec7));
    const pick = (same: boolean) => shuffle(all.filter((p) => p.same === same), random).slice(0, o.selectMaxPairs);
    pairs = [...pick(true), ...pick(false)];
  }
  const trainNames = new Set(train.map((i) => i.name.split('/').pop()!));
  const shared = [...new Set(pairs.flatMap((p) => [path.basename(path.dirname(p.a)), path.basename(path.dirname(p.b))]))].filter((n) => trainNames.has(n));
  if (shared.length) invalid('options.selectPairs', 'a pair list of identities not in the training data', `${shared.length} shared (e.g. ${shared.slice(0, 3).join(', ')})`);
  return pairs;
}

/** A copy of a module's parameters and buffers (the caller disposes it). */
export function snapshotState(module: Module): Map<string, Tensor> {
  return noGrad(() => new Map([...module.stateDict()].map(([k, t]) => [k, t.clone()] as [string, Tensor])));
}

/**
 * The candidates scored so far and a copy of the best one's weights. Scores run
 * on the lead rank only; `dispose()` releases the copy.
 */
export class ModelSelection {
  readonly history: SelectionRecord[] = [];
  /** The best candidate's weights (null before the first candidate). */
  bestState: Map<string, Tensor> | null = null;
  /** The best candidate's 10-fold decisions on the pairs (the rule compares against them). */
  bestCorrect: boolean[] | null = null;

  constructor(
    readonly pairs: FilePair[],
    private readonly o: TrainOptions,
    private readonly network: ValidatedNetwork,
    private readonly device: Device,
  ) {}

  get enabled(): boolean {
    return this.pairs.length > 0;
  }

  /** Epochs after which the best candidate's weights were taken (0: the starting weights). */
  bestAfter(): number {
    return this.history.reduce((b, s) => (s.best ? s.afterEpochs : b), 0);
  }

  /** Continues a resumed run's selection (its history, best weights and decisions). */
  restore(history: SelectionRecord[], bestState: Map<string, Tensor>, bestCorrect: string): void {
    this.history.push(...history);
    this.replaceBest(bestState, [...bestCorrect].map((ch) => ch === '1'));
  }

  /** Scores the network's current weights; keeps a copy when they beat the best by the rule. */
  async score(afterEpochs: number): Promise<SelectionRecord> {
    const ts = Date.now();
    const { metrics: v, scored } = await scoreAndValidate(this.network, this.pairs, { device: this.device, region: this.o.selectRegion ?? LFW_FACE_REGION });
    const correct = kFoldCorrect(scored);
    const vs = this.bestCorrect ? selectionBeats(correct, this.bestCorrect, this.o.selectZ) : null;
    const best = !vs || vs.better;
    const rec: SelectionRecord = { afterEpochs, accuracy: v.accuracy, bestAccuracy: v.bestAccuracy, threshold: v.threshold, auc: v.auc, eer: v.eer, tarAtFar1e3: v.tarAtFar1e3, nonFinitePairs: v.nonFinitePairs, versusBest: vs ? { candidateOnly: vs.candidateOnly, bestOnly: vs.bestOnly } : null, seconds: (Date.now() - ts) / 1000, best };
    this.history.push(rec);
    if (best) this.replaceBest(snapshotState(this.network.module), correct);
    return rec;
  }

  /** The selection's summary (null when nothing was scored). */
  result(): SelectionResult | null {
    if (!this.enabled || !this.history.length) return null;
    const selected = this.history.filter((s) => s.best).pop()!;
    return {
      pairsFile: this.o.selectPairs!,
      pairs: { same: this.pairs.filter((p) => p.same).length, different: this.pairs.filter((p) => !p.same).length },
      criterion: `10-fold accuracy; a candidate replaces the best when b - c > ${this.o.selectZ} * sqrt(b + c) (b, c: pairs only the candidate, only the best decides correctly)`,
      history: this.history,
      selectedAfterEpochs: selected.afterEpochs,
      selected,
    };
  }

  dispose(): void {
    this.replaceBest(null, null);
  }

  private replaceBest(state: Map<string, Tensor> | null, correct: boolean[] | null): void {
    this.bestState?.forEach((t) => t.dispose());
    this.bestState = state;
    this.bestCorrect = correct;
  }
}
