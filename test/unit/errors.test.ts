// Errors: libtorch failures arrive as TorchError naming the operator, bad
// arguments as ArgumentError before any native call, disposed tensors as
// DisposedError, CUDA requests without a GPU as clean errors; and a seeded
// fuzz run of 10,000+ random calls in a child process that must survive and
// throw nothing but torchface errors.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';
import * as tf from '../../lib';
import { ArgumentError, DisposedError, Tensor, TorchError, TorchfaceError, tensor } from '../../lib';
import { native } from '../../lib/core/native';
import type { FuzzReport } from '../helpers/fuzz';
import { runChild } from '../helpers/child';
import { DIST_HELPERS } from '../helpers/peers';

/** Counts native.call invocations made by fn (to prove a check happened in TypeScript). */
function nativeCalls(fn: () => unknown): { calls: number; error: unknown } {
  const original = native.call;
  let calls = 0;
  (native as { call: typeof native.call }).call = (...a) => {
    calls++;
    return original(...a);
  };
  try {
    fn();
    return { calls, error: undefined };
  } catch (e) {
    return { calls, error: e };
  } finally {
    (native as { call: typeof native.call }).call = original;
  }
}

function torchError(fn: () => unknown, op: string | RegExp): TorchError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof TorchError, `expected a TorchError, got ${caught}`);
  const e = caught as TorchError;
  assert.ok(e instanceof TorchfaceError && e instanceof Error);
  assert.equal(e.name, 'TorchError');
  if (typeof op === 'string') assert.equal(e.op, op);
  else assert.match(e.op, op);
  assert.ok(e.message.startsWith(e.op), `message names the op: ${e.message}`);
  assert.doesNotMatch(e.message, /Exception raised from|frame #\d/, 'no C++ backtrace in the message');
  return e;
}

