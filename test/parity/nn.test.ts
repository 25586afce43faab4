// nn modules: parity of every layer's output and gradients (input and weights)
// with PyTorch on the same inputs and weights, and the Module API (toString,
// loadStateDict, to, Sequential's disposal).
import { strict as assert } from 'assert';
import { ModelMismatchError, Tensor, manualSeed, memory, nn, noGrad, optim, randn, tensor, tidy } from '../../lib';
import { peerMissing, reference } from '../helpers/peers';
import { relError, torchParity } from '../helpers/torch';

interface LayerCase {
  name: string;
  make: () => nn.Module;
  /** torch.nn class name, positional args and kwargs */
  layer: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  input: number[];
  train?: boolean;
  params?: string[];
  buffers?: string[];
}

const W = ['weight', 'bias'];
const BN = ['running_mean', 'running_var', 'num_batches_tracked'];
const CASES: LayerCase[] = [
  { name: 'linear', make: () => new nn.Linear(5, 3), layer: 'Linear', args: [5, 3], input: [4, 5], params: W },
  { name: 'linear_nobias', make: () => new nn.Linear(5, 3, { bias: false }), layer: 'Linear', args: [5, 3], kwargs: { bias: false }, input: [2, 3, 5], params: ['weight'] },
  { name: 'conv1d', make: () => new nn.Conv1d(3, 4, 3, { stride: 2, padding: 1 }), layer: 'Conv1d', args: [3, 4, 3], kwargs: { stride: 2, padding: 1 }, input: [2, 3, 9], params: W },
  { name: 'conv2d', make: () => new nn.Conv2d(4, 6, 3, { stride: 2, padding: 1, groups: 2 }), layer: 'Conv2d', args: [4, 6, 3], kwargs: { stride: 2, padding: 1, groups: 2 }, input: [2, 4, 7, 7], params: W },
  { name: 'conv2d_dilated', make: () => new nn.Conv2d(3, 4, [3, 2], { padding: [2, 1], dilation: 2 }), layer: 'Conv2d', args: [3, 4, [3, 2]], kwargs: { padding: [2, 1], dilation: 2 }, input: [1, 3, 8, 6], params: W },
  { name: 'conv2d_same_reflect', make: () => new nn.Conv2d(3, 4, 4, { padding: 'same', paddingMode: 'reflect' }), layer: 'Conv2d', args: [3, 4, 4], kwargs: { padding: 'same', padding_mode: 'reflect' }, input: [2, 3, 6, 6], params: W },
  { name: 'conv2d_circular', make: () => new nn.Conv2d(2, 3, 3, { padding: 1, paddingMode: 'circular', bias: false }), layer: 'Conv2d', args: [2, 3, 3], kwargs: { padding: 1, padding_mode: 'circular', bias: false }, input: [1, 2, 5, 5], params: ['weight'] },
  { name: 'conv3d', make: () => new nn.Conv3d(2, 3, 3, { padding: 1 }), layer: 'Conv3d', args: [2, 3, 3], kwargs: { padding: 1 }, input: [1, 2, 5, 5, 5], params: W },
  { name: 'convT1d', make: () => new nn.ConvTranspose1d(3, 2, 3, { stride: 2, padding: 1, outputPadding: 1 }), layer: 'ConvTranspose1d', args: [3, 2, 3], kwargs: { stride: 2, padding: 1, output_padding: 1 }, input: [2, 3, 5], params: W },
  { name: 'convT2d', make: () => new nn.ConvTranspose2d(4, 2, 3, { stride: 2, padding: 1, outputPadding: 1, groups: 2 }), layer: 'ConvTranspose2d', args: [4, 2, 3], kwargs: { stride: 2, padding: 1, output_padding: 1, groups: 2 }, input: [2, 4, 4, 4], params: W },
  { name: 'convT3d', make: () => new nn.ConvTranspose3d(2, 3, 2, { stride: 2 }), layer: 'ConvTranspose3d', args: [2, 3, 2], kwargs: { stride: 2 }, input: [1, 2, 3, 3, 3], params: W },
  { name: 'bn1d_train', make: () => new nn.BatchNorm1d(4), layer: 'BatchNorm1d', args: [4], input: [6, 4], train: true, params: W, buffers: BN },
  { name: 'bn1d_eval', make: () => new nn.BatchNorm1d(4), layer: 'BatchNorm1d', args: [4], input: [6, 4, 5], train: false, params: W, buffers: BN },
  { name: 'bn2d_train', make: () => new nn.BatchNorm2d(3, { momentum: 0.3 }), layer: 'BatchNorm2d', args: [3], kwargs: { momentum: 0.3 }, input: [4, 3, 5, 5], train: true, params: W, buffers: BN },
  { name: 'bn2d_cumulative', make: () => new nn.BatchNorm2d(3, { momentum: null }), layer: 'BatchNorm2d', args: [3], kwargs: { momentum: null }, input: [4, 3, 5, 5], train: true, params: W, buffers: BN },
  { name: 'bn2d_eval', make: () => new nn.BatchNorm2d(3), layer: 'BatchNorm2d', args: [3], input: [4, 3, 5, 5], train: false, params: W, buffers: BN },
  { name: 'bn2d_noaffine', make: () => new nn.BatchNorm2d(3, { affine: false, trackRunningStats: false }), layer: 'BatchNorm2d', args: [3], kwargs: { affine: false, track_running_stats: false }, input: [4, 3, 5, 5], train: false },
  { name: 'bn3d_train', make: () => new nn.BatchNorm3d(2), layer: 'BatchNorm3d', args: [2], input: [3, 2, 3, 3, 3], train: true, params: W, buffers: BN },
  { name: 'bn3d_eval', make: () => new nn.BatchNorm3d(2), layer: 'BatchNorm3d', args: [2], input: [3, 2, 3, 3, 3], train: false, params: W, buffers: BN },
  { name: 'layernorm', make: () => new nn.LayerNorm([4, 5], { eps: 1e-6 }), layer: 'LayerNorm', args: [[4, 5]], kwargs: { eps: 1e-6 }, input: [3, 4, 5], params: W },
  { name: 'prelu', make: () => new nn.PReLU(3, 0.1), layer: 'PReLU', args: [3, 0.1], input: [2, 3, 4, 4], params: ['weight'] },
  { name: 'prelu1', make: () => new nn.PReLU(), layer: 'PReLU', input: [5, 3], params: ['weight'] },
  { name: 'leakyrelu', make: () => new nn.LeakyReLU(0.2), layer: 'LeakyReLU', args: [0.2], input: [3, 7] },
  { name: 'relu', make: () => new nn.ReLU(), layer: 'ReLU', input: [3, 7] },
  { name: 'sigmoid', make: () => new nn.Sigmoid(), layer: 'Sigmoid', input: [3, 7] },
  { name: 'tanh', make: () => new nn.Tanh(), layer: 'Tanh', input: [3, 7] },
  { name: 'maxpool1d', make: () => new nn.MaxPool1d(2), layer: 'MaxPool1d', args: [2], input: [2, 3, 8] },
  { name: 'maxpool2d', make: () => new nn.MaxPool2d(3, { stride: 2, padding: 1 }), layer: 'MaxPool2d', args: [3], kwargs: { stride: 2, padding: 1 }, input: [2, 3, 9, 9] },
  { name: 'maxpool2d_ceil', make: () => new nn.MaxPool2d(2, { ceilMode: true }), layer: 'MaxPool2d', args: [2], kwargs: { ceil_mode: true }, input: [1, 2, 7, 7] },
  { name: 'maxpool3d', make: () => new nn.MaxPool3d(2), layer: 'MaxPool3d', args: [2], input: [1, 2, 4, 4, 4] },
  { name: 'avgpool1d', make: () => new nn.AvgPool1d(3, { stride: 2 }), layer: 'AvgPool1d', args: [3], kwargs: { stride: 2 }, input: [2, 3, 9] },
  { name: 'avgpool2d', make: () => new nn.AvgPool2d(3, { stride: 2, padding: 1, countIncludePad: false }), layer: 'AvgPool2d', args: [3], kwargs: { stride: 2, padding: 1, count_include_pad: false }, input: [2, 3, 9, 9] },
  { name: 'avgpool3d', make: () => new nn.AvgPool3d(2), layer: 'AvgPool3d', args: [2], input: [1, 2, 4, 4, 4] },
  { name: 'adaptive1d', make: () => new nn.AdaptiveAvgPool1d(4), layer: 'AdaptiveAvgPool1d', args: [4], input: [2, 3, 10] },
  { name: 'adaptive2d', make: () => new nn.AdaptiveAvgPool2d([3, 2]), layer: 'AdaptiveAvgPool2d', args: [[3, 2]], input: [2, 3, 7, 5] },
  { name: 'adaptive3d', make: () => new nn.AdaptiveAvgPool3d(2), layer: 'AdaptiveAvgPool3d', args: [2], input: [1, 2, 5, 5, 5] },
  { name: 'dropout_p0', make: () => new nn.Dropout(0), layer: 'Dropout', args: [0], input: [4, 6], train: true },
  { name: 'dropout_eval', make: () => new nn.Dropout(0.5), layer: 'Dropout', args: [0.5], input: [4, 6], train: false },
  { name: 'flatten', make: () => new nn.Flatten(), layer: 'Flatten', input: [2, 3, 4] },
];

