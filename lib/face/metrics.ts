// Verification metrics on scored pairs: ROC curve, AUC, equal error rate,
// thresholds at a target false-accept rate (TAR@FAR), the best-accuracy
// threshold, LFW's 10-fold accuracy, and a calibrate() that gathers them; plus a
// parser for LFW pair lists (pairsDevTrain.txt / pairsDevTest.txt / pairs.txt).
//
// Scores are distances by default (a pair is accepted as "same" when its
// distance is <= the threshold); pass `higherIsSame: true` for similarities or
// probabilities (accepted when score >= threshold). Thresholds are always given
// in the caller's units.
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { FileFormatError, invalid, parseOptions } from '../core/errors';

export interface ScoredPair {
  /** Distance (default) or similarity (`higherIsSame`). */
  score: number;
  same: boolean;
}

export interface RocPoint {
  /** False accept rate: different pairs accepted / different pairs. */
  far: number;
  /** True accept rate: same pairs accepted / same pairs. */
  tar: number;
  /** Accept when score <= threshold (distances) or >= threshold (similarities). */
  threshold: number;
}

const scoreOptions = z.object({ higherIsSame: z.boolean().default(false) }).strict();
export type ScoreOptions = z.input<typeof scoreOptions>;

function checkPairs(pairs: unknown, name = 'pairs'): ScoredPair[] {
  if (!Array.isArray(pairs)) invalid(name, 'an array of { score, same }', pairs);
  pairs.forEach((p, i) => {
    if (!p || typeof p !== 'object') invalid(`${name}[${i}]`, 'an object { score, same }', p);
    if (typeof p.score !== 'number' || !Number.isFinite(p.score)) invalid(`${name}[${i}].score`, 'a finite number', p.score);
    if (typeof p.same !== 'boolean') invalid(`${name}[${i}].same`, 'a boolean', p.same);
  });
  return pairs as ScoredPair[];
}

function counts(pairs: ScoredPair[]): { positives: number; negatives: number } {
  let positives = 0;
  for (const p of pairs) if (p.same) positives++;
  return { positives, negatives: pairs.length - positives };
}

/** Internally every score becomes s = "higher is more alike". */
const signOf = (higherIsSame: boolean) => (higherIsSame ? 1 : -1);

/**
 * The ROC curve: one point per distinct score, from accepting nothing
 * (far = tar = 0) to accepting everything (far = tar = 1). Points are ordered by
 * increasing far; tied scores form a single step.
 */
export function rocCurve(pairs: ScoredPair[], options: ScoreOptions = {}): RocPoint[] {
  const { higherIsSame } = parseOptions(scoreOptions, options);
  checkPairs(pairs);
  const { positives, negatives } = counts(pairs);
  if (positives === 0 || negatives === 0) invalid('pairs', 'at least one same and one different pair', `${positives} same and ${negatives} different`);
  const sg = signOf(higherIsSame);
  const sorted = pairs.map((p) => ({ s: sg * p.score, same: p.same })).sort((a, b) => b.s - a.s);
  const out: RocPoint[] = [{ far: 0, tar: 0, threshold: sg * Infinity }];
  for (const { s, tp, fp } of sweepThresholds(sorted)) out.push({ far: fp / negatives, tar: tp / positives, threshold: sg * s });
  return out;
}

/** Area under the ROC curve (trapezoids; equals the probability that a same pair scores better than a different one, ties counting 1/2). */
export function auc(roc: RocPoint[]): number {
  let a = 0;
  for (let i = 1; i < roc.length; i++) a += (roc[i].far - roc[i - 1].far) * (roc[i].tar + roc[i - 1].tar) / 2;
  return a;
}

/**
 * Equal error rate: where FAR = FRR (= 1 - TAR), linearly interpolated on the
 * ROC segment that crosses it; the threshold is interpolated the same way.
 */
export function equalErrorRate(roc: RocPoint[]): { eer: number; threshold: number } {
  for (let i = 1; i < roc.length; i++) {
    const a = roc[i - 1];
    const b = roc[i];
    const ga = a.far - (1 - a.tar); // FAR - FRR, increasing along the curve
    const gb = b.far - (1 - b.tar);
    if (ga <= 0 && gb >= 0) {
      const t = gb === ga ? 0 : -ga / (gb - ga);
      const eer = a.far + t * (b.far - a.far);
      const threshold = !Number.isFinite(a.threshold) ? b.threshold : a.threshold + t * (b.threshold - a.threshold);
      return { eer, threshold };
    }
  }
  return { eer: NaN, threshold: NaN };
}