describe('errors: libtorch failures become TorchError with the op name', () => {
  const a = () => tf.ones([2, 3]);
  it('shape, dtype and index errors from many ops', () => {
    assert.match(torchError(() => a().mm(a()), 'aten::mm').message, /mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)/);
    torchError(() => a().add(tf.ones([4])), 'aten::add.Tensor');
    torchError(() => tf.cat([a(), tf.ones([2, 4])]), 'aten::cat');
    torchError(() => a().view([4]), 'aten::view');
    torchError(() => a().t().view([6]), 'aten::view');
    torchError(() => tf.conv2d(tf.ones([1, 3, 4, 4]), tf.ones([2, 4, 3, 3])), 'aten::conv2d');
    torchError(() => tf.conv2d(tf.ones([1, 3, 2, 2]), tf.ones([2, 3, 3, 3])), 'aten::conv2d'); // kernel larger than input
    torchError(() => tf.crossEntropy(a(), tensor([0, 7], { dtype: 'int64' })), 'aten::cross_entropy_loss');
    torchError(() => a().indexSelect(0, tensor([5], { dtype: 'int64' })), 'aten::index_select');
    torchError(() => a().indexSelect(0, tensor([0])), 'aten::index_select'); // float index
    torchError(() => a().gather(1, tensor([[0]], { dtype: 'int64' }).add(10)), 'aten::gather');
    torchError(() => a().select(0, 5), 'aten::select.int');
    torchError(() => a().topk(9), 'aten::topk');
    torchError(() => a().sum(5), 'aten::sum.dim_IntList');
    torchError(() => a().permute([0, 0]), 'aten::permute');
    torchError(() => tf.bmm(a(), a()), 'aten::bmm');
    torchError(() => tf.maxPool2d(tf.ones([1, 1, 2, 2]), 3), 'aten::max_pool2d');
    torchError(() => tf.matmul(tensor([1, 2], { dtype: 'int32' }), tensor([1, 2])), 'aten::matmul');
    torchError(() => tf.randint(0, 5, [2]).to('float32').requiresGrad_(true).mul(2).requiresGrad_(false), 'requiresGrad_');
    torchError(() => tensor([1, 2], { dtype: 'int64' }).requiresGrad_(true), 'requiresGrad_');
    torchError(() => tensor([1]).sum().backward(), 'backward');
    torchError(() => tf.grad(tensor([1]).sum(), tensor([1])), 'grad');
  });

  it('callOp: unknown operators and overloads (TorchError), argument kinds checked against the schema (ArgumentError)', () => {
    torchError(() => tf.callOp('aten::no_such_op', '', tf.ones([1])), 'aten::no_such_op');
    torchError(() => tf.callOp('aten::add', 'NoSuchOverload', tf.ones([1])), 'aten::add.NoSuchOverload');
    // Argument kinds are checked against the schema in TypeScript: ArgumentErrors naming the argument.
    assert.throws(() => tf.callOp('aten::add', 'Tensor', tf.ones([1]), 'x'), (e: unknown) => e instanceof ArgumentError && /other/.test((e as Error).message));
    assert.throws(() => tf.callOp('aten::add', 'Tensor', tf.ones([1]), tf.ones([1]), 1, 4, 5), ArgumentError); // too many
    torchError(() => tf.callOp('aten::add', 'Tensor'), 'aten::add.Tensor'); // 'self' is required
    // c10::Device("garbage") throws a c10::Error during conversion; it used to abort the process
    assert.match(torchError(() => tf.callOp('aten::to', 'device', tf.ones([1]), 'garbage', 6, false, false), 'aten::to.device').message, /device/);
    torchError(() => tf.callOp('aten::to', 'device', tf.ones([1]), 'cuda', 6, false, false), 'aten::to.device'); // no CUDA here
    assert.equal((tf.callOp('aten::erf', '', tensor([0])) as Tensor).item(), 0);
    assert.throws(() => tf.callOp(5 as unknown as string, ''), ArgumentError);
  });

  it("callOp: an int[2] argument given one integer is repeated (mkldnn_reorder_conv2d_weight read past a 1-element padding and died of SIGFPE); a wrong length is an ArgumentError", function () {
    if (!tf.mkldnnAvailable()) this.skip();
    const w = tf.rand([4, 3, 3, 3]);
    const dense = tf.toMkldnn(w);
    const packed = [[0], 0, [0, 0]].map((pad) => tf.callOp('aten::mkldnn_reorder_conv2d_weight', '', dense, pad, [1], [1, 1], 1) as Tensor);
    assert.ok(packed.every((p) => p.shape.join() === '4,3,3,3'));
    assert.throws(() => tf.callOp('aten::mkldnn_reorder_conv2d_weight', '', dense, [0, 0, 0], 1, 1, 1), (e: unknown) => e instanceof ArgumentError && /padding/.test((e as Error).message));
    // The packed weight convolves like the dense one (oneDNN tensors in and out).
    const x = tf.rand([1, 3, 8, 8]);
    const y = tf.toDense(tf.mkldnnConv2d(tf.toMkldnn(x), packed[0], null));
    assert.ok(tf.sub(y, tf.conv2d(x, w)).abs().max().item() < 1e-5);
    for (const t of [w, dense, x, y, ...packed]) t.dispose();
  });
});

