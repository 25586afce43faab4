// Shapes, indexing, padding and resampling: functions with PyTorch's names, and the Tensor methods of the same ops.
import { invalid } from '../core/errors';
import { DType, dtypeCode } from '../core/dtype';
import { Tensor } from '../core/tensor';
import { addTensorMethods, h, int, ints, num, op, tensors } from './dispatch';

// Shapes ---------------------------------------------------------------------------------

export const reshape = (x: Tensor, shape: number[]): Tensor => op('aten::reshape').t(h(x, 'input'), ints(shape, 'shape'));
export const view = (x: Tensor, shape: number[]): Tensor => op('aten::view').t(h(x, 'input'), ints(shape, 'shape'));
export const permute = (x: Tensor, dimsOrder: number[]): Tensor => op('aten::permute').t(h(x, 'input'), ints(dimsOrder, 'dims'));
export const transpose = (x: Tensor, dim0: number, dim1: number): Tensor => op('aten::transpose', 'int').t(h(x, 'input'), int(dim0, 'dim0'), int(dim1, 'dim1'));
export const squeeze = (x: Tensor, dim?: number): Tensor =>
  dim === undefined ? op('aten::squeeze').t(h(x, 'input')) : op('aten::squeeze', 'dim').t(h(x, 'input'), int(dim, 'dim'));
export const unsqueeze = (x: Tensor, dim: number): Tensor => op('aten::unsqueeze').t(h(x, 'input'), int(dim, 'dim'));
export const flatten = (x: Tensor, startDim = 0, endDim = -1): Tensor => op('aten::flatten', 'using_ints').t(h(x, 'input'), int(startDim, 'startDim'), int(endDim, 'endDim'));
export const unflatten = (x: Tensor, dim: number, sizes: number[]): Tensor => op('aten::unflatten', 'int').t(h(x, 'input'), int(dim, 'dim'), ints(sizes, 'sizes'));
export const expand = (x: Tensor, shape: number[]): Tensor => op('aten::expand').t(h(x, 'input'), ints(shape, 'shape'), false);
export const repeat = (x: Tensor, repeats: number[]): Tensor => op('aten::repeat').t(h(x, 'input'), ints(repeats, 'repeats'));
export const flip = (x: Tensor, dimsToFlip: number[]): Tensor => op('aten::flip').t(h(x, 'input'), ints(dimsToFlip, 'dims'));
export const cat = (xs: Tensor[], dim = 0): Tensor => op('aten::cat').t(tensors(xs, 'tensors'), int(dim, 'dim'));
export const stack = (xs: Tensor[], dim = 0): Tensor => op('aten::stack').t(tensors(xs, 'tensors'), int(dim, 'dim'));
export function split(x: Tensor, splitSize: number | number[], dim = 0): Tensor[] {
  if (Array.isArray(splitSize)) return op('aten::split_with_sizes').ts(h(x, 'input'), ints(splitSize, 'splitSizes'), int(dim, 'dim'));
  if (!Number.isInteger(splitSize) || splitSize <= 0) invalid('splitSize', 'a positive integer or an array of sizes', splitSize);
  return op('aten::split', 'Tensor').ts(h(x, 'input'), splitSize, int(dim, 'dim'));
}
export const chunk = (x: Tensor, chunks: number, dim = 0): Tensor[] => op('aten::chunk').ts(h(x, 'input'), int(chunks, 'chunks'), int(dim, 'dim'));
/** x[start:end:step] along dim (null for open ends, negatives count from the end). */
export const slice = (x: Tensor, dim: number, start: number | null = null, end: number | null = null, step = 1): Tensor =>
  op('aten::slice', 'Tensor').t(h(x, 'input'), int(dim, 'dim'), start === null ? null : int(start, 'start'), end === null ? null : int(end, 'end'), int(step, 'step'));
