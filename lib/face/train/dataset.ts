// Face data sets for metric learning: a folder with one sub-folder per identity
// (`<set>/<identity>/<image>`), split by identity into train / validation
// (seeded), a P x K batch sampler, and an asynchronous loader that decodes and
// augments images with sharp (on libuv's threads) and prefetches: the next
// batch is being decoded while the current step trains.
//
// Everything random here comes from small seeded generators derived from
// (seed, epoch, step), so a run resumed at an epoch boundary sees exactly the
// batches and augmentations an uninterrupted run would.
import { mixSeed, seededRandom, shuffle } from '../../util/random';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { invalid } from '../../core/errors';
import { RgbImage, savePng } from '../../image';
import { Tensor, tensor } from '../../core';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.pgm', '.ppm', '.webp', '.bmp', '.tif', '.tiff', '.gif'];

export interface Identity {
  /** Folder name, prefixed with the data set's name when several are combined (e.g. 'att/s1'). */
  name: string;
  files: string[];
}

/** The identities (sub-folders with at least `minImages` images) of a data set folder, sorted by name. */
export function scanIdentities(dir: string, options: { minImages?: number; prefix?: string; maxPerIdentity?: number } = {}): Identity[] {
  if (typeof dir !== 'string' || !fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) invalid('dir', 'a folder with one sub-folder per identity', dir);
  const min = options.minImages ?? 1;
  const out: Identity[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const sub = path.join(dir, name);
    if (!fs.statSync(sub).isDirectory()) continue;
    let files = fs
      .readdirSync(sub)
      .filter((f) => IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase()))
      .sort()
      .map((f) => path.join(sub, f));
    if (options.maxPerIdentity) files = files.slice(0, options.maxPerIdentity);
    if (files.length >= min) out.push({ name: options.prefix ? `${options.prefix}/${name}` : name, files });
  }
  return out;
}

/** Splits identities (not images) into train and validation sets, seeded. */
export function splitByIdentity(identities: Identity[], options: { validationFraction?: number; seed?: number } = {}): { train: Identity[]; validation: Identity[] } {
  const frac = options.validationFraction ?? 0.2;
  if (!(frac >= 0 && frac < 1)) invalid('validationFraction', 'a number in [0, 1)', frac);
  const order = shuffle(identities, seededRandom(mixSeed(options.seed ?? 0, 0x5eed)));
  const nVal = Math.round(identities.length * frac);
  const byName = (a: Identity, b: Identity) => (a.name < b.name ? -1 : 1);
  return { validation: order.slice(0, nVal).sort(byName), train: order.slice(nVal).sort(byName) };
}

export interface BatchSpec {
  files: string[];
  /** Identity index (into the training identities) of each image. */
  labels: number[];
  /** A seed per image for its augmentation. */
  seeds: number[];
}

/**
 * P x K sampling: each batch has P identities (each identity once per pass,
 * in a seeded order) and K images of each (without replacement when the
 * identity has K or more, else with repeats). Identities need >= 2 images.
 */
export class PKSampler {
  readonly identities: Identity[];
  constructor(
    identities: Identity[],
    readonly P: number,
    readonly K: number,
    readonly seed = 0,
  ) {
    if (!Number.isInteger(P) || P < 2) invalid('P', 'an integer >= 2 (identities per batch)', P);
    if (!Number.isInteger(K) || K < 2) invalid('K', 'an integer >= 2 (images per identity)', K);
    this.identities = identities.filter((i) => i.files.length >= 2);
    if (this.identities.length < P) invalid('identities', `at least P = ${P} identities with 2 or more images`, `${this.identities.length}`);
  }
  get images(): number {
    return this.identities.reduce((n, i) => n + i.files.length, 0);
  }
  /** Batches per epoch: enough to show about every image once. */
  stepsPerEpoch(): number {
    return Math.max(1, Math.round(this.images / (this.P * this.K)));
  }
  /** The batches of one epoch (deterministic in seed and epoch). */
  epoch(epoch: number, steps = this.stepsPerEpoch()): BatchSpec[] {
    const random = seededRandom(mixSeed(this.seed, epoch, 0xba7c4));
    const out: BatchSpec[] = [];
    let queue: number[] = [];
    for (let s = 0; s < steps; s++) {
      const ids: number[] = [];
      while (ids.length < this.P) {
        if (queue.length === 0) queue = shuffle([...this.identities.keys()], random);
        const next = queue.shift()!;
        if (!ids.includes(next)) ids.push(next);
      }
      const files: string[] = [];
      const labels: number[] = [];
      const seeds: number[] = [];
      for (const id of ids) {
        const f = this.identities[id].files;
        const pick = f.length >= this.K ? shuffle(f, random).slice(0, this.K) : Array.from({ length: this.K }, (_, k) => (k < f.length ? f[k] : f[Math.floor(random() * f.length)]));
        for (const file of pick) {
          files.push(file);
          labels.push(id);
          seeds.push(Math.floor(random() * 2 ** 32));
        }
      }
      out.push({ files, labels, seeds });
    }
    return out;
  }
}

