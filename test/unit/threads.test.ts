// The thread policy of traced replays (lib/core/threads.ts) and FaceModel's
// scheduling knobs: the chooser's decisions on given timings (no timing is
// measured here: speed is the bench's business, scripts/bench/cases/concurrency.ts),
// fixed counts overriding it, replays at any count giving the same values, and
// maxWaitMs letting calls that arrive close together share a forward pass.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '../../lib';
import { ArgumentError } from '../../lib';
import { ThreadChooser, cpuJob, threadMode } from '../../lib/core/threads';
import { assertClose, values } from '../helpers/util';
import { packageRoot } from '../../lib/util/paths';

/** Drives a chooser with a cost per thread count; returns the counts it picked. */
function drive(c: ThreadChooser, share: number, cost: (threads: number) => number, runs: number): number[] {
  const picked: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = c.pick(share);
    picked.push(t);
    c.record(t, cost(t));
  }
  return picked;
}

describe('thread policy (lib/core/threads.ts)', () => {
  // Other test files may have fixed a count (setNumThreads(n)): run these under 'auto' and restore theirs.
  let saved: number | 'auto' = 'auto';
  beforeEach(() => {
    saved = threadMode();
    tf.setNumThreads('auto');
  });
  afterEach(() => tf.setNumThreads(saved));

  it('times the share, then 1 thread (more only if it looks faster), then keeps the faster one, either way', () => {
    const fastTwo = drive(new ThreadChooser(), 2, (t) => (t === 1 ? 20 : 11), 200);
    // 2 threads: warm-up + 3 timed; 1 thread: warm-up + 1 timed (slower: no more)
    assert.deepEqual(fastTwo.slice(0, 7), [2, 2, 2, 2, 1, 1, 2]);
    const after = fastTwo.slice(6);
    assert.ok(after.filter((t) => t === 2).length >= after.length - 6, `picked 1 thread ${after.filter((t) => t === 1).length} times of ${after.length}`);
    const slowTwoAll = drive(new ThreadChooser(), 2, (t) => (t === 1 ? 10 : 40), 200);
    assert.deepEqual(slowTwoAll.slice(0, 8), [2, 2, 2, 2, 1, 1, 1, 1]);
    const slowTwo = slowTwoAll.slice(8);
    assert.ok(slowTwo.filter((t) => t === 1).length >= slowTwo.length - 6);
  });

  it('re-checks the other count ever more rarely while it stays slower, and switches when the load changes', () => {
    const c = new ThreadChooser();
    let busyMachine = true;
    const cost = (t: number) => (busyMachine ? (t === 1 ? 10 : 40) : t === 1 ? 20 : 11);
    const first = drive(c, 2, cost, 1000).slice(8);
    const checks = first.filter((t) => t === 2).length;
    assert.ok(checks >= 3 && checks <= 8, `${checks} re-checks in ${first.length} replays (16, 32, 64, ... apart)`);
    busyMachine = false;
    // The median of the last 5 runs moves after 3 re-checks at the new speed.
    const later = drive(c, 2, cost, 6000);
    assert.equal(later[later.length - 1], 2);
    assert.deepEqual(c.measured(), { 1: 20, 2: 11 });
  });

  it('a share of one core, or a fixed count, is used as it is', () => {
    const c = new ThreadChooser();
    assert.equal(c.pick(1), 1);
    tf.setNumThreads(3);
    assert.equal(threadMode(), 3);
    assert.equal(c.pick(2), 3);
    tf.setNumThreads('auto');
    assert.equal(threadMode(), 'auto');
    assert.throws(() => tf.setNumThreads(0), ArgumentError);
    assert.throws(() => tf.setNumThreads(1.5), ArgumentError);
  });

  it('each running job takes a core from the next one\'s share, and only a job that ran alone counts as timed', () => {
    // Jobs that ran alone bring the recent-overlap share down (earlier tests ran concurrent work).
    for (let i = 0; i < 40; i++) cpuJob().end();
    const a = cpuJob();
    const b = cpuJob();
    assert.equal(b.share, Math.max(1, a.share - 1));
    assert.equal(b.end(), false);
    assert.equal(a.end(), false); // b started while a ran
    const c = cpuJob();
    assert.equal(c.share, a.share);
    assert.equal(c.end(), true);
  });

  it('under steady concurrency (most recent jobs overlapped) every job gets one thread', () => {
    for (let i = 0; i < 40; i++) {
      const x = cpuJob();
      const y = cpuJob();
      y.end();
      x.end();
    }
    const busy = cpuJob();
    assert.equal(busy.share, 1);
    busy.end();
    for (let i = 0; i < 40; i++) cpuJob().end();
    const alone = cpuJob();
    assert.equal(alone.share, os.availableParallelism());
    alone.end();
  });

  it('a traced program gives the same values at 1 thread, 2 threads and auto', async () => {
    tf.manualSeed(3);
    const w = tf.randn([16, 3, 3, 3]);
    const x = tf.randn([4, 3, 32, 32]);
    const f = tf.trace((v) => tf.relu(tf.conv2d(v, w, null, { padding: 1 })).sum([2, 3]), [x]);
    const runs: Float32Array[] = [];
    for (const t of [1, 2, 'auto', 'auto', 'auto'] as const) {
      f.threads = t;
      const [y] = await f(x);
      runs.push(Float32Array.from(values(y)));
      y.dispose();
    }
    for (const r of runs.slice(1)) assertClose(r, runs[0], 1e-5, 1e-5);
    const [one] = await f.runWith({ threads: 1 }, x);
    assertClose(Float32Array.from(values(one)), runs[0], 1e-5, 1e-5);
    one.dispose();
    await assert.rejects(f.runWith({ threads: 0 }, x), ArgumentError);
    // auto timed its replays (the first at each count is a warm-up).
    assert.ok(Object.keys(f.threadTimes()).length === 1);
    tf.dispose([w, x]);
  });
});

