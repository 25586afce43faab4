// The Tensor class: creation, reading back, devices and dtypes, memory
// management (dispose / tidy / finalizer) and autograd. The operators live in
// ops.ts, which also adds them to Tensor.prototype as methods, PyTorch style:
// x.mul(w).sum(). This module does not import ops.ts (no import cycle);
// whatever loads the package (index.ts) loads ops.ts too.
import type { NativeArg, NativeResult, TensorHandle } from '../binding';
import { ArgumentError, DisposedError, TorchError, TorchfaceError, describe, invalid } from './errors';
import { native } from './native';

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'bool';
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
export type TypedArray = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array;
export type NestedArray<T> = T | NestedArray<T>[];

// c10::ScalarType codes (stable across libtorch versions).
const DTYPE_CODE: Record<DType, number> = { uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4, float16: 5, float32: 6, float64: 7, bool: 11, bfloat16: 15 };
const CODE_DTYPE: Record<number, DType> = Object.fromEntries(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]));
export const DTYPES = Object.keys(DTYPE_CODE) as DType[];

export function dtypeCode(dtype: DType): number {
  // hasOwn: 'toString' in DTYPE_CODE is true, and a non-string key would be converted.
  const code = typeof dtype === 'string' && Object.hasOwn(DTYPE_CODE, dtype) ? DTYPE_CODE[dtype] : undefined;
  if (code === undefined) invalid('dtype', `one of ${DTYPES.join(', ')}`, dtype);
  return code;
}

export function isFloatingDType(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

const DEVICE_RE = /^(cpu|cuda(:\d+)?)$/;
export function checkDevice(device: unknown, parameter = 'device'): Device {
  if (typeof parameter !== 'string') parameter = 'device';
  if (typeof device !== 'string' || !DEVICE_RE.test(device)) invalid(parameter, "'cpu', 'cuda' or 'cuda:N'", device);
  if (device !== 'cpu') {
    const count = native.cudaDeviceCount();
    const index = device.includes(':') ? Number(device.split(':')[1]) : 0;
    if (count === 0) throw new ArgumentError(parameter, "'cpu' (CUDA is not available: this libtorch build or machine has no GPU)", device);
    if (index >= count) invalid(parameter, `a CUDA device index below ${count}`, device);
  }
  return device as Device;
}

// Memory scopes -------------------------------------------------------------

const scopes: Set<Tensor>[] = [];

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

/**
 * Runs fn and disposes every tensor created inside it except those it returns
 * (in an array, object or Map as well). fn must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  scopes.push(new Set());
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) throw new ArgumentError('tidy(fn)', 'a synchronous function', 'a function returning a Promise');
  } finally {
    const scope = scopes.pop()!;
    const kept = new Set<Tensor>();
    // eslint-disable-next-line no-unsafe-finally
    collectTensors(result!, kept);
    const parent = scopes[scopes.length - 1];
    for (const t of scope) {
      if (kept.has(t)) parent?.add(t);
      else t.dispose();
    }
  }
  return result;
}

/** Keeps a tensor alive past the enclosing tidy() scopes. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collectTensors(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 8 || v === null || typeof v !== 'object') return;
  if (Tensor.isTensor(v)) out.add(v);
  else if (Array.isArray(v)) for (const e of v) collectTensors(e, out, depth + 1);
  else if (v instanceof Map) for (const e of v.values()) collectTensors(e, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const e of Object.values(v)) collectTensors(e, out, depth + 1);
}

/** Disposes tensors (and tensors inside arrays / plain objects). */
export function dispose(...values: unknown[]): void {
  const found = new Set<Tensor>();
  for (const v of values) collectTensors(v, found);
  for (const t of found) t.dispose();
}

/** Live native tensors and the bytes they hold (views count their own size). */
export function memory(): { tensors: number; bytes: number; peakBytes: number } {
  return native.memory();
}

/**
 * Returns freed memory to the operating system. torchface keeps freed heap
 * memory for reuse (faster repeated work); a service calls this when a burst of
 * large requests is over, so that RSS falls back (the HTTP service does it itself).
 */
export function releaseMemory(): boolean {
  return native.releaseMemory();
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

const OP = {
  to: new Op('aten::to', 'dtype_layout'),
  contiguous: new Op('aten::contiguous'),
  clone: new Op('aten::clone'),
  detach: new Op('aten::detach'),
  zeros: new Op('aten::zeros'),
  ones: new Op('aten::ones'),
  full: new Op('aten::full'),
  rand: new Op('aten::rand'),
  randn: new Op('aten::randn'),
  randint: new Op('aten::randint', 'low'),
  randperm: new Op('aten::randperm'),
  arange: new Op('aten::arange', 'start_step'),
  linspace: new Op('aten::linspace'),
  eye: new Op('aten::eye'),
  empty: new Op('aten::empty', 'memory_format'),
  requiresGrad_: new Op('aten::requires_grad_'),
  setData: new Op('aten::set_data'),
};

// Creation -------------------------------------------------------------------------

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

export interface TensorFromDataOptions extends TensorOptions {
  /** Shape of the tensor; required to give a flat TypedArray more than one dimension. */
  shape?: number[];
}

function typedArrayDType(a: ArrayBufferView): DType | undefined {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return 'uint8';
  return undefined;
}

function checkShape(shape: unknown, parameter = 'shape'): number[] {
  if (!Array.isArray(shape)) invalid(parameter, 'an array of non-negative integers', shape);
  for (const d of shape) if (!Number.isInteger(d) || d < 0) invalid(parameter, 'an array of non-negative integers', shape);
  return shape as number[];
}

function inferShape(data: unknown, parameter: string): number[] {
  const shape: number[] = [];
  let cur = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0];
  }
  return shape.length ? shape : (invalid(parameter, 'a nested array', data) as never);
}

