// Learning-rate schedulers with torch.optim.lr_scheduler's semantics and
// (recursive) formulas, so the learning rates equal PyTorch's step by step.
// Create the scheduler after the optimizer; call scheduler.step() once per
// epoch (or iteration) after optimizer.step().
import { ArgumentError, invalid } from '../core/errors';
import { Optimizer } from './optimizer';

export interface SchedulerState {
  lastEpoch: number;
  stepCount: number;
  baseLrs: number[];
  lastLr: number[];
}

export abstract class LRScheduler {
  lastEpoch: number;
  readonly baseLrs: number[];
  protected stepCount = 0;
  protected lastLr: number[] = [];

  constructor(
    readonly optimizer: Optimizer,
    lastEpoch = -1,
  ) {
    if (!(optimizer instanceof Optimizer)) invalid('optimizer', 'an Optimizer', optimizer);
    if (!Number.isInteger(lastEpoch) || lastEpoch < -1) invalid('lastEpoch', 'an integer >= -1', lastEpoch);
    if (lastEpoch === -1) for (const g of optimizer.paramGroups) g.initialLr ??= g.lr;
    else
      optimizer.paramGroups.forEach((g, i) => {
        if (g.initialLr === undefined) throw new ArgumentError(`paramGroups[${i}].initialLr`, 'a number when resuming with lastEpoch >= 0', undefined);
      });
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr as number);
    this.lastEpoch = lastEpoch;
  }

  /** Subclasses call this at the end of their constructor (PyTorch's _initial_step). */
  protected initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  /** The learning rates for lastEpoch, from the current ones (PyTorch's chainable get_lr). */
  protected abstract getLr(): number[];
  /** The learning rates for lastEpoch in closed form, where the schedule has one. */
  protected closedFormLr?(): number[];

  /** Advances one epoch (or jumps to `epoch`, deprecated in PyTorch but used by SequentialLR). */
  step(epoch?: number): void {
    this.stepCount += 1;
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch += 1;
      values = this.getLr();
    } else {
      if (!Number.isInteger(epoch) || epoch < 0) invalid('epoch', 'a non-negative integer', epoch);
      this.lastEpoch = epoch;
      values = this.closedFormLr ? this.closedFormLr() : this.getLr();
    }
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = values[i]));
    this.lastLr = values;
  }

  /** The learning rates set by the last step(). */
  getLastLr(): number[] {
    return this.lastLr.slice();
  }

  protected get groupLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): SchedulerState {
    return { lastEpoch: this.lastEpoch, stepCount: this.stepCount, baseLrs: this.baseLrs.slice(), lastLr: this.lastLr.slice() };
  }
  loadStateDict(s: SchedulerState): void {
    if (!s || typeof s.lastEpoch !== 'number' || !Array.isArray(s.baseLrs)) invalid('state', 'a scheduler state dict', s);
    this.lastEpoch = s.lastEpoch;
    this.stepCount = s.stepCount;
    this.baseLrs.splice(0, this.baseLrs.length, ...s.baseLrs);
    this.lastLr = s.lastLr.slice();
  }
}

/** Multiplies the learning rate by gamma every stepSize epochs. */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;
  constructor(optimizer: Optimizer, options: { stepSize: number; gamma?: number; lastEpoch?: number }) {
    super(optimizer, options?.lastEpoch ?? -1);
    if (!Number.isInteger(options.stepSize) || options.stepSize < 1) invalid('stepSize', 'a positive integer', options.stepSize);
    this.stepSize = options.stepSize;
    this.gamma = options.gamma ?? 0.1;
    this.initialStep();
  }
  protected getLr(): number[] {
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return this.groupLrs;
    return this.groupLrs.map((lr) => lr * this.gamma);
  }
  protected closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(this.lastEpoch / this.stepSize));
  }
}

/** Multiplies the learning rate by gamma at each milestone epoch. */
export class MultiStepLR extends LRScheduler {
  readonly milestones: Map<number, number>;
  readonly gamma: number;
  constructor(optimizer: Optimizer, options: { milestones: number[]; gamma?: number; lastEpoch?: number }) {
    super(optimizer, options?.lastEpoch ?? -1);
    if (!Array.isArray(options.milestones) || options.milestones.some((m) => !Number.isInteger(m))) invalid('milestones', 'an array of integers', options.milestones);
    this.milestones = new Map();
    for (const m of options.milestones) this.milestones.set(m, (this.milestones.get(m) ?? 0) + 1);
    this.gamma = options.gamma ?? 0.1;
    this.initialStep();
  }
  protected getLr(): number[] {
    const n = this.milestones.get(this.lastEpoch);
    if (n === undefined) return this.groupLrs;
    return this.groupLrs.map((lr) => lr * this.gamma ** n);
  }
  protected closedFormLr(): number[] {
    const sorted = [...this.milestones.entries()].sort((a, b) => a[0] - b[0]);
    const passed = sorted.filter(([m]) => m <= this.lastEpoch).reduce((a, [, c]) => a + c, 0);
    return this.baseLrs.map((b) => b * this.gamma ** passed);
  }
}

