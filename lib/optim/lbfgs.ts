// L-BFGS with an optional strong-Wolfe line search, a port of
// torch.optim.LBFGS (PyTorch 1.13). step(closure) re-evaluates the loss through
// the closure as often as the algorithm needs (up to maxEval times per step).
// Scalars (dot products, step lengths) are JavaScript numbers; the vectors live
// in libtorch, flattened over all parameters.
import { TorchfaceError } from '../core/errors';
import { ArgumentError, invalid } from '../core/errors';
import * as F from '../ops';
import { Tensor, noGrad, tidy } from '../core';
import { Closure, Optimizer, ParamGroup, Params, checkNumber, evaluate } from './optimizer';

export interface LBFGSOptions {
  /** Learning rate (default 1). */
  lr?: number;
  /** Iterations per step() (default 20). */
  maxIter?: number;
  /** Loss evaluations per step() (default maxIter * 5 / 4). */
  maxEval?: number;
  /** Stop when the largest gradient entry is at most this (default 1e-7). */
  toleranceGrad?: number;
  /** Stop when loss or parameter changes fall below this (default 1e-9). */
  toleranceChange?: number;
  /** Number of curvature pairs kept (default 100). */
  historySize?: number;
  /** 'strongWolfe' (or PyTorch's 'strong_wolfe') for a line search; null for a fixed step. */
  lineSearchFn?: 'strongWolfe' | 'strong_wolfe' | null;
}

const dot = (a: Tensor, b: Tensor): number => tidy(() => (F.callOp('aten::dot', '', a, b) as Tensor).item());
const absMax = (a: Tensor): number => tidy(() => F.max(F.abs(a)).item());

function cubicInterpolate(x1: number, f1: number, g1: number, x2: number, f2: number, g2: number, bounds?: [number, number]): number {
  const [xminBound, xmaxBound] = bounds ?? (x1 <= x2 ? [x1, x2] : [x2, x1]);
  const d1 = g1 + g2 - (3 * (f1 - f2)) / (x1 - x2);
  const d2Square = d1 ** 2 - g1 * g2;
  if (d2Square >= 0) {
    const d2 = Math.sqrt(d2Square);
    const minPos = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2)) : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    return Math.min(Math.max(minPos, xminBound), xmaxBound);
  }
  return (xminBound + xmaxBound) / 2;
}

type ObjFunc = (x: Tensor[], t: number, d: Tensor) => [number, Tensor];

/** Strong-Wolfe line search (minFunc's, as PyTorch). Takes ownership of nothing; returns a new flat gradient. */
function strongWolfe(objFunc: ObjFunc, x: Tensor[], t: number, d: Tensor, f: number, g: Tensor, gtd: number, c1 = 1e-4, c2 = 0.9, toleranceChange = 1e-9, maxLs = 25): [number, Tensor, number, number] {
  const owned = new Set<Tensor>();
  const own = (v: Tensor) => (owned.add(v), v);
  const dNorm = absMax(d);
  g = own(g.clone());
  let [fNew, gNew] = objFunc(x, t, d);
  own(gNew);
  let lsFuncEvals = 1;
  let gtdNew = dot(gNew, d);
  let tPrev = 0;
  let fPrev = f;
  let gPrev = g;
  let gtdPrev = gtd;
  let done = false;
  let lsIter = 0;
  let bracket: number[] = [];
  let bracketF: number[] = [];
  let bracketG: Tensor[] = [];
  let bracketGtd: number[] = [];
  while (lsIter < maxLs) {
    if (fNew > f + c1 * t * gtd || (lsIter > 1 && fNew >= fPrev)) {
      [bracket, bracketF, bracketG, bracketGtd] = [[tPrev, t], [fPrev, fNew], [gPrev, own(gNew.clone())], [gtdPrev, gtdNew]];
      break;
    }
    if (Math.abs(gtdNew) <= -c2 * gtd) {
      [bracket, bracketF, bracketG] = [[t], [fNew], [gNew]];
      done = true;
      break;
    }
    if (gtdNew >= 0) {
      [bracket, bracketF, bracketG, bracketGtd] = [[tPrev, t], [fPrev, fNew], [gPrev, own(gNew.clone())], [gtdPrev, gtdNew]];
      break;
    }
    const minStep = t + 0.01 * (t - tPrev);
    const maxStep = t * 10;
    const tmp = t;
    t = cubicInterpolate(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, [minStep, maxStep]);
    tPrev = tmp;
    fPrev = fNew;
    gPrev = own(gNew.clone());
    gtdPrev = gtdNew;
    [fNew, gNew] = objFunc(x, t, d);
    own(gNew);
    lsFuncEvals += 1;
    gtdNew = dot(gNew, d);
    lsIter += 1;
  }
  if (lsIter === maxLs) [bracket, bracketF, bracketG] = [[0, t], [f, fNew], [g, gNew]];

  let insufProgress = false;
  let [lowPos, highPos] = bracketF[0] <= bracketF[bracketF.length - 1] ? [0, 1] : [1, 0];
  while (!done && lsIter < maxLs) {
    if (Math.abs(bracket[1] - bracket[0]) * dNorm < toleranceChange) break;
    t = cubicInterpolate(bracket[0], bracketF[0], bracketGtd[0], bracket[1], bracketF[1], bracketGtd[1]);
    const bMax = Math.max(...bracket);
    const bMin = Math.min(...bracket);
    const eps = 0.1 * (bMax - bMin);
    if (Math.min(bMax - t, t - bMin) < eps) {
      if (insufProgress || t >= bMax || t <= bMin) {
        t = Math.abs(t - bMax) < Math.abs(t - bMin) ? bMax - eps : bMin + eps;
        insufProgress = false;
      } else insufProgress = true;
    } else insufProgress = false;
    [fNew, gNew] = objFunc(x, t, d);
    own(gNew);
    lsFuncEvals += 1;
    gtdNew = dot(gNew, d);
    lsIter += 1;
    if (fNew > f + c1 * t * gtd || fNew >= bracketF[lowPos]) {
      bracket[highPos] = t;
      bracketF[highPos] = fNew;
      bracketG[highPos] = own(gNew.clone());
      bracketGtd[highPos] = gtdNew;
      [lowPos, highPos] = bracketF[0] <= bracketF[1] ? [0, 1] : [1, 0];
    } else {
      if (Math.abs(gtdNew) <= -c2 * gtd) done = true;
      else if (gtdNew * (bracket[highPos] - bracket[lowPos]) >= 0) {
        bracket[highPos] = bracket[lowPos];
        bracketF[highPos] = bracketF[lowPos];
        bracketG[highPos] = bracketG[lowPos];
        bracketGtd[highPos] = bracketGtd[lowPos];
      }
      bracket[lowPos] = t;
      bracketF[lowPos] = fNew;
      bracketG[lowPos] = own(gNew.clone());
      bracketGtd[lowPos] = gtdNew;
    }
  }
  const gOut = bracketG[lowPos].clone();
  for (const v of owned) v.dispose();
  return [bracketF[lowPos], gOut, bracket[lowPos], lsFuncEvals];
}

