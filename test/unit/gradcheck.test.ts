// Autograd: finite-difference gradient checks in float64 for every
// differentiable op family of lib/ops/, and the autograd API itself
// (grad with createGraph, detach, noGrad, requiresGrad, retainGrad).
import { strict as assert } from 'assert';
import * as tf from '../../lib';
import { ArgumentError, Tensor, TorchError, tensor } from '../../lib';
import { gradcheck, input } from '../helpers/gradcheck';
import { assertClose, values } from '../helpers/util';
import { singleThreaded } from '../helpers/util';

type Case = [string, (...x: Tensor[]) => Tensor | Tensor[], Tensor[]];

let seed = 1000;
/** A seeded float64 input requiring grad. */
const x = (shape: number[], lo = -1, hi = 1) => input(shape, seed++, lo, hi);
/** A seeded float64 constant (no grad). */
const c = (shape: number[], lo = -1, hi = 1) => input(shape, seed++, lo, hi, false);
const long = (v: number[], shape?: number[]) => tensor(v, { dtype: 'int64', shape });

function run(cases: Case[]): void {
  let total = 0;
  for (const [name, fn, inputs] of cases) {
    const r = gradcheck(fn, inputs, { name });
    assert.ok(r.checked > 0);
    total += r.checked;
    for (const t of inputs) t.dispose();
  }
  assert.ok(total > 0);
}

describe('gradcheck: the checker itself', () => {
  singleThreaded();
  it('accepts a correct gradient and reports what it checked', () => {
    const a = x([3, 4]);
    const r = gradcheck((t) => t.mul(t), [a]);
    assert.equal(r.checked, 12);
    assert.ok(r.maxAbsError < 1e-6);
  });
  it('rejects a wrong gradient (x * detach(x): autograd says x, the truth is 2x)', () => {
    const a = x([3]);
    assert.throws(() => gradcheck((t) => t.mul(t.detach()), [a], { name: 'wrong' }), /wrong: gradient of input 0/);
  });
  it('rejects a gradient that autograd drops (via noGrad inside the function)', () => {
    const a = x([2]);
    const b = x([2]);
    assert.throws(() => gradcheck((p, q) => p.add(tf.noGrad(() => q.exp())), [a, b]), /gradient of input 1/);
  });
});

