/**
 * Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
 *
 *   [u64 little-endian N][N bytes of UTF-8 JSON header][data section]
 *
 * The header maps tensor names to `{dtype, shape, data_offsets: [begin, end]}`
 * (offsets relative to the start of the data section) plus an optional
 * `__metadata__` object of string -> string.  Tensor bytes are little-endian,
 * row-major (C order).
 *
 * This module works on raw records (`RawTensor`): a dtype name, a shape and
 * the little-endian bytes.  Converting to/from native tensors lives elsewhere.
 *
 * Writing follows the reference (Rust) implementation byte for byte: tensors are
 * laid out by descending dtype alignment and then by name (so every tensor starts
 * at a multiple of its item size), the header lists `__metadata__` first and the
 * tensors in data order, and the header is padded with spaces to a multiple of 8.
 *
 * Reading is strict: every problem raises a `SafetensorsError` whose message names
 * the file (or "<buffer>") and the problem, and whose `reason` identifies it.
 *
 * This file is the format (bytes in, bytes out); file.ts reads and writes files.
 *
 * ZERO-COPY: `decodeSafetensors` returns `RawTensor.data` as `subarray` views into
 * the input bytes (no copy).  Mutating the input mutates the tensors and vice versa,
 * and the whole input stays alive as long as any tensor does.  Pass `{ copy: true }`
 * to get independent copies.  `loadSafetensors` reads into a fresh buffer that
 * nothing else references, so its views are private to the caller.
 */
import { endianness } from 'os';
import { ArgumentError, FileFormatError, TorchfaceError } from '../../core/errors';
import { ELEMENT_SIZE, type DType } from '../../core/dtype';

export type { DType };

export interface RawTensor {
  dtype: DType;
  shape: number[];
  /** Little-endian element bytes, row-major. Length must equal numel(shape) * itemsize(dtype). */
  data: Uint8Array;
}

export type SafetensorsMetadata = Record<string, string>;
export type TensorCollection = Record<string, RawTensor> | Map<string, RawTensor>;

export interface DecodedSafetensors {
  tensors: Map<string, RawTensor>;
  metadata: SafetensorsMetadata;
}

/** Our dtype name -> safetensors dtype string. */
export const DTYPE_TO_SAFETENSORS: Readonly<Record<DType, string>> = Object.freeze({
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  bfloat16: 'BF16',
  int32: 'I32',
  int64: 'I64',
  uint8: 'U8',
  int8: 'I8',
  int16: 'I16',
  bool: 'BOOL',
});

/** safetensors dtype string -> our dtype name. */
export const SAFETENSORS_TO_DTYPE: Readonly<Record<string, DType>> = Object.freeze(
  Object.fromEntries(Object.entries(DTYPE_TO_SAFETENSORS).map(([k, v]) => [v, k as DType])),
);

/** Bytes per element (core/dtype's table). */
export const DTYPE_ITEMSIZE: Readonly<Record<DType, number>> = ELEMENT_SIZE;

/**
 * Rank of each dtype in the reference implementation's `Dtype` enum (which is
 * ordered by increasing alignment).  Used to lay tensors out exactly as the
 * reference writer does: descending rank, then name.
 */
const DTYPE_RANK: Readonly<Record<DType, number>> = Object.freeze({
  bool: 0,
  uint8: 1,
  int8: 2,
  int16: 5,
  float16: 7,
  bfloat16: 8,
  int32: 9,
  float32: 11,
  float64: 12,
  int64: 13,
});

/** Headers above this size are rejected (same limit as the reference implementation). */
export const MAX_HEADER_SIZE = 100_000_000;

const METADATA_KEY = '__metadata__';

