// face-api's SSD-MobileNet-v1 face detector as a torchface Module: the
// MobileNet-v1 backbone, 8 extra "prediction" convs, 6 box predictors over 6
// feature maps (5118 anchors), and the box decoding. docs/faceapi-architecture.md (b).
import * as path from 'path';
import { faceApiModelDir, readTfjsWeights } from '../io/tfjs';
import { BN_EPS, DepthwiseSeparable, MobileNetV1 } from './mobilenet-v1';
import { ParameterGroup, TfWeights, conv2dSame, samePad } from './tf-layers';
import { Module } from '../nn';
import * as F from '../ops';
import { Tensor, noGrad, tensor, tidy } from '../core';
import { invalid } from '../core/errors';

/** Extra layers: [kernel, out channels, stride] (all conv + folded BN + ReLU6, 'same'). */
const EXTRA: [number, number, number][] = [
  [1, 256, 1],
  [3, 512, 2],
  [1, 128, 1],
  [3, 256, 2],
  [1, 128, 1],
  [3, 256, 2],
  [1, 64, 1],
  [3, 128, 2],
];

export const SSD_INPUT_SIZE = 512;
export const SSD_NUM_ANCHORS = 5118;

/**
 * The anchors (ymin, xmin, ymax, xmax, normalised) for feature maps of the given
 * grid sizes (one per box predictor, 6): TensorFlow's multiple grid anchor generator
 * with this model's settings (scales 0.2 to 0.95; the first map 3 boxes: 0.1 at 1:1,
 * 0.2 at 2:1 and 1:2; the others 6: the scale at 1:1, the scale between it and the
 * next at 1:1, then 2:1, 1:2, 3:1, 1:3). For the 512 input's grids (32, 16, 8, 4, 2, 1)
 * it reproduces the 5,118 anchors face-api ships within 4.2e-5 (float32 rounding;
 * test/parity/detection.test.ts); other input sizes need other grids (256: 16 ... 1, 1).
 */
export function ssdAnchors(grids: readonly number[], inputSize = SSD_INPUT_SIZE): Float32Array {
  if (grids.length !== 6) invalid('grids', '6 feature map sizes', grids);
  // The box predictors were trained at 512: an anchor stands for a face size in pixels
  // (0.2 x 512 = 102 px on the first map). At another input size the anchors keep their
  // pixel sizes (a face of 100 px is found by the same predictor at any input size), so
  // their normalised sizes scale by 512 / inputSize; only the grid changes.
  const k = SSD_INPUT_SIZE / inputSize;
  const scales = [0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1];
  const out: number[] = [];
  grids.forEach((g, l) => {
    const shapes: [number, number][] =
      l === 0 ? [[0.1, 1], [scales[0], 2], [scales[0], 0.5]] : [[scales[l], 1], [Math.sqrt(scales[l] * scales[l + 1]), 1], [scales[l], 2], [scales[l], 0.5], [scales[l], 3], [scales[l], 1 / 3]];
    for (let y = 0; y < g; y++) {
      for (let x = 0; x < g; x++) {
        const cy = (y + 0.5) / g;
        const cx = (x + 0.5) / g;
        for (const [scale, aspect] of shapes) {
          const h = (k * scale) / Math.sqrt(aspect);
          const w = k * scale * Math.sqrt(aspect);
          out.push(cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2);
        }
      }
    }
  });
  return Float32Array.from(out);
}

/**
 * SSD-MobileNet-v1. forward(x): x is N x 3 x 512 x 512 with values 0..255 (padded
 * and resized as face-api does); returns [boxes N x 5118 x 4 as (ymin, xmin, ymax,
 * xmax) normalised to the square, unclipped; scores N x 5118 = sigmoid(face logit)].
 * Other square sizes (multiples of 32) work too, with the anchors of their grids
 * (ssdAnchors): 256 x 256 gives 1,284 boxes at a quarter of the cost.
 */
export class SsdMobileNetV1 extends Module {
  readonly backbone: MobileNetV1;
  constructor(w: TfWeights) {
    super();
    this.backbone = this.registerModule('backbone', MobileNetV1.fromWeights(w));
    EXTRA.forEach((_, j) => {
      const m = this.registerModule(`extra_${j}`, new ParameterGroup());
      m.registerParameter('weight', w.get(`Prediction/Conv2d_${j}_pointwise/weights`, 'conv'));
      m.registerParameter('bias', w.get(`Prediction/Conv2d_${j}_pointwise/convolution_bn_offset`, 'vector'));
    });
    for (let k = 0; k < 6; k++) {
      const m = this.registerModule(`box_predictor_${k}`, new ParameterGroup());
      const p = `Prediction/BoxPredictor_${k}`;
      m.registerParameter('box_weight', w.get(`${p}/BoxEncodingPredictor/weights`, 'conv'));
      m.registerParameter('box_bias', w.get(`${p}/BoxEncodingPredictor/biases`, 'vector'));
      m.registerParameter('class_weight', w.get(`${p}/ClassPredictor/weights`, 'conv'));
      m.registerParameter('class_bias', w.get(`${p}/ClassPredictor/biases`, 'vector'));
    }
    const a = w.raw('Output/extra_dim');
    this.registerBuffer('anchors', w.get('Output/extra_dim', 'vector').reshape([a.shape[1], 4]));
    this.requiresGrad_(false);
    this.eval();
  }

