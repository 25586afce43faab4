// Convolutions: Conv1d/2d/3d and ConvTranspose1d/2d/3d, with PyTorch's names, options and default initialisations.
// Each layer is a small class: options in the constructor, reset() creates the
// parameters, forward() calls the functional op (lib/ops).
import { invalid } from '../core/errors';
import * as F from '../ops';
import { Tensor, empty } from '../core';
import { Module } from './module';
import { kaimingUniform_, fans, uniform_ } from './init';
import { FactoryOptions, positiveInt, tuple } from './options';

export interface ConvOptions extends FactoryOptions {
  stride?: number | number[];
  padding?: number | number[] | 'same' | 'valid';
  dilation?: number | number[];
  groups?: number;
  bias?: boolean;
  /** Padding mode for numeric padding, as in PyTorch. */
  paddingMode?: 'zeros' | 'reflect' | 'replicate' | 'circular';
}

abstract class ConvNd extends Module {
  readonly kernelSize: number[];
  constructor(
    readonly nd: number,
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | number[],
    readonly options: ConvOptions = {},
    readonly transposed = false,
    readonly outputPadding: number | number[] = 0,
  ) {
    super();
    positiveInt(inChannels, 'inChannels');
    positiveInt(outChannels, 'outChannels');
    this.kernelSize = tuple(kernelSize, nd, 'kernelSize');
    const groups = options.groups ?? 1;
    positiveInt(groups, 'groups');
    if (inChannels % groups || outChannels % groups) invalid('groups', 'a divisor of inChannels and outChannels', groups);
    this.reset();
  }
  reset(): void {
    const groups = this.options.groups ?? 1;
    const shape = this.transposed ? [this.inChannels, this.outChannels / groups, ...this.kernelSize] : [this.outChannels, this.inChannels / groups, ...this.kernelSize];
    const o = { device: this.options.device, dtype: this.options.dtype };
    this.registerParameter('weight', kaimingUniform_(empty(shape, o), Math.sqrt(5)));
    if (this.options.bias === false) this.registerParameter('bias', null);
    else {
      const bound = 1 / Math.sqrt(fans(shape).fanIn);
      this.registerParameter('bias', uniform_(empty([this.outChannels], o), -bound, bound));
    }
  }
  get weight(): Tensor {
    return this.param('weight');
  }
  get bias(): Tensor | null {
    return this._parameters.get('bias') ?? null;
  }
  forward(x: Tensor): Tensor {
    const o = this.options;
    if (this.transposed) {
      const fn = [F.convTranspose1d, F.convTranspose2d, F.convTranspose3d][this.nd - 1];
      return fn(x, this.weight, this.bias, { stride: o.stride, padding: o.padding as number | number[], outputPadding: this.outputPadding, groups: o.groups, dilation: o.dilation });
    }
    const fn = [F.conv1d, F.conv2d, F.conv3d][this.nd - 1];
    if (o.paddingMode && o.paddingMode !== 'zeros' && o.padding !== 'valid') {
      // PyTorch's _reversed_padding_repeated_twice: last dimension first, [left, right] each.
      let pads: number[];
      if (o.padding === 'same') {
        const dil = tuple(o.dilation ?? 1, this.nd, 'dilation');
        pads = [];
        for (let d = this.nd - 1; d >= 0; d--) {
          const total = dil[d] * (this.kernelSize[d] - 1);
          pads.push(Math.floor(total / 2), total - Math.floor(total / 2));
        }
      } else pads = tuple(o.padding ?? 0, this.nd, 'padding').flatMap((v) => [v, v]).reverse();
      const padded = F.pad(x, pads, o.paddingMode === 'reflect' ? 'reflect' : o.paddingMode === 'replicate' ? 'replicate' : 'circular');
      const out = fn(padded, this.weight, this.bias, { stride: o.stride, dilation: o.dilation, groups: o.groups });
      padded.dispose();
      return out;
    }
    return fn(x, this.weight, this.bias, { stride: o.stride, padding: o.padding, dilation: o.dilation, groups: o.groups });
  }
  extraRepr(): string {
    const o = this.options;
    return `${this.inChannels}, ${this.outChannels}, kernelSize=[${this.kernelSize}]${o.stride ? `, stride=${o.stride}` : ''}${o.padding ? `, padding=${o.padding}` : ''}${o.groups && o.groups > 1 ? `, groups=${o.groups}` : ''}${o.bias === false ? ', bias=false' : ''}`;
  }
}

export class Conv1d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], options?: ConvOptions) {
    super(1, inChannels, outChannels, kernelSize, options);
  }
}
export class Conv2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], options?: ConvOptions) {
    super(2, inChannels, outChannels, kernelSize, options);
  }
}
export class Conv3d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], options?: ConvOptions) {
    super(3, inChannels, outChannels, kernelSize, options);
  }
}
export type ConvTransposeOptions = Omit<ConvOptions, 'padding' | 'paddingMode'> & { padding?: number | number[]; outputPadding?: number | number[] };
export class ConvTranspose1d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], options: ConvTransposeOptions = {}) {
    super(1, inChannels, outChannels, kernelSize, options, true, options.outputPadding ?? 0);
  }
}
export class ConvTranspose2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], options: ConvTransposeOptions = {}) {
    super(2, inChannels, outChannels, kernelSize, options, true, options.outputPadding ?? 0);
  }
}
export class ConvTranspose3d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], options: ConvTransposeOptions = {}) {
    super(3, inChannels, outChannels, kernelSize, options, true, options.outputPadding ?? 0);
  }
}