describe('gradcheck: elementwise', function () {
  singleThreaded();
  this.timeout(60000);
  it('arithmetic with broadcasting, pow', () =>
    run([
      ['add', (a, b) => a.add(b, 0.7), [x([2, 3]), x([3])]],
      ['sub', (a, b) => a.sub(b, 2), [x([2, 1]), x([1, 3])]],
      ['mul', (a, b) => a.mul(b), [x([2, 3]), x([2, 1])]],
      ['div', (a, b) => a.div(b), [x([2, 3]), x([3], 0.5, 2)]],
      ['scalar ops', (a) => a.add(2).mul(3).sub(1).div(4), [x([4])]],
      ['neg', (a) => a.neg(), [x([3])]],
      ['maximum/minimum', (a, b) => tf.maximum(a, b).add(tf.minimum(a, b).mul(2)), [x([5]), x([5])]],
      ['remainder (grad 1 away from jumps)', (a) => tf.remainder(a, 10), [x([4], 0.1, 0.9)]],
      ['pow tensor^scalar', (a) => a.pow(3), [x([4])]],
      ['pow tensor^fraction', (a) => a.pow(1.5), [x([4], 0.5, 2)]],
      ['pow scalar^tensor', (a) => tf.pow(2.5, a), [x([4])]],
      ['pow tensor^tensor', (a, b) => a.pow(b), [x([4], 0.5, 2), x([4])]],
    ]));
  it('exp / log / sqrt / abs / clamp and other unary math', () =>
    run([
      ['exp', (a) => a.exp(), [x([4])]],
      ['log', (a) => a.log(), [x([4], 0.5, 2)]],
      ['log1p', (a) => tf.log1p(a), [x([4], -0.5, 2)]],
      ['sqrt', (a) => a.sqrt(), [x([4], 0.5, 2)]],
      ['rsqrt', (a) => a.rsqrt(), [x([4], 0.5, 2)]],
      ['abs', (a) => a.abs(), [x([6])]],
      ['square', (a) => a.square(), [x([4])]],
      ['sin/cos', (a) => tf.sin(a).mul(tf.cos(a)), [x([4])]],
      ['reciprocal', (a) => tf.reciprocal(a), [x([4], 0.5, 2)]],
      ['clamp both', (a) => a.clamp(-0.5, 0.5), [x([8])]],
      ['clamp min', (a) => a.clamp(0.1), [x([8])]],
      ['clamp max', (a) => a.clamp(null, -0.1), [x([8])]],
    ]));
  it('activations incl. softmax / logSoftmax', () =>
    run([
      ['relu', (a) => a.relu(), [x([8])]],
      ['sigmoid', (a) => a.sigmoid(), [x([4])]],
      ['tanh', (a) => a.tanh(), [x([4])]],
      ['leakyRelu', (a) => tf.leakyRelu(a, 0.2), [x([8])]],
      ['prelu', (a, w) => tf.prelu(a, w), [x([2, 3, 4]), x([3])]],
      ['elu', (a) => tf.elu(a, 1.3), [x([8])]],
      ['gelu', (a) => tf.gelu(a), [x([6])]],
      ['gelu tanh', (a) => tf.gelu(a, 'tanh'), [x([6])]],
      ['softplus', (a) => tf.softplus(a, 2, 20), [x([6])]],
      ['hardtanh', (a) => tf.hardtanh(a, -0.5, 0.5), [x([8])]],
      ['softmax dim 1', (a) => a.softmax(1), [x([2, 5])]],
      ['softmax dim 0', (a) => a.softmax(0), [x([3, 2])]],
      ['logSoftmax', (a) => a.logSoftmax(-1), [x([2, 5])]],
    ]));
  it('where / maskedFill / maskedSelect', () => {
    const mask = tensor([true, false, true, false, true, true]);
    run([
      ['where', (a, b) => tf.where(mask, a, b), [x([6]), x([6])]],
      ['where scalar', (a) => tf.where(mask, a, 0.5), [x([6])]],
      ['maskedFill', (a) => a.maskedFill(mask, 3), [x([6])]],
      ['maskedSelect', (a) => a.maskedSelect(mask), [x([6])]],
    ]);
  });
});

describe('gradcheck: linear algebra and reductions', function () {
  singleThreaded();
  this.timeout(60000);
  it('matmul / mm / bmm / outer / einsum / cdist / linear', () =>
    run([
      ['matmul', (a, b) => a.matmul(b), [x([2, 3]), x([3, 4])]],
      ['matmul batched broadcast', (a, b) => a.matmul(b), [x([2, 2, 3]), x([3, 2])]],
      ['matmul vector', (a, b) => a.matmul(b), [x([2, 3]), x([3])]],
      ['mm', (a, b) => a.mm(b), [x([3, 2]), x([2, 3])]],
      ['bmm', (a, b) => a.bmm(b), [x([2, 2, 3]), x([2, 3, 2])]],
      ['outer', (a, b) => tf.outer(a, b), [x([3]), x([2])]],
      ['einsum', (a, b) => tf.einsum('ij,jk->ik', a, b), [x([2, 3]), x([3, 2])]],
      ['cdist p=2', (a, b) => tf.cdist(a, b), [x([1, 3, 2]), x([1, 4, 2])]],
      ['cdist p=1', (a, b) => tf.cdist(a, b, 1), [x([1, 3, 2]), x([1, 2, 2])]],
      ['cdist p=3', (a, b) => tf.cdist(a, b, 3), [x([2, 2, 3]), x([2, 3, 3])]],
      ['linear', (a, w, b) => tf.linear(a, w, b), [x([2, 3]), x([4, 3]), x([4])]],
      ['linear no bias', (a, w) => tf.linear(a, w), [x([2, 3]), x([4, 3])]],
    ]));
  it('sum / mean / prod / max / min / norm / var / std / logsumexp / cumsum / topk / sort', () =>
    run([
      ['sum', (a) => a.sum(), [x([2, 3])]],
      ['sum dim keepdim', (a) => a.sum(1, true), [x([2, 3])]],
      ['sum dims', (a) => a.sum([0, 2]), [x([2, 3, 2])]],
      ['mean', (a) => a.mean(), [x([2, 3])]],
      ['mean dim', (a) => a.mean(0), [x([2, 3])]],
      ['prod', (a) => tf.prod(a), [x([5], 0.5, 1.5)]],
      ['prod dim', (a) => tf.prod(a, 1), [x([2, 3], 0.5, 1.5)]],
      ['max', (a) => a.max(), [x([2, 4])]],
      ['max dim', (a) => a.max(1).values, [x([3, 4])]],
      ['min dim keepdim', (a) => a.min(0, true).values, [x([3, 4])]],
      ['norm', (a) => a.norm(), [x([2, 3])]],
      ['norm p=1 dim', (a) => a.norm(1, 1), [x([2, 3])]],
      ['norm p=3 keepdim', (a) => a.norm(3, 0, true), [x([2, 3])]],
      ['var', (a) => a.var(), [x([2, 3])]],
      ['var dim biased', (a) => a.var(1, { unbiased: false }), [x([2, 4])]],
      ['std dim', (a) => a.std(0, { keepdim: true }), [x([3, 2])]],
      ['logsumexp', (a) => tf.logsumexp(a, 1), [x([2, 4])]],
      ['cumsum', (a) => tf.cumsum(a, 1), [x([2, 4])]],
      ['topk values', (a) => a.topk(2).values, [x([2, 5])]],
      ['sort values', (a) => a.sort(1, true).values, [x([2, 5])]],
      ['normalize', (a) => tf.normalize(a, 2, 1), [x([3, 4])]],
    ]));
});

