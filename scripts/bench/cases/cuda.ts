// `npm run bench -- --device cuda`: a few cases on the GPU, torchface vs
// Python torch on the same device (synchronised before each clock read):
// per-op dispatch (4x4 add), conv2d forward + backward at a realistic size,
// and a 4096x4096 float32 matmul (the Python side: peers/cuda_torch.py). Only
// runs where cuda.isAvailable().
import { cuda, conv2d, dispose, matmul, randn, tidy, type Device } from '../../../lib';
import { BenchRow, Summary, runPython, summarize } from '../harness/common';

const CASES = (quick: boolean) => [
  { name: 'add', label: 'add 4x4 float32', iterations: quick ? 2000 : 20000 },
  { name: 'conv', label: 'conv2d fwd+bwd 8x64x56x56 * 64x64x3x3', iterations: quick ? 10 : 50 },
  { name: 'matmul', label: 'matmul 4096x4096 float32', iterations: quick ? 10 : 50 },
];

export function run(options: { device?: Device; quick?: boolean; reps?: number } = {}): (BenchRow & { torchfaceSpread: Summary; peerSpread: Summary | null })[] {
  const device = (options.device ?? 'cuda') as Device;
  const reps = options.reps ?? 5;
  const cases = CASES(!!options.quick);
  const py = runPython<Record<string, number[]>>('cuda_torch.py', { device, reps, cases });
  return cases.map((c) => {
    let f: () => void;
    let held: ReturnType<typeof randn>[];
    if (c.name === 'add') {
      held = [randn([4, 4], { device }), randn([4, 4], { device })];
      f = () => held[0].add(held[1]).dispose();
    } else if (c.name === 'conv') {
      held = [randn([8, 64, 56, 56], { device }), randn([64, 64, 3, 3], { device, requiresGrad: true })];
      f = () => tidy(() => conv2d(held[0], held[1]).sum().backward());
    } else {
      held = [randn([4096, 4096], { device }), randn([4096, 4096], { device })];
      f = () => matmul(held[0], held[1]).dispose();
    }
    const ts: number[] = [];
    for (let r = 0; r <= reps; r++) {
      cuda.synchronize();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < c.iterations; i++) f();
      cuda.synchronize();
      if (r) ts.push(Number(process.hrtime.bigint() - t0) / 1e3 / c.iterations);
    }
    dispose(...held);
    const s = summarize(ts);
    const p = py?.[c.name] ? summarize(py[c.name]) : null;
    return { case: `${c.label} on ${device}`, torchface: s.median, peer: p?.median ?? null, unit: 'µs/op', ratio: p ? s.median / p.median : null, goal: 1, torchfaceSpread: s, peerSpread: p };
  });
}
