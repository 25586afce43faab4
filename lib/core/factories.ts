// Making tensors: from JS data (arrays, typed arrays, Buffers, raw bytes), the
// factories with torch's names (zeros, randn, arange, ...) and the seed of
// libtorch's random generators.
import { invalid } from './errors';
import { native } from './native';
import { DType, DTYPE_CODE, ELEMENT_SIZE, NestedArray, TypedArray, dtypeCode } from './dtype';
import { Device, checkDevice } from './device';
import { Op, Tensor, handleOf } from './tensor';

const OP = {
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
