// Core tensor API: creation, dtypes, factories, conversion, arithmetic,
// reductions, shape ops, resampling, distances, sorting and losses, with
// numbers checked against values computed here (or taken from python3-torch
// 1.13, which shares libtorch's generators, where noted).
import { strict as assert } from 'assert';
import * as tf from '../../lib';
import { ArgumentError, DType, Tensor, tensor } from '../../lib';
import { assertClose, randomValues, settledTensorCount, values } from '../helpers/util';

const range = (n: number, start = 0) => Array.from({ length: n }, (_, i) => start + i);

describe('tensor: creation', () => {
  it('from TypedArrays keeps their dtype and takes a shape', () => {
    const cases: [ArrayBufferView, DType][] = [
      [new Float32Array([1.5, -2, 3, 4, 5, 6]), 'float32'],
      [new Float64Array([1.25, -2, 3, 4, 5, 1e300]), 'float64'],
      [new Int32Array([1, -2, 3, 4, 5, 2 ** 31 - 1]), 'int32'],
      [new BigInt64Array([1n, -2n, 3n, 4n, 5n, 2n ** 40n]), 'int64'],
      [new Int16Array([1, -2, 3, 4, 5, 32767]), 'int16'],
      [new Int8Array([1, -2, 3, 4, 5, -128]), 'int8'],
      [new Uint8Array([1, 2, 3, 4, 5, 255]), 'uint8'],
    ];
    for (const [data, dtype] of cases) {
      const t = tensor(data as Float32Array, { shape: [2, 3] });
      assert.deepEqual(t.shape, [2, 3]);
      assert.equal(t.dtype, dtype);
      assert.equal(t.device, 'cpu');
      assert.deepEqual(values(t), Array.from(data as unknown as ArrayLike<number | bigint>, Number), dtype);
      assert.equal(t.data().constructor, data.constructor, dtype);
      t.dispose();
    }
  });

  it('copies a Buffer / subarray from its byte offset, and owns the copy', () => {
    const big = Buffer.alloc(64, 7);
    const b = big.subarray(5, 9);
    b.set([1, 2, 3, 4]);
    assert.ok(b.byteOffset > 0);
    const t = tensor(b, { shape: [2, 2] });
    assert.equal(t.dtype, 'uint8');
    assert.deepEqual(t.toArray(), [
      [1, 2],
      [3, 4],
    ]);
    b[0] = 99; // the tensor holds a copy
    assert.deepEqual(values(t), [1, 2, 3, 4]);
    const f = new Float32Array([0, 1, 2, 3, 4, 5]).subarray(3);
    assert.deepEqual(values(tensor(f)), [3, 4, 5]);
  });

  it('from nested arrays, numbers and booleans, with dtype and requiresGrad', () => {
    const a = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(a.shape, [2, 3]);
    assert.equal(a.dtype, 'float32');
    assert.deepEqual(a.toArray(), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const i = tensor([[1, 2]], { dtype: 'int64' });
    assert.equal(i.dtype, 'int64');
    assert.deepEqual(i.toArray(), [[1, 2]]);
    const r = tensor([1, 2, 3, 4], { shape: [2, 2], dtype: 'float64' });
    assert.deepEqual(r.shape, [2, 2]);
    assert.equal(r.dtype, 'float64');
    const s = tensor(2.5);
    assert.deepEqual(s.shape, []);
    assert.equal(s.item(), 2.5);
    assert.equal(s.toArray(), 2.5);
    const b = tensor([true, false, true]);
    assert.equal(b.dtype, 'bool');
    assert.deepEqual(b.toArray(), [true, false, true]);
    const g = tensor([1, 2], { requiresGrad: true, device: 'cpu' });
    assert.equal(g.requiresGrad, true);
    assert.equal(g.isLeaf, true);
    const e = tensor(new Float32Array(0), { shape: [0, 3] });
    assert.deepEqual(e.shape, [0, 3]);
    assert.equal(e.numel, 0);
  });

  it('rejects ragged arrays, bad shapes and unknown dtypes with ArgumentError', () => {
    assert.throws(() => tensor([[1, 2], [3]]), ArgumentError);
    assert.throws(() => tensor([1, 2, 3], { shape: [2, 2] }), ArgumentError);
    assert.throws(() => tensor(new Float32Array(4), { shape: [2, -2] }), ArgumentError);
    assert.throws(() => tensor([1, 'a' as unknown as number]), ArgumentError);
    assert.throws(() => tensor([1], { dtype: 'float8' as DType }), ArgumentError);
    assert.throws(() => tensor({} as unknown as number), ArgumentError);
  });
});

describe('tensor: dtypes round-trip through data() / toArray() / item()', () => {
  const cases: [DType, number[], string][] = [
    ['float32', [0.5, -1.25, 2 ** 100, 0], 'Float32Array'],
    ['float64', [0.1, -1e-300, 1e300, 0], 'Float64Array'],
    ['float16', [0.5, -2, 1024, 65504], 'Float32Array'], // all exactly representable in half
    ['bfloat16', [0.5, -2, 3, 2 ** 100], 'Float32Array'],
    ['int32', [1, -2, 2147483647, -2147483648], 'Int32Array'],
    ['int64', [1, -2, 2 ** 40, -(2 ** 52)], 'BigInt64Array'],
    ['uint8', [0, 1, 128, 255], 'Uint8Array'],
    ['bool', [1, 0, 1, 1], 'Uint8Array'],
    ['int8', [0, -1, 127, -128], 'Int8Array'],
    ['int16', [0, -1, 32767, -32768], 'Int16Array'],
  ];
  for (const [dtype, vals, arrayType] of cases) {
    it(dtype, () => {
      const t = tensor(vals, { dtype, shape: [2, 2] });
      assert.equal(t.dtype, dtype);
      assert.equal(t.data().constructor.name, arrayType);
      assert.deepEqual(values(t), vals);
      const nested = t.toArray() as unknown[][];
      assert.deepEqual(
        nested.flat(),
        vals.map((v) => (dtype === 'bool' ? v !== 0 : v)),
      );
      const one = tensor([vals[2]], { dtype });
      assert.equal(one.item(), vals[2]);
      assert.equal(one.to('float64').item(), vals[2]);
      assert.throws(() => t.item(), ArgumentError);
    });
  }

  it('float16 and bfloat16 round to their precision', () => {
    assert.equal(tensor([1 / 3], { dtype: 'float16' }).item(), 0.333251953125);
    assert.equal(tensor([1 / 3], { dtype: 'bfloat16' }).item(), 0.333984375);
  });
});

describe('tensor: factories', () => {
  it('zeros / ones / full / eye / empty', () => {
    assert.deepEqual(values(tf.zeros([2, 3])), new Array(6).fill(0));
    assert.deepEqual(tf.zeros([2, 3]).shape, [2, 3]);
    assert.equal(tf.zeros([2], { dtype: 'int32' }).dtype, 'int32');
    assert.deepEqual(values(tf.ones([4], { dtype: 'float64' })), [1, 1, 1, 1]);
    assert.deepEqual(values(tf.full([3], 2.5)), [2.5, 2.5, 2.5]);
    assert.equal(tf.full([1], true).dtype, 'bool');
    assert.deepEqual(tf.eye(3).toArray(), [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    assert.deepEqual(tf.empty([2, 5]).shape, [2, 5]);
    assert.equal(tf.ones([2], { requiresGrad: true }).requiresGrad, true);
  });

  it('arange / linspace', () => {
    const a = tf.arange(5);
    assert.equal(a.dtype, 'int64');
    assert.deepEqual(a.toArray(), [0, 1, 2, 3, 4]);
    assert.deepEqual(tf.arange(2, 11, 3).toArray(), [2, 5, 8]);
    assert.deepEqual(tf.arange(5, 0, -2).toArray(), [5, 3, 1]);
    const f = tf.arange(0, 1, 0.25);
    assert.equal(f.dtype, 'float32');
    assert.deepEqual(f.toArray(), [0, 0.25, 0.5, 0.75]);
    assert.equal(tf.arange(3, undefined, 1, { dtype: 'float64' }).dtype, 'float64');
    assert.deepEqual(tf.linspace(0, 1, 5).toArray(), [0, 0.25, 0.5, 0.75, 1]);
    assertClose(tf.linspace(-1, 2, 4), [-1, 0, 1, 2]);
    assert.throws(() => tf.arange(0, 1, 0), ArgumentError);
  });

  it('rand is uniform on [0, 1), randn standard normal', () => {
    tf.manualSeed(1);
    const u = values(tf.rand([20000]));
    assert.ok(u.every((v) => v >= 0 && v < 1));
    const mu = u.reduce((a, b) => a + b) / u.length;
    assert.ok(Math.abs(mu - 0.5) < 0.01, `mean ${mu}`);
    const n = values(tf.randn([20000], { dtype: 'float64' }));
    const m = n.reduce((a, b) => a + b) / n.length;
    const sd = Math.sqrt(n.reduce((a, b) => a + (b - m) ** 2, 0) / n.length);
    assert.ok(Math.abs(m) < 0.03 && Math.abs(sd - 1) < 0.03, `mean ${m} sd ${sd}`);
    const r = values(tf.randint(3, 7, [1000]));
    assert.ok(r.every((v) => v >= 3 && v < 7 && Number.isInteger(v)));
    assert.deepEqual(new Set(r).size, 4);
    assert.deepEqual(
      values(tf.randperm(10)).sort((a, b) => a - b),
      range(10),
    );
  });

  it('manualSeed makes random tensors reproducible, equal to PyTorch for the same seed', () => {
    tf.manualSeed(42);
    const a = values(tf.randn([4]));
    const b = values(tf.rand([3]));
    tf.manualSeed(42);
    assert.deepEqual(values(tf.randn([4])), a);
    assert.deepEqual(values(tf.rand([3])), b);
    // python3 -c "import torch; torch.manual_seed(42); print(torch.randn(4).tolist(), torch.rand(3).tolist())"
    assertClose(a, [0.33669036626815796, 0.12880940735340118, 0.23446236550807953, 0.23033303022384644], 0, 0);
    assertClose(b, [0.9407714605331421, 0.13318592309951782, 0.9345980882644653], 0, 0);
    tf.manualSeed(43);
    assert.notDeepEqual(values(tf.randn([4])), a);
  });
});

describe('tensor: conversion', () => {
  it('to(dtype) casts like PyTorch (truncation toward zero, bool)', () => {
    const x = tensor([1.7, -1.7, 0, 2.5]);
    assert.deepEqual(x.to('int32').toArray(), [1, -1, 0, 2]);
    assert.deepEqual(x.to('bool').toArray(), [true, true, false, true]);
    const d = x.to('float64');
    assert.equal(d.dtype, 'float64');
    assertClose(d, [1.7, -1.7, 0, 2.5], 1e-6);
    assert.equal(x.to({ dtype: 'int64', device: 'cpu' }).dtype, 'int64');
    assert.equal(x.double().dtype, 'float64');
    assert.equal(x.long().dtype, 'int64');
    assert.throws(() => x.to('float7' as DType), ArgumentError);
  });

  it('clone() is independent; detach() and views share memory', () => {
    const x = tensor([1, 2, 3]);
    const c = x.clone();
    c.add_(10);
    assert.deepEqual(x.toArray(), [1, 2, 3]);
    assert.deepEqual(c.toArray(), [11, 12, 13]);
    const v = x.view([3, 1]);
    v.mul_(2);
    assert.deepEqual(x.toArray(), [2, 4, 6]);
  });

  it('contiguous() of a transposed view keeps the logical order', () => {
    const x = tf.arange(6).reshape([2, 3]);
    const t = x.t();
    const expected = [
      [0, 3],
      [1, 4],
      [2, 5],
    ];
    assert.deepEqual(t.toArray(), expected);
    const c = t.contiguous();
    assert.deepEqual(c.toArray(), expected);
    assert.deepEqual(c.view([6]).toArray(), [0, 3, 1, 4, 2, 5]);
    assert.throws(() => t.view([6]), tf.TorchError); // a non-contiguous view cannot be viewed flat
  });
});

describe('tensor: arithmetic and comparisons', () => {
  const a = () =>
    tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
  it('add / sub / mul / div on plain CPU tensors (the direct-kernel path) match the dispatcher path, which traces take, in value and dtype', async () => {
    // Eager calls on tensors that need no grad run the CPU kernel directly (native/dispatch.cc
    // Binary); a trace records through the dispatcher. Both must agree, promotion included.
    const pairs: [Tensor, Tensor, number][] = [
      [tf.randn([3, 4]), tf.randn([4]), 1],
      [tf.randn([3, 1]), tf.randn([1, 5]), 2.5],
      [tensor([1, 2, 3], { dtype: 'int32' }), tensor([2, 2, 2], { dtype: 'int32' }), 3],
      [tensor([1, 2, 3], { dtype: 'int32' }), tensor([0.5, 1, 1.5]), 1],
      [tensor([1, 2], { dtype: 'float64' }), tensor(3), 1],
      [tf.randn([2, 3]).transpose(0, 1), tf.randn([3, 2]), -1],
    ];
    const before = await settledTensorCount();
    const ops = [(x: Tensor, y: Tensor, al: number) => tf.add(x, y, al), (x: Tensor, y: Tensor, al: number) => tf.sub(x, y, al), (x: Tensor, y: Tensor) => tf.mul(x, y), (x: Tensor, y: Tensor) => tf.div(x, y)];
    for (const [x, y, al] of pairs) {
      for (const f of ops) {
        const eager = f(x, y, al);
        const program = tf.trace((p, q) => f(p, q, al), [x, y]);
        const [replayed] = await program(x, y);
        assert.equal(eager.dtype, replayed.dtype);
        assert.deepEqual(eager.shape, replayed.shape);
        assert.deepEqual(Array.from(eager.data() as ArrayLike<number>), Array.from(replayed.data() as ArrayLike<number>));
        tf.dispose(eager, replayed);
      }
    }
    assert.equal(await settledTensorCount(), before, 'the direct-kernel ops left tensors behind');
    tf.dispose(pairs.flat().filter((v): v is Tensor => Tensor.isTensor(v)));
    // A tensor that requires grad takes the dispatcher (autograd records the op).
    const w = tf.randn([3], { requiresGrad: true });
    const y = tf.mul(w, tf.ones([3]));
    assert.ok(y.requiresGrad);
    y.sum().backward();
    assertClose(w.grad!, [1, 1, 1], 0);
  });
  it('broadcasts [2,3] with [3] and [2,1]', () => {
    const row = tensor([10, 20, 30]);
    const col = tensor([[1], [2]]);
    assert.deepEqual(a().add(row).toArray(), [
      [11, 22, 33],
      [14, 25, 36],
    ]);
    assert.deepEqual(a().sub(col).toArray(), [
      [0, 1, 2],
      [2, 3, 4],
    ]);
    assert.deepEqual(a().mul(col).toArray(), [
      [1, 2, 3],
      [8, 10, 12],
    ]);
    assert.deepEqual(col.add(row).shape, [2, 3]);
    assertClose(a().div(row), [0.1, 0.1, 0.1, 0.4, 0.25, 0.2], 1e-7);
    assert.deepEqual(a().add(row, 2).toArray(), [
      [21, 42, 63],
      [24, 45, 66],
    ]);
    assert.deepEqual(a().sub(1, 3).toArray(), [
      [-2, -1, 0],
      [1, 2, 3],
    ]);
    assert.deepEqual(a().pow(2).toArray(), [
      [1, 4, 9],
      [16, 25, 36],
    ]);
    assert.deepEqual(tf.pow(2, tensor([0, 1, 3])).toArray(), [1, 2, 8]);
    assert.deepEqual(a().neg().toArray(), [
      [-1, -2, -3],
      [-4, -5, -6],
    ]);
    assert.throws(() => a().add(tensor([1, 2])), tf.TorchError);
  });

  it('promotes types like PyTorch', () => {
    const i = tensor([1, 2], { dtype: 'int32' });
    assert.equal(i.add(1).dtype, 'int32');
    assert.equal(i.add(0.5).dtype, 'float32');
    assert.deepEqual(i.add(0.5).toArray(), [1.5, 2.5]);
    assert.equal(i.div(2).dtype, 'float32'); // true division
    assert.equal(i.add(tensor([1, 1], { dtype: 'float64' })).dtype, 'float64');
  });

  it('unary math', () => {
    const x = tensor([0.25, 1, 4], { dtype: 'float64' });
    assertClose(x.exp(), [Math.exp(0.25), Math.E, Math.exp(4)], 1e-12, 1e-12);
    assertClose(x.log(), [Math.log(0.25), 0, Math.log(4)], 1e-12);
    assertClose(x.sqrt(), [0.5, 1, 2], 1e-12);
    assertClose(x.rsqrt(), [2, 1, 0.5], 1e-12);
    assertClose(tensor([-2, 0, 3]).abs(), [2, 0, 3], 0);
    assertClose(tensor([-2, 0, 3]).clamp(-1, 1), [-1, 0, 1], 0);
    assertClose(tensor([-2, 0, 3]).clamp(null, 1), [-2, 0, 1], 0);
    assertClose(tensor([-2, 0, 3]).relu(), [0, 0, 3], 0);
    assertClose(tensor([0, 1]).sigmoid(), [0.5, 1 / (1 + Math.exp(-1))], 1e-7);
    assertClose(tensor([0, 1]).tanh(), [0, Math.tanh(1)], 1e-7);
    const sm = tensor([[1, 2, 3]], { dtype: 'float64' }).softmax(1);
    const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
    assertClose(sm, [Math.exp(1) / z, Math.exp(2) / z, Math.exp(3) / z], 1e-12);
    assertClose(tensor([[1, 2, 3]], { dtype: 'float64' }).logSoftmax(-1), [1 - Math.log(z), 2 - Math.log(z), 3 - Math.log(z)], 1e-12);
  });

  it('comparisons give bool tensors', () => {
    const x = tensor([1, 2, 3]);
    const y = tensor([3, 2, 1]);
    const check = (t: Tensor, e: boolean[]) => {
      assert.equal(t.dtype, 'bool');
      assert.deepEqual(t.toArray(), e);
    };
    check(x.eq(y), [false, true, false]);
    check(x.ne(y), [true, false, true]);
    check(x.lt(y), [true, false, false]);
    check(x.le(y), [true, true, false]);
    check(x.gt(y), [false, false, true]);
    check(x.ge(2), [false, true, true]);
    check(tf.logicalAnd(x.gt(1), y.gt(1)), [false, true, false]);
    assert.equal(tf.allclose(x, tensor([1, 2, 3.000001])), true);
    assert.equal(tf.allclose(x, y), false);
  });

  it('matmul / mm / bmm against hand-computed products', () => {
    const A = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const B = tensor([
      [7, 8],
      [9, 10],
      [11, 12],
    ]);
    assert.deepEqual(A.matmul(B).toArray(), [
      [58, 64],
      [139, 154],
    ]);
    assert.deepEqual(A.mm(B).toArray(), [
      [58, 64],
      [139, 154],
    ]);
    assert.deepEqual(A.matmul(tensor([1, 0, -1])).toArray(), [-2, -2]);
    // bmm on random data against a JS triple loop
    const [Bn, n, k, m] = [3, 4, 5, 2];
    const xa = randomValues(Bn * n * k, 1);
    const xb = randomValues(Bn * k * m, 2);
    const expected: number[] = [];
    for (let b = 0; b < Bn; b++)
      for (let i = 0; i < n; i++)
        for (let j = 0; j < m; j++) {
          let s = 0;
          for (let l = 0; l < k; l++) s += xa[b * n * k + i * k + l] * xb[b * k * m + l * m + j];
          expected.push(s);
        }
    const r = tf.bmm(tensor(xa, { shape: [Bn, n, k], dtype: 'float64' }), tensor(xb, { shape: [Bn, k, m], dtype: 'float64' }));
    assert.deepEqual(r.shape, [Bn, n, m]);
    assertClose(r, expected, 1e-12);
    assert.throws(() => A.mm(A), tf.TorchError);
  });
});

describe('tensor: reductions', () => {
  const x = () =>
    tensor(
      [
        [1, 5, 3],
        [4, 2, 6],
      ],
      { dtype: 'float64' },
    );
  it('sum / mean with dim and keepdim', () => {
    assert.equal(x().sum().item(), 21);
    assert.deepEqual(x().sum().shape, []);
    assert.deepEqual(x().sum(0).toArray(), [5, 7, 9]);
    assert.deepEqual(x().sum(1).toArray(), [9, 12]);
    assert.deepEqual(x().sum(1, true).toArray(), [[9], [12]]);
    assert.deepEqual(x().sum([0, 1]).toArray(), 21);
    assert.deepEqual(x().sum(-1, true).shape, [2, 1]);
    assert.equal(x().mean().item(), 3.5);
    assert.deepEqual(x().mean(0).toArray(), [2.5, 3.5, 4.5]);
    assert.deepEqual(x().mean(1, true).toArray(), [[3], [4]]);
  });
  it('max / min / argmax / argmin', () => {
    assert.equal(x().max().item(), 6);
    assert.equal(x().min().item(), 1);
    const m = x().max(1);
    assert.deepEqual(m.values.toArray(), [5, 6]);
    assert.deepEqual(m.indices.toArray(), [1, 2]);
    assert.equal(m.indices.dtype, 'int64');
    const mk = x().min(0, true);
    assert.deepEqual(mk.values.toArray(), [[1, 2, 3]]);
    assert.deepEqual(mk.indices.toArray(), [[0, 1, 0]]);
    assert.equal(x().argmax().item(), 5);
    assert.deepEqual(x().argmax(0).toArray(), [1, 0, 1]);
    assert.deepEqual(x().argmin(1, true).toArray(), [[0], [1]]);
  });
  it('norm / var / std / prod / logsumexp', () => {
    assertClose(x().norm(), Math.sqrt(1 + 25 + 9 + 16 + 4 + 36), 1e-12);
    assertClose(x().norm(1, 1), [9, 12], 1e-12);
    assertClose(x().norm(2, 0, true), [[Math.sqrt(17), Math.sqrt(29), Math.sqrt(45)]], 1e-12);
    // row 0: mean 3, squared deviations 4+4+0 = 8
    assertClose(x().var(1), [4, 4], 1e-12);
    assertClose(x().var(1, { unbiased: false }), [8 / 3, 8 / 3], 1e-12);
    assertClose(x().std(1, { keepdim: true }), [[2], [2]], 1e-12);
    const all = [1, 5, 3, 4, 2, 6];
    const mean = 3.5;
    assertClose(x().var(), all.reduce((a, v) => a + (v - mean) ** 2, 0) / 5, 1e-12);
    assertClose(tf.prod(x()), 720, 0);
    assertClose(tf.prod(x(), 1), [15, 48], 0);
    assertClose(tf.logsumexp(x(), 1), [Math.log(Math.exp(1) + Math.exp(5) + Math.exp(3)), Math.log(Math.exp(4) + Math.exp(2) + Math.exp(6))], 1e-12);
    assertClose(tf.cumsum(x(), 1), [1, 6, 9, 4, 6, 12], 0);
  });
});

describe('tensor: shape ops', () => {
  const x = () => tf.arange(24).reshape([2, 3, 4]);
  // element (i, j, k) of x is 12 i + 4 j + k
  it('reshape / view / flatten / squeeze / unsqueeze', () => {
    assert.deepEqual(x().reshape([4, -1]).shape, [4, 6]);
    assert.deepEqual(values(x().reshape([6, 4])), range(24));
    assert.deepEqual(x().view([24]).toArray(), range(24));
    assert.deepEqual(x().flatten().shape, [24]);
    assert.deepEqual(x().flatten(1).shape, [2, 12]);
    assert.deepEqual(x().flatten(0, 1).shape, [6, 4]);
    const s = tf.zeros([1, 3, 1, 2]);
    assert.deepEqual(s.squeeze().shape, [3, 2]);
    assert.deepEqual(s.squeeze(2).shape, [1, 3, 2]);
    assert.deepEqual(s.unsqueeze(0).shape, [1, 1, 3, 1, 2]);
    assert.deepEqual(s.unsqueeze(-1).shape, [1, 3, 1, 2, 1]);
    assert.throws(() => x().reshape([5, 5]), tf.TorchError);
  });
  it('permute / transpose move elements', () => {
    const p = x().permute([2, 0, 1]);
    assert.deepEqual(p.shape, [4, 2, 3]);
    const expected: number[] = [];
    for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) expected.push(12 * i + 4 * j + k);
    assert.deepEqual(values(p), expected);
    const t = x().transpose(0, 2);
    assert.deepEqual(t.shape, [4, 3, 2]);
    const e2: number[] = [];
    for (let k = 0; k < 4; k++) for (let j = 0; j < 3; j++) for (let i = 0; i < 2; i++) e2.push(12 * i + 4 * j + k);
    assert.deepEqual(values(t), e2);
  });
  it('cat / stack / split / chunk', () => {
    const a = tensor([
      [1, 2],
      [3, 4],
    ]);
    const b = tensor([[5, 6]]);
    assert.deepEqual(tf.cat([a, b]).toArray(), [
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    assert.deepEqual(tf.cat([a, a], 1).toArray(), [
      [1, 2, 1, 2],
      [3, 4, 3, 4],
    ]);
    const st = tf.stack([a, a.mul(10)], 0);
    assert.deepEqual(st.shape, [2, 2, 2]);
    assert.deepEqual(values(st), [1, 2, 3, 4, 10, 20, 30, 40]);
    assert.deepEqual(tf.stack([a, a], -1).shape, [2, 2, 2]);
    assert.deepEqual(values(tf.stack([a, a.mul(10)], 2)), [1, 10, 2, 20, 3, 30, 4, 40]);
    const parts = tf.arange(7).split(3);
    assert.deepEqual(
      parts.map((p) => p.toArray()),
      [[0, 1, 2], [3, 4, 5], [6]],
    );
    const sized = tf.arange(7).split([2, 5]);
    assert.deepEqual(
      sized.map((p) => p.toArray()),
      [
        [0, 1],
        [2, 3, 4, 5, 6],
      ],
    );
    assert.deepEqual(
      x()
        .split(2, 2)
        .map((p) => p.shape),
      [
        [2, 3, 2],
        [2, 3, 2],
      ],
    );
    assert.equal(x().chunk(3, 1).length, 3);
    assert.throws(() => tf.cat([a, tensor([[1, 2, 3]])]), tf.TorchError);
  });
  it('slice / narrow / select / indexSelect / gather', () => {
    const r = tf.arange(10);
    assert.deepEqual(r.slice(0, 2, 8, 3).toArray(), [2, 5]);
    assert.deepEqual(r.slice(0, -3).toArray(), [7, 8, 9]);
    assert.deepEqual(r.slice(0, null, 2).toArray(), [0, 1]);
    assert.deepEqual(x().slice(2, 1, 3).toArray(), [
      [
        [1, 2],
        [5, 6],
        [9, 10],
      ],
      [
        [13, 14],
        [17, 18],
        [21, 22],
      ],
    ]);
    assert.deepEqual(x().narrow(1, 1, 1).shape, [2, 1, 4]);
    assert.deepEqual(x().select(1, 2).toArray(), [
      [8, 9, 10, 11],
      [20, 21, 22, 23],
    ]);
    const idx = tensor([2, 0, 2], { dtype: 'int64' });
    assert.deepEqual(x().indexSelect(1, idx).select(0, 0).toArray(), [
      [8, 9, 10, 11],
      [0, 1, 2, 3],
      [8, 9, 10, 11],
    ]);
    const m = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const gi = tensor(
      [
        [2, 0],
        [1, 1],
      ],
      { dtype: 'int64' },
    );
    assert.deepEqual(m.gather(1, gi).toArray(), [
      [3, 1],
      [5, 5],
    ]);
    assert.deepEqual(m.gather(0, tensor([[1, 0, 1]], { dtype: 'int64' })).toArray(), [[4, 2, 6]]);
    assert.throws(() => m.indexSelect(1, tensor([5], { dtype: 'int64' })), tf.TorchError);
  });
  it('where / maskedFill / maskedSelect', () => {
    const v = tensor([1, -2, 3, -4]);
    const mask = v.gt(0);
    assert.deepEqual(tf.where(mask, v, tensor([0, 0, 0, 0])).toArray(), [1, 0, 3, 0]);
    assert.deepEqual(tf.where(mask, v, -1).toArray(), [1, -1, 3, -1]);
    assert.deepEqual(tf.where(mask, 7, v).toArray(), [7, -2, 7, -4]);
    assert.deepEqual(tf.where(tensor([[true], [false]]), tensor([1, 2]), tensor([10, 20])).toArray(), [
      [1, 2],
      [10, 20],
    ]);
    assert.deepEqual(v.maskedFill(mask, 9).toArray(), [9, -2, 9, -4]);
    assert.deepEqual(v.maskedSelect(mask).toArray(), [1, 3]);
  });
  it('expand / repeat / flip', () => {
    assert.deepEqual(tensor([[1], [2]]).expand([2, 3]).toArray(), [
      [1, 1, 1],
      [2, 2, 2],
    ]);
    assert.deepEqual(tensor([1, 2]).repeat([2, 2]).toArray(), [
      [1, 2, 1, 2],
      [1, 2, 1, 2],
    ]);
    assert.deepEqual(tf.arange(4).flip([0]).toArray(), [3, 2, 1, 0]);
  });
});

describe('tensor: pad / interpolate', () => {
  it('pad: constant, reflect, replicate, circular', () => {
    const x = tensor([[[1, 2, 3]]]);
    assert.deepEqual(tf.pad(x, [2, 1]).toArray(), [[[0, 0, 1, 2, 3, 0]]]);
    assert.deepEqual(tf.pad(x, [1, 1], 'constant', -1).toArray(), [[[-1, 1, 2, 3, -1]]]);
    assert.deepEqual(tf.pad(x, [2, 2], 'reflect').toArray(), [[[3, 2, 1, 2, 3, 2, 1]]]);
    assert.deepEqual(tf.pad(x, [2, 1], 'replicate').toArray(), [[[1, 1, 1, 2, 3, 3]]]);
    assert.deepEqual(tf.pad(x, [1, 2], 'circular').toArray(), [[[3, 1, 2, 3, 1, 2]]]);
    const img = tensor([[[[1, 2], [3, 4]]]]);
    assert.deepEqual(tf.pad(img, [1, 0, 0, 1]).toArray(), [
      [
        [
          [0, 1, 2],
          [0, 3, 4],
          [0, 0, 0],
        ],
      ],
    ]);
    assert.throws(() => tf.pad(x, [1, 1], 'mirror' as 'reflect'), ArgumentError);
  });

  it('interpolate: nearest, bilinear with and without alignCorners, linear', () => {
    const img = tensor([[[[1, 2], [3, 4]]]]);
    assert.deepEqual(tf.interpolate(img, { scaleFactor: 2 }).toArray(), [
      [
        [
          [1, 1, 2, 2],
          [1, 1, 2, 2],
          [3, 3, 4, 4],
          [3, 3, 4, 4],
        ],
      ],
    ]);
    // align_corners: output grid hits the corners exactly, the centre is the mean
    assertClose(tf.interpolate(img, { size: [3, 3], mode: 'bilinear', alignCorners: true }), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4], 1e-6);
    // half-pixel centres: src = (dst + 0.5) / 2 - 0.5, clamped at 0
    const src = (d: number) => Math.max(0, (d + 0.5) / 2 - 0.5);
    const lerp1 = (a: number, b: number, t: number) => a + (b - a) * Math.min(t, 1);
    const expected: number[] = [];
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 4; j++) {
        const [y, x] = [src(i), src(j)];
        const top = lerp1(1, 2, x);
        const bottom = lerp1(3, 4, x);
        expected.push(lerp1(top, bottom, y));
      }
    assertClose(tf.interpolate(img, { size: 4, mode: 'bilinear' }), expected, 1e-6);
    assertClose(tf.interpolate(tensor([[[0, 10]]]), { size: 3, mode: 'linear', alignCorners: true }), [0, 5, 10], 1e-6);
    assert.throws(() => tf.interpolate(img, { size: 3, mode: 'trilinear' }), ArgumentError);
    assert.throws(() => tf.interpolate(img, {}), ArgumentError);
  });
});

describe('tensor: cdist / topk / sort', () => {
  it('cdist matches pairwise p-norms', () => {
    const a = randomValues(2 * 3 * 4, 11);
    const b = randomValues(2 * 5 * 4, 12);
    for (const p of [1, 2, 3]) {
      const expected: number[] = [];
      for (let n = 0; n < 2; n++)
        for (let i = 0; i < 3; i++)
          for (let j = 0; j < 5; j++) {
            let s = 0;
            for (let k = 0; k < 4; k++) s += Math.abs(a[n * 12 + i * 4 + k] - b[n * 20 + j * 4 + k]) ** p;
            expected.push(s ** (1 / p));
          }
      const d = tf.cdist(tensor(a, { shape: [2, 3, 4], dtype: 'float64' }), tensor(b, { shape: [2, 5, 4], dtype: 'float64' }), p);
      assert.deepEqual(d.shape, [2, 3, 5]);
      assertClose(d, expected, 1e-10, 1e-10, `p=${p}`);
    }
  });

  it('topk / sort / argsort', () => {
    const x = tensor([
      [3, 1, 4, 1.5],
      [9, 2, 6, 5],
    ]);
    const t = x.topk(2);
    assert.deepEqual(t.values.toArray(), [
      [4, 3],
      [9, 6],
    ]);
    assert.deepEqual(t.indices.toArray(), [
      [2, 0],
      [0, 2],
    ]);
    const s = x.topk(1, 0, false);
    assert.deepEqual(s.values.toArray(), [[3, 1, 4, 1.5]]);
    assert.deepEqual(s.indices.toArray(), [[0, 0, 0, 0]]);
    const so = x.sort();
    assert.deepEqual(so.values.toArray(), [
      [1, 1.5, 3, 4],
      [2, 5, 6, 9],
    ]);
    assert.deepEqual(so.indices.toArray(), [
      [1, 3, 0, 2],
      [1, 3, 2, 0],
    ]);
    assert.deepEqual(x.sort(1, true).values.toArray(), [
      [4, 3, 1.5, 1],
      [9, 6, 5, 2],
    ]);
    assert.deepEqual(x.argsort(0, true).toArray(), [
      [1, 1, 1, 1],
      [0, 0, 0, 0],
    ]);
    assert.throws(() => x.topk(5), tf.TorchError);
  });
});

describe('tensor: losses against hand-computed values', () => {
  const input = [0.2, 0.9, 0.6, 0.05];
  const target = [0, 1, 1, 0];
  const mean = (v: number[]) => v.reduce((a, b) => a + b) / v.length;
  it('mseLoss / l1Loss with reductions', () => {
    const x = tensor(input, { dtype: 'float64' });
    const y = tensor(target, { dtype: 'float64' });
    const sq = input.map((v, i) => (v - target[i]) ** 2);
    assertClose(tf.mseLoss(x, y), mean(sq), 1e-12);
    assertClose(tf.mseLoss(x, y, 'sum'), sq.reduce((a, b) => a + b), 1e-12);
    assertClose(tf.mseLoss(x, y, 'none'), sq, 1e-12);
    assertClose(tf.l1Loss(x, y), mean(input.map((v, i) => Math.abs(v - target[i]))), 1e-12);
    assert.throws(() => tf.mseLoss(x, y, 'avg' as 'mean'), ArgumentError);
  });
  it('binaryCrossEntropy / binaryCrossEntropyWithLogits', () => {
    const x = tensor(input, { dtype: 'float64' });
    const y = tensor(target, { dtype: 'float64' });
    const bce = input.map((p, i) => -(target[i] * Math.log(p) + (1 - target[i]) * Math.log(1 - p)));
    assertClose(tf.binaryCrossEntropy(x, y), mean(bce), 1e-12);
    const w = [1, 2, 3, 4];
    assertClose(tf.binaryCrossEntropy(x, y, { weight: tensor(w, { dtype: 'float64' }), reduction: 'sum' }), bce.reduce((a, b, i) => a + b * w[i], 0), 1e-12);
    const logits = [-1.5, 0.3, 2, -0.2];
    const sig = (z: number) => 1 / (1 + Math.exp(-z));
    const bl = logits.map((z, i) => -(target[i] * Math.log(sig(z)) + (1 - target[i]) * Math.log(1 - sig(z))));
    assertClose(tf.binaryCrossEntropyWithLogits(tensor(logits, { dtype: 'float64' }), y), mean(bl), 1e-12);
    const pw = 3;
    const blp = logits.map((z, i) => -(pw * target[i] * Math.log(sig(z)) + (1 - target[i]) * Math.log(1 - sig(z))));
    assertClose(tf.binaryCrossEntropyWithLogits(tensor(logits, { dtype: 'float64' }), y, { posWeight: tensor([pw], { dtype: 'float64' }), reduction: 'none' }), blp, 1e-12);
  });
  it('crossEntropy with class indices, probabilities, weights, ignoreIndex, label smoothing; nllLoss', () => {
    const logits = [
      [1, 2, 0.5],
      [0.1, -1, 3],
      [2, 2, 2],
    ];
    const cls = [1, 2, 0];
    const lse = (r: number[]) => Math.log(r.reduce((a, v) => a + Math.exp(v), 0));
    const nll = logits.map((r, i) => lse(r) - r[cls[i]]);
    const x = tensor(logits, { dtype: 'float64' });
    const t = tensor(cls, { dtype: 'int64' });
    assertClose(tf.crossEntropy(x, t), mean(nll), 1e-12);
    assertClose(tf.crossEntropy(x, t, { reduction: 'none' }), nll, 1e-12);
    const w = [0.5, 1, 2];
    const wsum = cls.reduce((a, c) => a + w[c], 0);
    assertClose(tf.crossEntropy(x, t, { weight: tensor(w, { dtype: 'float64' }) }), nll.reduce((a, l, i) => a + w[cls[i]] * l, 0) / wsum, 1e-12);
    assertClose(tf.crossEntropy(x, tensor([1, -100, 0], { dtype: 'int64' })), (nll[0] + nll[2]) / 2, 1e-12);
    const eps = 0.1;
    const smooth = logits.map((r, i) => (1 - eps) * nll[i] + (eps / 3) * r.reduce((a, v) => a + lse(r) - v, 0));
    assertClose(tf.crossEntropy(x, t, { labelSmoothing: eps }), mean(smooth), 1e-12);
    const probs = [
      [0.2, 0.8, 0],
      [0, 0.5, 0.5],
      [1, 0, 0],
    ];
    const soft = logits.map((r, i) => probs[i].reduce((a, p, k) => a + p * (lse(r) - r[k]), 0));
    assertClose(tf.crossEntropy(x, tensor(probs, { dtype: 'float64' })), mean(soft), 1e-12);
    assertClose(tf.nllLoss(x.logSoftmax(1), t), mean(nll), 1e-12);
    assert.throws(() => tf.crossEntropy(x, tensor([3, 0, 0], { dtype: 'int64' })), tf.TorchError);
  });
});
