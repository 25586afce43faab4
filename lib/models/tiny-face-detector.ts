// face-api's tiny face detector (tiny-YOLOv2 with separable convs) as a torchface
// Module: docs/faceapi-architecture.md (d). Faster than SSD-MobileNet-v1, used as
// a fallback stage of the detector (lib/face/detect.ts).
import * as path from 'path';
import { faceApiModelDir, readTfjsWeights } from '../io/tfjs';
import { ParameterGroup, TfWeights, padSame } from './tf-layers';
import { Module } from '../nn';
import * as F from '../ops';
import { Tensor, tensor, tidy } from '../core';

export const TINY_ANCHORS: [number, number][] = [
  [1.603231, 2.094468],
  [6.041143, 7.080126],
  [2.882459, 3.518061],
  [4.266906, 5.178857],
  [9.041765, 10.66308],
];
export const TINY_MEAN_RGB = [117.001, 114.697, 97.404];
const LEAKY = 0.10000000149011612;

/**
 * face-api's tiny face detector (tiny-YOLOv2 with separable convs).
 * forward(x): x is N x 3 x S x S (S multiple of 32, default 416), values 0..255;
 * returns the raw N x 25 x S/32 x S/32 map (5 anchors x (tx, ty, tw, th, conf)).
 */
export class TinyFaceDetectorNet extends Module {
  constructor(w: TfWeights) {
    super();
    const c0 = this.registerModule('conv0', new ParameterGroup());
    c0.registerParameter('weight', w.get('conv0/filters', 'conv'));
    c0.registerParameter('bias', w.get('conv0/bias', 'vector'));
    for (let k = 1; k <= 5; k++) {
      const m = this.registerModule(`conv${k}`, new ParameterGroup());
      m.registerParameter('depthwise_weight', w.get(`conv${k}/depthwise_filter`, 'depthwise'));
      m.registerParameter('pointwise_weight', w.get(`conv${k}/pointwise_filter`, 'conv'));
      m.registerParameter('bias', w.get(`conv${k}/bias`, 'vector'));
    }
    const c8 = this.registerModule('conv8', new ParameterGroup());
    c8.registerParameter('weight', w.get('conv8/filters', 'conv'));
    c8.registerParameter('bias', w.get('conv8/bias', 'vector'));
    this.registerBuffer('mean', tensor(TINY_MEAN_RGB, { shape: [1, 3, 1, 1] }));
    this.requiresGrad_(false);
    this.eval();
  }

  static async load(manifest = path.join(faceApiModelDir(), 'tiny_face_detector_model-weights_manifest.json')): Promise<TinyFaceDetectorNet> {
    return new TinyFaceDetectorNet(new TfWeights(await readTfjsWeights(manifest), 'tiny_face_detector'));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = F.div(F.sub(x, this.buffer('mean')!), 255);
      const c0 = this._modules.get('conv0')!;
      h = F.leakyRelu(F.conv2d(h, c0.param('weight'), c0.param('bias')), LEAKY);
      h = F.maxPool2d(padSame(h, 2, 2, -Infinity), 2, { stride: 2 });
      for (let k = 1; k <= 5; k++) {
        const m = this._modules.get(`conv${k}`)!;
        const p = F.pad(h, [1, 1, 1, 1]);
        const d = F.conv2d(p, m.param('depthwise_weight'), null, { groups: h.shape[1] });
        h = F.leakyRelu(F.conv2d(d, m.param('pointwise_weight'), m.param('bias')), LEAKY);
        const s = k === 5 ? 1 : 2;
        h = F.maxPool2d(padSame(h, 2, s, -Infinity), 2, { stride: s });
      }
      const c8 = this._modules.get('conv8')!;
      return F.conv2d(h, c8.param('weight'), c8.param('bias'));
    });
  }
}
