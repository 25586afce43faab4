// Convolutions: the seed's shapes (1-D, 2-D, 3-D, two layers each) and the
// options (stride, padding incl. 'same', dilation, groups, transposes), every
// result compared elementwise with a naive JavaScript convolution in float64.
import { strict as assert } from 'assert';
import * as tf from '../../lib';
import { ArgumentError, Tensor, tensor } from '../../lib';
import { needs } from '../helpers/peers';
import { assertClose, randomValues, referenceConv, referenceConvTranspose, settledTensorCount, values } from '../helpers/util';

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
let seed = 100;
function rand(shape: number[]): { t: Tensor; v: number[] } {
  const v = randomValues(numel(shape), seed++);
  return { t: tensor(v, { shape, dtype: 'float64' }), v };
}

const convFn = [tf.conv1d, tf.conv2d, tf.conv3d];
const convTFn = [tf.convTranspose1d, tf.convTranspose2d, tf.convTranspose3d];

/** Runs conv with the given options and checks shape and values against the reference. */
function checkConv(xShape: number[], wShape: number[], o: { stride?: number[]; padding?: number[]; dilation?: number[]; groups?: number } = {}, withBias = true): Tensor {
  const nd = xShape.length - 2;
  const x = rand(xShape);
  const w = rand(wShape);
  const b = withBias ? rand([wShape[0]]) : null;
  const out = convFn[nd - 1](x.t, w.t, b?.t, o);
  const ref = referenceConv(x.v, xShape, w.v, wShape, b?.v ?? null, o);
  assert.deepEqual(out.shape, ref.shape);
  assertClose(out, ref.data, 1e-10, 1e-10, `conv${nd}d`);
  return out;
}

describe('conv: the seed shapes (NCHW), two layers', () => {
  it('2-D: 14x14x3 * 5x5x3 (16) -> 10x10x16, * 5x5x16 (32) -> 6x6x32', () => {
    const x = rand([1, 3, 14, 14]);
    const w1 = rand([16, 3, 5, 5]);
    const w2 = rand([32, 16, 5, 5]);
    const h = tf.conv2d(x.t, w1.t);
    assert.deepEqual(h.shape, [1, 16, 10, 10]);
    const r1 = referenceConv(x.v, [1, 3, 14, 14], w1.v, [16, 3, 5, 5], null);
    assertClose(h, r1.data, 1e-10, 1e-10);
    const y = tf.conv2d(h, w2.t, null, { padding: 1 });
    assert.deepEqual(y.shape, [1, 32, 8, 8]);
    const y2 = tf.conv2d(h, w2.t);
    // 10 - 5 + 1 = 6
    assert.deepEqual(y2.shape, [1, 32, 6, 6]);
    assertClose(y2, referenceConv(r1.data, r1.shape, w2.v, [32, 16, 5, 5], null).data, 1e-10, 1e-10);
  });

  it('1-D: length 14 * kernel 5 (16) -> 10x16, * kernel 5 (32) -> 6x32', () => {
    const x = rand([1, 1, 14]);
    const w1 = rand([16, 1, 5]);
    const w2 = rand([32, 16, 5]);
    const h = tf.conv1d(x.t, w1.t);
    assert.deepEqual(h.shape, [1, 16, 10]);
    const r1 = referenceConv(x.v, [1, 1, 14], w1.v, [16, 1, 5], null);
    assertClose(h, r1.data, 1e-10, 1e-10);
    const y = tf.conv1d(h, w2.t);
    assert.deepEqual(y.shape, [1, 32, 6]);
    assertClose(y, referenceConv(r1.data, r1.shape, w2.v, [32, 16, 5], null).data, 1e-10, 1e-10);
  });

  it('3-D: 14x14x14x1 * 5x5x5x1 (16) -> 10x10x10x16, * 5x5x5x16 (32) -> 6x6x6x32', function () {
    this.timeout(60000);
    const x = rand([1, 1, 14, 14, 14]);
    const w1 = rand([16, 1, 5, 5, 5]);
    const w2 = rand([32, 16, 5, 5, 5]);
    const b2 = rand([32]);
    const h = tf.conv3d(x.t, w1.t);
    assert.deepEqual(h.shape, [1, 16, 10, 10, 10]);
    const r1 = referenceConv(x.v, [1, 1, 14, 14, 14], w1.v, [16, 1, 5, 5, 5], null);
    assertClose(h, r1.data, 1e-10, 1e-10);
    const y = tf.conv3d(h, w2.t, b2.t);
    assert.deepEqual(y.shape, [1, 32, 6, 6, 6]);
    assertClose(y, referenceConv(r1.data, r1.shape, w2.v, [32, 16, 5, 5, 5], b2.v).data, 1e-10, 1e-10);
  });

  it('float32 gives the same numbers to float32 precision; a batch of 4 images works alike', () => {
    const x = rand([4, 3, 14, 14]);
    const w = rand([16, 3, 5, 5]);
    const y = tf.conv2d(x.t.float(), w.t.float());
    assert.equal(y.dtype, 'float32');
    assert.deepEqual(y.shape, [4, 16, 10, 10]);
    assertClose(y, referenceConv(x.v, [4, 3, 14, 14], w.v, [16, 3, 5, 5], null).data, 1e-4, 1e-4);
  });
});

