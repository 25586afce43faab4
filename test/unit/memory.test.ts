// Memory management: dispose, tidy (incl. nesting and async misuse), keep,
// the live-handle counts of memory() after loops of ops, backward passes and
// traced program runs, and the FinalizationRegistry safety net (in a child
// process run with --expose-gc, where gc() can be forced).
//
// In-process counts are compared within synchronous code only: Node runs the
// finalizers of collected tensors (other test files leave some) as separate
// tasks, never in the middle of synchronous code.
import { strict as assert } from 'assert';
import * as tf from '../../lib';
import { ArgumentError, DisposedError, Tensor, tensor } from '../../lib';
import { runChild } from '../helpers/child';
import { singleThreaded } from '../helpers/util';
import { seededRandom, shuffle } from '../../lib/util/random';

const live = () => tf.memory().tensors;

describe('memory: dispose', () => {
  it('releases the handle and its bytes at once; is idempotent', () => {
    const before = tf.memory();
    const t = tf.zeros([1000]);
    const during = tf.memory();
    assert.equal(during.tensors, before.tensors + 1);
    assert.equal(during.bytes, before.bytes + 4000);
    assert.ok(during.peakBytes >= during.bytes);
    t.dispose();
    t.dispose();
    assert.equal(t.isDisposed, true);
    assert.deepEqual([tf.memory().tensors, tf.memory().bytes], [before.tensors, before.bytes]);
  });

  it('a disposed tensor throws DisposedError on use, as argument, and in toString says so', () => {
    const t = tensor([1, 2]);
    const other = tensor([3, 4]);
    t.dispose();
    assert.throws(() => t.data(), DisposedError);
    assert.throws(() => t.shape, DisposedError);
    assert.throws(() => t.add(1), DisposedError);
    assert.throws(() => other.add(t), DisposedError);
    assert.throws(() => tf.cat([other, t]), DisposedError);
    assert.throws(() => t.backward(), DisposedError);
    assert.equal(String(t), 'Tensor(disposed)');
    assert.deepEqual(other.add(1).toArray(), [4, 5]);
  });

  it('dispose(...) takes tensors inside arrays and objects', () => {
    const before = live();
    const a = tf.ones([2]);
    const b = tf.ones([2]);
    const c = tf.ones([2]);
    tf.dispose([a, { b, nested: [c] }], 'not a tensor', null);
    assert.ok(a.isDisposed && b.isDisposed && c.isDisposed);
    assert.equal(live(), before);
  });

  it('views and grads are own handles: disposing a view leaves the base usable', () => {
    const base = tf.arange(6, undefined, 1, { dtype: 'float32' });
    const v = base.view([2, 3]);
    v.dispose();
    assert.deepEqual(base.toArray(), [0, 1, 2, 3, 4, 5]);
    const p = tensor([1, 2], { requiresGrad: true });
    p.mul(p).sum().backward();
    const g1 = p.grad!;
    g1.dispose();
    assert.deepEqual(p.grad!.toArray(), [2, 4]); // the gradient lives on in the leaf
  });
});

describe('memory: bytes count each storage once', () => {
  it('views, aliases and .grad read twice add handles but no bytes', () => {
    const before = tf.memory();
    const base = tf.zeros([1000]); // 4000 bytes
    const views = [base.view([10, 100]), base.narrow(0, 0, 10), base.reshape([100, 10])];
    const alias = base.detach(); // the same storage, another handle
    let during = tf.memory();
    assert.equal(during.tensors, before.tensors + 5);
    assert.equal(during.bytes, before.bytes + 4000);
    const p = tf.zeros([500], { requiresGrad: true }); // 2000 bytes
    tf.tidy(() => p.mul(2).sum().backward()); // the gradient: 2000 bytes more, once read
    const g1 = p.grad!;
    const g2 = p.grad!;
    during = tf.memory();
    assert.equal(during.bytes, before.bytes + 4000 + 2000 + 2000);
    tf.dispose([views, alias, g1]);
    assert.equal(tf.memory().bytes, before.bytes + 4000 + 2000 + 2000); // still held by base and g2
    base.dispose();
    g2.dispose();
    assert.equal(tf.memory().bytes, before.bytes + 2000);
    p.dispose();
    assert.deepEqual([tf.memory().tensors, tf.memory().bytes], [before.tensors, before.bytes]);
  });
});