describe('errors: invalid arguments are ArgumentErrors, raised before native code', () => {
  const x = tf.ones([1, 3, 8, 8]);
  const w = tf.ones([4, 3, 3, 3]);
  const x2d = tf.ones([8, 8]);
  const vectorOutput = tensor([1, 2], { requiresGrad: true }).mul(2);
  const cases: [string, () => unknown, string][] = [
    ['conv stride 1.5', () => tf.conv2d(x, w, null, { stride: 1.5 }), 'stride'],
    ['conv padding string', () => tf.conv2d(x, w, null, { padding: 'full' as 'same' }), 'padding'],
    ['conv 2-D input', () => tf.conv2d(x2d, w), 'input'],
    ['conv options null', () => tf.conv2d(x, w, null, null as unknown as tf.ConvOptions), 'options'],
    ['a number as tensor', () => tf.mm(3 as unknown as Tensor, w), 'input'],
    ['undefined tensor', () => tf.relu(undefined as unknown as Tensor), 'input'],
    ['a foreign object as tensor', () => tf.relu(Object.create(Tensor.prototype)), 'input'],
    ['a plain object as tensor', () => tf.add(x, { handle: {} } as unknown as Tensor), 'other'],
    ['NaN alpha', () => tf.add(x, x, NaN), 'alpha'],
    ['dim 1.5', () => tf.softmax(x, 1.5), 'dim'],
    ['dim string', () => x.sum('1' as unknown as number), 'dim'],
    ['shape with -2', () => tf.zeros([2, -2]), 'shape'],
    ['shape not an array', () => tf.zeros(3 as unknown as number[]), 'shape'],
    ['dtype unknown', () => tf.zeros([2], { dtype: 'complex64' as tf.DType }), 'dtype'],
    ['dtype toString', () => tf.zeros([2], { dtype: 'toString' as tf.DType }), 'dtype'],
    ['device tpu', () => tf.zeros([2], { device: 'tpu' as tf.Device }), 'device'],
    ['device cuda (none here)', () => tf.zeros([2], { device: 'cuda' }), 'device'],
    ['to cuda:1', () => x.to('cuda:1'), 'device'],
    ['cuda()', () => x.cuda(), 'device'],
    ['reduction', () => tf.mseLoss(x, x, 'avg' as tf.Reduction), 'reduction'],
    ['split 0', () => x.split(0), 'splitSize'],
    ['pad mode', () => tf.pad(x, [1, 1], 'wrap' as 'reflect'), 'mode'],
    ['interpolate without size', () => tf.interpolate(x, {}), 'options'],
    ['interpolate mode/rank', () => tf.interpolate(x, { size: 4, mode: 'linear' }), 'mode'],
    ['dropout p 2', () => tf.dropout(x, 2), 'p'],
    ['arange step 0', () => tf.arange(0, 4, 0), 'step'],
    ['randint low >= high', () => tf.randint(3, 3, [1]), 'low, high'],
    ['manualSeed -1', () => tf.manualSeed(-1), 'seed'],
    ['tensor ragged', () => tensor([[1], [2, 3]]), 'data'],
    ['tensor options', () => tensor([1], 'float32' as unknown as tf.TensorOptions), 'options'],
    ['tidy async', () => tf.tidy((async () => 1) as unknown as () => number), 'tidy(fn)'],
    ['backward of a vector without gradient', () => vectorOutput.backward(), 'backward(gradient)'],
  ];
  for (const [what, fn, parameter] of cases) {
    it(what, () => {
      const { calls, error } = nativeCalls(fn);
      assert.ok(error instanceof ArgumentError, `${what}: expected an ArgumentError, got ${error}`);
      assert.equal(error.parameter, parameter);
      assert.match(error.message, /^Expected .+ for .+ but received .+/);
      assert.equal(calls, 0, `${what}: ${calls} native op calls before the check`);
    });
  }

  it('messages name the parameter, the expectation and what was given', () => {
    const { error } = nativeCalls(() => tf.conv2d(x, w, null, { stride: 1.5 }));
    assert.equal((error as Error).message, 'Expected an integer for stride but received 1.5 (number)');
    const { error: e2 } = nativeCalls(() => tf.zeros([2], { device: 'cuda' }));
    assert.match((e2 as Error).message, /CUDA is not available/);
  });
});

describe('errors: disposed tensors give DisposedError', () => {
  const gone = () => {
    const t = tf.ones([2, 2]);
    t.dispose();
    return t;
  };
  // [what, setup (not counted) returning the call to check]
  const cases: [string, () => () => unknown][] = [
    ['method', () => {
      const g = gone();
      return () => g.add(1);
    }],
    ['argument', () => {
      const [a, g] = [tf.ones([2, 2]), gone()];
      return () => a.add(g);
    }],
    ['in a list', () => {
      const [a, g] = [tf.ones([2, 2]), gone()];
      return () => tf.cat([a, g]);
    }],
    ['in options', () => {
      const [a, g] = [tf.ones([2, 2]), gone()];
      return () => tf.batchNorm(a, null, null, { weight: g, training: true });
    }],
    ['reading data', () => {
      const g = gone();
      return () => g.data();
    }],
    ['item', () => {
      const g = gone();
      return () => g.item();
    }],
    ['meta', () => {
      const g = gone();
      return () => g.dtype;
    }],
    ['autograd grad()', () => {
      const [s, g] = [tf.ones([1], { requiresGrad: true }).sum(), gone()];
      return () => tf.grad(s, g);
    }],
    ['backward(gradient)', () => {
      const [y, g] = [tf.ones([2, 2], { requiresGrad: true }).mul(2), gone()];
      return () => y.backward(g);
    }],
    ['callOp', () => {
      const g = gone();
      return () => tf.callOp('aten::relu', '', g);
    }],
  ];
  for (const [what, setup] of cases) {
    it(what, () => {
      const { calls, error } = nativeCalls(setup());
      assert.ok(error instanceof DisposedError, `${what}: got ${error}`);
      assert.ok(error instanceof TorchfaceError);
      assert.equal(calls, 0);
    });
  }
  it('a traced program refuses a disposed input', async () => {
    const f = tf.trace((a) => a.mul(2), [tf.ones([2])]);
    await assert.rejects(async () => f(gone()), DisposedError);
  });
});