describe('conv: options', () => {
  it('stride, padding, dilation, bias in 1-D, 2-D and 3-D', () => {
    checkConv([2, 3, 11], [4, 3, 3], { stride: [2], padding: [1], dilation: [2] });
    checkConv([2, 3, 9, 8], [4, 3, 3, 2], { stride: [2, 1], padding: [1, 2], dilation: [1, 2] });
    checkConv([1, 2, 6, 7, 5], [3, 2, 3, 2, 3], { stride: [1, 2, 1], padding: [1, 0, 2], dilation: [2, 1, 1] });
  });

  it('groups (incl. depthwise) in 1-D, 2-D and 3-D', () => {
    checkConv([1, 4, 10], [6, 2, 3], { groups: 2 });
    checkConv([2, 6, 7, 7], [6, 1, 3, 3], { groups: 6, padding: [1, 1] }); // depthwise
    checkConv([1, 4, 5, 5, 5], [8, 2, 2, 2, 2], { groups: 2, stride: [2, 2, 2] });
    assert.throws(() => tf.conv2d(tf.zeros([1, 4, 5, 5]), tf.zeros([6, 3, 3, 3]), null, { groups: 2 }), tf.TorchError);
  });

  it("padding 'same' keeps the size (odd and even kernels, with dilation) and 'valid' pads nothing", () => {
    // odd kernel: symmetric padding (k - 1) / 2
    const x = rand([1, 2, 9, 9]);
    const w = rand([3, 2, 3, 3]);
    const same = tf.conv2d(x.t, w.t, null, { padding: 'same' });
    assert.deepEqual(same.shape, [1, 3, 9, 9]);
    assertClose(same, values(tf.conv2d(x.t, w.t, null, { padding: 1 })), 1e-12);
    // even kernel 4: total padding 3, PyTorch puts 1 before and 2 after
    const w4 = rand([3, 2, 4, 4]);
    const same4 = tf.conv2d(x.t, w4.t, null, { padding: 'same' });
    assert.deepEqual(same4.shape, [1, 3, 9, 9]);
    const padded = tf.pad(x.t, [1, 2, 1, 2]);
    assertClose(same4, values(tf.conv2d(padded, w4.t)), 1e-12);
    // dilation 2 with kernel 3 in 1-D: total padding 4
    const x1 = rand([1, 1, 8]);
    const w1 = rand([2, 1, 3]);
    const s1 = tf.conv1d(x1.t, w1.t, null, { padding: 'same', dilation: 2 });
    assert.deepEqual(s1.shape, [1, 2, 8]);
    assertClose(s1, referenceConv(x1.v, [1, 1, 8], w1.v, [2, 1, 3], null, { padding: [2], dilation: [2] }).data, 1e-12);
    const s3 = tf.conv3d(rand([1, 1, 5, 6, 7]).t, rand([2, 1, 3, 2, 3]).t, null, { padding: 'same' });
    assert.deepEqual(s3.shape, [1, 2, 5, 6, 7]);
    assert.deepEqual(tf.conv2d(x.t, w.t, null, { padding: 'valid' }).shape, [1, 3, 7, 7]);
    assert.throws(() => tf.conv2d(x.t, w.t, null, { padding: 'same', stride: 2 }), tf.TorchError);
  });

  it('unbatched input (C, H, W) and argument errors', () => {
    const x = rand([3, 8, 8]);
    const w = rand([5, 3, 3, 3]);
    const y = tf.conv2d(x.t, w.t);
    assert.deepEqual(y.shape, [5, 6, 6]);
    assertClose(y, referenceConv(x.v, [1, 3, 8, 8], w.v, [5, 3, 3, 3], null).data, 1e-12);
    assert.throws(() => tf.conv2d(tf.zeros([8, 8]), w.t), ArgumentError);
    assert.throws(() => tf.conv2d(x.t, w.t, null, { stride: 1.5 }), ArgumentError);
    assert.throws(() => tf.conv2d(x.t, w.t, null, { groups: 0 }), tf.TorchError);
    assert.throws(() => tf.conv2d(x.t, tf.zeros([5, 4, 3, 3], { dtype: 'float64' })), tf.TorchError);
  });
});

