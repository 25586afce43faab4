// face-api's face recognition network (dlib's ResNet-34-like "metric" net, 128-d
// descriptor) as torchface Modules, with PyTorch-layout parameters:
// docs/faceapi-architecture.md (a).
//
// Parameter names mirror face-api's TF names with '/' -> '.':
//   conv32_down/conv/filters  [7,7,3,32] (HWIO)  -> conv32_down.conv.weight  [32,3,7,7] (OIHW)
//   conv32_1/conv1/conv/bias                     -> conv32_1.conv1.conv.bias
//   conv32_1/conv1/scale/weights | biases        -> conv32_1.conv1.scale.weight | bias
//   fc [256,128] (x @ W)                         -> fc.weight [128,256] (F.linear, no bias)
//
// FaceRecognitionNet is trainable (conv, bias and the per-channel scale layers
// are all parameters). fuse() returns FusedFaceRecognitionNet, the inference
// fast path: each scale layer (a frozen BatchNorm) and the input normalisation
// folded into the preceding conv's weight and bias.
//
// Quirks reproduced (they are what face-api computes):
//  * "down" convs are 3x3 stride 2 with NO padding, the shortcut a 2x2/2 avg-pool;
//  * in conv256_down / conv256_down_out the conv branch is one pixel smaller than
//    the pooled shortcut and is zero-padded at the bottom/right;
//  * the shortcut of a block that doubles the channels gets zero channels appended;
//  * the head is a global mean then a 256x128 matmul, without normalisation.
import * as path from 'path';
import { ModelMismatchError, invalid } from '../core/errors';
import { faceApiModelDir, readTfjsWeights } from '../io/tfjs';
import { TfWeights } from './tf-layers';
import { Conv2d, Linear } from '../nn';
import { Module } from '../nn';
import * as F from '../ops';
import { Tensor, noGrad, ones, tensor, tidy, zeros } from '../core';

/** Side of the square input the network was trained on. */
export const RECOGNITION_INPUT_SIZE = 150;
/** Length of the descriptor. */
export const DESCRIPTOR_SIZE = 128;
/** Per-channel RGB mean face-api subtracts before dividing by 255. */
export const RECOGNITION_MEAN_RGB = [122.782, 117.001, 104.298];

/** [name, input channels, output channels, downsampling block] after the 7x7 stem, in order. */
export const RECOGNITION_BLOCKS: [string, number, number, boolean][] = [
  ['conv32_1', 32, 32, false],
  ['conv32_2', 32, 32, false],
  ['conv32_3', 32, 32, false],
  ['conv64_down', 32, 64, true],
  ['conv64_1', 64, 64, false],
  ['conv64_2', 64, 64, false],
  ['conv64_3', 64, 64, false],
  ['conv128_down', 64, 128, true],
  ['conv128_1', 128, 128, false],
  ['conv128_2', 128, 128, false],
  ['conv256_down', 128, 256, true],
  ['conv256_1', 256, 256, false],
  ['conv256_2', 256, 256, false],
  ['conv256_down_out', 256, 256, true],
];

/** Per-channel affine `x * weight + bias` (face-api's "scale layer": a BatchNorm folded at export). */
export class Scale extends Module {
  constructor(readonly channels: number) {
    super();
    this.registerParameter('weight', ones([channels]));
    this.registerParameter('bias', zeros([channels]));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const shape = [1, this.channels, 1, 1];
      return F.add(F.mul(x, this.param('weight').view(shape)), this.param('bias').view(shape));
    });
  }
  extraRepr(): string {
    return `${this.channels}`;
  }
}

/** face-api convLayer: conv (+bias) -> scale -> optional ReLU. Padding 1 ('same' for 3x3 stride 1) or 0 ('valid'). */
export class ConvLayer extends Module {
  readonly conv: Conv2d;
  readonly scale: Scale;
  constructor(
    inChannels: number,
    outChannels: number,
    readonly kernelSize: number,
    readonly stride: number,
    readonly relu: boolean,
  ) {
    super();
    // stride 1: TF 'same' (symmetric for 3x3); stride 2: TF 'valid'
    const padding = stride === 1 ? (kernelSize - 1) / 2 : 0;
    this.conv = this.registerModule('conv', new Conv2d(inChannels, outChannels, kernelSize, { stride, padding }));
    this.scale = this.registerModule('scale', new Scale(outChannels));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const y = this.scale.forward(this.conv.forward(x));
      return this.relu ? F.relu(y) : y;
    });
  }
  /** conv weight and bias with the scale layer folded in (detached copies). */
  fused(): { weight: Tensor; bias: Tensor } {
    return noGrad(() =>
      tidy(() => {
        const s = this.scale.param('weight');
        const weight = F.mul(this.conv.weight, s.view([-1, 1, 1, 1])).contiguous();
        const bias = F.add(F.mul(this.conv.bias!, s), this.scale.param('bias')).contiguous();
        return { weight, bias };
      }),
    );
  }
}