describe('gradcheck: shape ops and indexing', function () {
  singleThreaded();
  this.timeout(60000);
  it('reshape / view / permute / transpose / squeeze / unsqueeze / flatten / expand / repeat / flip', () =>
    run([
      ['reshape', (a) => a.reshape([3, 2]).mul(tensor([1, 2], { dtype: 'float64' })), [x([2, 3])]],
      ['view', (a) => a.view([6]).mul(tf.arange(6, undefined, 1, { dtype: 'float64' })), [x([2, 3])]],
      ['permute', (a) => a.permute([2, 0, 1]).matmul(tensor([[1, 2, 3]], { dtype: 'float64' }).t()), [x([2, 3, 2])]],
      ['transpose', (a, b) => a.transpose(0, 1).matmul(b), [x([3, 2]), x([3, 2])]],
      ['squeeze/unsqueeze', (a) => a.squeeze(1).unsqueeze(0), [x([3, 1, 2])]],
      ['flatten', (a) => a.flatten(1), [x([2, 2, 3])]],
      ['unflatten', (a) => tf.unflatten(a, 1, [2, 2]), [x([3, 4])]],
      ['expand', (a) => a.expand([3, 4]), [x([3, 1])]],
      ['repeat', (a) => a.repeat([2, 3]), [x([2, 2])]],
      ['flip', (a) => a.flip([0, 1]), [x([2, 3])]],
      ['tril/triu', (a) => tf.tril(a, -1).add(tf.triu(a, 1).mul(2)), [x([3, 3])]],
      ['diagonal', (a) => tf.diagonal(a, 1), [x([3, 4])]],
    ]));
  it('cat / stack / split / chunk / slice / narrow / select / indexSelect / gather / scatter / index', () =>
    run([
      ['cat', (a, b) => tf.cat([a, b], 1), [x([2, 2]), x([2, 3])]],
      ['stack', (a, b) => tf.stack([a, b], 1), [x([2, 3]), x([2, 3])]],
      ['split', (a) => a.split(2, 1), [x([2, 5])]],
      ['split sizes', (a) => a.split([1, 3], 0), [x([4, 2])]],
      ['chunk', (a) => a.chunk(2, 0), [x([4, 2])]],
      ['slice', (a) => a.slice(1, 1, 5, 2), [x([2, 6])]],
      ['narrow', (a) => a.narrow(0, 1, 2), [x([4, 2])]],
      ['select', (a) => a.select(1, 2), [x([2, 4])]],
      ['indexSelect (repeated index accumulates)', (a) => a.indexSelect(0, long([2, 0, 2])), [x([3, 2])]],
      ['gather', (a) => a.gather(1, long([0, 2, 2, 1], [2, 2])), [x([2, 3])]],
      ['scatter self and src', (a, s) => tf.scatter(a, 1, long([2, 0], [2, 1]), s), [x([2, 3]), x([2, 1])]],
      ['index', (a) => tf.index(a, [long([1, 0, 1]), null]), [x([2, 3])]],
    ]));
});

