// Shared pieces of the benchmark scripts: timing and the row format of the
// `npm run bench` harness.
import { spawnSync } from 'child_process';

/** One benchmark result: torchface vs a peer (PyTorch), ratio = torchface / peer, goal = the ratio to stay under. */
export interface BenchRow {
  case: string;
  torchface: number;
  peer: number | null;
  unit: string;
  ratio: number | null;
  goal: number | null;
}

export const PYTHON = process.env.TORCHFACE_BENCH_PYTHON ?? '/usr/bin/python3';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Times fn (warmup runs first), returns each measured run in milliseconds. */
export function timeIt(fn: () => void, reps: number, warmup = 1): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

/** Runs a Python script that prints one JSON line; null (with a note on stderr) when Python/torch is missing. */
export function runPythonJson<T>(args: string[]): T | null {
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) {
    process.stderr.write(`peer skipped: ${PYTHON} ${args[0]} failed: ${(r.stderr || String(r.error)).trim().split('\n').pop()}\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

export function printRows(rows: BenchRow[]): void {
  const f = (v: number | null, d = 1) => (v === null ? '-' : v.toFixed(d));
  console.log(['case', 'torchface', 'peer', 'unit', 'ratio', 'goal'].join('\t'));
  for (const r of rows) console.log([r.case, f(r.torchface), f(r.peer), r.unit, f(r.ratio, 2), r.goal === null ? '-' : `<= ${r.goal}`].join('\t'));
}
