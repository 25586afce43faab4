// `npm run bench`: torchface side by side with its peers (issue #6).
//
//   npm run bench                          # the full run
//   npm run bench -- --quick               # a short version (a few minutes)
//   npm run bench -- --only add --only conv,descriptors   # case ids or prefixes
//   npm run bench -- --device cuda         # CUDA vs Python torch on CUDA (needs a GPU)
//   npm run bench -- --list                # the case ids
//   options: --rounds N (repeat the area modules that report only a median),
//            --out FILE (default bench/results.json), --no-setup
//
// The harness runs scripts/bench/setup-peers.sh (Python torch, face-api +
// tfjs wasm), measures this machine's float32 matmul throughput (the
// arithmetic floor), then runs each area module (overhead, conv, descriptors,
// pipeline, triplet-step, style, gallery, memory, train-step, channels-last),
// each of which times torchface and its peer on the same inputs after a
// warm-up. Rows are normalised to ratio = torchface / peer (for times: < 1
// means torchface is faster), given the goals of issue #6, and printed as ONE
// table; bench/results.json gets the rows, the modules' raw rows and the
// machine. A module that is missing or fails becomes an error row.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cuda, getNumThreads, threadMode, matmul, randn, setNumThreads, versions, dispose } from '../../lib';
import { Summary, runPythonInline, summarize } from './common';
import { convMacs } from './conv';
import { recognitionMacs } from '../../lib/models/face-recognition-net';

const ROOT = path.resolve(__dirname, '..', '..', '..');