/**
 * The P x K sampler of a data-parallel run (torch's DistributedSampler, for
 * face batches): each step draws one global batch of P * worldSize identities
 * exactly as `new PKSampler(identities, P * worldSize, K, seed)` would, and
 * rank r trains on identities r * P .. (r + 1) * P - 1 of it. So the ranks see
 * different identities in each step, a new shuffle each epoch, the same
 * shuffle on every rank, and together exactly the images one process with P *
 * worldSize identities per batch would see. (Triplets are mined within each
 * rank's share, as PyTorch's DDP computes each rank's loss on its own batch.)
 */
export class DistributedSampler {
  private readonly global: PKSampler;
  constructor(
    identities: Identity[],
    readonly P: number,
    readonly K: number,
    readonly seed: number,
    readonly rank: number,
    readonly worldSize: number,
  ) {
    if (!Number.isInteger(worldSize) || worldSize < 1) invalid('worldSize', 'a positive integer', worldSize);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) invalid('rank', `an integer 0..${worldSize - 1}`, rank);
    this.global = new PKSampler(identities, P * worldSize, K, seed);
  }
  get identities(): Identity[] {
    return this.global.identities;
  }
  get images(): number {
    return this.global.images;
  }
  /** Steps per epoch: enough global batches to show about every image once. */
  stepsPerEpoch(): number {
    return this.global.stepsPerEpoch();
  }
  /** This rank's batches of one epoch. */
  epoch(epoch: number, steps = this.stepsPerEpoch()): BatchSpec[] {
    const n = this.P * this.K;
    const from = this.rank * n;
    return this.global.epoch(epoch, steps).map((b) => ({ files: b.files.slice(from, from + n), labels: b.labels.slice(from, from + n), seeds: b.seeds.slice(from, from + n) }));
  }
}

export interface AugmentOptions {
  /** Random crop of `size` from the image resized to size * (1 + cropMargin) (default 0.15). */
  cropMargin?: number;
  /** Probability of a horizontal flip (default 0.5). */
  flip?: number;
  /** Brightness offset up to +-brightness * 255 (default 0.1). */
  brightness?: number;
  /** Contrast factor in [1 - contrast, 1 + contrast] (default 0.2). */
  contrast?: number;
}

export interface LoadOptions {
  /** Network input side. */
  size: number;
  /** Augment (training) or centre-crop only (evaluation). */
  augment?: boolean | AugmentOptions;
  /**
   * A crop of the source image (relative x, y, width, height) applied first,
   * e.g. the face region of LFW's 250 x 250 deep-funneled images.
   */
  region?: { x: number; y: number; width: number; height: number };
}

/** LFW deep-funneled 250 x 250: the central face region (hair to chin), close to how tight crops like AT&T frame a face. */
export const LFW_FACE_REGION = { x: 0.25, y: 0.22, width: 0.5, height: 0.56 };

/**
 * Decodes one image (path or encoded buffer) into `size` x `size` RGB pixels:
 * optional region crop, square 'cover' resize to size * (1 + margin), then a
 * random (augment) or central crop, random flip and brightness/contrast. All in
 * one sharp pipeline, off the main thread.
 */
export async function loadFaceImage(input: string | Buffer, seed: number, options: LoadOptions): Promise<RgbImage> {
  const aug: AugmentOptions | null = options.augment ? (options.augment === true ? {} : options.augment) : null;
  const size = options.size;
  const margin = aug ? aug.cropMargin ?? 0.15 : 0.15;
  const big = Math.max(size, Math.round(size * (1 + margin)));
  const random = seededRandom(seed);
  let img = sharp(input, { failOn: 'truncated' }).rotate();
  if (options.region) {
    const meta = await sharp(input).metadata();
    const W = meta.width ?? 0;
    const H = meta.height ?? 0;
    const r = options.region;
    const left = Math.max(0, Math.round(r.x * W));
    const top = Math.max(0, Math.round(r.y * H));
    img = img.extract({ left, top, width: Math.min(W - left, Math.round(r.width * W)), height: Math.min(H - top, Math.round(r.height * H)) });
  }
  img = img.resize(big, big, { fit: 'cover', position: 'centre' });
  const left = aug ? Math.floor(random() * (big - size + 1)) : Math.floor((big - size) / 2);
  const top = aug ? Math.floor(random() * (big - size + 1)) : Math.floor((big - size) / 2);
  img = img.extract({ left, top, width: size, height: size });
  if (aug) {
    if (random() < (aug.flip ?? 0.5)) img = img.flop();
    const c = aug.contrast ?? 0.2;
    const b = aug.brightness ?? 0.1;
    const a = 1 + (random() * 2 - 1) * c;
    const off = (random() * 2 - 1) * b * 255 + 128 * (1 - a); // contrast about mid-grey, then brightness
    img = img.linear(a, off);
  }
  const { data, info } = await img.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const px = new Uint8Array(size * size * 3);
  if (info.channels === 3) px.set(data);
  else for (let i = 0; i < size * size; i++) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = data[i * info.channels];
  return { data: px, width: size, height: size, channels: 3 };
}

