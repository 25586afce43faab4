/**
 * Crash-safe file writing.
 *
 * `writeFileAtomic` / `writeFileAtomicSync` never leave a half-written target:
 * the data goes to a uniquely named temporary file in the same directory
 * (`.<name>.<pid>.<random>.tmp`), which is fsync'ed, renamed over the target
 * (rename(2) is atomic within one file system) and then the directory is
 * fsync'ed so the rename itself survives a power loss.  Readers therefore see
 * either the complete old file or the complete new file.
 *
 * If the write fails (I/O error, abort, exception from `onProgress`) the
 * temporary file is removed and the original error is re-thrown.  A process
 * that is killed outright (SIGKILL, power loss) cannot clean up; such stale
 * temporary files can be found and removed with `listStaleTempFiles` /
 * `removeStaleTempFiles`.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { constants as bufferConstants } from 'buffer';
import { ArgumentError, FileAccessError, TorchfaceError } from '../core/errors';

/** Data accepted by the atomic writers: a string (UTF-8), bytes, or a list of byte chunks written in order. */
export type AtomicData = string | Uint8Array | readonly Uint8Array[];

export interface WriteFileAtomicOptions {
  /** File mode for the new file. Default: the mode of the existing target, else 0o666 (minus umask). */
  mode?: number;
  /** fsync the file and its directory (default true). Turning this off keeps atomicity against crashes of this process but not against power loss. */
  fsync?: boolean;
  /** Largest single write() call in bytes (default 64 MiB). Progress/abort are checked between chunks. */
  chunkSize?: number;
  /** Abort the write; the temp file is removed and the target is left untouched. */
  signal?: AbortSignal;
  /** Called after each chunk with bytes written so far and the total. Throwing aborts the write (temp file removed). */
  onProgress?: (written: number, total: number) => void;
}

const DEFAULT_CHUNK = 64 * 1024 * 1024;
// Linux write(2) transfers at most 0x7ffff000 bytes per call.
const MAX_CHUNK = 0x7ffff000;

function toChunks(data: AtomicData): Uint8Array[] {
  if (typeof data === 'string') return [Buffer.from(data, 'utf8')];
  if (data instanceof Uint8Array) return [data];
  if (Array.isArray(data)) {
    data.forEach((c, i) => {
      if (!(c instanceof Uint8Array)) throw new ArgumentError(`data[${i}]`, 'a Uint8Array', c);
    });
    return data.slice();
  }
  throw new ArgumentError('data', 'a string, a Uint8Array or an array of Uint8Array', data);
}

function chunkSizeOf(opts: WriteFileAtomicOptions): number {
  const c = opts.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isInteger(c) || c <= 0) throw new ArgumentError('options.chunkSize', 'a positive integer', c);
  return Math.min(c, MAX_CHUNK);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * An operating-system error (ENOENT, EACCES, ENOSPC, ...) as a FileAccessError
 * naming the file; torchface's own errors and the caller's (an abort reason, an
 * exception thrown by onProgress) pass through unchanged.
 */
export function fileAccessError(file: string, doing: string, err: unknown): unknown {
  if (err instanceof TorchfaceError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  if (!e || typeof e !== 'object' || (typeof e.syscall !== 'string' && !(typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code)))) return err;
  const code = typeof e.code === 'string' ? ` (${e.code})` : '';
  return new FileAccessError(file, `${file}: cannot ${doing}${code}: ${e.message}`, { cause: err });
}

