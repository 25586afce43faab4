// MobileNet-v1 (width 1.0) as used by face-api's SSD face detector, in PyTorch
// layouts: conv_0 is a full 3x3 conv (BN folded into weight + bias), conv_1 ..
// conv_13 are depthwise (groups = C) 3x3 conv -> BatchNorm (eps 1e-3, not folded,
// as face-api computes it) -> ReLU6 -> pointwise 1x1 conv (BN folded) -> ReLU6.
// Padding is TF 'same', done with an explicit pad (bottom/right for stride 2 on
// even sizes). See docs/faceapi-architecture.md section (b).
//
// Besides the SSD detector, this is a general feature network: features(x,
// layers) returns named intermediate maps (conv_0 ... conv_13), and
// MOBILENET_V1_LAYERS gives each layer's stride and receptive field.
import * as path from 'path';
import { invalid } from '../core/errors';
import { faceApiModelDir, readTfjsWeights } from '../io/tfjs';
import { Module } from '../nn';
import * as F from '../ops';
import { Device, Tensor, tidy } from '../core';
import { TfWeights, conv2dSame } from './tf-layers';

/** TF's batchNorm epsilon as stored in face-api (float32 of 0.001). */
export const BN_EPS = 0.0010000000474974513;

export const MOBILENET_V1_LAYER_NAMES = Array.from({ length: 14 }, (_, i) => `conv_${i}`);

/** Channels out of each layer and the stride of its (first) 3x3 conv. */
const SPEC: { out: number; stride: number }[] = [
  { out: 32, stride: 2 },
  { out: 64, stride: 1 },
  { out: 128, stride: 2 },
  { out: 128, stride: 1 },
  { out: 256, stride: 2 },
  { out: 256, stride: 1 },
  { out: 512, stride: 2 },
  { out: 512, stride: 1 },
  { out: 512, stride: 1 },
  { out: 512, stride: 1 },
  { out: 512, stride: 1 },
  { out: 512, stride: 1 },
  { out: 1024, stride: 2 },
  { out: 1024, stride: 1 },
];

export interface LayerGeometry {
  layer: string;
  channels: number;
  /** Stride of this layer's own 3x3 conv. */
  layerStride: number;
  /** Total stride w.r.t. the input: distance in input pixels between neighbouring units. */
  stride: number;
  /** Side of the (square) receptive field in input pixels. */
  receptiveField: number;
  /**
   * Input-pixel coordinate of the centre of unit (0, 0)'s receptive field, for inputs
   * whose side is a multiple of 32 (TF 'same' padding: before-padding 0 at stride 2,
   * 1 at stride 1). Unit (i, j) is centred at (offset + i * stride, offset + j * stride).
   */
  offset: number;
  /** Output side for a 512 x 512 input (the SSD input size). */
  sizeAt512: number;
}

/** Receptive field, stride and centre of every layer (the 1x1 pointwise convs do not change them). */
export const MOBILENET_V1_LAYERS: LayerGeometry[] = (() => {
  const rows: LayerGeometry[] = [];
  let jump = 1;
  let rf = 1;
  let start = 0; // input coordinate of the first pixel of unit 0's receptive field
  let size = 512;
  SPEC.forEach((s, i) => {
    const padBefore = s.stride === 2 ? 0 : 1; // k = 3, even input
    rf += 2 * jump;
    start -= padBefore * jump;
    jump *= s.stride;
    size = Math.ceil(size / s.stride);
    rows.push({ layer: `conv_${i}`, channels: s.out, layerStride: s.stride, stride: jump, receptiveField: rf, offset: start + (rf - 1) / 2, sizeAt512: size });
  });
  return rows;
})();

