// Convolutions (and the oneDNN layout for them): functions with PyTorch's names, and the Tensor methods of the same ops.
import type { TensorHandle } from '../../binding';
import { TorchError, invalid } from '../core/errors';
import { native } from '../core/native';
import { Tensor } from '../core/tensor';
import { tidy } from '../core/memory';
import { zeros } from '../core/factories';
import { h, int, int2, ints, op, opts } from './dispatch';
import { permute, reshape } from './shape';

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
  const padding = ints(o.padding ?? 0, 'padding');
  const hx = h(x, 'input');
  const hw = h(weight, 'weight');
  // The unboxed entry (undefined while a trace records: then the generic call, which records it).
  let r: TensorHandle | undefined;
  try {
    r = native.conv(nd as 1 | 2 | 3, hx, hw, b, stride, padding, dilation, groups);
  } catch (e) {
    throw new TorchError(`aten::conv${nd}d`, (e as Error).message);
  }
  return r !== undefined ? new Tensor(r) : op(`aten::conv${nd}d`).t(hx, hw, b, stride, padding, dilation, groups);
}
export const conv1d = (x: Tensor, weight: Tensor, bias?: Tensor | null, options?: ConvOptions): Tensor => conv(1, x, weight, bias, options);
export const conv2d = (x: Tensor, weight: Tensor, bias?: Tensor | null, options?: ConvOptions): Tensor => conv(2, x, weight, bias, options);
export const conv3d = (x: Tensor, weight: Tensor, bias?: Tensor | null, options?: ConvOptions): Tensor => conv(3, x, weight, bias, options);

// oneDNN's blocked memory format (libtorch's "mkldnn" layout, CPU, float32): a
// network whose activations stay in it runs its convolutions without a reorder
// per call, with weights reordered once (mkldnnPackConv2dWeight). On the face
// recognition net (traced, 1 thread) batch 1 took 4.8 ms instead of channels-last's
// 6.2, batch 16 the same. Such tensors support conv, relu, add, pooling and toDense();
// most other ops (and data()) need toDense() first. The fused networks now prefer
// onednnConv2d below where the build has it (FaceModel's default on the CPU).
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

// Convolutions straight through oneDNN, with their post-ops fused (native/onednn.cc registers
// torchface::conv2d_onednn; traces record it like any operator). Against aten::mkldnn_convolution
// it caches each primitive and reordered weight, can use Winograd for 3x3 stride-1 kernels, and
// adds a residual and applies relu inside the convolution. The face recognition net at batch 1,
// 1 thread: convolutions 6.0 ms through aten, 3.0 ms here. Inference only (no gradient).
// Activations stay in oneDNN's blocked layout, here a plain tensor [N, C / B, H, W, B].
let blockKnown: number | undefined;
const ACTIVATIONS = [null, 'relu', 'relu6'];
/**
 * The channel block B of the blocked layout (16 with AVX-512, else 8), or 0 when this build has no
 * oneDNN convolutions (built without libdnnl-dev, or against a CUDA libtorch).
 */
export function onednnBlock(): number {
  if (blockKnown === undefined) {
    try {
      blockKnown = op('torchface::onednn_block').call() as number;
    } catch {
      blockKnown = 0;
    }
  }
  return blockKnown;
}

export interface OnednnConv2dOptions {
  stride?: number | number[];
  /** One number, [height, width], or [top, left, bottom, right] (TensorFlow's SAME pads more at the bottom and right). */
  padding?: number | number[];
  groups?: number;
  /** Of the output: 'blocked' ([N, C / B, H, W, B], the default) or 'channelsLast'. */
  layout?: 'blocked' | 'channelsLast';
  /** Applied to conv + bias + residual, fused: relu, or relu6 (clamped to 0..6, as MobileNets use). */
  activation?: 'relu' | 'relu6' | null;
  /** Added to the output inside the convolution: a tensor of the output's shape and layout. */
  residual?: Tensor | null;
  /** Use Winograd F(2x2, 3x3) where oneDNN has it (3x3, stride 1, AVX-512); results differ from direct convolution by float32 rounding (~1e-6 relative). */
  winograd?: boolean;
}

/**
 * conv2d of a CPU float32 input — NCHW, channels-last, or blocked (toBlocked) — with a dense OIHW
 * weight (reordered for oneDNN once and cached while the weight lives unchanged), through oneDNN
 * with relu and a residual add fused. Needs onednnBlock() > 0.
 */
