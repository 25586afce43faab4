// Layers with PyTorch's names, options and default initialisations. Each is a
// small class: options in the constructor, reset() creates the parameters,
// forward() calls the functional op.
import { invalid } from '../errors';
import * as F from '../ops';
import { DType, Device, Tensor, empty, full, ones, zeros } from '../tensor';
import { Module, kaimingUniform_, fans, uniform_ } from './module';

export interface FactoryOptions {
  device?: Device;
  dtype?: DType;
}

function positiveInt(v: unknown, name: string): number {
  if (!Number.isInteger(v) || (v as number) <= 0) invalid(name, 'a positive integer', v);
  return v as number;
}
function tuple(v: number | number[], n: number, name: string): number[] {
  const arr = typeof v === 'number' ? new Array(n).fill(v) : v;
  if (!Array.isArray(arr) || arr.length !== n || arr.some((e) => !Number.isInteger(e) || e < 0)) invalid(name, `a non-negative integer or ${n} of them`, v);
  return arr;
}

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

/**
 * Runs modules in order. Intermediate tensors are disposed as soon as the next
 * module has consumed them (the input is never disposed).
 */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => this.registerModule(String(i), m));
  }
  get length(): number {
    return this._modules.size;
  }
  at(i: number): Module {
    const m = this._modules.get(String(i < 0 ? i + this._modules.size : i));
    if (!m) invalid('index', `an index below ${this._modules.size}`, i);
    return m;
  }
  append(m: Module): this {
    this.registerModule(String(this._modules.size), m);
    return this;
  }
  forward(x: Tensor): Tensor {
    let cur = x;
    for (const m of this._modules.values()) {
      const next = m.forward(cur) as Tensor;
      // Autograd keeps its own references to what backward needs, so dropping
      // our handle on an intermediate is safe in training too.
      if (cur !== x && next !== cur) cur.dispose();
      cur = next;
    }
    return cur;
  }
}

/** Holds modules in a list (registered as "0", "1", ...). */
export class ModuleList extends Module {
  constructor(modules: Module[] = []) {
    super();
    modules.forEach((m) => this.append(m));
  }
  append(m: Module): this {
    this.registerModule(String(this._modules.size), m);
    return this;
  }
  get length(): number {
    return this._modules.size;
  }
  at(i: number): Module {
    const m = this._modules.get(String(i < 0 ? i + this._modules.size : i));
    if (!m) invalid('index', `an index below ${this._modules.size}`, i);
    return m;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this._modules.values();
  }
  forward(): never {
    throw new Error('ModuleList has no forward(); iterate over it');
  }
}
