import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';

import {
  DType,
  RawTensor,
  SafetensorsError,
  SafetensorsErrorCode,
  DTYPE_ITEMSIZE,
  DTYPE_TO_SAFETENSORS,
  MAX_HEADER_SIZE,
  encodeSafetensors,
  encodeSafetensorsParts,
  decodeSafetensors,
  decodeSafetensorsHeader,
  readSafetensorsHeader,
  saveSafetensors,
  saveSafetensorsSync,
  loadSafetensors,
  loadSafetensorsSync,
  packMetadata,
  unpackMetadata,
  toTypedArray,
  fromTypedArray,
  toFloat64Array,
  float16BitsToNumber,
  numberToFloat16Bits,
  bfloat16BitsToNumber,
  numberToBfloat16Bits,
  looksLikeSafetensors,
} from '../../lib/io/safetensors';
import {
  writeFileAtomic,
  writeFileAtomicSync,
  readFileChecked,
  readFileCheckedSync,
  listStaleTempFiles,
  removeStaleTempFiles,
  tempPathFor,
} from '../../lib/io/atomic';

import { PYTHON, needs } from '../helpers/peers';
import { packageRoot } from '../../lib/util/paths';

function findRepoFile(rel: string): string {
  // Compiled tests live in dist/test, sources in test/: walk up to the directory holding package.json.
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return path.join(dir, rel);
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot locate ${rel} from ${__dirname}`);
    dir = up;
  }
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function mkTmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-st-'));
}

/** Build a safetensors file from a header given as an object or raw text/bytes. */
function craft(header: unknown, data: Uint8Array | number = 0, opts: { lengthOverride?: bigint } = {}): Uint8Array {
  const hbytes =
    header instanceof Uint8Array ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const dataBytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + hbytes.length + dataBytes.length);
  new DataView(out.buffer).setBigUint64(0, opts.lengthOverride ?? BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  out.set(dataBytes, 8 + hbytes.length);
  return out;
}

function expectCode(fn: () => unknown, code: SafetensorsErrorCode, pattern?: RegExp): SafetensorsError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SafetensorsError, `expected SafetensorsError ${code}, got ${caught === undefined ? 'no error' : String(caught)}`);
  assert.equal(caught.code, 'ERR_FILE_FORMAT');
  assert.equal(caught.reason, code, `wrong code; message: ${caught.message}`);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

function sampleTensors(): Record<string, RawTensor> {
  const f16 = new Uint16Array([0x3c00, 0xbc00, 0x7c00, 0xfc00, 0x7e00, 0x0001, 0x8000, 0x7bff]);
  const bf16 = new Uint16Array([0x3f80, 0xc000, 0x7f80, 0x7fc0, 0x0001, 0x8000]);
  return {
    'f32.matrix': fromTypedArray('float32', [2, 3], new Float32Array([1.5, -2, NaN, Infinity, -0, 3.4028234663852886e38])),
    'f32.scalar': fromTypedArray('float32', [], new Float32Array([42.25])),
    'f32.empty': fromTypedArray('float32', [0], new Float32Array(0)),
    'f32.empty2d': fromTypedArray('float32', [3, 0, 2], new Float32Array(0)),
    f64: fromTypedArray('float64', [2, 2], new Float64Array([Math.PI, -Math.E, Number.MIN_VALUE, -Number.MAX_VALUE])),
    'f64.scalar': fromTypedArray('float64', [], new Float64Array([-0])),
    f16: fromTypedArray('float16', [2, 2, 2], f16),
    bf16: fromTypedArray('bfloat16', [6], bf16),
    i32: fromTypedArray('int32', [3], new Int32Array([-2147483648, 0, 2147483647])),
    i64: fromTypedArray('int64', [4], new BigInt64Array([-(2n ** 63n), -1n, 2n ** 53n + 1n, 2n ** 63n - 1n])),
    'i64.empty': fromTypedArray('int64', [2, 0], new BigInt64Array(0)),
    u8: fromTypedArray('uint8', [5], new Uint8Array([0, 1, 127, 128, 255])),
    i8: fromTypedArray('int8', [1, 3], new Int8Array([-128, 0, 127])),
    i16: fromTypedArray('int16', [3, 1], new Int16Array([-32768, 1, 32767])),
    bool: fromTypedArray('bool', [2, 2], new Uint8Array([1, 0, 0, 1])),
    'bool.scalar': fromTypedArray('bool', [], new Uint8Array([1])),
  };
}

function assertSameTensors(actual: Map<string, RawTensor>, expected: Record<string, RawTensor>): void {
  assert.deepEqual([...actual.keys()].sort(), Object.keys(expected).sort());
  for (const [name, exp] of Object.entries(expected)) {
    const got = actual.get(name)!;
    assert.equal(got.dtype, exp.dtype, `${name} dtype`);
    assert.deepEqual(got.shape, exp.shape, `${name} shape`);
    assert.ok(Buffer.from(got.data).equals(Buffer.from(exp.data)), `${name} bytes differ`);
  }
}

describe('safetensors: encode/decode', () => {
  it('round-trips every dtype, including scalar and empty shapes, bit-exactly (NaN, -0, Inf)', () => {
    const tensors = sampleTensors();
    const meta = { format: 'pt', note: 'ünïcödé ✓', empty: '' };
    const bytes = encodeSafetensors(tensors, meta);
    const decoded = decodeSafetensors(bytes);
    assertSameTensors(decoded.tensors, tensors);
    assert.deepEqual(decoded.metadata, meta);
    // every dtype is present
    assert.deepEqual(new Set(Object.values(tensors).map((t) => t.dtype)), new Set(Object.keys(DTYPE_ITEMSIZE)));
    // typed-array views give back the values
    const f32 = toTypedArray(decoded.tensors.get('f32.matrix') as RawTensor & { dtype: 'float32' });
    assert.ok(f32 instanceof Float32Array);
    assert.ok(Number.isNaN(f32[2]) && f32[3] === Infinity && Object.is(f32[4], -0));
    const i64 = toTypedArray(decoded.tensors.get('i64') as RawTensor & { dtype: 'int64' });
    assert.deepEqual(Array.from(i64), [-(2n ** 63n), -1n, 2n ** 53n + 1n, 2n ** 63n - 1n]);
    assert.ok(Object.is(toFloat64Array(decoded.tensors.get('f64.scalar')!)[0], -0));
    assert.deepEqual(Array.from(toFloat64Array(decoded.tensors.get('bool')!)), [1, 0, 0, 1]);
    assert.deepEqual(decoded.tensors.get('f32.scalar')!.shape, []);
    assert.equal(decoded.tensors.get('f32.empty2d')!.data.byteLength, 0);
  });

  it('accepts a Map as well as a plain object, and no metadata', () => {
    const t = sampleTensors();
    const fromMap = encodeSafetensors(new Map(Object.entries(t)));
    const fromObj = encodeSafetensors(t);
    assert.ok(Buffer.from(fromMap).equals(Buffer.from(fromObj)));
    const d = decodeSafetensors(fromObj);
    assert.deepEqual(d.metadata, {});
    assert.ok(!Buffer.from(fromObj).toString('latin1').includes('__metadata__'));
  });

  it('matches the reference writer byte for byte (vectors from the Rust implementation tests)', () => {
    assert.deepEqual(Array.from(encodeSafetensors({})), [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    assert.deepEqual(
      Array.from(encodeSafetensors({}, { framework: 'pt' })),
      [40, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from('{"__metadata__":{"framework":"pt"}}'), 32, 32, 32, 32, 32],
    );
    const data = fromTypedArray('float32', [1, 1, 2, 3], new Float32Array([0, 1, 2, 3, 4, 5]));
    const out = encodeSafetensors({ attn0: data });
    const json = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    assert.deepEqual(Array.from(out), [72, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from(json), ...new Array(72 - json.length).fill(32), ...data.data]);
  });

  it('lays tensors out by descending alignment then name, header padded to 8, so all data is aligned', () => {
    const t = sampleTensors();
    const bytes = encodeSafetensors(t, { a: 'b' });
    const header = decodeSafetensorsHeader(bytes);
    assert.equal(header.headerLength % 8, 0);
    assert.equal(header.dataStart, 8 + header.headerLength);
    const names = [...header.tensors.keys()];
    const rank = (d: DType) => ['bool', 'uint8', 'int8', 'int16', 'float16', 'bfloat16', 'int32', 'float32', 'float64', 'int64'].indexOf(d);
    for (let i = 1; i < names.length; i++) {
      const a = header.tensors.get(names[i - 1])!;
      const b = header.tensors.get(names[i])!;
      assert.ok(rank(a.dtype) > rank(b.dtype) || (rank(a.dtype) === rank(b.dtype) && names[i - 1] < names[i]), `${names[i - 1]} before ${names[i]}`);
    }
    for (const info of header.tensors.values()) {
      assert.equal((header.dataStart + info.dataOffsets[0]) % DTYPE_ITEMSIZE[info.dtype], 0);
    }
    // header JSON: __metadata__ first, then tensors in data order
    const text = Buffer.from(bytes.subarray(8, header.dataStart)).toString('utf8');
    assert.deepEqual(Object.keys(JSON.parse(text)), ['__metadata__', ...names]);
    assert.match(text, / *$/);
  });

  it('returns zero-copy views by default and copies with {copy: true}', () => {
    const bytes = encodeSafetensors({ x: fromTypedArray('float32', [2], new Float32Array([1, 2])) });
    const view = decodeSafetensors(bytes).tensors.get('x')!;
    const copy = decodeSafetensors(bytes, { copy: true }).tensors.get('x')!;
    assert.equal(view.data.buffer, bytes.buffer);
    assert.notEqual(copy.data.buffer, bytes.buffer);
    bytes[bytes.length - 1] ^= 0xff;
    assert.notEqual(toFloat64Array(view)[1], 2);
    assert.equal(toFloat64Array(copy)[1], 2);
  });

  it('toTypedArray copies when the view is misaligned', () => {
    const buf = new Uint8Array(9);
    buf.set(bytesOf(new Float32Array([1.25, -3])), 1);
    const t: RawTensor = { dtype: 'float32', shape: [2], data: buf.subarray(1) };
    assert.deepEqual(Array.from(toTypedArray(t as RawTensor & { dtype: 'float32' })), [1.25, -3]);
  });

  it('encodeSafetensorsParts streams callers\' buffers without copying', () => {
    const big = fromTypedArray('float64', [3], new Float64Array([1, 2, 3]));
    const parts = encodeSafetensorsParts({ big, none: fromTypedArray('uint8', [0], new Uint8Array(0)) });
    assert.equal(parts.length, 2);
    assert.equal(parts[1], big.data);
  });

  it('float16 / bfloat16 conversions are exact and round to nearest even', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const x = float16BitsToNumber(bits);
      if (Number.isNaN(x)) {
        assert.equal(numberToFloat16Bits(x), 0x7e00);
        continue;
      }
      assert.equal(numberToFloat16Bits(x), bits, `f16 bits 0x${bits.toString(16)}`);
      const y = bfloat16BitsToNumber(bits);
      if (!Number.isNaN(y)) assert.equal(numberToBfloat16Bits(y), bits, `bf16 bits 0x${bits.toString(16)}`);
    }
    assert.equal(numberToFloat16Bits(1 + 2 ** -11), 0x3c00); // tie -> even (down)
    assert.equal(numberToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
    assert.equal(numberToFloat16Bits(65519), 0x7bff);
    assert.equal(numberToFloat16Bits(65520), 0x7c00);
    assert.equal(numberToFloat16Bits(2 ** -25), 0x0000); // tie between 0 and min subnormal -> 0
    assert.equal(numberToFloat16Bits(3 * 2 ** -25), 0x0002);
    assert.equal(numberToFloat16Bits(-0), 0x8000);
    assert.equal(numberToBfloat16Bits(1 + 2 ** -8), 0x3f80); // tie -> even
    assert.equal(numberToBfloat16Bits(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(numberToBfloat16Bits(NaN), 0x7fc0);
  });
});

describe('safetensors: validation errors', () => {
  const okHeader = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

  it('rejects a truncated file shorter than the length prefix', () => {
    expectCode(() => decodeSafetensors(new Uint8Array(0)), 'TRUNCATED', /<buffer>.*0 bytes, too short/);
    expectCode(() => decodeSafetensors(new Uint8Array(7)), 'TRUNCATED');
  });

  it('rejects a header length beyond the file or over the limit', () => {
    expectCode(() => decodeSafetensors(craft(okHeader, 8, { lengthOverride: 1000n })), 'HEADER_OUT_OF_BOUNDS', /header length 1000 runs beyond the end/);
    expectCode(() => decodeSafetensors(craft('{}', 0, { lengthOverride: BigInt(MAX_HEADER_SIZE) + 1n })), 'HEADER_TOO_LARGE');
    expectCode(() => decodeSafetensors(craft('{}', 0, { lengthOverride: 2n ** 64n - 1n })), 'HEADER_TOO_LARGE', /not a safetensors file/);
  });

  it('rejects bad UTF-8, bad JSON and non-object headers', () => {
    expectCode(() => decodeSafetensors(craft(new Uint8Array([0x7b, 0xff, 0x7d]))), 'BAD_UTF8');
    expectCode(() => decodeSafetensors(craft('{"a":')), 'BAD_JSON', /not valid JSON/);
    expectCode(() => decodeSafetensors(craft('{}\0\0')), 'BAD_JSON');
    expectCode(() => decodeSafetensors(craft('[1,2]')), 'BAD_HEADER', /must be an object, got an array/);
    expectCode(() => decodeSafetensors(craft('null')), 'BAD_HEADER');
    expectCode(() => decodeSafetensors(craft({ a: 5 })), 'BAD_HEADER', /"a" is not an object/);
  });

  it('rejects non-string metadata values', () => {
    expectCode(() => decodeSafetensors(craft({ __metadata__: { a: 1 } })), 'BAD_METADATA', /"a" is number/);
    expectCode(() => decodeSafetensors(craft({ __metadata__: [] })), 'BAD_METADATA');
    assert.deepEqual(decodeSafetensors(craft({ __metadata__: null })).metadata, {});
  });

  it('rejects unknown dtypes', () => {
    expectCode(() => decodeSafetensors(craft({ a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, 1)), 'UNKNOWN_DTYPE', /"a".*"F8_E4M3"/);
    expectCode(() => decodeSafetensors(craft({ a: { dtype: 'float32', shape: [1], data_offsets: [0, 4] } }, 4)), 'UNKNOWN_DTYPE');
    expectCode(() => decodeSafetensors(craft({ a: { shape: [1], data_offsets: [0, 4] } }, 4)), 'UNKNOWN_DTYPE');
  });

  it('rejects malformed shapes and offsets', () => {
    for (const shape of [[-1], [1.5], 'abc', undefined, [2 ** 60]]) {
      expectCode(() => decodeSafetensors(craft({ a: { dtype: 'F32', shape, data_offsets: [0, 4] } }, 4)), 'BAD_SHAPE');
    }
    for (const offs of [[4, 0], [0], [0, 4, 8], [-4, 0], 'x', undefined, [0, 4.5]]) {
      expectCode(() => decodeSafetensors(craft({ a: { dtype: 'U8', shape: [4], data_offsets: offs } }, 4)), 'BAD_OFFSETS');
    }
  });

  it('rejects byte sizes that do not match shape x itemsize', () => {
    expectCode(() => decodeSafetensors(craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4)), 'SIZE_MISMATCH', /"a" spans 4 bytes .* needs 8/);
    expectCode(() => decodeSafetensors(craft({ a: { dtype: 'I64', shape: [2 ** 26, 2 ** 26, 4], data_offsets: [0, 8] } }, 8)), 'SIZE_MISMATCH', /2\^53/);
  });

  it('rejects offsets out of range (truncated data section)', () => {
    const good = encodeSafetensors(sampleTensors());
    const cut = good.subarray(0, good.length - 3);
    expectCode(() => decodeSafetensors(cut), 'OFFSETS_OUT_OF_RANGE', /reach past the end .* \(file truncated\?\)/);
  });

  it('rejects overlapping offsets', () => {
    const h = {
      a: { dtype: 'U8', shape: [8], data_offsets: [0, 8] },
      b: { dtype: 'U8', shape: [8], data_offsets: [4, 12] },
    };
    expectCode(() => decodeSafetensors(craft(h, 12)), 'OFFSETS_OVERLAP', /"b" \[4, 12\) overlaps tensor "a"/);
    const dup = { a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } };
    expectCode(() => decodeSafetensors(craft(dup, 4)), 'OFFSETS_OVERLAP');
  });

  it('rejects data not covered by the tensors (gaps and trailing bytes)', () => {
    const gap = { a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [6, 10] } };
    expectCode(() => decodeSafetensors(craft(gap, 10)), 'OFFSETS_NOT_COVERING', /\[4, 6\) before tensor "b"/);
    const start = { a: { dtype: 'U8', shape: [4], data_offsets: [2, 6] } };
    expectCode(() => decodeSafetensors(craft(start, 6)), 'OFFSETS_NOT_COVERING');
    expectCode(() => decodeSafetensors(craft(okHeader, 9)), 'OFFSETS_NOT_COVERING', /1 trailing bytes/);
    expectCode(() => decodeSafetensors(craft({}, 1)), 'OFFSETS_NOT_COVERING');
  });

  it('accepts layouts in any order and zero-size tensors anywhere', () => {
    const h = {
      z: { dtype: 'U8', shape: [2], data_offsets: [4, 6] },
      e: { dtype: 'F64', shape: [0], data_offsets: [4, 4] },
      a: { dtype: 'I16', shape: [2], data_offsets: [0, 4] },
    };
    const d = decodeSafetensors(craft(h, new Uint8Array([1, 0, 2, 0, 9, 8])));
    assert.deepEqual([...d.tensors.keys()], ['a', 'e', 'z']);
    assert.deepEqual(Array.from(toFloat64Array(d.tensors.get('a')!)), [1, 2]);
    assert.deepEqual(Array.from(d.tensors.get('z')!.data), [9, 8]);
  });

  it('names the file in errors from loadSafetensors / readSafetensorsHeader', async () => {
    const dir = mkTmpDir();
    try {
      const file = path.join(dir, 'broken.safetensors');
      const good = encodeSafetensors(sampleTensors());
      fs.writeFileSync(file, good.subarray(0, good.length - 1));
      await assert.rejects(loadSafetensors(file), (err: unknown) => {
        assert.ok(err instanceof SafetensorsError);
        assert.equal(err.file, file);
        assert.ok(err.message.startsWith(`safetensors ${file}: `), err.message);
        assert.equal(err.reason, 'OFFSETS_OUT_OF_RANGE');
        return true;
      });
      assert.throws(() => loadSafetensorsSync(file), (err: unknown) => err instanceof SafetensorsError && err.file === file);
      // header-only reading still works on a file whose tail is missing, but offsets are checked against its size
      await assert.rejects(readSafetensorsHeader(file), /OFFSETS|reach past/);
      fs.writeFileSync(file, new Uint8Array(3));
      await assert.rejects(readSafetensorsHeader(file), (err: unknown) => err instanceof SafetensorsError && err.reason === 'TRUNCATED' && err.file === file);
      assert.equal(looksLikeSafetensors(file), false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('validates tensors and metadata given to the encoder', () => {
    const good = fromTypedArray('float32', [2], new Float32Array(2));
    expectCode(() => encodeSafetensors({ a: { ...good, dtype: 'complex64' as DType } }), 'UNKNOWN_DTYPE', /"a"/);
    expectCode(() => encodeSafetensors({ a: { ...good, shape: [3] } }), 'SIZE_MISMATCH', /"a" has 8 data bytes but shape \[3\]/);
    expectCode(() => encodeSafetensors({ a: { ...good, shape: [-2] } }), 'BAD_SHAPE');
    expectCode(() => encodeSafetensors({ a: { ...good, data: new Float32Array(2) as unknown as Uint8Array } }), 'INVALID_TENSOR', /not a Uint8Array/);
    expectCode(() => encodeSafetensors({ __metadata__: good }), 'INVALID_TENSOR', /reserved/);
    expectCode(() => encodeSafetensors({ a: good }, { step: 5 as unknown as string }), 'BAD_METADATA', /packMetadata/);
  });
});

describe('safetensors: metadata helpers', () => {
  it('packMetadata JSON-encodes non-strings and unpackMetadata reverses it', () => {
    const obj = { name: 'facenet', step: 1200, lr: 0.001, cfg: { layers: [1, 2], act: 'relu' }, ok: true, none: null, skip: undefined };
    const packed = packMetadata(obj);
    assert.deepEqual(packed, { name: 'facenet', step: '1200', lr: '0.001', cfg: '{"layers":[1,2],"act":"relu"}', ok: 'true', none: 'null' });
    const { skip: _skip, ...rest } = obj;
    assert.deepEqual(unpackMetadata(packed), rest);
    // strings that look like JSON come back parsed unless listed in `strings`
    assert.deepEqual(unpackMetadata({ version: '2' }), { version: 2 });
    assert.deepEqual(unpackMetadata({ version: '2' }, { strings: ['version'] }), { version: '2' });
    assert.throws(() => packMetadata({ big: 1n }), /"big" cannot be JSON-encoded/);
    // survives a file round trip
    const bytes = encodeSafetensors({}, packMetadata(obj));
    assert.deepEqual(unpackMetadata(decodeSafetensors(bytes).metadata), rest);
  });

  it('keeps odd keys such as "__proto__" as plain data', () => {
    const meta = JSON.parse('{"__proto__":"x","constructor":"y"}') as Record<string, string>;
    const d = decodeSafetensors(encodeSafetensors({}, meta));
    assert.equal(Object.getOwnPropertyDescriptor(d.metadata, '__proto__')?.value, 'x');
    assert.equal(d.metadata.constructor, 'y');
    assert.equal(Object.getPrototypeOf(d.metadata), Object.prototype);
  });
});

describe('atomic writes and safetensors files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkTmpDir();
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const entries = () => fs.readdirSync(dir).sort();

  it('saves and loads (async and sync); loaded data are aligned private views', async () => {
    const file = path.join(dir, 'm.safetensors');
    const t = sampleTensors();
    await saveSafetensors(file, t, { format: 'pt' });
    const a = await loadSafetensors(file);
    assertSameTensors(a.tensors, t);
    assert.deepEqual(a.metadata, { format: 'pt' });
    for (const r of a.tensors.values()) assert.equal(r.data.byteOffset % DTYPE_ITEMSIZE[r.dtype], 0);
    saveSafetensorsSync(file, new Map([['only', t.f64]]));
    const b = loadSafetensorsSync(file);
    assert.deepEqual([...b.tensors.keys()], ['only']);
    const h = await readSafetensorsHeader(file);
    assert.deepEqual(h.tensors.get('only'), { dtype: 'float64', shape: [2, 2], dataOffsets: [0, 32] });
    assert.ok(looksLikeSafetensors(file));
    assert.deepEqual(entries(), ['m.safetensors']);
  });

  it('writeFileAtomic handles strings, bytes and chunk lists; readFileChecked reads them back', async () => {
    const f = path.join(dir, 'x.txt');
    await writeFileAtomic(f, 'héllo');
    assert.equal(fs.readFileSync(f, 'utf8'), 'héllo');
    writeFileAtomicSync(f, [Buffer.from('ab'), new Uint8Array(0), Buffer.from('cd')], { chunkSize: 1 });
    assert.equal(Buffer.from(await readFileChecked(f)).toString(), 'abcd');
    assert.equal(Buffer.from(readFileCheckedSync(f)).toString(), 'abcd');
    await writeFileAtomic(f, new Uint8Array(0));
    assert.equal(fs.statSync(f).size, 0);
    await assert.rejects(readFileChecked(dir), /is a directory/);
    assert.throws(() => readFileCheckedSync(f + '.missing'), /ENOENT/);
    fs.writeFileSync(f, 'x'.repeat(100));
    await assert.rejects(readFileChecked(f, { maxBytes: 10 }), /100 bytes, larger than the allowed 10/);
    assert.deepEqual(entries(), ['x.txt']);
  });

  it('keeps the mode of an existing file and writes through symlinks', async () => {
    const real = path.join(dir, 'real.bin');
    const link = path.join(dir, 'link.bin');
    fs.writeFileSync(real, 'old');
    fs.chmodSync(real, 0o640);
    fs.symlinkSync('real.bin', link);
    await writeFileAtomic(link, 'new');
    assert.ok(fs.lstatSync(link).isSymbolicLink());
    assert.equal(fs.readFileSync(real, 'utf8'), 'new');
    assert.equal(fs.statSync(real).mode & 0o777, 0o640);
    writeFileAtomicSync(real, 'newer', { mode: 0o600 });
    assert.equal(fs.statSync(real).mode & 0o777, 0o600);
    assert.deepEqual(entries(), ['link.bin', 'real.bin']);
  });

  it('concurrent writers to the same target each produce a complete file', async () => {
    const f = path.join(dir, 'c.safetensors');
    const variants = Array.from({ length: 8 }, (_, i) => ({ v: fromTypedArray('int32', [1000], new Int32Array(1000).fill(i)) }));
    await Promise.all(variants.map((t, i) => saveSafetensors(f, t, { i: String(i) })));
    const d = await loadSafetensors(f);
    const i = Number(d.metadata.i);
    assert.ok(toTypedArray(d.tensors.get('v') as RawTensor & { dtype: 'int32' }).every((x) => x === i));
    assert.deepEqual(entries(), ['c.safetensors']);
  });

  it('an encode error leaves the old file untouched and names the destination', async () => {
    const f = path.join(dir, 'm.safetensors');
    await saveSafetensors(f, { a: fromTypedArray('uint8', [1], new Uint8Array([7])) });
    const before = fs.readFileSync(f);
    await assert.rejects(
      saveSafetensors(f, { a: { dtype: 'float32', shape: [2], data: new Uint8Array(3) } }),
      (err: unknown) => err instanceof SafetensorsError && err.file === f && err.reason === 'SIZE_MISMATCH' && err.message.includes(f),
    );
    assert.ok(fs.readFileSync(f).equals(before));
    assert.deepEqual(entries(), ['m.safetensors']);
  });

  it('a failure in the middle of a save (injected) leaves the old file intact and removes the temp file', async () => {
    const f = path.join(dir, 'm.safetensors');
    const old = { w: fromTypedArray('float32', [4], new Float32Array([1, 2, 3, 4])) };
    await saveSafetensors(f, old, { version: 'old' });
    const big = { w: fromTypedArray('float32', [1 << 20], new Float32Array(1 << 20).fill(9)) };
    let sawTemp = false;
    const boom = (written: number) => {
      if (written >= 1 << 20) {
        sawTemp = entries().some((n) => n.endsWith('.tmp'));
        throw new Error('injected disk failure');
      }
    };
    await assert.rejects(saveSafetensors(f, big, { version: 'new' }, { chunkSize: 1 << 16, onProgress: boom }), /injected disk failure/);
    assert.ok(sawTemp, 'temp file existed while writing');
    assert.deepEqual((await loadSafetensors(f)).metadata, { version: 'old' });
    assert.deepEqual(entries(), ['m.safetensors']);

    assert.throws(() => saveSafetensorsSync(f, big, { version: 'new' }, { chunkSize: 1 << 16, onProgress: boom }), /injected disk failure/);
    const d = loadSafetensorsSync(f);
    assert.deepEqual(d.metadata, { version: 'old' });
    assert.deepEqual(Array.from(toFloat64Array(d.tensors.get('w')!)), [1, 2, 3, 4]);
    assert.deepEqual(entries(), ['m.safetensors']);
  });

  it('an aborted save (AbortSignal) leaves the old file intact', async () => {
    const f = path.join(dir, 'm.safetensors');
    await saveSafetensors(f, {}, { version: 'old' });
    const ac = new AbortController();
    const big = { w: fromTypedArray('uint8', [1 << 20], new Uint8Array(1 << 20)) };
    await assert.rejects(
      saveSafetensors(f, big, { version: 'new' }, { chunkSize: 1 << 16, signal: ac.signal, onProgress: () => ac.abort() }),
      (err: Error) => err.name === 'AbortError',
    );
    assert.deepEqual((await loadSafetensors(f)).metadata, { version: 'old' });
    assert.deepEqual(entries(), ['m.safetensors']);
  });

  const childScript = (modPath: string) => `
    const st = require(${JSON.stringify(modPath)});
    const [file, mb, pause] = process.argv.slice(1);
    const n = Number(mb) * 262144;
    const w = new Float32Array(n).fill(5);
    let told = false;
    st.saveSafetensorsSync(file, { w: { dtype: 'float32', shape: [n], data: new Uint8Array(w.buffer) } }, { version: 'new' }, {
      chunkSize: 1 << 20,
      onProgress(written, total) {
        if (!told && written >= total / 2) {
          told = true;
          process.stdout.write('HALF\\n');
          if (pause === '1') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
        }
      },
    });
    process.stdout.write('DONE\\n');
  `;

  function startChild(file: string, mb: number, pause: boolean) {
    const modPath = path.join(packageRoot, 'dist', 'lib', 'io', 'safetensors', 'index.js');
    assert.ok(fs.existsSync(modPath), `compiled module not found at ${modPath}`);
    const child = spawn(process.execPath, ['-e', childScript(modPath), file, String(mb), pause ? '1' : '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const half = new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('HALF')) resolve();
      });
      child.on('exit', (code, sig) => reject(new Error(`child exited early (code ${code}, signal ${sig}): ${out}`)));
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    return { child, half, exited, output: () => out };
  }

  it('SIGKILL in the middle of a save leaves the old file intact; the stale temp file can be cleaned up', async () => {
    const f = path.join(dir, 'model.safetensors');
    const old = { w: fromTypedArray('float32', [3], new Float32Array([1, 2, 3])) };
    await saveSafetensors(f, old, { version: 'old' });
    const before = fs.readFileSync(f);

    const { child, half, exited } = startChild(f, 16, true);
    await half; // the child is now parked inside saveSafetensorsSync with half of 16 MiB written
    const temps = listStaleTempFiles(f, { includeLive: true });
    assert.equal(temps.length, 1, `temp files: ${entries()}`);
    assert.deepEqual(listStaleTempFiles(f), [], 'temp file of a live writer is not reported as stale');
    const partial = fs.statSync(temps[0]).size;
    assert.ok(partial > 0 && partial < 16 * 1024 * 1024, `partial temp size ${partial}`);

    child.kill('SIGKILL');
    const { signal } = await exited;
    assert.equal(signal, 'SIGKILL');

    assert.ok(fs.readFileSync(f).equals(before), 'target unchanged');
    const d = await loadSafetensors(f);
    assert.deepEqual(d.metadata, { version: 'old' });
    assert.deepEqual(Array.from(toFloat64Array(d.tensors.get('w')!)), [1, 2, 3]);

    assert.deepEqual(listStaleTempFiles(f), temps);
    assert.deepEqual(removeStaleTempFiles(f), temps);
    assert.deepEqual(entries(), ['model.safetensors']);
  });

  it('killing a saver at arbitrary moments always leaves a complete old or new file', async function () {
    const f = path.join(dir, 'model.safetensors');
    for (let round = 0; round < 4; round++) {
      await saveSafetensors(f, {}, { version: 'old' });
      const { child, half, exited } = startChild(f, 8, false);
      await half.catch(() => undefined);
      await new Promise((r) => setTimeout(r, round * 3));
      child.kill('SIGKILL');
      await exited;
      const d = await loadSafetensors(f); // must decode: never a partial file
      assert.ok(['old', 'new'].includes(d.metadata.version), `round ${round}`);
      if (d.metadata.version === 'new') assert.equal(d.tensors.get('w')!.shape[0], 8 * 262144);
      removeStaleTempFiles(f);
      assert.deepEqual(entries(), ['model.safetensors']);
    }
  });

  it('tempPathFor names temp files in the target directory with pid and random suffix', () => {
    const a = tempPathFor(path.join(dir, 'x.bin'));
    const b = tempPathFor(path.join(dir, 'x.bin'));
    assert.notEqual(a, b);
    assert.equal(path.dirname(a), dir);
    assert.match(path.basename(a), new RegExp(`^\\.x\\.bin\\.${process.pid}\\.[0-9a-f]{16}\\.tmp$`));
  });
});

describe('safetensors: interop with Python (torch)', function () {
  const helper = findRepoFile(path.join('test', 'helpers', 'safetensors_ref.py'));
  let dir: string;

  before(function () {
    needs(this, 'python-torch');
    dir = mkTmpDir();
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function py(cmd: 'write' | 'read', file: string): any {
    const r = spawnSync(PYTHON, [helper, cmd, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, `python ${cmd} failed:\n${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  it('loads a file written by Python and gets the same values', async () => {
    const file = path.join(dir, 'from_python.safetensors');
    const ref = py('write', file);
    const { tensors, metadata } = await loadSafetensors(file);
    assert.deepEqual(metadata, ref.metadata);
    assert.deepEqual(unpackMetadata(metadata).config, { lr: 0.001, layers: [1, 2] });
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(ref.tensors).sort());
    for (const [name, exp] of Object.entries<any>(ref.tensors)) {
      const t = tensors.get(name)!;
      assert.equal(DTYPE_TO_SAFETENSORS[t.dtype], exp.dtype, name);
      assert.deepEqual(t.shape, exp.shape, name);
      if (t.dtype === 'int64') {
        const vals = Array.from(toTypedArray(t as RawTensor & { dtype: 'int64' }), String);
        assert.deepEqual(vals, exp.values, name);
      } else {
        assert.deepEqual(Array.from(toFloat64Array(t)), exp.values, name);
      }
    }
    // Spot checks against literal expectations, independent of Python's description.
    assert.deepEqual(Array.from(toFloat64Array(tensors.get('half')!)), [0.5, -1.25, 65504, 2 ** -24, 0.333251953125, -2]);
    assert.deepEqual(Array.from(toTypedArray(tensors.get('ids') as RawTensor & { dtype: 'int64' })), [0n, -1n, 2n ** 40n + 3n, -(2n ** 62n) + 5n, 7n]);
    assert.deepEqual(tensors.get('scalar')!.shape, []);
    assert.deepEqual(tensors.get('empty')!.shape, [0, 3]);
    // The TS writer reproduces Python's file byte for byte (same layout rules).
    assert.ok(Buffer.from(encodeSafetensors(tensors, metadata)).equals(fs.readFileSync(file)));
  });

  it('writes a file that Python reads back with the same shapes, sums and values', async () => {
    const file = path.join(dir, 'from_ts.safetensors');
    const t = sampleTensors();
    // Python's JSON cannot carry NaN/Inf; replace the non-finite values for this check.
    t['f32.matrix'] = fromTypedArray('float32', [2, 3], new Float32Array([1.5, -2, 0.1, 1e30, -0, 3.4028234663852886e38]));
    t.f16 = fromTypedArray('float16', [2, 2, 2], new Uint16Array([0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x3555, 0x0001, 0x8000, 0x0400]));
    t.bf16 = fromTypedArray('bfloat16', [6], new Uint16Array([0x3f80, 0xc000, 0x4049, 0x7f7f, 0x0001, 0x8000]));
    const rnd = new Float32Array(1000 * 37);
    for (let i = 0; i < rnd.length; i++) rnd[i] = Math.sin(i * 0.37) * 10;
    t['big.random'] = fromTypedArray('float32', [1000, 37], rnd);
    const meta = packMetadata({ format: 'pt', step: 12, cfg: { margin: 0.2 } });
    await saveSafetensors(file, t, meta);

    const out = py('read', file);
    assert.deepEqual(out.metadata, meta);
    if (out.impl === 'builtin') {
      assert.equal(out.layout.header_padded_to_8, true);
      assert.equal(out.layout.aligned, true);
      assert.deepEqual(out.layout.header_keys[0], '__metadata__');
    }
    assert.deepEqual(Object.keys(out.tensors).sort(), Object.keys(t).sort());
    for (const [name, raw] of Object.entries(t)) {
      const got = out.tensors[name];
      assert.equal(got.dtype, DTYPE_TO_SAFETENSORS[raw.dtype], name);
      assert.deepEqual(got.shape, raw.shape, name);
      assert.equal(got.numel, raw.shape.reduce((a, b) => a * b, 1), name);
      if (raw.dtype === 'int64') {
        const vals = Array.from(toTypedArray(raw as RawTensor & { dtype: 'int64' }));
        assert.deepEqual(got.values, vals.map(String), name);
        assert.equal(got.sum, String(vals.reduce((a, b) => a + b, 0n)), name);
        continue;
      }
      const vals = toFloat64Array(raw);
      if (got.values) assert.deepEqual(got.values, Array.from(vals), name);
      const sum = vals.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(got.sum - sum) <= 1e-9 * Math.max(1, Math.abs(sum)), `${name}: python sum ${got.sum} vs ${sum}`);
    }
  });
});
