// Feature networks for style transfer and unit visualisation: a common
// interface over VGG-19 (torchvision layout, weights supplied by the user) and
// the MobileNet-v1 backbone of face-api's SSD detector (weights ship in the
// @vladmandic/face-api npm package, so it works with no download).
import * as fs from 'fs';
import { ArgumentError, FileFormatError, invalid } from '../core/errors';
import { rawToTensor } from '../io/state-dict';
import { loadSafetensorsSync } from '../io/safetensors';
import { loadTorchStateDictBytes } from '../io/pickle';
import { BN_EPS, MOBILENET_V1_LAYERS, MobileNetV1 } from '../models/mobilenet-v1';
import { conv2dSame } from '../models/tf-layers';
import { Module, StateDict } from '../nn';
import { Conv2d, MaxPool2d, ReLU, Sequential } from '../nn';
import * as F from '../ops';
import { Device, Tensor, noGrad, tensor, tidy } from '../core';

/** Where a layer's units look in the input. */
export interface LayerInfo {
  name: string;
  channels: number;
  /** Input pixels between neighbouring units. */
  stride: number;
  /** Side of the square receptive field, in input pixels. */
  receptiveField: number;
  /** Input coordinate of the centre of unit (0, 0)'s receptive field; unit (i, j) is at offset + (i, j) * stride. */
  offset: number;
}

/** Layers and weights a network suggests for style transfer. */
export interface StylePreset {
  contentLayer: string;
  styleLayers: Record<string, number>;
  alpha: number;
  beta: number;
  /** Adam learning rate in 0..255 pixel units. */
  learningRate: number;
}

export interface FeatureNetwork {
  readonly name: string;
  /** Every layer features() can return, input to output. */
  readonly layers: LayerInfo[];
  readonly preset: StylePreset;
  /** Activations of the named layers for x: N x 3 x H x W, RGB values 0..255 (normalisation is done inside). */
  features(x: Tensor, layers: string[]): Map<string, Tensor>;
  to(device: Device): this;
  dispose(): void;
}

export function layerInfo(net: FeatureNetwork, name: string): LayerInfo {
  const l = net.layers.find((e) => e.name === name);
  if (!l) invalid('layer', `one of ${net.layers.map((e) => e.name).join(', ')} (network ${net.name})`, name);
  return l;
}

/** Gatys et al.'s choice: content conv4_2, style conv1_1 ... conv5_1 with equal lambdas. alpha/beta for torchvision's ImageNet-normalised input (not tuned here: no VGG-19 weights on this machine). */
export const VGG19_PRESET: StylePreset = Object.freeze({
  contentLayer: 'conv4_2',
  styleLayers: Object.freeze({ conv1_1: 0.2, conv2_1: 0.2, conv3_1: 0.2, conv4_1: 0.2, conv5_1: 0.2 }) as Record<string, number>,
  alpha: 1,
  beta: 1e6,
  learningRate: 4,
});

/**
 * MobileNet-v1 (face-api SSD backbone): Gatys's recipe at matching strides (2, 4, 8, 16),
 * on pre-ReLU6 maps; beta chosen by eye on the generated images in docs/images
 * (1e4 keeps more content, 1e6 is barely different from 1e5).
 */
export const MOBILENET_PRESET: StylePreset = Object.freeze({
  contentLayer: 'conv_7',
  styleLayers: Object.freeze({ conv_0: 0.2, conv_1: 0.2, conv_3: 0.2, conv_5: 0.2, conv_7: 0.2 }) as Record<string, number>,
  alpha: 1,
  beta: 1e5,
  learningRate: 4,
});

/** Layer names of a network, without loading it. */
export function networkLayerNames(name: FeatureNetworkName): string[] {
  return name === 'vgg19' ? VGG19_LAYERS.map((l) => l.name) : MOBILENET_V1_LAYERS.map((l) => l.layer);
}

export function networkPreset(name: FeatureNetworkName): StylePreset {
  return name === 'vgg19' ? VGG19_PRESET : MOBILENET_PRESET;
}

// VGG-19 ------------------------------------------------------------------------------