describe('memory: a tensor given another storage (setData_, as Module.to does)', () => {
  it('moves its bytes with it: the old storage is no longer counted, the new one once', () => {
    const before = tf.memory();
    const p = tf.zeros([1000]);
    const q = tf.zeros([10]);
    assert.equal(tf.memory().bytes - before.bytes, 4040);
    p.setData_(q);
    assert.equal(tf.memory().bytes - before.bytes, 40); // p's old storage is freed; p and q share q's
    // A new storage may now take the freed one's address: it is counted.
    const fresh = Array.from({ length: 50 }, () => tf.zeros([1000]));
    assert.equal(tf.memory().bytes - before.bytes, 40 + 50 * 4000);
    tf.dispose([p, q, fresh]);
    assert.deepEqual([tf.memory().tensors, tf.memory().bytes], [before.tensors, before.bytes]);
  });
});

describe('memory: the storage table under churn', () => {
  it('5,000 tensors with views and aliases, released in a shuffled order: counts and bytes return to the baseline', () => {
    const before = tf.memory();
    const held: tf.Tensor[] = [];
    let bytes = 0;
    for (let i = 0; i < 5000; i++) {
      const t = tf.zeros([1 + (i % 7)]);
      bytes += 4 * (1 + (i % 7));
      held.push(t);
      if (i % 3 === 0) held.push(t.view([-1]));
      if (i % 5 === 0) held.push(t.detach());
    }
    assert.equal(tf.memory().bytes - before.bytes, bytes);
    const order = shuffle(held, seededRandom(7));
    for (let k = 0; k < order.length; k++) {
      order[k].dispose();
      if (k === order.length >> 1) assert.ok(tf.memory().bytes > before.bytes);
    }
    assert.deepEqual([tf.memory().tensors, tf.memory().bytes], [before.tensors, before.bytes]);
  });
});

describe('memory: tidy', () => {
  it('disposes what fn made, keeps what it returns (tensor, array, object, Map)', () => {
    const before = live();
    let inner: Tensor | undefined;
    const r = tf.tidy(() => {
      inner = tf.ones([3]);
      return inner.mul(2);
    });
    assert.equal(inner!.isDisposed, true);
    assert.deepEqual(r.toArray(), [2, 2, 2]);
    assert.equal(live(), before + 1);
    r.dispose();
    const [a, { b }, m] = tf.tidy(() => {
      const x = tf.ones([2]);
      return [x.add(1), { b: x.add(2) }, new Map([['c', x.add(3)]])] as const;
    });
    assert.deepEqual(a.toArray(), [2, 2]);
    assert.deepEqual(b.toArray(), [3, 3]);
    assert.deepEqual(m.get('c')!.toArray(), [4, 4]);
    assert.equal(live(), before + 3);
    tf.dispose(a, b, m.get('c'));
    assert.equal(live(), before);
    assert.equal(
      tf.tidy(() => tf.ones([2]).sum().item()),
      2,
    );
    assert.equal(live(), before);
  });

  it('nests: an inner result belongs to the outer scope', () => {
    const before = live();
    let innerResult: Tensor | undefined;
    let outerTemp: Tensor | undefined;
    const out = tf.tidy(() => {
      outerTemp = tf.ones([2]);
      innerResult = tf.tidy(() => outerTemp!.add(tf.ones([2])));
      assert.equal(innerResult.isDisposed, false);
      const keepMe = innerResult.mul(3);
      return keepMe;
    });
    assert.equal(outerTemp!.isDisposed, true);
    assert.equal(innerResult!.isDisposed, true); // not returned by the outer fn
    assert.deepEqual(out.toArray(), [6, 6]);
    out.dispose();
    assert.equal(live(), before);
  });

  it('keep() lets a tensor outlive its scopes; tensors made before the scope are untouched', () => {
    const before = live();
    const outside = tf.ones([2]);
    let kept: Tensor | undefined;
    tf.tidy(() => {
      outside.add(1);
      kept = tf.keep(tf.zeros([2]));
      tf.tidy(() => tf.keep(tf.ones([1])).dispose());
    });
    assert.equal(outside.isDisposed, false);
    assert.equal(kept!.isDisposed, false);
    tf.dispose(outside, kept);
    assert.equal(live(), before);
  });

  it('disposes on a throw and rethrows', () => {
    const before = live();
    let t: Tensor | undefined;
    assert.throws(
      () =>
        tf.tidy(() => {
          t = tf.ones([2]);
          tf.ones([2]).add(tf.ones([3])); // a TorchError
        }),
      tf.TorchError,
    );
    assert.equal(t!.isDisposed, true);
    assert.equal(live(), before);
  });

  it('throws ArgumentError for an async fn, disposing what it made synchronously', async () => {
    const before = live();
    let t: Tensor | undefined;
    const fn = async () => {
      t = tf.ones([2]);
      await Promise.resolve();
      return 1;
    };
    assert.throws(() => tf.tidy(fn as unknown as () => number), ArgumentError);
    assert.equal(t!.isDisposed, true);
    assert.equal(live(), before);
    assert.throws(() => tf.tidy((() => Promise.resolve(tf.ones([1]))) as unknown as () => Tensor), /synchronous/);
  });
});

