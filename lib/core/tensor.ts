// The Tensor class: a wrapped libtorch tensor handle with its metadata, reading
// back, devices and dtypes, autograd state, and its lifetime (dispose, the tidy()
// scope it joins, and a finalizer as the safety net). The operators are added to
// Tensor.prototype by lib/ops/ (x.mul(w).sum(), PyTorch style), so this module
// imports none of them; factories, memory scopes and autograd helpers live beside
// it in lib/core/.
import type { NativeArg, NativeResult, TensorHandle } from '../../binding';
import { DisposedError, TorchError, TorchfaceError, invalid } from './errors';
import { native } from './native';
import { CODE_DTYPE, DTYPE_CODE, DType, dtypeCode } from './dtype';
import { DEVICE_RE, Device, checkDevice } from './device';
import type { NestedArray, TypedArray } from './dtype';

// Memory scopes -------------------------------------------------------------

/** @internal The tidy() scopes, innermost last (core/memory.ts opens and closes them). */
export const scopes: Set<Tensor>[] = [];

// Safety net for tensors nobody disposed: when a Tensor wrapper is collected,
// its handle is released.
//
// Registering with a FinalizationRegistry costs about 0.6 µs, half the cost of
// a small op, so it is deferred: new tensors wait in `unregistered` and are
// registered at the next microtask checkpoint, unless disposed by then (the
// common case in loops and tidy()). Nothing is lost by waiting: finalization
// callbacks never run inside synchronous code anyway.
const registry = new FinalizationRegistry<TensorHandle>((handle) => native.dispose(handle));
let unregistered: Tensor[] = [];
let registrationQueued = false;
function registerPending(): void {
  registrationQueued = false;
  const batch = unregistered;
  unregistered = [];
  for (const t of batch) t._register();
}

// Wrapping ----------------------------------------------------------------------

export function wrap(h: TensorHandle): Tensor {
  return new Tensor(h);
}


/** The handle of a tensor argument, rejecting anything else with a clear error. */
export function handleOf(t: unknown, parameter = 'tensor'): TensorHandle {
  if (!Tensor.isTensor(t)) invalid(parameter, 'a Tensor', t);
  return t.handle;
}

/** An ATen operator, resolved once on first use. */
export class Op {
  private id = -1;
  constructor(
    readonly name: string,
    readonly overload = '',
  ) {}
  call(...args: NativeArg[]): NativeResult {
    try {
      if (this.id < 0) this.id = native.op(this.name, this.overload);
      return native.call(this.id, ...args);
    } catch (e) {
      throw new TorchError(this.overload ? `${this.name}.${this.overload}` : this.name, (e as Error).message);
    }
  }
  /** Calls the op and wraps its single tensor result. (The hot path: one spread, no extra frame.) */
  t(...args: NativeArg[]): Tensor {
    let r: NativeResult;
    try {
      if (this.id < 0) this.id = native.op(this.name, this.overload);
      r = native.call(this.id, ...args);
    } catch (e) {
      throw new TorchError(this.overload ? `${this.name}.${this.overload}` : this.name, (e as Error).message);
    }
    return new Tensor(r as TensorHandle);
  }
  /** Calls the op and wraps a tuple/list result. */
  ts(...args: NativeArg[]): Tensor[] {
    return (this.call(...args) as TensorHandle[]).map((h) => new Tensor(h));
  }
  schema(): string {
    if (this.id < 0) this.id = native.op(this.name, this.overload);
    return native.schema(this.id);
  }
  /**
   * Calls the op and wraps whatever tensors it returns, following the
   * schema's return types (handles are plain numbers, so the schema tells a
   * tensor from an int result).
   */
  any(...args: NativeArg[]): unknown {
    const r = this.call(...args);
    const kinds = (this.returnKinds ??= parseReturnKinds(this.schema()));
    const wrapAs = (v: unknown, kind: string): unknown => {
      if (v === null || v === undefined) return v;
      if (kind.startsWith('Tensor[]') || kind.startsWith('Tensor?[]')) return (v as TensorHandle[]).map((h) => (h === null ? null : new Tensor(h)));
      if (kind.startsWith('Tensor')) return new Tensor(v as TensorHandle);
      return v;
    };
    if (kinds.length === 1) return wrapAs(r, kinds[0]);
    return (r as unknown[]).map((v, i) => wrapAs(v, kinds[i] ?? ''));
  }
  /** The schema's arguments, in order: name and type (annotations such as (a!) removed). */
  arguments(): SchemaArgument[] {
    return (this.argumentKinds ??= parseArguments(this.schema()));
  }
  private returnKinds?: string[];
  private argumentKinds?: SchemaArgument[];
}

