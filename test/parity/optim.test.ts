// Optimizers, schedulers and gradient clipping: convergence on a small
// synthetic task, exact resumption through saved optimizer files, and parity
// with torch.optim / torch.nn.utils.clip_grad_norm_.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Tensor, crossEntropy, gt, loadOptimizer, manualSeed, mean, memory, nn, optim, randn, saveOptimizer, slice, tidy } from '../../lib';
import { HELPERS, peerMissing, reference, runPython } from '../helpers/peers';
import { relError, tmpDir, torchParity } from '../helpers/torch';

// Synthetic task: is the mean of channel 0 of a 2x8x8 image positive?
function data(n: number, seed: number): { x: Tensor; y: Tensor } {
  manualSeed(seed);
  const x = randn([n, 2, 8, 8]);
  const y = tidy(() => gt(mean(slice(x, 1, 0, 1), [1, 2, 3]), 0).long());
  return { x, y };
}
function convnet(seed: number): nn.Sequential {
  manualSeed(seed);
  return new nn.Sequential(new nn.Conv2d(2, 4, 3, { padding: 1 }), new nn.ReLU(), new nn.AdaptiveAvgPool2d(1), new nn.Flatten(), new nn.Linear(4, 2));
}
const lossOf = (m: nn.Module, x: Tensor, y: Tensor) => tidy(() => crossEntropy(m.forward(x) as Tensor, y));

describe('optim: a small ConvNet converges with each optimizer', function () {
  const { x, y } = data(32, 7);
  const BOUND = 0.25; // cross-entropy; it starts near ln 2 = 0.69
  const cases: [string, (p: Tensor[]) => optim.Optimizer, number][] = [
    ['SGD', (p) => new optim.SGD(p, { lr: 1 }), 40],
    ['SGD + momentum + Nesterov + weight decay', (p) => new optim.SGD(p, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }), 50],
    ['Adam', (p) => new optim.Adam(p, { lr: 0.05 }), 30],
    ['AdamW (amsgrad)', (p) => new optim.AdamW(p, { lr: 0.05, amsgrad: true }), 30],
    ['LBFGS (strong Wolfe)', (p) => new optim.LBFGS(p, { lineSearchFn: 'strongWolfe', maxIter: 20 }), 3],
  ];
  for (const [name, make, steps] of cases) {
    it(`${name}: loss below ${BOUND} after ${steps} step(s), no leaked tensors`, function () {
      const m = convnet(1);
      const initial = lossOf(m, x, y);
      assert.ok(initial.item() > BOUND, 'the task is not already solved');
      initial.dispose();
      const opt = make(m.parameters());
      const closure = () => {
        opt.zeroGrad();
        const l = lossOf(m, x, y);
        l.backward();
        return l;
      };
      const live0 = memory().tensors;
      for (let i = 0; i < steps; i++) opt.step(closure);
      const stateTensors = [...opt.state.values()].flatMap((s) => Object.values(s).flatMap((v) => (v instanceof Tensor ? [v] : Array.isArray(v) ? v.filter((e) => e instanceof Tensor) : [])));
      opt.zeroGrad();
      assert.equal(memory().tensors - live0, stateTensors.length, 'only optimizer state stays alive');
      const final = lossOf(m, x, y);
      assert.ok(final.item() < BOUND, `final loss ${final.item()}`);
    });
  }
});

