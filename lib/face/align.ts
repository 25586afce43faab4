// Face crops for the recognition net, from 68 landmarks.
//  * 'box': face-api's own descriptor crop (FaceLandmarks.alignDlib + extractFaceTensors):
//    an axis-aligned square around eyes and mouth, clipped at the border, then
//    centred zero padToSquare + legacy bilinear resize, exactly as
//    computeFaceDescriptor feeds the net (docs/faceapi-architecture.md (e)).
//  * 'similarity': dlib's face chip (get_face_chip_details, padding 0.25): a
//    similarity transform (rotation, uniform scale, translation) taking 5 points
//    derived from the 68 (outer/inner eye corners, nose base) to dlib's template, so
//    the eyes are level at a fixed scale and position; sampled with
//    aten::affine_grid_generator + aten::grid_sampler (bilinear), with an integer
//    average-pool first when shrinking by 2x or more (dlib uses a pyramid there).
//  * 'arcface': the same similarity warp to insightface's 5-point template of
//    112 x 112 crops (eye centres, nose tip, mouth corners; scaled to `size`, no
//    padding), for ArcFace-style networks (MobileFaceNet, insightface's models).
import { z } from 'zod';
import { invalid, parseOptions } from '../core/errors';
import type { RgbImage } from '../image';
import { traced } from '../core/jit';
import * as F from '../ops';
import { Tensor, tensor, tidy } from '../core';
import type { Point } from '../models/face-landmark-68';
import { ImageTensor, clipBox } from '../image/image-tensor';
import { NoFaceError } from '../core/errors';
import { ImageInput, loadImage } from '../image';
import type { Device } from '../core';
import { DetectedFace, DetectionStage, sharedDetector } from './detect';

export type AlignMethod = 'similarity' | 'box' | 'arcface';
export const ALIGN_METHODS: readonly AlignMethod[] = ['similarity', 'box', 'arcface'];

const alignOptions = z
  .object({
    /** 'similarity' (default: better LFW verification, see scripts/alignment-compare.ts), face-api's 'box', or 'arcface' (insightface's template). */
    method: z.enum(['similarity', 'box', 'arcface']).optional(),
    /** Output side in pixels (the recognition net takes 150). */
    size: z.number().int().min(16).max(1024).default(150),
    /** Similarity only: margin around the template, as dlib's `padding` (0.25 for the recognition net). */
    padding: z.number().min(0).max(2).default(0.25),
  })
  .strict();
export type AlignOptions = z.input<typeof alignOptions>;

/** Default method of alignFace (set from scripts/alignment-compare.ts results). */
export let DEFAULT_ALIGN_METHOD: AlignMethod = 'similarity';
export function setDefaultAlignMethod(m: AlignMethod): void {
  DEFAULT_ALIGN_METHOD = m;
}

/** dlib's 5-point template (unit square, before padding) and the 68-point index each point comes from. */
export const DLIB_TEMPLATE: { index: number; x: number; y: number }[] = [
  { index: 45, x: 0.8595674595992, y: 0.2134981538014 }, // outer corner of the eye on the image's right
  { index: 42, x: 0.6460604764104, y: 0.2289674387677 }, // its inner corner
  { index: 36, x: 0.1205750620789, y: 0.2137274526848 }, // outer corner of the eye on the image's left
  { index: 39, x: 0.3340850613712, y: 0.2290642403242 }, // its inner corner
  { index: 33, x: 0.4901123135679, y: 0.6277975316475 }, // base of the nose
];

/**
 * insightface's 5-point template for 112 x 112 ArcFace crops (arcface_dst in
 * insightface's face_align.py), with the 68-point indices each point is the
 * mean of: eye centres (the six points around each eye), nose tip, mouth corners.
 */
export const ARCFACE_TEMPLATE: { indices: number[]; x: number; y: number }[] = [
  { indices: [36, 37, 38, 39, 40, 41], x: 38.2946 / 112, y: 51.6963 / 112 }, // eye on the image's left
  { indices: [42, 43, 44, 45, 46, 47], x: 73.5318 / 112, y: 51.5014 / 112 }, // eye on the image's right
  { indices: [30], x: 56.0252 / 112, y: 71.7366 / 112 }, // nose tip
  { indices: [48], x: 41.5493 / 112, y: 92.3655 / 112 }, // mouth corner on the left
  { indices: [54], x: 70.7299 / 112, y: 92.2041 / 112 }, // mouth corner on the right
];

