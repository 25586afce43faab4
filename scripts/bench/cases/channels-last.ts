// Benchmark (not a test): when does channels-last (NHWC) memory help 2-D
// convolutions on this CPU? libtorch 1.13 sends NCHW convolutions with batch 1,
// 3x3 kernels and small inputs (N*C*H*W <= 20480, no groups/stride/dilation)
// to its slow im2col path ("slow_conv2d"), while channels-last convolutions always
// go through oneDNN. Each case times a no-grad forward of NCHW vs channels-last
// (weights and input) and reports ratio = channelsLast / NCHW (< 1: channels-last
// is faster).
//   node dist/scripts/bench/cases/channels-last.js [--reps N] [--threads N]
import { Tensor, getNumThreads, manualSeed, nn, noGrad, randn, resnet18, setNumThreads } from '../../../lib';
import { BenchRow, cli, median, printRows, timeIt } from '../harness/common';

function timeForward(f: (x: Tensor) => Tensor, x: Tensor, reps: number): number {
  return median(timeIt(() => noGrad(() => f(x).dispose()), reps, 2));
}

/** Rows { case, torchface: channels-last ms, peer: NCHW ms, ratio } for single convolutions and a ResNet-18. */
export function measureChannelsLast(options: { reps?: number } = {}): BenchRow[] {
  const reps = options.reps ?? 15;
  const rows: BenchRow[] = [];
  manualSeed(0);
  const convCases: [number, number, number, number][] = [
    // batch, channels, size, kernel
    [1, 16, 14, 3],
    [1, 32, 14, 3],
    [1, 64, 14, 3],
    [1, 32, 28, 3],
    [1, 64, 28, 3],
    [1, 64, 56, 3],
    [8, 64, 28, 3],
    [1, 64, 28, 1],
  ];
  for (const [n, c, s, k] of convCases) {
    const conv = new nn.Conv2d(c, c, k, { padding: k >> 1 });
    const x = randn([n, c, s, s]);
    const nchw = timeForward((v) => conv.forward(v), x, reps);
    conv.to({ channelsLast: true });
    const xl = x.contiguous({ channelsLast: true });
    const cl = timeForward((v) => conv.forward(v), xl, reps);
    rows.push({ case: `conv ${k}x${k} ${c}->${c}, input ${n}x${c}x${s}x${s} (N*C*H*W=${n * c * s * s})`, torchface: cl, peer: nchw, unit: 'ms (channels-last vs NCHW)', ratio: cl / nchw, goal: null });
    conv.dispose();
    x.dispose();
    xl.dispose();
  }
  for (const [batch, size] of [
    [1, 112],
    [1, 56],
    [8, 112],
  ]) {
    const model = resnet18({ outFeatures: 128, inputSize: size, stem: 'imagenet' }).eval();
    const x = randn([batch, 3, size, size]);
    const nchw = timeForward((v) => model.forward(v), x, Math.max(3, reps >> 2));
    model.to({ channelsLast: true });
    const xl = x.contiguous({ channelsLast: true });
    const cl = timeForward((v) => model.forward(v), xl, Math.max(3, reps >> 2));
    rows.push({ case: `resnet18 eval forward, input ${batch}x3x${size}x${size}`, torchface: cl, peer: nchw, unit: 'ms (channels-last vs NCHW)', ratio: cl / nchw, goal: null });
    model.dispose();
  }
  return rows;
}

if (require.main === module) {
  const { flags } = cli(__filename, { reps: 'number', threads: 'number' });
  // On a shared, oversubscribed machine 1 thread gives far steadier numbers.
  if (flags.threads !== undefined) setNumThreads(flags.threads);
  console.log(`threads: ${getNumThreads()}; torchface = channels-last, peer = NCHW (same torchface build)`);
  printRows(measureChannelsLast({ reps: flags.reps }));
}
