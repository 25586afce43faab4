// Convolutions (and the oneDNN layout for them): functions with PyTorch's names, and the Tensor methods of the same ops.
import { invalid } from '../core/errors';
import { Tensor } from '../core/tensor';
import { zeros } from '../core/factories';
import { h, int, int2, ints, op, opts } from './dispatch';

// Convolution and pooling ------------------------------------------------------------------------

export interface ConvOptions {
  stride?: number | number[];
  /** Numbers, or 'same' / 'valid' (stride 1 only for 'same', as in PyTorch). */
  padding?: number | number[] | 'same' | 'valid';
  dilation?: number | number[];
  groups?: number;
}

function conv(nd: number, x: Tensor, weight: Tensor, bias: Tensor | null | undefined, o?: ConvOptions): Tensor {
  o = opts(o);
  if (Tensor.isTensor(x) && x.ndim !== nd + 2 && x.ndim !== nd + 1) invalid('input', `a ${nd + 2}-D tensor (N, C, spatial...) or ${nd + 1}-D unbatched`, `shape [${x.shape}]`);
  const stride = ints(o.stride ?? 1, 'stride');
  const dilation = ints(o.dilation ?? 1, 'dilation');
  const groups = int(o.groups ?? 1, 'groups');
  const b = bias ? h(bias, 'bias') : null;
  if (o.padding === 'same' || o.padding === 'valid') {
    return op(`aten::conv${nd}d`, 'padding').t(h(x, 'input'), h(weight, 'weight'), b, stride, o.padding, dilation, groups);
  }
  return op(`aten::conv${nd}d`).t(h(x, 'input'), h(weight, 'weight'), b, stride, ints(o.padding ?? 0, 'padding'), dilation, groups);
}
export const conv1d = (x: Tensor, weight: Tensor, bias?: Tensor | null, options?: ConvOptions): Tensor => conv(1, x, weight, bias, options);
export const conv2d = (x: Tensor, weight: Tensor, bias?: Tensor | null, options?: ConvOptions): Tensor => conv(2, x, weight, bias, options);
export const conv3d = (x: Tensor, weight: Tensor, bias?: Tensor | null, options?: ConvOptions): Tensor => conv(3, x, weight, bias, options);

// oneDNN's blocked memory format (libtorch's "mkldnn" layout, CPU, float32): a
// network whose activations stay in it runs its convolutions without a reorder
// per call, with weights reordered once (mkldnnPackConv2dWeight). On the face
// recognition net (traced, 1 thread) batch 1 took 4.8 ms instead of channels-last's
// 6.2, batch 16 the same (docs/models.md has the ONNX comparison). Such tensors support
// conv, relu, add, pooling and toDense(); most other ops (and data()) need toDense() first.
let mkldnnKnown: boolean | undefined;
/** Whether this libtorch build has oneDNN (MKL-DNN) tensors. */
export function mkldnnAvailable(): boolean {
  if (mkldnnKnown === undefined) {
    try {
      const z = zeros([1]);
      try {
        toMkldnn(z).dispose();
      } finally {
        z.dispose();
      }
      mkldnnKnown = true;
    } catch {
      mkldnnKnown = false;
    }
  }
  return mkldnnKnown;
}
/** A dense CPU float32 tensor as a oneDNN (mkldnn-layout) tensor. */
export const toMkldnn = (x: Tensor): Tensor => op('aten::to_mkldnn').t(h(x, 'input'), null);
/** A oneDNN (mkldnn-layout) tensor back as an ordinary dense tensor. */
export const toDense = (x: Tensor): Tensor => op('aten::to_dense').t(h(x, 'input'), null);
/** The settings of a oneDNN conv2d: a packed weight is made for them and used with them. */
export type MkldnnConv2dOptions = Omit<ConvOptions, 'padding'> & { padding?: number | number[] };
/** A conv2d weight (O x I/groups x kH x kW, dense) reordered once into the blocked format oneDNN wants for these settings. */
export function mkldnnPackConv2dWeight(weight: Tensor, o: MkldnnConv2dOptions = {}): Tensor {
  const dense = toMkldnn(weight);
  try {
    return op('aten::mkldnn_reorder_conv2d_weight').t(h(dense, 'weight'), int2(o.padding ?? 0, 'padding'), int2(o.stride ?? 1, 'stride'), int2(o.dilation ?? 1, 'dilation'), int(o.groups ?? 1, 'groups'));
  } finally {
    dense.dispose();
  }
}
/** conv2d of a oneDNN tensor with a packed weight (mkldnnPackConv2dWeight, same settings); the result is a oneDNN tensor. */
export function mkldnnConv2d(x: Tensor, packedWeight: Tensor, bias: Tensor | null, o: MkldnnConv2dOptions = {}): Tensor {
  return op('aten::mkldnn_convolution').t(h(x, 'input'), h(packedWeight, 'weight'), bias ? h(bias, 'bias') : null, int2(o.padding ?? 0, 'padding'), int2(o.stride ?? 1, 'stride'), int2(o.dilation ?? 1, 'dilation'), int(o.groups ?? 1, 'groups'));
}

export interface ConvTransposeOptions {
  stride?: number | number[];
  padding?: number | number[];
  outputPadding?: number | number[];
  groups?: number;
  dilation?: number | number[];
}
function convTranspose(nd: number, x: Tensor, weight: Tensor, bias: Tensor | null | undefined, o?: ConvTransposeOptions): Tensor {
  o = opts(o);
  // libtorch names the overloads conv_transpose1d (default), conv_transpose2d.input, conv_transpose3d.input.
  return op(`aten::conv_transpose${nd}d`, nd === 1 ? '' : 'input').t(
    h(x, 'input'),
    h(weight, 'weight'),
    bias ? h(bias, 'bias') : null,
    ints(o.stride ?? 1, 'stride'),
    ints(o.padding ?? 0, 'padding'),
    ints(o.outputPadding ?? 0, 'outputPadding'),
    int(o.groups ?? 1, 'groups'),
    ints(o.dilation ?? 1, 'dilation'),
  );
}
export const convTranspose1d = (x: Tensor, w: Tensor, b?: Tensor | null, o?: ConvTransposeOptions): Tensor => convTranspose(1, x, w, b, o);
export const convTranspose2d = (x: Tensor, w: Tensor, b?: Tensor | null, o?: ConvTransposeOptions): Tensor => convTranspose(2, x, w, b, o);
export const convTranspose3d = (x: Tensor, w: Tensor, b?: Tensor | null, o?: ConvTransposeOptions): Tensor => convTranspose(3, x, w, b, o);