function flatten(data: unknown, shape: number[], out: number[], depth: number, parameter: string): void {
  if (depth === shape.length) {
    if (typeof data === 'number') out.push(data);
    else if (typeof data === 'boolean') out.push(data ? 1 : 0);
    else invalid(parameter, 'numbers or booleans', data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) invalid(parameter, `a rectangular nested array (length ${shape[depth]} at depth ${depth})`, data);
  for (const e of data) flatten(e, shape, out, depth + 1, parameter);
}

const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function bufferFor(values: ArrayLike<number>, dtype: DType): ArrayBufferView {
  switch (dtype) {
    case 'float64':
      return Float64Array.from(values);
    case 'int32':
      return Int32Array.from(values);
    case 'int64':
      return BigInt64Array.from(Array.from(values, (v) => BigInt(Math.trunc(v))));
    case 'int16':
      return Int16Array.from(values);
    case 'int8':
      return Int8Array.from(values);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(values, (v) => (dtype === 'bool' ? (v ? 1 : 0) : v));
    default:
      return Float32Array.from(values); // float32, and float16/bfloat16 via a cast below
  }
}

/**
 * Creates a tensor from a TypedArray, Buffer, nested array of numbers or
 * booleans, or a single number. Nested number arrays become float32 (JS has no
 * integer literals), boolean arrays bool, TypedArrays keep their type.
 */
export function tensor(data: TypedArray | Buffer | NestedArray<number> | NestedArray<boolean>, options: TensorFromDataOptions = {}): Tensor {
  if (options === null || typeof options !== 'object' || options instanceof Tensor) invalid('options', 'an object', options);
  if (options.dtype !== undefined) dtypeCode(options.dtype);
  if (options.device !== undefined) checkDevice(options.device);
  let shape: number[];
  let view: ArrayBufferView;
  let dtype: DType;
  if (ArrayBuffer.isView(data)) {
    const natural = typedArrayDType(data);
    if (!natural) invalid('data', 'a TypedArray of a tensor dtype', data);
    const length = (data as TypedArray).length;
    shape = options.shape !== undefined ? checkShape(options.shape) : [length];
    if (product(shape) !== length) invalid('shape', `a shape with ${length} elements`, options.shape);
    view = data;
    dtype = natural;
  } else if (typeof data === 'number' || typeof data === 'boolean') {
    shape = options.shape !== undefined ? checkShape(options.shape) : [];
    if (product(shape) !== 1) invalid('shape', 'a shape with 1 element', options.shape);
    dtype = typeof data === 'boolean' ? 'bool' : 'float32';
    view = bufferFor([Number(data)], dtype);
  } else if (Array.isArray(data)) {
    const inferred = inferShape(data, 'data');
    const values: number[] = [];
    flatten(data, inferred, values, 0, 'data');
    let first: unknown = data;
    while (Array.isArray(first)) first = first[0];
    dtype = typeof first === 'boolean' ? 'bool' : 'float32';
    shape = options.shape !== undefined ? checkShape(options.shape) : inferred;
    if (product(shape) !== values.length) invalid('shape', `a shape with ${values.length} elements`, options.shape);
    view = bufferFor(values, options.dtype && options.dtype !== 'float16' && options.dtype !== 'bfloat16' ? options.dtype : dtype);
    if (options.dtype && options.dtype !== 'float16' && options.dtype !== 'bfloat16') dtype = options.dtype;
  } else {
    return invalid('data', 'a TypedArray, Buffer, nested array of numbers or a number', data);
  }
  let t = new Tensor(native.fromBuffer(view, shape, DTYPE_CODE[dtype]));
  if ((options.dtype && options.dtype !== dtype) || (options.device && options.device !== 'cpu')) {
    const moved = t.to({ dtype: options.dtype, device: options.device });
    t.dispose();
    t = moved;
  }
  if (options.requiresGrad) t.requiresGrad_(true);
  return t;
}

function factoryArgs(options: TensorOptions | undefined, defaultDType?: DType): [number | null, null, string | null, null] {
  const o = options ?? {};
  if (typeof o !== 'object') invalid('options', 'an object', o);
  const dtype = o.dtype ?? defaultDType;
  return [dtype === undefined ? null : dtypeCode(dtype), null, o.device === undefined ? null : checkDevice(o.device), null];
}

function finishFactory(t: Tensor, options: TensorOptions | undefined): Tensor {
  if (options?.requiresGrad) t.requiresGrad_(true);
  return t;
}

export function zeros(shape: number[], options?: TensorOptions): Tensor {
  return finishFactory(OP.zeros.t(checkShape(shape), ...factoryArgs(options, 'float32')), options);
}
export function ones(shape: number[], options?: TensorOptions): Tensor {
  return finishFactory(OP.ones.t(checkShape(shape), ...factoryArgs(options, 'float32')), options);
}
export function full(shape: number[], value: number | boolean, options?: TensorOptions): Tensor {
  if (typeof value !== 'number' && typeof value !== 'boolean') invalid('value', 'a number or boolean', value);
  return finishFactory(OP.full.t(checkShape(shape), value, ...factoryArgs(options, typeof value === 'boolean' ? 'bool' : 'float32')), options);
}
export function empty(shape: number[], options?: TensorOptions): Tensor {
  return finishFactory(OP.empty.t(checkShape(shape), ...factoryArgs(options, 'float32')), options);
}
/** Uniform on [0, 1). */
export function rand(shape: number[], options?: TensorOptions): Tensor {
  return finishFactory(OP.rand.t(checkShape(shape), ...factoryArgs(options, 'float32')), options);
}
/** Standard normal. */
export function randn(shape: number[], options?: TensorOptions): Tensor {
  return finishFactory(OP.randn.t(checkShape(shape), ...factoryArgs(options, 'float32')), options);
}
/** Integers uniform in [low, high). */
export function randint(low: number, high: number, shape: number[], options?: TensorOptions): Tensor {
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low) invalid('low, high', 'integers with low < high', [low, high]);
  return OP.randint.t(low, high, checkShape(shape), ...factoryArgs(options, 'int64'));
}
export function randperm(n: number, options?: TensorOptions): Tensor {
  if (!Number.isInteger(n) || n < 0) invalid('n', 'a non-negative integer', n);
  return OP.randperm.t(n, ...factoryArgs(options, 'int64'));
}
/** arange(end) or arange(start, end, step); integers give int64 like PyTorch, unless dtype says otherwise. */
export function arange(start: number, end?: number, step = 1, options?: TensorOptions): Tensor {
  if (end === undefined) [start, end] = [0, start];
  for (const [n, v] of [['start', start], ['end', end], ['step', step]] as const) if (typeof v !== 'number' || !Number.isFinite(v)) invalid(n, 'a finite number', v);
  if (step === 0) invalid('step', 'a non-zero number', step);
  const integral = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  return finishFactory(OP.arange.t(start, end, step, ...factoryArgs(options, integral ? 'int64' : 'float32')), options);
}
export function linspace(start: number, end: number, steps: number, options?: TensorOptions): Tensor {
  if (!Number.isInteger(steps) || steps < 0) invalid('steps', 'a non-negative integer', steps);
  return finishFactory(OP.linspace.t(start, end, steps, ...factoryArgs(options, 'float32')), options);
}
export function eye(n: number, options?: TensorOptions): Tensor {
  if (!Number.isInteger(n) || n < 0) invalid('n', 'a non-negative integer', n);
  return finishFactory(OP.eye.t(n, ...factoryArgs(options, 'float32')), options);
}
export function zerosLike(t: Tensor, options?: TensorOptions): Tensor {
  handleOf(t, 'input');
  return zeros(t.shape, { dtype: t.dtype, device: t.device, ...options });
}
export function onesLike(t: Tensor, options?: TensorOptions): Tensor {
  handleOf(t, 'input');
  return ones(t.shape, { dtype: t.dtype, device: t.device, ...options });
}
export function randnLike(t: Tensor, options?: TensorOptions): Tensor {
  handleOf(t, 'input');
  return randn(t.shape, { dtype: t.dtype, device: t.device, ...options });
}

