/**
 * Pure-TypeScript reader for TensorFlow.js weight manifests
 * (`*-weights_manifest.json` + `.bin` shards), as shipped by face-api.
 *
 * Manifest format (tfjs `WeightsManifestConfig`): a JSON array of groups,
 * each `{ paths: string[], weights: WeightsManifestEntry[] }`. The shard files
 * listed in `paths` (relative to the manifest's folder) are concatenated in
 * order; the weights are then read back to back from that byte stream, in
 * manifest order. Each entry is `{ name, shape, dtype, quantization? }`.
 *
 * Decoding mirrors `tf.io.decodeWeights` (tfjs-core 4.22 io_utils.ts):
 *  - no quantization: raw little-endian float32 / int32 values (4 bytes each);
 *  - quantization.dtype 'uint8' | 'uint16': value = q * scale + min
 *    (for dtype int32 the result is Math.round()ed); computed in float64 and
 *    stored into the Float32Array, exactly as tfjs does;
 *  - quantization.dtype 'float16': IEEE half floats (only for float32 weights).
 * `quantization.original_dtype` (written by some converters) is accepted; if
 * present it must agree with the entry's `dtype`.
 */
import * as fs from 'fs';
import * as path from 'path';

export type TfjsDType = 'float32' | 'int32';

export interface TfjsTensor {
  shape: number[];
  dtype: TfjsDType;
  data: Float32Array | Int32Array;
}

export interface TfjsQuantization {
  dtype: 'uint8' | 'uint16' | 'float16';
  scale?: number;
  min?: number;
  original_dtype?: string;
}

export interface TfjsWeightEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: TfjsQuantization;
}

export interface TfjsManifestGroup {
  paths: string[];
  weights: TfjsWeightEntry[];
}

const QUANT_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4 };

/** Absolute path of face-api's bundled `model/` folder. */
export function faceApiModelDir(): string {
  const pkg = require.resolve('@vladmandic/face-api/package.json');
  return path.join(path.dirname(pkg), 'model');
}

