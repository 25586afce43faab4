/**
 * Reading PyTorch checkpoints (`torch.save` zip archives: .pt / .pth) without
 * executing anything from the file.
 *
 * Why not libtorch's `torch::jit::pickle_load`? In
 * libtorch 1.13 it turns every `collections.OrderedDict` into None, so the
 * most common file of all, `torch.save(model.state_dict())`, fails to load
 * ("Expected GenericDict but got None"). This module is a small pickle virtual
 * machine in TypeScript instead: it understands the opcodes of pickle protocols
 * 2-5 that torch.save emits and resolves globals only from an allow-list
 * (OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter, the typed
 * storage classes and dtypes). Any other global (e.g. `os.system` from a
 * malicious `__reduce__`) is refused with a FileFormatError before anything
 * could use it; nothing is ever called but the allow-listed rebuild functions,
 * which are implemented here.
 *
 * Storages are read from the archive's `data/<key>` records (stored
 * uncompressed by torch.save) and tensors rebuilt with as_strided, then copied
 * to be contiguous and independent (contiguous views are copied straight from
 * the archive's bytes).
 *
 * Hostile files: the CRC-32 of every zip entry read is checked and entries may
 * not overlap; every view must lie inside its storage and every storage must
 * fill its zip entry exactly; and the work of reading the pickle (opcodes,
 * copies, objects visited while naming the tensors), the length of the names
 * and the bytes of the tensors made are all bounded by a few times the file's
 * size, and checked before any tensor is allocated. So a file of a few hundred
 * bytes cannot become gigabytes of tensors or hours of work; it is refused
 * with a FileFormatError saying which limit it broke.
 */
import * as zlib from 'zlib';
import { ArgumentError, FileFormatError, TorchError, TorchfaceError } from '../core/errors';
import { DType, Tensor, fromBytes, noGrad, ELEMENT_SIZE } from '../core';
import * as F from '../ops';

// ---------------------------------------------------------------------------
// Zip (stored entries only, as torch.save writes them)

export interface ZipEntry {
  name: string;
  data: Uint8Array;
}

