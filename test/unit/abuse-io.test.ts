// Abuse of the io loaders (robustness issue items #7, #9 and #13): hostile
// .pt files that amplify a few hundred bytes into gigabytes or hours, damaged
// zip archives, tfjs manifests that point outside their folder or at FIFOs and
// devices, and the error types everything comes out as; plus a seeded fuzz of
// a valid .pt and a valid .safetensors. Every hostile file is built here from
// hand-written bytes (no Python needed). And (#12) the sync and async entry
// points of io/atomic: the same results, errors and files for the same inputs.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import {
  ArgumentError,
  FileAccessError,
  FileFormatError,
  Tensor,
  TorchfaceError,
  loadPytorchStateDict,
  loadStateDict,
  loadTfjsWeights,
  saveStateDict,
  tensor,
} from '../../lib';
import { seededRandom } from '../../lib/util/random';
import { SafetensorsError, decodeSafetensors, encodeSafetensors, fromTypedArray, loadSafetensorsSync, readSafetensorsHeader } from '../../lib/io/safetensors';
import { readTfjsWeights } from '../../lib/io/tfjs';
import { loadTorchStateDictBytes, loadTorchStateDictBytesAsync, readZip } from '../../lib/io/pickle';
import {
  AtomicData,
  ReadFileCheckedOptions,
  WriteFileAtomicOptions,
  fsyncDir,
  fsyncDirSync,
  readFileChecked,
  readFileCheckedSync,
  writeFileAtomic,
  writeFileAtomicSync,
} from '../../lib/io/atomic';
import { needs, runPython } from '../helpers/peers';
import { tmpDir } from '../helpers/torch';

// ---------------------------------------------------------------------------
// Hand-built pickles and zip archives

const u32le = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];

/** A pickle assembler for the opcodes torch.save uses (protocol 2). */
class Pickle {
  private readonly out: number[] = [];
  op(...b: number[]): this {
    for (const x of b) this.out.push(x);
    return this;
  }
  raw(b: Uint8Array | number[]): this {
    for (const x of b) this.out.push(x);
    return this;
  }
  proto = () => this.op(0x80, 2);
  mark = () => this.op(0x28);
  tuple = () => this.op(0x74);
  reduce = () => this.op(0x52);
  put = (i: number) => this.op(0x71, i);
  get = (i: number) => this.op(0x68, i);
  dict = () => this.op(0x7d);
  list = () => this.op(0x5d);
  emptyTuple = () => this.op(0x29);
  setitems = () => this.op(0x75);
  append = () => this.op(0x61);
  appends = () => this.op(0x65);
  persid = () => this.op(0x51);
  false = () => this.op(0x89);
  pop = () => this.op(0x30);
  stop = () => this.op(0x2e);
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.op(0x58, ...u32le(b.length)).raw(b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 255, n >> 8);
    return this.op(0x4a, ...u32le(n));
  }
  global(module: string, name: string): this {
    return this.op(0x63).raw(Buffer.from(`${module}\n${name}\n`, 'latin1'));
  }
  /** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) */
  tensor(key: string, numel: number, offset: number, size: number[], stride: number[], storageType = 'FloatStorage'): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', storageType).str(key).str('cpu').int(numel).tuple().persid();
    this.int(offset).mark();
    size.forEach((d) => this.int(d));
    this.tuple().mark();
    stride.forEach((d) => this.int(d));
    this.tuple().false().global('collections', 'OrderedDict').emptyTuple().reduce();
    return this.tuple().reduce();
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A stored zip archive. `aliases` adds central-directory records under other
 * names that point at the local header of an existing entry (overlapping entries).
 */
function zip(entries: [string, Uint8Array][], aliases: [string, string][] = []): Uint8Array {
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  const at = new Map<string, { offset: number; crc: number; size: number }>();
  let offset = 0;
  const record = (name: string, e: { offset: number; crc: number; size: number }) => {
    const n = Buffer.from(name, 'utf8');
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt32LE(e.crc, 16);
    c.writeUInt32LE(e.size, 20);
    c.writeUInt32LE(e.size, 24);
    c.writeUInt16LE(n.length, 28);
    c.writeUInt32LE(e.offset, 42);
    central.push(c, n);
  };
  for (const [name, data] of entries) {
    const n = Buffer.from(name, 'utf8');
    const h = Buffer.alloc(30);
    const crc = crc32(data);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(data.length, 18);
    h.writeUInt32LE(data.length, 22);
    h.writeUInt16LE(n.length, 26);
    const e = { offset, crc, size: data.length };
    at.set(name, e);
    chunks.push(h, n, Buffer.from(data));
    offset += 30 + n.length + data.length;
    record(name, e);
  }
  for (const [alias, of] of aliases) record(alias, at.get(of)!);
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length + aliases.length, 8);
  end.writeUInt16LE(entries.length + aliases.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...chunks, cd, end]));
}

/** A torch.save archive holding `pickle` and the storages `data/<key>`. */
function pt(pickle: Uint8Array, storages: Record<string, Uint8Array>, aliases: [string, string][] = []): Uint8Array {
  return zip(
    [
      ['archive/data.pkl', pickle],
      ['archive/byteorder', Buffer.from('little')],
      ...Object.entries(storages).map(([k, v]) => [`archive/data/${k}`, v] as [string, Uint8Array]),
      ['archive/version', Buffer.from('3\n')],
    ],
    aliases.map(([a, of]) => [`archive/data/${a}`, `archive/data/${of}`]),
  );
}

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);
const i64 = (...v: number[]) => new Uint8Array(new BigInt64Array(v.map(BigInt)).buffer);

/**
 * A valid state dict: contiguous, transposed (non-contiguous), offset and
 * stride-0 (expanded) views of one float storage, an int64 tensor, a nested
 * dict and a tied tensor (one memoised tensor under two names).
 */