  static async load(manifest = path.join(faceApiModelDir(), 'ssd_mobilenetv1_model-weights_manifest.json')): Promise<SsdMobileNetV1> {
    return new SsdMobileNetV1(new TfWeights(await readTfjsWeights(manifest), 'ssd_mobilenetv1'));
  }

  forward(x: Tensor): Tensor[] {
    return tidy(() => {
      const f = this.backbone.features(x, ['conv_11', 'conv_13']);
      const maps = [f.get('conv_11')!, f.get('conv_13')!];
      let h = maps[1];
      for (let j = 0; j < EXTRA.length; j++) {
        const m = this._modules.get(`extra_${j}`)!;
        h = F.clamp(conv2dSame(h, m.param('weight'), m.param('bias'), EXTRA[j][2]), 0, 6);
        if (j % 2 === 1) maps.push(h);
      }
      return predict(this, maps, x.shape[0], x.shape[2], (fm, w, b) => F.conv2d(fm, w, b));
    });
  }

  /**
   * The same function with its convolutions straight through oneDNN (F.onednnConv2d: the
   * depthwise BatchNorms folded into their weights, relu6 fused, activations in the blocked
   * layout): CPU builds with F.onednnBlock() > 0. A new module with its own (folded) copies of
   * the weights: dispose it on its own. Results differ by float32 rounding.
   */
  fuse(): FusedSsdMobileNetV1 {
    return new FusedSsdMobileNetV1(this);
  }
}

function tensorOfAnchors(grids: number[], inputSize: number, like: Tensor): Tensor {
  const a = ssdAnchors(grids, inputSize);
  return tensor(a, { shape: [a.length / 4, 4], device: like.device });
}

// The box predictors (net's box_predictor_0 ... 5) over the feature maps and the box decoding
// with net's anchors (face-api's), given how to run a 1x1 predictor conv (its result is read in
// NHWC order). Shared by SsdMobileNetV1 and its fused form, which name these alike.
function predict(net: Module, maps: Tensor[], n: number, inputSize: number, conv: (fm: Tensor, weight: Tensor, bias: Tensor) => Tensor): Tensor[] {
  const children = new Map(net.namedChildren());
  const enc: Tensor[] = [];
  const cls: Tensor[] = [];
  maps.forEach((fm, k) => {
    const m = children.get(`box_predictor_${k}`)!;
    // NHWC order (y, x, anchor, coord) as TF reshapes it
    enc.push(F.reshape(F.permute(conv(fm, m.param('box_weight'), m.param('box_bias')), [0, 2, 3, 1]), [n, -1, 4]));
    cls.push(F.reshape(F.permute(conv(fm, m.param('class_weight'), m.param('class_bias')), [0, 2, 3, 1]), [n, -1, 3]));
  });
  const e = F.cat(enc, 1);
  const c = F.cat(cls, 1);
  // face-api's anchors for its 512 input; generated ones for other sizes.
  const grids = maps.map((fm) => fm.shape[2]);
  const shipped = net.buffer('anchors')!;
  const a = inputSize === SSD_INPUT_SIZE && grids.join() === '32,16,8,4,2,1' ? shipped : tensorOfAnchors(grids, inputSize, shipped);
  const ay0 = F.select(a, 1, 0);
  const ax0 = F.select(a, 1, 1);
  const ah = F.sub(F.select(a, 1, 2), ay0);
  const aw = F.sub(F.select(a, 1, 3), ax0);
  const acy = F.add(ay0, F.div(ah, 2));
  const acx = F.add(ax0, F.div(aw, 2));
  const cy = F.add(F.mul(F.div(F.select(e, 2, 0), 10), ah), acy);
  const cx = F.add(F.mul(F.div(F.select(e, 2, 1), 10), aw), acx);
  const hh = F.div(F.mul(F.exp(F.div(F.select(e, 2, 2), 5)), ah), 2);
  const hw = F.div(F.mul(F.exp(F.div(F.select(e, 2, 3), 5)), aw), 2);
  const boxes = F.stack([F.sub(cy, hh), F.sub(cx, hw), F.add(cy, hh), F.add(cx, hw)], 2);
  const scores = F.sigmoid(F.select(c, 2, 1));
  return [boxes, scores];
}

/**
 * SsdMobileNetV1.fuse(): parameters `conv_0` ... `conv_13`, `extra_0` ... `extra_7` (weight,
 * bias; conv_1 ... conv_13 also depthwise_weight / depthwise_bias with the BatchNorm folded in),
 * the box predictors and the anchors, all frozen. forward(x) as SsdMobileNetV1's.
 */
