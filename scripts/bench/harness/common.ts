// Shared pieces of the benchmark: the row format of the `npm run bench`
// harness, timing, the command line, the Python peers, fresh processes and the
// inputs several cases use.
import { fork, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import type { RgbImage } from '../../../lib';
import { packageRoot } from '../../../lib/util/paths';

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

/** The p-th percentile (0-100) of xs: the value at that rank of the sorted values (0 for none). */
/**
 * The warm-up rule of the per-op cases (conv.ts, overhead.ts, and the conv peer): after their
 * warm-up repetitions, untimed calls go on until WARMUP_CALLS calls or WARMUP_MS have passed.
 * V8 optimizes the JS side of a call after some hundreds of them: with --quick's one repetition
 * of 200 the seed conv1d measured 21.4-21.8 us against 18.4-18.5 after 1000 (Python, with
 * nothing to warm, 18.0-18.8 either way).
 */
export const WARMUP_CALLS = 2000;
export const WARMUP_MS = 300;

/** onnxruntime-node's session options for every comparison with it: `threads` intra-op threads, sequential, all graph optimizations. */
export function ortSessionOptions(threads: number) {
  return { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' as const, graphOptimizationLevel: 'all' as const };
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : 0;
}

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

export function printRows(rows: BenchRow[]): void {
  const f = (v: number | null, d = 1) => (v === null ? '-' : v.toFixed(d));
  console.log(['case', 'torchface', 'peer', 'unit', 'ratio', 'goal'].join('\t'));
  for (const r of rows) console.log([r.case, f(r.torchface), f(r.peer), r.unit, f(r.ratio, 2), r.goal === null ? '-' : `<= ${r.goal}`].join('\t'));
}

// ---------------------------------------------------------------- the command line
export type FlagKind = 'number' | 'string' | 'boolean' | 'list';
type FlagValue<K extends FlagKind> = K extends 'number' ? number : K extends 'boolean' ? boolean : K extends 'list' ? string[] : string;
export type Flags<S extends Record<string, FlagKind>> = { [K in keyof S]?: FlagValue<S[K]> };

/**
 * The command line of the harness and of every case run alone: `--name value`
 * or `--name=value` flags of the given kinds ('list': repeatable), positional
 * arguments only where `positionals` allows them; unknown flags and
 * non-numbers throw. --help (-h) prints the comment block at the top of
 * `source` (the caller's __filename: its .ts file in the source tree).
 */
export function cli<S extends Record<string, FlagKind>>(source: string, spec: S, options: { positionals?: boolean } = {}): { flags: Flags<S>; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(Object.entries(spec).map(([name, kind]) => [name, kind === 'boolean' ? { type: 'boolean' as const } : { type: 'string' as const, multiple: kind === 'list' }])),
      },
      allowPositionals: !!options.positionals,
      strict: true,
    });
  } catch (e) {
    throw new Error(`${(e as Error).message} (try --help)`);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (values.help) {
    console.log(usage(source));
    process.exit(0);
  }
  const flags: Record<string, unknown> = {};
  for (const [name, kind] of Object.entries(spec)) {
    const v = values[name];
    if (v === undefined) continue;
    if (kind === 'number' && !Number.isFinite(Number(v))) throw new Error(`--${name} needs a number, not ${v}`);
    flags[name] = kind === 'number' ? Number(v) : v;
  }
  return { flags: flags as Flags<S>, positionals: parsed.positionals };
}

/** The leading `//` comment block of a compiled script's .ts source. */
function usage(compiled: string): string {
  const source = path.join(packageRoot, path.relative(path.join(packageRoot, 'dist'), compiled)).replace(/\.js$/, '.ts');
  const lines = fs.readFileSync(source, 'utf8').split('\n');
  const end = lines.findIndex((l) => !l.startsWith('//'));
  return lines
    .slice(0, end < 0 ? lines.length : end)
    .map((l) => l.replace(/^\/\/ ?/, ''))
    .join('\n');
}

