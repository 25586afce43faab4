// Face detection as face-api does it, on libtorch: SSD-MobileNet-v1 (default,
// face-api's defaults: minConfidence 0.5, maxResults 100, IoU 0.5, 512 x 512
// input padded at the bottom/right) or the tiny face detector (faster), then the
// 68-point landmark net on each detection's crop. Every forward is a traced
// program replayed on a worker thread, so detect() keeps the event loop free.
import { z } from 'zod';
import { invalid, parseOptions } from '../core/errors';
import { ImageInput, RgbImage, loadImage } from '../image';
import { traced } from '../core/jit';
import * as F from '../ops';
import { Device, Tensor, checkDevice, tensor, tidy } from '../core';
import { Box, FaceLandmark68Net, Point, detectLandmarks } from '../models/face-landmark-68';
import { ImageTensor, reshapedDimensions } from '../image/image-tensor';
import { FusedSsdMobileNetV1, SSD_INPUT_SIZE, SsdMobileNetV1 } from '../models/ssd-mobilenet-v1';
import { TINY_ANCHORS, TinyFaceDetectorNet } from '../models/tiny-face-detector';

export type { Box, Point } from '../models/face-landmark-68';

/** A face found in an image: box, score and 68 landmarks, all in image pixels. */
export interface DetectedFace {
  box: Box;
  score: number;
  landmarks: Point[];
}

/** Which step of the fallback chain found the face (see FaceDetector.detectLargest). */
export type DetectionStage = 'ssd' | 'ssd-low' | 'tiny' | 'center';

export type DetectorModel = 'ssd' | 'tiny';

const detectOptions = z
  .object({
    /** Keep detections scoring above this (face-api: 0.5 for both detectors). */
    minConfidence: z.number().min(0).max(1).optional(),
    /** At most this many faces (SSD; face-api default 100). */
    maxResults: z.number().int().positive().optional(),
    /** Suppress a box overlapping a better one by more than this IoU (face-api: SSD 0.5, tiny 0.4). */
    iouThreshold: z.number().min(0).max(1).optional(),
    /** Input side, a multiple of 32: the tiny detector's (face-api default 416), or the SSD's (face-api's 512 by default; at least 64). */
    inputSize: z.number().int().positive().multipleOf(32).optional(),
    /** Which detector (default: the one the FaceDetector was loaded with). */
    model: z.enum(['ssd', 'tiny']).optional(),
    /** Run the landmark net (default true). Without it `landmarks` is empty. */
    landmarks: z.boolean().optional(),
  })
  .strict();
export type DetectOptions = z.input<typeof detectOptions>;

const loadOptions = z.object({ model: z.enum(['ssd', 'tiny']).default('ssd'), device: z.string().default('cpu') }).strict();

/**
 * Stages of detectLargest(), measured on the 1,549 LFW pairsDevTest images (scripts/detection-recall.ts):
 * miss rate SSD@0.5 10.46%, + SSD@0.1 1.81%, + tiny@0.3 0.45%, + centred box 0%.
 */
export const FALLBACK_DEFAULTS = {
  lowConfidence: 0.1,
  tinyConfidence: 0.3,
  tinyInputSize: 416,
  /** Centred box for inputs that are face crops already, relative (x, y, w, h): the median SSD box on LFW. */
  centerBox: { x: 0.298, y: 0.283, width: 0.4, height: 0.467 },
  /** The same for tight face crops (face-api's 150x150 fixtures, aligned chips): the inner 80%. */
  tightBox: { x: 0.1, y: 0.1, width: 0.8, height: 0.8 },
  /**
   * Largest landmarkStability() a centred fallback box may have. Measured (`node
   * dist/scripts/landmark-drift.js`): blank images 1.00 exactly, noise 1.5-1.9;
   * centred boxes on 40 LFW faces 0.18-0.71 (median 0.27); tiny-detector boxes on
   * faces 0.09-0.19; low-confidence SSD boxes 0.17-1.47 (the high ones are boxes
   * beside the face, which the next stage then replaces); the tight box on the 12
   * face-api fixture crops 0.23-0.97 (9 of 12 below 0.8; blank 1.00, noise 1.20).
   */
  maxLandmarkDrift: 0.8,
};