describe('gradcheck: padding and resampling', function () {
  singleThreaded();
  this.timeout(60000);
  it('pad in every mode', () =>
    run([
      ['pad constant', (a) => tf.pad(a, [1, 2, 0, 1], 'constant', 0.5), [x([1, 1, 2, 3])]],
      ['pad reflect', (a) => tf.pad(a, [2, 1]), [x([1, 2, 4])]],
      ['pad reflect 2d', (a) => tf.pad(a, [1, 1, 1, 1], 'reflect'), [x([1, 1, 3, 3])]],
      ['pad replicate', (a) => tf.pad(a, [1, 2, 2, 0], 'replicate'), [x([1, 1, 2, 3])]],
      ['pad circular', (a) => tf.pad(a, [1, 1], 'circular'), [x([1, 2, 3])]],
    ]));
  it('interpolate: bilinear (both alignments), nearest, linear, bicubic, trilinear', () =>
    run([
      ['bilinear', (a) => tf.interpolate(a, { size: [5, 4], mode: 'bilinear' }), [x([1, 2, 3, 3])]],
      ['bilinear alignCorners', (a) => tf.interpolate(a, { scaleFactor: 2, mode: 'bilinear', alignCorners: true }), [x([1, 1, 2, 3])]],
      ['bilinear downscale', (a) => tf.interpolate(a, { size: 2, mode: 'bilinear' }), [x([1, 1, 5, 5])]],
      ['nearest', (a) => tf.interpolate(a, { scaleFactor: 2 }), [x([1, 1, 2, 2])]],
      ['linear', (a) => tf.interpolate(a, { size: 7, mode: 'linear' }), [x([1, 2, 3])]],
      ['bicubic', (a) => tf.interpolate(a, { size: 4, mode: 'bicubic' }), [x([1, 1, 3, 3])]],
      ['trilinear', (a) => tf.interpolate(a, { size: 3, mode: 'trilinear' }), [x([1, 1, 2, 2, 2])]],
    ]));
});

describe('gradcheck: convolutions', function () {
  singleThreaded();
  this.timeout(120000);
  it('conv1d / conv2d / conv3d with stride, padding, dilation, groups, bias', () =>
    run([
      ['conv1d', (a, w, b) => tf.conv1d(a, w, b), [x([2, 2, 6]), x([3, 2, 3]), x([3])]],
      ['conv1d stride/pad/dilation', (a, w) => tf.conv1d(a, w, null, { stride: 2, padding: 2, dilation: 2 }), [x([1, 2, 7]), x([2, 2, 3])]],
      ['conv1d groups', (a, w, b) => tf.conv1d(a, w, b, { groups: 2 }), [x([1, 4, 5]), x([4, 2, 2]), x([4])]],
      ['conv2d', (a, w, b) => tf.conv2d(a, w, b), [x([1, 2, 4, 4]), x([3, 2, 3, 3]), x([3])]],
      ['conv2d stride/pad/dilation', (a, w) => tf.conv2d(a, w, null, { stride: [2, 1], padding: [1, 2], dilation: [1, 2] }), [x([1, 2, 5, 5]), x([2, 2, 3, 2])]],
      ['conv2d groups', (a, w) => tf.conv2d(a, w, null, { groups: 2, padding: 1 }), [x([1, 4, 3, 3]), x([2, 2, 2, 2])]],
      ['conv2d same', (a, w) => tf.conv2d(a, w, null, { padding: 'same' }), [x([1, 1, 4, 4]), x([2, 1, 2, 3])]],
      ['conv3d', (a, w, b) => tf.conv3d(a, w, b), [x([1, 1, 3, 3, 3]), x([2, 1, 2, 2, 2]), x([2])]],
      ['conv3d stride/pad/dilation/groups', (a, w) => tf.conv3d(a, w, null, { stride: 2, padding: 1, dilation: [1, 2, 1], groups: 2 }), [x([1, 2, 3, 4, 3]), x([2, 1, 2, 2, 2])]],
    ]));
  it('convTranspose1d / 2d / 3d with stride, padding, outputPadding, dilation, groups', () =>
    run([
      ['convTranspose1d', (a, w, b) => tf.convTranspose1d(a, w, b, { stride: 2, padding: 1, outputPadding: 1 }), [x([1, 2, 4]), x([2, 3, 3]), x([3])]],
      ['convTranspose1d groups/dilation', (a, w) => tf.convTranspose1d(a, w, null, { groups: 2, dilation: 2 }), [x([1, 4, 3]), x([4, 1, 2])]],
      ['convTranspose2d', (a, w, b) => tf.convTranspose2d(a, w, b, { stride: [2, 1], padding: [1, 0] }), [x([1, 2, 3, 3]), x([2, 2, 3, 2]), x([2])]],
      ['convTranspose2d groups/outputPadding', (a, w) => tf.convTranspose2d(a, w, null, { stride: 2, outputPadding: 1, groups: 2 }), [x([1, 2, 2, 2]), x([2, 1, 2, 2])]],
      ['convTranspose3d', (a, w, b) => tf.convTranspose3d(a, w, b, { stride: 2, padding: 1, dilation: [1, 1, 2] }), [x([1, 1, 2, 2, 2]), x([1, 2, 2, 2, 2]), x([2])]],
    ]));
});