export type SafetensorsErrorCode =
  /** Fewer than 8 bytes: no room for the header length. */
  | 'TRUNCATED'
  /** Header length larger than MAX_HEADER_SIZE. */
  | 'HEADER_TOO_LARGE'
  /** Header length points beyond the end of the file. */
  | 'HEADER_OUT_OF_BOUNDS'
  /** Header is not valid UTF-8. */
  | 'BAD_UTF8'
  /** Header is not valid JSON. */
  | 'BAD_JSON'
  /** Header JSON is not an object, or a tensor entry is malformed. */
  | 'BAD_HEADER'
  /** `__metadata__` is not an object of strings (reading) / metadata argument invalid (writing). */
  | 'BAD_METADATA'
  /** dtype not supported by this module. */
  | 'UNKNOWN_DTYPE'
  /** shape is not an array of non-negative integers. */
  | 'BAD_SHAPE'
  /** data_offsets is not [begin, end] with 0 <= begin <= end. */
  | 'BAD_OFFSETS'
  /** data_offsets reach past the end of the data section. */
  | 'OFFSETS_OUT_OF_RANGE'
  /** Two tensors share bytes. */
  | 'OFFSETS_OVERLAP'
  /** Bytes of the data section not covered by any tensor (gap or trailing bytes). */
  | 'OFFSETS_NOT_COVERING'
  /** end - begin differs from numel(shape) * itemsize(dtype). */
  | 'SIZE_MISMATCH'
  /** A tensor given to the encoder is invalid. */
  | 'INVALID_TENSOR';

/**
 * A malformed safetensors file (or an invalid tensor given to the encoder): a
 * FileFormatError, so `code` is 'ERR_FILE_FORMAT' like every malformed file's,
 * and `reason` says which check failed ('TRUNCATED', 'BAD_JSON', ...).
 */
export class SafetensorsError extends FileFormatError {
  readonly reason: SafetensorsErrorCode;
  /** File path, when known. */
  readonly file?: string;
  /** Tensor concerned, when there is one. */
  readonly tensor?: string;

  constructor(code: SafetensorsErrorCode, problem: string, file?: string, tensor?: string) {
    super(`safetensors ${file ?? '<buffer>'}: ${problem}`);
    this.reason = code;
    this.file = file;
    this.tensor = tensor;
  }
}

const IS_LITTLE_ENDIAN = endianness() === 'LE';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Set an own property even for keys like "__proto__". */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function isDType(v: unknown): v is DType {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_ITEMSIZE, v);
}

/** numel(shape) * itemsize, or undefined on overflow beyond 2^53. */
function byteSizeOf(shape: readonly number[], itemsize: number): number | undefined {
  let n = itemsize;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

function fmtShape(shape: readonly unknown[]): string {
  return `[${shape.join(', ')}]`;
}

function tensorEntries(tensors: TensorCollection): Array<[string, RawTensor]> {
  if (tensors instanceof Map) return Array.from(tensors.entries());
  if (!isPlainObject(tensors)) {
    throw new SafetensorsError('INVALID_TENSOR', 'tensors must be a Map or a plain object of name -> RawTensor');
  }
  return Object.entries(tensors);
}

function validateRawTensor(name: string, t: RawTensor, file?: string): void {
  if (typeof name !== 'string') throw new SafetensorsError('INVALID_TENSOR', `tensor name ${String(name)} is not a string`, file);
  if (name === METADATA_KEY) {
    throw new SafetensorsError('INVALID_TENSOR', `"${METADATA_KEY}" is reserved and cannot be a tensor name`, file, name);
  }
  if (!isPlainObject(t)) throw new SafetensorsError('INVALID_TENSOR', `tensor "${name}" is not an object`, file, name);
  if (!isDType(t.dtype)) {
    throw new SafetensorsError(
      'UNKNOWN_DTYPE',
      `tensor "${name}" has unknown dtype ${JSON.stringify(t.dtype)} (supported: ${Object.keys(DTYPE_ITEMSIZE).join(', ')})`,
      file,
      name,
    );
  }
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError('BAD_SHAPE', `tensor "${name}" shape ${JSON.stringify(t.shape)} is not an array of non-negative integers`, file, name);
  }
  if (!(t.data instanceof Uint8Array)) {
    throw new SafetensorsError('INVALID_TENSOR', `tensor "${name}" data is not a Uint8Array (use new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength))`, file, name);
  }
  const expected = byteSizeOf(t.shape, DTYPE_ITEMSIZE[t.dtype]);
  if (expected === undefined) {
    throw new SafetensorsError('SIZE_MISMATCH', `tensor "${name}" shape ${fmtShape(t.shape)} is too large`, file, name);
  }
  if (t.data.byteLength !== expected) {
    throw new SafetensorsError(
      'SIZE_MISMATCH',
      `tensor "${name}" has ${t.data.byteLength} data bytes but shape ${fmtShape(t.shape)} x ${t.dtype} (${DTYPE_ITEMSIZE[t.dtype]} bytes) needs ${expected}`,
      file,
      name,
    );
  }
}