export class FusedSsdMobileNetV1 extends Module {
  private readonly strides: number[] = [];
  // The box predictors' weights padded with zero filters to whole channel blocks (12 and 9 outputs:
  // oneDNN has only its reference kernel for a blocked input with a channels-last output), and
  // how many of the outputs are real.
  private readonly predictorOutputs = new Map<Tensor, number>();

  constructor(net: SsdMobileNetV1) {
    super();
    if (!F.onednnBlock() || net.buffer('anchors')!.device !== 'cpu') invalid('net', 'a CPU network and a build with oneDNN convolutions (F.onednnBlock() > 0)', F.onednnBlock() ? 'a network off the CPU' : 'a build without them');
    noGrad(() => {
      net.backbone.layers.forEach((layer, i) => {
        const g = this.registerModule(`conv_${i}`, new ParameterGroup());
        if (layer instanceof DepthwiseSeparable) {
          // BatchNorm(depthwise(x)) = depthwise(x) * scale + shift, per channel: into the weight and a bias.
          const scale = tidy(() => F.div(layer.param('bn_weight'), F.sqrt(F.add(layer.buffer('bn_running_var')!, BN_EPS))));
          g.registerParameter('depthwise_weight', tidy(() => F.mul(layer.param('depthwise_weight'), scale.view([-1, 1, 1, 1])).contiguous()));
          g.registerParameter('depthwise_bias', tidy(() => F.sub(layer.param('bn_bias'), F.mul(layer.buffer('bn_running_mean')!, scale))));
          scale.dispose();
          g.registerParameter('weight', layer.param('pointwise_weight').clone());
          g.registerParameter('bias', layer.param('pointwise_bias').clone());
          this.strides.push(layer.stride);
        } else {
          g.registerParameter('weight', layer.param('weight').clone());
          g.registerParameter('bias', layer.param('bias').clone());
          this.strides.push(2);
        }
      });
      for (const [name, m] of net.namedChildren()) {
        if (!name.startsWith('extra_') && !name.startsWith('box_predictor_')) continue;
        const g = this.registerModule(name, new ParameterGroup());
        for (const [p, t] of m.namedParameters()) {
          if (!name.startsWith('box_predictor_')) {
            g.registerParameter(p, t.clone());
            continue;
          }
          const block = F.onednnBlock();
          const extra = (block - (t.shape[0] % block)) % block;
          const padded = g.registerParameter(p, F.pad(t, t.ndim === 4 ? [0, 0, 0, 0, 0, 0, 0, extra] : [0, extra]))!;
          if (p.endsWith('_weight')) this.predictorOutputs.set(padded, t.shape[0]);
        }
      }
      this.registerBuffer('anchors', net.buffer('anchors')!.clone());
    });
    this.requiresGrad_(false);
    this.eval();
  }

  forward(x: Tensor): Tensor[] {
    if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[1] !== 3) invalid('x', 'an N x 3 x H x W tensor', x instanceof Tensor ? `shape [${x.shape}]` : x);
    return tidy(() => {
      // TF 'same' padding as oneDNN's asymmetric padding: [top, left, bottom, right].
      const same = (h: Tensor, k: number, s: number) => {
        const [t, b] = samePad(h.shape[2], k, s);
        const [l, r] = samePad(h.shape[3], k, s);
        return [t, l, b, r];
      };
      const conv = (h: Tensor, g: Module, prefix: '' | 'depthwise_', k: number, stride: number, groups = 1) =>
        F.onednnConv2d(h, g.param(`${prefix}weight`), g.param(`${prefix}bias`), { stride, padding: same(h, k, stride), groups, activation: 'relu6' });
      // NCHW in (oneDNN's first-layer kernel takes it to the blocked layout), blocked throughout.
      let h = MobileNetV1.normalize(x).contiguous();
      const maps: Tensor[] = [];
      this.strides.forEach((stride, i) => {
        const g = this._modules.get(`conv_${i}`)!;
        if (i === 0) h = conv(h, g, '', 3, stride);
        else h = conv(conv(h, g, 'depthwise_', 3, stride, h.shape[1] * h.shape[4]), g, '', 1, 1);
        if (i === 11 || i === 13) maps.push(h);
      });
      EXTRA.forEach(([k, , stride], j) => {
        h = conv(h, this._modules.get(`extra_${j}`)!, '', k, stride);
        if (j % 2 === 1) maps.push(h);
      });
      // A predictor's blocked output [N, C / B, H, W, B] as NHWC (a view when C / B is 1), its real
      // channels, viewed as N x C x H x W (the decoding permutes back to NHWC).
      const head = (fm: Tensor, w: Tensor, b: Tensor) => {
        const y = F.onednnConv2d(fm, w, b);
        const [n, cb, hh, ww, block] = y.shape;
        const nhwc = F.reshape(F.permute(y, [0, 2, 3, 1, 4]), [n, hh, ww, cb * block]);
        return F.permute(F.slice(nhwc, 3, 0, this.predictorOutputs.get(w)!), [0, 3, 1, 2]);
      };
      return predict(this, maps, x.shape[0], x.shape[2], head);
    });
  }
}
