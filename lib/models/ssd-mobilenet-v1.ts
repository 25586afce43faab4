// face-api's SSD-MobileNet-v1 face detector as a torchface Module: the
// MobileNet-v1 backbone, 8 extra "prediction" convs, 6 box predictors over 6
// feature maps (5118 anchors), and the box decoding. docs/faceapi-architecture.md (b).
import * as path from 'path';
import { faceApiModelDir, readTfjsWeights } from '../io/tfjs';
import { MobileNetV1 } from './mobilenet-v1';
import { ParameterGroup, TfWeights, conv2dSame } from './tf-layers';
import { Module } from '../nn';
import * as F from '../ops';
import { Tensor, tidy } from '../core';

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
 * SSD-MobileNet-v1. forward(x): x is 1 x 3 x 512 x 512 with values 0..255 (padded
 * and resized as face-api does); returns [boxes N x 5118 x 4 as (ymin, xmin, ymax,
 * xmax) normalised to the 512 square, unclipped; scores N x 5118 = sigmoid(face logit)].
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
      const n = x.shape[0];
      const enc: Tensor[] = [];
      const cls: Tensor[] = [];
      maps.forEach((fm, k) => {
        const m = this._modules.get(`box_predictor_${k}`)!;
        // NHWC order (y, x, anchor, coord) as TF reshapes it
        enc.push(F.reshape(F.permute(F.conv2d(fm, m.param('box_weight'), m.param('box_bias')), [0, 2, 3, 1]), [n, -1, 4]));
        cls.push(F.reshape(F.permute(F.conv2d(fm, m.param('class_weight'), m.param('class_bias')), [0, 2, 3, 1]), [n, -1, 3]));
      });
      const e = F.cat(enc, 1);
      const c = F.cat(cls, 1);
      const a = this.buffer('anchors')!;
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
    });
  }
}
