// Image input and output for every feature: decode whatever the user passes
// (a path, an encoded Buffer, raw pixels, a Tensor) to RGB pixels with sharp,
// on sharp's own threads; turn pixels into tensors and tensors back into PNGs.
import * as fs from 'fs';
import sharp from 'sharp';
import { z } from 'zod';
import { ImageError, describe, invalid, parseOptions } from '../core/errors';
import * as F from '../ops';
import { Tensor, tensor } from '../core';
import { sharingCpu } from '../core/threads';

/** Raw interleaved pixels (HWC), 8 bits per channel. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray | Buffer;
  width: number;
  height: number;
  /** 1 (grey), 3 (RGB) or 4 (RGBA) */
  channels: number;
}

/**
 * What every torchface function that takes a picture accepts: a file path, an
 * encoded image Buffer (JPEG, PNG, WebP, ...), raw pixels, or a Tensor (uint8
 * H x W x C, or float C x H x W / 1 x C x H x W with values in 0..255).
 */
export type ImageInput = string | Buffer | Uint8Array | RawImage | Tensor;

/** An RGB image: data is H x W x 3, row-major. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

export const DEFAULT_MAX_PIXELS = 40_000_000;

const decodeOptions = z
  .object({
    /** Reject images with more pixels than this (decompression bombs). */
    maxPixels: z.number().int().positive().default(DEFAULT_MAX_PIXELS),
  })
  .strict();
export type DecodeOptions = z.input<typeof decodeOptions>;

function isRawImage(v: unknown): v is RawImage {
  return !!v && typeof v === 'object' && 'data' in v && 'width' in v && 'height' in v && !(v instanceof Tensor);
}

function checkRaw(img: RawImage, maxPixels: number): void {
  const { width, height, channels, data } = img;
  if (!Number.isInteger(width) || width <= 0) invalid('image.width', 'a positive integer', width);
  if (!Number.isInteger(height) || height <= 0) invalid('image.height', 'a positive integer', height);
  if (![1, 3, 4].includes(channels)) invalid('image.channels', '1, 3 or 4', channels);
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) invalid('image.data', 'a Uint8Array or Buffer of pixels', data);
  if (data.length !== width * height * channels) invalid('image.data', `${width * height * channels} bytes (width x height x channels)`, `${data.length} bytes`);
  if (width * height > maxPixels) throw new ImageError(`image has ${width * height} pixels, above the limit of ${maxPixels} (option maxPixels)`);
}

/** Converts 1/3/4-channel pixels to RGB (alpha dropped, grey replicated). */
export function toRgb(img: RawImage): RgbImage {
  const { width, height, channels, data } = img;
  if (channels === 3) return { data: data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.length), width, height, channels: 3 };
  const out = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height; i++, j += channels) {
    if (channels === 1) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = data[j];
    else {
      out[i * 3] = data[j];
      out[i * 3 + 1] = data[j + 1];
      out[i * 3 + 2] = data[j + 2];
    }
  }
  return { data: out, width, height, channels: 3 };
}