/** torchvision's vgg19 `features` configuration (numbers: conv out channels, 'M': 2x2 max-pool). */
const VGG19_CFG: (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'];

/** ImageNet mean and std (RGB, 0..1), as torchvision's models expect. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

/** conv{b}_{i}: the ReLU output after that conv (as Caffe's in-place ReLU gives); pool{b}: the max-pool output. Index into `features`. */
export const VGG19_LAYERS: (LayerInfo & { index: number })[] = (() => {
  const rows: (LayerInfo & { index: number })[] = [];
  let idx = 0;
  let block = 1;
  let conv = 0;
  let jump = 1;
  let rf = 1;
  let start = 0;
  for (const v of VGG19_CFG) {
    if (v === 'M') {
      rf += jump; // k = 2: (k - 1) * jump
      jump *= 2;
      rows.push({ name: `pool${block}`, channels: rows[rows.length - 1].channels, stride: jump, receptiveField: rf, offset: start + (rf - 1) / 2, index: idx });
      idx += 1;
      block += 1;
      conv = 0;
    } else {
      conv += 1;
      rf += 2 * jump;
      start -= jump; // padding 1
      rows.push({ name: `conv${block}_${conv}`, channels: v, stride: jump, receptiveField: rf, offset: start + (rf - 1) / 2, index: idx + 1 });
      idx += 2;
    }
  }
  return rows;
})();

/**
 * VGG-19's convolutional part with torchvision's module names (`features.0`
 * ... `features.34`), so a torchvision `vgg19-*.pth` state dict loads as is
 * (its `classifier.*` entries are ignored). Frozen; gradients flow to the input.
 */
export class Vgg19 extends Module implements FeatureNetwork {
  readonly name = 'vgg19';
  readonly layers: LayerInfo[] = VGG19_LAYERS.map(({ index: _i, ...l }) => l);
  readonly preset: StylePreset = VGG19_PRESET;
  readonly seq: Sequential;
  constructor() {
    super();
    const mods: Module[] = [];
    let cin = 3;
    for (const v of VGG19_CFG) {
      if (v === 'M') mods.push(new MaxPool2d(2, { stride: 2 }));
      else {
        mods.push(new Conv2d(cin, v, 3, { padding: 1 }), new ReLU());
        cin = v;
      }
    }
    this.seq = this.registerModule('features', new Sequential(...mods));
    this.requiresGrad_(false);
    this.eval();
  }

  /** Loads torchvision names (`features.N.weight`); other entries (classifier.*) are ignored. */
  load(dict: StateDict | Record<string, Tensor>): this {
    const src = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const own = new Map<string, Tensor>();
    for (const [k, v] of src) if (k.startsWith('features.')) own.set(k, v);
    if (own.size === 0) throw new FileFormatError("VGG-19 weights: no 'features.N.weight' entries (expected a torchvision vgg19 state dict)");
    this.loadStateDict(own);
    return this;
  }

  static normalize(x: Tensor): Tensor {
    return tidy(() => {
      const mean = tensor(IMAGENET_MEAN.map((m) => m * 255), { shape: [1, 3, 1, 1] }).to(x.device);
      const std = tensor(IMAGENET_STD.map((s) => s * 255), { shape: [1, 3, 1, 1] }).to(x.device);
      return F.div(F.sub(x, mean), std);
    });
  }

  features(x: Tensor, layers: string[]): Map<string, Tensor> {
    if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[1] !== 3) invalid('x', 'an N x 3 x H x W tensor', x instanceof Tensor ? `shape [${x.shape}]` : x);
    const want = new Map<number, string>();
    for (const name of layers) {
      const l = VGG19_LAYERS.find((e) => e.name === name);
      if (!l) invalid('layers', `VGG-19 layer names (${VGG19_LAYERS.map((e) => e.name).join(', ')})`, name);
      want.set(l.index, name);
    }
    const last = Math.max(...want.keys());
    return tidy(() => {
      const out = new Map<string, Tensor>();
      let h = Vgg19.normalize(x);
      for (let i = 0; i <= last; i++) {
        h = this.seq.at(i).forward(h) as Tensor;
        const name = want.get(i);
        if (name) out.set(name, h);
      }
      return out;
    });
  }

  forward(x: Tensor): Tensor {
    return this.features(x, ['pool5']).get('pool5')!;
  }
}

/** Reads a state dict from .safetensors or a torch.save'd file (.pth/.pt), as tensors by dotted name. */
export function readStateDict(file: string): StateDict {
  if (typeof file !== 'string' || !fs.existsSync(file)) invalid('weights', 'the path of an existing .safetensors or .pth file', file);
  const bytes = fs.readFileSync(file);
  const out: StateDict = new Map();
  const isSafetensors = file.endsWith('.safetensors') || (bytes.length > 8 && bytes[8] === 0x7b);
  // Both loaders live in lib/io; features need float32 of the floating-point entries.
  const source = isSafetensors ? new Map([...loadSafetensorsSync(file).tensors].map(([k, raw]) => [k, rawToTensor(raw)] as const)) : loadTorchStateDictBytes(bytes, file);
  for (const [k, t] of source) {
    if (t.dtype === 'float32') out.set(k, t);
    else {
      if (t.dtype === 'float64' || t.dtype === 'float16' || t.dtype === 'bfloat16') out.set(k, t.to('float32'));
      t.dispose();
    }
  }
  return out;
}