/** Pairwise IoU of K boxes given as (y0, x0, y1, x1) (any corner order), computed with tensor ops. */
export function iouMatrix(boxes: Tensor): Float32Array {
  return tidy(() => {
    const a = F.select(boxes, 1, 0);
    const b = F.select(boxes, 1, 2);
    const c = F.select(boxes, 1, 1);
    const d = F.select(boxes, 1, 3);
    const ymin = F.minimum(a, b);
    const ymax = F.maximum(a, b);
    const xmin = F.minimum(c, d);
    const xmax = F.maximum(c, d);
    const area = F.mul(F.sub(ymax, ymin), F.sub(xmax, xmin));
    const col = (t: Tensor) => F.unsqueeze(t, 1);
    const row = (t: Tensor) => F.unsqueeze(t, 0);
    const ih = F.clamp(F.sub(F.minimum(col(ymax), row(ymax)), F.maximum(col(ymin), row(ymin))), 0);
    const iw = F.clamp(F.sub(F.minimum(col(xmax), row(xmax)), F.maximum(col(xmin), row(xmin))), 0);
    const inter = F.mul(ih, iw);
    const iou = F.div(inter, F.sub(F.add(col(area), row(area)), inter));
    const positive = F.logicalAnd(F.gt(col(area), 0), F.gt(row(area), 0));
    return F.where(positive, iou, 0).contiguous().data() as Float32Array;
  });
}

/**
 * Greedy non-maximum suppression (face-api's SSD variant): candidates scoring
 * above scoreThreshold, best first (stable), each kept unless it overlaps an
 * already kept box by IoU > iouThreshold. Returns indices into boxes.
 */
export function nonMaxSuppression(boxes: Tensor, scores: ArrayLike<number>, options: { iouThreshold: number; scoreThreshold: number; maxResults?: number }): number[] {
  const cand: number[] = [];
  for (let i = 0; i < scores.length; i++) if (scores[i] > options.scoreThreshold) cand.push(i);
  cand.sort((i, j) => scores[j] - scores[i] || i - j);
  if (cand.length === 0) return [];
  const idx = tensor(BigInt64Array.from(cand, (i) => BigInt(i)), { device: boxes.device });
  const sel = F.indexSelect(boxes, 0, idx);
  const selCpu = sel.to('cpu');
  const iou = iouMatrix(selCpu);
  for (const t of new Set([idx, sel, selCpu])) t.dispose();
  const k = cand.length;
  const kept: number[] = [];
  const max = options.maxResults ?? Infinity;
  for (let a = 0; a < k && kept.length < max; a++) {
    if (kept.every((b) => iou[a * k + b] <= options.iouThreshold)) kept.push(a);
  }
  return kept.map((a) => cand[a]);
}

/**
 * The SSD input size detectLargest uses: face-api's 512 for images of 512 px and more; a
 * smaller image at its own size (its longer side rounded up to a multiple of 32, at least
 * SSD_MIN_INPUT) instead of upsampled to 512, which costs 4x the work for no detail (a 250 px
 * LFW photo: 256, a quarter of the multiply-adds). The anchors keep their pixel sizes
 * (ssdAnchors), so a face is found by the predictor trained for its size in pixels.
 */
export function ssdInputSizeFor(width: number, height: number): number {
  return Math.min(SSD_INPUT_SIZE, Math.max(SSD_MIN_INPUT, 32 * Math.ceil(Math.max(width, height) / 32)));
}
export const SSD_MIN_INPUT = 256;

/**
 * Face detector with face-api's networks and post-processing. `await
 * FaceDetector.load({ model: 'ssd' })` then `await detector.detect(image)`.
 */
export class FaceDetector {
  private ssdNet?: Promise<{ net: SsdMobileNetV1 | FusedSsdMobileNetV1; run: (x: Tensor) => Promise<Tensor[]> }>;
  private tinyNet?: Promise<{ net: TinyFaceDetectorNet; run: (x: Tensor) => Promise<Tensor[]> }>;
  private landmarkNet?: Promise<{ net: FaceLandmark68Net; run: (x: Tensor) => Promise<Tensor[]> }>;

  private constructor(
    readonly model: DetectorModel,
    readonly device: Device,
  ) {}

