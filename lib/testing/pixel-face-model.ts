// A deliberately simple FaceModelLike: the image's grey levels averaged down to a
// 16 x 8 grid, centred and scaled to unit length (128 values). It is not a face
// recogniser; it exists so that galleries, the service and the CLI can be
// tested and load-tested without model weights, deterministically. With
// `detect: true` an image of (almost) uniform grey counts as "no face".
import { NoFaceError } from '../core/errors';
import { ImageInput, loadImage } from '../image';
import type { Box, Point } from '../face/detect';
import { FaceQuality, laplacianVariance } from '../face/quality';
import type { FaceModelLike } from '../gallery/gallery';

export class PixelFaceModel implements FaceModelLike {
  readonly dim = 128;
  readonly threshold: number;
  readonly name: string;
  readonly weightsHash: string;
  readonly device = 'cpu';
  /** Images embedded so far (for tests). */
  calls = 0;

  constructor(options: { name?: string; weightsHash?: string; threshold?: number } = {}) {
    this.name = options.name ?? 'pixels-16x8';
    this.weightsHash = options.weightsHash ?? 'none-v1';
    this.threshold = options.threshold ?? 0.5;
  }

  async embed(input: ImageInput, options: { detect: boolean } = { detect: true }): Promise<Float32Array> {
    return (await this.embedBatch([input], options))[0];
  }

  async embedBatch(inputs: ImageInput[], options: { detect: boolean } = { detect: true }): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (const input of inputs) {
      const img = await loadImage(input);
      this.calls++;
      const gw = 8;
      const gh = 16;
      const sums = new Float64Array(gw * gh);
      const counts = new Float64Array(gw * gh);
      for (let y = 0; y < img.height; y++) {
        const cy = Math.min(gh - 1, Math.floor((y * gh) / img.height));
        for (let x = 0; x < img.width; x++) {
          const cx = Math.min(gw - 1, Math.floor((x * gw) / img.width));
          const i = (y * img.width + x) * 3;
          sums[cy * gw + cx] += (img.data[i] + img.data[i + 1] + img.data[i + 2]) / 3;
          counts[cy * gw + cx]++;
        }
      }
      const v = new Float32Array(this.dim);
      let mean = 0;
      for (let i = 0; i < v.length; i++) mean += (v[i] = counts[i] ? sums[i] / counts[i] : 0) / v.length;
      let norm = 0;
      for (let i = 0; i < v.length; i++) norm += (v[i] -= mean) ** 2;
      norm = Math.sqrt(norm);
      if (norm < 1e-3 * Math.sqrt(v.length)) {
        if (options.detect) throw new NoFaceError('no face found in the image (it is uniform)');
        norm = 1;
      }
      for (let i = 0; i < v.length; i++) v[i] /= norm;
      out.push(v);
    }
    return out;
  }

  /**
   * The photo library's view: the whole image is one "face" (box = the image,
   * quality from its size and sharpness, yaw 0), none in a uniform image.
   */
  async faces(input: ImageInput): Promise<{ box: Box; score: number; landmarks: Point[]; descriptor: Float32Array; quality: FaceQuality }[]> {
    const img = await loadImage(input);
    let descriptor: Float32Array;
    try {
      [descriptor] = await this.embedBatch([img], { detect: true });
    } catch (e) {
      if (e instanceof NoFaceError) return [];
      throw e;
    }
    const box = { x: 0, y: 0, width: img.width, height: img.height };
    return [{ box, score: 1, landmarks: [], descriptor, quality: { size: img.width, score: 1, stage: 'center', sharpness: laplacianVariance(img), yaw: 0 } }];
  }
}
