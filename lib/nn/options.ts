// Option helpers shared by the layers: where parameters are made (device, dtype)
// and the checks of sizes, each naming the parameter.
import { invalid } from '../core/errors';
import type { DType, Device } from '../core';

export interface FactoryOptions {
  device?: Device;
  dtype?: DType;
}

export function positiveInt(v: unknown, name: string): number {
  if (!Number.isInteger(v) || (v as number) <= 0) invalid(name, 'a positive integer', v);
  return v as number;
}
export function tuple(v: number | number[], n: number, name: string): number[] {
  const arr = typeof v === 'number' ? new Array(n).fill(v) : v;
  if (!Array.isArray(arr) || arr.length !== n || arr.some((e) => !Number.isInteger(e) || e < 0)) invalid(name, `a non-negative integer or ${n} of them`, v);
  return arr;
}
