// Element types: torchface's names for libtorch's scalar types, their c10::ScalarType
// codes (what crosses the native boundary) and sizes. The one table every module uses
// (tensors, model files, safetensors, ONNX).
import { invalid } from './errors';

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'bool';
export type TypedArray = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array;
export type NestedArray<T> = T | NestedArray<T>[];

// c10::ScalarType codes (stable across libtorch versions).
export const DTYPE_CODE: Record<DType, number> = { uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4, float16: 5, float32: 6, float64: 7, bool: 11, bfloat16: 15 };
export const CODE_DTYPE: Record<number, DType> = Object.fromEntries(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]));
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

/** Bytes per element of each dtype. */
export const ELEMENT_SIZE: Readonly<Record<DType, number>> = { uint8: 1, int8: 1, bool: 1, int16: 2, float16: 2, bfloat16: 2, int32: 4, float32: 4, int64: 8, float64: 8 };
