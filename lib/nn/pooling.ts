// Pooling: max, average and adaptive average, 1d/2d/3d, with PyTorch's names, options and default initialisations.
// Each layer is a small class: options in the constructor, reset() creates the
// parameters, forward() calls the functional op (lib/ops).
import { invalid } from '../core/errors';
import * as F from '../ops';
import { Tensor } from '../core';
import { Module } from './module';
import { tuple } from './options';

export type PoolOptions = F.PoolOptions;
abstract class PoolNd extends Module {
  constructor(
    readonly kind: 'max' | 'avg',
    readonly nd: number,
    readonly kernelSize: number | number[],
    readonly options: PoolOptions = {},
  ) {
    super();
    if (tuple(kernelSize, nd, 'kernelSize').some((k) => k < 1)) invalid('kernelSize', `a positive integer or ${nd} of them`, kernelSize);
  }
  forward(x: Tensor): Tensor {
    const fn = this.kind === 'max' ? [F.maxPool1d, F.maxPool2d, F.maxPool3d][this.nd - 1] : [F.avgPool1d, F.avgPool2d, F.avgPool3d][this.nd - 1];
    return fn(x, this.kernelSize, this.options);
  }
  extraRepr(): string {
    return `kernelSize=${this.kernelSize}${this.options.stride !== undefined ? `, stride=${this.options.stride}` : ''}`;
  }
}
export class MaxPool1d extends PoolNd {
  constructor(kernelSize: number | number[], options?: PoolOptions) {
    super('max', 1, kernelSize, options);
  }
}
export class MaxPool2d extends PoolNd {
  constructor(kernelSize: number | number[], options?: PoolOptions) {
    super('max', 2, kernelSize, options);
  }
}
export class MaxPool3d extends PoolNd {
  constructor(kernelSize: number | number[], options?: PoolOptions) {
    super('max', 3, kernelSize, options);
  }
}
export class AvgPool1d extends PoolNd {
  constructor(kernelSize: number | number[], options?: PoolOptions) {
    super('avg', 1, kernelSize, options);
  }
}
export class AvgPool2d extends PoolNd {
  constructor(kernelSize: number | number[], options?: PoolOptions) {
    super('avg', 2, kernelSize, options);
  }
}
export class AvgPool3d extends PoolNd {
  constructor(kernelSize: number | number[], options?: PoolOptions) {
    super('avg', 3, kernelSize, options);
  }
}
abstract class AdaptiveAvgPoolNd extends Module {
  constructor(
    readonly nd: number,
    readonly outputSize: number | number[],
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return [F.adaptiveAvgPool1d, F.adaptiveAvgPool2d, F.adaptiveAvgPool3d][this.nd - 1](x, this.outputSize);
  }
  extraRepr(): string {
    return `outputSize=${this.outputSize}`;
  }
}
export class AdaptiveAvgPool1d extends AdaptiveAvgPoolNd {
  constructor(outputSize: number | number[]) {
    super(1, outputSize);
  }
}
export class AdaptiveAvgPool2d extends AdaptiveAvgPoolNd {
  constructor(outputSize: number | number[]) {
    super(2, outputSize);
  }
}
export class AdaptiveAvgPool3d extends AdaptiveAvgPoolNd {
  constructor(outputSize: number | number[]) {
    super(3, outputSize);
  }
}