interface ZipRecord {
  name: string;
  /** Offset of the local header, and of the entry's bytes. */
  header: number;
  start: number;
  size: number;
  crc: number;
  checked: boolean;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
const nativeCrc32 = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 (the zip / PNG one) of `data`, continuing from `value`. */
export function crc32(data: Uint8Array, value = 0): number {
  if (nativeCrc32) return nativeCrc32(data, value) >>> 0;
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32 is checked in pieces of this many bytes, yielding to the event loop in between when loading asynchronously. */
const CRC_CHUNK = 16 * 1024 * 1024;

/**
 * The central directory of a stored (uncompressed) zip archive. Entries are
 * checked to lie inside the file without overlapping each other; the CRC-32 of
 * an entry is checked when it is read.
 */
class ZipArchive {
  constructor(
    readonly bytes: Uint8Array,
    readonly source: string,
    readonly records: Map<string, ZipRecord>,
  ) {}
  has(name: string): boolean {
    return this.records.has(name);
  }
  size(name: string): number | undefined {
    return this.records.get(name)?.size;
  }
  /** The entry's bytes (a view into the archive), CRC-checked; yields between CRC pieces. */
  *read(name: string): Generator<void, Uint8Array | undefined> {
    const r = this.records.get(name);
    if (!r) return undefined;
    const data = this.bytes.subarray(r.start, r.start + r.size);
    if (!r.checked) {
      let c = 0;
      for (let off = 0; off < data.length; off += CRC_CHUNK) {
        c = crc32(data.subarray(off, Math.min(data.length, off + CRC_CHUNK)), c);
        if (data.length > CRC_CHUNK) yield;
      }
      if (c !== r.crc)
        throw new FileFormatError(`${this.source}: zip entry ${name} is corrupt: its CRC-32 is ${hex(c)} but the archive records ${hex(r.crc)} (the file was damaged or modified)`);
      r.checked = true;
    }
    return data;
  }
  readSync(name: string): Uint8Array | undefined {
    return drive(this.read(name));
  }
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

function openZip(bytes: Uint8Array, source: string): ZipArchive {
  const fail = (why: string): never => {
    throw new FileFormatError(`${source}: not a readable torch.save archive: ${why}`);
  };
  if (!(bytes instanceof Uint8Array)) throw new ArgumentError('bytes', 'a Uint8Array', bytes);
  try {
    return parseZip(bytes, source, fail);
  } catch (e) {
    if (e instanceof TorchfaceError) throw e;
    return fail(`corrupt archive (${(e as Error)?.message ?? String(e)})`);
  }
}

function parseZip(bytes: Uint8Array, source: string, fail: (why: string) => never): ZipArchive {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.length;
  const u16 = (at: number) => (at >= 0 && at + 2 <= len ? dv.getUint16(at, true) : fail(`a header at byte ${at} extends beyond the end of the file`));
  const u32 = (at: number) => (at >= 0 && at + 4 <= len ? dv.getUint32(at, true) : fail(`a header at byte ${at} extends beyond the end of the file`));
  const u64 = (at: number) => {
    if (at < 0 || at + 8 > len) fail(`a header at byte ${at} extends beyond the end of the file`);
    const v = dv.getBigUint64(at, true);
    return v > BigInt(len) ? fail(`a zip64 field (${v}) points beyond the ${len}-byte file`) : Number(v);
  };
  let eocd = -1;
  for (let i = len - 22; i >= Math.max(0, len - 22 - 65535); i--) {
    if (dv.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail(len >= 2 && bytes[0] === 0x80 ? 'it is a legacy (pre-1.6, non-zip) torch.save file; re-save it with a current PyTorch' : 'no zip end-of-central-directory record');
  let count = u16(eocd + 10);
  let cdOffset = u32(eocd + 16);
  if (count === 0xffff || cdOffset === 0xffffffff) {
    // zip64: locator just before the EOCD
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== 0x07064b50) fail('zip64 locator missing');
    const z64 = u64(loc + 8);
    if (z64 + 56 > len || u32(z64) !== 0x06064b50) fail('zip64 end record missing');
    count = u64(z64 + 32);
    cdOffset = u64(z64 + 48);
  }
  if (cdOffset > len) fail(`the central directory offset ${cdOffset} is beyond the ${len}-byte file`);
  if (count > (len - cdOffset) / 46) fail(`the central directory claims ${count} entries, more than fit in the file`);
  const records = new Map<string, ZipRecord>();
  let p = cdOffset;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < count; i++) {
    if (p + 46 > len || u32(p) !== 0x02014b50) fail('corrupt central directory');
    const method = u16(p + 10);
    const crc = u32(p + 16);
    let csize = u32(p + 20);
    let usize = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    let local = u32(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > len) fail('corrupt central directory (an entry extends beyond the end of the file)');
    let name: string;
    try {
      name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    } catch {
      return fail(`central directory entry ${i} has a name that is not UTF-8`);
    }
    // zip64 extended information extra field
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = u16(e);
      const size = u16(e + 2);
      if (e + 4 + size > extraEnd) fail(`entry ${name}: corrupt extra field`);
      if (id === 0x0001) {
        let q = e + 4;
        const end = q + size;
        const next = () => (q + 8 <= end ? ((q += 8), u64(q - 8)) : fail(`entry ${name}: truncated zip64 extra field`));
        if (usize === 0xffffffff) usize = next();
        if (csize === 0xffffffff) csize = next();
        if (local === 0xffffffff) local = next();
      }
      e += 4 + size;
    }
    if (method !== 0) fail(`entry ${name} is compressed (method ${method}); torch.save stores entries uncompressed`);
    if (csize !== usize) fail(`entry ${name}: stored sizes differ`);
    if (local + 30 > len || u32(local) !== 0x04034b50) fail(`entry ${name}: bad local header`);
    const start = local + 30 + u16(local + 26) + u16(local + 28);
    if (start + csize > len) fail(`entry ${name} extends beyond the end of the file`);
    if (records.has(name)) fail(`entry ${name} appears twice`);
    records.set(name, { name, header: local, start, size: csize, crc, checked: false });
    p = extraEnd + commentLen;
  }
  // No two entries may share bytes (else one stored storage could be loaded many times over), nor reach into the central directory.
  const sorted = [...records.values()].sort((a, b) => a.header - b.header);
  for (let i = 0; i < sorted.length; i++) {
    const r = sorted[i];
    const limit = i + 1 < sorted.length ? sorted[i + 1].header : cdOffset;
    if (r.start + r.size > limit) fail(`entry ${r.name} overlaps ${i + 1 < sorted.length ? `entry ${sorted[i + 1].name}` : 'the central directory'}`);
  }
  return new ZipArchive(bytes, source, records);
}

/** Runs a generator to its end, ignoring its yields (the synchronous path). */
function drive<T>(g: Generator<void, T>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

/** Runs a generator to its end, yielding to the event loop at each of its yields. */
async function driveAsync<T>(g: Generator<void, T>): Promise<T> {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * The entries of a stored zip archive by name, each CRC-checked. Malformed,
 * truncated or damaged archives are FileFormatErrors.
 */
export function readZip(bytes: Uint8Array, source = '<buffer>'): Map<string, Uint8Array> {
  const zip = openZip(bytes, source);
  const out = new Map<string, Uint8Array>();
  for (const name of zip.records.keys()) out.set(name, zip.readSync(name)!);
  return out;
}

// ---------------------------------------------------------------------------
// Restricted unpickler

class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}
class PickleDict extends Map<unknown, unknown> {}
class StorageRef {
  constructor(
    readonly dtype: DType,
    readonly key: string,
    readonly numel: number,
  ) {}
}
/**
 * A tensor to make: a view of a storage, checked to lie inside it. Nothing is
 * allocated while the pickle is read; tensors are made once the whole pickle
 * has been read and the budgets checked.
 */
class TensorSpec {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
    readonly numel: number,
  ) {}
  get bytes(): number {
    return this.numel * ELEMENT_SIZE[this.storage.dtype];
  }
  get contiguous(): boolean {
    if (this.numel === 0) return true;
    let expect = 1;
    for (let i = this.size.length - 1; i >= 0; i--) {
      if (this.size[i] !== 1 && this.stride[i] !== expect) return false;
      expect *= this.size[i];
    }
    return true;
  }
}

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};
const TORCH_DTYPES: Record<string, DType> = {
  float32: 'float32', float: 'float32', float64: 'float64', double: 'float64', float16: 'float16', half: 'float16', bfloat16: 'bfloat16',
  int64: 'int64', long: 'int64', int32: 'int32', int: 'int32', int16: 'int16', short: 'int16', int8: 'int8', uint8: 'uint8', bool: 'bool',
};

const ALLOWED = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch.Size',
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
  ...Object.keys(TORCH_DTYPES).map((s) => `torch.${s}`),
]);