/** The 5 points ArcFace alignment uses, from 68 landmarks. */
export function arcfacePoints(landmarks: Point[]): Point[] {
  return ARCFACE_TEMPLATE.map((t) => ({ x: t.indices.reduce((a, i) => a + landmarks[i].x, 0) / t.indices.length, y: t.indices.reduce((a, i) => a + landmarks[i].y, 0) / t.indices.length }));
}

/** Least-squares similarity dst ~ [a -b; b a] src + t. */
export function similarityTransform(src: Point[], dst: Point[]): { a: number; b: number; tx: number; ty: number } {
  const n = src.length;
  const ms = src.reduce((m, p) => ({ x: m.x + p.x / n, y: m.y + p.y / n }), { x: 0, y: 0 });
  const md = dst.reduce((m, p) => ({ x: m.x + p.x / n, y: m.y + p.y / n }), { x: 0, y: 0 });
  let sxx = 0;
  let num_a = 0;
  let num_b = 0;
  for (let i = 0; i < n; i++) {
    const xs = src[i].x - ms.x;
    const ys = src[i].y - ms.y;
    const xd = dst[i].x - md.x;
    const yd = dst[i].y - md.y;
    sxx += xs * xs + ys * ys;
    num_a += xs * xd + ys * yd;
    num_b += xs * yd - ys * xd;
  }
  if (!(sxx > 0)) invalid('landmarks', 'distinct points', src);
  const a = num_a / sxx;
  const b = num_b / sxx;
  return { a, b, tx: md.x - (a * ms.x - b * ms.y), ty: md.y - (b * ms.x + a * ms.y) };
}

/** face-api's alignDlib rect (axis-aligned, image pixels) from 68 landmarks. */
export function faceApiDescriptorRect(landmarks: Point[]): { x: number; y: number; width: number; height: number } {
  const mean = (a: number, b: number) => {
    const pts = landmarks.slice(a, b);
    return { x: pts.reduce((s, p) => s + p.x, 0) / pts.length, y: pts.reduce((s, p) => s + p.y, 0) / pts.length };
  };
  const le = mean(36, 42);
  const re = mean(42, 48);
  const mo = mean(48, 68);
  const dist = (p: Point, q: Point) => Math.hypot(p.x - q.x, p.y - q.y);
  const size = Math.floor((dist(mo, le) + dist(mo, re)) / 2 / 0.45);
  const ref = { x: (le.x + re.x + mo.x) / 3, y: (le.y + re.y + mo.y) / 3 };
  const x = Math.floor(Math.max(0, ref.x - 0.5 * size));
  const y = Math.floor(Math.max(0, ref.y - 0.43 * size));
  return { x, y, width: size, height: size };
}

const samplers = new Map<string, (...t: Tensor[]) => Promise<Tensor[]>>();
function sampler(pool: number, size: number) {
  const key = `${pool}x${size}`;
  let f = samplers.get(key);
  if (!f) {
    f = traced((img: Tensor, theta: Tensor) =>
      tidy(() => {
        let x = F.unsqueeze(F.permute(img, [2, 0, 1]), 0).to('float32');
        if (pool > 1) x = F.avgPool2d(x, pool, { stride: pool });
        const grid = F.callOp('aten::affine_grid_generator', '', theta, [1, 3, size, size], true) as Tensor;
        const out = F.callOp('aten::grid_sampler', '', x, grid, 0, 0, true) as Tensor; // bilinear, zeros, align_corners
        return F.permute(F.squeeze(F.round(F.clamp(out, 0, 255)), 0), [1, 2, 0]).to('uint8').contiguous();
      }),
      { sharedInputs: true }, // the photo is read in place, not copied for each face (lib/core/jit.ts)
    );
    samplers.set(key, f);
  }
  return f;
}

async function toRgb(t: Tensor): Promise<RgbImage> {
  const [h, w] = t.shape;
  const c = t.to('cpu');
  const data = c.data() as Uint8Array;
  if (c !== t) c.dispose();
  t.dispose();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: w, height: h, channels: 3 };
}

/**
 * A face crop of `size` x `size` pixels from 68 landmarks (image pixels):
 * 'similarity' (eyes level, dlib chip geometry) or 'box' (face-api's axis-aligned descriptor crop).
 */