  /** Loads the detector (and the landmark net) from face-api's bundled weights. */
  static async load(options: { model?: DetectorModel; device?: Device | string } = {}): Promise<FaceDetector> {
    const o = parseOptions(loadOptions, options);
    const d = new FaceDetector(o.model, checkDevice(o.device, 'options.device'));
    await Promise.all([o.model === 'ssd' ? d.ssd() : d.tiny(), d.landmarks()]);
    return d;
  }

  /**
   * A network on this detector's device, its forward traced. Channels-last on the
   * CPU: libtorch 1.13 runs these convolutions through oneDNN then (traced, 1
   * thread: SSD at 512 x 512 98 vs 112 ms NCHW, the tiny detector at 416 x 416
   * 16 vs 39 ms, the landmark net on 3 crops 9-11 vs 13 ms).
   */
  private prepared<N extends SsdMobileNetV1 | TinyFaceDetectorNet | FaceLandmark68Net>(net: N): { net: N; run: (x: Tensor) => Promise<Tensor[]> } {
    const channelsLast = this.device === 'cpu';
    net.to({ device: this.device, channelsLast });
    const f = traced((x: Tensor) => net.forward(channelsLast ? x.contiguous({ channelsLast }) : x), { sharedInputs: true }); // lib's own inputs: read in place
    return { net, run: (x: Tensor) => f(x) };
  }
  private ssd() {
    this.ssdNet ??= SsdMobileNetV1.load().then((net) => {
      if (this.device !== 'cpu' || !F.onednnBlock()) return this.prepared(net);
      // Its convolutions straight through oneDNN, BatchNorms folded, relu6 fused (SsdMobileNetV1.fuse):
      // SSD at 512 x 512, traced, 1 thread: 66 ms instead of channels-last's 105 (scripts/bench/cases/detectors.ts).
      const fused = net.fuse();
      net.dispose();
      const f = traced((x: Tensor) => fused.forward(x), { sharedInputs: true });
      return { net: fused, run: (x: Tensor) => f(x) };
    });
    return this.ssdNet;
  }
  private tiny() {
    this.tinyNet ??= TinyFaceDetectorNet.load().then((net) => this.prepared(net));
    return this.tinyNet;
  }
  private landmarks() {
    this.landmarkNet ??= FaceLandmark68Net.load().then((net) => this.prepared(net));
    return this.landmarkNet;
  }

  /** Every face: box, score and 68 landmarks in image pixels, best score first. */
  async detect(input: ImageInput | RgbImage, options: DetectOptions = {}): Promise<DetectedFace[]> {
    const o = parseOptions(detectOptions, options);
    const img = await loadImage(input as ImageInput);
    const it = new ImageTensor(img, this.device);
    try {
      const found = (o.model ?? this.model) === 'ssd' ? await this.ssdBoxes(it, o) : await this.tinyBoxes(it, o);
      if (o.landmarks === false) return found.map((f) => ({ ...f, landmarks: [] }));
      return await this.withLandmarks(it, found);
    } finally {
      it.dispose();
    }
  }

  /** 68 landmarks for given boxes (face-api's crop of each box). */
  async landmarksFor(input: ImageInput | RgbImage, boxes: Box[]): Promise<(Point[] | null)[]> {
    const img = await loadImage(input as ImageInput);
    const it = new ImageTensor(img, this.device);
    try {
      const { net, run } = await this.landmarks();
      return await detectLandmarks(net, run, it, boxes);
    } finally {
      it.dispose();
    }
  }

