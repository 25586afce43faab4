// Activations: ReLU, LeakyReLU, PReLU, Sigmoid, Tanh, Softmax, with PyTorch's names, options and default initialisations.
// Each layer is a small class: options in the constructor, reset() creates the
// parameters, forward() calls the functional op (lib/ops).
import { invalid } from '../core/errors';
import * as F from '../ops';
import { Tensor, full } from '../core';
import { Module } from './module';
import { FactoryOptions, positiveInt } from './options';

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}
export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
    if (typeof negativeSlope !== 'number' || !Number.isFinite(negativeSlope)) invalid('negativeSlope', 'a finite number', negativeSlope);
  }
  forward(x: Tensor): Tensor {
    return F.leakyRelu(x, this.negativeSlope);
  }
  extraRepr(): string {
    return `negativeSlope=${this.negativeSlope}`;
  }
}
/** PReLU(numParams = 1, init = 0.25): one learnt slope, or one per channel (dimension 1). */
export class PReLU extends Module {
  constructor(
    readonly numParams = 1,
    readonly init = 0.25,
    readonly options: FactoryOptions = {},
  ) {
    super();
    positiveInt(numParams, 'numParams');
    if (typeof init !== 'number' || !Number.isFinite(init)) invalid('init', 'a finite number', init);
    this.reset();
  }
  reset(): void {
    this.registerParameter('weight', full([this.numParams], this.init, this.options));
  }
  get weight(): Tensor {
    return this.param('weight');
  }
  forward(x: Tensor): Tensor {
    return F.prelu(x, this.weight);
  }
  extraRepr(): string {
    return `numParams=${this.numParams}`;
  }
}
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return F.sigmoid(x);
  }
}
export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return F.tanh(x);
  }
}
export class Softmax extends Module {
  constructor(readonly dim: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.softmax(x, this.dim);
  }
}