/** One argument of an operator schema: "int[1] dim" -> { name: 'dim', type: 'int[1]', optional: false, hasDefault }. */
export interface SchemaArgument {
  name: string;
  type: string;
  hasDefault: boolean;
}

/** Arguments of a schema: "aten::sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor". */
function parseArguments(schema: string): SchemaArgument[] {
  const open = schema.indexOf('(');
  const arrow = schema.lastIndexOf('->');
  const close = schema.lastIndexOf(')', arrow);
  const body = schema.slice(open + 1, close);
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(body.slice(start));
  return parts
    .map((p) => p.trim())
    .filter((p) => p && p !== '*')
    .map((p) => {
      const [decl, ...dflt] = p.split('=');
      const words = decl.replace(/\([^)]*\)/g, '').trim().split(/\s+/);
      return { type: words[0], name: words[words.length - 1], hasDefault: dflt.length > 0 };
    });
}

/** Return types of a schema: "aten::max.dim(...) -> (Tensor values, Tensor indices)" -> ["Tensor", "Tensor"]. */
function parseReturnKinds(schema: string): string[] {
  let ret = schema.slice(schema.lastIndexOf('->') + 2).trim();
  if (ret.startsWith('(') && ret.endsWith(')')) ret = ret.slice(1, -1);
  if (ret === '') return [];
  return ret.split(',').map((part) => part.trim().replace(/\([^)]*\)/g, '').split(/\s+/)[0]);
}

// The operators the Tensor methods below call.
const OP = {
  to: new Op('aten::to', 'dtype_layout'),
  contiguous: new Op('aten::contiguous'),
  clone: new Op('aten::clone'),
  detach: new Op('aten::detach'),
  requiresGrad_: new Op('aten::requires_grad_'),
  setData: new Op('aten::set_data'),
};

const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

// The Tensor ----------------------------------------------------------------------

export class Tensor {
  /** @internal */
  readonly #handle: TensorHandle;
  #meta: [number[], number, string, boolean] | undefined;
  #disposed = false;

  /** @internal Tensors are made by factory functions and ops, not with `new`. */
  constructor(handle: TensorHandle) {
    this.#handle = handle;
    // In a long synchronous loop the microtask never comes: flush every 1024
    // tensors so the list (and the disposed wrappers it holds) stays small.
    if (unregistered.push(this) >= 1024) registerPending();
    else if (!registrationQueued) {
      registrationQueued = true;
      queueMicrotask(registerPending);
    }
    const scope = scopes[scopes.length - 1];
    if (scope) scope.add(this);
  }

  /**
   * A brand check: true only for tensors this class constructed (unlike
   * instanceof, which Object.create(Tensor.prototype) fools, after which the
   * private fields throw plain TypeErrors).
   */
  static isTensor(v: unknown): v is Tensor {
    return typeof v === 'object' && v !== null && #handle in v;
  }