describe('optim: stateDict / saveOptimizer round trip resumes training exactly', function () {
  const { x, y } = data(16, 11);
  const makers: [string, (p: Tensor[]) => optim.Optimizer][] = [
    ['SGD momentum', (p) => new optim.SGD(p, { lr: 0.1, momentum: 0.9, dampening: 0.1 })],
    ['Adam', (p) => new optim.Adam(p, { lr: 0.01, weightDecay: 0.01 })],
    ['AdamW amsgrad', (p) => new optim.AdamW(p, { lr: 0.01, amsgrad: true })],
    ['LBFGS', (p) => new optim.LBFGS(p, { maxIter: 3, historySize: 4 })],
  ];
  for (const [name, make] of makers) {
    it(`${name}: 6 steps equal 3 steps + save + load into a fresh optimizer + 3 steps`, async function () {
      const train = (m: nn.Module, opt: optim.Optimizer, n: number) => {
        for (let i = 0; i < n; i++)
          opt.step(() => {
            opt.zeroGrad();
            const l = lossOf(m, x, y);
            l.backward();
            return l;
          });
      };
      const a = convnet(2);
      const optA = make(a.parameters());
      train(a, optA, 6);

      const dir = tmpDir('torchface-optim-');
      try {
        const b = convnet(2);
        const optB = make(b.parameters());
        train(b, optB, 3);
        const file = path.join(dir, 'opt.safetensors');
        await saveOptimizer(file, optB, { epoch: 3 });
        const c = convnet(99);
        c.loadStateDict(b.stateDict());
        const optC = make(c.parameters());
        assert.deepEqual(await loadOptimizer(file, optC), { epoch: 3 });
        train(c, optC, 3);
        for (const [k, t] of a.stateDict()) assert.equal(relError(c.stateDict().get(k)!, t), 0, `${k} differs after resuming`);
        // without the state the result differs (the test can fail)
        const d = convnet(99);
        d.loadStateDict(b.stateDict());
        train(d, make(d.parameters()), 3);
        assert.ok([...a.stateDict()].some(([k, t]) => relError(d.stateDict().get(k)!, t) > 0));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('loadStateDict restores hyper-parameters and rejects a mismatched optimizer', () => {
    const m = convnet(3);
    const opt = new optim.Adam(m.parameters(), { lr: 0.5 });
    const sd = opt.stateDict();
    const other = new optim.Adam(m.parameters(), { lr: 0.1 });
    other.loadStateDict(sd);
    assert.equal(other.paramGroups[0].lr, 0.5);
    const fewer = new optim.Adam(m.parameters().slice(1));
    assert.throws(() => fewer.loadStateDict(sd), /parameters/);
  });

  it('validates options with the parameter name', () => {
    const p = convnet(4).parameters();
    assert.throws(() => new optim.SGD(p, { lr: -1 }), /lr/);
    assert.throws(() => new optim.SGD(p, { lr: 0.1, nesterov: true }), /nesterov/);
    assert.throws(() => new optim.Adam(p, { betas: [0.9, 1.5] }), /betas/);
    assert.throws(() => new optim.LBFGS(p, { lineSearchFn: 'armijo' as never }), /lineSearchFn/);
    assert.throws(() => new optim.SGD([p[0], p[0]], { lr: 1 }), /only one group/);
  });
});

describe('optim: parity with torch.optim (same init, same gradients, 5 steps)', function () {
  const cases = [
    { name: 'sgd', optimizer: 'SGD', kwargs: { lr: 0.1 }, make: (p: Tensor[]) => new optim.SGD(p, { lr: 0.1 }) },
    { name: 'sgd_nesterov', optimizer: 'SGD', kwargs: { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.01 }, make: (p: Tensor[]) => new optim.SGD(p, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 }) },
    { name: 'sgd_dampening', optimizer: 'SGD', kwargs: { lr: 0.05, momentum: 0.8, dampening: 0.3, maximize: true }, make: (p: Tensor[]) => new optim.SGD(p, { lr: 0.05, momentum: 0.8, dampening: 0.3, maximize: true }) },
    { name: 'adam', optimizer: 'Adam', kwargs: { lr: 0.01, weight_decay: 0.1 }, make: (p: Tensor[]) => new optim.Adam(p, { lr: 0.01, weightDecay: 0.1 }) },
    { name: 'adam_amsgrad', optimizer: 'Adam', kwargs: { lr: 0.01, betas: [0.8, 0.99], eps: 1e-6, amsgrad: true }, make: (p: Tensor[]) => new optim.Adam(p, { lr: 0.01, betas: [0.8, 0.99], eps: 1e-6, amsgrad: true }) },
    { name: 'adamw', optimizer: 'AdamW', kwargs: { lr: 0.01 }, make: (p: Tensor[]) => new optim.AdamW(p, { lr: 0.01 }) },
    { name: 'adamw_amsgrad', optimizer: 'AdamW', kwargs: { lr: 0.02, weight_decay: 0.05, amsgrad: true }, make: (p: Tensor[]) => new optim.AdamW(p, { lr: 0.02, weightDecay: 0.05, amsgrad: true }) },
  ];
  const STEPS = 5;
  const shapes: Record<string, number[]> = { w: [4, 3, 3, 3], b: [4], v: [7] };
  const ours = new Map<string, Tensor>();
  let theirs: Map<string, Tensor> | undefined;
  before(async function () {
    manualSeed(21);
    const sent = new Map<string, Tensor>();
    for (const c of cases) {
      const params = Object.entries(shapes).map(([n, s]) => {
        const p = randn(s).requiresGrad_(true);
        sent.set(`${c.name}.param.${n}`, p.detach().clone());
        return p;
      });
      const opt = c.make(params);
      for (let step = 0; step < STEPS; step++) {
        Object.keys(shapes).forEach((n, i) => {
          // Gradients of varying scale, including near-zero ones.
          const g = tidy(() => randn(shapes[n]).mul(step % 2 ? 0.01 : 1));
          sent.set(`${c.name}.grad.${step}.${n}`, g);
          params[i].grad = g;
        });
        opt.step();
      }
      Object.keys(shapes).forEach((n, i) => ours.set(`${c.name}.param.${n}`, params[i]));
    }
    if (peerMissing('python-torch')) return; // each test then skips or fails by the peer rule
    theirs = await torchParity('optim', cases.map((c) => ({ name: c.name, optimizer: c.optimizer, kwargs: c.kwargs, steps: STEPS, params: Object.keys(shapes) })), sent);
  });
  for (const c of cases) {
    it(`${c.name}: parameters equal torch.optim.${c.optimizer}(${JSON.stringify(c.kwargs)}) within 1e-5`, function () {
      theirs = reference(this, 'python-torch', theirs);
      for (const n of Object.keys(shapes)) {
        const err = relError(ours.get(`${c.name}.param.${n}`)!, theirs.get(`${c.name}.param.${n}`)!);
        assert.ok(err <= 1e-5, `${n}: ${err}`);
      }
    });
  }
  it('the comparison can fail: SGD differs from SGD+Nesterov', function () {
    theirs = reference(this, 'python-torch', theirs);
    assert.ok(relError(ours.get('sgd.param.w')!, theirs.get('sgd_nesterov.param.w')!) > 1e-3);
  });
});

describe('optim: learning-rate schedulers match torch.optim.lr_scheduler', function () {
  const EPOCHS = 40;
  const cases = [
    { name: 'step', kind: 'StepLR', kwargs: { step_size: 7, gamma: 0.5 }, make: (o: optim.Optimizer) => new optim.StepLR(o, { stepSize: 7, gamma: 0.5 }) },
    { name: 'multistep', kind: 'MultiStepLR', kwargs: { milestones: [3, 10, 10, 25], gamma: 0.3 }, make: (o: optim.Optimizer) => new optim.MultiStepLR(o, { milestones: [3, 10, 10, 25], gamma: 0.3 }) },
    { name: 'cosine', kind: 'CosineAnnealingLR', kwargs: { T_max: 12, eta_min: 0.001 }, make: (o: optim.Optimizer) => new optim.CosineAnnealingLR(o, { tMax: 12, etaMin: 0.001 }) },
    { name: 'linear', kind: 'LinearLR', kwargs: { start_factor: 0.1, total_iters: 6 }, make: (o: optim.Optimizer) => new optim.LinearLR(o, { startFactor: 0.1, totalIters: 6 }) },
    { name: 'linear_decay', kind: 'LinearLR', kwargs: { start_factor: 1.0, end_factor: 0.2, total_iters: 9 }, make: (o: optim.Optimizer) => new optim.LinearLR(o, { startFactor: 1, endFactor: 0.2, totalIters: 9 }) },
    {
      name: 'warmup_cosine',
      kind: 'SequentialLR',
      schedulers: [
        { kind: 'LinearLR', kwargs: { start_factor: 0.01, total_iters: 5 } },
        { kind: 'CosineAnnealingLR', kwargs: { T_max: 30, eta_min: 0.0001 } },
      ],
      milestones: [5],
      make: (o: optim.Optimizer) => new optim.SequentialLR(o, [new optim.LinearLR(o, { startFactor: 0.01, totalIters: 5 }), new optim.CosineAnnealingLR(o, { tMax: 30, etaMin: 1e-4 })], [5]),
    },
  ];
  const LR = 0.1;
  const ours: Record<string, number[]> = {};
  let theirs: Record<string, number[]> | undefined;
  before(function () {
    for (const c of cases) {
      const p = randn([1]).requiresGrad_(true);
      const opt = new optim.SGD([p], { lr: LR });
      const s = c.make(opt);
      const lrs = [opt.paramGroups[0].lr];
      for (let e = 0; e < EPOCHS; e++) {
        s.step();
        lrs.push(opt.paramGroups[0].lr);
      }
      assert.deepEqual(s.getLastLr(), [lrs[lrs.length - 1]]);
      ours[c.name] = lrs;
    }
    if (peerMissing('python-torch')) return; // each test then skips or fails by the peer rule
    const dir = tmpDir('torchface-sched-');
    try {
      fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(cases.map((c) => ({ ...c, make: undefined, epochs: EPOCHS, lr: LR }))));
      runPython([path.join(HELPERS, 'torch_parity.py'), 'schedulers', path.join(dir, 'spec.json'), path.join(dir, 'out.json')]);
      theirs = JSON.parse(fs.readFileSync(path.join(dir, 'out.json'), 'utf8'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  for (const c of cases) {
    it(`${c.name}: ${c.kind} learning rates for ${EPOCHS} epochs equal PyTorch's (1e-12 relative)`, function () {
      theirs = reference(this, 'python-torch', theirs);
      const a = ours[c.name];
      const b = theirs[c.name];
      assert.equal(a.length, b.length);
      a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-12 * Math.abs(b[i]) + 1e-18, `epoch ${i}: ${v} vs ${b[i]}`));
      assert.ok(new Set(b.map((v) => v.toPrecision(6))).size > 2, 'the schedule changes the learning rate');
    });
  }
});

describe('optim.clipGradNorm matches torch.nn.utils.clip_grad_norm_', function () {
  const cases = [
    { name: 'clip_l2', max_norm: 1.0, norm_type: 2 },
    { name: 'noclip_l2', max_norm: 1000.0, norm_type: 2 },
    { name: 'clip_inf', max_norm: 0.5, norm_type: 'inf' },
    { name: 'clip_l1', max_norm: 2.0, norm_type: 1 },
  ];
  const shapes: Record<string, number[]> = { a: [3, 4], b: [5], c: [2, 2, 2] };
  const ours = new Map<string, Tensor>();
  const norms: Record<string, number> = {};
  let theirs: Map<string, Tensor> | undefined;
  before(async function () {
    manualSeed(5);
    const sent = new Map<string, Tensor>();
    for (const c of cases) {
      const ps = Object.entries(shapes).map(([n, s]) => {
        const p = randn(s).requiresGrad_(true);
        const g = randn(s);
        sent.set(`${c.name}.grad.${n}`, g.clone());
        p.grad = g;
        return p;
      });
      norms[c.name] = optim.clipGradNorm(ps, c.max_norm, c.norm_type === 'inf' ? Infinity : (c.norm_type as number));
      Object.keys(shapes).forEach((n, i) => ours.set(`${c.name}.grad.${n}`, ps[i].grad!));
    }
    if (peerMissing('python-torch')) return; // each test then skips or fails by the peer rule
    theirs = await torchParity('clip', cases.map((c) => ({ ...c, params: Object.keys(shapes) })), sent);
  });
  for (const c of cases) {
    it(`${c.name}: total norm and clipped gradients (maxNorm ${c.max_norm}, norm ${c.norm_type})`, function () {
      theirs = reference(this, 'python-torch', theirs);
      const total = theirs.get(`${c.name}.total_norm`)!.item();
      assert.ok(Math.abs(norms[c.name] - total) <= 1e-6 * total, `${norms[c.name]} vs ${total}`);
      for (const n of Object.keys(shapes)) assert.ok(relError(ours.get(`${c.name}.grad.${n}`)!, theirs.get(`${c.name}.grad.${n}`)!) <= 1e-6, n);
    });
  }
  it('returns 0 without gradients', () => {
    assert.equal(optim.clipGradNorm([randn([2]).requiresGrad_(true)], 1), 0);
  });
});