describe('memory: returns to the baseline', () => {
  singleThreaded();
  it('after 500 iterations of ops in tidy, incl. multi-output ops and data reads', () => {
    const x = tf.randn([8, 8]);
    const before = tf.memory();
    for (let i = 0; i < 500; i++) {
      tf.tidy(() => {
        const y = x.matmul(x).relu().add(1).softmax(1);
        y.max(1).values.sum();
        y.topk(2).indices.data();
        y.split(4, 0);
        tf.normalize(y); // disposes its own temporaries
        y.to('float16').data(); // via a float32 temporary
        return y.mean().item();
      });
    }
    const after = tf.memory();
    assert.equal(after.tensors, before.tensors);
    assert.equal(after.bytes, before.bytes);
    x.dispose();
  });

  it('after 200 forward + backward passes (grads in the leaves, not in handles)', () => {
    const w = tf.randn([16, 3, 3, 3], { requiresGrad: true });
    const input = tf.randn([2, 3, 8, 8]);
    const before = tf.memory();
    for (let i = 0; i < 200; i++) {
      tf.tidy(() => {
        const loss = tf.conv2d(input, w, null, { padding: 1 }).relu().pow(2).mean();
        loss.backward();
        const g = w.grad!;
        g.zero_();
      });
    }
    assert.equal(tf.memory().tensors, before.tensors);
    assert.equal(tf.memory().bytes, before.bytes);
    tf.dispose(w, input);
  });

  it('after traced program runs, in a fresh process', function () {
    this.timeout(60000);
    const r = runChild<{ before: number; during: number; after: number; afterTrace: number }>(`
      const x = tf.randn([1, 3, 14, 14]);
      const w = tf.randn([16, 3, 5, 5]);
      const before = tf.memory().tensors;
      const f = tf.trace((a) => tf.conv2d(a, w).relu().mean([2, 3]), [x]);
      const afterTrace = tf.memory().tensors;
      const results = [];
      for (let i = 0; i < 50; i++) results.push(...(await Promise.all([f(x), f(x), f(x)])));
      const during = tf.memory().tensors;
      for (const rs of results) tf.dispose(rs);
      report({ before, afterTrace, during, after: tf.memory().tensors });
    `);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.value.afterTrace, r.value.before, 'tracing leaves no handles behind');
    assert.equal(r.value.during, r.value.before + 150);
    assert.equal(r.value.after, r.value.before);
  });
});

describe('memory: the finalizer safety net', () => {
  it('tensors nobody disposed are released after garbage collection', function () {
    this.timeout(60000);
    const r = runChild<{ made: number; bytesMade: number; after: number; bytesAfter: number; kept: number }>(
      `
      const kept = tf.ones([10]);
      const base = tf.memory().tensors;
      (() => { for (let i = 0; i < 2000; i++) tf.randn([100]).add(1); })();
      const made = tf.memory().tensors - base;
      const bytesMade = tf.memory().bytes;
      for (let i = 0; i < 10; i++) {
        global.gc();
        await new Promise((r) => setImmediate(r));
        if (tf.memory().tensors === base) break;
      }
      report({ made, bytesMade, after: tf.memory().tensors - base, bytesAfter: tf.memory().bytes, kept: kept.sum().item() });
    `,
      ['--expose-gc'],
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.value.made, 4000);
    assert.ok(r.value.bytesMade >= 4000 * 400);
    assert.equal(r.value.after, 0, `${r.value.after} handles left after gc`);
    assert.equal(r.value.bytesAfter, 40); // only the tensor still referenced
    assert.equal(r.value.kept, 10);
  });

  it('a collected tensor that was disposed is not released twice', function () {
    this.timeout(60000);
    const r = runChild<{ after: number }>(
      `
      const base = tf.memory().tensors;
      (() => { for (let i = 0; i < 500; i++) tf.ones([4]).dispose(); })();
      const alive = tf.ones([4]);
      for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
      report({ after: tf.memory().tensors - base, sum: alive.sum().item() });
    `,
      ['--expose-gc'],
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.value.after, 1);
  });
});