describe('gradcheck: pooling', function () {
  singleThreaded();
  this.timeout(60000);
  it('max / avg / adaptive pools in 1-D, 2-D, 3-D', () =>
    run([
      ['maxPool1d', (a) => tf.maxPool1d(a, 2), [x([1, 2, 6])]],
      ['maxPool1d stride/pad/dilation', (a) => tf.maxPool1d(a, 3, { stride: 2, padding: 1, dilation: 1 }), [x([1, 1, 7])]],
      ['maxPool2d', (a) => tf.maxPool2d(a, 2), [x([1, 2, 4, 4])]],
      ['maxPool2d ceil/stride', (a) => tf.maxPool2d(a, 3, { stride: 2, ceilMode: true }), [x([1, 1, 6, 6])]],
      ['maxPool3d', (a) => tf.maxPool3d(a, 2, { padding: 1 }), [x([1, 1, 3, 3, 3])]],
      ['avgPool1d', (a) => tf.avgPool1d(a, 3, { stride: 2, padding: 1 }), [x([1, 2, 7])]],
      ['avgPool2d', (a) => tf.avgPool2d(a, 2), [x([1, 2, 4, 4])]],
      ['avgPool2d pad excl.', (a) => tf.avgPool2d(a, 3, { stride: 2, padding: 1, countIncludePad: false }), [x([1, 1, 5, 5])]],
      ['avgPool3d', (a) => tf.avgPool3d(a, 2, { stride: 1 }), [x([1, 1, 3, 3, 3])]],
      ['adaptiveAvgPool1d', (a) => tf.adaptiveAvgPool1d(a, 3), [x([1, 2, 7])]],
      ['adaptiveAvgPool2d', (a) => tf.adaptiveAvgPool2d(a, [2, 3]), [x([1, 1, 5, 4])]],
      ['adaptiveAvgPool3d', (a) => tf.adaptiveAvgPool3d(a, 2), [x([1, 1, 3, 3, 3])]],
      ['adaptiveMaxPool1d', (a) => tf.adaptiveMaxPool1d(a, 3), [x([1, 2, 7])]],
      ['adaptiveMaxPool2d', (a) => tf.adaptiveMaxPool2d(a, 2), [x([1, 1, 5, 4])]],
      ['adaptiveMaxPool3d', (a) => tf.adaptiveMaxPool3d(a, 2), [x([1, 1, 3, 4, 3])]],
    ]));
});