describe('conv: the unboxed entry', () => {
  it('eager conv1d/2d/3d (the unboxed native.conv) equal the traced calls (the dispatcher path), with and without bias, strides, padding, dilation, groups', async () => {
    const cases: [1 | 2 | 3, number[], number[], tf.ConvOptions][] = [
      [1, [2, 4, 17], [6, 4, 3], { stride: 2, padding: 1 }],
      [2, [1, 4, 9, 11], [8, 2, 3, 3], { groups: 2, dilation: 2, padding: [1, 2] }],
      [2, [2, 3, 8, 8], [5, 3, 1, 1], {}],
      [3, [1, 2, 6, 7, 5], [4, 2, 3, 3, 3], { stride: [1, 2, 1], padding: 1 }],
    ];
    const f = { 1: tf.conv1d, 2: tf.conv2d, 3: tf.conv3d };
    const before = await settledTensorCount();
    for (const [nd, xs, ws, o] of cases) {
      for (const withBias of [false, true]) {
        const x = tf.randn(xs);
        const w = tf.randn(ws);
        const b = withBias ? tf.randn([ws[0]]) : null;
        const eager = f[nd](x, w, b, o);
        const [traced] = await tf.trace((p: Tensor) => f[nd](p, w, b, o), [x]).runWith({ threads: tf.getNumThreads() }, x); // the same thread count: the same summation order
        assert.deepEqual(eager.shape, traced.shape);
        assert.deepEqual(Array.from(eager.data() as Float32Array), Array.from(traced.data() as Float32Array), `conv${nd}d ${JSON.stringify(o)} bias ${withBias}`);
        tf.dispose(x, w, b, eager, traced);
      }
    }
    assert.equal(await settledTensorCount(), before, 'the unboxed conv left tensors behind');
    // Autograd through the unboxed entry: the weight's gradient is the sum of the input windows.
    const x = tf.ones([1, 1, 4, 4]);
    const w = tf.randn([1, 1, 3, 3], { requiresGrad: true });
    tf.conv2d(x, w).sum().backward();
    assertClose(w.grad!, new Array(9).fill(4), 0);
    // libtorch's refusal names the operator, as the generic path's does.
    assert.throws(() => tf.conv2d(tf.ones([1, 3, 5, 5]), tf.ones([4, 2, 3, 3])), (e: Error) => e instanceof tf.TorchError && /aten::conv2d/.test(e.message));
  });
});

