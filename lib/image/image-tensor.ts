// face-api's input pipeline on libtorch: (crop) -> zero padToSquare (centred or
// at the bottom/right) -> TF *legacy* bilinear resize (align_corners=false,
// half_pixel_centers=false: src = dst * in / out) -> float 1 x 3 x S x S, 0..255.
// Crop, padding and resize are folded into per-axis gather plans (two source
// indices and two weights per output row/column; padded cells get weight 0), so
// one traced program per image size serves every crop of that image.
import type { RgbImage } from '.';
import { traced } from '../core/jit';
import * as F from '../ops';
import { Device, Tensor, tensor, tidy } from '../core';

/** A crop of the image (integer pixels, inside the image). */
export interface CropRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

interface AxisPlan {
  i0: BigInt64Array;
  i1: BigInt64Array;
  w0: Float32Array;
  w1: Float32Array;
}

/**
 * One axis: the crop [start, start + len) is padded to `square` with `before`
 * zero cells in front (and the rest behind), then resized to `out` cells.
 */
function axisPlan(out: number, square: number, before: number, start: number, len: number): AxisPlan {
  const p: AxisPlan = { i0: new BigInt64Array(out), i1: new BigInt64Array(out), w0: new Float32Array(out), w1: new Float32Array(out) };
  const scale = square / out;
  for (let r = 0; r < out; r++) {
    const src = r * scale;
    const y0 = Math.floor(src);
    const y1 = Math.min(square - 1, Math.ceil(src));
    const d = src - y0;
    const q0 = y0 - before;
    const q1 = y1 - before;
    const v0 = q0 >= 0 && q0 < len;
    const v1 = q1 >= 0 && q1 < len;
    p.i0[r] = BigInt(start + (v0 ? q0 : 0));
    p.i1[r] = BigInt(start + (v1 ? q1 : 0));
    p.w0[r] = v0 ? 1 - d : 0;
    p.w1[r] = v1 ? d : 0;
  }
  return p;
}

/** face-api padToSquare split of `diff` padding cells: [before, after]. */
export function squarePadding(diff: number, centered: boolean): [number, number] {
  const after = Math.round(diff * (centered ? 0.5 : 1));
  return [diff - after, after];
}

// (img uint8 H x W x 3, row plan x4, column plan x4) -> 1 x 3 x outH x outW float
const resampleProgram = traced((img: Tensor, ri0: Tensor, ri1: Tensor, rw0: Tensor, rw1: Tensor, ci0: Tensor, ci1: Tensor, cw0: Tensor, cw1: Tensor) =>
  tidy(() => {
    const a = F.indexSelect(img, 0, ri0).to('float32');
    const b = F.indexSelect(img, 0, ri1).to('float32');
    const rows = F.add(F.mul(a, rw0), F.mul(b, rw1)); // outH x W x 3
    const c = F.indexSelect(rows, 1, ci0);
    const d = F.indexSelect(rows, 1, ci1);
    const hwc = F.add(F.mul(c, cw0), F.mul(d, cw1)); // outH x outW x 3
    return F.unsqueeze(F.permute(hwc, [2, 0, 1]), 0).contiguous();
  }),
  { sharedInputs: true }, // the image is read in place, not copied per call (lib/core/jit.ts)
);

/** An image held as a uint8 H x W x 3 tensor, for repeated crops. */
export class ImageTensor {
  readonly tensor: Tensor;
  readonly width: number;
  readonly height: number;
  constructor(
    img: RgbImage,
    readonly device: Device = 'cpu',
  ) {
    this.width = img.width;
    this.height = img.height;
    const t = tensor(img.data, { shape: [img.height, img.width, 3] });
    if (device !== 'cpu') {
      this.tensor = t.to(device);
      t.dispose();
    } else this.tensor = t;
  }
  dispose(): void {
    this.tensor.dispose();
  }

  /**
   * face-api's toBatchTensor on a crop: zero padToSquare (centred or bottom/right),
   * legacy bilinear to size x size. Returns float 1 x 3 x size x size, values 0..255.
   */
  async squareInput(size: number, centered: boolean, crop: CropRect = { x: 0, y: 0, width: this.width, height: this.height }): Promise<Tensor> {
    const { x, y, width: w, height: h } = crop;
    const side = Math.max(w, h);
    const [before] = squarePadding(side - Math.min(w, h), centered);
    const rows = axisPlan(size, side, h < w ? before : 0, y, h);
    const cols = axisPlan(size, side, w < h ? before : 0, x, w);
    return this.resample(rows, cols, size, size);
  }

  private async resample(rows: AxisPlan, cols: AxisPlan, outH: number, outW: number): Promise<Tensor> {
    const dev = { device: this.device };
    const ins = [
      tensor(rows.i0, dev),
      tensor(rows.i1, dev),
      tensor(rows.w0, { ...dev, shape: [outH, 1, 1] }),
      tensor(rows.w1, { ...dev, shape: [outH, 1, 1] }),
      tensor(cols.i0, dev),
      tensor(cols.i1, dev),
      tensor(cols.w0, { ...dev, shape: [1, outW, 1] }),
      tensor(cols.w1, { ...dev, shape: [1, outW, 1] }),
    ];
    try {
      const [out] = await resampleProgram(this.tensor, ...ins);
      return out;
    } finally {
      for (const t of ins) t.dispose();
    }
  }
}

/** face-api computeReshapedDimensions: the image's size inside the padded square of side S. */
export function reshapedDimensions(width: number, height: number, size: number): { width: number; height: number } {
  const scale = size / Math.max(width, height);
  return { width: Math.round(width * scale), height: Math.round(height * scale) };
}

/** Box.clipAtImageBorders + floor, as extractFaceTensors does; null when empty. */
export function clipBox(box: { x: number; y: number; width: number; height: number }, W: number, H: number): CropRect | null {
  const x0 = Math.max(box.x, 0);
  const y0 = Math.max(box.y, 0);
  const w = Math.min(box.x + box.width - x0, W - x0);
  const h = Math.min(box.y + box.height - y0, H - y0);
  const r = { x: Math.floor(x0), y: Math.floor(y0), width: Math.floor(w), height: Math.floor(h) };
  return r.width > 0 && r.height > 0 ? r : null;
}
