// Shared pieces of the benchmark scripts: timing and the row format of the
// `npm run bench` harness.
import { spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';

/** One benchmark result: torchface vs a peer (PyTorch), ratio = torchface / peer, goal = the ratio to stay under. */
export interface BenchRow {
  case: string;
  torchface: number;
  peer: number | null;
  unit: string;
  ratio: number | null;
  goal: number | null;
}

/** A row whose goal is described in words (e.g. '< 50 ms') rather than as a ratio bound. */
export type TextGoalRow = Omit<BenchRow, 'goal'> & { goal: string };

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

/** Median and spread of repeated measurements (quartiles by linear interpolation). */
export interface Summary {
  median: number;
  q1: number;
  q3: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(xs: number[]): Summary {
  const s = [...xs].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!s.length) return { median: NaN, q1: NaN, q3: NaN, min: NaN, max: NaN, n: 0 };
  const q = (p: number) => {
    const i = (s.length - 1) * p;
    const lo = Math.floor(i);
    return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
  };
  return { median: median(s), q1: q(0.25), q3: q(0.75), min: s[0], max: s[s.length - 1], n: s.length };
}

/** timeIt for async work: warmup runs, then each measured run in milliseconds. */
export async function timeItAsync(fn: () => Promise<unknown> | unknown, reps: number, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

/** runPythonJson for an inline script: `python -c code args...`; the script prints one JSON line last. */
export function runPythonInline<T>(code: string, args: string[] = []): T | null {
  return runPythonJson<T>(['-c', code, ...args]);
}

/**
 * face-api (@vladmandic/face-api's node-wasm build) on tfjs 4.22 with the WASM
 * backend read from disk (no CDN): `wasm.setWasmPaths(dir, false)` makes the
 * emscripten loader use fs instead of fetch(). Returns the untyped faceapi
 * module and tfjs (face-api's d.ts bundles a private copy of the tfjs types).
 */
export async function initFaceApiWasm(): Promise<{ faceapi: any; tf: typeof import('@tensorflow/tfjs') }> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const tf = require('@tensorflow/tfjs') as typeof import('@tensorflow/tfjs');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
  if (tf.getBackend() !== 'wasm') {
    wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep, false);
    if (!(await tf.setBackend('wasm'))) throw new Error('could not initialise the tfjs wasm backend');
  }
  await tf.ready();
  return { faceapi, tf };
}

/**
 * The standalone entry of a bench module (`node dist/scripts/bench/X.js --k v`):
 * numeric options from argv (defaults given), the load average before and
 * after, each row as a JSON line (and a module's extra report first).
 */
export function runStandalone(defaults: Record<string, number>, run: (o: Record<string, number>) => Promise<unknown[] | { rows: unknown[]; report?: unknown }>): void {
  const args = process.argv.slice(2);
  const o = Object.fromEntries(Object.entries(defaults).map(([k, d]) => [k, args.includes(`--${k}`) ? Number(args[args.indexOf(`--${k}`) + 1]) : d]));
  const load = () => `load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;
  console.log(load());
  run(o)
    .then((r) => {
      const { rows, report } = Array.isArray(r) ? { rows: r, report: undefined } : r;
      if (report !== undefined) console.log(JSON.stringify(report));
      for (const row of rows) console.log(JSON.stringify(row));
      console.log(load());
    })
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