/** Seeds libtorch's random generators (CPU and CUDA). */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) invalid('seed', 'a non-negative integer', seed);
  native.manualSeed(seed);
}

/**
 * A CPU tensor from raw little-endian element bytes (any dtype, float16 and
 * bfloat16 included: the bytes are the IEEE half / bfloat16 bit patterns).
 * The bytes are copied.
 */
export function fromBytes(bytes: Uint8Array, shape: number[], dtype: DType): Tensor {
  if (!(bytes instanceof Uint8Array)) invalid('bytes', 'a Uint8Array', bytes);
  checkShape(shape);
  const code = dtypeCode(dtype);
  const size = ELEMENT_SIZE[dtype];
  if (bytes.byteLength !== product(shape) * size) invalid('bytes', `${product(shape) * size} bytes for shape [${shape}] of ${dtype}`, `${bytes.byteLength} bytes`);
  return new Tensor(native.fromBuffer(bytes, shape, code));
}

/** The tensor's elements as raw little-endian bytes (row-major, contiguous copy; float16/bfloat16 keep their bit patterns). */
export function toBytes(t: Tensor): Uint8Array {
  return new Uint8Array(native.toBuffer(handleOf(t, 'tensor')));
}

/** Bytes per element of each dtype. */
export const ELEMENT_SIZE: Readonly<Record<DType, number>> = { uint8: 1, int8: 1, bool: 1, int16: 2, float16: 2, bfloat16: 2, int32: 4, float32: 4, int64: 8, float64: 8 };

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