function validateMetadataArg(metadata: unknown, file?: string): SafetensorsMetadata | undefined {
  if (metadata === undefined || metadata === null) return undefined;
  if (!isPlainObject(metadata)) {
    throw new SafetensorsError('BAD_METADATA', 'metadata must be a plain object of string values', file);
  }
  const out: SafetensorsMetadata = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') {
      throw new SafetensorsError(
        'BAD_METADATA',
        `metadata value for "${k}" is ${v === null ? 'null' : typeof v}, but safetensors metadata values must be strings (use packMetadata() to JSON-encode other values)`,
        file,
      );
    }
    setOwn(out, k, v);
  }
  return out;
}

/**
 * Encode to the parts of a safetensors file without concatenating them:
 * `[prefix+header, data of tensor 1, data of tensor 2, ...]` (tensor parts are the
 * callers' own `data` arrays, not copies; empty tensors are omitted).
 * Useful to stream large files to disk without a second in-memory copy.
 */
export function encodeSafetensorsParts(tensors: TensorCollection, metadata?: SafetensorsMetadata): Uint8Array[] {
  const entries = tensorEntries(tensors);
  const seen = new Set<string>();
  for (const [name, t] of entries) {
    validateRawTensor(name, t);
    if (seen.has(name)) throw new SafetensorsError('INVALID_TENSOR', `duplicate tensor name "${name}"`, undefined, name);
    seen.add(name);
  }
  const meta = validateMetadataArg(metadata);

  entries.sort(([an, a], [bn, b]) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || (an < bn ? -1 : an > bn ? 1 : 0));

  // Build the header JSON by hand so the key order is exactly: __metadata__, then tensors in data order.
  const fields: string[] = [];
  if (meta !== undefined && Object.keys(meta).length > 0) {
    fields.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(meta)}`);
  }
  let offset = 0;
  for (const [name, t] of entries) {
    const end = offset + t.data.byteLength;
    const info = `{"dtype":${JSON.stringify(DTYPE_TO_SAFETENSORS[t.dtype])},"shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${end}]}`;
    fields.push(`${JSON.stringify(name)}:${info}`);
    offset = end;
  }
  const json = Buffer.from(`{${fields.join(',')}}`, 'utf8');
  const padded = json.length + ((8 - (json.length % 8)) % 8);
  const head = new Uint8Array(8 + padded);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  head.fill(0x20, 8 + json.length);

  const parts: Uint8Array[] = [head];
  for (const [, t] of entries) if (t.data.byteLength > 0) parts.push(t.data);
  return parts;
}

/** Encode tensors (+ optional string metadata) into one safetensors byte buffer. */
export function encodeSafetensors(tensors: TensorCollection, metadata?: SafetensorsMetadata): Uint8Array {
  const parts = encodeSafetensorsParts(tensors, metadata);
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** Header entry of one tensor as stored in the file. */
export interface TensorInfo {
  dtype: DType;
  shape: number[];
  /** [begin, end) relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** Tensors in data order (ascending offsets). */
  tensors: Map<string, TensorInfo>;
  metadata: SafetensorsMetadata;
  /** N, the byte length of the JSON header (including padding). */
  headerLength: number;
  /** Absolute file offset of the data section (8 + N). */
  dataStart: number;
}

export interface DecodeOptions {
  /** File name used in error messages. */
  source?: string;
  /** Copy each tensor's bytes instead of returning views into the input (default false). */
  copy?: boolean;
}

/** Read and check the 8-byte length prefix; returns N. */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, file?: string): number {
  if (fileSize < 8) {
    throw new SafetensorsError('TRUNCATED', `file is ${fileSize} bytes, too short for the 8-byte header length (truncated or not a safetensors file)`, file);
  }
  const n64 = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_SIZE)) {
    const hint = n64 > BigInt(fileSize) ? ' (beyond the end of the file too; not a safetensors file?)' : '';
    throw new SafetensorsError('HEADER_TOO_LARGE', `header length ${n64} exceeds the ${MAX_HEADER_SIZE}-byte limit${hint}`, file);
  }
  const n = Number(n64);
  if (8 + n > fileSize) {
    throw new SafetensorsError(
      'HEADER_OUT_OF_BOUNDS',
      `header length ${n} runs beyond the end of the file (only ${fileSize - 8} bytes follow the length prefix; truncated or not a safetensors file)`,
      file,
    );
  }
  return n;
}