describe('nn layers: parity with PyTorch (outputs, input and weight gradients, BatchNorm buffers)', function () {
  const TOL = 1e-5; // max |ours - torch| / max |torch|, float32
  const ours = new Map<string, Tensor>();
  const sent = new Map<string, Tensor>();
  let theirs: Map<string, Tensor>;

  before(async function () {
    manualSeed(1234);
    for (const c of CASES) {
      const m = c.make();
      m.train(c.train ?? true);
      // Non-trivial BatchNorm statistics and affine parameters.
      if (c.buffers) {
        noGrad(() => {
          m.buffer('running_mean')!.copy_(tidy(() => randn(m.buffer('running_mean')!.shape).mul(0.5)));
          m.buffer('running_var')!.copy_(tidy(() => randn(m.buffer('running_var')!.shape).abs().add(0.5)));
          m.buffer('num_batches_tracked')!.fill_(c.name.includes('cumulative') ? 0 : 3);
        });
      }
      if (c.name.startsWith('bn') || c.name === 'layernorm') noGrad(() => (c.params ?? []).forEach((p) => m.param(p).copy_(tidy(() => randn(m.param(p).shape).mul(0.3).add(p === 'weight' ? 1 : 0)))));
      for (const p of c.params ?? []) sent.set(`${c.name}.param.${p}`, m.param(p).detach().clone());
      for (const b of c.buffers ?? []) sent.set(`${c.name}.buffer.${b}`, m.buffer(b)!.clone());
      const x = randn(c.input).requiresGrad_(true);
      const y = m.forward(x) as Tensor;
      const gy = randn(y.shape);
      y.backward(gy);
      sent.set(`${c.name}.input`, x.detach().clone());
      sent.set(`${c.name}.grad_output`, gy);
      ours.set(`${c.name}.out`, y.detach());
      ours.set(`${c.name}.grad.input`, x.grad!);
      for (const p of c.params ?? []) ours.set(`${c.name}.grad.${p}`, m.param(p).grad!);
      for (const b of c.buffers ?? []) ours.set(`${c.name}.buffer.${b}`, m.buffer(b)!.clone());
    }
    if (peerMissing('python-torch')) return; // each test then skips or fails by the peer rule
    const spec = CASES.map((c) => ({ name: c.name, layer: c.layer, args: c.args ?? [], kwargs: c.kwargs ?? {}, train: c.train ?? true, params: c.params ?? [], buffers: c.buffers ?? [] }));
    theirs = await torchParity('layers', spec, sent);
  });

  for (const c of CASES) {
    it(`${c.name}: ${c.layer}${c.train === false ? ' (eval)' : ''} output, gradients${c.buffers ? ' and running statistics' : ''} match torch.nn.${c.layer}`, function () {
      theirs = reference(this, 'python-torch', theirs);
      const keys = [`${c.name}.out`, `${c.name}.grad.input`, ...(c.params ?? []).map((p) => `${c.name}.grad.${p}`), ...(c.buffers ?? []).map((b) => `${c.name}.buffer.${b}`)];
      for (const k of keys) {
        const a = ours.get(k)!;
        const b = theirs.get(k);
        assert.ok(b, `torch returned no ${k}`);
        assert.equal(a.dtype, b.dtype, `${k} dtype`);
        const err = relError(a, b);
        assert.ok(err <= TOL, `${k}: relative error ${err.toExponential(2)} > ${TOL}`);
      }
    });
  }

  it('detects a wrong layer (the comparison can fail)', function () {
    theirs = reference(this, 'python-torch', theirs);
    const perturbed = ours.get('conv2d.grad.weight')!.mul(1 + 1e-4);
    assert.ok(relError(perturbed, theirs.get('conv2d.grad.weight')!) > 1e-5);
    // and BatchNorm's eval output differs from its train output
    assert.ok(relError(ours.get('bn2d_eval.out')!, theirs.get('bn2d_train.out')!) > 1e-3);
  });
});

