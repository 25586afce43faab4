// Verification metrics against small cases computed by hand (see the comments),
// and the LFW pair-list parser on synthetic text and, when the data is present,
// on the real view-1 files.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { FileFormatError, accuracyAt, auc, bestAccuracyThreshold, calibrate, equalErrorRate, kFoldAccuracy, parseLfwPairs, readLfwPairs, rocCurve, thresholdAtFar } from '../../lib';
import { needs } from '../helpers/peers';
import type { ScoredPair } from '../../lib';
import { facesDir } from '../../lib/util/paths';

// Distances; sorted: 0.1 S, 0.3 D, 0.35 S, 0.4 S, 0.7 D, 0.8 S, 0.9 D, 1.2 D (4 same, 4 different).
const S = (score: number): ScoredPair => ({ score, same: true });
const D = (score: number): ScoredPair => ({ score, same: false });
const PAIRS = [S(0.1), S(0.4), S(0.35), S(0.8), D(0.3), D(0.9), D(0.7), D(1.2)];

describe('metrics: ROC, AUC, EER, TAR@FAR, best accuracy (hand-computed)', () => {
  it('ROC points step at each distinct score', () => {
    const roc = rocCurve(PAIRS);
    assert.deepEqual(
      roc.map((p) => [p.far, p.tar, p.threshold]),
      [
        [0, 0, -Infinity],
        [0, 0.25, 0.1],
        [0.25, 0.25, 0.3],
        [0.25, 0.5, 0.35],
        [0.25, 0.75, 0.4],
        [0.5, 0.75, 0.7],
        [0.5, 1, 0.8],
        [0.75, 1, 0.9],
        [1, 1, 1.2],
      ],
    );
  });

  it('AUC = 12/16 (same-different orderings won), by trapezoids', () => {
    assert.equal(auc(rocCurve(PAIRS)), 0.75);
    // perfect separation and total confusion
    assert.equal(auc(rocCurve([S(0), S(1), D(2), D(3)])), 1);
    assert.equal(auc(rocCurve([S(2), S(3), D(0), D(1)])), 0);
    // ties count one half
    assert.equal(auc(rocCurve([S(0.5), D(0.5)])), 0.5);
  });

  it('EER = 0.25 at threshold 0.4 (FAR 1/4 = FRR 1/4); interpolated when the crossing is inside a segment', () => {
    assert.deepEqual(equalErrorRate(rocCurve(PAIRS)), { eer: 0.25, threshold: 0.4 });
    // S 1, D 2, S 3, D 4: ROC (0,0) (0,.5)@1 (.5,.5)@2 (.5,1)@3 (1,1)@4; FAR-FRR goes -.5 -> 0 at (.5,.5): EER 0.5 at 2
    assert.deepEqual(equalErrorRate(rocCurve([S(1), D(2), S(3), D(4)])), { eer: 0.5, threshold: 2 });
    // S 1, S 2, D 1.5, D 3, D 4, S 5 -> (0,0) (0,1/3)@1 (1/3,1/3)@1.5 (1/3,2/3)@2 (2/3,2/3)@3 (1,2/3)@4 (1,1)@5
    // g = FAR - FRR: at @2: 1/3-1/3 = 0 -> EER 1/3 at threshold 2
    const e = equalErrorRate(rocCurve([S(1), S(2), D(1.5), D(3), D(4), S(5)]));
    assert.ok(Math.abs(e.eer - 1 / 3) < 1e-12 && Math.abs(e.threshold - 2) < 1e-12, JSON.stringify(e));
    // crossing inside a diagonal segment (tie of a same and a different pair at 2):
    // (0,0) (0,.5)@1 (.5,1)@2 (1,1)@3; g: -1, -.5, .5 -> t = .5 on (0,.5)->(.5,1): EER .25, threshold 1.5
    assert.deepEqual(equalErrorRate(rocCurve([S(1), S(2), D(2), D(3)])), { eer: 0.25, threshold: 1.5 });
  });

  it('threshold at a target FAR takes the highest TAR allowed', () => {
    const roc = rocCurve(PAIRS);
    assert.deepEqual(thresholdAtFar(roc, 0), { far: 0, tar: 0.25, threshold: 0.1, achievedFar: 0 });
    assert.deepEqual(thresholdAtFar(roc, 0.25), { far: 0.25, tar: 0.75, threshold: 0.4, achievedFar: 0.25 });
    assert.deepEqual(thresholdAtFar(roc, 0.3), { far: 0.3, tar: 0.75, threshold: 0.4, achievedFar: 0.25 });
    assert.deepEqual(thresholdAtFar(roc, 1e-3), { far: 1e-3, tar: 0.25, threshold: 0.1, achievedFar: 0 });
    assert.throws(() => thresholdAtFar(roc, 2), /far/);
  });

  it('best-accuracy threshold: 6/8 first reached between 0.4 and 0.7 -> 0.55', () => {
    assert.deepEqual(bestAccuracyThreshold(PAIRS), { threshold: 0.55, accuracy: 0.75 });
    assert.equal(accuracyAt(PAIRS, 0.55), 0.75);
    assert.equal(accuracyAt(PAIRS, 0), 0.5);
    assert.equal(accuracyAt(PAIRS, 0.85), 0.75);
  });

  it('higherIsSame (similarities) gives the same curve with thresholds in the caller units', () => {
    const sims = PAIRS.map((p) => ({ score: -p.score, same: p.same }));
    const roc = rocCurve(sims, { higherIsSame: true });
    assert.deepEqual(
      roc.map((p) => [p.far, p.tar]),
      rocCurve(PAIRS).map((p) => [p.far, p.tar]),
    );
    assert.equal(roc[1].threshold, -0.1);
    assert.deepEqual(bestAccuracyThreshold(sims, { higherIsSame: true }), { threshold: -0.55, accuracy: 0.75 });
    assert.equal(accuracyAt(sims, -0.55, { higherIsSame: true }), 0.75);
  });

  it('k-fold accuracy picks each threshold on the other folds', () => {
    // fold 0: S .1 .2, D .5 .6 ; fold 1: S .3 .9, D .95 1.0
    // fold 1 -> best after .9 (4/4): threshold .925; fold 0 at .925 accepts all: 2/4
    // fold 0 -> best after .2 (4/4): threshold .35; fold 1 at .35: .3 ok, .9 wrong, .95 ok, 1.0 ok: 3/4
    const pairs = [S(0.1), S(0.2), S(0.3), S(0.9), D(0.5), D(0.6), D(0.95), D(1.0)];
    const r = kFoldAccuracy(pairs, { folds: 2 });
    assert.deepEqual(
      r.folds.map((f) => [f.fold, Number(f.threshold.toFixed(6)), f.accuracy, f.size]),
      [
        [0, 0.925, 0.5, 4],
        [1, 0.35, 0.75, 4],
      ],
    );
    assert.equal(r.mean, 0.625);
    assert.ok(Math.abs(r.std - Math.sqrt(2 * 0.125 ** 2)) < 1e-12);
    // explicit fold assignment gives the same when it matches
    const same = kFoldAccuracy(pairs, { foldOf: [0, 0, 1, 1, 0, 0, 1, 1] });
    assert.equal(same.mean, 0.625);
  });

  it('calibrate() gathers all of it and recommends a threshold', () => {
    const many = [...PAIRS, ...PAIRS.map((p) => ({ ...p, score: p.score + 0.01 }))];
    const c = calibrate(many, { far: [0, 0.25], folds: 2 });
    assert.equal(c.auc, auc(rocCurve(many)));
    assert.deepEqual(c.pairs, { same: 8, different: 8 });
    assert.equal(c.bestAccuracy, 0.75);
    assert.equal(c.threshold, c.bestAccuracyThreshold);
    assert.equal(c.thresholdAtFar.length, 2);
    assert.equal(c.thresholdAtFar[1].tar, 0.75);
    assert.equal(calibrate(many, { choose: 'eer', folds: 2 }).threshold, c.eerThreshold);
    assert.equal(calibrate(many, { choose: 'far', far: [0.25], folds: 2 }).threshold, c.thresholdAtFar[1].threshold);
    assert.throws(() => calibrate([S(1), S(2)], { folds: 2 }), /at least one same and one different/);
    assert.throws(() => calibrate([{ score: NaN, same: true }]), /pairs\[0\]\.score/);
  });
});