function validPt(): { bytes: Uint8Array; expected: Record<string, { shape: number[]; values: number[] }> } {
  const p = new Pickle().proto().dict().put(0).mark();
  p.str('w').tensor('0', 6, 0, [2, 3], [3, 1]).put(1);
  p.str('wt').tensor('0', 6, 0, [3, 2], [1, 3]);
  p.str('tail').tensor('0', 6, 2, [2], [2]);
  p.str('expanded').tensor('0', 6, 0, [2, 3], [0, 1]);
  p.str('ids').tensor('1', 3, 0, [3], [1], 'LongStorage');
  p.str('tied').get(1);
  p.str('sub').dict().mark().str('x').tensor('0', 6, 5, [], []).setitems();
  p.setitems().stop();
  const bytes = pt(p.bytes(), { '0': f32(0, 1, 2, 3, 4, 5), '1': i64(7, -8, 9) });
  return {
    bytes,
    expected: {
      w: { shape: [2, 3], values: [0, 1, 2, 3, 4, 5] },
      wt: { shape: [3, 2], values: [0, 3, 1, 4, 2, 5] },
      tail: { shape: [2], values: [2, 4] },
      expanded: { shape: [2, 3], values: [0, 1, 2, 0, 1, 2] },
      ids: { shape: [3], values: [7, -8, 9] },
      tied: { shape: [2, 3], values: [0, 1, 2, 3, 4, 5] },
      'sub.x': { shape: [], values: [5] },
    },
  };
}

const valuesOf = (t: Tensor) => Array.from(t.data() as ArrayLike<number | bigint>, Number);
const disposeAll = (m: Map<string, Tensor>) => {
  for (const t of m.values()) t.dispose();
};

