// Benchmark (not a test): one training step (forward, cross-entropy,
// backward, Adam step) of a ResNet-18 on a batch of 32 112x112 images,
// torchface vs PyTorch (peers/train_step.py) with the same architecture
// (test/helpers/torch_resnet.py), same thread count, in the same run.
//   node dist/scripts/bench/cases/train-step.js [--reps N] [--rounds N] [--batch N] [--size N] [--channels-last]
import { crossEntropy, getNumThreads, manualSeed, optim, randint, randn, resnet18, tidy } from '../../../lib';
import { BenchRow, cli, median, printRows, runPython, timeIt } from '../harness/common';

export interface TrainStepOptions {
  batch?: number;
  size?: number;
  classes?: number;
  width?: number;
  reps?: number;
  warmup?: number;
  /** Alternating rounds of torchface and PyTorch timing (reduces drift on a busy machine). Default 2. */
  rounds?: number;
  channelsLast?: boolean;
  /** Also time PyTorch (default true). */
  peer?: boolean;
}

/** Median milliseconds per training step for torchface and PyTorch, as harness rows. */
export function measureTrainStep(options: TrainStepOptions = {}): BenchRow[] {
  const o = { batch: 32, size: 112, classes: 1000, width: 64, reps: 3, warmup: 1, rounds: 2, channelsLast: false, peer: true, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  manualSeed(0);
  const model = resnet18({ width: o.width, outFeatures: o.classes, inputSize: o.size, stem: 'imagenet' });
  if (o.channelsLast) model.to({ channelsLast: true });
  model.train();
  const opt = new optim.Adam(model.parameters(), { lr: 1e-3 });
  let x = randn([o.batch, 3, o.size, o.size]);
  if (o.channelsLast) x = x.contiguous({ channelsLast: true });
  const y = randint(0, o.classes, [o.batch]);
  const step = () => {
    opt.zeroGrad();
    tidy(() => {
      const loss = crossEntropy(model.forward(x), y);
      loss.backward();
    });
    opt.step();
  };
  const label = `resnet18 train step (fwd+bwd+Adam), batch ${o.batch} @ ${o.size}x${o.size}${o.channelsLast ? ', channels-last' : ''}, ${getNumThreads()} threads`;
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let round = 0; round < o.rounds; round++) {
    ours.push(...timeIt(step, o.reps, o.warmup));
    if (!o.peer) continue;
    const r = runPython<{ times_ms: number[] }>('train_step.py', { layers: [2, 2, 2, 2], width: o.width, classes: o.classes, stem: 'imagenet', batch: o.batch, size: o.size, reps: o.reps, warmup: o.warmup, threads: getNumThreads(), channels_last: o.channelsLast });
    if (r) theirs.push(...r.times_ms);
  }
  const peer = theirs.length ? median(theirs) : null;
  model.dispose();
  opt.dispose();
  const t = median(ours);
  return [{ case: label, torchface: t, peer, unit: 'ms/step', ratio: peer ? t / peer : null, goal: 1.0 }];
}

if (require.main === module) {
  const { flags } = cli(__filename, { reps: 'number', rounds: 'number', batch: 'number', size: 'number', 'channels-last': 'boolean' });
  const rows = measureTrainStep({ reps: flags.reps, rounds: flags.rounds, batch: flags.batch, size: flags.size, channelsLast: !!flags['channels-last'] });
  printRows(rows);
}
