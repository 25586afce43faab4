// A small ResNet family (He et al. 2015) with BasicBlocks, laid out and named
// exactly as torchvision's resnet18/34 (conv1, bn1, layer1.0.conv1, ...,
// layer2.0.downsample.0, fc), so torchvision state dicts load unchanged.
// Parameterised by depth, width, input channels, stem and output size
// (classes or embedding dimension), for classifiers and face embedders alike.
import { invalid } from '../core/errors';
import * as F from '../ops';
import { Tensor } from '../core';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, Sequential } from '../nn';
import { Module, constant_, kaimingNormal_ } from '../nn';

/** conv3x3 - BN - ReLU - conv3x3 - BN, plus the (projected) input, then ReLU. */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;
  constructor(inPlanes: number, planes: number, stride = 1) {
    super();
    this.conv1 = this.registerModule('conv1', new Conv2d(inPlanes, planes, 3, { stride, padding: 1, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', new Conv2d(planes, planes, 3, { stride: 1, padding: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample =
      stride !== 1 || inPlanes !== planes ? this.registerModule('downsample', new Sequential(new Conv2d(inPlanes, planes, 1, { stride, bias: false }), new BatchNorm2d(planes))) : null;
  }
  forward(x: Tensor): Tensor {
    // As torchvision: ReLU and the residual sum work in place on the BatchNorm
    // outputs (autograd allows it: batch_norm's backward does not need its
    // output), which saves three activation-sized allocations per block. Each
    // intermediate handle is released as soon as it is consumed.
    const a = this.conv1.forward(x);
    const b = relu_(this.bn1.forward(a));
    a.dispose();
    const d = this.conv2.forward(b);
    b.dispose();
    const e = this.bn2.forward(d);
    d.dispose();
    const identity = this.downsample ? this.downsample.forward(x) : x;
    F.add_(e, identity);
    if (identity !== x) identity.dispose();
    return relu_(e);
  }
}

/** In-place ReLU (the alias handle the op returns is released at once). */
function relu_(t: Tensor): Tensor {
  (F.callOp('aten::relu_', '', t) as Tensor).dispose();
  return t;
}

export interface ResNetOptions {
  /** 18 or 34 (BasicBlock counts [2,2,2,2] / [3,4,6,3]), or the block count of each of the four stages. Default 18. */
  depth?: 18 | 34 | number[];
  /** Channels of the first stage (doubling per stage). Default 64 (torchvision). */
  width?: number;
  /** Input channels. Default 3. */
  inChannels?: number;
  /**
   * Input side length the network is meant for. It picks the stem when `stem` is
   * not given: 'imagenet' (7x7 stride-2 convolution + max-pool, /4) from 96
   * pixels up, else 'small' (3x3 stride-1, no pooling, as for CIFAR).
   */
  inputSize?: number;
  stem?: 'imagenet' | 'small';
  /** Size of the output: classes, or the embedding dimension. Default 1000. */
  outFeatures?: number;
  /** Initialise each block's last BN weight to 0 (torchvision's zero_init_residual). */
  zeroInitResidual?: boolean;
}

/** ResNet with BasicBlocks; `resnet18()` is torchvision's resnet18. */
export class ResNet extends Module {
  readonly options: Required<Omit<ResNetOptions, 'depth'>> & { depth: number[] };
  constructor(options: ResNetOptions = {}) {
    super();
    const depth = options.depth ?? 18;
    const layers = Array.isArray(depth) ? depth : depth === 18 ? [2, 2, 2, 2] : depth === 34 ? [3, 4, 6, 3] : invalid('depth', '18, 34 or four block counts', depth);
    if (layers.length !== 4 || layers.some((n) => !Number.isInteger(n) || n < 1)) invalid('depth', 'four positive block counts', depth);
    const width = options.width ?? 64;
    const inChannels = options.inChannels ?? 3;
    const inputSize = options.inputSize ?? 224;
    const outFeatures = options.outFeatures ?? 1000;
    for (const [k, v] of Object.entries({ width, inChannels, inputSize, outFeatures })) if (!Number.isInteger(v) || v < 1) invalid(k, 'a positive integer', v);
    const stem = options.stem ?? (inputSize >= 96 ? 'imagenet' : 'small');
    if (stem !== 'imagenet' && stem !== 'small') invalid('stem', "'imagenet' or 'small'", stem);
    this.options = { depth: layers, width, inChannels, inputSize, stem, outFeatures, zeroInitResidual: !!options.zeroInitResidual };

    if (stem === 'imagenet') {
      this.registerModule('conv1', new Conv2d(inChannels, width, 7, { stride: 2, padding: 3, bias: false }));
      this.registerModule('bn1', new BatchNorm2d(width));
      this.registerModule('maxpool', new MaxPool2d(3, { stride: 2, padding: 1 }));
    } else {
      this.registerModule('conv1', new Conv2d(inChannels, width, 3, { stride: 1, padding: 1, bias: false }));
      this.registerModule('bn1', new BatchNorm2d(width));
    }
    let inPlanes = width;
    layers.forEach((blocks, i) => {
      const planes = width * 2 ** i;
      const stage = new Sequential();
      for (let b = 0; b < blocks; b++) {
        stage.append(new BasicBlock(inPlanes, planes, b === 0 && i > 0 ? 2 : 1));
        inPlanes = planes;
      }
      this.registerModule(`layer${i + 1}`, stage);
    });
    this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.registerModule('fc', new Linear(inPlanes, outFeatures));

    // torchvision's initialisation
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, 'fanOut');
      else if (m instanceof BatchNorm2d) {
        constant_(m.param('weight'), 1);
        constant_(m.param('bias'), 0);
      }
    }
    if (options.zeroInitResidual) for (const [, m] of this.namedModules()) if (m instanceof BasicBlock) constant_(m.bn2.param('weight'), 0);
  }

  /** Features before the final linear layer: N x (width * 8). */
  features(x: Tensor): Tensor {
    const step = (cur: Tensor, name: string): Tensor => {
      const m = this._modules.get(name);
      if (!m) return cur;
      const next = m.forward(cur) as Tensor;
      if (cur !== x && next !== cur) cur.dispose();
      return next;
    };
    let cur = step(x, 'conv1');
    cur = relu_(step(cur, 'bn1'));
    for (const name of ['maxpool', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool']) cur = step(cur, name);
    const flat = F.flatten(cur, 1);
    cur.dispose();
    return flat;
  }

  forward(x: Tensor): Tensor {
    const f = this.features(x);
    const out = (this._modules.get('fc') as Linear).forward(f);
    f.dispose();
    return out;
  }

  extraRepr(): string {
    const o = this.options;
    return `depth=[${o.depth}], width=${o.width}, stem=${o.stem}, outFeatures=${o.outFeatures}`;
  }
}

/** torchvision's resnet18 layout (options may change width, stem, outputs). */
export function resnet18(options: Omit<ResNetOptions, 'depth'> = {}): ResNet {
  return new ResNet({ ...options, depth: 18 });
}
/** torchvision's resnet34 layout. */
export function resnet34(options: Omit<ResNetOptions, 'depth'> = {}): ResNet {
  return new ResNet({ ...options, depth: 34 });
}
