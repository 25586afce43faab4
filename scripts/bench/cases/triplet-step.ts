// Benchmark (not a test): one triplet-loss training step of the from-scratch
// face embedder (EmbeddingNet: resnet10 = ResNet [1,1,1,1] width 32, imagenet
// stem, 128-d, L2-normalised; semi-hard mining; backward; Adam) on a fixed
// P x K batch of random images, torchface vs PyTorch (/usr/bin/python3, same
// architecture via test/helpers/torch_resnet.py and the same mining
// formulation, scripts/bench/peers/triplet_step.py), same thread count, in the same
// run. Image decoding is excluded (the training loop overlaps it with the step).
//   node dist/scripts/bench/cases/triplet-step.js [--reps N] [--size N] [--threads N]
import { EMBEDDING_ARCHITECTURES, EmbeddingArchitecture, EmbeddingNet, getNumThreads, threadMode, manualSeed, mineTriplets, optim, rand, setNumThreads, tidy } from '../../../lib';
import { BenchRow, cli, median, printRows, runPython, timeIt } from '../harness/common';

export interface TripletStepOptions {
  architecture?: EmbeddingArchitecture;
  size?: number;
  p?: number;
  k?: number;
  reps?: number;
  warmup?: number;
  threads?: number;
  peer?: boolean;
}

/** Rows for the `npm run bench` harness: step time (ratio = torchface / PyTorch, goal <= 1.25) and images/s. */
export function measureTripletStep(options: TripletStepOptions = {}): BenchRow[] {
  const o = { architecture: 'resnet10' as EmbeddingArchitecture, size: 64, p: 8, k: 4, reps: 10, warmup: 2, threads: getNumThreads(), peer: true, ...options };
  const mode = threadMode(); // restored after: 'auto' stays 'auto'
  setNumThreads(o.threads);
  try {
    manualSeed(0);
    const net = new EmbeddingNet({ architecture: o.architecture, inputSize: o.size, embeddingDim: 128 });
    net.train();
    const opt = new optim.Adam(net.parameters(), { lr: 1e-3, weightDecay: 5e-4 });
    const b = o.p * o.k;
    const x = rand([b, 3, o.size, o.size]).mul(255);
    const labels = Array.from({ length: b }, (_, i) => Math.floor(i / o.k));
    const ours = timeIt(
      () =>
        tidy(() => {
          const m = mineTriplets(net.forward(x), labels, { strategy: 'semi-hard', margin: 0.2 });
          opt.zeroGrad();
          m.loss.backward();
          opt.step();
          m.loss.item();
        }),
      o.reps,
      o.warmup,
    );
    const spec = EMBEDDING_ARCHITECTURES[o.architecture];
    let peer: number | null = null;
    if (o.peer) {
      const r = runPython<{ times_ms: number[] }>('triplet_step.py', { layers: spec.depth, width: spec.width, dim: 128, size: o.size, p: o.p, k: o.k, margin: 0.2, reps: o.reps, warmup: o.warmup, threads: o.threads });
      peer = r ? median(r.times_ms) : null;
    }
    const ms = median(ours);
    const label = `triplet step ${o.architecture} ${o.size}px, batch ${o.p}x${o.k}, semi-hard + Adam, ${o.threads} thread(s)`;
    return [
      { case: `${label}: time`, torchface: ms, peer, unit: 'ms', ratio: peer ? ms / peer : null, goal: 1.25 },
      { case: `${label}: throughput (higher is better)`, torchface: (1000 * b) / ms, peer: peer ? (1000 * b) / peer : null, unit: 'images/s', ratio: peer ? peer / ms : null, goal: null },
    ];
  } finally {
    setNumThreads(mode);
  }
}

if (require.main === module) {
  const { flags } = cli(__filename, { reps: 'number', size: 'number', threads: 'number' });
  printRows(measureTripletStep({ reps: flags.reps ?? 10, size: flags.size ?? 64, threads: flags.threads ?? 1 }));
}