/**
 * The threshold with the highest TAR whose FAR is at most `far`, and that TAR.
 * With n different pairs, FAR can only be resolved to 1/n (1e-3 needs >= 1000).
 */
export function thresholdAtFar(roc: RocPoint[], far: number): { far: number; tar: number; threshold: number; achievedFar: number } {
  if (typeof far !== 'number' || !(far >= 0 && far <= 1)) invalid('far', 'a number in [0, 1]', far);
  let best = roc[0];
  for (const p of roc) if (p.far <= far + 1e-15 && p.tar >= best.tar) best = p;
  return { far, tar: best.tar, threshold: best.threshold, achievedFar: best.far };
}

/** Accuracy of a threshold: (same pairs accepted + different pairs rejected) / all. */
export function accuracyAt(pairs: ScoredPair[], threshold: number, options: ScoreOptions = {}): number {
  const { higherIsSame } = parseOptions(scoreOptions, options);
  let correct = 0;
  for (const p of pairs) {
    const accept = higherIsSame ? p.score >= threshold : p.score <= threshold;
    if (accept === p.same) correct++;
  }
  return pairs.length ? correct / pairs.length : NaN;
}

/**
 * Walks the distinct scores of pairs sorted from most to least alike (s =
 * sign * score, descending), accepting everything >= s at each step: yields the
 * score, the next lower distinct score and the true / false accepts so far.
 */
function* sweepThresholds(sorted: { s: number; same: boolean }[]): Generator<{ s: number; next: number | undefined; tp: number; fp: number }> {
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < sorted.length; ) {
    const s = sorted[i].s;
    while (i < sorted.length && sorted[i].s === s) {
      if (sorted[i].same) tp++;
      else fp++;
      i++;
    }
    yield { s, next: i < sorted.length ? sorted[i].s : undefined, tp, fp };
  }
}

/**
 * The threshold of highest accuracy. Candidates are the midpoints between
 * consecutive distinct scores plus one below and one above all of them; the
 * first (smallest, for distances) best candidate wins.
 */
export function bestAccuracyThreshold(pairs: ScoredPair[], options: ScoreOptions = {}): { threshold: number; accuracy: number } {
  const { higherIsSame } = parseOptions(scoreOptions, options);
  checkPairs(pairs);
  if (pairs.length === 0) invalid('pairs', 'a non-empty array', pairs);
  const sg = signOf(higherIsSame);
  // Work on s = sg*score (higher = more alike), accept when s >= c.
  const sorted = pairs.map((p) => ({ s: sg * p.score, same: p.same })).sort((a, b) => b.s - a.s);
  const { negatives } = counts(pairs);
  // Accepting nothing: correct = negatives.
  let bestCorrect = negatives;
  let bestC = sorted[0].s + 1;
  for (const { s, next, tp, fp } of sweepThresholds(sorted)) {
    const correct = tp + (negatives - fp);
    const c = next !== undefined ? (s + next) / 2 : s - 1;
    // '>' keeps the first best when walking from strict to lenient thresholds;
    // for distances that is the smallest threshold.
    if (correct > bestCorrect) {
      bestCorrect = correct;
      bestC = c;
    }
  }
  return { threshold: sg * bestC, accuracy: bestCorrect / pairs.length };
}

export interface FoldResult {
  fold: number;
  threshold: number;
  accuracy: number;
  size: number;
}

function foldAssignment(pairs: ScoredPair[], kIn: number | undefined, foldOf: number[] | undefined): { assign: number[]; k: number } {
  if (foldOf) {
    if (!Array.isArray(foldOf) || foldOf.length !== pairs.length) invalid('options.foldOf', `${pairs.length} fold indices`, foldOf);
    return { assign: foldOf, k: Math.max(...foldOf) + 1 };
  }
  const k = kIn ?? 10;
  if (!Number.isInteger(k) || k < 2) invalid('options.folds', 'an integer >= 2', k);
  const { positives, negatives } = counts(pairs);
  if (positives < k || negatives < k) invalid('pairs', `at least ${k} same and ${k} different pairs for ${k} folds`, `${positives} same and ${negatives} different`);
  let iSame = 0;
  let iDiff = 0;
  return { assign: pairs.map((p) => (p.same ? Math.floor((iSame++ * k) / positives) : Math.floor((iDiff++ * k) / negatives))), k };
}

/**
 * Per pair: whether kFoldAccuracy classifies it correctly (with the threshold
 * chosen on the other folds). The mean of the result over each fold is that
 * fold's accuracy; two models' arrays on the same pairs give the discordant
 * counts of a paired (McNemar) comparison.
 */