describe('metrics: LFW pair lists', () => {
  const text = '2\nAaron\t1\t2\nBob Smith\t3\t4\nAaron\t1\tCarl\t2\nDan\t10\tEve\t11\n';
  it('parses view-1 files: N same then N different pairs, Name/Name_%04d.jpg paths', () => {
    const p = parseLfwPairs(text.replace('Bob Smith', 'Bob_Smith'), { root: '/data' });
    assert.equal(p.length, 4);
    assert.deepEqual(p[0], { nameA: 'Aaron', indexA: 1, nameB: 'Aaron', indexB: 2, same: true, fold: 0, pathA: '/data/Aaron/Aaron_0001.jpg', pathB: '/data/Aaron/Aaron_0002.jpg' });
    assert.equal(p[3].pathB, '/data/Eve/Eve_0011.jpg');
    assert.deepEqual(
      p.map((x) => x.same),
      [true, true, false, false],
    );
  });
  it('parses view-2 headers (sets N) with fold numbers', () => {
    const p = parseLfwPairs('2 1\nA 1 2\nB 1 C 1\nD 1 2\nE 1 F 2\n');
    assert.deepEqual(
      p.map((x) => [x.fold, x.same]),
      [
        [0, true],
        [0, false],
        [1, true],
        [1, false],
      ],
    );
  });
  it('rejects malformed files with the line', () => {
    assert.throws(() => parseLfwPairs('3\nA 1 2\n'), FileFormatError);
    assert.throws(() => parseLfwPairs('1\nA 1 B 2\nC 1 2\n'), /line 2: a different pair/);
    assert.throws(() => parseLfwPairs('1\nA x 2\nC 1 D 2\n'), /line 2: 'x' is not an image number/);
    assert.throws(() => parseLfwPairs('x\n'), /first line/);
    assert.throws(() => parseLfwPairs(''), /empty/);
  });
  it('reads the real pairsDevTrain / pairsDevTest (1100+1100, 500+500) and every image exists', function () {
    const dir = facesDir();
    needs(this, 'face-data');
    const lfw = path.join(dir!, 'lfw-view1');
    for (const [file, n] of [['pairsDevTrain.txt', 1100], ['pairsDevTest.txt', 500]] as const) {
      const p = readLfwPairs(path.join(lfw, file));
      assert.equal(p.length, 2 * n);
      assert.equal(p.filter((x) => x.same).length, n);
      for (const x of p) assert.ok(fs.existsSync(x.pathA) && fs.existsSync(x.pathB), `${x.pathA} / ${x.pathB}`);
    }
  });
});
