// The detection half of FaceModel, as standalone functions: find faces, align
// the largest one, and run any embedder on aligned crops. FaceModel
// (lib/face/model.ts) delegates here: detect(), embed(input, { detect: true }), faces().
import { NoFaceError } from '../core/errors';
import { ImageInput, RgbImage, loadImage } from '../image';
import type { Device } from '../core';
import { AlignMethod, alignFace } from './align';
import { DetectOptions, DetectedFace, DetectionStage, FaceDetector } from './detect';

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

export interface AlignedFace extends DetectedFace {
  /** The aligned size x size crop fed to the embedder. */
  aligned: RgbImage;
  stage?: DetectionStage;
}

/**
 * The largest face, aligned (default 'similarity', 150 px). Uses the fallback
 * chain of FaceDetector.detectLargest; throws NoFaceError when nothing is found.
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

/** Every face with its aligned crop (for faces(): descriptors for each). */
export async function alignAllFaces(input: ImageInput | RgbImage, options: DetectOptions & { method?: AlignMethod; size?: number; device?: Device } = {}): Promise<AlignedFace[]> {
  const { method, size, device, ...o } = options;
  const img = await loadImage(input as ImageInput);
  const faces = await (await sharedDetector({ device })).detect(img, o);
  const out: AlignedFace[] = [];
  for (const f of faces) out.push({ ...f, aligned: await alignFace(img, f.landmarks, { method, size: size ?? 150 }) });
  return out;
}

/** embed(input, { detect: true }) for any embedder of aligned 150x150 crops. */
export async function embedLargestFace<E>(embedCrop: (crop: RgbImage) => Promise<E>, input: ImageInput | RgbImage, options: { method?: AlignMethod; fallback?: boolean } = {}): Promise<E> {
  const face = await alignLargestFace(input, options);
  return embedCrop(face.aligned);
}

/** faces(photo): every face with box, score, landmarks and descriptor. */
export async function facesWithDescriptors<E>(
  embedCrop: (crop: RgbImage) => Promise<E>,
  input: ImageInput | RgbImage,
  options: DetectOptions & { method?: AlignMethod } = {},
): Promise<(DetectedFace & { descriptor: E })[]> {
  const faces = await alignAllFaces(input, options);
  const out: (DetectedFace & { descriptor: E })[] = [];
  for (const f of faces) out.push({ box: f.box, score: f.score, landmarks: f.landmarks, descriptor: await embedCrop(f.aligned) });
  return out;
}