async function decodeEncoded(input: string | Buffer | Uint8Array, maxPixels: number): Promise<RgbImage> {
  if (typeof input !== 'string' && input.length === 0) throw new ImageError('image buffer is empty');
  if (typeof input === 'string') {
    if (input.length === 0) invalid('image', 'a file path, Buffer, raw image or Tensor', input);
    try {
      const st = await fs.promises.stat(input);
      if (!st.isFile()) throw new ImageError(`'${input}' is not a file`);
      if (st.size === 0) throw new ImageError(`'${input}' is empty`);
    } catch (e) {
      if (e instanceof ImageError) throw e;
      throw new ImageError(`cannot read image '${input}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  try {
    // sharingCpu: the decode's threads count in the replays' thread budget (lib/core/threads.ts).
    const { data, info } = await sharingCpu(() =>
      sharp(input, { limitInputPixels: maxPixels, failOn: 'truncated' })
        .rotate() // honour EXIF orientation, as photo viewers do
        .toColourspace('srgb')
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true }),
    );
    if (info.channels !== 3) return toRgb({ data, width: info.width, height: info.height, channels: info.channels });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: 3 };
  } catch (e) {
    const msg = (e as Error).message;
    const where = typeof input === 'string' ? `'${input}'` : 'image buffer';
    if (/pixel limit/i.test(msg)) throw new ImageError(`${where} exceeds the pixel limit of ${maxPixels} (option maxPixels)`);
    if (/unsupported image format/i.test(msg)) throw new ImageError(`${where}: unsupported or unrecognised image format`);
    throw new ImageError(`${where} could not be decoded: ${msg}`);
  }
}

function tensorToRgb(t: Tensor, maxPixels: number): RgbImage {
  let shape = t.shape;
  let hwc: Tensor;
  if (t.dtype === 'uint8' && shape.length === 3 && [1, 3, 4].includes(shape[2])) {
    hwc = t;
  } else if (shape.length === 3 || (shape.length === 4 && shape[0] === 1)) {
    const chw = shape.length === 4 ? t.squeeze(0) : t;
    shape = chw.shape;
    if (![1, 3, 4].includes(shape[0])) invalid('image', 'a tensor H x W x C (uint8) or C x H x W with C = 1, 3 or 4', `shape [${t.shape}]`);
    const clamped = chw.to('float32').clamp(0, 255);
    const rounded = F.round(clamped);
    hwc = rounded.permute([1, 2, 0]).to('uint8');
    for (const x of new Set([chw !== t ? chw : null, clamped, rounded])) x?.dispose();
    const nan = F.isnan(t);
    const anyNan = F.any(nan);
    const bad = anyNan.item() !== 0;
    nan.dispose();
    anyNan.dispose();
    if (bad) {
      hwc.dispose();
      throw new ImageError('image tensor contains NaN values');
    }
  } else {
    return invalid('image', 'a tensor H x W x C (uint8) or C x H x W', `shape [${t.shape}] ${t.dtype}`);
  }
  const [h, w, c] = hwc.shape;
  const data = hwc.data() as Uint8Array;
  if (hwc !== t) hwc.dispose();
  const raw = { data, width: w, height: h, channels: c };
  checkRaw(raw, maxPixels);
  return toRgb(raw);
}

/** Decodes any ImageInput to RGB pixels. Throws ImageError for corrupt, empty, unsupported or oversized images. */
export async function loadImage(input: ImageInput, options: DecodeOptions = {}): Promise<RgbImage> {
  const { maxPixels } = parseOptions(decodeOptions, options);
  if (input instanceof Tensor) return tensorToRgb(input, maxPixels);
  if (typeof input === 'string' || Buffer.isBuffer(input) || input instanceof Uint8Array) return decodeEncoded(input, maxPixels);
  if (isRawImage(input)) {
    checkRaw(input, maxPixels);
    return toRgb(input);
  }
  throw new ImageError(`unsupported image input: ${describe(input)} (expected a file path, Buffer, { data, width, height, channels } or Tensor)`);
}

/**
 * Decodes an encoded image to RGB (EXIF orientation applied, sRGB, alpha
 * dropped), shrunk to fit maxSide x maxSide: what the service and the photo
 * indexer need of an upload or a photo. sharp's errors propagate.
 */
export async function decodeShrunk(bytes: Buffer, o: { maxSide: number; maxPixels: number; sequentialRead?: boolean }): Promise<RawImage> {
  const { data, info } = await sharingCpu(() =>
    sharp(bytes, { limitInputPixels: o.maxPixels, failOn: 'truncated', ...(o.sequentialRead ? { sequentialRead: true } : {}) })
      .rotate()
      .resize({ width: o.maxSide, height: o.maxSide, fit: 'inside', withoutEnlargement: true })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true }),
  );
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** RGB pixels -> float32 tensor 1 x 3 x H x W with values 0..255 (on the given device). */
export function imageToTensor(img: RgbImage, device: 'cpu' | string = 'cpu'): Tensor {
  const hwc = tensor(img.data, { shape: [img.height, img.width, 3] });
  const chw = hwc.permute([2, 0, 1]);
  const f = chw.to({ dtype: 'float32', device: device as 'cpu' });
  const out = f.unsqueeze(0);
  for (const t of [hwc, chw, f]) t.dispose();
  return out;
}

/**
 * Tensor (3 x H x W, 1 x 3 x H x W or H x W x 3) -> RGB pixels. `range` says
 * whether values are 0..255 (default) or 0..1.
 */
export function tensorToImage(t: Tensor, options: { range?: 255 | 1 } = {}): RgbImage {
  const scaled = options.range === 1 ? t.mul(255) : t;
  try {
    return tensorToRgb(scaled.to('cpu'), Number.MAX_SAFE_INTEGER);
  } finally {
    if (scaled !== t) scaled.dispose();
  }
}

/** Encodes RGB pixels (or a tensor, see tensorToImage) as PNG. */
export async function encodePng(img: RgbImage | RawImage | Tensor, options: { range?: 255 | 1 } = {}): Promise<Buffer> {
  const rgb = img instanceof Tensor ? tensorToImage(img, options) : img;
  return sharp(Buffer.from(rgb.data.buffer, rgb.data.byteOffset, rgb.data.length), { raw: { width: rgb.width, height: rgb.height, channels: rgb.channels as 3 } })
    .png()
    .toBuffer();
}

/** Writes a PNG file (atomically replaces an existing file). */
export async function savePng(path: string, img: RgbImage | RawImage | Tensor, options: { range?: 255 | 1 } = {}): Promise<void> {
  const png = await encodePng(img, options);
  const { writeFileAtomic } = await import('../io/atomic');
  await writeFileAtomic(path, png);
}

/** Resizes RGB pixels with sharp (fit 'fill' by default: exact size). */
export async function resizeImage(img: RgbImage, width: number, height: number, fit: 'fill' | 'cover' | 'contain' | 'inside' = 'fill'): Promise<RgbImage> {
  const { data, info } = await sharingCpu(() =>
    sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length), { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(width, height, { fit, kernel: 'lanczos3' })
      .raw()
      .toBuffer({ resolveWithObject: true }),
  );
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: 3 };
}

/** Lays images out in a grid (cells of equal size, `pad` pixels apart, white background). */
export function imageGrid(images: RgbImage[], columns: number, pad = 2): RgbImage {
  if (images.length === 0) invalid('images', 'at least one image', images);
  const cw = Math.max(...images.map((i) => i.width));
  const ch = Math.max(...images.map((i) => i.height));
  const rows = Math.ceil(images.length / columns);
  const width = columns * cw + (columns + 1) * pad;
  const height = rows * ch + (rows + 1) * pad;
  const data = new Uint8Array(width * height * 3).fill(255);
  images.forEach((img, k) => {
    const x0 = pad + (k % columns) * (cw + pad);
    const y0 = pad + Math.floor(k / columns) * (ch + pad);
    for (let y = 0; y < img.height; y++) data.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((y0 + y) * width + x0) * 3);
  });
  return { data, width, height, channels: 3 };
}
