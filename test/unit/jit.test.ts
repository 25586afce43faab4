// Traced programs: a small conv net recorded once and replayed on a worker
// thread must equal the eager computation, for new input values, concurrently,
// per input shape via traced(); failures reject the promise; and the addon
// loads and works in worker_threads (it is context-aware).
import { strict as assert } from 'assert';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as tf from '../../lib';
import { ArgumentError, Tensor, TorchError, TorchfaceError } from '../../lib';
import { assertClose, values } from '../helpers/util';
import { packageRoot } from '../../lib/util/paths';
import { settledTensorCount } from '../helpers/util';

// A small conv net with explicit weights: conv-relu-pool-conv-bn(eval)-relu-gap-linear-softmax.
function makeNet() {
  tf.manualSeed(7);
  const w1 = tf.randn([8, 3, 5, 5]).mul(0.2);
  const b1 = tf.randn([8]).mul(0.1);
  const w2 = tf.randn([16, 8, 3, 3]).mul(0.2);
  const mean = tf.randn([16]).mul(0.1);
  const variance = tf.rand([16]).add(0.5);
  const wl = tf.randn([10, 16]).mul(0.3);
  const bl = tf.randn([10]);
  const forward = (x: Tensor): Tensor => {
    let h = tf.conv2d(x, w1, b1, { padding: 2 }).relu();
    h = tf.maxPool2d(h, 2);
    h = tf.conv2d(h, w2, null, { padding: 'same' });
    h = tf.batchNorm(h, mean, variance, { training: false }).relu();
    h = tf.adaptiveAvgPool2d(h, 1).flatten(1);
    return tf.linear(h, wl, bl).softmax(1);
  };
  return { forward, weights: [w1, b1, w2, mean, variance, wl, bl] };
}

