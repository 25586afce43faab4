// Reductions, sorting and top-k: functions with PyTorch's names, and the Tensor methods of the same ops.
import { Tensor } from '../core/tensor';
import { addTensorMethods, h, int, ints, num, op, opts } from './dispatch';

// Reductions -------------------------------------------------------------------------------

const dims = (dim: number | number[] | undefined): number[] | null => (dim === undefined ? null : ints(dim, 'dim'));

export function sum(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  if (dim === undefined && !keepdim) return op('aten::sum').t(h(x, 'input'), null);
  return op('aten::sum', 'dim_IntList').t(h(x, 'input'), dims(dim) ?? [], keepdim, null);
}
export function mean(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  if (dim === undefined && !keepdim) return op('aten::mean').t(h(x, 'input'), null);
  return op('aten::mean', 'dim').t(h(x, 'input'), dims(dim) ?? [], keepdim, null);
}
export function prod(x: Tensor, dim?: number, keepdim = false): Tensor {
  if (dim === undefined) return op('aten::prod').t(h(x, 'input'), null);
  return op('aten::prod', 'dim_int').t(h(x, 'input'), int(dim, 'dim'), keepdim, null);
}
export function max(x: Tensor): Tensor;
export function max(x: Tensor, dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
export function max(x: Tensor, dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
  if (dim === undefined) return op('aten::max').t(h(x, 'input'));
  const [values, indices] = op('aten::max', 'dim').ts(h(x, 'input'), int(dim, 'dim'), keepdim);
  return { values, indices };
}
export function min(x: Tensor): Tensor;
export function min(x: Tensor, dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
export function min(x: Tensor, dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
  if (dim === undefined) return op('aten::min').t(h(x, 'input'));
  const [values, indices] = op('aten::min', 'dim').ts(h(x, 'input'), int(dim, 'dim'), keepdim);
  return { values, indices };
}
export const argmax = (x: Tensor, dim?: number, keepdim = false): Tensor => op('aten::argmax').t(h(x, 'input'), dim === undefined ? null : int(dim, 'dim'), keepdim);
export const argmin = (x: Tensor, dim?: number, keepdim = false): Tensor => op('aten::argmin').t(h(x, 'input'), dim === undefined ? null : int(dim, 'dim'), keepdim);
export const any = (x: Tensor): Tensor => op('aten::any').t(h(x, 'input'));
export const all = (x: Tensor): Tensor => op('aten::all').t(h(x, 'input'));
export const logsumexp = (x: Tensor, dim: number | number[], keepdim = false): Tensor => op('aten::logsumexp').t(h(x, 'input'), ints(dim, 'dim'), keepdim);
/** Vector p-norm over all elements or the given dims. */
export const norm = (x: Tensor, p = 2, dim?: number | number[], keepdim = false): Tensor =>
  op('aten::linalg_vector_norm').t(h(x, 'input'), num(p, 'p'), dims(dim), keepdim, null);
export function variance(x: Tensor, dim?: number | number[], options: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
  options = opts(options);
  return op('aten::var', 'correction').t(h(x, 'input'), dims(dim), options.unbiased === false ? 0 : 1, !!options.keepdim);
}
export function std(x: Tensor, dim?: number | number[], options: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
  options = opts(options);
  return op('aten::std', 'correction').t(h(x, 'input'), dims(dim), options.unbiased === false ? 0 : 1, !!options.keepdim);
}
export function topk(x: Tensor, k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
  const [values, indices] = op('aten::topk').ts(h(x, 'input'), int(k, 'k'), int(dim, 'dim'), largest, sorted);
  return { values, indices };
}
export function sort(x: Tensor, dim = -1, descending = false): { values: Tensor; indices: Tensor } {
  const [values, indices] = op('aten::sort').ts(h(x, 'input'), int(dim, 'dim'), descending);
  return { values, indices };
}
export const argsort = (x: Tensor, dim = -1, descending = false): Tensor => op('aten::argsort').t(h(x, 'input'), int(dim, 'dim'), descending);
export const cumsum = (x: Tensor, dim: number): Tensor => op('aten::cumsum').t(h(x, 'input'), int(dim, 'dim'), null);


declare module '../core/tensor' {
  interface Tensor {
    max(): Tensor;
    max(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
    min(): Tensor;
    min(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
    sum(dim?: number | number[], keepdim?: boolean): Tensor;
    mean(dim?: number | number[], keepdim?: boolean): Tensor;
    argmax(dim?: number, keepdim?: boolean): Tensor;
    argmin(dim?: number, keepdim?: boolean): Tensor;
    norm(p?: number, dim?: number | number[], keepdim?: boolean): Tensor;
    var(dim?: number | number[], options?: { unbiased?: boolean; keepdim?: boolean }): Tensor;
    std(dim?: number | number[], options?: { unbiased?: boolean; keepdim?: boolean }): Tensor;
    topk(k: number, dim?: number, largest?: boolean, sorted?: boolean): { values: Tensor; indices: Tensor };
    sort(dim?: number, descending?: boolean): { values: Tensor; indices: Tensor };
    argsort(dim?: number, descending?: boolean): Tensor;
  }
}

const methods = {
  sum(this: Tensor, dim?: number | number[], keepdim?: boolean): Tensor {
    return sum(this, dim, keepdim);
  },
  mean(this: Tensor, dim?: number | number[], keepdim?: boolean): Tensor {
    return mean(this, dim, keepdim);
  },
  max: function (this: Tensor, dim?: number, keepdim?: boolean): Tensor | { values: Tensor; indices: Tensor } {
    return dim === undefined ? max(this) : max(this, dim, keepdim);
  } as Tensor['max'],
  min: function (this: Tensor, dim?: number, keepdim?: boolean): Tensor | { values: Tensor; indices: Tensor } {
    return dim === undefined ? min(this) : min(this, dim, keepdim);
  } as Tensor['min'],
  argmax(this: Tensor, dim?: number, keepdim?: boolean): Tensor {
    return argmax(this, dim, keepdim);
  },
  argmin(this: Tensor, dim?: number, keepdim?: boolean): Tensor {
    return argmin(this, dim, keepdim);
  },
  norm(this: Tensor, p?: number, dim?: number | number[], keepdim?: boolean): Tensor {
    return norm(this, p, dim, keepdim);
  },
  var(this: Tensor, dim?: number | number[], options?: { unbiased?: boolean; keepdim?: boolean }): Tensor {
    return variance(this, dim, options);
  },
  std(this: Tensor, dim?: number | number[], options?: { unbiased?: boolean; keepdim?: boolean }): Tensor {
    return std(this, dim, options);
  },
  topk(this: Tensor, k: number, dim?: number, largest?: boolean, sorted?: boolean): { values: Tensor; indices: Tensor } {
    return topk(this, k, dim, largest, sorted);
  },
  sort(this: Tensor, dim?: number, descending?: boolean): { values: Tensor; indices: Tensor } {
    return sort(this, dim, descending);
  },
  argsort(this: Tensor, dim?: number, descending?: boolean): Tensor {
    return argsort(this, dim, descending);
  },
} satisfies Partial<Record<keyof Tensor, unknown>>;
// Each implementation matches its declaration above.
const typed: Pick<Tensor, keyof typeof methods> = methods;
addTensorMethods(typed);