/**
 * L-BFGS. One parameter group only (as PyTorch). Memory: about
 * (2 * historySize + 3) copies of all parameters.
 *
 * ```ts
 * const opt = new optim.LBFGS([image], { lineSearchFn: 'strongWolfe' });
 * opt.step(() => { opt.zeroGrad(); const loss = lossOf(image); loss.backward(); return loss; });
 * ```
 */
export class LBFGS extends Optimizer {
  constructor(params: Params, options: LBFGSOptions = {}) {
    if (options === null || typeof options !== 'object') invalid('options', 'an object', options);
    const maxIter = options.maxIter ?? 20;
    super(params, {
      lr: options.lr ?? 1,
      maxIter,
      maxEval: options.maxEval ?? Math.floor((maxIter * 5) / 4),
      toleranceGrad: options.toleranceGrad ?? 1e-7,
      toleranceChange: options.toleranceChange ?? 1e-9,
      historySize: options.historySize ?? 100,
      lineSearchFn: options.lineSearchFn ?? null,
    });
    if (this.paramGroups.length !== 1) throw new ArgumentError('params', "one parameter group (LBFGS doesn't support per-parameter options)", `${this.paramGroups.length} groups`);
  }
  protected validateGroup(g: ParamGroup): void {
    super.validateGroup(g);
    for (const k of ['maxIter', 'maxEval', 'historySize']) if (!Number.isInteger(g[k]) || (g[k] as number) < 1) invalid(k, 'a positive integer', g[k]);
    checkNumber(g.toleranceGrad, 'toleranceGrad');
    checkNumber(g.toleranceChange, 'toleranceChange');
    if (g.lineSearchFn !== null && g.lineSearchFn !== 'strongWolfe' && g.lineSearchFn !== 'strong_wolfe') invalid('lineSearchFn', "'strongWolfe' or null", g.lineSearchFn);
  }
  protected updateParam(): void {
    // L-BFGS updates all parameters at once in step(); the per-parameter hook is never called.
    throw new TorchfaceError('LBFGS has no per-parameter update');
  }

  private gatherFlatGrad(): Tensor {
    return tidy(() =>
      F.cat(
        this.paramGroups[0].params.map((p) => {
          const g = p.grad;
          return g ? g.reshape([-1]) : F.callOp('aten::zeros', '', [p.numel], null, null, p.device, null) as Tensor;
        }),
        0,
      ),
    );
  }
  private addGrad(stepSize: number, update: Tensor): void {
    let offset = 0;
    tidy(() => {
      for (const p of this.paramGroups[0].params) {
        const n = p.numel;
        p.add_(update.slice(0, offset, offset + n).view(p.shape), stepSize);
        offset += n;
      }
    });
  }