describe('conv: transposed', () => {
  function checkT(xShape: number[], wShape: number[], o: { stride?: number[]; padding?: number[]; outputPadding?: number[]; dilation?: number[]; groups?: number } = {}): void {
    const nd = xShape.length - 2;
    const x = rand(xShape);
    const w = rand(wShape);
    const b = rand([wShape[1] * (o.groups ?? 1)]);
    const out = convTFn[nd - 1](x.t, w.t, b.t, o);
    const ref = referenceConvTranspose(x.v, xShape, w.v, wShape, b.v, o);
    assert.deepEqual(out.shape, ref.shape);
    assertClose(out, ref.data, 1e-10, 1e-10, `convTranspose${nd}d`);
  }

  it('1-D, 2-D, 3-D with stride, padding, outputPadding, dilation, groups', () => {
    checkT([2, 3, 5], [3, 4, 3]);
    checkT([1, 4, 6], [4, 2, 3], { stride: [2], padding: [1], outputPadding: [1], groups: 2 });
    checkT([1, 2, 4, 5], [2, 3, 3, 2], { stride: [2, 3], padding: [1, 0], outputPadding: [1, 2], dilation: [1, 2] });
    checkT([2, 2, 3, 3, 3], [2, 2, 2, 3, 2], { stride: [2, 1, 2], padding: [0, 1, 0], dilation: [2, 1, 1] });
  });

  it('undoes the shape of the seed conv: 6x6x32 -> 10x10x16 -> 14x14x3', () => {
    const y = tf.convTranspose2d(tf.randn([1, 32, 6, 6]), tf.randn([32, 16, 5, 5]));
    assert.deepEqual(y.shape, [1, 16, 10, 10]);
    assert.deepEqual(tf.convTranspose2d(y, tf.randn([16, 3, 5, 5])).shape, [1, 3, 14, 14]);
  });

  it('is the adjoint of conv: <convT(y), x> = <y, conv(x)>', () => {
    const x = rand([1, 3, 9, 9]);
    const w = rand([4, 3, 3, 3]);
    const o = { stride: [2, 2], padding: [1, 1] };
    const cx = tf.conv2d(x.t, w.t, null, o);
    const y = rand(cx.shape);
    const ty = tf.convTranspose2d(y.t, w.t, null, o);
    assert.deepEqual(ty.shape, [1, 3, 9, 9]);
    const lhs = ty.mul(x.t).sum().item();
    const rhs = cx.mul(y.t).sum().item();
    assertClose(lhs, rhs, 1e-10, 1e-10);
  });
});