export function onednnConv2d(x: Tensor, weight: Tensor, bias: Tensor | null, o: OnednnConv2dOptions = {}): Tensor {
  o = opts(o);
  if (!onednnBlock()) invalid('onednnConv2d', 'a build with oneDNN convolutions (libdnnl-dev at build time, a CPU libtorch)', 'a build without them');
  const layout = o.layout ?? 'blocked';
  if (layout !== 'blocked' && layout !== 'channelsLast') invalid('options.layout', "'blocked' or 'channelsLast'", layout);
  const activation = ACTIVATIONS.indexOf(o.activation ?? null);
  if (activation < 0) invalid('options.activation', "'relu', 'relu6' or null", o.activation);
  const p = typeof o.padding === 'number' || o.padding === undefined ? [o.padding ?? 0] : o.padding;
  if (!Array.isArray(p) || ![1, 2, 4].includes(p.length)) invalid('options.padding', 'a number, [height, width] or [top, left, bottom, right]', o.padding);
  const padding = p.length === 4 ? ints(p, 'padding') : [...int2(p, 'padding'), ...int2(p, 'padding')];
  return op('torchface::conv2d_onednn').t(h(x, 'input'), h(weight, 'weight'), bias ? h(bias, 'bias') : null, int2(o.stride ?? 1, 'stride'), padding, int(o.groups ?? 1, 'groups'), layout === 'blocked' ? 2 : 1, activation, o.residual ? h(o.residual, 'residual') : null, !!o.winograd);
}

/**
 * Whether a convolution of these tensors may run through onednnConv2d: a build that has it, CPU
 * float32 tensors, and no gradient to record (autograd off, or none of them requires grad).
 */
export function onednnInference(...tensors: (Tensor | null | undefined)[]): boolean {
  if (!onednnBlock()) return false;
  if (!tensors.every((t) => !t || (t.device === 'cpu' && t.dtype === 'float32'))) return false;
  return !native.isGradEnabled() || !tensors.some((t) => t?.requiresGrad);
}

/** N x C x H x W (C a multiple of onednnBlock()) -> the blocked layout [N, C / B, H, W, B]. */
export function toBlocked(x: Tensor): Tensor {
  const b = onednnBlock();
  if (!Tensor.isTensor(x) || x.ndim !== 4 || !b || x.shape[1] % b !== 0) invalid('x', `an N x C x H x W tensor with C a multiple of ${b || 'the oneDNN block (none in this build)'}`, Tensor.isTensor(x) ? `shape [${x.shape}]` : x);
  const [n, c, hh, ww] = x.shape;
  return tidy(() => permute(reshape(x, [n, c / b, b, hh, ww]), [0, 1, 3, 4, 2]).contiguous());
}

/** The blocked layout [N, C / B, H, W, B] -> a contiguous N x C x H x W tensor. */
export function fromBlocked(x: Tensor): Tensor {
  checkBlocked(x);
  const [n, cb, hh, ww, b] = x.shape;
  return tidy(() => reshape(permute(x, [0, 1, 4, 2, 3]), [n, cb * b, hh, ww]));
}

/**
 * Max or average pooling (no padding, floor mode) of a blocked tensor [N, C / B, H, W, B], through
 * oneDNN; the result is blocked too. Needs onednnBlock() > 0.
 */
export function blockedPool2d(x: Tensor, kernelSize: number | number[], o: { stride?: number | number[]; mode?: 'max' | 'avg' } = {}): Tensor {
  o = opts(o);
  checkBlocked(x);
  const mode = o.mode ?? 'max';
  if (mode !== 'max' && mode !== 'avg') invalid('options.mode', "'max' or 'avg'", mode);
  const k = int2(kernelSize, 'kernelSize');
  return op('torchface::pool2d_onednn').t(h(x, 'input'), k, int2(o.stride ?? k, 'stride'), mode === 'avg');
}

function checkBlocked(x: unknown): asserts x is Tensor {
  if (!Tensor.isTensor(x) || x.ndim !== 5) invalid('x', 'a blocked [N, C / B, H, W, B] tensor', Tensor.isTensor(x) ? `shape [${x.shape}]` : x);
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