/** Name of a fresh temporary file next to `target`: `.<basename>.<pid>.<16 hex>.tmp`. */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}.${process.pid}.${randomBytes(8).toString('hex')}.tmp`);
}

function tempPattern(target: string): RegExp {
  return new RegExp(`^\\.${escapeRegExp(path.basename(target))}\\.(\\d+)\\.[0-9a-f]+\\.tmp$`);
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error(`writeFileAtomic: aborted${reason !== undefined ? `: ${String(reason)}` : ''}`);
  err.name = 'AbortError';
  return err;
}

function isIgnorableDirSyncError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  // Directories cannot be opened/fsync'ed on Windows and some file systems.
  return code === 'EISDIR' || code === 'EPERM' || code === 'EINVAL' || code === 'EACCES' || code === 'ENOTSUP';
}

/** Resolve a symlinked target so the link is preserved and the file it points to is replaced. */
function resolveTargetSync(target: string): { real: string; mode?: number } {
  try {
    const real = fs.realpathSync(target);
    const st = fs.statSync(real);
    return { real, mode: st.mode & 0o7777 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      // Dangling symlink: write where it points.
      try {
        const link = fs.readlinkSync(target);
        return { real: path.resolve(path.dirname(target), link) };
      } catch {
        return { real: target };
      }
    }
    throw fileAccessError(target, 'resolve the target', err);
  }
}

async function resolveTarget(target: string): Promise<{ real: string; mode?: number }> {
  try {
    const real = await fsp.realpath(target);
    const st = await fsp.stat(real);
    return { real, mode: st.mode & 0o7777 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      try {
        const link = await fsp.readlink(target);
        return { real: path.resolve(path.dirname(target), link) };
      } catch {
        return { real: target };
      }
    }
    throw fileAccessError(target, 'resolve the target', err);
  }
}

/** Atomically replace `target` with `data` (see module comment). */
export async function writeFileAtomic(target: string, data: AtomicData, options: WriteFileAtomicOptions = {}): Promise<void> {
  const chunks = toChunks(data);
  const chunkSize = chunkSizeOf(options);
  const doSync = options.fsync !== false;
  const { signal, onProgress } = options;
  if (signal?.aborted) throw abortError(signal);

  const { real, mode: existingMode } = await resolveTarget(target);
  const mode = options.mode ?? existingMode ?? 0o666;
  const tmp = tempPathFor(real);
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);

  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx', mode);
    let written = 0;
    for (const chunk of chunks) {
      let off = 0;
      while (off < chunk.byteLength) {
        if (signal?.aborted) throw abortError(signal);
        const len = Math.min(chunkSize, chunk.byteLength - off);
        const { bytesWritten } = await fh.write(chunk, off, len);
        off += bytesWritten;
        written += bytesWritten;
        onProgress?.(written, total);
      }
    }
    if (total === 0) onProgress?.(0, 0);
    if (signal?.aborted) throw abortError(signal);
    if (options.mode !== undefined || existingMode !== undefined) await fh.chmod(mode); // not subject to umask
    if (doSync) await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, real);
  } catch (err) {
    if (fh) await fh.close().catch(() => undefined);
    await fsp.unlink(tmp).catch(() => undefined);
    throw fileAccessError(real, 'write', err);
  }
  if (doSync) await fsyncDir(path.dirname(real));
}

/** Synchronous version of `writeFileAtomic`. */
export function writeFileAtomicSync(target: string, data: AtomicData, options: WriteFileAtomicOptions = {}): void {
  const chunks = toChunks(data);
  const chunkSize = chunkSizeOf(options);
  const doSync = options.fsync !== false;
  const { signal, onProgress } = options;
  if (signal?.aborted) throw abortError(signal);

  const { real, mode: existingMode } = resolveTargetSync(target);
  const mode = options.mode ?? existingMode ?? 0o666;
  const tmp = tempPathFor(real);
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);

  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', mode);
    let written = 0;
    for (const chunk of chunks) {
      let off = 0;
      while (off < chunk.byteLength) {
        if (signal?.aborted) throw abortError(signal);
        const len = Math.min(chunkSize, chunk.byteLength - off);
        const n = fs.writeSync(fd, chunk, off, len);
        off += n;
        written += n;
        onProgress?.(written, total);
      }
    }
    if (total === 0) onProgress?.(0, 0);
    if (signal?.aborted) throw abortError(signal);
    if (options.mode !== undefined || existingMode !== undefined) fs.fchmodSync(fd, mode);
    if (doSync) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, real);
  } catch (err) {
    if (fd !== undefined) {
      try { fs.closeSync(fd); } catch { /* ignore */ }
    }
    try { fs.unlinkSync(tmp); } catch { /* ignore */ }
    throw fileAccessError(real, 'write', err);
  }
  if (doSync) fsyncDirSync(path.dirname(real));
}

/** fsync a directory so that a rename/create inside it is durable. No-op where unsupported. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (err) {
    if (!isIgnorableDirSyncError(err)) throw fileAccessError(dir, 'sync the folder', err);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Synchronous `fsyncDir`. */
export function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    if (!isIgnorableDirSyncError(err)) throw fileAccessError(dir, 'sync the folder', err);
  } finally {
    if (fd !== undefined) {
      try { fs.closeSync(fd); } catch { /* ignore */ }
    }
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface StaleTempOptions {
  /** Also report/remove temp files whose writer process is still alive (dangerous while a save is in flight). */
  includeLive?: boolean;
}

/**
 * Temp files left next to `target` by `writeFileAtomic` calls that never finished
 * (process killed). By default only files whose writer pid is no longer running.
 * (A reused pid makes a stale file look live; it is then kept, which is safe.)
 */
export function listStaleTempFiles(target: string, options: StaleTempOptions = {}): string[] {
  const dir = path.dirname(target);
  const re = tempPattern(target);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw fileAccessError(dir, 'list the folder', err);
  }
  const out: string[] = [];
  for (const name of names) {
    const m = re.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!options.includeLive && pidAlive(pid)) continue;
    out.push(path.join(dir, name));
  }
  return out.sort();
}

/** Remove the files `listStaleTempFiles` reports; returns the removed paths. */
export function removeStaleTempFiles(target: string, options: StaleTempOptions = {}): string[] {
  const removed: string[] = [];
  for (const p of listStaleTempFiles(target, options)) {
    try {
      fs.unlinkSync(p);
      removed.push(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fileAccessError(p, 'remove', err);
    }
  }
  return removed;
}

export interface ReadFileCheckedOptions {
  /** Refuse files larger than this many bytes. */
  maxBytes?: number;
}

function describeNotRegular(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function checkSize(file: string, size: number, options: ReadFileCheckedOptions): void {
  if (options.maxBytes !== undefined && size > options.maxBytes) {
    throw new FileAccessError(file, `${file}: file is ${size} bytes, larger than the allowed ${options.maxBytes}`);
  }
  if (size > bufferConstants.MAX_LENGTH) {
    throw new FileAccessError(file, `${file}: file is ${size} bytes, larger than the largest buffer Node can allocate (${bufferConstants.MAX_LENGTH})`);
  }
}

function notRegular(file: string, st: fs.Stats): FileAccessError {
  return new FileAccessError(file, `${file}: cannot read, it is ${describeNotRegular(st)}`);
}

function checkPath(file: unknown): asserts file is string {
  if (typeof file !== 'string' || file === '' || file.includes('\0')) throw new ArgumentError('file', 'a file path', file);
}

/**
 * Read a whole regular file into a fresh, exclusively owned buffer (byteOffset 0,
 * so typed-array views on 8-byte aligned offsets are possible). Errors name the
 * file: not a regular file, too large, or the file changed size while being read
 * (e.g. a concurrent non-atomic writer). Every failure is a FileAccessError
 * (its `cause` is the operating system's error, e.g. ENOENT, EISDIR, EACCES).
 */
export async function readFileChecked(file: string, options: ReadFileCheckedOptions = {}): Promise<Uint8Array> {
  checkPath(file);
  try {
    const pre = await fsp.stat(file); // before open(): opening a FIFO would block
    if (!pre.isFile()) throw notRegular(file, pre);
    checkSize(file, pre.size, options);
    const fh = await fsp.open(file, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw notRegular(file, st);
      const size = st.size;
      checkSize(file, size, options);
      const buf = Buffer.from(new ArrayBuffer(size));
      let off = 0;
      while (off < size) {
        const { bytesRead } = await fh.read(buf, off, Math.min(MAX_CHUNK, size - off), off);
        if (bytesRead === 0) throw new FileAccessError(file, `${file}: file shrank while reading (expected ${size} bytes, got ${off})`);
        off += bytesRead;
      }
      const extra = await fh.read(Buffer.alloc(1), 0, 1, size);
      if (extra.bytesRead !== 0) throw new FileAccessError(file, `${file}: file grew while reading (expected ${size} bytes)`);
      return buf;
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw fileAccessError(file, 'read', err);
  }
}

/** Synchronous `readFileChecked`. */
export function readFileCheckedSync(file: string, options: ReadFileCheckedOptions = {}): Uint8Array {
  checkPath(file);
  try {
    const pre = fs.statSync(file);
    if (!pre.isFile()) throw notRegular(file, pre);
    checkSize(file, pre.size, options);
    const fd = fs.openSync(file, 'r');
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw notRegular(file, st);
      const size = st.size;
      checkSize(file, size, options);
      const buf = Buffer.from(new ArrayBuffer(size));
      let off = 0;
      while (off < size) {
        const n = fs.readSync(fd, buf, off, Math.min(MAX_CHUNK, size - off), off);
        if (n === 0) throw new FileAccessError(file, `${file}: file shrank while reading (expected ${size} bytes, got ${off})`);
        off += n;
      }
      if (fs.readSync(fd, Buffer.alloc(1), 0, 1, size) !== 0) throw new FileAccessError(file, `${file}: file grew while reading (expected ${size} bytes)`);
      return buf;
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw fileAccessError(file, 'read', err);
  }
}
