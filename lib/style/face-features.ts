// face-api's face recognition ResNet (lib/models/face-recognition-net.ts) as a
// FeatureNetwork, so `npm run visualize -- --model face` shows what its units
// respond to. Layers: conv32_down (7x7 stem, after ReLU), pool (3x3 max-pool),
// then every residual block's output (conv32_1 ... conv256_down_out).
import { invalid } from '../core/errors';
import { FaceRecognitionNet, RECOGNITION_BLOCKS } from '../models/face-recognition-net';
import * as F from '../ops';
import { Device, Tensor, tidy } from '../core';
import type { FeatureNetwork, LayerInfo, StylePreset } from './features';

/** Receptive fields: stem 7x7/2 valid, pool 3x3/2, blocks conv1 3x3 (stride 2 valid when down, else pad 1) + conv2 3x3 pad 1. */
export const FACE_RECOGNITION_LAYERS: LayerInfo[] = (() => {
  const rows: LayerInfo[] = [];
  let rf = 7;
  let jump = 2;
  let start = 0;
  rows.push({ name: 'conv32_down', channels: 32, stride: jump, receptiveField: rf, offset: start + (rf - 1) / 2 });
  rf += 2 * jump;
  jump *= 2;
  rows.push({ name: 'pool', channels: 32, stride: jump, receptiveField: rf, offset: start + (rf - 1) / 2 });
  for (const [name, , cout, down] of RECOGNITION_BLOCKS) {
    rf += 2 * jump;
    if (!down) start -= jump;
    jump *= down ? 2 : 1;
    rf += 2 * jump;
    start -= jump;
    rows.push({ name, channels: cout, stride: jump, receptiveField: rf, offset: start + (rf - 1) / 2 });
  }
  return rows;
})();

export class FaceRecognitionFeatures implements FeatureNetwork {
  readonly name = 'face';
  readonly layers = FACE_RECOGNITION_LAYERS;
  /** Style transfer with a face network is possible but untuned: stem, pool and the first block of each width. */
  readonly preset: StylePreset = Object.freeze({
    contentLayer: 'conv128_1',
    styleLayers: { conv32_down: 0.25, conv32_1: 0.25, conv64_1: 0.25, conv128_1: 0.25 },
    alpha: 1,
    beta: 1e5,
    learningRate: 4,
  });
  constructor(readonly net: FaceRecognitionNet) {}
  static async load(): Promise<FaceRecognitionFeatures> {
    const net = await FaceRecognitionNet.load();
    net.requiresGrad_(false);
    return new FaceRecognitionFeatures(net);
  }
  features(x: Tensor, layers: string[]): Map<string, Tensor> {
    if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[1] !== 3) invalid('x', 'an N x 3 x H x W tensor', x instanceof Tensor ? `shape [${x.shape}]` : x);
    const idx = layers.map((n) => {
      const i = FACE_RECOGNITION_LAYERS.findIndex((l) => l.name === n);
      if (i < 0) invalid('layers', `face network layers (${FACE_RECOGNITION_LAYERS.map((l) => l.name).join(', ')})`, n);
      return i;
    });
    const last = Math.max(...idx);
    return tidy(() => {
      const out = new Map<string, Tensor>();
      let h = F.div(F.sub(x, this.net.buffer('mean')!), 255);
      h = this.net.conv32_down.forward(h);
      if (idx.includes(0)) out.set('conv32_down', h);
      if (last >= 1) h = F.maxPool2d(h, 3, { stride: 2 });
      if (idx.includes(1)) out.set('pool', h);
      for (let b = 0; b + 2 <= last; b++) {
        h = this.net.blocks[b][1].forward(h);
        if (idx.includes(b + 2)) out.set(FACE_RECOGNITION_LAYERS[b + 2].name, h);
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