/**
 * Parse and validate a header. `dataSize` is the size of the data section
 * (file size - 8 - N); the offsets must tile it exactly.
 */
export function parseHeader(headerBytes: Uint8Array, dataSize: number, file?: string): { tensors: Map<string, TensorInfo>; metadata: SafetensorsMetadata } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError('BAD_UTF8', 'header is not valid UTF-8', file);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError('BAD_JSON', `header is not valid JSON: ${(err as Error).message}`, file);
  }
  if (!isPlainObject(parsed)) {
    throw new SafetensorsError('BAD_HEADER', `header JSON must be an object, got ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : typeof parsed}`, file);
  }

  const metadata: SafetensorsMetadata = {};
  const infos: Array<[string, TensorInfo]> = [];
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === METADATA_KEY) {
      if (entry === null) continue;
      if (!isPlainObject(entry)) throw new SafetensorsError('BAD_METADATA', `"${METADATA_KEY}" must be an object of strings`, file);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') {
          throw new SafetensorsError('BAD_METADATA', `"${METADATA_KEY}" value for "${k}" is ${v === null ? 'null' : typeof v}, must be a string`, file);
        }
        setOwn(metadata, k, v);
      }
      continue;
    }
    if (!isPlainObject(entry)) throw new SafetensorsError('BAD_HEADER', `entry for tensor "${name}" is not an object`, file, name);
    const { dtype, shape, data_offsets: offs } = entry;
    if (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(SAFETENSORS_TO_DTYPE, dtype)) {
      throw new SafetensorsError(
        'UNKNOWN_DTYPE',
        `tensor "${name}" has unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(SAFETENSORS_TO_DTYPE).join(', ')})`,
        file,
        name,
      );
    }
    const dt = SAFETENSORS_TO_DTYPE[dtype];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError('BAD_SHAPE', `tensor "${name}" shape ${JSON.stringify(shape)} is not an array of non-negative integers`, file, name);
    }
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offs[0] > offs[1]
    ) {
      throw new SafetensorsError('BAD_OFFSETS', `tensor "${name}" data_offsets ${JSON.stringify(offs)} is not [begin, end] with 0 <= begin <= end`, file, name);
    }
    const [begin, end] = offs as [number, number];
    const expected = byteSizeOf(shape as number[], DTYPE_ITEMSIZE[dt]);
    if (expected === undefined || end - begin !== expected) {
      throw new SafetensorsError(
        'SIZE_MISMATCH',
        `tensor "${name}" spans ${end - begin} bytes [${begin}, ${end}) but shape ${fmtShape(shape)} x ${dtype} needs ${expected ?? 'more than 2^53'}`,
        file,
        name,
      );
    }
    if (end > dataSize) {
      throw new SafetensorsError(
        'OFFSETS_OUT_OF_RANGE',
        `tensor "${name}" data_offsets [${begin}, ${end}] reach past the end of the ${dataSize}-byte data section (file truncated?)`,
        file,
        name,
      );
    }
    infos.push([name, { dtype: dt, shape: (shape as number[]).slice(), dataOffsets: [begin, end] }]);
  }

  infos.sort(([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let cursor = 0;
  let prev: string | undefined;
  for (const [name, info] of infos) {
    const [begin, end] = info.dataOffsets;
    if (begin < cursor) {
      throw new SafetensorsError(
        'OFFSETS_OVERLAP',
        `tensor "${name}" [${begin}, ${end}) overlaps tensor "${prev}" which ends at ${cursor}`,
        file,
        name,
      );
    }
    if (begin > cursor) {
      throw new SafetensorsError('OFFSETS_NOT_COVERING', `data bytes [${cursor}, ${begin}) before tensor "${name}" belong to no tensor`, file, name);
    }
    cursor = end;
    prev = name;
  }
  if (cursor !== dataSize) {
    throw new SafetensorsError(
      'OFFSETS_NOT_COVERING',
      `tensors cover ${cursor} bytes but the data section has ${dataSize}; ${dataSize - cursor} trailing bytes belong to no tensor`,
      file,
    );
  }
  return { tensors: new Map(infos), metadata };
}

/**
 * Decode a complete safetensors file held in memory.
 * Returned tensor data are zero-copy `subarray` views into `bytes` unless
 * `options.copy` is set (see module comment). Map order = data order.
 */
export function decodeSafetensors(bytes: Uint8Array, options: DecodeOptions = {}): DecodedSafetensors {
  const file = options.source;
  if (!(bytes instanceof Uint8Array)) throw new ArgumentError('bytes', 'a Uint8Array', bytes);
  const n = readHeaderLength(bytes, bytes.byteLength, file);
  const dataStart = 8 + n;
  const { tensors: infos, metadata } = parseHeader(bytes.subarray(8, dataStart), bytes.byteLength - dataStart, file);
  const tensors = new Map<string, RawTensor>();
  for (const [name, info] of infos) {
    const view = bytes.subarray(dataStart + info.dataOffsets[0], dataStart + info.dataOffsets[1]);
    tensors.set(name, { dtype: info.dtype, shape: info.shape, data: options.copy ? view.slice() : view });
  }
  return { tensors, metadata };
}

/** Decode only the header of an in-memory file (validates offsets against the buffer size). */
export function decodeSafetensorsHeader(bytes: Uint8Array, options: { source?: string } = {}): SafetensorsHeader {
  const n = readHeaderLength(bytes, bytes.byteLength, options.source);
  const dataStart = 8 + n;
  const parsed = parseHeader(bytes.subarray(8, dataStart), bytes.byteLength - dataStart, options.source);
  return { ...parsed, headerLength: n, dataStart };
}

// ---------------------------------------------------------------------------
// Metadata helpers

/**
 * Turn an object with arbitrary JSON-serialisable values into safetensors
 * metadata: strings are kept as they are, everything else is JSON.stringify'ed.
 * Keys whose value is `undefined` (or a function/symbol) are dropped.
 */
export function packMetadata(obj: Record<string, unknown>): SafetensorsMetadata {
  if (!isPlainObject(obj)) throw new ArgumentError('metadata', 'a plain object', obj);
  const out: SafetensorsMetadata = {};
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'string') {
      setOwn(out, k, v);
      continue;
    }
    let s: string | undefined;
    try {
      s = JSON.stringify(v);
    } catch (err) {
      const e = new ArgumentError(`metadata["${k}"]`, 'a JSON-encodable value', v);
      e.message = `packMetadata: value for "${k}" cannot be JSON-encoded: ${(err as Error).message}`;
      throw e;
    }
    if (s !== undefined) setOwn(out, k, s);
  }
  return out;
}