/**
 * Budgets, all proportional to the size of the file, so that a tiny file
 * cannot make the loader work or allocate without bound:
 *  - work: pickle opcodes run, elements copied (OrderedDict of a list) and
 *    objects visited while naming the tensors (shared references to a list
 *    holding itself twice, nested 30 deep, would otherwise be visited 2^30 times);
 *  - names: characters of the dotted tensor names built;
 *  - output: bytes of the tensors made (a stride-0 view of one element can
 *    claim any size; many tensors may view one storage).
 */
const WORK_PER_BYTE = 4;
const WORK_SLACK = 65_536;
const NAME_CHARS_PER_BYTE = 8;
const NAME_CHARS_SLACK = 1 << 20;
const OUTPUT_PER_BYTE = 4;
const OUTPUT_SLACK = 1 << 20;

class Budget {
  used = 0;
  constructor(
    readonly limit: number,
    readonly fail: (used: number) => never,
  ) {}
  charge(n: number): void {
    this.used += n;
    if (this.used > this.limit) this.fail(this.used);
  }
}

const short = (v: unknown): string => {
  let s: string;
  try {
    s = typeof v === 'string' ? `'${v}'` : Array.isArray(v) ? `[${v.slice(0, 8).map((x) => (typeof x === 'bigint' ? `${x}` : JSON.stringify(x) ?? String(x))).join(', ')}${v.length > 8 ? ', ...' : ''}]` : String(v);
  } catch {
    s = typeof v;
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

interface UnpickleContext {
  source: string;
  /** A storage reference, checked against the archive (entry present and of the right size). */
  storage(dtype: DType, key: string, numel: number): StorageRef;
  work: Budget;
}

function unpickle(bytes: Uint8Array, ctx: UnpickleContext): unknown {
  const fail = (why: string): never => {
    throw new FileFormatError(`${ctx.source}: cannot load the pickle: ${why}`);
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder('utf-8', { fatal: false });
  const latin1 = (a: number, b: number) => Buffer.from(bytes.buffer, bytes.byteOffset + a, b - a).toString('latin1');
  let pos = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const need = (n: number) => {
    if (n < 0 || pos + n > bytes.length) fail('truncated data');
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), dv.getInt32(pos - 4, true));
  const take = (n: number) => (need(n), (pos += n), bytes.subarray(pos - n, pos));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('truncated line');
    const s = latin1(pos, end);
    pos = end + 1;
    return s;
  };
  const pop = () => (stack.length ? stack.pop() : fail('stack underflow'));
  const popMark = () => {
    const items = stack;
    stack = metastack.pop() ?? fail('mark missing');
    return items;
  };
  const top = () => (stack.length ? stack[stack.length - 1] : fail('stack underflow'));
  const global = (module: string, name: string) => {
    const g = new Global(module, name);
    if (!ALLOWED.has(g.qualified)) fail(`refusing to load global ${short(g.qualified)} (only tensors, storages and dicts are allowed; the file may be malicious or not a state dict)`);
    return g;
  };
  const setItems = (target: unknown, kv: unknown[]) => {
    if (!(target instanceof PickleDict)) fail('SETITEM(S) on something that is not a dict');
    for (let i = 0; i + 1 < kv.length; i += 2) (target as PickleDict).set(kv[i], kv[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]) => {
    if (!Array.isArray(target) || Object.isFrozen(target)) fail('APPEND(S) on something that is not a list');
    const list = target as unknown[];
    for (let i = 0; i < items.length; i++) list.push(items[i]);
  };
  const dims = (v: unknown, what: string): number[] =>
    Array.isArray(v) && v.length <= 64 && v.every((e) => Number.isSafeInteger(e) && (e as number) >= 0) ? (v as number[]) : fail(`_rebuild_tensor with a bad ${what} ${short(v)}`);
  const rebuild = (args: readonly unknown[]): TensorSpec => {
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof StorageRef)) return fail('_rebuild_tensor without a storage');
    const sz = dims(size, 'size');
    const st = dims(stride, 'stride');
    if (st.length !== sz.length) return fail(`_rebuild_tensor with size ${short(sz)} and stride ${short(st)} of different lengths`);
    if (!Number.isSafeInteger(offset) || (offset as number) < 0) return fail(`_rebuild_tensor with a bad offset ${short(offset)}`);
    const off = offset as number;
    let numel = 1;
    for (const d of sz) numel *= d;
    if (!Number.isSafeInteger(numel)) return fail(`_rebuild_tensor with a size ${short(sz)} of more than 2^53 elements`);
    // The view's extent (offset + sum((size-1)*stride) + 1 elements) must fit inside the storage.
    const extent = numel === 0 ? off : sz.reduce((a, d, i) => a + (d - 1) * st[i], off) + 1;
    if (!Number.isSafeInteger(extent) || extent > storage.numel)
      return fail(
        `tensor view outside its storage ${short(storage.key)}: offset ${off}, size ${short(sz)} and stride ${short(st)} reach ${numel === 0 ? `offset ${off}` : `element ${extent - 1}`} of a storage of ${storage.numel} elements`,
      );
    return new TensorSpec(storage, off, sz.slice(), st.slice(), numel);
  };
  const call = (fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof Global)) return fail('REDUCE of something that is not an allowed global');
    if (!Array.isArray(args)) return fail('REDUCE arguments are not a tuple');
    switch (fn.qualified) {
      case 'collections.OrderedDict': {
        const d = new PickleDict();
        if (args.length && Array.isArray(args[0])) {
          const pairs = args[0] as unknown[];
          ctx.work.charge(pairs.length);
          for (const kv of pairs) {
            if (!Array.isArray(kv) || kv.length !== 2) return fail('OrderedDict of something that is not a list of pairs');
            d.set(kv[0], kv[1]);
          }
        }
        return d;
      }
      case 'torch._utils._rebuild_tensor_v2':
      case 'torch._utils._rebuild_tensor_v3':
        return rebuild(args);
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        if (!(args[0] instanceof TensorSpec)) return fail('_rebuild_parameter without a tensor');
        return args[0];
      case 'torch.Size':
        return Array.isArray(args[0]) ? args[0] : [];
      default:
        return fail(`cannot call '${fn.qualified}'`);
    }
  };

  for (;;) {
    ctx.work.charge(1);
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol above 5');
        break;
      case 0x95: // FRAME
        take(8);
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new PickleDict());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(Object.freeze([]));
        break;
      case 0x8f: // EMPTY_SET
        stack.push([]);
        break;
      case 0x74: {
        // TUPLE (popMark replaces `stack`, so take the items first)
        const items = Object.freeze(popMark());
        stack.push(items);
        break;
      }
      case 0x85: // TUPLE1
        stack.push(Object.freeze([pop()]));
        break;
      case 0x86: {
        const b = pop();
        const a = pop();
        stack.push(Object.freeze([a, b]));
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(Object.freeze([a, b, c]));
        break;
      }
      case 0x91: {
        // FROZENSET
        const items = popMark();
        stack.push(Object.freeze(items));
        break;
      }
      case 0x61: // APPEND
        {
          const v = pop();
          appendItems(top(), [v]);
        }
        break;
      case 0x65: // APPENDS
      case 0x90: // ADDITEMS
        {
          const items = popMark();
          appendItems(top(), items);
        }
        break;
      case 0x73: // SETITEM
        {
          const v = pop();
          const k = pop();
          setItems(top(), [k, v]);
        }
        break;
      case 0x75: // SETITEMS
        {
          const items = popMark();
          setItems(top(), items);
        }
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} missing`);
        stack.push(memo.get(k));
        break;
      }
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: {
        // LONG1
        const n = u8();
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88:
        stack.push(true);
        break;
      case 0x89:
        stack.push(false);
        break;
      case 0x58: // BINUNICODE
        stack.push(text.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text.decode(take(u8())));
        break;
      case 0x8d: {
        // BINUNICODE8
        need(8);
        const n = dv.getBigUint64(pos, true);
        pos += 8;
        if (n > BigInt(bytes.length)) fail('truncated data');
        stack.push(text.decode(take(Number(n))));
        break;
      }
      case 0x55: {
        // SHORT_BINSTRING
        const n = u8();
        need(n);
        stack.push(latin1(pos, pos + n));
        pos += n;
        break;
      }
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL of non-strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x62: {
        // BUILD: only the state of an OrderedDict (its _metadata attribute) is expected; it is dropped.
        const state = pop();
        const obj = top();
        if (!(obj instanceof PickleDict) && !(obj instanceof TensorSpec)) fail('BUILD on an object that is not a dict or tensor');
        void state;
        break;
      }
      case 0x51: {
        // BINPERSID: ('storage', storage_type, key, location, numel)
        const pid = pop();
        if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) return fail('unknown persistent id');
        const [, type, key, , numel] = pid;
        let dtype: DType | undefined;
        if (type instanceof Global && type.module === 'torch') dtype = STORAGE_DTYPES[type.name] ?? TORCH_DTYPES[type.name];
        if (!dtype) return fail('persistent id with an unknown storage type');
        if (typeof key !== 'string' || !Number.isSafeInteger(numel) || (numel as number) < 0) return fail(`bad storage reference (key ${short(key)}, ${short(numel)} elements)`);
        stack.push(ctx.storage(dtype, key, numel as number));
        break;
      }
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        return fail(`unsupported pickle opcode 0x${op.toString(16)} at byte ${pos - 1}`);
    }
  }
}

/** A dict key as a part of a dotted tensor name, or undefined for keys that name nothing (they are skipped). */
function keyName(k: unknown): string | undefined {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean' || k === null) return String(k);
  if (Array.isArray(k) && k.length <= 16 && k.every((x) => typeof x === 'string' || typeof x === 'number' || typeof x === 'bigint' || typeof x === 'boolean')) return k.join(',');
  return undefined;
}

/** Reads the archive and the pickle and checks every budget; yields (to the event loop, when loading asynchronously) between steps. */
function* loadSteps(bytes: Uint8Array, source: string): Generator<void, Map<string, Tensor>> {
  const zip = openZip(bytes, source);
  const fileSize = bytes.byteLength;
  const pkl = [...zip.records.keys()].find((k) => k === 'data.pkl' || k.endsWith('/data.pkl'));
  if (!pkl) throw new FileFormatError(`${source}: the archive has no data.pkl (not a torch.save file)`);
  const prefix = pkl.slice(0, -'data.pkl'.length);
  if (zip.has(`${prefix}byteorder`)) {
    const order = yield* zip.read(`${prefix}byteorder`);
    if (new TextDecoder().decode(order).trim() !== 'little') throw new FileFormatError(`${source}: big-endian checkpoints are not supported`);
  }
  const pickle = (yield* zip.read(pkl))!;
  const tooMuch = (what: string, limit: number) => (used: number): never => {
    throw new FileFormatError(
      `${source}: refusing to load: the pickle needs more than ${limit} ${what} (${used} so far) for a ${fileSize}-byte file; shared references can make a tiny file expand without bound, so the work is limited by the file's size`,
    );
  };
  const workLimit = WORK_PER_BYTE * fileSize + WORK_SLACK;
  const work = new Budget(workLimit, tooMuch('steps (opcodes, copied elements and visited objects)', workLimit));
  const refs = new Map<string, StorageRef>();
  const root = unpickle(pickle, {
    source,
    work,
    storage(dtype, key, numel) {
      const known = refs.get(key);
      if (known) {
        if (known.dtype !== dtype || known.numel !== numel)
          throw new FileFormatError(`${source}: storage ${short(key)} is referenced as ${known.numel} ${known.dtype} elements and as ${numel} ${dtype} elements`);
        return known;
      }
      const size = zip.size(`${prefix}data/${key}`);
      if (size === undefined) throw new FileFormatError(`${source}: storage ${short(key)} is missing from the archive`);
      // The storage must fit (exactly) in the bytes of its zip entry.
      if (size !== numel * ELEMENT_SIZE[dtype]) throw new FileFormatError(`${source}: storage ${short(key)} holds ${size} bytes, expected ${numel * ELEMENT_SIZE[dtype]} (${numel} ${dtype} elements)`);
      const ref = new StorageRef(dtype, key, numel);
      refs.set(key, ref);
      return ref;
    },
  });
  yield;

  // Name the tensors: nested dicts and lists join their keys with '.'.
  const nameLimit = NAME_CHARS_PER_BYTE * fileSize + NAME_CHARS_SLACK;
  const names = new Budget(nameLimit, tooMuch('characters of tensor names', nameLimit));
  const specs = new Map<string, TensorSpec>();
  const walk = (v: unknown, name: string, depth: number) => {
    if (depth > 32) return;
    work.charge(1);
    names.charge(name.length);
    if (v instanceof TensorSpec) specs.set(name, v);
    else if (v instanceof PickleDict) {
      for (const [k, x] of v) {
        const part = keyName(k);
        if (part !== undefined) walk(x, name ? `${name}.${part}` : part, depth + 1);
      }
    } else if (Array.isArray(v)) for (let i = 0; i < v.length; i++) walk(v[i], name ? `${name}.${i}` : String(i), depth + 1);
  };
  walk(root, '', 0);

  // The tensors made may not take more than a few times the file's size.
  const outputLimit = OUTPUT_PER_BYTE * fileSize + OUTPUT_SLACK;
  let output = 0;
  let largest: [string, TensorSpec] | undefined;
  for (const [name, s] of specs) {
    output += s.bytes;
    if (!largest || s.bytes > largest[1].bytes) largest = [name, s];
  }
  if (largest && output > outputLimit) {
    const [name, s] = largest;
    const repeats = s.numel > s.storage.numel ? `; its strides ${short(s.stride)} repeat the storage's elements` : '';
    throw new FileFormatError(
      `${source}: refusing to load: the ${specs.size} tensors would take ${output} bytes, more than ${outputLimit} for a ${fileSize}-byte file (tensor ${short(name)} of size ${short(s.size)} alone takes ${s.bytes} bytes from a storage of ${s.storage.numel * ELEMENT_SIZE[s.storage.dtype]} bytes${repeats})`,
    );
  }
  yield;
  return yield* materialise(zip, prefix, specs);
}