describe('jit: trace and replay', () => {
  const net = makeNet();
  after(() => tf.dispose(net.weights));

  it('replay equals the eager forward, also for new input values', async () => {
    const example = tf.randn([2, 3, 14, 14]);
    const f = tf.trace(net.forward, [example]);
    const info = f.info();
    assert.ok(info.instructions >= 8, `${info.instructions} instructions`);
    assert.ok(info.ops.includes('aten::conv2d'), info.ops.join(' '));
    assert.ok(info.ops.includes('aten::batch_norm'));
    for (const x of [example, tf.randn([2, 3, 14, 14]), tf.randn([2, 3, 14, 14]).mul(3)]) {
      const [out] = await f(x);
      const eager = tf.noGrad(() => net.forward(x));
      assert.deepEqual(out.shape, [2, 10]);
      assert.equal(out.requiresGrad, false);
      assertClose(out, values(eager), 1e-6, 1e-5);
      assertClose(out.sum(1), [1, 1], 1e-5);
    }
    // the example run and the replay do not share results: a different input gives a different output
    const [a] = await f(tf.zeros([2, 3, 14, 14]));
    const [b] = await f(tf.ones([2, 3, 14, 14]));
    assert.ok(Math.max(...values(a.sub(b).abs())) > 1e-4);
  });

  it('ops that return tensor lists (split, chunk) stay connected to the input in the replay', async () => {
    const fn = (x: tf.Tensor) => [tf.cat(tf.split(x, 1, 0).map((t) => t.mul(2)), 0), tf.cat(tf.chunk(x, 3, 1).reverse(), 1).add(1)];
    const f = tf.trace(fn, [tf.zeros([2, 3])]);
    const x = tf.arange(6).reshape([2, 3]).to('float32');
    const ys = await f(x);
    const eager = tf.noGrad(() => fn(x));
    ys.forEach((y, i) => assert.deepEqual(Array.from(y.data() as Float32Array), Array.from(eager[i].data() as Float32Array)));
  });

  it('multiple inputs and outputs, constants and factories inside the function', async () => {
    const fn = (x: Tensor, y: Tensor): Tensor[] => {
      const s = x.add(y).mul(tf.ones([3]).mul(2));
      return [s, s.sum(), x.matmul(y.t())];
    };
    const [x, y] = [tf.randn([4, 3]), tf.randn([4, 3])];
    const f = tf.trace(fn, [x, y]);
    const [x2, y2] = [tf.randn([4, 3]), tf.randn([4, 3])];
    const outs = await f(x2, y2);
    const eager = fn(x2, y2);
    assert.equal(outs.length, 3);
    outs.forEach((o, i) => assertClose(o, values(eager[i]), 1e-5, 1e-5, `output ${i}`));
    // an output that is an input is passed through
    const id = tf.trace((t: Tensor) => t, [x]);
    assert.deepEqual(values((await id(x2))[0]), values(x2));
  });

  it('intermediates dropped after their last use (Program::dropAfter) leave views, in-place results and outputs intact', async () => {
    const fn = (x: Tensor): Tensor[] => {
      const a = x.mul(2);
      const v = a.view([-1]); // a's storage lives on in v after a's last use below
      const b = a.sub(1);
      tf.mul_(b, 3); // in place: b's slot is written again
      const c = b.mul(b);
      return [v.add(c.view([-1])), b, v];
    };
    const f = tf.trace(fn, [tf.randn([3, 4])]);
    const x = tf.randn([3, 4]);
    for (let i = 0; i < 3; i++) {
      const outs = await f(x);
      const eager = tf.noGrad(() => fn(x));
      outs.forEach((o, k) => assertClose(o, values(eager[k]), 1e-6, 1e-6, `replay ${i}, output ${k}`));
    }
  });

  it('runs several programs concurrently, each with its own result', async () => {
    const f = tf.trace(net.forward, [tf.randn([1, 3, 14, 14])]);
    const inputs = Array.from({ length: 12 }, () => tf.randn([1, 3, 14, 14]));
    const outs = await Promise.all(inputs.map((x) => f(x)));
    inputs.forEach((x, i) => assertClose(outs[i][0], values(tf.noGrad(() => net.forward(x))), 1e-6, 1e-5, `run ${i}`));
    // and two different programs at once
    const g = tf.trace((x: Tensor) => x.mul(2).sum(), [tf.ones([5])]);
    const [[p], [q]] = await Promise.all([f(inputs[0]), g(tf.ones([5]))]);
    assertClose(p, values(outs[0][0]), 1e-6);
    assert.equal(q.item(), 10);
  });

  it('keeps its inputs alive while running, even if the caller disposes them', async () => {
    const f = tf.trace((x: Tensor) => x.mul(3), [tf.ones([4])]);
    const x = tf.full([4], 2);
    const pending = f(x);
    x.dispose();
    const [out] = await pending;
    assert.deepEqual(out.toArray(), [6, 6, 6, 6]);
  });

  it('traced() keeps one trace per input shape and replays it', async () => {
    let tracings = 0;
    const fn = (x: Tensor): Tensor => {
      tracings++;
      return tf.adaptiveAvgPool2d(x.relu(), 2).flatten(1);
    };
    const f = tf.traced(fn);
    const a = tf.randn([1, 2, 8, 8]);
    const b = tf.randn([3, 2, 6, 10]);
    const [ra] = await f(a);
    const [rb] = await f(b);
    const [ra2] = await f(tf.randn([1, 2, 8, 8]));
    const [rb2] = await f(b);
    assert.equal(tracings, 2);
    assert.deepEqual(ra.shape, [1, 8]);
    assert.deepEqual(rb.shape, [3, 8]);
    assert.deepEqual(ra2.shape, [1, 8]);
    assertClose(rb2, values(rb), 1e-7);
    assertClose(ra, values(tf.adaptiveAvgPool2d(a.relu(), 2).flatten(1)), 1e-6);
    // a different dtype is a different signature
    await f(a.double());
    assert.equal(tracings, 3);
    // maxCached evicts the oldest
    let n = 0;
    const g = tf.traced(
      (x: Tensor) => {
        n++;
        return x.add(1);
      },
      { maxCached: 1 },
    );
    await g(tf.ones([1]));
    await g(tf.ones([2]));
    await g(tf.ones([1]));
    assert.equal(n, 3);
  });

  it('errors inside a program reject the promise with a TorchError; the program stays usable', async () => {
    const f = tf.trace((x: Tensor) => tf.conv2d(x, tf.ones([2, 3, 3, 3])).relu(), [tf.ones([1, 3, 5, 5])]);
    await assert.rejects(f(tf.ones([1, 4, 5, 5])), (e: Error) => e instanceof TorchError && e.op === 'aten::conv2d' && /channels/.test(e.message));
    await assert.rejects(f(tf.ones([1, 3, 2, 2])), TorchError); // kernel larger than the input
    await assert.rejects(f(), ArgumentError);
    await assert.rejects(f(tf.ones([1, 3, 5, 5]), tf.ones([1])), ArgumentError);
    await assert.rejects(f('x' as unknown as Tensor), ArgumentError);
    const [ok] = await f(tf.ones([1, 3, 5, 5]));
    assert.deepEqual(ok.shape, [1, 2, 3, 3]);
    assert.equal(ok.sum().item(), 2 * 9 * 27);
  });

  it('a failing or invalid trace is abandoned cleanly and tracing works afterwards', async () => {
    assert.throws(
      () =>
        tf.trace(() => {
          throw new Error('inside');
        }, [tf.ones([1])]),
      /inside/,
    );
    assert.throws(() => tf.trace(() => 'no tensor' as unknown as Tensor, [tf.ones([1])]), ArgumentError);
    assert.throws(() => tf.trace((x) => x.add(tf.ones([2, 2, 2])), [tf.ones([3])]), TorchError);
    assert.throws(
      () => tf.trace((x) => tf.trace((y) => y, [x]).info() && x, [tf.ones([1])]),
      (e: Error) => e instanceof TorchfaceError && /already/.test(e.message),
    );
    const f = tf.trace((x) => x.mul(5), [tf.ones([2])]);
    assert.deepEqual((await f(tf.ones([2])))[0].toArray(), [5, 5]);
    // traced() reports tracing failures as torchface errors
    await assert.rejects(
      tf.traced(() => {
        throw new Error('bad forward');
      })(tf.ones([1])),
      (e: Error) => e instanceof TorchfaceError && /bad forward/.test(e.message),
    );
  });
});

