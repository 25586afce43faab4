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
 *
 * Untrusted manifests: the manifest must be a regular file of at most
 * MAX_MANIFEST_BYTES; every shard path must be relative and resolve (symlinks
 * followed with realpath) to a regular file inside the manifest's folder, and
 * the shards of a group must together hold exactly the bytes the group's
 * weights declare, which is checked with fs.stat before any shard is opened.
 * So a manifest cannot read `../../etc/hostname` into a weight, grow without
 * bound from /dev/zero or hang on a FIFO. Malformed manifests are
 * FileFormatErrors, unreadable files FileAccessErrors (with the OS error as
 * `cause`).
 */
import type { Stats } from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { ArgumentError, FileAccessError, FileFormatError } from '../core/errors';
import { readFileChecked, readFileCheckedSync } from './atomic';

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

/** Largest manifest (or model.json) read; face-api's are a few kB. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

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
  if (!e || typeof e !== 'object' || typeof e.name !== 'string') throw new FileFormatError(`${file}: weight entry without a name: ${JSON.stringify(e)}`);
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new FileFormatError(`${file}: weight '${e.name}' has an invalid shape ${JSON.stringify(e.shape)}`);
  }
  if (!Number.isSafeInteger(sizeOf(e.shape) * 4)) throw new FileFormatError(`${file}: weight '${e.name}' has a shape too large to hold: ${JSON.stringify(e.shape)}`);
  if (e.dtype !== 'float32' && e.dtype !== 'int32') {
    throw new FileFormatError(`${file}: weight '${e.name}' has unsupported dtype '${e.dtype}' (only float32/int32)`);
  }
  const q = e.quantization;
  if (q !== undefined && q !== null) {
    if (typeof q !== 'object') throw new FileFormatError(`${file}: weight '${e.name}' has a quantization that is not an object`);
    if (typeof q.dtype !== 'string' || !Object.prototype.hasOwnProperty.call(QUANT_BYTES, q.dtype)) {
      throw new FileFormatError(`${file}: weight '${e.name}' has unknown quantization dtype '${q.dtype}' (uint8, uint16, float16 supported)`);
    }
    if (q.original_dtype !== undefined && q.original_dtype !== e.dtype) {
      throw new FileFormatError(`${file}: weight '${e.name}' has dtype '${e.dtype}' but quantization.original_dtype '${q.original_dtype}'`);
    }
    if (q.dtype === 'float16') {
      if (e.dtype !== 'float32') throw new FileFormatError(`${file}: weight '${e.name}' is float16-quantized but has dtype ${e.dtype} (must be float32)`);
    } else if (typeof q.scale !== 'number' || typeof q.min !== 'number' || !Number.isFinite(q.scale) || !Number.isFinite(q.min)) {
      throw new FileFormatError(`${file}: weight '${e.name}' with ${q.dtype} quantization lacks numeric 'scale' and 'min'`);
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

/** Parse and structurally validate a manifest file (a regular file of at most MAX_MANIFEST_BYTES). */
export function readTfjsManifest(manifestPath: string): TfjsManifestGroup[] {
  checkManifestPath(manifestPath);
  let text: string;
  try {
    text = Buffer.from(readFileCheckedSync(manifestPath, { maxBytes: MAX_MANIFEST_BYTES })).toString('utf8');
  } catch (err) {
    throw new FileAccessError(manifestPath, `cannot read tfjs weights manifest ${manifestPath}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new FileFormatError(`tfjs weights manifest ${manifestPath} is not valid JSON: ${(err as Error).message}`);
  }
  // a full model.json wraps the manifest as { weightsManifest: [...] }
  const groups = (Array.isArray(json) ? json : (json as { weightsManifest?: unknown } | null)?.weightsManifest) as TfjsManifestGroup[] | undefined;
  if (!Array.isArray(groups)) throw new FileFormatError(`tfjs weights manifest ${manifestPath}: expected a JSON array of {paths, weights} groups`);
  groups.forEach((g, gi) => {
    if (!g || typeof g !== 'object' || !Array.isArray(g.paths) || !Array.isArray(g.weights) || !g.paths.every((p) => typeof p === 'string')) {
      throw new FileFormatError(`tfjs weights manifest ${manifestPath}: group ${gi} must have 'paths' (string[]) and 'weights' (array)`);
    }
    g.weights.forEach((e) => validateEntry(e, manifestPath));
  });
  return groups;
}

function checkManifestPath(manifestPath: unknown): asserts manifestPath is string {
  if (typeof manifestPath !== 'string' || manifestPath === '' || manifestPath.includes('\0')) throw new ArgumentError('manifestPath', 'a file path', manifestPath);
}

/** Whether `file` is strictly inside folder `dir` (both absolute and normalised). */
function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

function describeNotRegular(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

interface Shard {
  /** As listed, resolved against the manifest's folder (used in messages). */
  file: string;
  /** After symbolic links. */
  real: string;
  size: number;
}

/** Resolves one shard path of a manifest and checks that it names a regular file inside the manifest's folder. */
async function resolveShard(p: string, dir: string, realDir: string, manifestPath: string): Promise<Shard> {
  const bad = (why: string): never => {
    throw new FileFormatError(`tfjs weights manifest ${manifestPath}: shard path '${p.length > 200 ? p.slice(0, 197) + '...' : p}' ${why}`);
  };
  if (p === '' || p.includes('\0')) bad('is empty or holds a NUL byte');
  if (path.isAbsolute(p) || path.win32.isAbsolute(p)) bad("is absolute; shard paths must be relative to the manifest's folder");
  const file = path.resolve(dir, p);
  if (!isInside(dir, file)) bad(`leaves the manifest's folder ${dir}`);
  let real: string;
  let st: Stats;
  try {
    real = await fsp.realpath(file);
    st = await fsp.stat(real); // before open(): opening a FIFO would block
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FileAccessError(file, `tfjs weights shard ${file} (listed in ${manifestPath}) could not be read${code ? ` (${code})` : ''}: ${(err as Error).message}`, { cause: err });
  }
  if (!isInside(realDir, real)) bad(`resolves (through a symbolic link) to ${real}, outside the manifest's folder ${realDir}`);
  if (!st.isFile()) bad(`names ${describeNotRegular(st)}, not a regular file`);
  return { file, real, size: st.size };
}

/**
 * Read all weights of a tfjs weights manifest. Returns a Map in manifest order
 * (group order, then entry order) from weight name to {shape, dtype, data}.
 * Throws with the offending file name on a missing shard, a shard set whose
 * total size does not match the manifest (checked with fs.stat before any
 * shard is read), a shard path outside the manifest's folder or not naming a
 * regular file, or a duplicated weight name.
 */
export async function readTfjsWeights(manifestPath: string): Promise<Map<string, TfjsTensor>> {
  checkManifestPath(manifestPath);
  const groups = readTfjsManifest(manifestPath);
  const dir = path.resolve(path.dirname(manifestPath));
  let realDir: string;
  try {
    realDir = await fsp.realpath(dir);
  } catch (err) {
    throw new FileAccessError(dir, `cannot resolve the folder of tfjs weights manifest ${manifestPath}: ${(err as Error).message}`, { cause: err });
  }
  const out = new Map<string, TfjsTensor>();
  for (const g of groups) {
    const shards: Shard[] = [];
    for (const p of g.paths) shards.push(await resolveShard(p, dir, realDir, manifestPath));
    const expected = g.weights.reduce((s, e) => s + byteLength(e), 0);
    const held = shards.reduce((s, f) => s + f.size, 0);
    if (held !== expected) {
      const sizes = shards.map((f) => `${f.file}: ${f.size} bytes`).join(', ');
      throw new FileFormatError(`tfjs weights shard size mismatch for ${manifestPath}: manifest needs ${expected} bytes, shards hold ${held} (${sizes})`);
    }
    const parts = await Promise.all(
      shards.map(async (f) => {
        let b: Uint8Array;
        try {
          b = await readFileChecked(f.real, { maxBytes: f.size });
        } catch (err) {
          throw new FileAccessError(f.file, `tfjs weights shard ${f.file} (listed in ${manifestPath}) could not be read: ${(err as Error).message}`, { cause: err });
        }
        if (b.byteLength !== f.size) throw new FileAccessError(f.file, `tfjs weights shard ${f.file} (listed in ${manifestPath}) changed size while being read (${f.size}, then ${b.byteLength} bytes)`);
        return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      }),
    );
    const buf = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    let offset = 0;
    for (const e of g.weights) {
      if (out.has(e.name)) throw new FileFormatError(`${manifestPath}: duplicate weight name '${e.name}'`);
      out.set(e.name, decodeTfjsWeight(e, buf, offset));
      offset += byteLength(e);
    }
  }
  return out;
}