describe('FaceModel scheduling options', () => {
  const fixture = () => {
    const j = JSON.parse(fs.readFileSync(path.join(packageRoot, 'test', 'fixtures', 'faceapi-descriptors.json'), 'utf8')) as { inputs: { shape: number[]; rgbBase64: string }[] };
    return j.inputs.filter((e) => e.shape[0] === 150 && e.shape[1] === 150).map((e) => ({ data: new Uint8Array(Buffer.from(e.rgbBase64, 'base64')), width: 150, height: 150, channels: 3 as const }));
  };

  it('maxWaitMs: calls arriving a few ms apart share one forward pass, with the same descriptors; threads and maxWaitMs are validated', async () => {
    const crops = fixture();
    const model = await tf.FaceModel.pretrained();
    const alone = await model.embed(crops[0]);
    const m = model as unknown as { forward: (...a: unknown[]) => Promise<unknown> };
    const forward = m.forward;
    let passes = 0;
    m.forward = (...a: unknown[]) => (passes++, forward.apply(model, a));
    model.maxWaitMs = 200;
    const first = model.embed(crops[0]);
    await new Promise((r) => setTimeout(r, 5));
    const second = model.embed(crops[1]);
    const [a] = await Promise.all([first, second]);
    assert.equal(passes, 1, 'two calls 5 ms apart with maxWaitMs 200 took one forward pass');
    assertClose(a, alone, 1e-5, 1e-4);
    model.maxWaitMs = 0;
    passes = 0;
    await model.embed(crops[0]);
    await model.embed(crops[1]);
    assert.equal(passes, 2);
    m.forward = forward;
    model.threads = 1;
    assertClose(await model.embed(crops[0]), alone, 1e-5, 1e-4);
    model.threads = 'auto';
    assert.equal(model.threads, 'auto');
    assert.throws(() => (model.threads = 0), ArgumentError);
    assert.throws(() => (model.threads = 'all' as never), ArgumentError);
    assert.throws(() => (model.maxWaitMs = -1), ArgumentError);
    assert.throws(() => (model.maxWaitMs = Number.NaN), ArgumentError);
    model.dispose();
  });
});
