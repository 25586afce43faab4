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
 *
 * Each algorithm here (write, resolve a symlinked target, sync a folder, read a
 * file checked) is written once, as a generator that yields the file-system
 * operations it needs (`yield* io.open(...)`) rather than performing them, and
 * is run by one of two drivers: `runSync` performs each with the blocking
 * fs.*Sync call, `runAsync` awaits the non-blocking one (libuv's thread pool),
 * so the async entry points never block the event loop and both behave alike.
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

// ---------------------------------------------------------------------------
// The two drivers

/** The file-system operations the algorithms use, in their synchronous shape; files are descriptors. */
interface FsOps {
  realpath(p: string): string;
  readlink(p: string): string;
  stat(p: string): fs.Stats;
  open(p: string, flags: string, mode?: number): number;
  fstat(fd: number): fs.Stats;
  read(fd: number, buf: Uint8Array, off: number, len: number, position: number): number;
  write(fd: number, buf: Uint8Array, off: number, len: number): number;
  fchmod(fd: number, mode: number): void;
  fsync(fd: number): void;
  close(fd: number): void;
  rename(from: string, to: string): void;
  unlink(p: string): void;
}
type Op = keyof FsOps;
/** One operation an algorithm asks its driver to perform. */
type Effect = { [K in Op]: { op: K; args: Parameters<FsOps[K]> } }[Op];
/** An algorithm: yields Effects, is resumed with each one's result (or its error thrown in), returns T. */
type Io<T> = Generator<Effect, T, unknown>;

// Looked up at call time (not bound once), like a direct fs.*Sync call.
const syncOps: FsOps = {
  realpath: (p) => fs.realpathSync(p),
  readlink: (p) => fs.readlinkSync(p),
  stat: (p) => fs.statSync(p),
  open: (p, flags, mode) => fs.openSync(p, flags, mode),
  fstat: (fd) => fs.fstatSync(fd),
  read: (fd, buf, off, len, position) => fs.readSync(fd, buf, off, len, position),
  write: (fd, buf, off, len) => fs.writeSync(fd, buf, off, len),
  fchmod: (fd, mode) => fs.fchmodSync(fd, mode),
  fsync: (fd) => fs.fsyncSync(fd),
  close: (fd) => fs.closeSync(fd),
  rename: (from, to) => fs.renameSync(from, to),
  unlink: (p) => fs.unlinkSync(p),
};

/** A call of Node's callback API as a promise (fs/promises has no calls on plain descriptors). */
function viaCallback<T = void>(start: (done: (err: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value as T))));
}

const asyncOps: { [K in Op]: (...args: Parameters<FsOps[K]>) => Promise<ReturnType<FsOps[K]>> } = {
  realpath: (p) => fsp.realpath(p),
  readlink: (p) => fsp.readlink(p),
  stat: (p) => fsp.stat(p),
  open: (p, flags, mode) => viaCallback((done) => fs.open(p, flags, mode, done)),
  fstat: (fd) => viaCallback((done) => fs.fstat(fd, done)),
  read: (fd, buf, off, len, position) => viaCallback((done) => fs.read(fd, buf, off, len, position, done)),
  write: (fd, buf, off, len) => viaCallback((done) => fs.write(fd, buf, off, len, null, done)),
  fchmod: (fd, mode) => viaCallback((done) => fs.fchmod(fd, mode, done)),
  fsync: (fd) => viaCallback((done) => fs.fsync(fd, done)),
  close: (fd) => viaCallback((done) => fs.close(fd, done)),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (p) => fsp.unlink(p),
};

/** `yield* io.stat(p)`: ask the driver running the algorithm to stat `p`; evaluates to the result. */
const io = Object.fromEntries(
  (Object.keys(syncOps) as Op[]).map((op) => [
    op,
    function* (...args: unknown[]): Io<unknown> {
      return yield { op, args } as Effect;
    },
  ]),
) as { [K in Op]: (...args: Parameters<FsOps[K]>) => Io<ReturnType<FsOps[K]>> };

/** Runs an algorithm, performing each operation with its blocking fs.*Sync call. */
function runSync<T>(algorithm: Io<T>): T {
  let step = algorithm.next();
  while (!step.done) {
    const { op, args } = step.value;
    let result: unknown;
    try {
      result = (syncOps[op] as (...a: unknown[]) => unknown)(...args);
    } catch (err) {
      step = algorithm.throw(err);
      continue;
    }
    step = algorithm.next(result);
  }
  return step.value;
}

/** Runs an algorithm, awaiting each operation's non-blocking call in turn. */
async function runAsync<T>(algorithm: Io<T>): Promise<T> {
  let step = algorithm.next();
  while (!step.done) {
    const { op, args } = step.value;
    let result: unknown;
    try {
      result = await (asyncOps[op] as (...a: unknown[]) => Promise<unknown>)(...args);
    } catch (err) {
      step = algorithm.throw(err);
      continue;
    }
    step = algorithm.next(result);
  }
  return step.value;
}

/** Runs `step`, ignoring its error (cleanup after a failure). */
function* ignoringErrors(step: Io<unknown>): Io<void> {
  try {
    yield* step;
  } catch {
    /* ignore */
  }
}

// ---------------------------------------------------------------------------
// Writing