export function kFoldCorrect(pairs: ScoredPair[], options: ScoreOptions & { folds?: number; foldOf?: number[] } = {}): boolean[] {
  const { folds: kIn, foldOf, ...rest } = options;
  const { higherIsSame } = parseOptions(scoreOptions, rest);
  const { assign } = foldAssignment(pairs, kIn, foldOf);
  const threshold = new Map(kFoldAccuracy(pairs, options).folds.map((f) => [f.fold, f.threshold]));
  return pairs.map((p, i) => (higherIsSame ? p.score >= threshold.get(assign[i])! : p.score <= threshold.get(assign[i])!) === p.same);
}

/**
 * k-fold verification accuracy as LFW reports it: for each fold, the
 * best-accuracy threshold is chosen on the other folds and the accuracy is
 * measured on that fold; the result is the mean and (sample) standard deviation.
 * Folds: given per pair (`folds`, e.g. from an LFW pairs.txt with 10 sets), or
 * by default contiguous slices of the same pairs and of the different pairs in
 * their given order (fold k holds the k-th tenth of each), as LFW lays them out.
 */
export function kFoldAccuracy(pairs: ScoredPair[], options: ScoreOptions & { folds?: number; foldOf?: number[] } = {}): { mean: number; std: number; folds: FoldResult[] } {
  const { folds: kIn, foldOf, ...rest } = options;
  const so = parseOptions(scoreOptions, rest);
  checkPairs(pairs);
  const { assign, k } = foldAssignment(pairs, kIn, foldOf);
  const results: FoldResult[] = [];
  for (let f = 0; f < k; f++) {
    const train = pairs.filter((_, i) => assign[i] !== f);
    const test = pairs.filter((_, i) => assign[i] === f);
    if (test.length === 0) continue;
    const { threshold } = bestAccuracyThreshold(train, so);
    results.push({ fold: f, threshold, accuracy: accuracyAt(test, threshold, so), size: test.length });
  }
  const accs = results.map((r) => r.accuracy);
  const mean = accs.reduce((a, b) => a + b, 0) / accs.length;
  const std = accs.length > 1 ? Math.sqrt(accs.reduce((a, b) => a + (b - mean) ** 2, 0) / (accs.length - 1)) : 0;
  return { mean, std, folds: results };
}

const calibrateOptions = z
  .object({
    higherIsSame: z.boolean().default(false),
    /** False-accept rates to report TAR and thresholds at. */
    far: z.array(z.number().min(0).max(1)).default([1e-3, 1e-2, 1e-1]),
    folds: z.number().int().min(2).default(10),
    /** Which threshold calibrate() recommends: best accuracy (default), EER, or the one at the first `far`. */
    choose: z.enum(['best-accuracy', 'eer', 'far']).default('best-accuracy'),
  })
  .strict();
export type CalibrateOptions = z.input<typeof calibrateOptions>;

export interface Calibration {
  pairs: { same: number; different: number };
  higherIsSame: boolean;
  roc: RocPoint[];
  auc: number;
  eer: number;
  eerThreshold: number;
  /** TAR and threshold at each requested FAR. */
  thresholdAtFar: { far: number; tar: number; threshold: number; achievedFar: number }[];
  bestAccuracyThreshold: number;
  bestAccuracy: number;
  /** k-fold accuracy with thresholds chosen on the other folds (an unbiased estimate, unlike bestAccuracy). */
  kFold: { mean: number; std: number; folds: FoldResult[] };
  /** The recommended threshold (see options.choose) and how it was chosen. */
  threshold: number;
  chosenBy: 'best-accuracy' | 'eer' | 'far';
}

/** Every verification metric of a set of scored pairs, and a recommended threshold. */
export function calibrate(pairs: ScoredPair[], options: CalibrateOptions = {}): Calibration {
  const o = parseOptions(calibrateOptions, options);
  checkPairs(pairs);
  const so = { higherIsSame: o.higherIsSame };
  const roc = rocCurve(pairs, so);
  const { eer, threshold: eerThreshold } = equalErrorRate(roc);
  const best = bestAccuracyThreshold(pairs, so);
  const atFar = o.far.map((f) => thresholdAtFar(roc, f));
  const { positives, negatives } = counts(pairs);
  const threshold = o.choose === 'eer' ? eerThreshold : o.choose === 'far' ? atFar[0]?.threshold ?? NaN : best.threshold;
  return {
    pairs: { same: positives, different: negatives },
    higherIsSame: o.higherIsSame,
    roc,
    auc: auc(roc),
    eer,
    eerThreshold,
    thresholdAtFar: atFar,
    bestAccuracyThreshold: best.threshold,
    bestAccuracy: best.accuracy,
    kFold: kFoldAccuracy(pairs, { ...so, folds: o.folds }),
    threshold,
    chosenBy: o.choose,
  };
}