/** Residual block: relu(conv2(conv1(x)) + shortcut(x)); "down" blocks use stride 2 and an avg-pool shortcut. */
export class ResidualBlock extends Module {
  readonly conv1: ConvLayer;
  readonly conv2: ConvLayer;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly down: boolean,
  ) {
    super();
    if (!down && inChannels !== outChannels) invalid('outChannels', `${inChannels} (a block that is not "down" keeps the channel count)`, outChannels);
    if (down && outChannels !== inChannels && outChannels !== 2 * inChannels) invalid('outChannels', `${inChannels} or ${2 * inChannels}`, outChannels);
    this.conv1 = this.registerModule('conv1', new ConvLayer(inChannels, outChannels, 3, down ? 2 : 1, true));
    this.conv2 = this.registerModule('conv2', new ConvLayer(outChannels, outChannels, 3, 1, false));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => residualJoin(x, this.conv2.forward(this.conv1.forward(x)), this.down));
  }
  extraRepr(): string {
    return `${this.inChannels} -> ${this.outChannels}${this.down ? ', down' : ''}`;
  }
}

/** relu(branch + shortcut(x)) with face-api's padding quirks for "down" blocks. */
function residualJoin(x: Tensor, branch: Tensor, down: boolean): Tensor {
  if (!down) return F.relu(F.add(branch, x));
  let sc = F.avgPool2d(x, 2, { stride: 2 });
  let out = branch;
  const dh = sc.shape[2] - out.shape[2];
  const dw = sc.shape[3] - out.shape[3];
  if (dh || dw) out = F.pad(out, [0, dw, 0, dh]); // zero column right, zero row bottom
  const dc = out.shape[1] - sc.shape[1];
  if (dc) sc = F.pad(sc, [0, 0, 0, 0, 0, dc]); // zero channels appended
  return F.relu(F.add(sc, out));
}

function checkInput(x: unknown): asserts x is Tensor {
  if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[1] !== 3) invalid('x', 'an N x 3 x H x W image batch (values 0..255)', x instanceof Tensor ? `shape [${x.shape}]` : x);
  if (x.shape[2] < 64 || x.shape[3] < 64) invalid('x', 'images of at least 64 x 64 pixels (the network is built for 150 x 150)', `shape [${x.shape}]`);
}

/**
 * The recognition network. forward(x): x is N x 3 x 150 x 150 RGB with values
 * 0..255 (already padded to square and resized, see FaceModel); returns the
 * N x 128 descriptors (not normalised; face-api compares them by Euclidean distance).
 */
export class FaceRecognitionNet extends Module {
  readonly conv32_down: ConvLayer;
  readonly blocks: [string, ResidualBlock][] = [];
  readonly fc: Linear;

  /** A randomly initialised network (scale layers = identity). Use load() for face-api's weights. */
  constructor() {
    super();
    this.registerBuffer('mean', tensor(RECOGNITION_MEAN_RGB, { shape: [1, 3, 1, 1] }));
    this.conv32_down = this.registerModule('conv32_down', new ConvLayer(3, 32, 7, 2, true));
    for (const [name, cin, cout, down] of RECOGNITION_BLOCKS) this.blocks.push([name, this.registerModule(name, new ResidualBlock(cin, cout, down))]);
    this.fc = this.registerModule('fc', new Linear(256, DESCRIPTOR_SIZE, { bias: false }));
  }

