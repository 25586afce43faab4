// Per-op overhead of torchface against PyTorch (Debian's python3-torch, the
// same libtorch 1.13 kernels), measured in the same run with the same thread
// count: a 4x4 float32 add (the cost of crossing into libtorch and back), and
// conv2d forward + backward at the seed shape (1x3x14x14 * 16x3x5x5) and at a
// realistic size (8x64x56x56 * 64x64x3x3, where the kernels dominate).
//
//   node dist/scripts/bench/cases/overhead.js [--threads N] [--reps N] [--quick] [--json]
//
// Python runs as a long-lived child process (peers/overhead_torch.py) that
// executes one repetition per request, so torchface and PyTorch repetitions
// alternate: on a shared, noisy machine both see the same background load.
// Each case reports the median per-op time (µs) over the repetitions, after a
// warm-up (one repetition, and more up to 2000 calls or 300 ms).
// `npm run bench` can reuse benchOverhead() (also exported as run()).
import { spawn, ChildProcessWithoutNullStreams } from 'child_process';
import { createInterface } from 'readline';
import * as tf from '../../../lib';
import { PYTHON, WARMUP_CALLS, WARMUP_MS, cli, median, peerScript, type BenchRow as HarnessRow } from '../harness/common';

/**
 * A row of the `npm run bench` harness (torchface and peer: median wall µs per
 * op; ratio = torchface / peer; goal = the ratio to stay under), plus CPU times.
 */
export interface BenchRow extends HarnessRow {
  /** Median process CPU µs per op (all threads), torchface and peer: steadier than wall time on a shared machine. */
  torchfaceCpu?: number;
  peerCpu?: number | null;
}

export interface OverheadOptions {
  /** Intra-op threads for both (default: torchface's current setting). */
  threads?: number;
  /** Timed repetitions per case, after one warm-up (default 5). */
  repetitions?: number;
  /** Fewer iterations per repetition (a smoke run). */
  quick?: boolean;
  /** Python with torch (default: TORCHFACE_PYTHON, harness/common.ts); null: no peer. */
  python?: string | null;
  /** Cases to run (default all). */
  cases?: CaseName[];
  /** Called with a line of progress. */
  log?: (line: string) => void;
  /** Called with each timed repetition. */
  onRepetition?: (rep: Repetition) => void;
}

/** One timed repetition of a case: µs per op, of wall and of process CPU time; NaN for a missing peer. */
export interface Repetition {
  case: CaseName;
  rep: number;
  torchface: { wall: number; cpu: number };
  pytorch: { wall: number; cpu: number };
}

export type CaseName = 'add' | 'conv-seed' | 'conv-large';

interface CaseSpec {
  name: CaseName;
  label: string;
  iterations: number;
  goal: number;
  x?: number[];
  w?: number[];
}

const CASES = (quick: boolean): CaseSpec[] => [
  { name: 'add', label: 'add 4x4 float32 (100k ops)', iterations: quick ? 10000 : 100000, goal: 1.0 },
  { name: 'conv-seed', label: 'conv2d fwd+bwd 1x3x14x14 * 16x3x5x5', iterations: quick ? 100 : 1000, goal: 1.2, x: [1, 3, 14, 14], w: [16, 3, 5, 5] },
  { name: 'conv-large', label: 'conv2d fwd+bwd 8x64x56x56 * 64x64x3x3', iterations: quick ? 1 : 3, goal: 1.05, x: [8, 64, 56, 56], w: [64, 64, 3, 3] },
];

class PythonPeer {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }
  static async start(python: string, threads: number): Promise<{ peer: PythonPeer; info: { threads: number; version: string } } | null> {
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(python, [peerScript('overhead_torch.py'), JSON.stringify({ threads })], { env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
    } catch {
      return null;
    }
    const stderr: string[] = [];
    child.stderr.on('data', (d) => stderr.push(String(d)));
    const failed = new Promise<null>((resolve) => {
      child.once('error', () => resolve(null));
      child.once('exit', () => resolve(null));
    });
    const peer = new PythonPeer(child);
    const first = await Promise.race([peer.next(), failed]);
    if (!first) return null;
    return { peer, info: first as unknown as { threads: number; version: string } };
  }
  private async next(): Promise<Record<string, unknown> | null> {
    const r = await this.lines.next();
    return r.done ? null : (JSON.parse(r.value) as Record<string, unknown>);
  }
  async seconds(spec: CaseSpec): Promise<Timing> {
    this.child.stdin.write(JSON.stringify({ case: spec.name, iterations: spec.iterations, x: spec.x, w: spec.w }) + '\n');
    const r = await this.next();
    if (!r) throw new Error('the python peer exited');
    return { wall: r.seconds as number, cpu: r.cpu as number };
  }
  stop(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}

interface Timing {
  /** seconds of wall time */
  wall: number;
  /** seconds of process CPU time */
  cpu: number;
}

function timed(fn: () => void): Timing {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6 };
}