export interface UnpackMetadataOptions {
  /** Keys whose values are always returned as the raw string. */
  strings?: readonly string[];
}

/**
 * Inverse of `packMetadata`: each value that parses as JSON is returned parsed,
 * any other value as the plain string. Caveat: a string that happens to be valid
 * JSON text (e.g. "123", "true", "null") comes back parsed; list such keys in
 * `options.strings` to keep them as strings.
 */
export function unpackMetadata(meta: SafetensorsMetadata, options: UnpackMetadataOptions = {}): Record<string, unknown> {
  const keep = new Set(options.strings ?? []);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(meta)) {
    let value: unknown = v;
    if (!keep.has(k)) {
      try {
        value = JSON.parse(v);
      } catch {
        value = v;
      }
    }
    setOwn(out, k, value);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Element access helpers (little-endian hosts only, which is every platform
// Node/libtorch ship for; these throw on a big-endian host).

export type TypedArrayFor<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'int32'
      ? Int32Array
      : D extends 'int64'
        ? BigInt64Array
        : D extends 'int16'
          ? Int16Array
          : D extends 'int8'
            ? Int8Array
            : D extends 'float16' | 'bfloat16'
              ? Uint16Array
              : Uint8Array;

type AnyTypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Int16Array | Int8Array | Uint16Array | Uint8Array;

function requireLittleEndian(): void {
  if (!IS_LITTLE_ENDIAN) throw new TorchfaceError('safetensors typed-array helpers require a little-endian host');
}

/**
 * A typed array over a tensor's elements: Float32Array, Float64Array, Int32Array,
 * BigInt64Array, Int16Array, Int8Array, Uint8Array (uint8, bool) or Uint16Array
 * holding the raw bits of float16/bfloat16. Zero-copy when `data` is aligned to the
 * item size, otherwise a copy.
 */
export function toTypedArray<D extends DType>(t: RawTensor & { dtype: D }): TypedArrayFor<D> {
  requireLittleEndian();
  const size = DTYPE_ITEMSIZE[t.dtype];
  let data = t.data;
  if (data.byteOffset % size !== 0) data = data.slice();
  const n = data.byteLength / size;
  const { buffer, byteOffset } = data;
  let out: AnyTypedArray;
  switch (t.dtype) {
    case 'float32': out = new Float32Array(buffer, byteOffset, n); break;
    case 'float64': out = new Float64Array(buffer, byteOffset, n); break;
    case 'int32': out = new Int32Array(buffer, byteOffset, n); break;
    case 'int64': out = new BigInt64Array(buffer, byteOffset, n); break;
    case 'int16': out = new Int16Array(buffer, byteOffset, n); break;
    case 'int8': out = new Int8Array(buffer, byteOffset, n); break;
    case 'float16':
    case 'bfloat16': out = new Uint16Array(buffer, byteOffset, n); break;
    case 'uint8':
    case 'bool': out = new Uint8Array(buffer, byteOffset, n); break;
    default: throw new SafetensorsError('UNKNOWN_DTYPE', `unknown dtype ${JSON.stringify(t.dtype)}`);
  }
  return out as TypedArrayFor<D>;
}

/**
 * Wrap a typed array as a RawTensor. `data` is a zero-copy byte view of `values`
 * (for float16/bfloat16 pass a Uint16Array of raw bits, for bool a Uint8Array of 0/1).
 */
export function fromTypedArray(dtype: DType, shape: number[], values: ArrayBufferView): RawTensor {
  requireLittleEndian();
  const data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const t: RawTensor = { dtype, shape: shape.slice(), data };
  validateRawTensor('<fromTypedArray>', t);
  return t;
}

/**
 * Decode any tensor into a Float64Array of element values (bool -> 0/1,
 * float16/bfloat16 widened exactly, int64 rounded to the nearest double when
 * beyond +-2^53).
 */
export function toFloat64Array(t: RawTensor): Float64Array {
  const src = toTypedArray(t);
  const out = new Float64Array(src.length);
  if (t.dtype === 'float16') {
    for (let i = 0; i < src.length; i++) out[i] = float16BitsToNumber(src[i] as number);
  } else if (t.dtype === 'bfloat16') {
    for (let i = 0; i < src.length; i++) out[i] = bfloat16BitsToNumber(src[i] as number);
  } else if (t.dtype === 'int64') {
    const s = src as BigInt64Array;
    for (let i = 0; i < s.length; i++) out[i] = Number(s[i]);
  } else if (t.dtype === 'bool') {
    for (let i = 0; i < src.length; i++) out[i] = src[i] ? 1 : 0;
  } else {
    for (let i = 0; i < src.length; i++) out[i] = src[i] as number;
  }
  return out;
}

/** IEEE binary16 bits -> number (exact). */
export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** number -> IEEE binary16 bits, round to nearest even (overflow -> Infinity, NaN -> 0x7e00). */
export function numberToFloat16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  let a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c00;
  if (a >= 65520) return sign | 0x7c00; // rounds up past the largest finite half (65504)
  if (a < 2 ** -14) {
    // subnormal: units of 2^-24, ties to even
    const q = a / 2 ** -24;
    let r = Math.round(q);
    if (r - q === 0.5 && r % 2 !== 0) r -= 1;
    return sign | r; // r == 1024 becomes the smallest normal, which is the right encoding
  }
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a) exp -= 1; // guard log2 rounding
  if (2 ** (exp + 1) <= a) exp += 1;
  const q = (a / 2 ** exp - 1) * 1024;
  let r = Math.round(q);
  if (r - q === 0.5 && r % 2 !== 0) r -= 1;
  a = (exp + 15) * 1024 + r; // carry from r == 1024 into the exponent is correct
  return sign | a;
}

/** bfloat16 bits -> number (exact). */
export function bfloat16BitsToNumber(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** number -> bfloat16 bits: round to float32, then to nearest-even bfloat16 (NaN -> 0x7fc0). */
export function numberToBfloat16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if (Number.isNaN(f32[0])) return 0x7fc0;
  const rounded = b + 0x7fff + ((b >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

