// "What are deep ConvNets learning?" (Zeiler & Fergus 2014): for chosen units
// of one layer, the image patches that activate them most over a set of images.
// The images are run in batches; only a running top-k per unit is kept (score,
// image, position), never the activations. Patches are the unit's receptive
// field mapped back to input coordinates.
import { z } from 'zod';
import { invalid, parseOptions } from '../core/errors';
import { ImageInput, RgbImage, imageGrid, imageToTensor, loadImage, resizeImage } from '../image';
import * as F from '../ops';
import { noGrad, tensor, tidy } from '../core';
import { FeatureNetwork, LayerInfo, layerInfo } from './features';

export interface ActivatingPatch {
  /** Index of the image in the input list. */
  imageIndex: number;
  /** The unit's activation (its maximum over positions in this image). */
  score: number;
  /** Position of the unit in the layer's output grid. */
  row: number;
  col: number;
  /** The receptive field in the resized input image (may extend past its border). */
  box: { left: number; top: number; size: number };
  /** The receptive field's pixels (grey outside the image), resized to patchSize. */
  patch: RgbImage;
}

export interface UnitPatches {
  unit: number;
  patches: ActivatingPatch[];
}

export interface TopPatchesResult {
  layer: LayerInfo;
  inputSize: number;
  units: UnitPatches[];
}

const options = z
  .object({
    layer: z.string().min(1),
    units: z.array(z.number().int().nonnegative()).min(1).default([0, 1, 2, 3, 4, 5, 6, 7, 8]),
    /** Patches per unit (Zeiler & Fergus show 9). */
    k: z.number().int().positive().max(100).default(9),
    /** Images per forward pass. */
    batchSize: z.number().int().positive().max(256).default(8),
    /** Images are resized (cover) to inputSize x inputSize. */
    inputSize: z.number().int().min(16).max(2048).default(224),
    /** Side of each patch in the output (receptive fields are resized to it). */
    patchSize: z.number().int().min(8).max(512).default(48),
    /** Only rank units whose receptive field lies inside the image (border units often respond to the padding); all positions when none does. */
    interiorOnly: z.boolean().default(true),
  })
  .strict();
export type TopPatchesOptions = z.input<typeof options>;

interface Entry {
  score: number;
  imageIndex: number;
  row: number;
  col: number;
}

/** Inserts e into list (sorted by descending score, at most k long). */
function pushTop(list: Entry[], e: Entry, k: number): void {
  if (list.length === k && e.score <= list[k - 1].score) return;
  let i = list.length;
  while (i > 0 && list[i - 1].score < e.score) i--;
  list.splice(i, 0, e);
  if (list.length > k) list.pop();
}

async function prepare(input: ImageInput, size: number): Promise<RgbImage> {
  return resizeImage(await loadImage(input), size, size, 'cover');
}

/** Crops a square box (grey outside the image) and resizes it to `out` pixels. */
export async function cropPatch(img: RgbImage, box: { left: number; top: number; size: number }, out: number): Promise<RgbImage> {
  const { left, top, size } = box;
  const data = new Uint8Array(size * size * 3).fill(128);
  for (let y = 0; y < size; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= img.height) continue;
    for (let x = 0; x < size; x++) {
      const sx = left + x;
      if (sx < 0 || sx >= img.width) continue;
      const s = (sy * img.width + sx) * 3;
      const d = (y * size + x) * 3;
      data[d] = img.data[s];
      data[d + 1] = img.data[s + 1];
      data[d + 2] = img.data[s + 2];
    }
  }
  const patch: RgbImage = { data, width: size, height: size, channels: 3 };
  return size === out ? patch : resizeImage(patch, out, out, 'fill');
}

/**
 * The k image patches that activate each chosen unit of `layer` most, over
 * `images` (paths, Buffers, raw pixels or tensors; decoded and resized in batches).
 */