// ---------------------------------------------------------------- options
interface Options {
  quick: boolean;
  only: string[];
  device: string;
  rounds: number;
  out: string;
  setup: boolean;
  list: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, only: [], device: 'cpu', rounds: 0, out: path.join(ROOT, 'bench', 'results.json'), setup: true, list: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--only' || a.startsWith('--only=')) o.only.push(...val().split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
    else if (a === '--device' || a.startsWith('--device=')) o.device = val();
    else if (a === '--rounds' || a.startsWith('--rounds=')) o.rounds = Number(val());
    else if (a === '--out' || a.startsWith('--out=')) o.out = path.resolve(val());
    else if (a === '--no-setup') o.setup = false;
    else if (a === '--list') o.list = true;
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(__filename.replace(/dist[\\/]scripts/, 'scripts').replace(/\.js$/, '.ts'), 'utf8').split('\n').filter((l) => l.startsWith('//')).slice(0, 12).map((l) => l.slice(3)).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown option ${a} (try --help)`);
  }
  if (!o.rounds) o.rounds = o.quick ? 1 : 2;
  return o;
}

// ---------------------------------------------------------------- rows
type Goal = { op: '<=' | '>=' | '<'; value: number; on: 'ratio' | 'torchface'; text: string } | null;

interface Row {
  area: string;
  case: string;
  torchface: number | null;
  /** spread of torchface's measurements */
  spread: Summary | null;
  peer: number | null;
  peerName: string;
  peerSpread: Summary | null;
  unit: string;
  /** torchface / peer */
  ratio: number | null;
  goal: Goal;
  met: boolean | null;
  /** the arithmetic floor for this case, when known: time at this machine's matmul throughput */
  floor?: { value: number; unit: string; fraction: number; text: string };
  note?: string;
  error?: string;
}

interface RawRow {
  case: string;
  torchface: number;
  peer: number | null;
  unit: string;
  ratio: number | null;
  goal: unknown;
  [k: string]: unknown;
}

const ratioGoal = (op: '<=' | '>=', value: number, text?: string): Goal => ({ op, value, on: 'ratio', text: text ?? `${op} ${value}` });

function check(goal: Goal, torchface: number | null, ratio: number | null): boolean | null {
  if (!goal) return null;
  const v = goal.on === 'ratio' ? ratio : torchface;
  if (v === null || !Number.isFinite(v)) return null;
  return goal.op === '<=' ? v <= goal.value : goal.op === '>=' ? v >= goal.value : v < goal.value;
}

function makeRow(area: string, r: Partial<Row> & { case: string; torchface: number | null; peer: number | null; unit: string }): Row {
  const ratio = r.ratio !== undefined ? r.ratio : r.torchface !== null && r.peer ? r.torchface / r.peer : null;
  const goal = r.goal ?? null;
  return { area, spread: null, peerName: 'PyTorch', peerSpread: null, ...r, ratio, goal, met: check(goal, r.torchface, ratio) };
}

const errorRow = (area: string, e: unknown): Row => ({
  area,
  case: `${area}: ERROR`,
  torchface: null,
  spread: null,
  peer: null,
  peerName: '-',
  peerSpread: null,
  unit: '-',
  ratio: null,
  goal: null,
  met: null,
  error: (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300),
});

/** min..max of each row's value over rounds (for modules that only report medians). */
function mergeRounds(rounds: RawRow[][]): { row: RawRow; spread: Summary | null; peerSpread: Summary | null }[] {
  const first = rounds[0] ?? [];
  return first.map((row, i) => {
    const same = rounds.map((rs) => rs.find((r) => r.case === row.case) ?? rs[i]).filter(Boolean);
    const t = same.map((r) => r.torchface).filter((v) => typeof v === 'number');
    const p = same.map((r) => r.peer).filter((v): v is number => typeof v === 'number');
    const ts = summarize(t);
    const ps = p.length ? summarize(p) : null;
    return { row: { ...row, torchface: ts.median, peer: ps ? ps.median : null }, spread: rounds.length > 1 ? ts : null, peerSpread: rounds.length > 1 ? ps : null };
  });
}

// ---------------------------------------------------------------- the floor
interface Floor {
  /** GFLOP/s of a 1024x1024 float32 matmul, by thread count */
  gflops: Map<number, number>;
}
const floorState: Floor = { gflops: new Map() };

function floorFor(flops: number, threads: number, unitScale: number, unit: string, measured: number | null): Row['floor'] | undefined {
  const g = floorState.gflops.get(threads) ?? floorState.gflops.get(getNumThreads());
  if (!g) return undefined;
  const value = (flops / (g * 1e9)) * unitScale;
  const fraction = measured ? value / measured : NaN;
  return { value, unit, fraction, text: `${fmt(value)} ${unit} (${Number.isFinite(fraction) ? (fraction * 100).toFixed(0) : '-'}%)` };
}

const threadsOf = (label: string, fallback: number) => {
  const m = /(\d+) threads?/.exec(label);
  return m ? Number(m[1]) : fallback;
};

// ---------------------------------------------------------------- areas
interface Area {
  name: string;
  /** case ids --only matches (by prefix) */
  ids: string[];
  /** run only when selected with --only */
  explicit?: boolean;
  /** skipped by --quick (unless selected with --only) */
  fullOnly?: boolean;
  run(ctx: Ctx, selected: string[]): Promise<Row[]>;
}

interface Ctx {
  quick: boolean;
  rounds: number;
  raw: Record<string, unknown>;
  log: (s: string) => void;
}

/** require() of an area module, so that a missing or broken module is an error row, not a compile error. */
function load<T = any>(name: string): T {
  return require(path.join(__dirname, name)) as T;
}

/**
 * Runs a module's bench function in a fresh Node process and returns its result. For the
 * modules that time traced replays of several threads: libgomp's thread pools outlive
 * the areas before them, and a main-thread pool of all cores left by an earlier area's
 * eager work throttles those replays' OpenMP threads (lib/threads.ts, AUTO_EAGER_THREADS);
 * measured, the ONNX row at batch 1 and 2 threads took 11.1 ms in the harness's process
 * and 3.8 ms in its own.
 */
function inFreshProcess<T>(name: string, fn: string, options: unknown): T {
  const marker = '@@torchface-bench-result@@';
  const script = `require(${JSON.stringify(path.join(__dirname, name))}).${fn}(${JSON.stringify(options)}).then((r) => process.stdout.write(${JSON.stringify(marker)} + JSON.stringify(r) + '\\n'), (e) => { console.error(e); process.exit(1); });`;
  const env = { ...process.env };
  delete env.OMP_NUM_THREADS;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env, maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith(marker));
  if (r.status !== 0 || !line) throw new Error(`${name}.${fn} in a fresh process failed (exit ${r.status})`);
  process.stdout.write(r.stdout.split('\n').filter((l) => !l.startsWith(marker)).join('\n'));
  return JSON.parse(line.slice(marker.length)) as T;
}

async function rounds(ctx: Ctx, area: string, fn: () => Promise<RawRow[]> | RawRow[]) {
  const all: RawRow[][] = [];
  for (let r = 0; r < ctx.rounds; r++) all.push(await fn());
  ctx.raw[area] = all;
  return mergeRounds(all);
}

const AREAS: Area[] = [
  {
    name: 'matmul',
    ids: ['matmul'],
    async run(ctx) {
      // this machine's float32 GEMM throughput: the floor of every conv / matmul case
      const reps = ctx.quick ? 10 : 30;
      const before = getNumThreads();
  const mode = threadMode(); // restored after: 'auto' stays 'auto'
      const threadsList = [...new Set([1, before])];
      const rows: Row[] = [];
      const py = runPythonInline<{ ms: Record<string, number[]> }>(
        `import json,sys,time,torch
out={}
for t in json.loads(sys.argv[1]):
    torch.set_num_threads(t); a=torch.randn(1024,1024); b=torch.randn(1024,1024)
    for _ in range(2): a@b
    ms=[]
    for _ in range(int(sys.argv[2])):
        s=time.perf_counter(); a@b; ms.append((time.perf_counter()-s)*1e3)
    out[str(t)]=ms
print(json.dumps({"ms":out}))`,
        [JSON.stringify(threadsList), String(reps)],
      );
      for (const t of threadsList) {
        setNumThreads(t);
        const a = randn([1024, 1024]);
        const b = randn([1024, 1024]);
        const ms: number[] = [];
        for (let i = 0; i < reps + 2; i++) {
          const t0 = process.hrtime.bigint();
          matmul(a, b).dispose();
          if (i >= 2) ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        dispose(a, b);
        const s = summarize(ms);
        // the floor uses the best repetition: the machine's capability, not its load
        const gflops = (2 * 1024 ** 3) / (s.min * 1e6);
        floorState.gflops.set(t, gflops);
        const p = py ? summarize(py.ms[String(t)]) : null;
        rows.push(
          makeRow('matmul', {
            case: `matmul 1024x1024 float32, ${t} thread(s) (floor: ${gflops.toFixed(1)} GFLOP/s best rep)`,
            torchface: s.median,
            spread: s,
            peer: p?.median ?? null,
            peerSpread: p,
            unit: 'ms',
            floor: { value: (2 * 1024 ** 3) / (gflops * 1e6), unit: 'ms', fraction: (2 * 1024 ** 3) / (gflops * 1e6) / s.median, text: `${gflops.toFixed(1)} GFLOP/s` },
          }),
        );
      }
      setNumThreads(mode);
      return rows;
    },
  },
  {
    name: 'overhead',
    ids: ['add', 'conv2d'],
    async run(ctx, selected) {
      const m = load('overhead');
      const cases = [...(selected.includes('add') ? ['add'] : []), ...(selected.includes('conv2d') ? ['conv-seed', 'conv-large'] : [])];
      const samples: Record<string, { t: number[]; p: number[] }> = {};
      const log = (l: string) => {
        const x = /^\s*(\S+) rep \d+: torchface ([\d.]+) µs.*pytorch ([\d.]+|NaN) µs/.exec(l);
        if (x) (samples[x[1]] ??= { t: [], p: [] }).t.push(Number(x[2])), samples[x[1]].p.push(Number(x[3]));
        else ctx.log(`  overhead: ${l.trim()}`);
      };
      const raw: RawRow[] = await m.benchOverhead({ quick: ctx.quick, repetitions: ctx.quick ? 3 : 7, cases, log });
      ctx.raw.overhead = raw;
      return raw.map((r, i) => {
        const s = samples[cases[i]];
        const conv = /conv2d fwd\+bwd (\S+) \* (\S+)/.exec(r.case);
        const threads = getNumThreads();
        const flops = conv ? 2 * convMacs(conv[1].split('x').map(Number), conv[2].split('x').map(Number)) : 0;
        return makeRow('overhead', {
          case: `${r.case}, ${threads} thread(s)`,
          torchface: r.torchface,
          spread: s ? summarize(s.t) : null,
          peer: r.peer,
          peerSpread: s && r.peer !== null ? summarize(s.p) : null,
          unit: r.unit,
          goal: ratioGoal('<=', 1.0),
          floor: conv ? floorFor(flops, threads, 1e6, 'µs', r.torchface) : undefined,
          note: typeof r.goal === 'string' ? `module goal: ${r.goal}` : undefined,
        });
      });
    },
  },
  {
    name: 'conv',
    ids: ['conv1d', 'conv3d'],
    async run(ctx, selected) {
      const m = load('conv');
      const raw = m.run({ quick: ctx.quick, reps: ctx.quick ? 3 : 7, only: (label: string) => selected.some((id) => label.startsWith(id)) }) as (RawRow & { torchfaceSpread: Summary; peerSpread: Summary | null; macs: number })[];
      ctx.raw.conv = raw;
      return raw.map((r) =>
        makeRow('conv', { case: r.case, torchface: r.torchface, spread: r.torchfaceSpread, peer: r.peer, peerSpread: r.peerSpread, unit: r.unit, goal: ratioGoal('<=', 1.0), floor: floorFor(2 * r.macs, threadsOf(r.case, getNumThreads()), 1e6, 'µs', r.torchface) }),
      );
    },
  },
  {
    name: 'descriptors',
    ids: ['descriptors'],
    async run(ctx) {
      const m = load('descriptors');
      const flops = 2 * recognitionMacs();
      const merged = await rounds(ctx, 'descriptors', () => m.run({ runs: ctx.quick ? 3 : 7, variants: !ctx.quick, log: (s: string) => ctx.log(`  descriptors: ${s}`) }));
      const rows: Row[] = [];
      for (const { row: r, spread, peerSpread } of merged) {
        const threads = threadsOf(r.case, getNumThreads());
        const batch = Number(/batch (\d+)/.exec(r.case)?.[1] ?? 0);
        const base = { case: r.case, torchface: r.torchface, spread, peer: r.peer, peerSpread, unit: r.unit };
        if (/vs face-api/.test(r.case)) {
          rows.push(makeRow('descriptors', { ...base, peerName: 'face-api wasm', goal: batch >= 16 ? ratioGoal('<=', 0.1, '<= 0.1 (>= 10x face-api)') : null, floor: floorFor(flops, threads, 1e3, 'ms', r.torchface) }));
        } else if (/vs PyTorch/.test(r.case)) {
          rows.push(makeRow('descriptors', { ...base, goal: ratioGoal('<=', 1.0), floor: floorFor(flops, threads, 1e3, 'ms', r.torchface) }));
        } else if (/arithmetic floor/.test(r.case)) {
          rows.push(makeRow('descriptors', { ...base, peerName: 'floor (module)', note: 'peer = multiply-adds / matmul GFLOP/s (descriptors.ts, 512x2304x1024 GEMM)' }));
        } else if (/\(default\) vs/.test(r.case)) {
          rows.push(makeRow('descriptors', { ...base, peerName: 'torchface variant', goal: ratioGoal('<=', 1.0, '<= 1 (default fastest)') }));
        } else rows.push(makeRow('descriptors', { ...base, peerName: '?' }));
      }
      return rows;
    },
  },
  {
    name: 'pipeline',
    ids: ['pipeline'],
    async run(ctx) {
      const m = load('pipeline');
      const raw = (await m.run({ reps: ctx.quick ? 3 : 7, images: ctx.quick ? ['sample1.jpg'] : ['sample1.jpg', 'sample2.jpg', 'sample3.jpg'], log: (s: string) => ctx.log(`  pipeline: ${s}`) })) as (RawRow & { torchfaceSpread: Summary; peerSpread: Summary | null; faces: { torchface: number; peer: number | null } })[];
      ctx.raw.pipeline = raw;
      return raw.map((r) =>
        makeRow('pipeline', { case: r.case, torchface: r.torchface, spread: r.torchfaceSpread, peer: r.peer, peerSpread: r.peerSpread, peerName: 'face-api wasm', unit: r.unit, note: `faces found: torchface ${r.faces.torchface}, face-api ${r.faces.peer ?? '-'}` }),
      );
    },
  },
  {
    name: 'triplet',
    ids: ['triplet'],
    async run(ctx) {
      const m = load('triplet-step');
      const merged = await rounds(ctx, 'triplet', () => m.measureTripletStep(ctx.quick ? { reps: 3, warmup: 1 } : { reps: 10, warmup: 2 }));
      return merged
        .filter(({ row }) => !/throughput/.test(row.case)) // the same measurement as images/s: kept in results.json
        .map(({ row: r, spread, peerSpread }) => makeRow('triplet', { case: r.case, torchface: r.torchface, spread, peer: r.peer, peerSpread, unit: r.unit, goal: ratioGoal('<=', 1.0), note: r.goal !== null ? `module goal: ratio <= ${r.goal}` : undefined }));
    },
  },
  {
    name: 'concurrency',
    ids: ['concurrency'],
    async run(ctx) {
      const rows = inFreshProcess<{ case: string; torchface: number; peer: number; unit: string }[]>('concurrency', 'benchConcurrency', { rounds: ctx.quick ? 2 : 5 });
      return rows.map((r) => makeRow('concurrency', { case: r.case, torchface: r.torchface, peer: r.peer, peerName: 'sequential', unit: r.unit, goal: ratioGoal('>=', 1.5) }));
    },
  },
  {
    name: 'networks',
    ids: ['networks'],
    async run(ctx) {
      const rows = inFreshProcess<{ case: string; torchface: number | null; peer: number | null; unit: string; goal: string }[]>('networks', 'benchNetworks', { reps: ctx.quick ? 4 : 10, rounds: ctx.quick ? 1 : 3 });
      return rows.map((r) => makeRow('networks', { case: r.case, torchface: r.torchface === null || Number.isNaN(r.torchface) ? null : r.torchface, peer: r.peer, peerName: r.peer === null ? '-' : /tfjs/.test(r.case) ? 'tfjs wasm' : 'onnxruntime-node', unit: r.unit, goal: r.peer === null ? null : ratioGoal('<=', 1.0), note: r.torchface === null || Number.isNaN(r.torchface) ? r.goal : undefined }));
    },
  },
  {
    name: 'service',
    ids: ['service'],
    async run(ctx) {
      const m = load('service');
      const { rows } = (await m.benchService({ clients: 8, requests: ctx.quick ? 48 : 96 })) as { rows: { case: string; torchface: number; peer: number | null; unit: string; ratio: number | null }[] };
      // req/s: goal 2x the 8.2-8.6 req/s measured before the thread policy (README); p99/p50 < 4.
      return [
        makeRow('service', { case: rows[0].case, torchface: rows[0].torchface, peer: 8.4, peerName: 'before (db5229e, README)', unit: rows[0].unit, ratio: rows[0].torchface / 8.4, goal: ratioGoal('>=', 2) }),
        makeRow('service', { case: rows[1].case, torchface: rows[1].torchface, peer: rows[1].peer, peerName: 'p50', unit: rows[1].unit, goal: ratioGoal('<=', 4) }),
      ];
    },
  },
  {
    name: 'threads',
    ids: ['threads'],
    async run(ctx) {
      const m = load('threads');
      const rows = (await m.benchThreads({ rounds: ctx.quick ? 2 : 3, reps: ctx.quick ? 8 : 20 })) as { case: string; torchface: number; peer: number; unit: string }[];
      return rows.map((r) => makeRow('threads', { case: r.case, torchface: r.torchface, peer: r.peer, peerName: 'best fixed count', unit: r.unit, goal: ratioGoal('<=', 1.1) }));
    },
  },
  {
    name: 'onnx',
    ids: ['onnx'],
    async run(ctx) {
      const rows = inFreshProcess<{ case: string; torchface: number; peer: number; unit: string }[]>('onnx', 'benchOnnx', { reps: ctx.quick ? 5 : 10, rounds: ctx.quick ? 1 : 3 });
      return rows.map((r) => makeRow('onnx', { case: r.case, torchface: r.torchface, peer: r.peer, peerName: 'onnxruntime-node', unit: r.unit, goal: ratioGoal('<=', 1.0) }));
    },
  },
  {
    name: 'distributed',
    ids: ['distributed'],
    async run(ctx) {
      const m = load('distributed');
      const rows = (await m.benchDistributed({ reps: ctx.quick ? 5 : 10, rounds: ctx.quick ? 1 : 3, log: (s: string) => ctx.log(`  distributed: ${s}`) })) as { case: string; torchface: number; peer: number | null; unit: string; goal: string }[];
      return rows.map((r) =>
        /all-reduce/.test(r.case)
          ? makeRow('distributed', { case: r.case, torchface: r.torchface, peer: r.peer, peerName: 'PyTorch (torch.distributed, gloo)', unit: r.unit, goal: ratioGoal('>=', 0.9) })
          : makeRow('distributed', { case: r.case, torchface: r.torchface, peer: r.peer, peerName: /2 threads/.test(r.case) ? '1 process x 2 threads' : '1 process x 1 thread', unit: r.unit, note: 'scaling: ratio / 2 = efficiency; no goal set' }),
      );
    },
  },
  {
    name: 'style',
    ids: ['style'],
    async run(ctx) {
      const m = load('style');
      const merged = await rounds(ctx, 'style', () => m.runStyleBench(ctx.quick ? { iterations: 3, warmup: 1, rounds: 1 } : { iterations: 10, warmup: 2, rounds: 1 }));
      return merged.map(({ row: r, spread, peerSpread }) => makeRow('style', { case: r.case, torchface: r.torchface, spread, peer: r.peer, peerSpread, unit: r.unit, goal: ratioGoal('<=', 1.0) }));
    },
  },
  {
    name: 'gallery',
    ids: ['gallery'],
    async run(ctx) {
      const m = load('gallery');
      const merged = await rounds(ctx, 'gallery', () => m.run({ repeats: ctx.quick ? 5 : 20, log: (s: string) => ctx.log(`  gallery: ${s}`) }));
      const single = merged.find(({ row }) => /1 query/.test(row.case))?.row.torchface ?? null;
      return merged.map(({ row: r, spread, peerSpread }) => {
        const base = { case: r.case, torchface: r.torchface, spread, peer: r.peer, peerSpread, unit: r.unit };
        if (/1 query/.test(r.case)) return makeRow('gallery', { ...base, peerName: 'naive JS scan', goal: { op: '<', value: 50, on: 'torchface', text: '< 50 ms' } });
        if (/batch of/.test(r.case)) return makeRow('gallery', { ...base, peerName: 'naive JS scan (1 query)', goal: single !== null ? { op: '<', value: single, on: 'torchface', text: '< single query' } : null });
        return makeRow('gallery', { ...base, peerName: r.peer !== null ? 'raw float32 size' : '-', note: typeof r.goal === 'string' && r.goal ? `module goal: ${r.goal}` : undefined });
      });
    },
  },
  {
    name: 'memory',
    ids: ['memory-descriptor', 'memory-triplet'],
    async run(ctx, selected) {
      const m = load('memory');
      const cases = selected.map((s) => s.replace('memory-', ''));
      const raw = m.run({ reps: ctx.quick ? 150 : 1000, cases, log: (s: string) => ctx.log(`  ${s}`) }) as (RawRow & { detail: unknown })[];
      ctx.raw.memory = raw;
      return raw.map((r) =>
        makeRow('memory', { case: r.case, torchface: r.torchface, peer: null, peerName: '-', unit: r.unit, ratio: r.ratio, goal: r.goal !== null ? ratioGoal('<=', r.goal as number, 'flat: growth / RSS <= 0.05') : null, note: r.ratio !== null ? 'ratio = growth / half-way RSS' : undefined }),
      );
    },
  },
  {
    name: 'train-step',
    ids: ['train-step'],
    fullOnly: true,
    async run(ctx) {
      const m = load('train-step');
      const merged = await rounds(ctx, 'train-step', () => m.measureTrainStep({ reps: 3, rounds: 1 }));
      return merged.map(({ row: r, spread, peerSpread }) => makeRow('train-step', { case: r.case, torchface: r.torchface, spread, peer: r.peer, peerSpread, unit: r.unit, goal: ratioGoal('<=', 1.0) }));
    },
  },
  {
    name: 'channels-last',
    ids: ['channels-last'],
    explicit: true,
    async run(ctx) {
      const m = load('channels-last');
      const raw = m.measureChannelsLast({ reps: ctx.quick ? 5 : 15 }) as RawRow[];
      ctx.raw['channels-last'] = raw;
      return raw.map((r) => makeRow('channels-last', { case: r.case, torchface: r.torchface, peer: r.peer, peerName: 'torchface NCHW', unit: r.unit }));
    },
  },
];

// ---------------------------------------------------------------- output
function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  return a >= 1000 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : a >= 0.01 ? v.toFixed(3) : v.toPrecision(2);
}

const spreadText = (s: Summary | null) => (s && s.n > 1 ? ` [${fmt(s.min)}–${fmt(s.max)}]` : '');

function table(rows: Row[]): string {
  const header = ['case', 'torchface [min–max]', 'peer [min–max]', 'unit', 'ratio', 'goal', 'met', 'floor (% reached)'];
  const body = rows.map((r) =>
    r.error
      ? [r.case, 'ERROR', '-', '-', '-', '-', '-', r.error]
      : [
          r.case,
          `${fmt(r.torchface)}${spreadText(r.spread)}`,
          r.peer === null ? '-' : `${r.peerName}: ${fmt(r.peer)}${spreadText(r.peerSpread)}`,
          r.unit,
          fmt(r.ratio),
          r.goal ? r.goal.text : '-',
          r.met === null ? '-' : r.met ? 'yes' : 'NO',
          r.floor ? r.floor.text : '-',
        ],
  );
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [header, header.map(() => '---'), ...body].map((cells) => `| ${cells.map(esc).join(' | ')} |`).join('\n');
}

function machine(opts: Options) {
  const py = runPythonInline<{ torch: string; threads: number; cuda: boolean }>('import json, torch; print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}))');
  const ver = (p: string) => {
    try {
      return (require(`${p}/package.json`) as { version: string }).version;
    } catch {
      return null;
    }
  };
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    loadAverage: os.loadavg().map((v) => +v.toFixed(2)),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    torchface: versions().torchface,
    libtorch: versions().libtorch,
    threads: getNumThreads(),
    device: opts.device,
    cudaAvailable: cuda.isAvailable(),
    python: py ? { torch: py.torch, threads: py.threads, cuda: py.cuda } : null,
    faceApi: ver('@vladmandic/face-api'),
    tfjs: ver('@tensorflow/tfjs'),
    tfjsWasm: ver('@tensorflow/tfjs-backend-wasm'),
  };
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.list) {
    for (const a of AREAS) console.log(`${a.name}: ${a.ids.join(', ')}${a.explicit ? ' (only with --only)' : a.fullOnly ? ' (not in --quick)' : ''}`);
    return;
  }
  if (opts.device !== 'cpu') {
    if (!/^cuda(:\d+)?$/.test(opts.device)) throw new Error(`--device must be cpu or cuda, not ${opts.device}`);
    if (!cuda.isAvailable()) {
      console.log(`--device ${opts.device}: CUDA is unavailable here (this libtorch ${versions().libtorch} build or this machine has no GPU); nothing was measured. Run without --device for the CPU benchmarks.`);
      return;
    }
    const m = load('cuda');
    const rows: Row[] = (await m.run({ device: opts.device, quick: opts.quick })).map((r: RawRow & { torchfaceSpread?: Summary; peerSpread?: Summary | null }) =>
      makeRow('cuda', { case: r.case, torchface: r.torchface, spread: r.torchfaceSpread ?? null, peer: r.peer, peerSpread: r.peerSpread ?? null, peerName: 'PyTorch cuda', unit: r.unit, goal: ratioGoal('<=', 1.0) }),
    );
    console.log(table(rows));
    fs.mkdirSync(path.dirname(opts.out), { recursive: true });
    fs.writeFileSync(opts.out, JSON.stringify({ machine: machine(opts), command: process.argv.slice(2), rows }, null, 1) + '\n');
    return;
  }

  const started = Date.now();
  const log = (s: string) => console.error(s);
  if (opts.setup) {
    const r = spawnSync('sh', [path.join(ROOT, 'scripts', 'bench', 'setup-peers.sh')], { encoding: 'utf8', cwd: ROOT });
    log(`peers (scripts/bench/setup-peers.sh):\n${(r.stdout + (r.stderr ?? '')).trim().replace(/^/gm, '  ')}`);
  }
  const info = machine(opts);
  log(`machine: ${info.cpu}, ${info.cores} cores, load ${info.loadAverage.join(' ')}; torchface ${info.torchface} on libtorch ${info.libtorch}, ${info.threads} thread(s); Python torch ${info.python?.torch ?? 'missing'}`);

  const selectedIds = (a: Area) => (opts.only.length ? a.ids.filter((id) => opts.only.some((n) => id.startsWith(n) || a.name.startsWith(n) || n.startsWith(id))) : a.ids);
  const plan = AREAS.map((a) => ({ a, ids: selectedIds(a) })).filter(({ a, ids }) => ids.length && (opts.only.length ? true : !a.explicit && !(opts.quick && a.fullOnly)));
  if (!plan.length) throw new Error(`--only ${opts.only.join(',')} matches no case; ids: ${AREAS.flatMap((a) => a.ids).join(', ')}`);
  // the floor needs the matmul measurement: always run it first
  if (!plan.some(({ a }) => a.name === 'matmul')) plan.unshift({ a: AREAS[0], ids: ['matmul'] });

  const ctx: Ctx = { quick: opts.quick, rounds: opts.rounds, raw: {}, log };
  const rows: Row[] = [];
  const timings: Record<string, number> = {};
  for (const { a, ids } of plan) {
    const t0 = Date.now();
    log(`== ${a.name} (${ids.join(', ')})`);
    // Every area starts from the default thread policy, whatever the one before it set.
    setNumThreads('auto');
    try {
      const got = await a.run(ctx, ids);
      rows.push(...got);
      for (const r of got) log(`  ${r.case}: torchface ${fmt(r.torchface)} ${r.unit}, peer ${fmt(r.peer)}, ratio ${fmt(r.ratio)}`);
    } catch (e) {
      log(`  ${a.name} failed: ${(e as Error).stack ?? e}`);
      rows.push(errorRow(a.name, e));
    }
    timings[a.name] = (Date.now() - t0) / 1000;
  }
  const seconds = (Date.now() - started) / 1000;

  console.log(`\ntorchface vs peers (${opts.quick ? 'quick' : 'full'} run, ${seconds.toFixed(0)} s; ${info.cpu}, ${info.cores} cores, libtorch ${info.libtorch}, ${info.threads} threads, ${info.date.slice(0, 10)})`);
  console.log('ratio = torchface / peer (times: < 1 = torchface faster); [min–max] over repetitions (module rows: over --rounds); floor = time at this machine\'s best 1024x1024 matmul GFLOP/s, % = floor / torchface\n');
  console.log(table(rows));
  const met = rows.filter((r) => r.met === true).length;
  const missed = rows.filter((r) => r.met === false).length;
  const errors = rows.filter((r) => r.error).length;
  console.log(`\ngoals met ${met}, missed ${missed}; errors ${errors}; per area (s): ${Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);

  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, JSON.stringify({ machine: { ...info, loadAverageAtEnd: os.loadavg().map((v) => +v.toFixed(2)) }, command: `npm run bench --${opts.quick ? ' --quick' : ''}${opts.only.length ? ` --only ${opts.only.join(',')}` : ''}`, quick: opts.quick, rounds: opts.rounds, seconds, areaSeconds: timings, floorGflops: Object.fromEntries(floorState.gflops), rows, raw: ctx.raw }, null, 1) + '\n');
  console.log(`wrote ${path.relative(process.cwd(), opts.out)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
