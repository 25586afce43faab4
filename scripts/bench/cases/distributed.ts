// Benchmark (not a test) of distributed training on this machine, over loopback:
// - all-reduce of 1, 16 and 64 MB float32 tensors between 2 processes (blocks of
//   back-to-back calls after a barrier, per-call time): torchface
//   (lib/distributed, libtorch's Gloo) vs Python torch.distributed with Gloo
//   (peers/allreduce_torch.py, the same c10d: the ratio is our overhead),
//   alternating in one run; algorithm bandwidth = bytes / time, as torch's
//   benchmarks report it;
// - the triplet training step (resnet10 64 px, P x K = 8 x 4 per process,
//   semi-hard, Adam) with DistributedDataParallel on 2 processes of 1 thread vs
//   1 process of 1 thread: scaling efficiency = images/s(2) / (2 x images/s(1)),
//   and vs 1 process with 2 threads (all cores: is data parallel the better use
//   of them?).
//   node dist/scripts/bench/cases/distributed.js [--reps N]
// As a rank (BENCH_DIST_ROLE set by this script through launch()) it measures and rank 0 prints JSON.
import { spawn } from 'child_process';
import { Writable } from 'stream';
import { EmbeddingNet, distributed, manualSeed, mineTriplets, optim, rand, setNumThreads, tidy, ones } from '../../../lib';
import { PYTHON, TextGoalRow, cli, median, peerScript } from '../harness/common';

const SIZES_MB = [1, 16, 64];
const P = 8;
const K = 4;

interface RankResult {
  allReduceMs?: Record<string, number[]>;
  stepMs?: number[];
}

async function asRank(role: string, reps: number): Promise<void> {
  setNumThreads(Number(process.env.OMP_NUM_THREADS ?? 1));
  const group = process.env.WORLD_SIZE && Number(process.env.WORLD_SIZE) > 1 ? await distributed.initProcessGroup({ timeoutMs: 120_000 }) : null;
  const out: RankResult = {};
  if (role === 'allreduce') {
    out.allReduceMs = {};
    for (const mb of SIZES_MB) {
      const t = ones([Math.round((mb * 1024 * 1024) / 4)]);
      for (let i = 0; i < 3; i++) await group!.allReduce(t);
      // Blocks of back-to-back all-reduces after a barrier: a single timed call
      // would mostly measure how far apart the ranks leave the barrier.
      const times: number[] = [];
      for (let b = 0; b < 3; b++) {
        await group!.barrier();
        const t0 = performance.now();
        for (let i = 0; i < reps; i++) await group!.allReduce(t);
        times.push((performance.now() - t0) / reps);
      }
      out.allReduceMs[String(mb)] = times;
      t.dispose();
    }
  } else {
    manualSeed(0);
    const net = new EmbeddingNet({ architecture: 'resnet10', inputSize: 64, embeddingDim: 128 });
    net.train();
    const ddp = group ? new distributed.DistributedDataParallel(net, { group }) : null;
    const opt = new optim.Adam(net.parameters(), { lr: 1e-3, weightDecay: 5e-4 });
    const x = rand([P * K, 3, 64, 64]).mul(255);
    const labels = Array.from({ length: P * K }, (_, i) => Math.floor(i / K));
    const step = () =>
      tidy(() => {
        const emb = ddp ? (ddp.forward(x) as ReturnType<typeof net.forward>) : net.forward(x);
        const m = mineTriplets(emb, labels, { strategy: 'semi-hard', margin: 0.2 });
        opt.zeroGrad();
        m.loss.backward();
        opt.step();
        m.loss.item();
      });
    for (let i = 0; i < 2; i++) step();
    out.stepMs = [];
    for (let i = 0; i < reps; i++) {
      if (group) await group.barrier();
      const t0 = performance.now();
      step();
      out.stepMs.push(performance.now() - t0);
    }
    ddp?.release();
  }
  if (!group || group.rank === 0) process.stdout.write(JSON.stringify(out) + '\n');
  if (group) distributed.destroyProcessGroup();
}

