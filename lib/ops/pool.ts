// Pooling: functions with PyTorch's names, and the Tensor methods of the same ops.
import type { NativeArg } from '../../binding';
import { Tensor } from '../core/tensor';
import { h, ints, op, opts } from './dispatch';

// Pooling -------------------------------------------------------------------------------------

export interface PoolOptions {
  stride?: number | number[];
  padding?: number | number[];
  dilation?: number | number[];
  ceilMode?: boolean;
  /** avg pooling only */
  countIncludePad?: boolean;
}
function maxPool(nd: number, x: Tensor, kernelSize: number | number[], o?: PoolOptions): Tensor {
  o = opts(o);
  return op(`aten::max_pool${nd}d`).t(h(x, 'input'), ints(kernelSize, 'kernelSize'), o.stride === undefined ? [] : ints(o.stride, 'stride'), ints(o.padding ?? 0, 'padding'), ints(o.dilation ?? 1, 'dilation'), !!o.ceilMode);
}
function avgPool(nd: number, x: Tensor, kernelSize: number | number[], o?: PoolOptions): Tensor {
  o = opts(o);
  const args: NativeArg[] = [h(x, 'input'), ints(kernelSize, 'kernelSize'), o.stride === undefined ? [] : ints(o.stride, 'stride'), ints(o.padding ?? 0, 'padding'), !!o.ceilMode, o.countIncludePad ?? true];
  if (nd > 1) args.push(null); // divisor_override
  return op(`aten::avg_pool${nd}d`).t(...args);
}
export const maxPool1d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => maxPool(1, x, k, o);
export const maxPool2d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => maxPool(2, x, k, o);
export const maxPool3d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => maxPool(3, x, k, o);
export const avgPool1d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => avgPool(1, x, k, o);
export const avgPool2d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => avgPool(2, x, k, o);
export const avgPool3d = (x: Tensor, k: number | number[], o?: PoolOptions): Tensor => avgPool(3, x, k, o);
export const adaptiveAvgPool1d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_avg_pool1d').t(h(x, 'input'), ints(size, 'outputSize'));
export const adaptiveAvgPool2d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_avg_pool2d').t(h(x, 'input'), typeof size === 'number' ? [size, size] : ints(size, 'outputSize'));
export const adaptiveAvgPool3d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_avg_pool3d').t(h(x, 'input'), typeof size === 'number' ? [size, size, size] : ints(size, 'outputSize'));
export const adaptiveMaxPool1d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_max_pool1d').ts(h(x, 'input'), ints(size, 'outputSize'))[0];
export const adaptiveMaxPool2d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_max_pool2d').ts(h(x, 'input'), typeof size === 'number' ? [size, size] : ints(size, 'outputSize'))[0];
export const adaptiveMaxPool3d = (x: Tensor, size: number | number[]): Tensor => op('aten::adaptive_max_pool3d').ts(h(x, 'input'), typeof size === 'number' ? [size, size, size] : ints(size, 'outputSize'))[0];