/** Runs fn with autograd recording off on this thread (fn must be synchronous). */
export function noGrad<T>(fn: () => T): T {
  const previous = native.setGradEnabled(false);
  try {
    const r = fn();
    if (r instanceof Promise) throw new ArgumentError('noGrad(fn)', 'a synchronous function', 'a function returning a Promise');
    return r;
  } finally {
    native.setGradEnabled(previous);
  }
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/** Gradients of outputs with respect to inputs, like torch.autograd.grad. */
export function grad(
  outputs: Tensor | Tensor[],
  inputs: Tensor | Tensor[],
  options: { gradOutputs?: (Tensor | null)[]; retainGraph?: boolean; createGraph?: boolean; allowUnused?: boolean } = {},
): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  options ??= {};
  const gradOutputs = options.gradOutputs ?? outs.map(() => null);
  if (!Array.isArray(gradOutputs) || gradOutputs.length !== outs.length) invalid('gradOutputs', `an array of ${outs.length} tensors or nulls`, gradOutputs);
  try {
    const r = native.autogradGrad(
      outs.map((t, i) => handleOf(t, `outputs[${i}]`)),
      ins.map((t, i) => handleOf(t, `inputs[${i}]`)),
      gradOutputs.map((g, i) => (g ? handleOf(g, `gradOutputs[${i}]`) : null)),
      options.retainGraph ?? null,
      !!options.createGraph,
      !!options.allowUnused,
    );
    return r.map((h) => (h ? new Tensor(h) : null));
  } catch (e) {
    if (e instanceof TorchfaceError) throw e; // ArgumentError / DisposedError from handleOf
    throw new TorchError('grad', (e as Error).message);
  }
}

export { describe };