/** Makes the tensors: contiguous views straight from the archive's bytes, others through as_strided of their storage. */
function* materialise(zip: ZipArchive, prefix: string, specs: Map<string, TensorSpec>): Generator<void, Map<string, Tensor>> {
  const out = new Map<string, Tensor>();
  const storages = new Map<string, Tensor>();
  const lastUse = new Map<string, number>();
  let i = 0;
  for (const s of specs.values()) lastUse.set(s.storage.key, i++);
  try {
    i = 0;
    for (const [name, s] of specs) {
      const { dtype, key, numel } = s.storage;
      const data = (yield* zip.read(`${prefix}data/${key}`))!;
      const es = ELEMENT_SIZE[dtype];
      let t: Tensor;
      if (s.contiguous) t = fromBytes(data.subarray(s.offset * es, (s.offset + s.numel) * es), s.size, dtype);
      else {
        let base = storages.get(key);
        if (!base) {
          base = fromBytes(data, [numel], dtype);
          storages.set(key, base);
        }
        const b = base;
        t = noGrad(() => {
          const view = F.callOp('aten::as_strided', '', b, s.size, s.stride, s.offset) as Tensor;
          const c = view.clone();
          view.dispose();
          return c;
        });
      }
      out.set(name, t);
      if (lastUse.get(key) === i) {
        storages.get(key)?.dispose();
        storages.delete(key);
      }
      i++;
      yield;
    }
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  } finally {
    for (const b of storages.values()) b.dispose();
  }
  return out;
}

