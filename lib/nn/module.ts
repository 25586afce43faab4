// Module: the base of every layer and network, after torch.nn.Module and the
// C++ frontend's torch::nn::Module. A module registers parameters, buffers and
// child modules by name; stateDict() uses PyTorch's dotted names, so weights
// move between Python and torchface unchanged.
import { ArgumentError, ModelMismatchError, invalid } from '../core/errors';
import * as F from '../ops';
import { DTYPES, DType, Device, Tensor, checkDevice, isFloatingDType, noGrad } from '../core';

export type StateDict = Map<string, Tensor>;

export abstract class Module {
  training = true;
  protected readonly _parameters = new Map<string, Tensor | null>();
  protected readonly _buffers = new Map<string, Tensor | null>();
  protected readonly _modules = new Map<string, Module>();

  /** The computation. Subclasses narrow the signature. */
  abstract forward(...inputs: unknown[]): unknown;

  registerParameter(name: string, t: Tensor | null): Tensor | null {
    checkName(name, this._parameters);
    if (t && !t.requiresGrad) t.requiresGrad_(true);
    this._parameters.set(name, t);
    return t;
  }
  registerBuffer(name: string, t: Tensor | null): Tensor | null {
    checkName(name, this._buffers);
    this._buffers.set(name, t);
    return t;
  }
  registerModule<M extends Module>(name: string, m: M): M {
    checkName(name, this._modules);
    if (!(m instanceof Module)) invalid(`module '${name}'`, 'a Module', m);
    this._modules.set(name, m);
    return m;
  }

