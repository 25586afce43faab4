// safetensors files: read (whole, or just the header) and written atomically
// (lib/io/atomic.ts). The format itself is format.ts.
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import { ArgumentError, FileAccessError } from '../../core/errors';
import { WriteFileAtomicOptions, fileAccessError, readFileChecked, readFileCheckedSync, writeFileAtomic, writeFileAtomicSync } from '../atomic';
import { DecodedSafetensors, MAX_HEADER_SIZE, SafetensorsError, SafetensorsHeader, SafetensorsMetadata, TensorCollection, decodeSafetensors, encodeSafetensorsParts, parseHeader, readHeaderLength } from './format';

/** Read and validate just the header of a safetensors file, without reading the tensor data. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  if (typeof file !== 'string' || file === '' || file.includes('\0')) throw new ArgumentError('file', 'a file path', file);
  try {
    return await readHeaderOf(file);
  } catch (err) {
    throw fileAccessError(file, 'read', err);
  }
}

async function readHeaderOf(file: string): Promise<SafetensorsHeader> {
  const pre = await fsp.stat(file); // before open(): opening a FIFO would block
  if (!pre.isFile()) throw new FileAccessError(file, `${file}: not a regular file`);
  const fh = await fsp.open(file, 'r');
  try {
    const st = await fh.stat();
    const prefix = new Uint8Array(8);
    const { bytesRead } = await fh.read(prefix, 0, 8, 0);
    const n = readHeaderLength(prefix, bytesRead < 8 ? bytesRead : st.size, file);
    const header = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const r = await fh.read(header, off, n - off, 8 + off);
      if (r.bytesRead === 0) throw new SafetensorsError('HEADER_OUT_OF_BOUNDS', `file ended inside the ${n}-byte header`, file);
      off += r.bytesRead;
    }
    const parsed = parseHeader(header, st.size - 8 - n, file);
    return { ...parsed, headerLength: n, dataStart: 8 + n };
  } finally {
    await fh.close();
  }
}

export interface LoadOptions {
  /** Refuse files larger than this many bytes. */
  maxBytes?: number;
}

/** Read a whole safetensors file. Tensor data are views into one private buffer for the whole file. */
export async function loadSafetensors(file: string, options: LoadOptions = {}): Promise<DecodedSafetensors> {
  const bytes = await readFileChecked(file, { maxBytes: options.maxBytes });
  return decodeSafetensors(bytes, { source: file });
}

/** Synchronous `loadSafetensors`. */
export function loadSafetensorsSync(file: string, options: LoadOptions = {}): DecodedSafetensors {
  const bytes = readFileCheckedSync(file, { maxBytes: options.maxBytes });
  return decodeSafetensors(bytes, { source: file });
}

/**
 * Atomically write a safetensors file (temp file + fsync + rename + directory
 * fsync; see lib/io/atomic.ts). Validation errors are raised before anything
 * touches the disk; on any failure the previous file at `file` is left intact.
 * Tensor bytes are streamed from the callers' buffers (no full-file copy).
 */
export async function saveSafetensors(
  file: string,
  tensors: TensorCollection,
  metadata?: SafetensorsMetadata,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const parts = encodeSafetensorsPartsFor(file, tensors, metadata);
  await writeFileAtomic(file, parts, options);
}

/** Synchronous `saveSafetensors`. */
export function saveSafetensorsSync(
  file: string,
  tensors: TensorCollection,
  metadata?: SafetensorsMetadata,
  options: WriteFileAtomicOptions = {},
): void {
  const parts = encodeSafetensorsPartsFor(file, tensors, metadata);
  writeFileAtomicSync(file, parts, options);
}

function encodeSafetensorsPartsFor(file: string, tensors: TensorCollection, metadata?: SafetensorsMetadata): Uint8Array[] {
  try {
    return encodeSafetensorsParts(tensors, metadata);
  } catch (err) {
    if (err instanceof SafetensorsError && err.file === undefined) {
      // Re-issue with the destination file named in the message.
      throw new SafetensorsError(err.reason, err.message.replace(/^safetensors <buffer>: /, ''), file, err.tensor);
    }
    throw err;
  }
}

/** Convenience: is this file (by its first bytes) plausibly safetensors? Cheap check, no full validation. */
export function looksLikeSafetensors(file: string): boolean {
  let fd: number | undefined;
  try {
    if (!fs.statSync(file).isFile()) return false; // before open(): opening a FIFO would block
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const head = new Uint8Array(9);
    if (fs.readSync(fd, head, 0, 9, 0) < 9) return false;
    const n = new DataView(head.buffer).getBigUint64(0, true);
    return n <= BigInt(Math.min(MAX_HEADER_SIZE, size - 8)) && head[8] === 0x7b; // '{'
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