/**
 * The standalone entry of a case (`node dist/scripts/bench/cases/X.js --k v`):
 * numeric options from the command line (defaults given), the load average
 * before and after, each row as a JSON line (and a case's extra report first).
 */
export function runStandalone<K extends string>(source: string, defaults: Record<K, number>, run: (o: Record<K, number>) => Promise<unknown[] | { rows: unknown[]; report?: unknown }>): void {
  const { flags } = cli(source, Object.fromEntries(Object.keys(defaults).map((k) => [k, 'number' as const])) as Record<K, 'number'>);
  const o = { ...defaults, ...flags } as Record<K, number>;
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

// ---------------------------------------------------------------- Python peers
/**
 * The Python with torch that runs the peers: TORCHFACE_PYTHON, the variable
 * the test suite reads (it replaces the bench's former TORCHFACE_BENCH_PYTHON
 * and BENCH_PYTHON), default /usr/bin/python3; `none` skips the Python peers.
 */
export const PYTHON: string | null = process.env.TORCHFACE_PYTHON === 'none' ? null : process.env.TORCHFACE_PYTHON || '/usr/bin/python3';

/** A peer script in the source tree (scripts/bench/peers): .py files are not compiled into dist. */
export function peerScript(name: string): string {
  return path.join(packageRoot, 'scripts', 'bench', 'peers', name);
}

/**
 * Runs peers/`script` with `request` as its one JSON argument; the script
 * prints its result as the last line of stdout, in JSON. Null (with a note on
 * stderr) when Python or torch is missing.
 */
export function runPython<T>(script: string, request?: unknown): T | null {
  if (!PYTHON) {
    process.stderr.write(`peer skipped: ${script} (TORCHFACE_PYTHON=none)\n`);
    return null;
  }
  const r = spawnSync(PYTHON, [peerScript(script), ...(request === undefined ? [] : [JSON.stringify(request)])], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) {
    process.stderr.write(`peer skipped: ${PYTHON} ${script} failed: ${(r.stderr || String(r.error)).trim().split('\n').pop()}\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

// ---------------------------------------------------------------- fresh processes
/**
 * Calls `fn(options)` of the module `file` in a fresh Node process
 * (harness/child.ts) and returns its result, sent back over the IPC channel.
 * The child's stdout and stderr are this process's. OMP_NUM_THREADS is not
 * passed on: the child starts from the default thread policy.
 */
export function inFreshProcess<T>(file: string, fn: string, options: unknown): Promise<T> {
  const env = { ...process.env };
  delete env.OMP_NUM_THREADS;
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'child.js'), [file, fn, JSON.stringify(options)], { env, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: { value: T } | null = null;
    child.on('message', (value) => (result = { value: value as T }));
    child.on('error', reject);
    // 'close' comes after the IPC channel has closed, so after the result arrived
    child.on('close', (code) => (code === 0 && result ? resolve(result.value) : reject(new Error(`${path.basename(file, '.js')}.${fn} in a fresh process failed (exit ${code})`))));
  });
}

// ---------------------------------------------------------------- inputs
/** The 150x150 crops of test/fixtures/faceapi-descriptors.json (face-api's own descriptor inputs), cycled to n when n is given. */
export function fixtureCrops(n?: number): RgbImage[] {
  const file = path.join(packageRoot, 'test', 'fixtures', 'faceapi-descriptors.json');
  const fx = JSON.parse(fs.readFileSync(file, 'utf8')) as { inputs: { shape: number[]; rgbBase64: string }[] };
  const crops = fx.inputs
    .filter((e) => e.shape[0] === 150 && e.shape[1] === 150)
    .map((e): RgbImage => ({ data: new Uint8Array(Buffer.from(e.rgbBase64, 'base64')), width: 150, height: 150, channels: 3 }));
  if (!crops.length) throw new Error(`${file}: no 150x150 input`);
  return n === undefined ? crops : Array.from({ length: n }, (_, i) => crops[i % crops.length]);
}

/** A photo of face-api's demo folder (node_modules/@vladmandic/face-api/demo/). */
export function demoPhoto(name: string): string {
  return path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo', name);
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
