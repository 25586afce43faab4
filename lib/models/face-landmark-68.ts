// face-api's 68-point landmark net (face_landmark_68_model): 4 dense blocks of
// separable convs, 7x7 average pool, fc to 136. docs/faceapi-architecture.md (c).
// Crops are taken as face-api does (detection box clipped at the image border and
// floored, centred zero padToSquare, legacy bilinear to 112), and the points are
// shifted back by the *unfloored* box origin, as face-api does.
import { ModelMismatchError } from '../core/errors';
import * as path from 'path';
import { faceApiModelDir, readTfjsWeights } from '../io/tfjs';
import { ParameterGroup, TfWeights, conv2dSame } from './tf-layers';
import { Module } from '../nn';
import * as F from '../ops';
import { Tensor, tensor, tidy } from '../core';
import { ImageTensor, clipBox } from '../image/image-tensor';

export interface Point {
  x: number;
  y: number;
}
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export const LANDMARK_INPUT_SIZE = 112;
/** Per-channel RGB mean subtracted by face-api's landmark and recognition nets. */
export const FACEAPI_MEAN_RGB = [122.782, 117.001, 104.298];

/** Index ranges of the 68 points (iBUG 300-W order). */
export const LANDMARK_GROUPS = {
  jaw: [0, 17],
  leftBrow: [17, 22],
  rightBrow: [22, 27],
  nose: [27, 36],
  leftEye: [36, 42],
  rightEye: [42, 48],
  mouth: [48, 68],
} as const;

/** forward(x): N x 3 x 112 x 112 with values 0..255 -> N x 136 (x0, y0, x1, y1, ... relative to the square). */
export class FaceLandmark68Net extends Module {
  constructor(w: TfWeights) {
    super();
    for (let b = 0; b < 4; b++) {
      const block = this.registerModule(`dense${b}`, new ParameterGroup());
      for (let c = 0; c < 4; c++) {
        const m = block.registerModule(`conv${c}`, new ParameterGroup());
        const p = `dense${b}/conv${c}`;
        if (b === 0 && c === 0) {
          m.registerParameter('weight', w.get(`${p}/filters`, 'conv'));
        } else {
          m.registerParameter('depthwise_weight', w.get(`${p}/depthwise_filter`, 'depthwise'));
          m.registerParameter('pointwise_weight', w.get(`${p}/pointwise_filter`, 'conv'));
        }
        m.registerParameter('bias', w.get(`${p}/bias`, 'vector'));
      }
    }
    const fc = this.registerModule('fc', new ParameterGroup());
    fc.registerParameter('weight', w.get('fc/weights', 'fc'));
    fc.registerParameter('bias', w.get('fc/bias', 'vector'));
    this.registerBuffer('mean', tensor(FACEAPI_MEAN_RGB, { shape: [1, 3, 1, 1] }));
    this.requiresGrad_(false);
    this.eval();
  }

  static async load(manifest = path.join(faceApiModelDir(), 'face_landmark_68_model-weights_manifest.json')): Promise<FaceLandmark68Net> {
    return new FaceLandmark68Net(new TfWeights(await readTfjsWeights(manifest), 'face_landmark_68'));
  }

  private sep(x: Tensor, m: Module, stride: number): Tensor {
    const d = conv2dSame(x, m.param('depthwise_weight'), null, stride, x.shape[1]);
    return F.conv2d(d, m.param('pointwise_weight'), m.param('bias'));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = F.div(F.sub(x, this.buffer('mean')!), 255);
      for (let b = 0; b < 4; b++) {
        const block = this._modules.get(`dense${b}`)!;
        const m = (c: number) => child(block, `conv${c}`);
        const out1 = F.relu(b === 0 ? conv2dSame(h, m(0).param('weight'), m(0).param('bias'), 2) : this.sep(h, m(0), 2));
        const out2 = this.sep(out1, m(1), 1);
        const s12 = F.add(out1, out2);
        const out3 = this.sep(F.relu(s12), m(2), 1);
        const s123 = F.add(s12, out3);
        const out4 = this.sep(F.relu(s123), m(3), 1);
        h = F.relu(F.add(s123, out4));
      }
      const pooled = F.flatten(F.avgPool2d(h, 7, { stride: 2 }), 1);
      const fc = this._modules.get('fc')!;
      return F.linear(pooled, fc.param('weight'), fc.param('bias'));
    });
  }
}

/** A child module by local name. */
export function child(m: Module, name: string): Module {
  for (const [n, c] of m.namedChildren()) if (n === name) return c;
  throw new ModelMismatchError(`${m.constructor.name} has no child module '${name}'`);
}

/**
 * Landmarks of each detection box: crop (clip + floor), run the net on the batch,
 * decode as face-api's postProcess and shift by the unfloored box origin.
 * Returns one array of 68 points (image pixels) per box, null for boxes with an empty crop.
 */
export async function detectLandmarks(net: FaceLandmark68Net, run: (x: Tensor) => Promise<Tensor[]>, img: ImageTensor, boxes: Box[]): Promise<(Point[] | null)[]> {
  const crops = boxes.map((b) => clipBox(b, img.width, img.height));
  const valid = crops.map((c, i) => [c, i] as const).filter(([c]) => c !== null) as [NonNullable<(typeof crops)[number]>, number][];
  const result: (Point[] | null)[] = boxes.map(() => null);
  if (valid.length === 0) return result;
  const inputs: Tensor[] = [];
  try {
    for (const [c] of valid) inputs.push(await img.squareInput(LANDMARK_INPUT_SIZE, true, c));
    const batch = inputs.length === 1 ? inputs[0] : F.cat(inputs, 0);
    const [out] = await run(batch);
    if (batch !== inputs[0]) batch.dispose();
    const raw = out.data() as Float32Array;
    out.dispose();
    valid.forEach(([c, i], k) => {
      const { width: w, height: h } = c;
      const s = LANDMARK_INPUT_SIZE / Math.max(w, h);
      const W2 = w * s;
      const H2 = h * s;
      const padX = W2 < H2 ? Math.abs(W2 - H2) / 2 : 0;
      const padY = H2 < W2 ? Math.abs(W2 - H2) / 2 : 0;
      const pts: Point[] = [];
      for (let p = 0; p < 68; p++) {
        const xr = (raw[k * 136 + 2 * p] * LANDMARK_INPUT_SIZE - padX) / W2;
        const yr = (raw[k * 136 + 2 * p + 1] * LANDMARK_INPUT_SIZE - padY) / H2;
        pts.push({ x: xr * w + boxes[i].x, y: yr * h + boxes[i].y });
      }
      result[i] = pts;
    });
  } finally {
    for (const t of inputs) t.dispose();
  }
  return result;
}
