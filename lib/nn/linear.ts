// Linear, Identity, Flatten and Dropout, with PyTorch's names, options and default initialisations.
// Each layer is a small class: options in the constructor, reset() creates the
// parameters, forward() calls the functional op (lib/ops).
import { invalid } from '../core/errors';
import * as F from '../ops';
import { Tensor, empty } from '../core';
import { Module } from './module';
import { kaimingUniform_, uniform_ } from './init';
import { FactoryOptions, positiveInt } from './options';

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export class Linear extends Module {
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly options: { bias?: boolean } & FactoryOptions = {},
  ) {
    super();
    positiveInt(inFeatures, 'inFeatures');
    positiveInt(outFeatures, 'outFeatures');
    this.reset();
  }
  reset(): void {
    const o = { device: this.options.device, dtype: this.options.dtype };
    this.registerParameter('weight', kaimingUniform_(empty([this.outFeatures, this.inFeatures], o), Math.sqrt(5)));
    const bound = 1 / Math.sqrt(this.inFeatures);
    this.registerParameter('bias', this.options.bias === false ? null : uniform_(empty([this.outFeatures], o), -bound, bound));
  }
  get weight(): Tensor {
    return this.param('weight');
  }
  get bias(): Tensor | null {
    return this._parameters.get('bias') ?? null;
  }
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
  extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.options.bias !== false}`;
  }
}


export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.flatten(x, this.startDim, this.endDim);
  }
}


export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (typeof p !== 'number' || p < 0 || p > 1) invalid('p', 'a probability in [0, 1]', p);
  }
  forward(x: Tensor): Tensor {
    return this.training && this.p > 0 ? F.dropout(x, this.p, true) : x;
  }
  extraRepr(): string {
    return `p=${this.p}`;
  }
}