/** Decode one IEEE-754 binary16 value. */
export function float16ToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal / zero
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function validateEntry(e: TfjsWeightEntry, file: string): void {
  if (!e || typeof e.name !== 'string') throw new Error(`${file}: weight entry without a name: ${JSON.stringify(e)}`);
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${file}: weight '${e.name}' has an invalid shape ${JSON.stringify(e.shape)}`);
  }
  if (e.dtype !== 'float32' && e.dtype !== 'int32') {
    throw new Error(`${file}: weight '${e.name}' has unsupported dtype '${e.dtype}' (only float32/int32)`);
  }
  const q = e.quantization;
  if (q) {
    if (!(q.dtype in QUANT_BYTES)) {
      throw new Error(`${file}: weight '${e.name}' has unknown quantization dtype '${q.dtype}' (uint8, uint16, float16 supported)`);
    }
    if (q.original_dtype !== undefined && q.original_dtype !== e.dtype) {
      throw new Error(`${file}: weight '${e.name}' has dtype '${e.dtype}' but quantization.original_dtype '${q.original_dtype}'`);
    }
    if (q.dtype === 'float16') {
      if (e.dtype !== 'float32') throw new Error(`${file}: weight '${e.name}' is float16-quantized but has dtype ${e.dtype} (must be float32)`);
    } else if (typeof q.scale !== 'number' || typeof q.min !== 'number' || !Number.isFinite(q.scale) || !Number.isFinite(q.min)) {
      throw new Error(`${file}: weight '${e.name}' with ${q.dtype} quantization lacks numeric 'scale' and 'min'`);
    }
  }
}

function byteLength(e: TfjsWeightEntry): number {
  const n = sizeOf(e.shape);
  return n * (e.quantization ? QUANT_BYTES[e.quantization.dtype] : DTYPE_BYTES[e.dtype]);
}

/** Decode one weight from exactly `byteLength(e)` bytes starting at `buf[offset]`. */
export function decodeTfjsWeight(e: TfjsWeightEntry, buf: Buffer, offset: number): TfjsTensor {
  const n = sizeOf(e.shape);
  const dtype = e.dtype as TfjsDType;
  const q = e.quantization;
  let data: Float32Array | Int32Array;
  if (!q) {
    // copy into a fresh, aligned buffer (little-endian as tfjs writes it)
    const bytes = new Uint8Array(n * 4);
    bytes.set(buf.subarray(offset, offset + n * 4));
    data = dtype === 'float32' ? new Float32Array(bytes.buffer) : new Int32Array(bytes.buffer);
  } else if (q.dtype === 'float16') {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = float16ToFloat32(buf.readUInt16LE(offset + 2 * i));
    data = out;
  } else {
    const scale = q.scale as number;
    const min = q.min as number;
    const read = q.dtype === 'uint8' ? (i: number) => buf[offset + i] : (i: number) => buf.readUInt16LE(offset + 2 * i);
    if (dtype === 'float32') {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = read(i) * scale + min;
      data = out;
    } else {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = Math.round(read(i) * scale + min);
      data = out;
    }
  }
  return { shape: e.shape.slice(), dtype, data };
}

/** Parse and structurally validate a manifest file. */
export function readTfjsManifest(manifestPath: string): TfjsManifestGroup[] {
  let text: string;
  try {
    text = fs.readFileSync(manifestPath, 'utf8');
  } catch (err) {
    throw new Error(`cannot read tfjs weights manifest ${manifestPath}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`tfjs weights manifest ${manifestPath} is not valid JSON: ${(err as Error).message}`);
  }
  // a full model.json wraps the manifest as { weightsManifest: [...] }
  const groups = (Array.isArray(json) ? json : (json as { weightsManifest?: unknown })?.weightsManifest) as TfjsManifestGroup[] | undefined;
  if (!Array.isArray(groups)) throw new Error(`tfjs weights manifest ${manifestPath}: expected a JSON array of {paths, weights} groups`);
  groups.forEach((g, gi) => {
    if (!g || !Array.isArray(g.paths) || !Array.isArray(g.weights) || !g.paths.every((p) => typeof p === 'string')) {
      throw new Error(`tfjs weights manifest ${manifestPath}: group ${gi} must have 'paths' (string[]) and 'weights' (array)`);
    }
    g.weights.forEach((e) => validateEntry(e, manifestPath));
  });
  return groups;
}

/**
 * Read all weights of a tfjs weights manifest. Returns a Map in manifest order
 * (group order, then entry order) from weight name to {shape, dtype, data}.
 * Throws with the offending file name on a missing shard, a shard set whose
 * total size does not match the manifest, or a duplicated weight name.
 */
export async function readTfjsWeights(manifestPath: string): Promise<Map<string, TfjsTensor>> {
  const groups = readTfjsManifest(manifestPath);
  const dir = path.dirname(manifestPath);
  const out = new Map<string, TfjsTensor>();
  for (const g of groups) {
    const files = g.paths.map((p) => path.resolve(dir, p));
    const shards = await Promise.all(files.map(async (f) => {
      try {
        return await fs.promises.readFile(f);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new Error(`tfjs weights shard ${f} (listed in ${manifestPath}) could not be read${code ? ` (${code})` : ''}: ${(err as Error).message}`);
      }
    }));
    const buf = shards.length === 1 ? shards[0] : Buffer.concat(shards);
    const expected = g.weights.reduce((s, e) => s + byteLength(e), 0);
    if (buf.length !== expected) {
      const sizes = files.map((f, i) => `${f}: ${shards[i].length} bytes`).join(', ');
      throw new Error(`tfjs weights shard size mismatch for ${manifestPath}: manifest needs ${expected} bytes, shards hold ${buf.length} (${sizes})`);
    }
    let offset = 0;
    for (const e of g.weights) {
      if (out.has(e.name)) throw new Error(`${manifestPath}: duplicate weight name '${e.name}'`);
      out.set(e.name, decodeTfjsWeight(e, buf, offset));
      offset += byteLength(e);
    }
  }
  return out;
}