describe('nn Module API', () => {
  const net = () =>
    new nn.Sequential(new nn.Conv2d(3, 8, 3, { padding: 1 }), new nn.BatchNorm2d(8), new nn.ReLU(), new nn.AdaptiveAvgPool2d(2), new nn.Flatten(), new nn.Linear(32, 10));

  it('toString shows the tree with parameter counts and a total', () => {
    const s = String(net());
    const lines = s.split('\n');
    assert.equal(lines[0], 'Sequential(  # 570 params');
    assert.equal(lines[1], '  (0): Conv2d(3, 8, kernelSize=[3,3], padding=1)  # 224 params');
    assert.match(lines[2], /^ {2}\(1\): BatchNorm2d\(8, .*\) {2}# 16 params$/);
    assert.equal(lines[3], '  (2): ReLU()');
    assert.equal(lines[6], '  (5): Linear(inFeatures=32, outFeatures=10, bias=true)  # 330 params');
    assert.equal(lines[lines.length - 1], 'Total parameters: 570 (570 trainable)');
  });

  it('stateDict uses PyTorch dotted names including BatchNorm buffers', () => {
    assert.deepEqual([...net().stateDict().keys()], ['0.weight', '0.bias', '1.weight', '1.bias', '5.weight', '5.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked']);
  });

  it('loadStateDict copies values, reports and rejects missing/unexpected names and shape mismatches', () => {
    const a = net();
    const b = net();
    const r = b.loadStateDict(a.stateDict());
    assert.deepEqual(r, { missing: [], unexpected: [] });
    for (const [k, t] of a.stateDict()) assert.equal(relError(b.stateDict().get(k)!, t), 0, k);

    const partial = new Map(a.stateDict());
    partial.delete('5.bias');
    partial.set('extra.weight', tensor([1]));
    assert.throws(() => b.loadStateDict(partial), (e: Error) => e instanceof ModelMismatchError && /missing 5\.bias/.test(e.message) && /unexpected extra\.weight/.test(e.message));
    assert.deepEqual(b.loadStateDict(partial, { strict: false }), { missing: ['5.bias'], unexpected: ['extra.weight'] });

    // shape mismatch: nothing is copied
    const c = net();
    const before = c.stateDict().get('0.weight')!.clone();
    const bad = new Map(a.stateDict());
    bad.set('5.weight', randn([10, 31]));
    assert.throws(() => c.loadStateDict(bad), /'5\.weight' has shape \[10,31\] in the state dict but \[10,32\]/);
    assert.equal(relError(c.stateDict().get('0.weight')!, before), 0);

    // old checkpoints without num_batches_tracked load (PyTorch does the same)
    const old = new Map(a.stateDict());
    old.delete('1.num_batches_tracked');
    assert.deepEqual(c.loadStateDict(old), { missing: [], unexpected: [] });
  });

  it('to(dtype) and to({ channelsLast }) keep parameter identity, so an optimizer made before keeps working', () => {
    manualSeed(3);
    const m = net();
    const x = randn([2, 3, 6, 6]);
    const ref = m.eval().forward(x);
    const w = (m.at(0) as nn.Conv2d).weight;
    const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
    m.to({ channelsLast: true });
    assert.equal((m.at(0) as nn.Conv2d).weight, w);
    assert.ok(nn.isContiguous(w, true) && !nn.isContiguous(w));
    const y = m.forward(x.contiguous({ channelsLast: true }));
    assert.ok(relError(y, ref) < 1e-5);
    m.to('float64');
    assert.equal(w.dtype, 'float64');
    assert.equal(m.buffer === undefined, false);
    assert.equal((m.at(1) as nn.BatchNorm2d).buffer('num_batches_tracked')!.dtype, 'int64');
    m.train();
    const loss = m.forward(x.to('float64')).square().mean();
    loss.backward();
    const before = w.clone();
    opt.step();
    assert.ok(relError(w, before) > 0, 'the optimizer updated the moved parameter');
    assert.throws(() => m.to('int32' as never), /floating-point dtype/);
  });

  it('Sequential disposes intermediates: a forward leaves only its output alive', () => {
    const m = net().eval();
    const x = randn([2, 3, 6, 6]);
    const before = memory().tensors;
    const y = noGrad(() => m.forward(x));
    assert.equal(memory().tensors - before, 1);
    y.dispose();
    assert.equal(x.isDisposed, false);
  });

  it('validates constructor arguments with the parameter name', () => {
    assert.throws(() => new nn.Conv2d(3, 0, 3), /outChannels/);
    assert.throws(() => new nn.Conv2d(3, 4, 3, { groups: 2 }), /groups/);
    assert.throws(() => new nn.MaxPool2d(0), /kernelSize/);
    assert.throws(() => new nn.Linear(2.5, 3), /inFeatures/);
    assert.throws(() => new nn.Dropout(1.5), /probability/);
  });
});