/** A copy of a ROC curve with at most `maxPoints` points (for storing in JSON), keeping both ends. */
export function thinRoc(roc: RocPoint[], maxPoints = 200): RocPoint[] {
  if (roc.length <= maxPoints) return roc;
  const out: RocPoint[] = [];
  for (let i = 0; i < maxPoints; i++) out.push(roc[Math.round((i * (roc.length - 1)) / (maxPoints - 1))]);
  return out;
}

// LFW pair lists ---------------------------------------------------------------------------

export interface LfwPair {
  nameA: string;
  indexA: number;
  nameB: string;
  indexB: number;
  same: boolean;
  /** Image paths `Name/Name_%04d.jpg`, joined to the root folder when one is given. */
  pathA: string;
  pathB: string;
  /** Fold (set) index: 0 for view-1 files, 0..9 for view 2's pairs.txt. */
  fold: number;
}

/** LFW's image path of image i of a person: Name/Name_0001.jpg. */
export function lfwImagePath(name: string, index: number, root?: string): string {
  const rel = `${name}/${name}_${String(index).padStart(4, '0')}.jpg`;
  return root ? path.join(root, rel) : rel;
}

/**
 * Parses an LFW pair list. View 1 (pairsDevTrain.txt, pairsDevTest.txt): first
 * line N, then N lines `Name i j` (same person) and N lines `Name1 i Name2 j`
 * (different people). View 2 (pairs.txt): first line `S N`, then S sets of N
 * same + N different lines. Fields are separated by tabs or spaces.
 */
export function parseLfwPairs(text: string, options: { root?: string; source?: string } = {}): LfwPair[] {
  if (typeof text !== 'string') invalid('text', 'the text of an LFW pairs file', text);
  const where = options.source ?? 'pairs file';
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new FileFormatError(`${where}: empty`);
  const head = lines[0].trim().split(/\s+/).map(Number);
  if (!head.every((v) => Number.isInteger(v) && v > 0) || head.length > 2) throw new FileFormatError(`${where}: first line must be N (or 'sets N'), got '${lines[0]}'`);
  const [sets, n] = head.length === 2 ? head : [1, head[0]];
  if (lines.length - 1 !== sets * 2 * n) throw new FileFormatError(`${where}: expected ${sets * 2 * n} pair lines after '${lines[0]}', found ${lines.length - 1}`);
  const out: LfwPair[] = [];
  for (let li = 1; li < lines.length; li++) {
    const k = li - 1;
    const fold = Math.floor(k / (2 * n));
    const sameExpected = k % (2 * n) < n;
    const f = lines[li].trim().split(/\s+/);
    const idx = (s: string) => {
      const v = Number(s);
      if (!Number.isInteger(v) || v < 1) throw new FileFormatError(`${where} line ${li + 1}: '${s}' is not an image number`);
      return v;
    };
    let p: Omit<LfwPair, 'pathA' | 'pathB'>;
    if (f.length === 3) p = { nameA: f[0], indexA: idx(f[1]), nameB: f[0], indexB: idx(f[2]), same: true, fold };
    else if (f.length === 4) p = { nameA: f[0], indexA: idx(f[1]), nameB: f[2], indexB: idx(f[3]), same: false, fold };
    else throw new FileFormatError(`${where} line ${li + 1}: expected 'Name i j' or 'Name1 i Name2 j', got '${lines[li]}'`);
    if (p.same !== sameExpected) throw new FileFormatError(`${where} line ${li + 1}: a ${p.same ? 'same' : 'different'} pair where LFW's layout has ${sameExpected ? 'same' : 'different'} pairs`);
    out.push({ ...p, pathA: lfwImagePath(p.nameA, p.indexA, options.root), pathB: lfwImagePath(p.nameB, p.indexB, options.root) });
  }
  return out;
}

/** Reads and parses an LFW pair list; image paths are resolved against the file's folder (LFW images sit beside it). */
export function readLfwPairs(file: string, options: { root?: string } = {}): LfwPair[] {
  const text = fs.readFileSync(file, 'utf8');
  return parseLfwPairs(text, { root: options.root ?? path.dirname(path.resolve(file)), source: file });
}