/** VGG-19 with weights from a torchvision state dict file (.pth) or safetensors with the same names. */
export function loadVgg19(file: string): Vgg19 {
  const dict = readStateDict(file);
  const net = new Vgg19();
  try {
    net.load(dict);
  } finally {
    for (const t of dict.values()) t.dispose();
  }
  return net;
}

// MobileNet-v1 (face-api SSD backbone) -------------------------------------------------------

/** The MobileNet-v1 backbone of face-api's SSD face detector as a FeatureNetwork (layers conv_0 ... conv_13). */
export class MobileNetFeatures implements FeatureNetwork {
  readonly name = 'mobilenet';
  readonly layers: LayerInfo[] = MOBILENET_V1_LAYERS.map((l) => ({ name: l.layer, channels: l.channels, stride: l.stride, receptiveField: l.receptiveField, offset: l.offset }));
  readonly preset: StylePreset = MOBILENET_PRESET;
  /**
   * activation 'linear' (default) returns each layer's pointwise-conv output before
   * its ReLU6: unbounded, with a gradient everywhere (the clipped maps saturate at 6,
   * which caps how far the costs can fall); 'relu6' returns the network's own outputs.
   */
  constructor(
    readonly net: MobileNetV1,
    readonly activation: 'linear' | 'relu6' = 'linear',
  ) {}
  static async load(options: { device?: Device; activation?: 'linear' | 'relu6' } = {}): Promise<MobileNetFeatures> {
    return new MobileNetFeatures(await MobileNetV1.pretrained({ device: options.device }), options.activation);
  }
  features(x: Tensor, layers: string[]): Map<string, Tensor> {
    if (this.activation === 'relu6') return this.net.features(x, layers);
    if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[1] !== 3) invalid('x', 'an N x 3 x H x W tensor', x instanceof Tensor ? `shape [${x.shape}]` : x);
    const want = new Set<number>();
    for (const name of layers) {
      const i = MOBILENET_V1_LAYERS.findIndex((l) => l.layer === name);
      if (i < 0) invalid('layers', `names among conv_0 ... conv_13`, name);
      want.add(i);
    }
    const last = Math.max(...want);
    const L = this.net.layers;
    return tidy(() => {
      const out = new Map<string, Tensor>();
      let h = MobileNetV1.normalize(x);
      for (let i = 0; i <= last; i++) {
        const m = L[i];
        const stride = MOBILENET_V1_LAYERS[i].layerStride;
        // Intermediates are released as soon as they are used (autograd keeps what
        // backward needs): like Python's refcounting, this keeps the allocator
        // reusing warm memory instead of mapping fresh pages every iteration.
        let pre: Tensor;
        if (i === 0) pre = conv2dSame(h, m.param('weight'), m.param('bias'), stride);
        else {
          const cin = h.shape[1];
          const d = conv2dSame(h, m.param('depthwise_weight'), null, stride, cin);
          const bn = F.batchNorm(d, m.buffer('bn_running_mean'), m.buffer('bn_running_var'), { weight: m.param('bn_weight'), bias: m.param('bn_bias'), eps: BN_EPS });
          d.dispose();
          const a = F.clamp(bn, 0, 6);
          bn.dispose();
          pre = F.conv2d(a, m.param('pointwise_weight'), m.param('pointwise_bias'));
          a.dispose();
        }
        if (h !== x) h.dispose();
        if (want.has(i)) out.set(`conv_${i}`, pre);
        if (i < last) {
          h = F.clamp(pre, 0, 6);
          if (!want.has(i)) pre.dispose();
        }
      }
      return out;
    });
  }
  to(device: Device): this {
    this.net.to(device);
    return this;
  }
  dispose(): void {
    this.net.dispose();
  }
}

export type FeatureNetworkName = 'mobilenet' | 'vgg19';

/** Loads a feature network by name: 'mobilenet' (bundled weights) or 'vgg19' (weights: a .pth / .safetensors path). */
export async function loadFeatureNetwork(name: FeatureNetworkName = 'mobilenet', options: { weights?: string; device?: Device } = {}): Promise<FeatureNetwork> {
  let net: FeatureNetwork;
  if (name === 'mobilenet') net = await MobileNetFeatures.load();
  else if (name === 'vgg19') {
    if (!options.weights)
      throw new ArgumentError('weights', "a VGG-19 weights file (torchvision 'vgg19-*.pth' or a .safetensors with features.N names): VGG-19 weights do not ship with torchface", undefined);
    net = noGrad(() => loadVgg19(options.weights!));
  } else return invalid('network', "'mobilenet' or 'vgg19'", name);
  if (options.device && options.device !== 'cpu') net.to(options.device);
  return net;
}