export async function alignFace(img: RgbImage | ImageTensor, landmarks: Point[], options: AlignOptions = {}): Promise<RgbImage> {
  const o = parseOptions(alignOptions, options);
  if (!Array.isArray(landmarks) || landmarks.length !== 68) invalid('landmarks', '68 points {x, y}', landmarks);
  const it = img instanceof ImageTensor ? img : new ImageTensor(img);
  try {
    const method = o.method ?? DEFAULT_ALIGN_METHOD;
    if (method === 'box') {
      const crop = clipBox(faceApiDescriptorRect(landmarks), it.width, it.height);
      if (!crop) invalid('landmarks', 'points inside the image', landmarks);
      const x = await it.squareInput(o.size, true, crop);
      const u8 = tidy(() => F.permute(F.squeeze(F.round(F.clamp(x, 0, 255)), 0), [1, 2, 0]).to('uint8').contiguous());
      x.dispose();
      return await toRgb(u8);
    }
    // similarity: image pixel -> chip pixel, then invert for sampling
    const S = o.size;
    const arc = method === 'arcface';
    const src = arc ? arcfacePoints(landmarks) : DLIB_TEMPLATE.map((t) => landmarks[t.index]);
    const dst = arc
      ? ARCFACE_TEMPLATE.map((t) => ({ x: t.x * S, y: t.y * S }))
      : DLIB_TEMPLATE.map((t) => ({ x: ((o.padding + t.x) / (2 * o.padding + 1)) * S, y: ((o.padding + t.y) / (2 * o.padding + 1)) * S }));
    const { a, b, tx, ty } = similarityTransform(src, dst);
    const scale = Math.hypot(a, b); // chip pixels per image pixel
    const pool = Math.max(1, Math.min(Math.floor(1 / scale), Math.floor(Math.min(it.width, it.height) / 2)));
    // inverse: image = [a b; -b a] / s^2 (chip - t), then into pooled pixels: (p - (k-1)/2) / k
    const s2 = a * a + b * b;
    const inv = [
      [a / s2, b / s2, -(a * tx + b * ty) / s2],
      [-b / s2, a / s2, (b * tx - a * ty) / s2],
    ];
    const Wp = Math.floor(it.width / pool);
    const Hp = Math.floor(it.height / pool);
    const toPooled = (row: number[]) => [row[0] / pool, row[1] / pool, (row[2] - (pool - 1) / 2) / pool];
    const Mx = toPooled(inv[0]);
    const My = toPooled(inv[1]);
    // normalised (align_corners): n = 2 p / (L - 1) - 1; chip pixel u = (n_u + 1) (S - 1) / 2
    const h = (S - 1) / 2;
    const row = (M: number[], L: number) => {
      const k = 2 / (L - 1);
      return [k * M[0] * h, k * M[1] * h, k * (M[0] * h + M[1] * h + M[2]) - 1];
    };
    const theta = tensor(Float32Array.from([...row(Mx, Wp), ...row(My, Hp)]), { shape: [1, 2, 3], device: it.device });
    try {
      const [out] = await sampler(pool, S)(it.tensor, theta);
      return await toRgb(out);
    } finally {
      theta.dispose();
    }
  } finally {
    if (it !== img) it.dispose();
  }
}

export interface AlignedFace extends DetectedFace {
  /** The aligned size x size crop fed to the embedder. */
  aligned: RgbImage;
  stage?: DetectionStage;
}

/**
 * The largest face, aligned (default 'similarity', 150 px). Uses the fallback
 * chain of the detector (detectLargest); throws NoFaceError when nothing is found.
 */
export async function alignLargestFace(
  input: ImageInput | RgbImage,
  options: { method?: AlignMethod; size?: number; fallback?: boolean; minConfidence?: number; device?: Device } = {},
): Promise<AlignedFace> {
  const img = await loadImage(input as ImageInput);
  const det = await sharedDetector({ device: options.device });
  const face = await det.detectLargest(img, { fallback: options.fallback, minConfidence: options.minConfidence });
  if (!face) throw new NoFaceError(`no face found in the ${img.width}x${img.height} image`);
  return { ...face, aligned: await alignFace(img, face.landmarks, { method: options.method, size: options.size ?? 150 }) };
}