export const narrow = (x: Tensor, dim: number, start: number, length: number): Tensor => op('aten::narrow').t(h(x, 'input'), int(dim, 'dim'), int(start, 'start'), int(length, 'length'));
export const select = (x: Tensor, dim: number, index: number): Tensor => op('aten::select', 'int').t(h(x, 'input'), int(dim, 'dim'), int(index, 'index'));
export const indexSelect = (x: Tensor, dim: number, index: Tensor): Tensor => op('aten::index_select').t(h(x, 'input'), int(dim, 'dim'), h(index, 'index'));
export const gather = (x: Tensor, dim: number, index: Tensor): Tensor => op('aten::gather').t(h(x, 'input'), int(dim, 'dim'), h(index, 'index'), false);
export const scatter = (x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor => op('aten::scatter', 'src').t(h(x, 'input'), int(dim, 'dim'), h(index, 'index'), h(src, 'src'));
/** Advanced indexing x[i0, i1, ...] with index tensors (null for a full slice). */
export const index = (x: Tensor, indices: (Tensor | null)[]): Tensor =>
  op('aten::index', 'Tensor').t(h(x, 'input'), (Array.isArray(indices) ? indices : invalid('indices', 'an array of index tensors or nulls', indices)).map((t, i) => (t === null ? null : h(t, `indices[${i}]`))));
export const tril = (x: Tensor, diagonal = 0): Tensor => op('aten::tril').t(h(x, 'input'), int(diagonal, 'diagonal'));
export const triu = (x: Tensor, diagonal = 0): Tensor => op('aten::triu').t(h(x, 'input'), int(diagonal, 'diagonal'));
export const diagonal = (x: Tensor, offset = 0, dim1 = 0, dim2 = 1): Tensor => op('aten::diagonal').t(h(x, 'input'), int(offset, 'offset'), int(dim1, 'dim1'), int(dim2, 'dim2'));
export const cast = (x: Tensor, dtype: DType): Tensor => (h(x, 'input'), x.to(dtype));
export const dtypeOf = (dtype: DType): number => dtypeCode(dtype);

// Padding and resampling ----------------------------------------------------------------------

/** pad(x, [left, right, top, bottom, ...]) with mode 'constant' | 'reflect' | 'replicate' | 'circular'. */
export function pad(x: Tensor, padding: number[], mode: 'constant' | 'reflect' | 'replicate' | 'circular' = 'constant', value = 0): Tensor {
  if (!['constant', 'reflect', 'replicate', 'circular'].includes(mode)) invalid('mode', "'constant', 'reflect', 'replicate' or 'circular'", mode);
  if (mode === 'constant') return op('aten::constant_pad_nd').t(h(x, 'input'), ints(padding, 'pad'), num(value, 'value'));
  return op('aten::pad').t(h(x, 'input'), ints(padding, 'pad'), mode, null);
}

export interface InterpolateOptions {
  size?: number | number[];
  scaleFactor?: number | number[];
  mode?: 'nearest' | 'linear' | 'bilinear' | 'bicubic' | 'trilinear';
  alignCorners?: boolean;
}
/** Resizes N x C x (L | H x W | D x H x W) inputs, like torch.nn.functional.interpolate. */
export function interpolate(x: Tensor, options: InterpolateOptions): Tensor {
  h(x, 'input');
  if (options === null || typeof options !== 'object') invalid('options', 'an object with size or scaleFactor', options);
  const spatial = x.ndim - 2;
  if (spatial < 1 || spatial > 3) invalid('input', 'a 3-D, 4-D or 5-D tensor (N, C, spatial...)', `shape [${x.shape}]`);
  const mode = options.mode ?? 'nearest';
  const expand = (v: number | number[] | undefined, name: string, isInt: boolean): number[] | null => {
    if (v === undefined) return null;
    const arr = Array.isArray(v) ? v : new Array(spatial).fill(v);
    if (arr.length !== spatial || arr.some((e) => (isInt ? !Number.isInteger(e) || e <= 0 : typeof e !== 'number' || !(e > 0))))
      invalid(name, `${spatial} positive ${isInt ? 'integers' : 'numbers'}`, v);
    return arr;
  };
  const size = expand(options.size, 'size', true);
  const scale = size ? null : expand(options.scaleFactor, 'scaleFactor', false);
  if (!size && !scale) invalid('options', 'size or scaleFactor', options);
  const align = !!options.alignCorners;
  const input = h(x, 'input');
  if (mode === 'nearest') return op(`aten::upsample_nearest${spatial}d`, 'vec').t(input, size, scale);
  const expected = { linear: 1, bilinear: 2, bicubic: 2, trilinear: 3 }[mode];
  if (expected !== spatial) invalid('mode', `a mode for ${spatial} spatial dimension(s)`, mode);
  const name = { linear: 'upsample_linear1d', bilinear: 'upsample_bilinear2d', bicubic: 'upsample_bicubic2d', trilinear: 'upsample_trilinear3d' }[mode];
  return op(`aten::${name}`, 'vec').t(input, size, align, scale);
}


declare module '../core/tensor' {
  interface Tensor {
    reshape(shape: number[]): Tensor;
    view(shape: number[]): Tensor;
    permute(dims: number[]): Tensor;
    transpose(dim0: number, dim1: number): Tensor;
    t(): Tensor;
    squeeze(dim?: number): Tensor;
    unsqueeze(dim: number): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    expand(shape: number[]): Tensor;
    repeat(repeats: number[]): Tensor;
    flip(dims: number[]): Tensor;
    split(splitSize: number | number[], dim?: number): Tensor[];
    chunk(chunks: number, dim?: number): Tensor[];
    slice(dim: number, start?: number | null, end?: number | null, step?: number): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    select(dim: number, index: number): Tensor;
    indexSelect(dim: number, index: Tensor): Tensor;
    gather(dim: number, index: Tensor): Tensor;
  }
}

const methods = {
  reshape(this: Tensor, shape: number[]): Tensor {
    return reshape(this, shape);
  },
  view(this: Tensor, shape: number[]): Tensor {
    return view(this, shape);
  },
  permute(this: Tensor, dims: number[]): Tensor {
    return permute(this, dims);
  },
  transpose(this: Tensor, dim0: number, dim1: number): Tensor {
    return transpose(this, dim0, dim1);
  },
  t(this: Tensor): Tensor {
    return transpose(this, 0, 1);
  },
  squeeze(this: Tensor, dim?: number): Tensor {
    return squeeze(this, dim);
  },
  unsqueeze(this: Tensor, dim: number): Tensor {
    return unsqueeze(this, dim);
  },
  flatten(this: Tensor, startDim?: number, endDim?: number): Tensor {
    return flatten(this, startDim, endDim);
  },
  expand(this: Tensor, shape: number[]): Tensor {
    return expand(this, shape);
  },
  repeat(this: Tensor, repeats: number[]): Tensor {
    return repeat(this, repeats);
  },
  flip(this: Tensor, dims: number[]): Tensor {
    return flip(this, dims);
  },
  split(this: Tensor, splitSize: number | number[], dim?: number): Tensor[] {
    return split(this, splitSize, dim);
  },
  chunk(this: Tensor, chunks: number, dim?: number): Tensor[] {
    return chunk(this, chunks, dim);
  },
  slice(this: Tensor, dim: number, start?: number | null, end?: number | null, step?: number): Tensor {
    return slice(this, dim, start, end, step);
  },
  narrow(this: Tensor, dim: number, start: number, length: number): Tensor {
    return narrow(this, dim, start, length);
  },
  select(this: Tensor, dim: number, index: number): Tensor {
    return select(this, dim, index);
  },
  indexSelect(this: Tensor, dim: number, index: Tensor): Tensor {
    return indexSelect(this, dim, index);
  },
  gather(this: Tensor, dim: number, index: Tensor): Tensor {
    return gather(this, dim, index);
  },
} satisfies Partial<Record<keyof Tensor, unknown>>;
// Each implementation matches its declaration above.
const typed: Pick<Tensor, keyof typeof methods> = methods;
addTensorMethods(typed);