export async function topActivatingPatches(net: FeatureNetwork, images: ImageInput[], opts: TopPatchesOptions): Promise<TopPatchesResult> {
  const o = parseOptions(options, opts, 'options');
  if (!Array.isArray(images) || images.length === 0) invalid('images', 'a non-empty array of images', images);
  const layer = layerInfo(net, o.layer);
  for (const u of o.units) if (u >= layer.channels) invalid('options.units', `unit indices below ${layer.channels} (channels of ${layer.name})`, u);
  const top: Entry[][] = o.units.map(() => []);
  const unitIndex = tensor(BigInt64Array.from(o.units.map(BigInt)));
  try {
    for (let b = 0; b < images.length; b += o.batchSize) {
      const batch = await Promise.all(images.slice(b, b + o.batchSize).map((im) => prepare(im, o.inputSize)));
      const { values, indices, w, r0, c0 } = noGrad(() =>
        tidy(() => {
          const x = F.cat(batch.map((im) => imageToTensor(im)), 0);
          let act = net.features(x, [layer.name]).get(layer.name)!;
          const [n, , h, w] = act.shape;
          let r0 = 0;
          let c0 = 0;
          if (o.interiorOnly) {
            // unit i covers [offset + i * stride - half, ... + receptiveField) in input pixels
            const half = (layer.receptiveField - 1) / 2;
            const first = Math.max(0, Math.ceil((half - layer.offset) / layer.stride));
            const last = Math.min(h - 1, w - 1, Math.floor((o.inputSize - layer.receptiveField + half - layer.offset) / layer.stride));
            if (last >= first) {
              act = act.narrow(2, first, Math.min(h - 1, last) - first + 1).narrow(3, first, Math.min(w - 1, last) - first + 1);
              r0 = c0 = first;
            }
          }
          const aw = act.shape[3];
          const sel = act.indexSelect(1, unitIndex).reshape([n, o.units.length, -1]);
          const m = sel.max(2);
          return { values: m.values.data() as Float32Array, indices: m.indices.data() as BigInt64Array, w: aw, r0, c0 };
        }),
      );
      for (let i = 0; i < batch.length; i++)
        for (let u = 0; u < o.units.length; u++) {
          const flat = Number(indices[i * o.units.length + u]);
          pushTop(top[u], { score: values[i * o.units.length + u], imageIndex: b + i, row: r0 + Math.floor(flat / w), col: c0 + (flat % w) }, o.k);
        }
    }
  } finally {
    unitIndex.dispose();
  }
  // Decode again only the images that made some unit's top-k.
  const needed = new Map<number, RgbImage>();
  for (const list of top) for (const e of list) if (!needed.has(e.imageIndex)) needed.set(e.imageIndex, await prepare(images[e.imageIndex], o.inputSize));
  const half = (layer.receptiveField - 1) / 2;
  const units: UnitPatches[] = [];
  for (let u = 0; u < o.units.length; u++) {
    const patches: ActivatingPatch[] = [];
    for (const e of top[u]) {
      const box = { left: Math.round(layer.offset + e.col * layer.stride - half), top: Math.round(layer.offset + e.row * layer.stride - half), size: layer.receptiveField };
      patches.push({ ...e, box, patch: await cropPatch(needed.get(e.imageIndex)!, box, o.patchSize) });
    }
    units.push({ unit: o.units[u], patches });
  }
  return { layer, inputSize: o.inputSize, units };
}

/** One picture for a layer: per unit a 3 x 3 (k = 9) block of its patches, blocks in a grid. */
export function patchesGrid(result: TopPatchesResult, columns?: number): RgbImage {
  const blocks = result.units.map((u) => {
    const k = Math.max(1, u.patches.length);
    const c = Math.ceil(Math.sqrt(k));
    const cells = u.patches.map((p) => p.patch);
    if (cells.length === 0) return imageGrid([{ data: new Uint8Array(3 * 8 * 8).fill(128), width: 8, height: 8, channels: 3 }], 1, 1);
    return imageGrid(cells, c, 1);
  });
  const cols = columns ?? Math.ceil(Math.sqrt(blocks.length));
  return imageGrid(blocks, cols, 6);
}