describe('gradcheck: normalisation and losses', function () {
  singleThreaded();
  this.timeout(60000);
  it('batchNorm (training, batch statistics) / layerNorm / dropout p=0', () => {
    const [runMean, runVar] = [c([2]), c([2], 0.5, 2)];
    run([
      ['batchNorm training', (a, w, b) => tf.batchNorm(a, null, null, { weight: w, bias: b, training: true }), [x([4, 3]), x([3]), x([3])]],
      ['batchNorm2d training', (a) => tf.batchNorm(a, null, null, { training: true }), [x([2, 2, 2, 2])]],
      ['batchNorm eval (running stats)', (a, w) => tf.batchNorm(a, runMean, runVar, { weight: w, training: false }), [x([3, 2, 2]), x([2])]],
      ['layerNorm', (a, w, b) => tf.layerNorm(a, [4], { weight: w, bias: b }), [x([3, 4]), x([4]), x([4])]],
      ['layerNorm 2 dims', (a) => tf.layerNorm(a, [2, 3]), [x([2, 2, 3])]],
      ['dropout p=0', (a) => tf.dropout(a, 0), [x([4])]],
      ['dropout eval', (a) => tf.dropout(a, 0.5, false), [x([4])]],
    ]);
  });
  it('mse / l1 / bce / bceWithLogits / crossEntropy / nllLoss', () => {
    // constants are made once, outside the checked functions
    const cls = long([1, 0, 2]);
    const [t4, t23, p5, p4, w4, l5, l23, pw3, cw4, probs] = [c([4]), c([2, 3]), c([5], 0, 1), c([4], 0, 1), c([4], 0, 2), c([5], 0, 1), c([2, 3], 0, 1), c([3], 0.5, 3), c([4], 0.5, 2), c([3, 4], 0, 1).softmax(1)];
    run([
      ['mseLoss', (a, b) => tf.mseLoss(a, b), [x([2, 3]), x([2, 3])]],
      ['mseLoss sum', (a) => tf.mseLoss(a, t4, 'sum'), [x([4])]],
      ['l1Loss', (a) => tf.l1Loss(a, t23), [x([2, 3])]],
      ['binaryCrossEntropy', (a) => tf.binaryCrossEntropy(a, p5), [x([5], 0.1, 0.9)]],
      ['binaryCrossEntropy weight none', (a) => tf.binaryCrossEntropy(a, p4, { weight: w4, reduction: 'none' }), [x([4], 0.1, 0.9)]],
      ['bceWithLogits', (a) => tf.binaryCrossEntropyWithLogits(a, l5), [x([5], -3, 3)]],
      ['bceWithLogits posWeight', (a) => tf.binaryCrossEntropyWithLogits(a, l23, { posWeight: pw3 }), [x([2, 3])]],
      ['crossEntropy indices', (a) => tf.crossEntropy(a, cls), [x([3, 4], -2, 2)]],
      ['crossEntropy weight/smoothing', (a) => tf.crossEntropy(a, cls, { weight: cw4, labelSmoothing: 0.1 }), [x([3, 4], -2, 2)]],
      ['crossEntropy probabilities', (a) => tf.crossEntropy(a, probs), [x([3, 4], -2, 2)]],
      ['crossEntropy spatial', (a) => tf.crossEntropy(a, long([0, 1, 1, 0], [1, 2, 2])), [x([1, 2, 2, 2])]],
      ['nllLoss', (a) => tf.nllLoss(a.logSoftmax(1), cls), [x([3, 4])]],
    ]);
  });
});