/** One torchface repetition of a case: times for spec.iterations ops. */
function torchfaceSeconds(spec: CaseSpec, state: Map<string, tf.Tensor[]>): Timing {
  if (spec.name === 'add') {
    const a = tf.randn([4, 4]);
    const b = tf.randn([4, 4]);
    const t = timed(() => {
      for (let i = 0; i < spec.iterations; i++) a.add(b).dispose();
    });
    tf.dispose(a, b);
    return t;
  }
  let tensors = state.get(spec.name);
  if (!tensors) {
    tensors = [tf.randn(spec.x!), tf.randn(spec.w!, { requiresGrad: true }), tf.randn([spec.w![0]], { requiresGrad: true })];
    state.set(spec.name, tensors);
  }
  const [x, w, b] = tensors;
  return timed(() => {
    for (let i = 0; i < spec.iterations; i++) {
      tf.tidy(() => {
        tf.conv2d(x, w, b).sum().backward();
      });
    }
  });
}


/** Measures every case, alternating torchface and PyTorch repetitions. */
export async function benchOverhead(options: OverheadOptions = {}): Promise<BenchRow[]> {
  const threads = options.threads ?? tf.getNumThreads();
  const reps = options.repetitions ?? 5;
  const log = options.log ?? (() => undefined);
  const previousThreads = tf.threadMode();
  tf.setNumThreads(threads);
  tf.manualSeed(0);
  const python = options.python === undefined ? PYTHON : options.python;
  const started = python ? await PythonPeer.start(python, threads) : null;
  if (started) log(`peer: PyTorch ${started.info.version}, ${started.info.threads} thread(s); torchface ${tf.versions().torchface} on libtorch ${tf.versions().libtorch}, ${tf.getNumThreads()} thread(s)`);
  else log('peer: python3-torch not available; reporting torchface only');
  const state = new Map<string, tf.Tensor[]>();
  const rows: BenchRow[] = [];
  try {
    for (const spec of CASES(!!options.quick).filter((c) => !options.cases || options.cases.includes(c.name))) {
      const ours: Timing[] = [];
      const theirs: Timing[] = [];
      const us = (s: number) => (s / spec.iterations) * 1e6;
      // Warm-up: one repetition each, and more by the harness's rule (WARMUP_CALLS, WARMUP_MS:
      // --quick's 100-call repetition leaves the JS side unoptimized), alternating as the timed ones.
      const warmStart = performance.now();
      for (let calls = 0; calls === 0 || (calls < WARMUP_CALLS && performance.now() - warmStart < WARMUP_MS); calls += spec.iterations) {
        torchfaceSeconds(spec, state);
        if (started) await started.peer.seconds(spec);
      }
      for (let r = 1; r <= reps; r++) {
        const a = torchfaceSeconds(spec, state);
        const b = started ? await started.peer.seconds(spec) : { wall: NaN, cpu: NaN };
        ours.push(a);
        theirs.push(b);
        options.onRepetition?.({ case: spec.name, rep: r, torchface: { wall: us(a.wall), cpu: us(a.cpu) }, pytorch: { wall: us(b.wall), cpu: us(b.cpu) } });
      }
      const t = median(ours.map((o) => us(o.wall)));
      const p = started ? median(theirs.map((o) => us(o.wall))) : null;
      const tc = median(ours.map((o) => us(o.cpu)));
      const pc = started ? median(theirs.map((o) => us(o.cpu))) : null;
      rows.push({
        case: spec.label,
        torchface: round(t),
        peer: p === null ? null : round(p),
        unit: 'µs/op',
        ratio: p ? Math.round((t / p) * 100) / 100 : null,
        goal: spec.goal,
        torchfaceCpu: round(tc),
        peerCpu: pc === null ? null : round(pc),
      });
    }
  } finally {
    started?.peer.stop();
    for (const ts of state.values()) tf.dispose(ts);
    tf.setNumThreads(previousThreads);
  }
  return rows;
}

export const run = benchOverhead;

const round = (v: number) => (v >= 100 ? Math.round(v) : Math.round(v * 100) / 100);

export function formatRows(rows: BenchRow[]): string {
  const header = ['case', 'torchface', 'pytorch', 'unit', 'ratio', 'cpu ratio', 'goal'];
  const cpuRatio = (r: BenchRow) => (r.peerCpu && r.torchfaceCpu !== undefined ? `${Math.round((r.torchfaceCpu / r.peerCpu) * 100) / 100}x` : '-');
  const body = rows.map((r) => [r.case, String(r.torchface), r.peer === null ? '-' : String(r.peer), r.unit, r.ratio === null ? '-' : `${r.ratio}x`, cpuRatio(r), r.goal === null ? '-' : `<= ${r.goal}x`]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  return [header, ...body].map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const { flags } = cli(__filename, { threads: 'number', reps: 'number', quick: 'boolean', json: 'boolean' });
  const rows = await benchOverhead({
    threads: flags.threads,
    repetitions: flags.reps,
    quick: flags.quick,
    log: (l) => console.error(l),
    onRepetition: (r) => console.error(`  ${r.case} rep ${r.rep}: torchface ${r.torchface.wall.toFixed(2)} µs (cpu ${r.torchface.cpu.toFixed(2)}), pytorch ${r.pytorch.wall.toFixed(2)} µs (cpu ${r.pytorch.cpu.toFixed(2)})`),
  });
  console.log(flags.json ? JSON.stringify(rows, null, 1) : formatRows(rows));
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