async function runRanks(nproc: number, role: string, reps: number, threads: number): Promise<RankResult> {
  let text = '';
  const capture = new Writable({
    write(c, _e, cb) {
      text += String(c);
      cb();
    },
  });
  await distributed.launch({ nproc, script: __filename, args: [], env: { BENCH_DIST_ROLE: role, BENCH_DIST_REPS: String(reps), OMP_NUM_THREADS: String(threads) }, threadsPerProcess: threads, stdout: capture });
  const line = text.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no result from the ranks: ${text.slice(0, 500)}`);
  return JSON.parse(line) as RankResult;
}

function runPythonAllReduce(python: string, reps: number): Promise<Record<string, number[]> | null> {
  return distributed.freePort().then(
    (port) =>
      new Promise((resolve) => {
        const script = peerScript('allreduce_torch.py');
        let stdout = '';
        let failed = '';
        let left = 2;
        for (let rank = 0; rank < 2; rank++) {
          const child = spawn(python, [script, JSON.stringify({ sizes_mb: SIZES_MB, reps, warmup: 3 })], {
            env: { ...process.env, RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), OMP_NUM_THREADS: '1' },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          child.stdout.on('data', (d) => (stdout += d));
          child.stderr.on('data', (d) => (failed += d));
          child.on('close', (code) => {
            if (code !== 0) failed += `rank ${rank} exited ${code}`;
            if (--left === 0) {
              const line = stdout.split('\n').find((l) => l.startsWith('{'));
              if (!line) process.stderr.write(`peer skipped: ${python} allreduce_torch.py: ${failed.trim().split('\n').pop()}\n`);
              resolve(line ? (JSON.parse(line) as { ms: Record<string, number[]> }).ms : null);
            }
          });
        }
      }),
  );
}

export async function benchDistributed(options: { reps?: number; rounds?: number; log?: (s: string) => void } = {}): Promise<TextGoalRow[]> {
  const reps = options.reps ?? 10;
  const rounds = options.rounds ?? 2;
  const log = options.log ?? (() => undefined);
  const ours: Record<string, number[]> = {};
  const peer: Record<string, number[]> = {};
  let peerMissing = false;
  const steps = { two: [] as number[], one1: [] as number[], one2: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    const a = await runRanks(2, 'allreduce', reps, 1);
    for (const [mb, t] of Object.entries(a.allReduceMs!)) (ours[mb] ??= []).push(...t);
    const p = PYTHON && !peerMissing ? await runPythonAllReduce(PYTHON, reps) : null;
    if (!p) peerMissing = true;
    else for (const [mb, t] of Object.entries(p)) (peer[mb] ??= []).push(...t);
    steps.two.push(...(await runRanks(2, 'step', reps, 1)).stepMs!);
    steps.one1.push(...(await runRanks(1, 'step', reps, 1)).stepMs!);
    steps.one2.push(...(await runRanks(1, 'step', reps, 2)).stepMs!);
    log(`round ${r + 1}/${rounds} done`);
  }
  const rows: TextGoalRow[] = [];
  for (const mb of SIZES_MB.map(String)) {
    const oursMs = median(ours[mb]);
    const peerMs = peer[mb] ? median(peer[mb]) : null;
    const bw = (ms: number) => (Number(mb) * 1024 * 1024) / 1e6 / (ms / 1000); // MB/s
    rows.push({ case: `all-reduce ${mb} MB float32, 2 processes (Gloo, loopback): algorithm bandwidth (higher is better)`, torchface: bw(oursMs), peer: peerMs ? bw(peerMs) : null, unit: 'MB/s', ratio: peerMs ? bw(oursMs) / bw(peerMs) : null, goal: '>= 0.9 x PyTorch' });
  }
  const imgs = (ms: number[], n: number) => (n * P * K * 1000) / median(ms);
  const two = imgs(steps.two, 2);
  const one1 = imgs(steps.one1, 1);
  const one2 = imgs(steps.one2, 1);
  rows.push({ case: `triplet step resnet10 64px ${P}x${K}/process: 2 processes x 1 thread (DDP) vs 1 process x 1 thread: scaling efficiency = ratio / 2`, torchface: two, peer: one1, unit: 'images/s', ratio: two / one1, goal: 'info (1.0 = no gain, 2.0 = perfect)' });
  rows.push({ case: `triplet step resnet10 64px: 2 processes x 1 thread (DDP) vs 1 process x 2 threads`, torchface: two, peer: one2, unit: 'images/s', ratio: two / one2, goal: 'info' });
  return rows;
}

if (require.main === module) {
  const role = process.env.BENCH_DIST_ROLE;
  if (role) {
    asRank(role, Number(process.env.BENCH_DIST_REPS ?? 10)).catch((e) => {
      process.stderr.write(`${(e as Error).stack}\n`);
      process.exit(1);
    });
  } else {
    const { flags } = cli(__filename, { reps: 'number' });
    benchDistributed({ reps: flags.reps ?? 10, log: (s) => console.error(s) }).then((rows) => {
      for (const r of rows) console.log(`${r.case}\t${r.torchface.toFixed(1)}\t${r.peer?.toFixed(1) ?? '-'}\t${r.unit}\tratio ${r.ratio?.toFixed(2) ?? '-'}\t${r.goal}`);
    });
  }
}