  /**
   * The largest face (or with `select: 'central'` the one nearest the image
   * centre), trying in turn: SSD at `minConfidence` (default 0.5), the same SSD
   * output at a low threshold, the tiny detector, and, only for images that look like face
   * crops already (`assumeCrop`, default: square-ish and at most 400 px), a fixed
   * centred box and a tight box. Never the whole image. The centred boxes must also
   * pass the landmark check (landmarkStability): a blank or noisy image is not a
   * face. SSD runs at ssdInputSizeFor(width, height): a photo under 512 px at its
   * own size, not upsampled (docs/accuracy.md). Returns null when every stage fails.
   */
  async detectLargest(
    input: ImageInput | RgbImage | ImageTensor,
    options: { minConfidence?: number; fallback?: boolean; assumeCrop?: boolean; select?: 'largest' | 'central' } = {},
  ): Promise<(DetectedFace & { stage: DetectionStage }) | null> {
    // An ImageTensor is read as it is and left to its owner (FaceModel aligns the face from the
    // same one instead of copying the photo into a tensor again).
    const given = input instanceof ImageTensor;
    if (given && input.device !== this.device) invalid('input', `an ImageTensor on ${this.device}`, `one on ${input.device}`);
    const it = given ? input : new ImageTensor(await loadImage(input as ImageInput), this.device);
    const img = { width: it.width, height: it.height };
    try {
      // 'central': the face whose box centre is nearest the image centre (photos framed on their
      // subject, as LFW's are: there a larger face at the edge is a bystander).
      const off = (b: Box) => Math.hypot(b.x + b.width / 2 - img.width / 2, b.y + b.height / 2 - img.height / 2);
      const better = options.select === 'central' ? (f: { box: Box }, m: { box: Box }) => off(f.box) < off(m.box) : (f: { box: Box }, m: { box: Box }) => f.box.width * f.box.height > m.box.width * m.box.height;
      const largest = (faces: { box: Box; score: number }[]) => faces.reduce<{ box: Box; score: number } | null>((m, f) => (!m || better(f, m) ? f : m), null);
      const inputSize = ssdInputSizeFor(img.width, img.height);
      const stages: [DetectionStage, () => Promise<{ box: Box; score: number }[]>][] = [['ssd', () => this.ssdBoxes(it, { minConfidence: options.minConfidence ?? 0.5, inputSize })]];
      if (options.fallback !== false) {
        stages.push(['ssd-low', () => this.ssdBoxes(it, { minConfidence: Math.min(FALLBACK_DEFAULTS.lowConfidence, options.minConfidence ?? 1), inputSize })]);
        stages.push(['tiny', () => this.tinyBoxes(it, { minConfidence: FALLBACK_DEFAULTS.tinyConfidence, inputSize: FALLBACK_DEFAULTS.tinyInputSize })]);
        const crop = options.assumeCrop ?? looksLikeFaceCrop(img);
        if (crop) {
          // Two guesses for inputs that are face crops already: LFW's framing, then a tight
          // crop (the face fills the picture). Each must pass the landmark check below.
          const c = FALLBACK_DEFAULTS.centerBox;
          const t = FALLBACK_DEFAULTS.tightBox;
          const box = (r: typeof c) => ({ x: r.x * img.width, y: r.y * img.height, width: r.width * img.width, height: r.height * img.height });
          stages.push(['center', async () => [{ box: box(c), score: 0 }]]);
          stages.push(['center', async () => [{ box: box(t), score: 0 }]]);
        }
      }
      // With 'central', a stage's faces count only if their box holds the image centre (the
      // subject of a framed photo is there); the next stages are tried before settling for
      // the most central face found elsewhere.
      const holdsCentre = (b: Box) => b.x <= img.width / 2 && img.width / 2 <= b.x + b.width && b.y <= img.height / 2 && img.height / 2 <= b.y + b.height;
      let offCentre: { box: Box; score: number; stage: DetectionStage } | null = null;
      for (const [stage, run] of stages) {
        let found = await run();
        if (options.select === 'central') {
          const away = largest(found.filter((x) => !holdsCentre(x.box)));
          if (away && !offCentre) offCentre = { ...away, stage };
          found = found.filter((x) => holdsCentre(x.box));
        }
        const f = largest(found);
        if (!f) continue;
        const [withLm] = await this.withLandmarks(it, [f]);
        if (!withLm) continue;
        // The centred boxes are guesses, not detections: on an image without a face (a blank
        // wall, noise) they would make one up. Accept them only with evidence that a face is
        // there (see landmarkStability). The detectors' own boxes need no such check: neither
        // fired on blank or noise images (scripts/landmark-drift.ts).
        if (stage === 'center' && (await this.landmarkStability(it, withLm.box)) > FALLBACK_DEFAULTS.maxLandmarkDrift) continue;
        return { ...withLm, stage };
      }
      if (offCentre) {
        const [withLm] = await this.withLandmarks(it, [offCentre]);
        if (withLm) return { ...withLm, stage: offCentre.stage };
      }
      return null;
    } finally {
      if (!given) it.dispose();
    }
  }