describe('errors: CUDA without a GPU', () => {
  before(function () {
    if (tf.cuda.isAvailable()) this.skip();
  });
  it('every way to reach CUDA is a clean error; the process lives on', () => {
    const x = tf.ones([2]);
    for (const fn of [
      () => tensor([1, 2], { device: 'cuda' }),
      () => tf.zeros([2], { device: 'cuda:0' }),
      () => tf.randn([2], { device: 'cuda' }),
      () => x.cuda(),
      () => x.to({ device: 'cuda' }),
      () => tf.zerosLike(x, { device: 'cuda' }),
      () => tf.checkDevice('cuda'),
    ]) {
      assert.throws(fn, (e: Error) => e instanceof ArgumentError && /CUDA is not available/.test(e.message));
    }
    assert.throws(() => tf.callOp('aten::empty', 'memory_format', [2], null, null, 'cuda'), TorchError);
    assert.equal(tf.cuda.deviceCount(), 0);
    tf.cuda.synchronize(); // a no-op without CUDA
    assert.deepEqual(x.add(1).toArray(), [2, 2]);
  });
});

describe('errors: process survival', () => {
  it('a bad device string in a raw callOp no longer aborts the process (fresh process)', function () {
    this.timeout(60000);
    const r = runChild<{ name: string; op: string }>(`
      try { tf.callOp('aten::to', 'device', tf.ones([1]), 'garbage', 6, false, false); report({ name: 'none' }); }
      catch (e) { report({ name: e.constructor.name, op: e.op }); }
    `);
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.value, { name: 'TorchError', op: 'aten::to.device' });
  });

  it('fuzz: 12,000 seeded random calls survive and throw only torchface errors', function () {
    this.timeout(120000);
    const seed = Number(process.env.TORCHFACE_FUZZ_SEED ?? 20240611);
    const calls = 12000;
    const script = path.join(DIST_HELPERS, 'fuzz.js');
    const r = spawnSync(process.execPath, [script, String(seed), String(calls)], { encoding: 'utf8', timeout: 110000, env: { ...process.env, OMP_NUM_THREADS: '1' } });
    assert.equal(r.signal, null, `the fuzz process was killed by ${r.signal} (reproduce: node ${script} ${seed} ${calls})\n${r.stderr.slice(-2000)}`);
    assert.equal(r.status, 0, `fuzz process exited with ${r.status}\n${r.stderr.slice(-2000)}`);
    const report = JSON.parse(r.stdout) as FuzzReport;
    assert.equal(report.calls, calls);
    assert.deepEqual(report.nonErrors, [], 'every thrown value is an Error');
    assert.deepEqual(report.foreign, [], `only TorchfaceErrors (reproduce: node ${script} ${seed} ${calls})`);
    const thrown = Object.values(report.thrown).reduce((a, b) => a + b, 0);
    assert.equal(report.returned + thrown, calls);
    // the run exercised all three kinds and also valid calls
    for (const k of ['ArgumentError', 'TorchError', 'DisposedError']) assert.ok(report.thrown[k] > 100, `${k}: ${report.thrown[k]}`);
    assert.ok(report.returned > 1000);
    if (report.ms > 20000) console.warn(`      (fuzz took ${report.ms} ms)`);
  });
});
