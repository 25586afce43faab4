// Enrolment quality: a blurred, tiny or profile face enrolled once poisons
// every later answer for that person, so enrol() measures the face first and
// refuses a bad one with the reasons (FaceQualityError; `force: true` overrides).
import { TorchfaceError } from '../core/errors';
import type { RgbImage } from '../image';
import type { Box, Point } from '../models/face-landmark-68';

/** What was measured on a detected face. */
export interface FaceQuality {
  /** Face box width in the original image, pixels. */
  size: number;
  /** Detection score (0 for a fallback box without a score). */
  score: number;
  /** Which detection stage found the face. */
  stage: string;
  /** Variance of the Laplacian of the aligned grey crop: low means blurred. */
  sharpness: number;
  /** Head turn from the landmarks: nose tip offset from the eyes' midpoint along the eye line, over the eye distance (0 frontal, ~0.5 profile). */
  yaw: number;
}

export interface QualityLimits {
  minSize: number;
  minScore: number;
  minSharpness: number;
  maxYaw: number;
}

/**
 * Defaults, measured with `node dist/scripts/face-quality.js 40` on 40 LFW
 * DevTrain photos (sharpness p5 10.0, median 30; |yaw| p95 0.27; score p5 0.47;
 * face width min 75 px) and the same photos blurred with sigma 3 (sharpness max
 * 8.4) or shrunk to 60 px (face width p95 36 px). See docs/accuracy.md.
 */
export const QUALITY_DEFAULTS: QualityLimits = { minSize: 40, minScore: 0.3, minSharpness: 9, maxYaw: 0.35 };

/** A face too poor to enrol: `problems` says why (size, score, sharpness, yaw), `quality` what was measured. */
export class FaceQualityError extends TorchfaceError {
  override readonly code: string = 'ERR_FACE_QUALITY';
  constructor(
    readonly problems: string[],
    readonly quality: FaceQuality,
    where = 'the face',
  ) {
    super(`${where} is not good enough to enrol: ${problems.join('; ')} (pass { force: true } to enrol it anyway)`);
  }
}

/** Variance of the 4-neighbour Laplacian of the grey image (interior pixels). */
export function laplacianVariance(img: RgbImage): number {
  const { width: w, height: h, data } = img;
  const grey = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) grey[i] = 0.299 * data[i * 3] + 0.587 * data[i * 3 + 1] + 0.114 * data[i * 3 + 2];
  let sum = 0;
  let sq = 0;
  let n = 0;
  for (let y = 1; y < h - 1; y++)
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      const l = grey[i - 1] + grey[i + 1] + grey[i - w] + grey[i + w] - 4 * grey[i];
      sum += l;
      sq += l * l;
      n++;
    }
  return n ? sq / n - (sum / n) ** 2 : 0;
}

/** Head turn from 68 landmarks (see FaceQuality.yaw). */
export function yawFromLandmarks(pts: Point[]): number {
  const l = pts[36];
  const r = pts[45];
  const nose = pts[30];
  const ex = r.x - l.x;
  const ey = r.y - l.y;
  const iod = Math.hypot(ex, ey);
  if (!(iod > 0)) return Infinity;
  const mx = (l.x + r.x) / 2;
  const my = (l.y + r.y) / 2;
  return ((nose.x - mx) * ex + (nose.y - my) * ey) / (iod * iod);
}

export function assessFace(face: { box: Box; score: number; landmarks: Point[]; aligned: RgbImage; stage?: string }): FaceQuality {
  return { size: face.box.width, score: face.score, stage: face.stage ?? 'ssd', sharpness: laplacianVariance(face.aligned), yaw: yawFromLandmarks(face.landmarks) };
}

/** What is wrong with a face for enrolment (empty when it is good enough). */
export function qualityProblems(q: FaceQuality, limits: QualityLimits = QUALITY_DEFAULTS): string[] {
  const out: string[] = [];
  if (q.size < limits.minSize) out.push(`the face is ${q.size.toFixed(0)} px wide (at least ${limits.minSize})`);
  if (q.score < limits.minScore) out.push(`the detection score is ${q.score.toFixed(2)} (at least ${limits.minScore}; stage ${q.stage})`);
  if (q.sharpness < limits.minSharpness) out.push(`the face is blurred (sharpness ${q.sharpness.toFixed(0)}, at least ${limits.minSharpness})`);
  if (Math.abs(q.yaw) > limits.maxYaw) out.push(`the head is turned (yaw ${q.yaw.toFixed(2)}, at most ${limits.maxYaw} either way)`);
  return out;
}