  /**
   * Evidence that a box holds a face: the 68 landmarks are fitted in the box and
   * in the box shifted by 10% of its size. On a face they stay on the eyes, nose
   * and mouth, so they hardly move in the image; on an image without a face the
   * net returns about the same box-relative shape, which moves with the box.
   * Returns the mean landmark movement divided by the shift (about 0 for a face,
   * about 1 for no face).
   */
  async landmarkStability(it: ImageTensor, box: Box): Promise<number> {
    const d = { x: 0.1 * box.width, y: 0.1 * box.height };
    const shifted = [
      { ...box, x: box.x + d.x, y: box.y + d.y },
      { ...box, x: box.x - d.x, y: box.y - d.y },
    ];
    const { net, run } = await this.landmarks();
    const [base, ...moved] = await detectLandmarks(net, run, it, [box, ...shifted]);
    if (!base) return Infinity;
    let worst = 0;
    for (const m of moved) {
      if (!m) return Infinity;
      let sum = 0;
      for (let p = 0; p < base.length; p++) sum += Math.hypot(m[p].x - base[p].x, m[p].y - base[p].y);
      worst = Math.max(worst, sum / base.length / Math.hypot(d.x, d.y));
    }
    return worst;
  }

  private async withLandmarks(it: ImageTensor, found: { box: Box; score: number }[]): Promise<DetectedFace[]> {
    if (found.length === 0) return [];
    const { net, run } = await this.landmarks();
    const lms = await detectLandmarks(net, run, it, found.map((f) => f.box));
    const out: DetectedFace[] = [];
    found.forEach((f, i) => {
      const lm = lms[i];
      if (lm) out.push({ box: f.box, score: f.score, landmarks: lm }); // face-api drops empty crops
    });
    return out;
  }

  /**
   * The SSD's raw output for an image (boxes [anchors, 4] and scores), run once per image:
   * detectLargest's fallback chain asks again at a lower threshold ('ssd-low'), which needs
   * only another NMS (it used to run the network again: 1.2 SSD runs per LFW photo).
   */
  private ssdOutputs(it: ImageTensor, size: number): Promise<{ boxes: Float32Array; scores: Float32Array }> {
    let bySize = this.ssdRaw.get(it);
    if (!bySize) this.ssdRaw.set(it, (bySize = new Map()));
    let out = bySize.get(size);
    if (!out) {
      out = (async () => {
        const { run } = await this.ssd();
        const x = await it.squareInput(size, false);
        let boxes: Tensor;
        let scores: Tensor;
        try {
          [boxes, scores] = await run(x);
        } finally {
          x.dispose();
        }
        try {
          return tidy(() => ({ boxes: F.select(boxes, 0, 0).to('cpu').data() as Float32Array, scores: scores.to('cpu').data() as Float32Array }));
        } finally {
          boxes.dispose();
          scores.dispose();
        }
      })();
      bySize.set(size, out);
      out.catch(() => bySize!.delete(size));
    }
    return out;
  }
  private readonly ssdRaw = new WeakMap<ImageTensor, Map<number, Promise<{ boxes: Float32Array; scores: Float32Array }>>>();

  /**
   * SSD boxes in image pixels (face-api SsdMobilenetv1.locateFaces). `inputSize`: the square
   * the image is resized into, face-api's 512 by default (ssdInputSizeFor: smaller for small images).
   */
  async ssdBoxes(it: ImageTensor, o: { minConfidence?: number; maxResults?: number; iouThreshold?: number; inputSize?: number }): Promise<{ box: Box; score: number }[]> {
    const S = o.inputSize ?? SSD_INPUT_SIZE;
    if (!Number.isInteger(S) || S < 64 || S % 32 !== 0) invalid('options.inputSize', 'a multiple of 32, at least 64', S);
    const { boxes: bd, scores: sd } = await this.ssdOutputs(it, S);
    const b = tensor(bd, { shape: [sd.length, 4] });
    let keep: number[];
    try {
      keep = nonMaxSuppression(b, sd, { iouThreshold: o.iouThreshold ?? 0.5, scoreThreshold: o.minConfidence ?? 0.5, maxResults: o.maxResults ?? 100 });
    } finally {
      b.dispose();
    }
    const { width: W, height: H } = it;
    const r = reshapedDimensions(W, H, S);
    const padX = S / r.width;
    const padY = S / r.height;
    return keep.map((i) => {
      const top = Math.max(0, bd[i * 4]) * padY;
      const left = Math.max(0, bd[i * 4 + 1]) * padX;
      const bottom = Math.min(1, bd[i * 4 + 2]) * padY;
      const right = Math.min(1, bd[i * 4 + 3]) * padX;
      return { score: sd[i], box: { x: left * W, y: top * H, width: (right - left) * W, height: (bottom - top) * H } };
    });
  }