  /** face-api's faceRecognitionNet with its bundled weights (or another manifest of the same layout). */
  static async load(manifest = path.join(faceApiModelDir(), 'face_recognition_model-weights_manifest.json')): Promise<FaceRecognitionNet> {
    const w = new TfWeights(await readTfjsWeights(manifest), 'face_recognition_model');
    const net = new FaceRecognitionNet();
    const dict = new Map<string, Tensor>();
    try {
      for (const [name] of net.namedParameters()) dict.set(name, tfWeight(w, name));
      net.loadStateDict(dict, { strict: false }); // 'mean' is a constant buffer, not in the manifest
    } catch (e) {
      net.dispose();
      throw e;
    } finally {
      for (const t of dict.values()) t.dispose();
    }
    const extra = [...w.map.keys()].filter((k) => !dict.has(torchName(k)));
    if (extra.length) {
      net.dispose();
      throw new ModelMismatchError(`face_recognition_model: unexpected weights ${extra.slice(0, 5).join(', ')}`);
    }
    return net.eval();
  }

  forward(x: Tensor): Tensor {
    checkInput(x);
    return tidy(() => {
      let out = F.div(F.sub(x, this.buffer('mean')!), 255);
      out = this.conv32_down.forward(out);
      out = F.maxPool2d(out, 3, { stride: 2 });
      for (const [, block] of this.blocks) out = block.forward(out);
      return this.fc.forward(F.mean(out, [2, 3]));
    });
  }

  /**
   * The inference fast path: the same function with every scale layer and the
   * input normalisation folded into the convolutions (fresh tensors; later
   * changes to this network are not reflected).
   */
  fuse(options: FuseOptions = {}): FusedFaceRecognitionNet {
    return new FusedFaceRecognitionNet(this, options);
  }
}