/** Cosine annealing from the base learning rate to etaMin over tMax epochs (SGDR without restarts). */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;
  constructor(optimizer: Optimizer, options: { tMax: number; etaMin?: number; lastEpoch?: number }) {
    super(optimizer, options?.lastEpoch ?? -1);
    if (!Number.isInteger(options.tMax) || options.tMax < 1) invalid('tMax', 'a positive integer', options.tMax);
    this.tMax = options.tMax;
    this.etaMin = options.etaMin ?? 0;
    this.initialStep();
  }
  protected getLr(): number[] {
    const { tMax, etaMin, lastEpoch } = this;
    if (lastEpoch === 0) return this.groupLrs;
    if (this.stepCount === 1 && lastEpoch > 0)
      return this.baseLrs.map((b) => etaMin + ((b - etaMin) * (1 + Math.cos((lastEpoch * Math.PI) / tMax))) / 2);
    if ((lastEpoch - 1 - tMax) % (2 * tMax) === 0)
      return this.groupLrs.map((lr, i) => lr + ((this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2);
    return this.groupLrs.map((lr) => ((1 + Math.cos((Math.PI * lastEpoch) / tMax)) / (1 + Math.cos((Math.PI * (lastEpoch - 1)) / tMax))) * (lr - etaMin) + etaMin);
  }
  protected closedFormLr(): number[] {
    return this.baseLrs.map((b) => this.etaMin + ((b - this.etaMin) * (1 + Math.cos((Math.PI * this.lastEpoch) / this.tMax))) / 2);
  }
}

/** Linear warm-up (or decay): the factor goes from startFactor to endFactor over totalIters epochs. */
export class LinearLR extends LRScheduler {
  readonly startFactor: number;
  readonly endFactor: number;
  readonly totalIters: number;
  constructor(optimizer: Optimizer, options: { startFactor?: number; endFactor?: number; totalIters?: number; lastEpoch?: number } = {}) {
    super(optimizer, options?.lastEpoch ?? -1);
    this.startFactor = options.startFactor ?? 1 / 3;
    this.endFactor = options.endFactor ?? 1;
    this.totalIters = options.totalIters ?? 5;
    if (!(this.startFactor > 0 && this.startFactor <= 1)) invalid('startFactor', 'a number in (0, 1]', this.startFactor);
    if (!(this.endFactor >= 0 && this.endFactor <= 1)) invalid('endFactor', 'a number in [0, 1]', this.endFactor);
    if (!Number.isInteger(this.totalIters) || this.totalIters < 1) invalid('totalIters', 'a positive integer', this.totalIters);
    this.initialStep();
  }
  protected getLr(): number[] {
    const { startFactor: s, endFactor: e, totalIters: n, lastEpoch } = this;
    if (lastEpoch === 0) return this.groupLrs.map((lr) => lr * s);
    if (lastEpoch > n) return this.groupLrs;
    return this.groupLrs.map((lr) => lr * (1 + (e - s) / (n * s + (lastEpoch - 1) * (e - s))));
  }
  protected closedFormLr(): number[] {
    const { startFactor: s, endFactor: e, totalIters: n, lastEpoch } = this;
    return this.baseLrs.map((b) => b * (s + ((e - s) * Math.min(n, lastEpoch)) / n));
  }
}

/**
 * Runs schedulers one after another, switching at the milestones, e.g. a
 * LinearLR warm-up for 5 epochs and then cosine annealing:
 * `new SequentialLR(opt, [new LinearLR(opt, { startFactor: 0.1, totalIters: 5 }), new CosineAnnealingLR(opt, { tMax: 95 })], [5])`.
 */
export class SequentialLR {
  lastEpoch: number;
  private lastLr: number[];
  constructor(
    readonly optimizer: Optimizer,
    readonly schedulers: LRScheduler[],
    readonly milestones: number[],
  ) {
    if (!Array.isArray(schedulers) || schedulers.length < 1 || schedulers.some((s) => !(s instanceof LRScheduler))) invalid('schedulers', 'a non-empty array of schedulers', schedulers);
    if (schedulers.some((s) => s.optimizer !== optimizer)) invalid('schedulers', 'schedulers of this optimizer', schedulers);
    if (!Array.isArray(milestones) || milestones.length !== schedulers.length - 1) invalid('milestones', `${schedulers.length - 1} milestone(s)`, milestones);
    this.lastEpoch = 0;
    for (const g of optimizer.paramGroups) g.lr = g.initialLr as number;
    for (const s of schedulers) s.lastEpoch -= 1;
    (schedulers[0] as unknown as { initialStep(): void }).initialStep();
    this.lastLr = schedulers[0].getLastLr();
  }
  step(): void {
    this.lastEpoch += 1;
    let idx = 0;
    while (idx < this.milestones.length && this.milestones[idx] <= this.lastEpoch) idx++;
    const s = this.schedulers[idx];
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) s.step(0);
    else s.step();
    this.lastLr = s.getLastLr();
  }
  getLastLr(): number[] {
    return this.lastLr.slice();
  }
  stateDict(): { lastEpoch: number; lastLr: number[]; schedulers: SchedulerState[] } {
    return { lastEpoch: this.lastEpoch, lastLr: this.lastLr.slice(), schedulers: this.schedulers.map((s) => s.stateDict()) };
  }
  loadStateDict(s: { lastEpoch: number; lastLr: number[]; schedulers: SchedulerState[] }): void {
    this.lastEpoch = s.lastEpoch;
    this.lastLr = s.lastLr.slice();
    s.schedulers.forEach((st, i) => this.schedulers[i].loadStateDict(st));
  }
}