  /** @internal */
  get handle(): TensorHandle {
    if (this.#disposed) throw new DisposedError('Tensor was disposed; it cannot be used any more');
    return this.#handle;
  }

  private meta(): [number[], number, string, boolean] {
    return (this.#meta ??= native.meta(this.handle));
  }

  get shape(): number[] {
    return this.meta()[0].slice();
  }
  get dtype(): DType {
    return CODE_DTYPE[this.meta()[1]] ?? (`unsupported(${this.meta()[1]})` as DType);
  }
  get device(): Device {
    return this.meta()[2] as Device;
  }
  get ndim(): number {
    return this.meta()[0].length;
  }
  get numel(): number {
    return product(this.meta()[0]);
  }
  /** Size of one dimension (negative counts from the end). */
  size(dim?: number): number {
    const s = this.meta()[0];
    if (dim === undefined) return product(s);
    if (typeof dim !== 'number') invalid('dim', `an integer in [${-s.length}, ${s.length - 1}]`, dim);
    const d = dim < 0 ? dim + s.length : dim;
    if (!Number.isInteger(d) || d < 0 || d >= s.length) invalid('dim', `an integer in [${-s.length}, ${s.length - 1}]`, dim);
    return s[d];
  }
  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Releases the native memory now. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#registered) registry.unregister(this);
    native.dispose(this.#handle);
  }

  #registered = false;
  /** @internal Called once from the deferred registration (see registerPending). */
  _register(): void {
    if (this.#disposed || this.#registered) return;
    this.#registered = true;
    registry.register(this, this.#handle, this);
  }

  /**
   * @internal Replaces this tensor's data (storage, shape, dtype, device) with
   * src's, keeping the tensor object and its autograd identity, like
   * `param.data = src` in PyTorch. Used by Module.to() to keep parameter identity.
   */
  setData_(src: Tensor): this {
    OP.setData.call(this.handle, handleOf(src, 'src'));
    this.#meta = undefined;
    return this;
  }

  // Reading back -------------------------------------------------------------------

  /** A copy of the elements as a TypedArray (float16/bfloat16 read as Float32Array, bool as Uint8Array). */
  data(): TypedArray {
    const dtype = this.dtype;
    if (dtype === 'float16' || dtype === 'bfloat16') {
      const f = this.to('float32');
      try {
        return f.data();
      } finally {
        f.dispose();
      }
    }
    const buf = native.toBuffer(this.handle);
    switch (dtype) {
      case 'float32':
        return new Float32Array(buf);
      case 'float64':
        return new Float64Array(buf);
      case 'int32':
        return new Int32Array(buf);
      case 'int64':
        return new BigInt64Array(buf);
      case 'int16':
        return new Int16Array(buf);
      case 'int8':
        return new Int8Array(buf);
      default:
        return new Uint8Array(buf);
    }
  }

  /** The elements as nested arrays of numbers (booleans for bool tensors). */
  toArray(): NestedArray<number> | NestedArray<boolean> {
    const flat = this.data();
    const isBool = this.dtype === 'bool';
    const values: (number | boolean)[] = Array.from(flat as ArrayLike<number | bigint>, (v) => (isBool ? v !== 0 : Number(v)));
    const shape = this.shape;
    if (shape.length === 0) return values[0] as number;
    let i = 0;
    const build = (d: number): unknown[] => {
      const out: unknown[] = [];
      for (let k = 0; k < shape[d]; k++) out.push(d === shape.length - 1 ? values[i++] : build(d + 1));
      return out;
    };
    return build(0) as NestedArray<number>;
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.numel !== 1) invalid('tensor', 'a tensor with exactly one element', `shape [${this.shape}]`);
    const v = this.data()[0];
    return Number(v);
  }

  toString(): string {
    if (this.#disposed) return 'Tensor(disposed)';
    const grad = this.requiresGrad ? ', requiresGrad' : '';
    const body = this.numel <= 64 ? JSON.stringify(this.toArray()) : `[${this.numel} elements]`;
    return `Tensor(${body}, shape=[${this.shape}], dtype=${this.dtype}, device=${this.device}${grad})`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  // Conversion -----------------------------------------------------------------------

  /** Moves or casts: to('cuda'), to('float64'), to({ device, dtype }). Returns this tensor's data unchanged if nothing changes. */
  to(target: Device | DType | Tensor | { device?: Device; dtype?: DType; copy?: boolean; channelsLast?: boolean }): Tensor {
    let device: Device | undefined;
    let dtype: DType | undefined;
    let copy = false;
    let memoryFormat: number | null = null;
    if (typeof target === 'string') {
      if (DEVICE_RE.test(target)) device = target as Device;
      else if (Object.hasOwn(DTYPE_CODE, target)) dtype = target as DType;
      else invalid('to(target)', 'a device or dtype name', target);
    } else if (target instanceof Tensor) {
      // like PyTorch's x.to(other): other's dtype and device
      if (!Tensor.isTensor(target)) invalid('to(target)', 'a device, a dtype, a Tensor or { device, dtype }', target);
      ({ device, dtype } = target);
    } else if (target && typeof target === 'object') {
      ({ device, dtype } = target);
      copy = !!target.copy;
      if (target.channelsLast !== undefined) memoryFormat = target.channelsLast ? 2 : 0;
    } else invalid('to(target)', 'a device, a dtype or { device, dtype }', target);
    return OP.to.t(this.handle, dtype === undefined ? null : dtypeCode(dtype), null, device === undefined ? null : checkDevice(device), null, false, copy, memoryFormat);
  }
  cpu(): Tensor {
    return this.to('cpu');
  }
  cuda(index = 0): Tensor {
    if (!Number.isInteger(index) || index < 0) invalid('index', 'a non-negative integer CUDA device index', index);
    return this.to(`cuda:${index}`);
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  long(): Tensor {
    return this.to('int64');
  }
  int(): Tensor {
    return this.to('int32');
  }
  bool(): Tensor {
    return this.to('bool');
  }
  contiguous(options: { channelsLast?: boolean } = {}): Tensor {
    return OP.contiguous.t(this.handle, options?.channelsLast ? 2 : 0);
  }
  clone(): Tensor {
    return OP.clone.t(this.handle);
  }

  // Autograd -------------------------------------------------------------------------

  get requiresGrad(): boolean {
    return native.meta(this.handle)[3];
  }
  set requiresGrad(value: boolean) {
    this.requiresGrad_(value);
  }
  /** Sets requiresGrad in place (leaf tensors only, as in PyTorch); returns this. */
  requiresGrad_(value = true): this {
    // libtorch's C++ API silently ignores requires_grad = false on a non-leaf (it
    // keeps its grad_fn); PyTorch raises, and so do we.
    if (!value && !native.isLeaf(this.handle)) {
      throw new TorchError('requiresGrad_', 'you can only change requires_grad flags of leaf variables; use detach() to get a tensor cut from the graph');
    }
    try {
      native.setRequiresGrad(this.handle, !!value);
    } catch (e) {
      throw new TorchError('requiresGrad_', (e as Error).message);
    }
    return this;
  }
  /** The accumulated gradient, or null. Each access returns a new handle on the same memory. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g ? new Tensor(g) : null;
  }
  set grad(value: Tensor | null) {
    const g = value === null || value === undefined ? null : handleOf(value, 'grad');
    // As PyTorch: the C++ setter would accept a gradient that later breaks backward().
    if (value && (value.dtype !== this.dtype || value.shape.join() !== this.shape.join()))
      throw new TorchError('grad', `assigned grad has data of a different size or type: [${value.shape}] ${value.dtype} for a [${this.shape}] ${this.dtype} tensor`);
    native.setGrad(this.handle, g);
  }
  get gradFn(): string | null {
    return native.gradFn(this.handle);
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  retainGrad(): this {
    try {
      native.retainGrad(this.handle);
    } catch (e) {
      throw new TorchError('retainGrad', (e as Error).message.replace(/^retainGrad: /, ''));
    }
    return this;
  }
  /** Computes gradients of this tensor with respect to graph leaves. */
  backward(gradient?: Tensor | null, options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    options ??= {};
    if (!this.requiresGrad) throw new TorchError('backward', 'element 0 of tensors does not require grad and does not have a grad_fn');
    if ((gradient === undefined || gradient === null) && this.numel !== 1)
      invalid('backward(gradient)', 'a gradient tensor for a non-scalar output', gradient);
    try {
      native.backward([this.handle], [gradient ? handleOf(gradient, 'gradient') : null], !!options.retainGraph || !!options.createGraph, !!options.createGraph);
    } catch (e) {
      if (e instanceof TorchfaceError) throw e;
      throw new TorchError('backward', (e as Error).message);
    }
  }
  /** A tensor sharing storage, cut from the autograd graph. */
  detach(): Tensor {
    return OP.detach.t(this.handle);
  }
}