// torchface::conv2d_onednn / pool2d_onednn (native/onednn.cc): oneDNN convolutions with fused
// post-ops on the blocked layout, against aten's conv2d / pooling on the same float32 data.
describe('oneDNN convolutions (onednnConv2d, blockedPool2d)', function () {
  before(function () {
    needs(this, 'onednn'); // a build without libdnnl-dev, or a CUDA libtorch
  });
  const maxDiff = (a: Tensor, b: Tensor) => tf.tidy(() => a.sub(b).abs().max().item() as number);

  it('toBlocked / fromBlocked round-trip, and every layout, stride, post-op and Winograd equals aten within float32 rounding', function () {
    const B = tf.onednnBlock();
    tf.tidy(() => {
      const x = tf.randn([2, 2 * B, 11, 9]);
      const blocked = tf.toBlocked(x);
      assert.deepEqual(blocked.shape, [2, 2, 11, 9, B]);
      assert.equal(maxDiff(tf.fromBlocked(blocked), x), 0);
      const w = tf.randn([2 * B, 2 * B, 3, 3]).mul(0.1);
      const b = tf.randn([2 * B]);
      for (const [stride, padding] of [[1, 1], [2, 0], [1, 0]]) {
        const ref = tf.conv2d(x, w, b, { stride, padding });
        const residual = tf.randn(ref.shape);
        for (const winograd of [false, true]) {
          const plain = tf.fromBlocked(tf.onednnConv2d(blocked, w, b, { stride, padding, winograd }));
          assert.ok(maxDiff(plain, ref) < 1e-4, `stride ${stride} padding ${padding} winograd ${winograd}: ${maxDiff(plain, ref)}`);
          const fused = tf.fromBlocked(tf.onednnConv2d(blocked, w, b, { stride, padding, winograd, activation: 'relu', residual: tf.toBlocked(residual) }));
          assert.ok(maxDiff(fused, tf.relu(ref.add(residual))) < 1e-4, `relu(conv + residual), stride ${stride} winograd ${winograd}`);
        }
        // NCHW and channels-last inputs, a channels-last output, no bias.
        const noBias = tf.conv2d(x, w, null, { stride, padding });
        const cl = tf.onednnConv2d(x.contiguous({ channelsLast: true }), w, null, { stride, padding, layout: 'channelsLast' });
        assert.deepEqual(cl.shape, noBias.shape);
        assert.ok(maxDiff(cl, noBias) < 1e-4);
        // NCHW with many channels to blocked: on this machine (AVX-512) oneDNN has only its reference
        // kernel for it, which is refused rather than run slowly; where it has a fast one, it must agree.
        try {
          assert.ok(maxDiff(tf.fromBlocked(tf.onednnConv2d(x, w, null, { stride, padding })), noBias) < 1e-4);
        } catch (e) {
          assert.match((e as Error).message, /reference kernel/);
        }
      }
      // Small maps: one image with at most 16 output pixels runs channels-last inside (reordered
      // there and back, the residual too), and Winograd is skipped below 4x4 maps.
      for (const [n, size, stride, padding] of [[1, 4, 1, 1], [1, 3, 1, 1], [1, 1, 1, 1], [1, 4, 2, 0], [1, 8, 2, 0], [2, 3, 1, 1]]) {
        const xs = tf.randn([n, 2 * B, size, size]);
        const ref = tf.conv2d(xs, w, b, { stride, padding });
        const residual = tf.randn(ref.shape);
        const out = tf.onednnConv2d(tf.toBlocked(xs), w, b, { stride, padding, winograd: true, activation: 'relu', residual: tf.toBlocked(residual) });
        assert.deepEqual(out.shape, [n, 2, ref.shape[2], ref.shape[3], B]);
        assert.ok(maxDiff(tf.fromBlocked(out), tf.relu(ref.add(residual))) < 1e-4, `batch ${n}, ${size}x${size} map, stride ${stride}`);
      }
      // Depthwise (groups = channels) with TensorFlow's asymmetric SAME padding and relu6, as MobileNets run.
      const dw = tf.randn([2 * B, 1, 3, 3]);
      const dwRef = tf.clamp(tf.conv2d(tf.pad(x, [0, 1, 0, 1]), dw, b, { stride: 2, groups: 2 * B }), 0, 6);
      const dwOut = tf.fromBlocked(tf.onednnConv2d(blocked, dw, b, { stride: 2, padding: [0, 0, 1, 1], groups: 2 * B, activation: 'relu6' }));
      assert.deepEqual(dwOut.shape, dwRef.shape);
      assert.ok(maxDiff(dwOut, dwRef) < 1e-4, `depthwise: ${maxDiff(dwOut, dwRef)}`);
      assert.throws(() => tf.onednnConv2d(blocked, w, b, { activation: 'gelu' as 'relu' }), ArgumentError);
      // The first layer's case: 3 NCHW channels in, blocked out.
      const rgb = tf.rand([1, 3, 40, 40]);
      const w7 = tf.randn([B, 3, 7, 7]).mul(0.1);
      assert.ok(maxDiff(tf.fromBlocked(tf.onednnConv2d(rgb, w7, null, { stride: 2 })), tf.conv2d(rgb, w7, null, { stride: 2 })) < 1e-4);
      // Pooling on the blocked layout.
      assert.ok(maxDiff(tf.fromBlocked(tf.blockedPool2d(blocked, 3, { stride: 2 })), tf.maxPool2d(x, 3, { stride: 2 })) === 0);
      assert.ok(maxDiff(tf.fromBlocked(tf.blockedPool2d(blocked, 2, { mode: 'avg' })), tf.avgPool2d(x, 2, { stride: 2 })) < 1e-6);
    });
  });

  it('in a replay, a residual read for the last time is written in place; one the caller or a later op still sees is not', async function () {
    const B = tf.onednnBlock();
    const tensorsBefore = await settledTensorCount();
    const w = tf.randn([B, B, 3, 3]).mul(0.1);
    const b = tf.randn([B]);
    const x = tf.toBlocked(tf.randn([2, B, 6, 6]));
    const r = tf.toBlocked(tf.randn([2, B, 6, 6]));
    const before = values(r);
    const conv = (t: Tensor, res: Tensor) => tf.onednnConv2d(t, w, b, { padding: 1, activation: 'relu', residual: res });
    const eager = conv(x, r);
    const expected = values(eager);
    // The residual is an intermediate (handed over at its last use), a shared input (the caller's
    // own tensor, read in place), an input copy, and one a later op reads again.
    const intermediate = tf.trace((t: Tensor, res: Tensor) => conv(t, res.mul(1)), [x, r]);
    const shared = tf.trace((t: Tensor, res: Tensor) => conv(t, res), [x, r], { sharedInputs: true });
    const copied = tf.trace((t: Tensor, res: Tensor) => conv(t, res), [x, r]);
    const readAgain = tf.trace((t: Tensor, res: Tensor) => {
      const m = res.mul(1);
      return [conv(t, m), m.add(0)];
    }, [x, r]);
    for (const f of [intermediate, shared, copied]) {
      const [y] = await f(x, r);
      assertClose(y, expected, 1e-6, 1e-6);
      y.dispose();
    }
    const [y, again] = await readAgain(x, r);
    assertClose(y, expected, 1e-6, 1e-6);
    assertClose(again, before, 0, 0, 'a residual read again after the convolution is unchanged');
    assertClose(r, before, 0, 0, "the caller's residual is unchanged");
    tf.dispose(w, b, x, r, eager, y, again);
    assert.equal(await settledTensorCount(), tensorsBefore, 'tensors left behind');
  });

  it('a changed weight is re-packed (the cache follows the tensor version); bad inputs are errors, not crashes', function () {
    const B = tf.onednnBlock();
    tf.tidy(() => {
      const x = tf.toBlocked(tf.randn([1, B, 6, 6]));
      const w = tf.randn([B, B, 3, 3]);
      const before = tf.onednnConv2d(x, w, null, { padding: 1 });
      tf.noGrad(() => w.mul_(2));
      const after = tf.onednnConv2d(x, w, null, { padding: 1 });
      assert.ok(maxDiff(after, before.mul(2)) < 1e-4, 'the doubled weight doubles the output');
      assert.throws(() => tf.onednnConv2d(x, w, null, { padding: 1, residual: tf.zeros([1, 1, 5, 5, B]) }), /residual/);
      // The same checks where one image's small map takes the channels-last detour (4x4 output).
      const small = tf.toBlocked(tf.randn([1, B, 4, 4]));
      assert.throws(() => tf.onednnConv2d(small, w, null, { padding: 1, residual: tf.zeros([1, B, 4, 4]) }), /residual of shape/);
      assert.throws(() => tf.onednnConv2d(small, w, null, { padding: 1, residual: tf.zeros([1, 1, 4, 4, B], { dtype: 'float64' }) }), /residual of shape/);
      assert.throws(() => tf.onednnConv2d(tf.randn([1, 1, 6, 6, B === 16 ? 8 : 16]), w, null), /blocked input/);
      assert.throws(() => tf.onednnConv2d(x, tf.randn([B, 2 * B, 3, 3]), null), /weight/);
      assert.throws(() => tf.onednnConv2d(x, w, null, { layout: 'nchw' as 'blocked' }), ArgumentError);
      assert.throws(() => tf.onednnConv2d(tf.toBlocked(tf.randn([1, B, 2, 2])), w, null), /smaller than the kernel/);
      assert.throws(() => tf.blockedPool2d(tf.randn([1, B, 4, 4]), 2), ArgumentError);
    });
  });
});