/** TF manifest name of a torchface parameter name, and back. */
export function tfName(torch: string): string {
  if (torch === 'fc.weight') return 'fc';
  return torch
    .replace(/\.conv\.weight$/, '.conv.filters')
    .replace(/\.scale\.weight$/, '.scale.weights')
    .replace(/\.scale\.bias$/, '.scale.biases')
    .replace(/\./g, '/');
}
export function torchName(tf: string): string {
  if (tf === 'fc') return 'fc.weight';
  return tf
    .replace(/\/conv\/filters$/, '/conv/weight')
    .replace(/\/scale\/weights$/, '/scale/weight')
    .replace(/\/scale\/biases$/, '/scale/bias')
    .replace(/\//g, '.');
}

function tfWeight(w: TfWeights, name: string): Tensor {
  const tf = tfName(name);
  if (name === 'fc.weight') return w.get(tf, 'fc');
  return w.get(tf, name.endsWith('.conv.weight') ? 'conv' : 'vector');
}

export interface FuseOptions {
  /** Channels-last weights (oneDNN through libtorch's channels-last path). */
  channelsLast?: boolean;
  /**
   * Activations in oneDNN's blocked format and weights reordered for it once
   * (CPU only; see F.toMkldnn): forward() then takes a dense input and returns a
   * dense output as before, without a reorder of every weight on every call.
   */
  mkldnn?: boolean;
  /**
   * Convolutions straight through oneDNN (F.onednnConv2d): relu and the residual add fused into
   * them, Winograd for the 3x3 stride-1 ones, activations in the blocked layout (CPU, builds with
   * F.onednnBlock() > 0). Results differ from the other paths by float32 rounding (~1e-6).
   */
  onednn?: boolean;
}

type Path = 'aten' | 'mkldnn' | 'onednn';

/** A conv with the scale layer folded in: weight OIHW, bias; stride, padding, relu. */
class FusedConv extends Module {
  constructor(
    weight: Tensor,
    bias: Tensor,
    readonly stride: number,
    readonly padding: number,
    readonly relu: boolean,
    readonly path: Path = 'aten',
  ) {
    super();
    this.registerParameter('weight', weight);
    this.registerParameter('bias', bias);
    // The weight in oneDNN's blocked format for this conv's settings, made once (a buffer: disposed with the module).
    if (path === 'mkldnn') this.registerBuffer('packedWeight', noGrad(() => F.mkldnnPackConv2dWeight(weight, { stride: this.stride, padding: this.padding })));
    this.requiresGrad_(false);
  }
  forward(x: Tensor, residual?: Tensor): Tensor {
    const o = { stride: this.stride, padding: this.padding };
    if (this.path === 'onednn') {
      // relu(conv + bias + residual) in one pass; Winograd where it applies (3x3, stride 1).
      const winograd = this.stride === 1 && this.param('weight').shape[2] === 3;
      return F.onednnConv2d(x, this.param('weight'), this.param('bias'), { ...o, activation: this.relu || residual ? 'relu' : null, residual, winograd });
    }
    const y = this.path === 'mkldnn' ? F.mkldnnConv2d(x, this.buffer('packedWeight')!, this.param('bias'), o) : F.conv2d(x, this.param('weight'), this.param('bias'), o);
    if (!this.relu) return y;
    const r = F.relu(y);
    y.dispose();
    return r;
  }
  extraRepr(): string {
    const [o, i, k] = this.param('weight').shape;
    return `${i}, ${o}, kernelSize=${k}, stride=${this.stride}, padding=${this.padding}${this.relu ? ', relu' : ''}`;
  }
}

class FusedBlock extends Module {
  constructor(
    readonly conv1: FusedConv,
    readonly conv2: FusedConv,
    readonly down: boolean,
    readonly path: Path = 'aten',
  ) {
    super();
    this.registerModule('conv1', conv1);
    this.registerModule('conv2', conv2);
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      if (this.path === 'onednn') return this.forwardBlocked(x);
      const branch = this.conv2.forward(this.conv1.forward(x));
      if (this.path !== 'mkldnn' || !this.down) return residualJoin(x, branch, this.down);
      // oneDNN tensors have no pad: a downsampling join that pads (the shortcut, avg-pooled,
      // differs from the branch in size or channels) goes through dense tensors.
      const [n, c, hh, ww] = x.shape;
      const padded = [n, c, Math.floor(hh / 2), Math.floor(ww / 2)].some((d, i) => d !== branch.shape[i]);
      if (!padded) return F.relu(F.add(F.avgPool2d(x, 2, { stride: 2 }), branch));
      return F.toMkldnn(residualJoin(F.toDense(x), F.toDense(branch), true));
    });
  }

  // residualJoin on the blocked layout [N, C / B, H, W, B], the add and relu fused into conv2.
  private forwardBlocked(x: Tensor): Tensor {
    const inner = this.conv1.forward(x);
    if (!this.down) return this.conv2.forward(inner, x);
    let sc = F.blockedPool2d(x, 2, { stride: 2, mode: 'avg' });
    const blocks = this.conv2.param('weight').shape[0] / x.shape[4] - x.shape[1];
    if (blocks) sc = F.pad(sc, [0, 0, 0, 0, 0, 0, 0, blocks]); // zero channels appended
    const [, , hh, ww] = sc.shape;
    // conv2 (3x3, padding 1) keeps conv1's size.
    if (inner.shape[2] === hh && inner.shape[3] === ww) return this.conv2.forward(inner, sc);
    // The branch is a row and column short of the shortcut: zero-padded at the bottom and right, as residualJoin does.
    const branch = F.pad(this.conv2.forward(inner), [0, 0, 0, ww - inner.shape[3], 0, hh - inner.shape[2]]);
    return F.relu(F.add(sc, branch));
  }
}

/**
 * Inference-only FaceRecognitionNet: parameters `conv32_down.weight/bias`,
 * `conv32_1.conv1.weight/bias`, ..., `fc.weight` (all frozen). forward(x) takes the same
 * N x 3 x 150 x 150 0..255 input (float; channels-last memory is fine and, with
 * channelsLast weights, what oneDNN runs fastest) and returns N x 128.
 */
export class FusedFaceRecognitionNet extends Module {
  private readonly stem: FusedConv;
  private readonly blocks: FusedBlock[] = [];
  private readonly fc: Linear;

  readonly mkldnn: boolean;
  readonly onednn: boolean;