  /** One L-BFGS step (up to maxIter iterations). Returns the loss of the closure's first evaluation. */
  step(closure?: Closure): number {
    if (typeof closure !== 'function') invalid('closure', 'a function that recomputes the loss (LBFGS needs one)', closure);
    const group = this.paramGroups[0];
    const params = group.params;
    const lr = group.lr;
    const maxIter = group.maxIter as number;
    const maxEval = group.maxEval as number;
    const toleranceGrad = group.toleranceGrad as number;
    const toleranceChange = group.toleranceChange as number;
    const historySize = group.historySize as number;
    const lineSearch = group.lineSearchFn !== null;

    const state = this.stateOf(params[0]);
    state.func_evals = (state.func_evals as number | undefined) ?? 0;
    state.n_iter = (state.n_iter as number | undefined) ?? 0;

    const origLoss = evaluate(closure);
    let loss = origLoss;
    let currentEvals = 1;
    state.func_evals = (state.func_evals as number) + 1;
    let flatGrad = noGrad(() => this.gatherFlatGrad());
    try {
      if (absMax(flatGrad) <= toleranceGrad) return origLoss;

      let d = (state.d as Tensor | undefined) ?? null;
      let t = (state.t as number | undefined) ?? 0;
      let oldDirs = (state.old_dirs as Tensor[] | undefined) ?? [];
      let oldStps = (state.old_stps as Tensor[] | undefined) ?? [];
      let ro = (state.ro as number[] | undefined) ?? [];
      let hDiag = (state.H_diag as number | undefined) ?? 1;
      let prevFlatGrad = (state.prev_flat_grad as Tensor | undefined) ?? null;
      let prevLoss = (state.prev_loss as number | undefined) ?? 0;
      const al: number[] = new Array(historySize).fill(0);

      noGrad(() => {
        let nIter = 0;
        while (nIter < maxIter) {
          nIter += 1;
          state.n_iter = (state.n_iter as number) + 1;
          if (state.n_iter === 1) {
            d?.dispose();
            d = flatGrad.neg();
            for (const v of [...oldDirs, ...oldStps]) v.dispose();
            oldDirs = [];
            oldStps = [];
            ro = [];
            hDiag = 1;
          } else {
            const y = flatGrad.sub(prevFlatGrad!);
            const s = d!.mul(t);
            const ys = dot(y, s);
            if (ys > 1e-10) {
              if (oldDirs.length === historySize) {
                oldDirs.shift()!.dispose();
                oldStps.shift()!.dispose();
                ro.shift();
              }
              oldDirs.push(y);
              oldStps.push(s);
              ro.push(1 / ys);
              hDiag = ys / dot(y, y);
            } else {
              y.dispose();
              s.dispose();
            }
            const numOld = oldDirs.length;
            const q = flatGrad.neg();
            for (let i = numOld - 1; i >= 0; i--) {
              al[i] = dot(oldStps[i], q) * ro[i];
              q.add_(oldDirs[i], -al[i]);
            }
            const r = q.mul_(hDiag);
            for (let i = 0; i < numOld; i++) {
              const be = dot(oldDirs[i], r) * ro[i];
              r.add_(oldStps[i], al[i] - be);
            }
            d!.dispose();
            d = r;
          }
          if (!prevFlatGrad) prevFlatGrad = flatGrad.clone();
          else prevFlatGrad.copy_(flatGrad);
          prevLoss = loss;
          if (state.n_iter === 1) t = Math.min(1, 1 / tidy(() => F.sum(F.abs(flatGrad)).item())) * lr;
          else t = lr;
          const gtd = dot(flatGrad, d!);
          if (gtd > -toleranceChange) break;

          let lsFuncEvals = 0;
          let optCond = false;
          if (lineSearch) {
            const xInit = params.map((p) => p.clone());
            const objFunc: ObjFunc = (x, step, dir) => {
              this.addGrad(step, dir);
              const l = evaluate(closure);
              const g = this.gatherFlatGrad();
              params.forEach((p, i) => p.copy_(x[i]));
              return [l, g];
            };
            try {
              const [newLoss, newGrad, newT, evals] = strongWolfe(objFunc, xInit, t, d!, loss, flatGrad, gtd, 1e-4, 0.9, toleranceChange);
              loss = newLoss;
              flatGrad.dispose();
              flatGrad = newGrad;
              t = newT;
              lsFuncEvals = evals;
            } finally {
              for (const v of xInit) v.dispose();
            }
            this.addGrad(t, d!);
            optCond = absMax(flatGrad) <= toleranceGrad;
          } else {
            this.addGrad(t, d!);
            if (nIter !== maxIter) {
              loss = evaluate(closure);
              flatGrad.dispose();
              flatGrad = this.gatherFlatGrad();
              optCond = absMax(flatGrad) <= toleranceGrad;
              lsFuncEvals = 1;
            }
          }
          currentEvals += lsFuncEvals;
          state.func_evals = (state.func_evals as number) + lsFuncEvals;
          if (nIter === maxIter) break;
          if (currentEvals >= maxEval) break;
          if (optCond) break;
          if (absMax(d!) * Math.abs(t) <= toleranceChange) break;
          if (Math.abs(loss - prevLoss) < toleranceChange) break;
        }
      });
      Object.assign(state, { d, t, old_dirs: oldDirs, old_stps: oldStps, ro, H_diag: hDiag, prev_flat_grad: prevFlatGrad, prev_loss: prevLoss });
      return origLoss;
    } finally {
      flatGrad.dispose();
    }
  }
}