/** Stacks size x size RGB images into a float32 N x 3 x size x size tensor of 0..255 values. */
export function imagesToBatch(images: RgbImage[]): Tensor {
  if (images.length === 0) invalid('images', 'at least one image', images);
  const { width, height } = images[0];
  const hw = width * height;
  const out = new Float32Array(images.length * 3 * hw);
  images.forEach((img, n) => {
    if (img.width !== width || img.height !== height) invalid(`images[${n}]`, `${width}x${height}`, `${img.width}x${img.height}`);
    const base = n * 3 * hw;
    const d = img.data;
    for (let i = 0; i < hw; i++) {
      out[base + i] = d[3 * i];
      out[base + hw + i] = d[3 * i + 1];
      out[base + 2 * hw + i] = d[3 * i + 2];
    }
  });
  return tensor(out, { shape: [images.length, 3, height, width] });
}

/**
 * Yields decoded batches, keeping up to `prefetch` batches decoding ahead (sharp
 * runs them on libuv's thread pool while the caller's training step computes).
 */
export async function* prefetchBatches(specs: BatchSpec[], options: LoadOptions & { prefetch?: number }): AsyncGenerator<{ spec: BatchSpec; images: RgbImage[]; waitedMs: number }> {
  const ahead = Math.max(1, options.prefetch ?? 2);
  const pending: Promise<RgbImage[]>[] = [];
  const start = (i: number) => Promise.all(specs[i].files.map((f, k) => loadFaceImage(f, specs[i].seeds[k], options)));
  let next = 0;
  for (let i = 0; i < specs.length; i++) {
    while (next < specs.length && next < i + ahead) {
      const p = start(next++);
      p.catch(() => undefined); // handled when awaited
      pending.push(p);
    }
    const t0 = Date.now();
    const images = await pending.shift()!;
    yield { spec: specs[i], images, waitedMs: Date.now() - t0 };
  }
}

/**
 * Detects and aligns the largest face of every image of a data set once, and
 * writes the crops as PNG files in the same identity layout under `outDir`
 * (a cache: images already there are skipped). `align(file)` is the detector
 * (e.g. lib/face/align.ts's alignLargestFace); images without a face are listed
 * in the returned report and left out.
 */
export async function prepareAlignedDataset(
  identities: Identity[],
  outDir: string,
  align: (file: string) => Promise<RgbImage>,
  options: { onProgress?: (done: number, total: number) => void } = {},
): Promise<{ identities: Identity[]; aligned: number; cached: number; failed: string[] }> {
  const total = identities.reduce((n, i) => n + i.files.length, 0);
  let done = 0;
  let aligned = 0;
  let cached = 0;
  const failed: string[] = [];
  const out: Identity[] = [];
  for (const id of identities) {
    const dir = path.join(outDir, id.name.replace(/[^A-Za-z0-9_.-]/g, '_'));
    fs.mkdirSync(dir, { recursive: true });
    const files: string[] = [];
    for (const f of id.files) {
      const key = crypto.createHash('sha1').update(f).digest('hex').slice(0, 8);
      const target = path.join(dir, `${path.basename(f, path.extname(f))}-${key}.png`);
      const failMark = `${target}.noface`;
      if (fs.existsSync(target)) {
        cached++;
        files.push(target);
      } else if (fs.existsSync(failMark)) failed.push(f);
      else {
        try {
          await savePng(target, await align(f));
          aligned++;
          files.push(target);
        } catch (e) {
          failed.push(f);
          fs.writeFileSync(failMark, String((e as Error).message));
        }
      }
      options.onProgress?.(++done, total);
    }
    if (files.length) out.push({ name: id.name, files });
  }
  return { identities: out, aligned, cached, failed };
}
