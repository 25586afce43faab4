// Helpers for running TensorFlow(.js)-trained nets in libtorch: TF 'same'
// padding done explicitly (TF puts the odd extra pixel at the bottom/right,
// PyTorch's symmetric padding would shift every stride-2 layer), and weight
// conversion from TF layouts (HWIO, depthwise [kh,kw,C,1], fc [in,out]) to
// PyTorch's (OIHW, [C,1,kh,kw], [out,in]).
import { ModelMismatchError, TorchfaceError } from '../core/errors';
import { Module } from '../nn/module';
import type { TfjsTensor } from '../io/tfjs';
import * as F from '../ops';
import { Tensor, tensor } from '../core';

/** TF 'same' padding of one spatial dim: [before, after] (the extra pixel goes after). */
export function samePad(inSize: number, k: number, s: number): [number, number] {
  const out = Math.ceil(inSize / s);
  const total = Math.max((out - 1) * s + k - inSize, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** Pads an N x C x H x W tensor as TF 'same' would for a k x k window with stride s (value: fill). */
export function padSame(x: Tensor, k: number, s: number, value = 0): Tensor {
  const [t, b] = samePad(x.shape[2], k, s);
  const [l, r] = samePad(x.shape[3], k, s);
  if (t + b + l + r === 0) return x;
  return F.pad(x, [l, r, t, b], 'constant', value);
}

/** conv2d with TF 'same' padding (explicit pad, then a padding-free conv). */
export function conv2dSame(x: Tensor, weight: Tensor, bias: Tensor | null, stride = 1, groups = 1): Tensor {
  const k = weight.shape[2];
  const p = padSame(x, k, stride);
  const out = F.conv2d(p, weight, bias, { stride, groups });
  if (p !== x) p.dispose();
  return out;
}

export type TfLayout = 'conv' | 'depthwise' | 'fc' | 'vector';

/** A TF weight as a contiguous float32 tensor in PyTorch layout. */
export function fromTf(w: TfjsTensor, layout: TfLayout): Tensor {
  const t = tensor(w.data instanceof Float32Array ? w.data : Float32Array.from(w.data), { shape: w.shape });
  if (layout === 'vector') return t;
  const order = layout === 'conv' ? [3, 2, 0, 1] : layout === 'depthwise' ? [2, 3, 0, 1] : [1, 0];
  const p = t.permute(order);
  const c = p.contiguous();
  t.dispose();
  p.dispose();
  return c;
}

/** Looks weights up by TF name, failing with the model and name when one is missing. */
export class TfWeights {
  constructor(
    readonly map: Map<string, TfjsTensor>,
    readonly model: string,
  ) {}
  raw(name: string): TfjsTensor {
    const w = this.map.get(name);
    if (!w) throw new ModelMismatchError(`${this.model}: weight '${name}' is missing from the manifest`);
    return w;
  }
  get(name: string, layout: TfLayout): Tensor {
    return fromTf(this.raw(name), layout);
  }
}

/**
 * A module that only holds parameters under their checkpoint's names (TF groups
 * weights per layer); the owning network's forward uses them.
 */
export class ParameterGroup extends Module {
  forward(): never {
    throw new TorchfaceError('a ParameterGroup holds parameters only: its owning network runs the forward pass');
  }
}