  constructor(net: FaceRecognitionNet, options: FuseOptions = {}) {
    super();
    const mkldnn = (this.mkldnn = !!options.mkldnn);
    const onednn = (this.onednn = !!options.onednn);
    if (mkldnn && (net.fc.weight.device !== 'cpu' || !F.mkldnnAvailable())) invalid('options.mkldnn', 'a CPU network and a libtorch build with oneDNN', `a network on ${net.fc.weight.device}${F.mkldnnAvailable() ? '' : ', no oneDNN in this libtorch'}`);
    if (onednn && (net.fc.weight.device !== 'cpu' || !F.onednnBlock())) invalid('options.onednn', 'a CPU network and a build with oneDNN convolutions (F.onednnBlock() > 0)', `a network on ${net.fc.weight.device}${F.onednnBlock() ? '' : ', a build without them'}`);
    if ([mkldnn, onednn, !!options.channelsLast].filter(Boolean).length > 1) invalid('options', 'one of mkldnn, onednn and channelsLast', options);
    const path: Path = onednn ? 'onednn' : mkldnn ? 'mkldnn' : 'aten';
    // Input normalisation (x - mean) / 255 folded into the 7x7 stem conv. Exact up to
    // rounding because that conv has no padding (no zero cells would need the mean).
    const stem = noGrad(() =>
      tidy(() => {
        const { weight, bias } = net.conv32_down.fused();
        const w = F.div(weight, 255);
        const shift = F.sum(F.mul(w, net.buffer('mean')!.view([1, 3, 1, 1])), [1, 2, 3]);
        return { weight: w.contiguous(), bias: F.sub(bias, shift).contiguous() };
      }),
    );
    this.stem = this.registerModule('conv32_down', new FusedConv(stem.weight, stem.bias, 2, 0, true, path));
    for (const [name, block] of net.blocks) {
      const c1 = block.conv1.fused();
      const c2 = block.conv2.fused();
      const b = new FusedBlock(new FusedConv(c1.weight, c1.bias, block.conv1.stride, block.down ? 0 : 1, true, path), new FusedConv(c2.weight, c2.bias, 1, 1, false, path), block.down, path);
      this.blocks.push(this.registerModule(name, b));
    }
    this.fc = this.registerModule('fc', new Linear(256, DESCRIPTOR_SIZE, { bias: false }));
    noGrad(() => this.fc.weight.copy_(net.fc.weight));
    this.requiresGrad_(false);
    this.eval();
    if (options.channelsLast) this.to({ channelsLast: true });
  }

  forward(x: Tensor): Tensor {
    checkInput(x);
    return tidy(() => {
      if (this.onednn) {
        // NCHW in (oneDNN's first-layer kernel takes NCHW to the blocked layout), blocked throughout, N x 128 out.
        let out = this.stem.forward(x.contiguous());
        out = F.blockedPool2d(out, 3, { stride: 2 });
        for (const b of this.blocks) out = b.forward(out);
        // The mean over the map (an average pool of its size) and the fc (a 1x1 convolution of the
        // fc weight) on the blocked layout too: [N, 128 / B, 1, 1, B] is [N, 128] in order. Measured
        // per replay instruction at batch 1, 1 thread: aten's mean, reshape and linear took 15, 5
        // and 18 us. The reshape is batch-agnostic: FaceModel replays one trace at every batch size.
        const pooled = F.blockedPool2d(out, [out.shape[2], out.shape[3]], { mode: 'avg' });
        const w = this.fc.weight;
        return F.onednnConv2d(pooled, w.view([w.shape[0], w.shape[1], 1, 1]), null).reshape([-1, w.shape[0]]);
      }
      // oneDNN tensors in, dense out (to_mkldnn wants dense NCHW: a channels-last input is copied first).
      let out = this.stem.forward(this.mkldnn ? F.toMkldnn(x.contiguous()) : x);
      out = F.maxPool2d(out, 3, { stride: 2 });
      for (const b of this.blocks) out = b.forward(out);
      if (this.mkldnn) out = F.toDense(out);
      return this.fc.forward(F.mean(out, [2, 3]));
    });
  }
}

/** Multiply-adds of one forward pass for an S x S input (convolutions, pools ignored). */
export function recognitionMacs(size = RECOGNITION_INPUT_SIZE): number {
  const out = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;
  let n = out(size, 7, 2, 0);
  let macs = n * n * 32 * 3 * 49;
  n = out(n, 3, 2, 0);
  for (const [, cin, cout, down] of RECOGNITION_BLOCKS) {
    const m = down ? out(n, 3, 2, 0) : n;
    macs += m * m * cout * cin * 9 + m * m * cout * cout * 9;
    n = down ? Math.floor(n / 2) : n;
  }
  return macs + 256 * DESCRIPTOR_SIZE;
}
