// conv1d and conv3d forward + backward (sum of the output; gradients of the
// weight and bias, the input needs none), torchface vs PyTorch (peers/conv_torch.py,
// same libtorch 1.13 kernels, same thread count), at the seed's shapes
// (test/unit/conv.test.ts: length 14 / 14x14x14, one channel, 16 filters of 5 /
// 5x5x5) and at a realistic size. conv2d is in overhead.ts.
// Per case: `reps` timed repetitions of `iterations` ops after a warm-up
// (one repetition, and more calls up to 2000 or 300 ms: warmUp); µs per op, median and spread; ratio = torchface / PyTorch.
//
//   node dist/scripts/bench/cases/conv.js [--quick]
// `npm run bench` uses run().
import { conv1d, conv3d, getNumThreads, manualSeed, randn, tidy, dispose } from '../../../lib';
import { BenchRow, Summary, WARMUP_CALLS, WARMUP_MS, cli, runPython, summarize } from '../harness/common';

interface ConvCase {
  label: string;
  dims: 1 | 3;
  x: number[];
  w: number[];
  iterations: number;
}

export function convCases(quick: boolean): ConvCase[] {
  return [
    { label: 'conv1d fwd+bwd 1x1x14 * 16x1x5 (seed)', dims: 1, x: [1, 1, 14], w: [16, 1, 5], iterations: quick ? 200 : 1000 },
    { label: 'conv1d fwd+bwd 8x64x1024 * 64x64x3', dims: 1, x: [8, 64, 1024], w: [64, 64, 3], iterations: quick ? 2 : 10 },
    { label: 'conv3d fwd+bwd 1x1x14x14x14 * 16x1x5x5x5 (seed)', dims: 3, x: [1, 1, 14, 14, 14], w: [16, 1, 5, 5, 5], iterations: quick ? 20 : 100 },
    { label: 'conv3d fwd+bwd 1x16x16x56x56 * 16x16x3x3x3', dims: 3, x: [1, 16, 16, 56, 56], w: [16, 16, 3, 3, 3], iterations: quick ? 1 : 3 },
  ];
}

/** Multiply-adds of forward + backward when only weight and bias need gradients (as in these cases): 2x the forward's (no padding, stride 1). */
export function convMacs(x: number[], w: number[]): number {
  const out = x.slice(2).map((s, i) => s - w[2 + i] + 1);
  const fwd = x[0] * w[0] * out.reduce((a, b) => a * b, 1) * w[1] * w.slice(2).reduce((a, b) => a * b, 1);
  return 2 * fwd;
}

/** Untimed calls before the timed ones: at least `calls`, then the harness's rule (WARMUP_CALLS, WARMUP_MS), which the peer follows too. */
function warmUp(step: () => void, calls: number): void {
  const start = performance.now();
  for (let i = 0; i < calls || (i < WARMUP_CALLS && performance.now() - start < WARMUP_MS); i++) step();
}

export type ConvRow = BenchRow & { torchfaceSpread: Summary; peerSpread: Summary | null; macs: number };

export function run(options: { quick?: boolean; reps?: number; warmup?: number; peer?: boolean; only?: (label: string) => boolean } = {}): ConvRow[] {
  const reps = options.reps ?? 5;
  const warmup = options.warmup ?? 1;
  const threads = getNumThreads();
  const cases = convCases(!!options.quick).filter((c) => !options.only || options.only(c.label));
  manualSeed(0);
  const ours: number[][] = [];
  for (const c of cases) {
    const f = c.dims === 1 ? conv1d : conv3d;
    const x = randn(c.x);
    const w = randn(c.w, { requiresGrad: true });
    const b = randn([c.w[0]], { requiresGrad: true });
    const step = () => tidy(() => f(x, w, b).sum().backward());
    warmUp(step, warmup * c.iterations);
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < c.iterations; i++) step();
      times.push(Number(process.hrtime.bigint() - t0) / 1e3 / c.iterations);
    }
    dispose(x, w, b);
    ours.push(times);
  }
  const py = options.peer === false || !cases.length ? null : runPython<{ us: number[][] }>('conv_torch.py', { threads, reps, warmup, warmupCalls: WARMUP_CALLS, warmupMs: WARMUP_MS, cases: cases.map(({ dims, x, w, iterations }) => ({ dims, x, w, iterations })) });
  return cases.map((c, i) => {
    const s = summarize(ours[i]);
    const p = py ? summarize(py.us[i]) : null;
    return { case: `${c.label}, ${threads} thread(s)`, torchface: s.median, peer: p ? p.median : null, unit: 'µs/op', ratio: p ? s.median / p.median : null, goal: 1, torchfaceSpread: s, peerSpread: p, macs: convMacs(c.x, c.w) };
  });
}

if (require.main === module) {
  const { flags } = cli(__filename, { quick: 'boolean' });
  const rows = run({ quick: flags.quick });
  console.table(rows.map(({ torchfaceSpread, peerSpread, ...r }) => r));
}
