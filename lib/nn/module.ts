// Module: the base of every layer and network, after torch.nn.Module and the
// C++ frontend's torch::nn::Module. A module registers parameters, buffers and
// child modules by name; stateDict() uses PyTorch's dotted names, so weights
// move between Python and torchface unchanged.
import { ArgumentError, ModelMismatchError, invalid } from '../errors';
import * as F from '../ops';
import { DType, Device, Tensor, noGrad } from '../tensor';

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
   * Moves or casts parameters and buffers (floating-point ones only for dtype),
   * in place on the module. Create optimizers after moving a model, as in PyTorch.
   */
  to(target: Device | DType | { device?: Device; dtype?: DType; channelsLast?: boolean }): this {
    const opts = typeof target === 'string' ? (target.startsWith('cpu') || target.startsWith('cuda') ? { device: target as Device } : { dtype: target as DType }) : target;
    noGrad(() => {
      for (const [, m] of this.namedModules()) {
        for (const [name, p] of m._parameters) {
          if (!p) continue;
          const moved = convert(p, opts);
          if (moved === p) continue;
          const leaf = moved.detach();
          moved.dispose();
          leaf.requiresGrad_(p.requiresGrad);
          p.dispose();
          m._parameters.set(name, leaf);
        }
        for (const [name, b] of m._buffers) {
          if (!b) continue;
          const moved = convert(b, opts);
          if (moved !== b) {
            b.dispose();
            m._buffers.set(name, moved);
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
   * Copies values into the module's parameters and buffers. With strict (the
   * default) missing or unexpected names and shape mismatches are errors.
   */
  loadStateDict(dict: StateDict | Record<string, Tensor>, options: { strict?: boolean } = {}): { missing: string[]; unexpected: string[] } {
    const strict = options.strict ?? true;
    const source = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !source.has(k));
    const unexpected = [...source.keys()].filter((k) => !own.has(k));
    if (strict && (missing.length || unexpected.length)) {
      throw new ModelMismatchError(
        `loadStateDict: ${missing.length ? `missing ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ` (+${missing.length - 8} more)` : ''}` : ''}` +
          `${missing.length && unexpected.length ? '; ' : ''}${unexpected.length ? `unexpected ${unexpected.slice(0, 8).join(', ')}${unexpected.length > 8 ? ` (+${unexpected.length - 8} more)` : ''}` : ''}`,
      );
    }
    noGrad(() => {
      for (const [name, target] of own) {
        const src = source.get(name);
        if (!src) continue;
        const a = target.shape.join('x');
        const b = src.shape.join('x');
        if (a !== b) throw new ModelMismatchError(`loadStateDict: '${name}' has shape [${src.shape}] in the file but [${target.shape}] in the model`);
        target.copy_(src);
      }
    });
    return { missing, unexpected };
  }

  /** A readable summary with parameter counts, like printing a PyTorch module. */
  toString(): string {
    const lines: string[] = [];
    const render = (m: Module, name: string, indent: string) => {
      const own = [...m._parameters.values()].reduce((n, p) => n + (p ? p.numel : 0), 0);
      const extra = m.extraRepr();
      const head = `${indent}${name ? `(${name}): ` : ''}${m.constructor.name}(${extra})`;
      if (m._modules.size === 0) lines.push(`${head}${own ? `  # ${own.toLocaleString('en-US')} params` : ''}`);
      else {
        lines.push(`${head.slice(0, -1)}`);
        for (const [n, c] of m._modules) render(c, n, indent + '  ');
        lines.push(`${indent})`);
      }
    };
    render(this, '', '');
    lines.push(`Total parameters: ${this.numParameters().toLocaleString('en-US')} (${this.parameters().filter((p) => p.requiresGrad).reduce((n, p) => n + p.numel, 0).toLocaleString('en-US')} trainable)`);
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

function convert(t: Tensor, opts: { device?: Device; dtype?: DType; channelsLast?: boolean }): Tensor {
  const castDtype = opts.dtype && (t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16' || t.dtype === 'bfloat16') ? opts.dtype : undefined;
  const channelsLast = opts.channelsLast !== undefined && t.ndim === 4 ? opts.channelsLast : undefined;
  if ((!opts.device || opts.device === t.device) && (!castDtype || castDtype === t.dtype) && channelsLast === undefined) return t;
  return t.to({ device: opts.device, dtype: castDtype, channelsLast });
}

// Initialisation helpers (torch.nn.init), in place and without autograd.

/** Fills t with U(low, high). */
export function uniform_(t: Tensor, low: number, high: number): Tensor {
  noGrad(() => F.callOp('aten::uniform_', '', t, low, high, null));
  return t;
}
/** Fills t with N(mean, std^2). */
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  noGrad(() => F.callOp('aten::normal_', '', t, mean, std, null));
  return t;
}
export function constant_(t: Tensor, value: number): Tensor {
  noGrad(() => t.fill_(value));
  return t;
}
/** fan_in and fan_out of a weight (PyTorch's _calculate_fan_in_and_fan_out). */
export function fans(shape: number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) invalid('weight', 'a tensor with at least 2 dimensions', `shape [${shape}]`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}
/** He (Kaiming) uniform initialisation; PyTorch's default for Linear and Conv uses a = sqrt(5). */
export function kaimingUniform_(t: Tensor, a = 0, mode: 'fanIn' | 'fanOut' = 'fanIn', nonlinearity: 'relu' | 'leaky_relu' | 'linear' = 'leaky_relu'): Tensor {
  const fan = fans(t.shape)[mode];
  const gain = nonlinearity === 'relu' ? Math.SQRT2 : nonlinearity === 'linear' ? 1 : Math.sqrt(2 / (1 + a * a));
  const bound = Math.sqrt(3) * (gain / Math.sqrt(fan));
  return uniform_(t, -bound, bound);
}
export function kaimingNormal_(t: Tensor, mode: 'fanIn' | 'fanOut' = 'fanOut'): Tensor {
  const fan = fans(t.shape)[mode];
  return normal_(t, 0, Math.SQRT2 / Math.sqrt(fan));
}
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = fans(t.shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}
