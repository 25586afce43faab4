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
 * to be contiguous and independent.
 */
import { FileFormatError } from '../errors';
import { DType, Tensor, fromBytes, noGrad, ELEMENT_SIZE } from '../tensor';
import * as F from '../ops';

// ---------------------------------------------------------------------------
// Zip (stored entries only, as torch.save writes them)

export interface ZipEntry {
  name: string;
  data: Uint8Array;
}

export function readZip(bytes: Uint8Array, source = '<buffer>'): Map<string, Uint8Array> {
  const fail = (why: string): never => {
    throw new FileFormatError(`${source}: not a readable torch.save archive: ${why}`);
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (dv.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail(bytes.length >= 2 && bytes[0] === 0x80 ? 'it is a legacy (pre-1.6, non-zip) torch.save file; re-save it with a current PyTorch' : 'no zip end-of-central-directory record');
  let count = dv.getUint16(eocd + 10, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdOffset === 0xffffffff) {
    // zip64: locator just before the EOCD
    const loc = eocd - 20;
    if (loc < 0 || dv.getUint32(loc, true) !== 0x07064b50) fail('zip64 locator missing');
    const z64 = Number(dv.getBigUint64(loc + 8, true));
    if (z64 + 56 > bytes.length || dv.getUint32(z64, true) !== 0x06064b50) fail('zip64 end record missing');
    count = Number(dv.getBigUint64(z64 + 32, true));
    cdOffset = Number(dv.getBigUint64(z64 + 48, true));
  }
  const out = new Map<string, Uint8Array>();
  let p = cdOffset;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < count; i++) {
    if (p + 46 > bytes.length || dv.getUint32(p, true) !== 0x02014b50) fail('corrupt central directory');
    const method = dv.getUint16(p + 10, true);
    let csize = dv.getUint32(p + 20, true);
    let usize = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let local = dv.getUint32(p + 42, true);
    const name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information extra field
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = dv.getUint16(e, true);
      const size = dv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        if (usize === 0xffffffff) (usize = Number(dv.getBigUint64(q, true))), (q += 8);
        if (csize === 0xffffffff) (csize = Number(dv.getBigUint64(q, true))), (q += 8);
        if (local === 0xffffffff) local = Number(dv.getBigUint64(q, true));
      }
      e += 4 + size;
    }
    if (method !== 0) fail(`entry ${name} is compressed (method ${method}); torch.save stores entries uncompressed`);
    if (csize !== usize) fail(`entry ${name}: stored sizes differ`);
    if (local + 30 > bytes.length || dv.getUint32(local, true) !== 0x04034b50) fail(`entry ${name}: bad local header`);
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    if (start + csize > bytes.length) fail(`entry ${name} extends beyond the end of the file`);
    out.set(name, bytes.subarray(start, start + csize));
    p = extraEnd + commentLen;
  }
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
const MARK = Symbol('mark');
class PickleDict extends Map<unknown, unknown> {}
class StorageRef {
  constructor(
    readonly dtype: DType,
    readonly key: string,
    readonly numel: number,
  ) {}
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

interface UnpickleContext {
  source: string;
  loadStorage(ref: StorageRef): Tensor;
  created: Tensor[];
}

function unpickle(bytes: Uint8Array, ctx: UnpickleContext): unknown {
  const fail = (why: string): never => {
    throw new FileFormatError(`${ctx.source}: cannot load the pickle: ${why}`);
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder('utf-8', { fatal: false });
  const latin1 = (a: number, b: number) => String.fromCharCode(...bytes.subarray(a, b));
  let pos = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const need = (n: number) => {
    if (pos + n > bytes.length) fail('truncated data');
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
    if (!ALLOWED.has(g.qualified)) fail(`refusing to load global '${g.qualified}' (only tensors, storages and dicts are allowed; the file may be malicious or not a state dict)`);
    return g;
  };
  const setItems = (target: unknown, kv: unknown[]) => {
    if (!(target instanceof PickleDict)) fail('SETITEM(S) on something that is not a dict');
    for (let i = 0; i + 1 < kv.length; i += 2) (target as PickleDict).set(kv[i], kv[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]) => {
    if (!Array.isArray(target)) fail('APPEND(S) on something that is not a list');
    (target as unknown[]).push(...items);
  };
  const call = (fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof Global)) return fail('REDUCE of something that is not an allowed global');
    if (!Array.isArray(args)) return fail('REDUCE arguments are not a tuple');
    switch (fn.qualified) {
      case 'collections.OrderedDict':
        return new PickleDict(args.length && Array.isArray(args[0]) ? (args[0] as [unknown, unknown][]) : []);
      case 'torch._utils._rebuild_tensor_v2':
      case 'torch._utils._rebuild_tensor_v3': {
        const [storage, offset, size, stride] = args;
        if (!(storage instanceof StorageRef)) return fail('_rebuild_tensor without a storage');
        const ints = (v: unknown) => (Array.isArray(v) && v.every((e) => Number.isInteger(e)) ? (v as number[]) : fail('_rebuild_tensor with bad size/stride'));
        const sz = ints(size);
        const st = ints(stride);
        if (st.length !== sz.length) return fail('_rebuild_tensor with size and stride of different lengths');
        if (!Number.isInteger(offset) || (offset as number) < 0) return fail('_rebuild_tensor with a bad offset');
        // Bounds: the largest element index must be inside the storage.
        const last = (offset as number) + sz.reduce((a, d, i) => a + (d > 0 ? (d - 1) * st[i] : 0), 0);
        if (sz.some((d) => d === 0) === false && (last >= storage.numel || st.some((s) => s < 0))) return fail(`tensor view outside its storage (${storage.key})`);
        const base = ctx.loadStorage(storage);
        const t = noGrad(() => {
          const view = F.callOp('aten::as_strided', '', base, sz, st, offset as number) as Tensor;
          const c = view.clone();
          view.dispose();
          return c;
        });
        ctx.created.push(t);
        return t;
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        if (!(args[0] instanceof Tensor)) return fail('_rebuild_parameter without a tensor');
        return args[0];
      case 'torch.Size':
        return Array.isArray(args[0]) ? args[0] : [];
      default:
        return fail(`cannot call '${fn.qualified}'`);
    }
  };

  for (;;) {
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
        stack.push(items);
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
        const n = Number(dv.getBigUint64(pos, true));
        pos += 8;
        stack.push(text.decode(take(n)));
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
        if (!(obj instanceof PickleDict) && !(obj instanceof Tensor)) fail('BUILD on an object that is not a dict or tensor');
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
        if (typeof key !== 'string' || !Number.isInteger(numel) || (numel as number) < 0) return fail('bad storage reference');
        stack.push(new StorageRef(dtype, key, numel as number));
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

/**
 * Tensors of a torch.save'd object (a state dict, or a checkpoint dict holding
 * state dicts), by dotted name: nested dicts and lists join their keys with
 * '.', so `torch.save({'model': sd})` gives 'model.conv1.weight'. Other
 * values (numbers, strings) are skipped. Never runs code from the file.
 */
export function loadTorchStateDictBytes(bytes: Uint8Array, source = '<buffer>'): Map<string, Tensor> {
  const files = readZip(bytes, source);
  const pkl = [...files.keys()].find((k) => k === 'data.pkl' || k.endsWith('/data.pkl'));
  if (!pkl) throw new FileFormatError(`${source}: the archive has no data.pkl (not a torch.save file)`);
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const order = files.get(`${prefix}byteorder`);
  if (order && new TextDecoder().decode(order).trim() !== 'little') throw new FileFormatError(`${source}: big-endian checkpoints are not supported`);
  const storages = new Map<string, Tensor>();
  const created: Tensor[] = [];
  let root: unknown;
  try {
    root = unpickle(files.get(pkl)!, {
      source,
      created,
      loadStorage(ref) {
        let s = storages.get(ref.key);
        if (!s) {
          const data = files.get(`${prefix}data/${ref.key}`);
          if (!data) throw new FileFormatError(`${source}: storage ${ref.key} is missing from the archive`);
          const size = ELEMENT_SIZE[ref.dtype];
          if (data.byteLength !== ref.numel * size)
            throw new FileFormatError(`${source}: storage ${ref.key} holds ${data.byteLength} bytes, expected ${ref.numel * size}`);
          s = fromBytes(data, [ref.numel], ref.dtype);
          storages.set(ref.key, s);
        }
        return s;
      },
    });
  } catch (e) {
    for (const t of created) t.dispose();
    throw e;
  } finally {
    for (const s of storages.values()) s.dispose();
  }
  const out = new Map<string, Tensor>();
  const used = new Set<Tensor>();
  const walk = (v: unknown, prefixName: string, depth: number) => {
    if (depth > 32) return;
    if (v instanceof Tensor) {
      // The same tensor under two names (tied weights) gets its own copy for the second.
      out.set(prefixName, used.has(v) ? v.clone() : v);
      used.add(v);
    } else if (v instanceof PickleDict) {
      for (const [k, x] of v) walk(x, prefixName ? `${prefixName}.${String(k)}` : String(k), depth + 1);
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, prefixName ? `${prefixName}.${i}` : String(i), depth + 1));
  };
  walk(root, '', 0);
  for (const t of created) if (!used.has(t)) t.dispose();
  return out;
}