describe('autograd API', () => {
  it('backward accumulates into leaf .grad; non-scalar outputs need a gradient', () => {
    const a = tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    a.mul(a).sum().backward();
    assert.deepEqual(a.grad!.toArray(), [2, 4, 6]);
    a.mul(3).sum().backward();
    assert.deepEqual(a.grad!.toArray(), [5, 7, 9]); // accumulated
    a.grad = null;
    assert.equal(a.grad, null);
    const y = a.mul(2);
    assert.throws(() => y.backward(), ArgumentError);
    y.backward(tensor([1, 0, -1], { dtype: 'float64' }));
    assert.deepEqual(a.grad!.toArray(), [2, 0, -2]);
    assert.throws(() => tensor([1]).sum().backward(), TorchError); // no grad_fn
  });

  it('a graph is freed after backward unless retainGraph', () => {
    const a = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const s = a.exp().sum();
    s.backward(null, { retainGraph: true });
    s.backward();
    assertClose(a.grad!, [2 * Math.exp(1), 2 * Math.exp(2)], 1e-12);
    assert.throws(() => s.backward(), TorchError);
  });

  it('grad(outputs, inputs) without touching .grad; allowUnused; gradOutputs', () => {
    const a = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const b = tensor([3, 4], { dtype: 'float64', requiresGrad: true });
    const u = tensor([5], { dtype: 'float64', requiresGrad: true });
    const y = a.mul(b).sum();
    const [ga, gb] = tf.grad(y, [a, b], { retainGraph: true });
    assert.deepEqual(ga!.toArray(), [3, 4]);
    assert.deepEqual(gb!.toArray(), [1, 2]);
    assert.equal(a.grad, null);
    assert.throws(() => tf.grad(y, [a, u], { retainGraph: true }), TorchError);
    const [, gu] = tf.grad(y, [a, u], { allowUnused: true });
    assert.equal(gu, null);
    const z = a.mul(b);
    const [gz] = tf.grad([z], [a], { gradOutputs: [tensor([1, 10], { dtype: 'float64' })] });
    assert.deepEqual(gz!.toArray(), [3, 40]);
    assert.throws(() => tf.grad(z, a, { gradOutputs: [] }), ArgumentError);
  });

  it('createGraph gives differentiable gradients: second derivatives', () => {
    const xv = [0.5, -1, 2];
    const a = tensor(xv, { dtype: 'float64', requiresGrad: true });
    const y = a.pow(3).add(tf.sin(a)).sum();
    const [g] = tf.grad(y, a, { createGraph: true });
    assert.ok(g!.requiresGrad);
    assertClose(g!, xv.map((v) => 3 * v * v + Math.cos(v)), 1e-12);
    const [g2] = tf.grad(g!.sum(), a);
    assertClose(g2!, xv.map((v) => 6 * v - Math.sin(v)), 1e-12);
    // and through backward(createGraph): d/dx of |grad|^2
    const b = tensor([1.5], { dtype: 'float64', requiresGrad: true });
    b.pow(4).sum().backward(null, { createGraph: true });
    const gb = b.grad!; // 4 b^3
    assert.ok(gb.requiresGrad);
    const [h] = tf.grad(gb.sum(), b); // 12 b^2
    assertClose(h!, [12 * 1.5 * 1.5], 1e-12);
  });

  it('detach cuts the graph but shares memory', () => {
    const a = tensor([1, 2], { requiresGrad: true });
    const y = a.mul(2);
    const d = y.detach();
    assert.equal(d.requiresGrad, false);
    assert.equal(d.gradFn, null);
    assert.ok(y.gradFn?.includes('Mul'));
    d.add_(1);
    assert.deepEqual(y.toArray(), [3, 5]);
    const s = a.mul(d).sum();
    s.backward();
    assert.deepEqual(a.grad!.toArray(), [3, 5]);
  });

  it('noGrad turns recording off on this thread, restores it, also after a throw', () => {
    const a = tensor([1, 2], { requiresGrad: true });
    assert.equal(tf.isGradEnabled(), true);
    const y = tf.noGrad(() => {
      assert.equal(tf.isGradEnabled(), false);
      return a.mul(2);
    });
    assert.equal(y.requiresGrad, false);
    assert.equal(tf.isGradEnabled(), true);
    assert.throws(() =>
      tf.noGrad(() => {
        throw new Error('boom');
      }),
    );
    assert.equal(tf.isGradEnabled(), true);
    assert.throws(() => tf.noGrad((async () => a) as unknown as () => Tensor), ArgumentError);
    assert.equal(tf.isGradEnabled(), true);
    // nested
    tf.noGrad(() => tf.noGrad(() => a.add(1)));
    assert.equal(tf.isGradEnabled(), true);
    assert.equal(a.add(1).requiresGrad, true);
  });

  it('requiresGrad on leaves; an error on non-leaves', () => {
    const a = tensor([1, 2]);
    assert.equal(a.requiresGrad, false);
    a.requiresGrad = true;
    assert.equal(a.requiresGrad, true);
    const y = a.mul(2);
    assert.equal(y.requiresGrad, true);
    assert.equal(y.isLeaf, false);
    assert.throws(() => y.requiresGrad_(false), TorchError);
    a.requiresGrad_(false);
    assert.equal(a.mul(2).requiresGrad, false);
    assert.throws(() => tensor([1, 2], { dtype: 'int64', requiresGrad: true }), TorchError); // integer tensors cannot
  });

  it('retainGrad keeps the gradient of a non-leaf', () => {
    const a = tensor([1, 2, 3], { requiresGrad: true });
    const h = a.mul(2);
    const k = a.mul(3);
    h.retainGrad();
    h.mul(k).sum().backward();
    assert.deepEqual(h.grad!.toArray(), [3, 6, 9]); // d(h k)/dh = k
    assert.equal(k.grad, null);
    assert.deepEqual(values(a.grad!), [12, 24, 36]); // 2 k + 3 h = 12 a
  });
});
