// CUDA: availability queries everywhere; the GPU paths (round trips, conv
// forward/backward against the CPU, programs) only where a GPU is present.
import { strict as assert } from 'assert';
import * as tf from '../../lib';
import { needs } from '../helpers/peers';
import { cudaSmoke } from '../helpers/cuda-smoke';

describe('cuda: availability', () => {
  it('isAvailable() and deviceCount() agree', () => {
    const available = tf.cuda.isAvailable();
    const count = tf.cuda.deviceCount();
    assert.equal(typeof available, 'boolean');
    assert.ok(Number.isInteger(count) && count >= 0);
    assert.equal(available, count > 0);
    tf.cuda.synchronize(); // fine with or without a GPU
    if (!available) assert.throws(() => tf.zeros([1], { device: 'cuda' }), /CUDA is not available/);
  });
});

describe('cuda: GPU paths', () => {
  before(function () {
    needs(this, 'cuda');
  });

  it('tensors move to the GPU and back unchanged; factories create on the GPU', () => {
    const x = tf.randn([3, 4]);
    const g = x.cuda();
    assert.equal(g.device, 'cuda:0');
    assert.deepEqual(g.shape, [3, 4]);
    assert.deepEqual(Array.from(g.data() as Float32Array), Array.from(x.data() as Float32Array)); // data() copies to the CPU
    assert.equal(g.cpu().device, 'cpu');
    const z = tf.zeros([2], { device: 'cuda', dtype: 'float64' });
    assert.equal(z.device, 'cuda:0');
    assert.equal(z.dtype, 'float64');
    assert.throws(() => tf.zeros([1], { device: `cuda:${tf.cuda.deviceCount()}` as tf.Device }), tf.ArgumentError);
    assert.throws(() => x.add(g), tf.TorchError); // devices must match
  });

  it('conv forward/backward, round trips and programs match the CPU (scripts/cuda-smoke)', async function () {
    this.timeout(120000);
    const r = await cudaSmoke();
    for (const c of r.checks) assert.ok(c.ok, `${c.name}: ${c.maxAbsDiff} > ${c.tolerance}`);
    assert.equal(r.status, 'PASS');
  });
});