describe('jit: worker_threads', () => {
  it('loads torchface in two workers at once, each computing and posting back', async function () {
    this.timeout(60000);
    const lib = path.join(packageRoot, 'dist', 'lib');
    const code = `
      const { parentPort, workerData } = require('worker_threads');
      const tf = require(${JSON.stringify(lib)});
      const before = tf.memory().tensors;
      const x = tf.tensor(workerData.values, { shape: [2, 2] });
      const y = tf.conv2d(x.reshape([1, 1, 2, 2]), tf.ones([1, 1, 2, 2])).item();
      const f = tf.trace((t) => t.mul(workerData.k).sum(), [x]);
      f(x).then(([s]) => {
        parentPort.postMessage({ conv: y, traced: s.item(), sum: x.matmul(x).sum().item(), before, live: tf.memory().tensors, threads: tf.getNumThreads() });
      });
    `;
    const run = (values: number[], k: number) =>
      new Promise<{ conv: number; traced: number; sum: number; before: number; live: number }>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { values, k }, env: { ...process.env, OMP_NUM_THREADS: '1' } });
        w.once('message', (m) => {
          resolve(m);
          void w.terminate();
        });
        w.once('error', reject);
        w.once('exit', (c) => c !== 0 && c !== 1 && reject(new Error(`worker exited with ${c}`)));
      });
    const mainBefore = await settledTensorCount();
    const [r1, r2] = await Promise.all([run([1, 2, 3, 4], 2), run([0, 1, 1, 0], 10)]);
    assert.equal(r1.conv, 10);
    assert.equal(r1.traced, 20);
    assert.equal(r1.sum, 7 + 10 + 15 + 22); // [[7,10],[15,22]]
    assert.equal(r2.conv, 2);
    assert.equal(r2.traced, 20);
    assert.equal(r2.sum, 2);
    // each environment counts its own handles
    assert.equal(r1.before, 0);
    assert.ok(r1.live >= 3 && r1.live < 20, `worker handles: ${r1.live}`);
    assert.equal(await settledTensorCount(), mainBefore);
    // and the main thread still works
    assert.equal(tf.ones([2]).sum().item(), 2);
  });
});

