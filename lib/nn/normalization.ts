// Normalisation: BatchNorm1d/2d/3d and LayerNorm, with PyTorch's names, options and default initialisations.
// Each layer is a small class: options in the constructor, reset() creates the
// parameters, forward() calls the functional op (lib/ops).
import { invalid } from '../core/errors';
import * as F from '../ops';
import { Tensor, ones, zeros } from '../core';
import { Module } from './module';
import { FactoryOptions, positiveInt } from './options';

export interface BatchNormOptions extends FactoryOptions {
  eps?: number;
  /** Weight of the new batch in the running statistics (default 0.1); null for a cumulative average, as in PyTorch. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

abstract class BatchNormNd extends Module {
  constructor(
    readonly expectedDims: number[],
    readonly numFeatures: number,
    readonly options: BatchNormOptions = {},
  ) {
    super();
    positiveInt(numFeatures, 'numFeatures');
    this.reset();
  }
  reset(): void {
    const o = { device: this.options.device, dtype: this.options.dtype };
    const affine = this.options.affine ?? true;
    this.registerParameter('weight', affine ? ones([this.numFeatures], o) : null);
    this.registerParameter('bias', affine ? zeros([this.numFeatures], o) : null);
    const track = this.options.trackRunningStats ?? true;
    this.registerBuffer('running_mean', track ? zeros([this.numFeatures], o) : null);
    this.registerBuffer('running_var', track ? ones([this.numFeatures], o) : null);
    this.registerBuffer('num_batches_tracked', track ? zeros([], { dtype: 'int64', device: o.device }) : null);
  }
  forward(x: Tensor): Tensor {
    if (!this.expectedDims.includes(x.ndim)) invalid('input', `a ${this.expectedDims.join(' or ')}-D tensor`, `shape [${x.shape}]`);
    const runningMean = this.buffer('running_mean');
    const useBatchStats = this.training || !runningMean;
    let momentum = this.options.momentum === undefined ? 0.1 : this.options.momentum ?? 0;
    const tracked = this.buffer('num_batches_tracked');
    if (this.training && tracked) {
      tracked.add_(1);
      if (this.options.momentum === null) momentum = 1 / tracked.item();
    }
    return F.batchNorm(x, runningMean, this.buffer('running_var'), {
      weight: this._parameters.get('weight') ?? null,
      bias: this._parameters.get('bias') ?? null,
      training: useBatchStats,
      momentum,
      eps: this.options.eps ?? 1e-5,
    });
  }
  extraRepr(): string {
    const o = this.options;
    return `${this.numFeatures}, eps=${o.eps ?? 1e-5}, momentum=${o.momentum === undefined ? 0.1 : o.momentum}, affine=${o.affine ?? true}, trackRunningStats=${o.trackRunningStats ?? true}`;
  }
}
export class BatchNorm1d extends BatchNormNd {
  constructor(numFeatures: number, options?: BatchNormOptions) {
    super([2, 3], numFeatures, options);
  }
}
export class BatchNorm2d extends BatchNormNd {
  constructor(numFeatures: number, options?: BatchNormOptions) {
    super([4], numFeatures, options);
  }
}
export class BatchNorm3d extends BatchNormNd {
  constructor(numFeatures: number, options?: BatchNormOptions) {
    super([5], numFeatures, options);
  }
}

export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  constructor(
    normalizedShape: number | number[],
    readonly options: { eps?: number; elementwiseAffine?: boolean } & FactoryOptions = {},
  ) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    this.normalizedShape.forEach((d) => positiveInt(d, 'normalizedShape'));
    this.reset();
  }
  reset(): void {
    const o = { device: this.options.device, dtype: this.options.dtype };
    const affine = this.options.elementwiseAffine ?? true;
    this.registerParameter('weight', affine ? ones(this.normalizedShape, o) : null);
    this.registerParameter('bias', affine ? zeros(this.normalizedShape, o) : null);
  }
  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, { weight: this._parameters.get('weight'), bias: this._parameters.get('bias'), eps: this.options.eps ?? 1e-5 });
  }
  extraRepr(): string {
    return `[${this.normalizedShape}]`;
  }
}