function asFileFormatError(e: unknown, source: string): unknown {
  if (e instanceof TorchfaceError && !(e instanceof TorchError)) return e;
  const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new FileFormatError(`${source}: cannot load the checkpoint: ${why.length > 300 ? why.slice(0, 297) + '...' : why}`, { cause: e });
}

/**
 * Tensors of a torch.save'd object (a state dict, or a checkpoint dict holding
 * state dicts), by dotted name: nested dicts and lists join their keys with
 * '.', so `torch.save({'model': sd})` gives 'model.conv1.weight'. Other
 * values (numbers, strings) are skipped. Never runs code from the file.
 *
 * Hostile files are refused with a FileFormatError: every zip entry read must
 * match its CRC-32, every view must lie inside its storage and every storage
 * inside its zip entry, and the work done and the bytes of the tensors made
 * are bounded by a few times the file's size.
 */
export function loadTorchStateDictBytes(bytes: Uint8Array, source = '<buffer>'): Map<string, Tensor> {
  try {
    return drive(loadSteps(bytes, source));
  } catch (e) {
    throw asFileFormatError(e, source);
  }
}

/** loadTorchStateDictBytes that yields to the event loop between CRC pieces and between tensors. */
export async function loadTorchStateDictBytesAsync(bytes: Uint8Array, source = '<buffer>'): Promise<Map<string, Tensor>> {
  try {
    return await driveAsync(loadSteps(bytes, source));
  } catch (e) {
    throw asFileFormatError(e, source);
  }
}