/** Resolve a symlinked target so the link is preserved and the file it points to is replaced. */
function* resolveTarget(target: string): Io<{ real: string; mode?: number }> {
  try {
    const real = yield* io.realpath(target);
    const st = yield* io.stat(real);
    return { real, mode: st.mode & 0o7777 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      // Dangling symlink: write where it points.
      try {
        const link = yield* io.readlink(target);
        return { real: path.resolve(path.dirname(target), link) };
      } catch {
        return { real: target };
      }
    }
    throw fileAccessError(target, 'resolve the target', err);
  }
}

function* writeSteps(target: string, data: AtomicData, options: WriteFileAtomicOptions): Io<void> {
  const chunks = toChunks(data);
  const chunkSize = chunkSizeOf(options);
  const doSync = options.fsync !== false;
  const { signal, onProgress } = options;
  if (signal?.aborted) throw abortError(signal);

  const { real, mode: existingMode } = yield* resolveTarget(target);
  const mode = options.mode ?? existingMode ?? 0o666;
  const tmp = tempPathFor(real);
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);

  let fd: number | undefined;
  try {
    fd = yield* io.open(tmp, 'wx', mode);
    let written = 0;
    for (const chunk of chunks) {
      let off = 0;
      while (off < chunk.byteLength) {
        if (signal?.aborted) throw abortError(signal);
        const n = yield* io.write(fd, chunk, off, Math.min(chunkSize, chunk.byteLength - off));
        off += n;
        written += n;
        onProgress?.(written, total);
      }
    }
    if (total === 0) onProgress?.(0, 0);
    if (signal?.aborted) throw abortError(signal);
    if (options.mode !== undefined || existingMode !== undefined) yield* io.fchmod(fd, mode); // not subject to umask
    if (doSync) yield* io.fsync(fd);
    const open = fd;
    fd = undefined; // released even when close() reports an error; never closed twice (the number may be reused)
    yield* io.close(open);
    yield* io.rename(tmp, real);
  } catch (err) {
    if (fd !== undefined) yield* ignoringErrors(io.close(fd));
    yield* ignoringErrors(io.unlink(tmp));
    throw fileAccessError(real, 'write', err);
  }
  if (doSync) yield* fsyncDirSteps(path.dirname(real));
}

/** Atomically replace `target` with `data` (see module comment). */
export async function writeFileAtomic(target: string, data: AtomicData, options: WriteFileAtomicOptions = {}): Promise<void> {
  return runAsync(writeSteps(target, data, options));
}

/** Synchronous version of `writeFileAtomic`. */
export function writeFileAtomicSync(target: string, data: AtomicData, options: WriteFileAtomicOptions = {}): void {
  runSync(writeSteps(target, data, options));
}

function* fsyncDirSteps(dir: string): Io<void> {
  let fd: number | undefined;
  try {
    fd = yield* io.open(dir, 'r');
    yield* io.fsync(fd);
  } catch (err) {
    if (!isIgnorableDirSyncError(err)) throw fileAccessError(dir, 'sync the folder', err);
  } finally {
    if (fd !== undefined) yield* ignoringErrors(io.close(fd));
  }
}

/** fsync a directory so that a rename/create inside it is durable. No-op where unsupported. */
export async function fsyncDir(dir: string): Promise<void> {
  return runAsync(fsyncDirSteps(dir));
}

/** Synchronous `fsyncDir`. */
export function fsyncDirSync(dir: string): void {
  runSync(fsyncDirSteps(dir));
}

// ---------------------------------------------------------------------------
// Stale temporary files

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

// ---------------------------------------------------------------------------
// Reading

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

function* readSteps(file: string, options: ReadFileCheckedOptions): Io<Uint8Array> {
  checkPath(file);
  try {
    const pre = yield* io.stat(file); // before open(): opening a FIFO would block
    if (!pre.isFile()) throw notRegular(file, pre);
    checkSize(file, pre.size, options);
    const fd = yield* io.open(file, 'r');
    try {
      const st = yield* io.fstat(fd);
      if (!st.isFile()) throw notRegular(file, st);
      const size = st.size;
      checkSize(file, size, options);
      const buf = Buffer.from(new ArrayBuffer(size));
      let off = 0;
      while (off < size) {
        const n = yield* io.read(fd, buf, off, Math.min(MAX_CHUNK, size - off), off);
        if (n === 0) throw new FileAccessError(file, `${file}: file shrank while reading (expected ${size} bytes, got ${off})`);
        off += n;
      }
      if ((yield* io.read(fd, Buffer.alloc(1), 0, 1, size)) !== 0) throw new FileAccessError(file, `${file}: file grew while reading (expected ${size} bytes)`);
      return buf;
    } finally {
      yield* io.close(fd);
    }
  } catch (err) {
    throw fileAccessError(file, 'read', err);
  }
}

/**
 * Read a whole regular file into a fresh, exclusively owned buffer (byteOffset 0,
 * so typed-array views on 8-byte aligned offsets are possible). Errors name the
 * file: not a regular file, too large, or the file changed size while being read
 * (e.g. a concurrent non-atomic writer). Every failure is a FileAccessError
 * (its `cause` is the operating system's error, e.g. ENOENT, EISDIR, EACCES).
 */
export async function readFileChecked(file: string, options: ReadFileCheckedOptions = {}): Promise<Uint8Array> {
  return runAsync(readSteps(file, options));
}

/** Synchronous `readFileChecked`. */
export function readFileCheckedSync(file: string, options: ReadFileCheckedOptions = {}): Uint8Array {
  return runSync(readSteps(file, options));
}