describe('jit: one replay at a time per thread, and dynamic batching of face crops', function () {
  this.timeout(120_000);

  it('replays queued behind a running one compute on their inputs as they were when called; no tensor leaks', async () => {
    const x = tf.randn([128, 128]);
    const f = tf.trace((a) => tf.mm(a, a).sum(), [x]);
    const want = (await f(x))[0].item();
    const before = await settledTensorCount();
    const first = f(x); // runs at once
    const queued = [f(x), f(x), f(x)]; // wait behind it, on copies of x
    tf.noGrad(() => x.mul_(2));
    const got = await Promise.all([first, ...queued]);
    // The first read x on its worker thread while mul_ ran: only the queued ones are exact.
    for (const r of got.slice(1)) assert.ok(Math.abs(r[0].item() - want) <= 1e-4 * Math.abs(want), `${r[0].item()} vs ${want}`);
    tf.dispose(got);
    assert.equal(await settledTensorCount(), before);
    assert.throws(() => tf.setReplayConcurrency(0), ArgumentError);
  });

  it('sharedInputs: replays read their inputs in place (queued ones hold aliases, not copies); a change while one runs is refused, never mixed in', async () => {
    const x = tf.randn([256, 256]);
    const f = tf.trace((a) => tf.mm(a, a).sum(), [x], { sharedInputs: true });
    const want = (await f(x))[0].item();
    const before = await settledTensorCount();
    // Unchanged inputs: the same results, immediate or queued; the caller may drop its handle meanwhile.
    const y = x.clone();
    const runs = [f(x), f(x), f(y), f(y)];
    y.dispose();
    const got = await Promise.all(runs);
    for (const r of got) assert.ok(Math.abs(r[0].item() - want) <= 1e-4 * Math.abs(want));
    tf.dispose(got);
    // Changed while running or queued: every replay that read x refuses.
    const pending = [f(x), f(x), f(x)];
    tf.noGrad(() => x.mul_(2));
    const settled = await Promise.allSettled(pending);
    for (const r of settled) {
      assert.equal(r.status, 'rejected');
      assert.match(String((r as PromiseRejectedResult).reason.message), /an input changed while the program ran/);
    }
    assert.equal(await settledTensorCount(), before);
    // Not shared (the default): a queued replay computes on the values its input had when called (test above).
    x.dispose();
  });

  it('concurrent embed() calls are batched into few forward passes and give the sequential results', async () => {
    const fs = await import('fs');
    const fixture = JSON.parse(fs.readFileSync(path.join(packageRoot, 'test', 'fixtures', 'faceapi-descriptors.json'), 'utf8')) as { inputs: { shape: number[]; rgbBase64: string }[] };
    const crops = fixture.inputs.filter((e) => e.shape[0] === 150 && e.shape[1] === 150).map((e) => ({ data: new Uint8Array(Buffer.from(e.rgbBase64, 'base64')), width: 150, height: 150, channels: 3 as const }));
    const model = await tf.FaceModel.pretrained();
    const sequential: Float32Array[] = [];
    for (const c of crops) sequential.push(await model.embed(c));
    const m = model as unknown as { forward: (...a: unknown[]) => Promise<unknown> };
    const forward = m.forward;
    let passes = 0;
    m.forward = (...a: unknown[]) => (passes++, forward.apply(model, a));
    const many = [...crops, ...crops, ...crops];
    const concurrent = await Promise.all(many.map((c) => model.embed(c)));
    m.forward = forward;
    assert.ok(passes <= 3, `${many.length} concurrent calls took ${passes} forward passes`);
    concurrent.forEach((d, i) => assertClose(d, sequential[i % crops.length], 1e-5, 1e-4, `crop ${i}`));
    model.maxBatch = 4;
    assert.throws(() => (model.maxBatch = 0), ArgumentError);
    model.dispose();
  });
});