/** conv_1 .. conv_13: depthwise 3x3 + BN + ReLU6, pointwise 1x1 (+ folded BN) + ReLU6. */
export class DepthwiseSeparable extends Module {
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly stride: number,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const d = conv2dSame(x, this.param('depthwise_weight'), null, this.stride, this.inChannels);
      const bn = F.batchNorm(d, this.buffer('bn_running_mean'), this.buffer('bn_running_var'), { weight: this.param('bn_weight'), bias: this.param('bn_bias'), eps: BN_EPS });
      const a = F.clamp(bn, 0, 6);
      return F.clamp(F.conv2d(a, this.param('pointwise_weight'), this.param('pointwise_bias')), 0, 6);
    });
  }
  extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, stride=${this.stride}`;
  }
}

/** conv_0: full 3x3 conv, stride 2, BN folded, ReLU6. */
export class ConvBnRelu6 extends Module {
  constructor(readonly stride: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return tidy(() => F.clamp(conv2dSame(x, this.param('weight'), this.param('bias'), this.stride), 0, 6));
  }
  extraRepr(): string {
    return `stride=${this.stride}`;
  }
}

export interface MobileNetV1LoadOptions {
  device?: Device;
  /** Path of face-api's ssd_mobilenetv1 weights manifest (default: the bundled model). */
  manifest?: string;
}

/**
 * The SSD-MobileNet-v1 backbone. Input: N x 3 x H x W images with values 0..255
 * (as imageToTensor gives); scaled to [-1, 1] inside, as face-api does (x / 127.5 - 1).
 * Weights are frozen (requiresGrad false); gradients w.r.t. the input still flow.
 */
export class MobileNetV1 extends Module {
  readonly layers: Module[] = [];
  constructor() {
    super();
    let cin = 3;
    SPEC.forEach((s, i) => {
      const m = i === 0 ? new ConvBnRelu6(s.stride) : new DepthwiseSeparable(cin, s.out, s.stride);
      this.layers.push(this.registerModule(`conv_${i}`, m));
      cin = s.out;
    });
  }

  /** Loads the weights of face-api's SSD model (its MobilenetV1/* tensors). */
  static async pretrained(options: MobileNetV1LoadOptions = {}): Promise<MobileNetV1> {
    const manifest = options.manifest ?? path.join(faceApiModelDir(), 'ssd_mobilenetv1_model-weights_manifest.json');
    const w = new TfWeights(await readTfjsWeights(manifest), 'ssd_mobilenetv1');
    const m = MobileNetV1.fromWeights(w);
    if (options.device && options.device !== 'cpu') m.to(options.device);
    return m;
  }

  /** Builds the backbone from face-api SSD weights (TF names `MobilenetV1/...`). */
  static fromWeights(w: TfWeights): MobileNetV1 {
    const m = new MobileNetV1();
    const c0 = m.layers[0];
    c0.registerParameter('weight', w.get('MobilenetV1/Conv2d_0_pointwise/weights', 'conv'));
    c0.registerParameter('bias', w.get('MobilenetV1/Conv2d_0_pointwise/convolution_bn_offset', 'vector'));
    for (let i = 1; i <= 13; i++) {
      const l = m.layers[i];
      const d = `MobilenetV1/Conv2d_${i}_depthwise`;
      const p = `MobilenetV1/Conv2d_${i}_pointwise`;
      l.registerParameter('depthwise_weight', w.get(`${d}/depthwise_weights`, 'depthwise'));
      l.registerParameter('bn_weight', w.get(`${d}/BatchNorm/gamma`, 'vector'));
      l.registerParameter('bn_bias', w.get(`${d}/BatchNorm/beta`, 'vector'));
      l.registerBuffer('bn_running_mean', w.get(`${d}/BatchNorm/moving_mean`, 'vector'));
      l.registerBuffer('bn_running_var', w.get(`${d}/BatchNorm/moving_variance`, 'vector'));
      l.registerParameter('pointwise_weight', w.get(`${p}/weights`, 'conv'));
      l.registerParameter('pointwise_bias', w.get(`${p}/convolution_bn_offset`, 'vector'));
    }
    m.requiresGrad_(false);
    return m.eval();
  }

  /** 0..255 pixels -> [-1, 1] (padding pixels of value 0 become -1, as in face-api). */
  static normalize(x: Tensor): Tensor {
    return tidy(() => F.sub(F.div(x, 127.5), 1));
  }

  /** Output of conv_13 (N x 1024 x H/32 x W/32) for 0..255 input. */
  forward(x: Tensor): Tensor {
    const out = this.features(x, ['conv_13']);
    return out.get('conv_13')!;
  }

  /**
   * Runs the layers up to the deepest requested one and returns the requested
   * outputs by name (`conv_0` ... `conv_13`). `x` has values 0..255 unless
   * `options.normalized` says it is already in [-1, 1].
   */
  features(x: Tensor, layers: string[] = MOBILENET_V1_LAYER_NAMES, options: { normalized?: boolean } = {}): Map<string, Tensor> {
    if (!Array.isArray(layers) || layers.length === 0) invalid('layers', `a non-empty array of layer names (${MOBILENET_V1_LAYER_NAMES[0]} ... ${MOBILENET_V1_LAYER_NAMES[13]})`, layers);
    const wanted = new Set<number>();
    for (const name of layers) {
      const i = MOBILENET_V1_LAYER_NAMES.indexOf(name);
      if (i < 0) invalid('layers', `names among ${MOBILENET_V1_LAYER_NAMES[0]} ... ${MOBILENET_V1_LAYER_NAMES[13]}`, name);
      wanted.add(i);
    }
    if (x.ndim !== 4 || x.shape[1] !== 3) invalid('x', 'an N x 3 x H x W tensor', `shape [${x.shape}]`);
    const last = Math.max(...wanted);
    return tidy(() => {
      const out = new Map<string, Tensor>();
      let h = options.normalized ? x : MobileNetV1.normalize(x);
      for (let i = 0; i <= last; i++) {
        h = (this.layers[i] as ConvBnRelu6).forward(h);
        if (wanted.has(i)) out.set(`conv_${i}`, h);
      }
      return out;
    });
  }
}