/** Runs fn, returning what it threw (or undefined) and how long it took. */
async function outcome(fn: () => unknown): Promise<{ error: unknown; ms: number; value: unknown }> {
  const t0 = process.hrtime.bigint();
  try {
    const value = await fn();
    return { error: undefined, value, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
  } catch (error) {
    return { error, value: undefined, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
  }
}

/** Rejects after `ms` instead of waiting for ever (a FIFO opened for reading blocks until a writer comes). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms (it hangs)`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function expectFormatError(e: unknown, pattern: RegExp): void {
  assert.ok(e instanceof FileFormatError, `expected a FileFormatError, got ${e instanceof Error ? `${e.name}: ${e.message.slice(0, 300)}` : String(e)}`);
  assert.equal((e as FileFormatError).code, 'ERR_FILE_FORMAT');
  assert.match((e as Error).message, pattern);
}

// ---------------------------------------------------------------------------

/** Counts event-loop turns until the returned function is called (a loop blocked by synchronous I/O turns little). */
function countTurns(): () => number {
  let ticks = 0;
  let on = true;
  const tick = () => {
    ticks++;
    if (on) setImmediate(tick);
  };
  setImmediate(tick);
  return () => {
    on = false;
    return ticks;
  };
}

/** Opens each FIFO for writing once, so that a reader a broken loader left waiting on it returns and the process can exit. */
function unblockFifos(fifos: string[]): void {
  for (const f of fifos) {
    try {
      fs.closeSync(fs.openSync(f, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    } catch {
      /* no reader */
    }
  }
}

describe('io abuse: hostile .pt files (#7)', function () {
  let dir: string;
  before(() => (dir = tmpDir('torchface-abuse-pt-')));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('#7 the hand-built valid .pt loads with the expected values (stride-0 and transposed views, tied and nested tensors)', async () => {
    const { bytes, expected } = validPt();
    const file = path.join(dir, 'valid.pt');
    fs.writeFileSync(file, bytes);
    const sd = await loadPytorchStateDict(file);
    assert.deepEqual([...sd.keys()].sort(), Object.keys(expected).sort());
    for (const [k, { shape, values }] of Object.entries(expected)) {
      assert.deepEqual(sd.get(k)!.shape, shape, k);
      assert.deepEqual(valuesOf(sd.get(k)!), values, k);
    }
    assert.equal(sd.get('ids')!.dtype, 'int64');
    assert.notEqual(sd.get('w'), sd.get('tied'));
    disposeAll(sd);
  });

  it('#7 (reference) the hand-built valid .pt is what torch.load reads', function () {
    needs(this, 'python-torch');
    const file = path.join(dir, 'valid-ref.pt');
    fs.writeFileSync(file, validPt().bytes);
    const code = `import torch, json, sys\nsd = torch.load(sys.argv[1])\nflat = {}\ndef walk(v, n):\n    if isinstance(v, torch.Tensor): flat[n] = [list(v.shape), v.flatten().tolist()]\n    elif isinstance(v, dict):\n        for k, x in v.items(): walk(x, f"{n}.{k}" if n else k)\nwalk(sd, "")\nprint(json.dumps(flat))`;
    const out = JSON.parse(runPython(['-c', code, file]));
    for (const [k, { shape, values }] of Object.entries(validPt().expected)) assert.deepEqual(out[k], [shape, values], k);
  });

  it('#7 a <800-byte .pt with a stride-0 view is refused quickly, without allocating the 2 GB it claims', async () => {
    const p = new Pickle().proto().dict().mark().str('huge').tensor('0', 1, 0, [500_000_000], [0]).setitems().stop();
    const bytes = pt(p.bytes(), { '0': f32(1) });
    assert.ok(bytes.length < 800, `${bytes.length} bytes`);
    const rss = process.memoryUsage().rss;
    const r = await outcome(() => loadTorchStateDictBytes(bytes, 'stride0.pt'));
    expectFormatError(r.error, /stride0\.pt: refusing to load: .*2000000000 bytes.*'huge'.*strides \[0\] repeat the storage's elements/);
    assert.ok(r.ms < 1000, `${r.ms} ms`);
    assert.ok(process.memoryUsage().rss - rss < 200e6, 'no 2 GB allocation');
  });

  it('#7 as_strided views reaching past their storage (offset + extent), and storages larger than their zip entry, are refused', async () => {
    const view = (offset: number, size: number[], stride: number[], numel = 4) => pt(new Pickle().proto().tensor('0', numel, offset, size, stride).stop().bytes(), { '0': f32(1, 2, 3, 4).subarray(0, numel * 4) });
    expectFormatError((await outcome(() => loadTorchStateDictBytes(view(2, [3], [1])))).error, /tensor view outside its storage '0': offset 2, size \[3\] and stride \[1\] reach element 4 of a storage of 4 elements/);
    expectFormatError((await outcome(() => loadTorchStateDictBytes(view(0, [2, 2], [3, 1])))).error, /outside its storage/);
    expectFormatError((await outcome(() => loadTorchStateDictBytes(view(9, [0], [1])))).error, /outside its storage/);
    // the storage claims 1000 elements but its entry holds 4 bytes
    const claim = pt(new Pickle().proto().tensor('0', 1000, 0, [1000], [1]).stop().bytes(), { '0': f32(1) });
    expectFormatError((await outcome(() => loadTorchStateDictBytes(claim))).error, /storage '0' holds 4 bytes, expected 4000/);
    // one storage referenced with two different sizes
    const two = new Pickle().proto().mark().tensor('0', 1, 0, [1], [1]).tensor('0', 2, 0, [2], [1]).tuple().stop();
    expectFormatError((await outcome(() => loadTorchStateDictBytes(pt(two.bytes(), { '0': f32(1) })))).error, /referenced as 1 float32 elements and as 2/);
  });

  /** [t] nested `depth` times as [L, L]: 2^depth references to one tensor in a few hundred bytes. */
  function sharedReferences(depth: number): Uint8Array {
    const p = new Pickle().proto().tensor('0', 1, 0, [1], [1]).put(0);
    p.list().get(0).append().put(1);
    for (let k = 1; k <= depth; k++) p.list().mark().get(k).get(k).appends().put(k + 1);
    return pt(p.stop().bytes(), { '0': f32(3) });
  }

  it('#7 a ~780-byte .pt of shared memo references (2^20 names of one tensor) is refused in milliseconds', async () => {
    const bytes = sharedReferences(20);
    assert.ok(bytes.length < 900, `${bytes.length} bytes`);
    const r = await outcome(() => loadTorchStateDictBytes(bytes, 'shared20.pt'));
    expectFormatError(r.error, /shared20\.pt: refusing to load: the pickle needs more than \d+ (steps|characters of tensor names) .* for a \d+-byte file/);
    assert.ok(r.ms < 1000, `${r.ms} ms`);
  });

  it('#7 a ~850-byte .pt that would run for hours (2^31 references, and a list holding itself) is refused in milliseconds', async () => {
    const deep = await outcome(() => loadTorchStateDictBytes(sharedReferences(31), 'shared31.pt'));
    expectFormatError(deep.error, /refusing to load/);
    assert.ok(deep.ms < 1000, `${deep.ms} ms`);
    const cyclic = new Pickle().proto().tensor('0', 1, 0, [1], [1]).put(0).pop().list().put(1).get(0).append().get(1).append().get(1).append().stop();
    const cyc = await outcome(() => loadTorchStateDictBytes(pt(cyclic.bytes(), { '0': f32(3) }), 'cycle.pt'));
    expectFormatError(cyc.error, /refusing to load/);
    assert.ok(cyc.ms < 1000, `${cyc.ms} ms`);
  });

  it('#7 many views of one storage cannot make more than a few times the file size', async () => {
    // 5000 names, each a full view of one 64 KiB storage: 320 MB from a ~120 KB file
    const p = new Pickle().proto().global('torch._utils', '_rebuild_tensor_v2').put(0).pop();
    p.mark().mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(16384).tuple().persid().int(0).mark().int(16384).tuple().mark().int(1).tuple().tuple().put(1).pop();
    p.dict().mark();
    for (let i = 0; i < 5000; i++) p.str(`t${i}`).get(0).get(1).reduce();
    p.setitems().stop();
    const bytes = pt(p.bytes(), { '0': new Uint8Array(65536) });
    const r = await outcome(() => loadTorchStateDictBytes(bytes, 'views.pt'));
    expectFormatError(r.error, /views\.pt: refusing to load: the 5000 tensors would take 327680000 bytes/);
    assert.ok(r.ms < 2000, `${r.ms} ms`);
  });

  it('#7 zip entries that overlap (one stored storage under many names) are refused', async () => {
    const p = new Pickle().proto().mark();
    for (let i = 0; i < 50; i++) p.tensor(`a${i}`, 16384, 0, [16384], [1]);
    p.tuple().stop();
    const aliases = Array.from({ length: 50 }, (_, i) => [`a${i}`, '0'] as [string, string]);
    const r = await outcome(() => loadTorchStateDictBytes(pt(p.bytes(), { '0': new Uint8Array(65536) }, aliases), 'alias.pt'));
    expectFormatError(r.error, /alias\.pt: not a readable torch\.save archive: entry .* overlaps/);
  });

  it('#7 the CRC-32 of every entry read is checked: a flipped data byte or pickle byte is refused', async () => {
    const { bytes } = validPt();
    const zipped = readZip(bytes);
    const data = zipped.get('archive/data/0')!;
    const at = data.byteOffset - bytes.byteOffset + 5;
    const bad = bytes.slice();
    bad[at] ^= 0x40;
    expectFormatError((await outcome(() => loadTorchStateDictBytes(bad, 'flip.pt'))).error, /flip\.pt: zip entry archive\/data\/0 is corrupt: its CRC-32 is 0x[0-9a-f]{8} but the archive records 0x[0-9a-f]{8}/);
    const pkl = zipped.get('archive/data.pkl')!;
    const bad2 = bytes.slice();
    bad2[pkl.byteOffset - bytes.byteOffset + 20] ^= 0x01;
    expectFormatError((await outcome(() => loadTorchStateDictBytes(bad2))).error, /archive\/data\.pkl is corrupt/);
  });

  it('#7 flipping each byte of a valid .pt in turn: every flip that still loads gives the original values, all others are FileFormatErrors', async () => {
    const { bytes, expected } = validPt();
    let loaded = 0;
    for (let i = 0; i < bytes.length; i++) {
      const bad = bytes.slice();
      bad[i] ^= 0xff;
      let sd: Map<string, Tensor>;
      try {
        sd = loadTorchStateDictBytes(bad, `flip${i}`);
      } catch (e) {
        assert.ok(e instanceof FileFormatError, `byte ${i}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        continue;
      }
      loaded++;
      for (const [k, { shape, values }] of Object.entries(expected)) {
        assert.deepEqual(sd.get(k)?.shape, shape, `byte ${i}: ${k}`);
        assert.deepEqual(valuesOf(sd.get(k)!), values, `byte ${i}: ${k}`);
      }
      disposeAll(sd);
    }
    // only bytes nothing reads (zip versions, times, attributes, the local copies of the sizes) can flip unnoticed
    assert.ok(loaded < bytes.length / 4, `${loaded} of ${bytes.length} flipped files loaded`);
    console.log(`      (${bytes.length - loaded} of ${bytes.length} single-byte flips refused; the ${loaded} that load flip unused header fields and give identical tensors)`);
  });

  it('#7 the asynchronous loader yields to the event loop while it makes the tensors', async () => {
    const p = new Pickle().proto().dict().mark();
    for (let i = 0; i < 40; i++) p.str(`t${i}`).tensor(String(i), 1024, 0, [32, 32], [32, 1]);
    p.setitems().stop();
    const storages: Record<string, Uint8Array> = {};
    for (let i = 0; i < 40; i++) storages[String(i)] = new Uint8Array(4096).fill(i);
    const bytes = pt(p.bytes(), storages);
    const turns = countTurns();
    const sd = await loadTorchStateDictBytesAsync(bytes, 'async.pt');
    const ticks = turns();
    assert.equal(sd.size, 40);
    assert.ok(ticks >= 20, `${ticks} event-loop turns during the load`);
    disposeAll(sd);
  });
});

describe('io abuse: tfjs manifests (#9)', function () {
  let dir: string;
  const fifos: string[] = [];
  before(() => (dir = tmpDir('torchface-abuse-tfjs-')));
  after(() => {
    unblockFifos(fifos);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const weights = (n: number) => [{ name: 'w', shape: [n], dtype: 'float32' }];
  function model(name: string, paths: string[], entries: object[] = weights(2)): string {
    const d = path.join(dir, name);
    fs.mkdirSync(d, { recursive: true });
    const m = path.join(d, 'm-weights_manifest.json');
    fs.writeFileSync(m, JSON.stringify([{ paths, weights: entries }]));
    return m;
  }
  const mkfifo = (f: string) => {
    const r = spawnSync('mkfifo', [f]);
    if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr}`);
    fifos.push(f);
  };

  it('#9 a shard path with .. that leaves the manifest folder is refused before anything is read', async () => {
    fs.writeFileSync(path.join(dir, 'secret.bin'), Buffer.from('8 bytes!'));
    const m = model('dotdot', ['../secret.bin']);
    const r = await outcome(() => within(readTfjsWeights(m), 5000, 'readTfjsWeights'));
    expectFormatError(r.error, /shard path '\.\.\/secret\.bin' leaves the manifest's folder/);
    // a .. that stays inside is fine
    fs.mkdirSync(path.join(dir, 'dotdot', 'sub'));
    fs.writeFileSync(path.join(dir, 'dotdot', 'ok.bin'), f32(1, 2));
    const ok = model('dotdot', ['sub/../ok.bin']);
    assert.deepEqual(Array.from((await readTfjsWeights(ok)).get('w')!.data), [1, 2]);
  });

  it('#9 absolute shard paths (/etc/hostname) are refused', async () => {
    const m = model('absolute', ['/etc/hostname']);
    expectFormatError((await outcome(() => within(readTfjsWeights(m), 5000, 'readTfjsWeights'))).error, /shard path '\/etc\/hostname' is absolute/);
  });

  it('#9 symbolic links are resolved: a link to a file outside the folder, or to /dev/zero, is refused; a link inside is followed', async () => {
    fs.writeFileSync(path.join(dir, 'outside.bin'), f32(9, 9));
    const m = model('links', ['out.bin']);
    fs.symlinkSync(path.join(dir, 'outside.bin'), path.join(dir, 'links', 'out.bin'));
    expectFormatError((await outcome(() => within(readTfjsWeights(m), 5000, 'readTfjsWeights'))).error, /'out\.bin' resolves \(through a symbolic link\) to .*outside\.bin, outside the manifest's folder/);
    fs.symlinkSync('/dev/zero', path.join(dir, 'links', 'zero.bin'));
    const z = model('links', ['zero.bin'], weights(1 << 28));
    const rz = await outcome(() => within(readTfjsWeights(z), 5000, 'readTfjsWeights'));
    expectFormatError(rz.error, /'zero\.bin' resolves .* to \/dev\/zero/);
    fs.writeFileSync(path.join(dir, 'links', 'real.bin'), f32(4, 5));
    fs.symlinkSync('real.bin', path.join(dir, 'links', 'alias.bin'));
    assert.deepEqual(Array.from((await readTfjsWeights(model('links', ['alias.bin']))).get('w')!.data), [4, 5]);
  });

  it('#9 shards must be regular files (fs.stat before open): a FIFO or a directory shard is refused, never a hang', async () => {
    const m = model('fifo', ['pipe.bin']);
    mkfifo(path.join(dir, 'fifo', 'pipe.bin'));
    const r = await outcome(() => within(readTfjsWeights(m), 5000, 'readTfjsWeights of a FIFO shard'));
    expectFormatError(r.error, /'pipe\.bin' names a FIFO, not a regular file/);
    fs.mkdirSync(path.join(dir, 'fifo', 'folder.bin'));
    const d = model('fifo', ['folder.bin']);
    expectFormatError((await outcome(() => within(readTfjsWeights(d), 5000, 'readTfjsWeights'))).error, /'folder\.bin' names a directory/);
  });

  it('#9 the manifest must be a regular file of bounded size: a FIFO manifest or a 2 GiB one is refused at once', async () => {
    const pipe = path.join(dir, 'pipe-weights_manifest.json');
    mkfifo(pipe);
    const r = await outcome(() => within(loadTfjsWeights(pipe), 5000, 'loadTfjsWeights of a FIFO manifest'));
    assert.ok(r.error instanceof FileAccessError, String(r.error));
    assert.match((r.error as Error).message, /cannot read tfjs weights manifest .*pipe-weights_manifest\.json: .*it is a FIFO/);
    const big = path.join(dir, 'big-weights_manifest.json');
    fs.writeFileSync(big, '[');
    fs.truncateSync(big, 2 ** 31); // sparse
    const rb = await outcome(() => within(readTfjsWeights(big), 5000, 'readTfjsWeights'));
    assert.ok(rb.error instanceof FileAccessError, String(rb.error));
    assert.match((rb.error as Error).message, /2147483648 bytes, larger than the allowed 67108864/);
    assert.ok(rb.ms < 1000, `${rb.ms} ms`);
  });

  it('#9 shard sizes must match the manifest (checked before reading: a sparse 8 GiB shard is refused without reading it)', async () => {
    const m = model('sizes', ['huge.bin']);
    fs.writeFileSync(path.join(dir, 'sizes', 'huge.bin'), '');
    fs.truncateSync(path.join(dir, 'sizes', 'huge.bin'), 8 * 2 ** 30);
    const r = await outcome(() => within(readTfjsWeights(m), 5000, 'readTfjsWeights'));
    expectFormatError(r.error, /manifest needs 8 bytes, shards hold 8589934592 \(.*huge\.bin: 8589934592 bytes\)/);
    assert.ok(r.ms < 1000, `${r.ms} ms`);
    const shape = model('sizes', ['huge.bin'], [{ name: 'w', shape: [2 ** 40, 2 ** 40], dtype: 'float32' }]);
    expectFormatError((await outcome(() => readTfjsWeights(shape))).error, /shape too large/);
  });
});

describe('io abuse: every io error is a TorchfaceError with a code (#13)', function () {
  let dir: string;
  before(() => (dir = tmpDir('torchface-abuse-err-')));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('#13 SafetensorsError is a FileFormatError (a TorchfaceError) and keeps its name and specific code', () => {
    let caught: unknown;
    try {
      decodeSafetensors(new Uint8Array(3));
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof SafetensorsError);
    assert.ok(caught instanceof FileFormatError && caught instanceof TorchfaceError);
    assert.equal(caught.name, 'SafetensorsError');
    assert.equal(caught.reason, 'TRUNCATED');
    assert.throws(() => decodeSafetensors('x' as unknown as Uint8Array), ArgumentError);
  });

  it('#13 file-read errors (ENOENT, EISDIR, EACCES) are FileAccessErrors naming the path, with the OS error as cause', async () => {
    const missing = path.join(dir, 'nope.safetensors');
    for (const load of [() => loadStateDict(missing), () => loadPytorchStateDict(missing), () => readSafetensorsHeader(missing), () => loadSafetensorsSync(missing)]) {
      const { error } = await outcome(load);
      assert.ok(error instanceof FileAccessError, String(error));
      assert.equal(error.code, 'ERR_FILE_ACCESS');
      assert.equal(error.path, missing);
      assert.equal(error.osCode, 'ENOENT');
      assert.equal((error.cause as NodeJS.ErrnoException).code, 'ENOENT');
      assert.ok(error.message.includes(missing), error.message);
    }
    const folder = await outcome(() => loadPytorchStateDict(dir));
    assert.ok(folder.error instanceof FileAccessError && /is a directory/.test(folder.error.message), String(folder.error));
    if (process.getuid?.() !== 0) {
      const locked = path.join(dir, 'locked.pt');
      fs.writeFileSync(locked, 'x');
      fs.chmodSync(locked, 0);
      const { error } = await outcome(() => loadPytorchStateDict(locked));
      assert.ok(error instanceof FileAccessError && error.osCode === 'EACCES', String(error));
    }
    const write = await outcome(() => saveStateDict(path.join(dir, 'no-such-folder', 'x.safetensors'), new Map([['a', tensor([1])]])));
    assert.ok(write.error instanceof FileAccessError && write.error.osCode === 'ENOENT', String(write.error));
  });

  it('#13 loadTfjsWeights throws only TorchfaceErrors: bad JSON, bad entries, missing shards, duplicates, bad arguments', async () => {
    const d = path.join(dir, 'tfjs');
    fs.mkdirSync(d);
    const write = (name: string, json: unknown) => {
      const f = path.join(d, name);
      fs.writeFileSync(f, typeof json === 'string' ? json : JSON.stringify(json));
      return f;
    };
    fs.writeFileSync(path.join(d, 'a.bin'), f32(1));
    const cases: [string, RegExp, typeof FileFormatError | typeof FileAccessError | typeof ArgumentError][] = [
      [write('json.json', '{not json'), /is not valid JSON/, FileFormatError],
      [write('null.json', 'null'), /expected a JSON array/, FileFormatError],
      [write('group.json', [null]), /group 0 must have/, FileFormatError],
      [write('entry.json', [{ paths: ['a.bin'], weights: [7] }]), /weight entry without a name/, FileFormatError],
      [write('quant.json', [{ paths: ['a.bin'], weights: [{ name: 'a', shape: [1], dtype: 'float32', quantization: 5 }] }]), /quantization that is not an object/, FileFormatError],
      [write('missing.json', [{ paths: ['gone.bin'], weights: [{ name: 'a', shape: [1], dtype: 'float32' }] }]), /gone\.bin .* could not be read \(ENOENT\)/, FileAccessError],
      [write('dup.json', [{ paths: ['a.bin'], weights: [{ name: 'a', shape: [1], dtype: 'float32' }] }, { paths: ['a.bin'], weights: [{ name: 'a', shape: [1], dtype: 'float32' }] }]), /duplicate weight name 'a'/, FileFormatError],
      [write('nul.json', [{ paths: ['a\0.bin'], weights: [] }]), /holds a NUL byte/, FileFormatError],
    ];
    for (const [file, pattern, type] of cases) {
      const { error } = await outcome(() => loadTfjsWeights(file));
      assert.ok(error instanceof type, `${path.basename(file)}: ${String(error)}`);
      assert.match((error as Error).message, pattern);
    }
    assert.ok((await outcome(() => readTfjsWeights(42 as unknown as string))).error instanceof ArgumentError);
  });

  it('#13 a 200k-character pickle GLOBAL, a 500k-item APPENDS and garbage or truncated zips give FileFormatErrors, not RangeError/TypeError', async () => {
    const long = new Pickle().proto().global('a'.repeat(200_000), 'b').stop();
    const r = await outcome(() => loadTorchStateDictBytes(pt(long.bytes(), {}), 'long.pt'));
    expectFormatError(r.error, /refusing to load global 'a{40,}\.\.\. \(only tensors/);
    assert.ok((r.error as Error).message.length < 1000);
    const appends = new Pickle().proto().list().mark();
    for (let i = 0; i < 500_000; i++) appends.int(1);
    const big = loadTorchStateDictBytes(pt(appends.appends().stop().bytes(), {}));
    assert.equal(big.size, 0);
    const random = seededRandom(13);
    const garbage = Uint8Array.from({ length: 4096 }, () => Math.floor(random() * 256));
    expectFormatError((await outcome(() => loadTorchStateDictBytes(garbage))).error, /not a readable torch\.save archive/);
    // an end-of-central-directory record pointing into nonsense
    const eocd = new Uint8Array(64);
    eocd.set([0x50, 0x4b, 0x05, 0x06], 42);
    eocd.set([0xff, 0xff, 0xff, 0xff], 42 + 12);
    eocd[42 + 10] = 5; // five entries claimed, none fit
    expectFormatError((await outcome(() => loadTorchStateDictBytes(eocd))).error, /not a readable torch\.save archive/);
    const { bytes } = validPt();
    for (const n of [0, 1, 21, 22, 100, bytes.length - 23, bytes.length - 22, bytes.length - 1])
      expectFormatError((await outcome(() => loadTorchStateDictBytes(bytes.subarray(0, n)))).error, /not a readable torch\.save archive|cannot load/);
  });

  it('#13 seeded fuzz: 300 damaged .pt and 300 damaged .safetensors files each load or throw a TorchfaceError, never hang', async function () {
    this.timeout(120_000);
    const random = seededRandom(20240613);
    const mutate = (src: Uint8Array): Uint8Array => {
      let b = src.slice();
      const kind = random();
      if (kind < 0.25) b = b.subarray(0, Math.floor(random() * b.length));
      const flips = 1 + Math.floor(random() * 8);
      for (let i = 0; i < flips && b.length; i++) {
        const at = Math.floor(random() * b.length);
        b[at] = kind < 0.6 ? b[at] ^ (1 << Math.floor(random() * 8)) : Math.floor(random() * 256);
      }
      return b;
    };
    const sources: [string, Uint8Array, (f: string) => Promise<Map<string, Tensor>>][] = [
      ['pt', validPt().bytes, (f) => loadPytorchStateDict(f)],
      [
        'safetensors',
        encodeSafetensors(
          {
            a: fromTypedArray('float32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6])),
            b: fromTypedArray('int64', [2], new BigInt64Array([1n, -2n])),
            c: fromTypedArray('float16', [3], new Uint16Array([0x3c00, 0xc000, 0x7bff])),
            d: fromTypedArray('bool', [2], new Uint8Array([1, 0])),
          },
          { format: 'pt', 'torchface.metadata': '{"architecture":"x"}' },
        ),
        async (f) => (await loadStateDict(f)).stateDict,
      ],
    ];
    for (const [ext, src, load] of sources) {
      const counts = { loaded: 0, refused: 0 };
      let slowest = 0;
      for (let i = 0; i < 300; i++) {
        const bad = mutate(src);
        const file = path.join(dir, `fuzz-${i}.${ext}`);
        fs.writeFileSync(file, bad);
        const r = await outcome(() => within(load(file), 10_000, `${ext} mutation ${i}`));
        slowest = Math.max(slowest, r.ms);
        if (r.error === undefined) {
          counts.loaded++;
          disposeAll(r.value as Map<string, Tensor>);
        } else {
          assert.ok(r.error instanceof TorchfaceError, `${ext} mutation ${i}: ${r.error instanceof Error ? `${r.error.name}: ${r.error.message}` : String(r.error)}`);
          assert.equal(typeof (r.error as TorchfaceError).code, 'string');
          counts.refused++;
        }
        fs.rmSync(file);
      }
      assert.ok(slowest < 2000, `slowest ${ext} load took ${slowest} ms`);
      console.log(`      (${ext}: ${counts.refused} of 300 damaged files refused, ${counts.loaded} loaded; slowest ${slowest.toFixed(0)} ms)`);
    }
  });
});

// ---------------------------------------------------------------------------

describe('io abuse: the sync and async entry points of io/atomic agree (#12)', function () {
  let root: string;
  const fifos: string[] = [];
  before(() => (root = tmpDir('torchface-abuse-atomic-')));
  after(() => {
    unblockFifos(fifos);
    fs.rmSync(root, { recursive: true, force: true });
  });
  const mkfifo = (f: string) => {
    const r = spawnSync('mkfifo', [f]);
    if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr}`);
    fifos.push(f);
  };

  interface AtomicApi {
    write(target: string, data: AtomicData, options?: WriteFileAtomicOptions): unknown;
    read(file: string, options?: ReadFileCheckedOptions): unknown;
    fsyncDir(dir: string): unknown;
  }
  const SYNC: AtomicApi = { write: writeFileAtomicSync, read: readFileCheckedSync, fsyncDir: fsyncDirSync };
  const ASYNC: AtomicApi = { write: writeFileAtomic, read: readFileChecked, fsyncDir };
  type ErrorType = typeof FileAccessError | typeof ArgumentError | typeof Error;
  interface Case {
    name: string;
    setup?: (d: string) => void;
    /** One call of the entry point; `log` collects what callbacks saw. */
    run: (api: AtomicApi, d: string, log: unknown[]) => unknown;
    /** What it must throw (type, message, osCode); none: it must succeed. */
    error?: [ErrorType, RegExp, string?];
  }
  const bytes = (s: string) => Buffer.from(s, 'latin1');
  const cases: Case[] = [
    { name: 'write a UTF-8 string to a new file', run: (api, d) => api.write(path.join(d, 't.txt'), 'héllo') },
    {
      name: 'write a chunk list in 1-byte writes, reporting progress',
      run: (api, d, log) => api.write(path.join(d, 't.bin'), [bytes('ab'), new Uint8Array(0), bytes('cd')], { chunkSize: 1, onProgress: (w, t) => log.push([w, t]) }),
    },
    { name: 'write nothing (progress 0 of 0)', run: (api, d, log) => api.write(path.join(d, 'e.bin'), new Uint8Array(0), { onProgress: (w, t) => log.push([w, t]) }) },
    {
      name: 'replace a file, keeping its mode (0o640)',
      setup: (d) => {
        fs.writeFileSync(path.join(d, 'm.bin'), 'old');
        fs.chmodSync(path.join(d, 'm.bin'), 0o640);
      },
      run: (api, d) => api.write(path.join(d, 'm.bin'), 'new'),
    },
    { name: 'an explicit mode (0o606) is applied, not masked by the umask', setup: (d) => fs.writeFileSync(path.join(d, 'm.bin'), 'old'), run: (api, d) => api.write(path.join(d, 'm.bin'), 'new', { mode: 0o606, fsync: false }) },
    {
      name: 'write through a relative symlink: the link stays, the file it names is replaced',
      setup: (d) => {
        fs.mkdirSync(path.join(d, 'sub'));
        fs.writeFileSync(path.join(d, 'sub', 'real.bin'), 'old');
        fs.symlinkSync('sub/real.bin', path.join(d, 'link.bin'));
      },
      run: (api, d) => api.write(path.join(d, 'link.bin'), 'new'),
    },
    { name: 'write through a dangling symlink creates the file it names', setup: (d) => fs.symlinkSync('made.bin', path.join(d, 'dangling.bin')), run: (api, d) => api.write(path.join(d, 'dangling.bin'), 'new') },
    { name: 'write into a missing folder', run: (api, d) => api.write(path.join(d, 'missing', 'x.bin'), 'x'), error: [FileAccessError, /missing\/x\.bin: cannot write \(ENOENT\): ENOENT: no such file or directory, open/, 'ENOENT'] },
    { name: 'write over a directory', setup: (d) => fs.mkdirSync(path.join(d, 'folder')), run: (api, d) => api.write(path.join(d, 'folder'), 'x'), error: [FileAccessError, /folder: cannot write \(EISDIR\): .*rename/, 'EISDIR'] },
    { name: 'write over a FIFO replaces it without opening it (no hang)', setup: (d) => mkfifo(path.join(d, 'pipe')), run: (api, d) => api.write(path.join(d, 'pipe'), 'x') },
    {
      name: 'an already aborted signal: nothing is written',
      setup: (d) => fs.writeFileSync(path.join(d, 'a.bin'), 'old'),
      run: (api, d) => {
        const ac = new AbortController();
        ac.abort('stop');
        return api.write(path.join(d, 'a.bin'), 'new', { signal: ac.signal });
      },
      error: [Error, /^writeFileAtomic: aborted: stop$/],
    },
    {
      name: 'abort in the middle: the reason passes through, the old file and no temp file remain',
      setup: (d) => fs.writeFileSync(path.join(d, 'a.bin'), 'old'),
      run: (api, d, log) => {
        const ac = new AbortController();
        const onProgress = (w: number) => {
          log.push(w);
          if (w >= 4) ac.abort(new RangeError('enough'));
        };
        return api.write(path.join(d, 'a.bin'), 'new contents', { chunkSize: 2, signal: ac.signal, onProgress });
      },
      error: [RangeError, /^enough$/],
    },
    {
      name: 'an exception from onProgress passes through and the temp file is removed',
      setup: (d) => fs.writeFileSync(path.join(d, 'a.bin'), 'old'),
      run: (api, d) =>
        api.write(path.join(d, 'a.bin'), 'new', {
          onProgress: () => {
            throw new Error('disk full (injected)');
          },
        }),
      error: [Error, /^disk full \(injected\)$/],
    },
    { name: 'a bad chunkSize', run: (api, d) => api.write(path.join(d, 'c.bin'), 'x', { chunkSize: 0 }), error: [ArgumentError, /options\.chunkSize/] },
    { name: 'bad data', run: (api, d) => api.write(path.join(d, 'c.bin'), [bytes('a'), 'b' as unknown as Uint8Array]), error: [ArgumentError, /data\[1\]/] },
    { name: 'read a file into an exclusive buffer', setup: (d) => fs.writeFileSync(path.join(d, 'r.bin'), 'contents'), run: (api, d) => api.read(path.join(d, 'r.bin')) },
    { name: 'read an empty file', setup: (d) => fs.writeFileSync(path.join(d, 'r.bin'), ''), run: (api, d) => api.read(path.join(d, 'r.bin')) },
    { name: 'read through a symlink', setup: (d) => (fs.writeFileSync(path.join(d, 'r.bin'), 'via link'), fs.symlinkSync('r.bin', path.join(d, 'l.bin'))), run: (api, d) => api.read(path.join(d, 'l.bin')) },
    { name: 'read a missing file', run: (api, d) => api.read(path.join(d, 'nope.bin')), error: [FileAccessError, /nope\.bin: cannot read \(ENOENT\): ENOENT: no such file or directory, stat/, 'ENOENT'] },
    { name: 'read a directory', run: (api, d) => api.read(d), error: [FileAccessError, /: cannot read, it is a directory$/] },
    { name: 'read a FIFO is refused before open (no hang)', setup: (d) => mkfifo(path.join(d, 'pipe')), run: (api, d) => api.read(path.join(d, 'pipe')), error: [FileAccessError, /pipe: cannot read, it is a FIFO$/] },
    { name: 'read a device (/dev/null)', run: (api) => api.read('/dev/null'), error: [FileAccessError, /^\/dev\/null: cannot read, it is a device$/] },
    { name: 'read more than maxBytes', setup: (d) => fs.writeFileSync(path.join(d, 'big.bin'), 'x'.repeat(100)), run: (api, d) => api.read(path.join(d, 'big.bin'), { maxBytes: 10 }), error: [FileAccessError, /big\.bin: file is 100 bytes, larger than the allowed 10$/] },
    { name: 'read exactly maxBytes', setup: (d) => fs.writeFileSync(path.join(d, 'big.bin'), 'x'.repeat(10)), run: (api, d) => api.read(path.join(d, 'big.bin'), { maxBytes: 10 }) },
    { name: 'read an empty path', run: (api) => api.read(''), error: [ArgumentError, /Expected a file path for file/] },
    { name: 'read a path holding NUL', run: (api, d) => api.read(path.join(d, 'a\0b')), error: [ArgumentError, /Expected a file path for file/] },
    { name: 'fsync a folder', run: (api, d) => api.fsyncDir(d) },
    { name: 'fsync a missing folder', run: (api, d) => api.fsyncDir(path.join(d, 'gone')), error: [FileAccessError, /gone: cannot sync the folder \(ENOENT\)/, 'ENOENT'] },
    { name: 'fsync a regular file', setup: (d) => fs.writeFileSync(path.join(d, 'f'), 'x'), run: (api, d) => api.fsyncDir(path.join(d, 'f')) },
  ];
  if (process.getuid?.() !== 0) {
    cases.push({
      name: 'read an unreadable file',
      setup: (d) => (fs.writeFileSync(path.join(d, 'locked'), 'x'), fs.chmodSync(path.join(d, 'locked'), 0)),
      run: (api, d) => api.read(path.join(d, 'locked')),
      error: [FileAccessError, /locked: cannot read \(EACCES\)/, 'EACCES'],
    });
  }

  /** What a folder holds afterwards: type, mode and contents (temp files' pid and random part normalised). */
  function snapshot(d: string): string[] {
    return fs.readdirSync(d).sort().map((name) => {
      const f = path.join(d, name);
      const st = fs.lstatSync(f);
      const shown = name.replace(/\.\d+\.[0-9a-f]{16}\.tmp$/, '.<pid>.<random>.tmp');
      if (st.isSymbolicLink()) return `${shown} -> ${fs.readlinkSync(f)}`;
      if (st.isDirectory()) return `${shown}/ ${(st.mode & 0o7777).toString(8)} [${snapshot(f).join(', ')}]`;
      if (st.isFIFO()) return `${shown} fifo`;
      return `${shown} ${(st.mode & 0o7777).toString(8)} '${fs.readFileSync(f, 'latin1')}'`;
    });
  }

  /** Runs a case in a fresh folder; everything observable, with the folder's path written <dir>. */
  async function observe(c: Case, api: AtomicApi, d: string) {
    fs.mkdirSync(d);
    c.setup?.(d);
    const log: unknown[] = [];
    let threw = false;
    let returned: unknown;
    let value: unknown;
    let error: unknown;
    try {
      threw = true;
      returned = c.run(api, d, log);
      threw = false;
      value = returned instanceof Promise ? await within(returned, 5000, `${c.name} (async)`) : returned;
    } catch (e) {
      error = e;
    }
    const norm = <T extends string | undefined>(s: T) => s?.split(d).join('<dir>').replace(/\.\d+\.[0-9a-f]{16}\.tmp/g, '.<pid>.<random>.tmp') as T;
    type Described = Error & { code?: string; osCode?: string; path?: string; syscall?: string; errno?: number };
    const e = error as Described | undefined;
    const cause = e?.cause as Described | undefined;
    return {
      promise: returned instanceof Promise,
      threw,
      value:
        value instanceof Uint8Array
          ? { contents: Buffer.from(value).toString('latin1'), byteOffset: value.byteOffset, ownsBuffer: value.buffer.byteLength === value.byteLength, buffer: Buffer.isBuffer(value) }
          : value,
      error: e && { type: e.constructor.name, name: e.name, code: e.code, osCode: e.osCode, path: norm(e.path), message: norm(e.message), cause: cause && { type: cause.constructor.name, code: cause.code, syscall: cause.syscall, errno: cause.errno, message: norm(cause.message) } },
      log,
      folder: snapshot(d),
    };
  }

  it(`#12 ${cases.length} cases (writes, reads, folder syncs; failures and successes) give the same results, errors and files through both`, async () => {
    const umask = process.umask();
    for (const [i, c] of cases.entries()) {
      const sync = await observe(c, SYNC, path.join(root, `${i}-sync`));
      const async = await observe(c, ASYNC, path.join(root, `${i}-async`));
      assert.equal(sync.promise, false, `${c.name}: the sync entry point returned a promise`);
      assert.equal(async.promise, true, `${c.name}: the async entry point returned no promise`);
      assert.equal(async.threw, false, `${c.name}: the async entry point threw instead of rejecting`);
      assert.equal(sync.threw, sync.error !== undefined, c.name);
      const { promise: _p, threw: _t, ...s } = sync;
      const { promise: _q, threw: _u, ...a } = async;
      assert.deepEqual(a, s, `${c.name}: sync and async differ`);
      if (c.error) {
        const [type, pattern, osCode] = c.error;
        assert.ok(sync.error, `${c.name}: expected ${type.name} ${pattern}, it succeeded`);
        assert.equal(sync.error.type, type.name, `${c.name}: ${sync.error.type}: ${sync.error.message}`);
        assert.match(sync.error.message, pattern, c.name);
        assert.equal(sync.error.osCode, osCode, c.name);
      } else {
        assert.equal(sync.error, undefined, `${c.name}: ${sync.error?.type}: ${sync.error?.message}`);
      }
      assert.ok(!sync.folder.some((l) => l.includes('.tmp')), `${c.name}: temp file left: ${sync.folder}`);
    }
    // spot checks of what both produced
    const folder = (i: number) => snapshot(path.join(root, `${i}-sync`));
    const at = (name: string) => cases.findIndex((c) => c.name.startsWith(name));
    const plain = (0o666 & ~umask).toString(8);
    assert.deepEqual(folder(at('write a chunk list')), [`t.bin ${plain} 'abcd'`]);
    assert.deepEqual((await observe(cases[at('write a chunk list')], ASYNC, path.join(root, 'log'))).log, [[1, 4], [2, 4], [3, 4], [4, 4]]);
    assert.deepEqual(folder(at('replace a file, keeping')), [`m.bin 640 'new'`]);
    assert.deepEqual(folder(at('an explicit mode')), [`m.bin 606 'new'`]);
    assert.deepEqual(folder(at('write through a relative')), ['link.bin -> sub/real.bin', `sub/ 755 [real.bin 644 'new']`].map((l) => l.replace('755', (0o777 & ~umask).toString(8)).replace('644', plain)));
    assert.deepEqual(folder(at('write through a dangling')), ['dangling.bin -> made.bin', `made.bin ${plain} 'new'`]);
    assert.deepEqual(folder(at('write over a FIFO')), [`pipe ${plain} 'x'`]);
    assert.deepEqual(folder(at('abort in the middle')), [`a.bin ${plain} 'old'`]);
  });

  it('#12 the async entry points call no blocking fs.*Sync function and let the event loop run while they work', async () => {
    const realFs = require('fs') as typeof import('fs');
    const d = path.join(root, 'nonblocking');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'old.bin'), 'old');
    fs.symlinkSync('old.bin', path.join(d, 'link.bin'));
    const blocking: string[] = [];
    const saved = new Map<string, unknown>();
    const fsFunctions = realFs as unknown as Record<string, (...a: unknown[]) => unknown>;
    for (const name of Object.keys(realFs).filter((n) => n.endsWith('Sync') && typeof fsFunctions[n] === 'function')) {
      const orig = fsFunctions[name];
      saved.set(name, orig);
      fsFunctions[name] = function (this: unknown, ...args: unknown[]) {
        if (new Error().stack?.includes(`${path.sep}atomic.`)) blocking.push(name);
        return orig.apply(this, args);
      };
    }
    const turns = countTurns();
    try {
      await writeFileAtomic(path.join(d, 'link.bin'), new Uint8Array(1 << 16), { chunkSize: 1 << 10 });
      await writeFileAtomic(path.join(d, 'dangling.bin'), 'x');
      await assert.rejects(writeFileAtomic(path.join(d, 'missing', 'x'), 'x'), FileAccessError);
      assert.equal((await readFileChecked(path.join(d, 'old.bin'))).byteLength, 1 << 16);
      await assert.rejects(readFileChecked(path.join(d, 'nope')), FileAccessError);
      await fsyncDir(d);
      await assert.rejects(fsyncDir(path.join(d, 'gone')), FileAccessError);
      const ticks = turns();
      assert.deepEqual(blocking.splice(0), [], 'blocking calls from the async path');
      assert.ok(ticks >= 30, `${ticks} event-loop turns during the async calls`);
      writeFileAtomicSync(path.join(d, 'old.bin'), 'x'); // the spy sees the sync path
      assert.deepEqual(blocking, ['realpathSync', 'statSync', 'openSync', 'writeSync', 'fchmodSync', 'fsyncSync', 'closeSync', 'renameSync', 'openSync', 'fsyncSync', 'closeSync']);
    } finally {
      turns(); // stops the counter when an assertion above failed
      for (const [name, orig] of saved) fsFunctions[name] = orig as (...a: unknown[]) => unknown;
    }
  });
});
