// Memory benchmark: peak RSS and RSS growth over many repetitions of
//  * a face descriptor at batch 1 (FaceModel.pretrained(), a 150x150 crop), and
//  * a triplet training step on a small net (EmbeddingNet resnet10, 64 px,
//    4x4 batch, semi-hard mining, Adam),
// each in its own child process so that RSS belongs to that case alone.
// The child samples RSS after the warm-up and after every tenth of the
// repetitions; "growth" is RSS at the end minus RSS half-way (allocator and
// libtorch caches take a few hundred steps to settle; a leak keeps growing).
// Goal: flat, taken as growth below 5% of the half-way RSS. Peak RSS is the
// child's VmHWM.
//
//   node dist/scripts/bench/cases/memory.js [--reps N] [--case descriptor|triplet]
//   (internally: node dist/scripts/bench/cases/memory.js --child CASE --reps N)
// `npm run bench` uses run().
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { BenchRow, cli, fixtureCrops } from '../harness/common';

export type MemoryCase = 'descriptor' | 'triplet';

interface ChildResult {
  case: MemoryCase;
  reps: number;
  threads: number;
  /** MB: after loading, after warm-up, after every tenth of the repetitions */
  rssLoadedMb: number;
  rssSamplesMb: number[];
  peakRssMb: number;
  liveTensors: number;
  seconds: number;
}

const MB = 1024 * 1024;

/** Peak RSS of this process in MB: VmHWM (reset by exec, unlike getrusage's maxrss, which a child inherits from its parent). */
function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}

async function child(which: MemoryCase, reps: number): Promise<void> {
  // loaded here, not at the top: run() in the parent only starts children
  const tf = await import('../../../lib');
  const t0 = performance.now();
  let step: () => Promise<void>;
  let cleanup: () => void;
  if (which === 'descriptor') {
    const model = await tf.FaceModel.pretrained();
    const [crop] = fixtureCrops(1);
    step = async () => {
      await model.embedRgb([crop]);
    };
    cleanup = () => model.dispose();
  } else {
    tf.manualSeed(0);
    const net = new tf.EmbeddingNet({ architecture: 'resnet10', inputSize: 64, embeddingDim: 128 });
    net.train();
    const opt = new tf.optim.Adam(net.parameters(), { lr: 1e-3, weightDecay: 5e-4 });
    const p = 4;
    const k = 4;
    const x = tf.rand([p * k, 3, 64, 64]).mul(255);
    const labels = Array.from({ length: p * k }, (_, i) => Math.floor(i / k));
    step = async () =>
      tf.tidy(() => {
        const m = tf.mineTriplets(net.forward(x), labels, { strategy: 'semi-hard', margin: 0.2 });
        opt.zeroGrad();
        m.loss.backward();
        opt.step();
        m.loss.item();
      });
    cleanup = () => {
      x.dispose();
      opt.dispose();
      net.dispose();
    };
  }
  const rssLoadedMb = process.memoryUsage().rss / MB;
  for (let i = 0; i < 3; i++) await step(); // warm-up
  const samples = [process.memoryUsage().rss / MB];
  const every = Math.max(1, Math.floor(reps / 10));
  for (let i = 1; i <= reps; i++) {
    await step();
    if (i % every === 0 || i === reps) samples.push(process.memoryUsage().rss / MB);
  }
  const liveTensors = tf.memory().tensors;
  cleanup();
  const out: ChildResult = { case: which, reps, threads: tf.getNumThreads(), rssLoadedMb, rssSamplesMb: samples, peakRssMb: peakRssMb(), liveTensors, seconds: (performance.now() - t0) / 1000 };
  process.stdout.write(JSON.stringify(out) + '\n');
}

export type MemoryRow = BenchRow & { detail: ChildResult | null; error?: string };

/** Runs each case in a child node process; rows: peak RSS and RSS growth (MB) per case. */
export function run(options: { reps?: number; cases?: MemoryCase[]; log?: (s: string) => void } = {}): MemoryRow[] {
  const reps = options.reps ?? 1000;
  const log = options.log ?? (() => undefined);
  const rows: MemoryRow[] = [];
  for (const which of options.cases ?? (['descriptor', 'triplet'] as MemoryCase[])) {
    const r = spawnSync(process.execPath, [__filename, '--child', which, '--reps', String(reps)], { encoding: 'utf8', maxBuffer: 16 << 20 });
    const label = which === 'descriptor' ? 'descriptor batch 1 (150x150)' : 'triplet step resnet10 64px 4x4';
    if (r.status !== 0) throw new Error(`memory ${which}: child failed: ${(r.stderr || String(r.error)).trim().split('\n').slice(-3).join(' | ')}`);
    const d = JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
    // growth over the second half of the repetitions (after allocator and caches settled)
    const settled = d.rssSamplesMb[Math.floor((d.rssSamplesMb.length - 1) / 2)];
    const end = d.rssSamplesMb[d.rssSamplesMb.length - 1];
    const growth = end - settled;
    log(`memory ${which}: ${d.reps} reps in ${d.seconds.toFixed(1)} s, RSS samples ${d.rssSamplesMb.map((v) => v.toFixed(0)).join(' ')} MB, peak ${d.peakRssMb.toFixed(0)} MB, live tensors ${d.liveTensors}`);
    rows.push({ case: `memory: peak RSS, ${label}`, torchface: d.peakRssMb, peer: null, unit: 'MB', ratio: null, goal: null, detail: d });
    rows.push({
      case: `memory: RSS growth over the last ${d.reps - Math.floor(d.reps / 2)} of ${d.reps} reps, ${label} (RSS ${settled.toFixed(0)} MB at half-way)`,
      torchface: growth,
      peer: null,
      unit: 'MB',
      ratio: growth / settled,
      goal: 0.05,
      detail: d,
    });
  }
  return rows;
}

if (require.main === module) {
  const { flags } = cli(__filename, { child: 'string', reps: 'number', case: 'string' });
  if (flags.child) {
    child(flags.child as MemoryCase, flags.reps!).catch((e) => {
      console.error(e);
      process.exit(1);
    });
  } else {
    const rows = run({ reps: flags.reps, cases: flags.case ? [flags.case as MemoryCase] : undefined, log: (s) => console.error(s) });
    console.table(rows.map(({ detail, ...r }) => r));
  }
}