  /** A parameter by local name (throws if absent). */
  param(name: string): Tensor {
    const p = this._parameters.get(name);
    if (!p) throw new ArgumentError('name', `a parameter of ${this.constructor.name}`, name);
    return p;
  }
  buffer(name: string): Tensor | null {
    return this._buffers.get(name) ?? null;
  }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [name, m] of this._modules) yield* m.namedModules(prefix ? `${prefix}.${name}` : name);
  }
  *children(): Generator<Module> {
    yield* this._modules.values();
  }
  *namedChildren(): Generator<[string, Module]> {
    yield* this._modules.entries();
  }
  *namedParameters(): Generator<[string, Tensor]> {
    for (const [prefix, m] of this.namedModules())
      for (const [name, p] of m._parameters) if (p) yield [prefix ? `${prefix}.${name}` : name, p];
  }
  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }
  *namedBuffers(): Generator<[string, Tensor]> {
    for (const [prefix, m] of this.namedModules())
      for (const [name, b] of m._buffers) if (b) yield [prefix ? `${prefix}.${name}` : name, b];
  }
  buffers(): Tensor[] {
    return [...this.namedBuffers()].map(([, b]) => b);
  }
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel, 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /** Freezes or unfreezes every parameter. */
  requiresGrad_(value = true): this {
    for (const p of this.parameters()) p.requiresGrad_(value);
    return this;
  }

  /**
   * Moves or casts parameters and buffers in place, keeping every tensor object
   * (like `param.data = ...` in PyTorch), so optimizers and references made
   * before stay valid. `dtype` casts floating-point tensors only (BatchNorm's
   * int64 num_batches_tracked stays). `channelsLast: true` stores 4-D tensors
   * (2-D convolution weights) in channels-last (NHWC) memory order; libtorch then
   * runs those convolutions through oneDNN and keeps activations channels-last.
   * Give channels-last inputs too (`x.contiguous({ channelsLast: true })`).
   *
   * When it helps (scripts/bench/cases/channels-last.ts, libtorch 1.13 on a shared
   * 2-core x86 machine, 1 thread, no-grad forward): 3x3 convolutions on larger
   * maps, e.g. 64 channels at 56x56 batch 1, run 2-3x faster, 8x64x28x28 1.4-2x;
   * batch-1 convolutions on small maps (<= 28x28) gain 0-15%; a whole ResNet-18
   * at batch 1 was ~2x faster at 56x56 input and within noise (0.9-1.3x) at
   * 112x112. It is therefore not the default: measure your model.
   */
  to(target: Device | DType | { device?: Device; dtype?: DType; channelsLast?: boolean }): this {
    let opts: { device?: Device; dtype?: DType; channelsLast?: boolean };
    if (typeof target === 'string') opts = /^(cpu|cuda)/.test(target) ? { device: checkDevice(target, 'to(device)') } : { dtype: target as DType };
    else if (target && typeof target === 'object') opts = target;
    else return invalid('to(target)', 'a device, a dtype or { device, dtype, channelsLast }', target);
    if (opts.dtype !== undefined && !DTYPES.includes(opts.dtype)) invalid('to(dtype)', `one of ${DTYPES.join(', ')}`, opts.dtype);
    if (opts.dtype !== undefined && !isFloatingDType(opts.dtype)) invalid('to(dtype)', 'a floating-point dtype', opts.dtype);
    if (opts.device !== undefined) checkDevice(opts.device, 'to(device)');
    noGrad(() => {
      for (const [, m] of this.namedModules()) {
        for (const t of [...m._parameters.values(), ...m._buffers.values()]) {
          if (!t) continue;
          const moved = convert(t, opts);
          if (moved === t) continue;
          t.setData_(moved);
          moved.dispose();
          const g = t.grad;
          if (g) {
            const mg = convert(g, opts);
            if (mg !== g) {
              t.grad = mg;
              mg.dispose();
            }
            g.dispose();
          }
        }
      }
    });
    return this;
  }

  /** Clears gradients (to none by default, as PyTorch 2 does). */
  zeroGrad(setToNone = true): void {
    for (const p of this.parameters()) {
      if (setToNone) p.grad = null;
      else {
        const g = p.grad;
        if (g) {
          g.zero_();
          g.dispose();
        }
      }
    }
  }

  /** Parameters and buffers by dotted name. The tensors are the module's own (not copies). */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [name, p] of this.namedParameters()) out.set(name, p);
    for (const [name, b] of this.namedBuffers()) out.set(name, b);
    return out;
  }

  /**
   * Copies values into the module's parameters and buffers, by PyTorch's dotted
   * names (e.g. `layer1.0.bn1.running_var`). With strict (the default) missing or
   * unexpected names are errors; shape mismatches always are, and nothing is
   * copied unless every shape matches. Values are cast to the module's dtype and
   * device. As in PyTorch for old checkpoints, a missing BatchNorm
   * `num_batches_tracked` is not an error (it is reset to 0).
   */
  loadStateDict(dict: StateDict | Record<string, Tensor>, options: { strict?: boolean } = {}): { missing: string[]; unexpected: string[] } {
    if (!(dict instanceof Map) && (dict === null || typeof dict !== 'object')) invalid('dict', 'a Map or object of tensors', dict);
    const strict = options.strict ?? true;
    const source = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const own = this.stateDict();
    const tolerated = (k: string) => k === 'num_batches_tracked' || k.endsWith('.num_batches_tracked');
    const missing = [...own.keys()].filter((k) => !source.has(k) && !tolerated(k));
    const unexpected = [...source.keys()].filter((k) => !own.has(k));
    const list = (names: string[]) => `${names.slice(0, 8).join(', ')}${names.length > 8 ? ` (+${names.length - 8} more)` : ''}`;
    if (strict && (missing.length || unexpected.length)) {
      throw new ModelMismatchError(
        `loadStateDict(${this.constructor.name}): ${missing.length ? `missing ${list(missing)}` : ''}${missing.length && unexpected.length ? '; ' : ''}${unexpected.length ? `unexpected ${list(unexpected)}` : ''}`,
      );
    }
    const mismatched: string[] = [];
    for (const [name, target] of own) {
      const src = source.get(name);
      if (src === undefined) continue;
      if (!(src instanceof Tensor)) invalid(`dict['${name}']`, 'a Tensor', src);
      if (src.shape.join('x') !== target.shape.join('x')) mismatched.push(`'${name}' has shape [${src.shape}] in the state dict but [${target.shape}] in the model`);
    }
    if (mismatched.length) throw new ModelMismatchError(`loadStateDict(${this.constructor.name}): ${mismatched.slice(0, 8).join('; ')}${mismatched.length > 8 ? ` (+${mismatched.length - 8} more)` : ''}`);
    noGrad(() => {
      for (const [name, target] of own) {
        const src = source.get(name);
        if (src) target.copy_(src);
        else if (tolerated(name)) target.zero_();
      }
    });
    return { missing, unexpected };
  }

  /**
   * A readable summary like printing a PyTorch module, with parameter counts:
   * each leaf shows its own count, each container its subtree's, and a total
   * line ends the text.
   */
  toString(): string {
    const lines: string[] = [];
    const fmt = (n: number) => n.toLocaleString('en-US');
    const count = (m: Module) => {
      let n = 0;
      for (const [, p] of m.namedParameters()) n += p.numel;
      return n;
    };
    const render = (m: Module, name: string, indent: string) => {
      const extra = m.extraRepr();
      const label = `${indent}${name ? `(${name}): ` : ''}${m.constructor.name}`;
      const n = count(m);
      const note = n ? `  # ${fmt(n)} params` : '';
      if (m._modules.size === 0) lines.push(`${label}(${extra})${note}`);
      else {
        lines.push(`${label}(${extra ? `${extra},` : ''}${note}`);
        for (const [k, c] of m._modules) render(c, k, indent + '  ');
        lines.push(`${indent})`);
      }
    };
    render(this, '', '');
    const params = this.parameters();
    const trainable = params.filter((p) => p.requiresGrad).reduce((a, p) => a + p.numel, 0);
    lines.push(`Total parameters: ${fmt(this.numParameters())} (${fmt(trainable)} trainable)`);
    return lines.join('\n');
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
  /** Constructor arguments shown by toString(). */
  extraRepr(): string {
    return '';
  }

  /** Releases every parameter and buffer of this module and its children. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const p of m._parameters.values()) p?.dispose();
      for (const b of m._buffers.values()) b?.dispose();
    }
  }
}

function checkName(name: string, _map: Map<string, unknown>): void {
  if (typeof name !== 'string' || name === '' || name.includes('.')) invalid('name', 'a non-empty name without dots', name);
}

/** Strides of a tensor, in elements. */
export function strides(t: Tensor): number[] {
  return t.shape.map((_, d) => F.callOp('aten::stride', 'int', t, d) as number);
}

/** Whether a tensor is dense in row-major (NCHW) order, or with channelsLast in NHWC order (4-D only). */
export function isContiguous(t: Tensor, channelsLast = false): boolean {
  const shape = t.shape;
  const st = strides(t);
  const order = channelsLast ? (shape.length === 4 ? [1, 3, 2, 0] : invalid('tensor', 'a 4-D tensor for channels-last', `shape [${shape}]`)) : shape.map((_, i) => shape.length - 1 - i);
  let expected = 1;
  for (const d of order) {
    if (shape[d] !== 1 && st[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

function convert(t: Tensor, opts: { device?: Device; dtype?: DType; channelsLast?: boolean }): Tensor {
  const castDtype = opts.dtype && isFloatingDType(t.dtype) && opts.dtype !== t.dtype ? opts.dtype : undefined;
  const device = opts.device && opts.device !== t.device ? opts.device : undefined;
  let channelsLast: boolean | undefined;
  if (opts.channelsLast !== undefined && t.ndim === 4) {
    const isCL = isContiguous(t, true);
    const isC = isContiguous(t, false);
    // A tensor with a size-1 channel or spatial extent can be both; only copy when needed.
    if (opts.channelsLast ? !isCL : !isC) channelsLast = opts.channelsLast;
  }
  if (!castDtype && !device && channelsLast === undefined) return t;
  return t.to({ device, dtype: castDtype, channelsLast });
}