  /** Tiny face detector boxes in image pixels (face-api TinyFaceDetector.locateFaces). */
  async tinyBoxes(it: ImageTensor, o: { minConfidence?: number; inputSize?: number; iouThreshold?: number }): Promise<{ box: Box; score: number }[]> {
    const { run } = await this.tiny();
    const S = o.inputSize ?? 416;
    if (S % 32 !== 0) invalid('options.inputSize', 'a multiple of 32', S);
    const thr = o.minConfidence ?? 0.5;
    const x = await it.squareInput(S, false);
    let out: Tensor;
    try {
      [out] = await run(x);
    } finally {
      x.dispose();
    }
    const c = out.to('cpu');
    const d = c.data() as Float32Array;
    c.dispose();
    const n = out.shape[2];
    out.dispose();
    const { width: W, height: H } = it;
    const r = reshapedDimensions(W, H, S);
    const cfx = Math.max(r.width, r.height) / r.width;
    const cfy = Math.max(r.width, r.height) / r.height;
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const at = (a: number, k: number, row: number, col: number) => d[(a * 5 + k) * n * n + row * n + col];
    const found: { box: Box; score: number }[] = [];
    for (let row = 0; row < n; row++)
      for (let col = 0; col < n; col++)
        for (let a = 0; a < TINY_ANCHORS.length; a++) {
          const score = sig(at(a, 4, row, col));
          if (thr && !(score > thr)) continue;
          const cx = ((col + sig(at(a, 0, row, col))) / n) * cfx;
          const cy = ((row + sig(at(a, 1, row, col))) / n) * cfy;
          const w = ((Math.exp(at(a, 2, row, col)) * TINY_ANCHORS[a][0]) / n) * cfx;
          const h = ((Math.exp(at(a, 3, row, col)) * TINY_ANCHORS[a][1]) / n) * cfy;
          found.push({ score, box: { x: (cx - w / 2) * W, y: (cy - h / 2) * H, width: w * W, height: h * H } });
        }
    if (found.length === 0) return [];
    const bt = tensor(Float32Array.from(found.flatMap((f) => [f.box.y / H, f.box.x / W, (f.box.y + f.box.height) / H, (f.box.x + f.box.width) / W].map((v) => v * S))), { shape: [found.length, 4] });
    const keep = nonMaxSuppression(bt, found.map((f) => f.score), { iouThreshold: o.iouThreshold ?? 0.4, scoreThreshold: -1 });
    bt.dispose();
    return keep.map((i) => found[i]);
  }

  /** Releases the networks' weights. */
  async dispose(): Promise<void> {
    for (const p of [this.ssdNet, this.tinyNet, this.landmarkNet]) if (p) (await p).net.dispose();
  }
}

/** An image that is probably a face crop already (LFW 250x250, AT&T 92x112 ...): square-ish and small. */
export function looksLikeFaceCrop(img: { width: number; height: number }): boolean {
  const r = img.width / img.height;
  return Math.max(img.width, img.height) <= 400 && r >= 0.7 && r <= 1.43;
}

// The one entry point for detection: a detector per (model, device), loaded once and shared.
const shared = new Map<string, Promise<FaceDetector>>();

/** A FaceDetector loaded once per (model, device) and shared. */
export function sharedDetector(options: { model?: 'ssd' | 'tiny'; device?: Device } = {}): Promise<FaceDetector> {
  const key = `${options.model ?? 'ssd'}@${options.device ?? 'cpu'}`;
  let d = shared.get(key);
  if (!d) {
    d = FaceDetector.load(options);
    d.catch(() => shared.delete(key));
    shared.set(key, d);
  }
  return d;
}

/** Every face (box, score, 68 landmarks, image pixels), face-api's SSD defaults. */
export async function detectFaces(input: ImageInput | RgbImage, options: DetectOptions & { device?: Device } = {}): Promise<DetectedFace[]> {
  const { device, ...o } = options;
  return (await sharedDetector({ device })).detect(input, o);
}
