// The areas of `npm run bench`: which module measures each case, how its rows
// become harness rows, and the goals (issue #6 and later) each row is held to.
// README's performance table is generated from these case ids and goals.
import * as path from 'path';
import { getNumThreads, threadMode, matmul, randn, setNumThreads, dispose } from '../../../lib';
import { recognitionMacs } from '../../../lib/models/face-recognition-net';
import { Summary, inFreshProcess, runPython, summarize } from './common';
import { RawRow, Row, floorFor, floorGflops, makeRow, mergeRounds, ratioGoal, threadsOf } from './rows';
import { convMacs } from '../cases/conv';
import type { Repetition } from '../cases/overhead';

export interface Area {
  name: string;
  /** case ids --only matches (by prefix) */
  ids: string[];
  /** run only when selected with --only */
  explicit?: boolean;
  /** skipped by --quick (unless selected with --only) */
  fullOnly?: boolean;
  run(ctx: Ctx, selected: string[]): Promise<Row[]>;
}

export interface Ctx {
  quick: boolean;
  rounds: number;
  raw: Record<string, unknown>;
  log: (s: string) => void;
}

const CASES = path.join(__dirname, '..', 'cases');

/** require() of an area module, so that a missing or broken module is an error row, not a compile error. */
function load<T = any>(name: string): T {
  return require(path.join(CASES, name)) as T;
}

/**
 * Runs a module's bench function in a fresh Node process and returns its result. For the
 * modules that time traced replays of several threads: libgomp's thread pools outlive
 * the areas before them, and a main-thread pool of all cores left by an earlier area's
 * eager work throttles those replays' OpenMP threads (lib/core/threads.ts, AUTO_EAGER_THREADS);
 * measured, the ONNX row at batch 1 and 2 threads took 11.1 ms in the harness's process
 * and 3.8 ms in its own.
 */
function fresh<T>(name: string, fn: string, options: unknown): Promise<T> {
  return inFreshProcess<T>(path.join(CASES, name), fn, options);
}

async function rounds(ctx: Ctx, area: string, fn: () => Promise<RawRow[]> | RawRow[]) {
  const all: RawRow[][] = [];
  for (let r = 0; r < ctx.rounds; r++) all.push(await fn());
  ctx.raw[area] = all;
  return mergeRounds(all);
}

export const AREAS: Area[] = [
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
      const py = runPython<{ ms: Record<string, number[]> }>('matmul_torch.py', { threads: threadsList, reps });
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
        floorGflops.set(t, gflops);
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
      const raw: RawRow[] = await m.benchOverhead({
        quick: ctx.quick,
        repetitions: ctx.quick ? 3 : 7,
        cases,
        log: (l: string) => ctx.log(`  overhead: ${l.trim()}`),
        onRepetition: (r: Repetition) => {
          const s = (samples[r.case] ??= { t: [], p: [] });
          s.t.push(r.torchface.wall);
          s.p.push(r.pytorch.wall);
        },
      });
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
      const rows = await fresh<{ case: string; torchface: number; peer: number; unit: string }[]>('concurrency', 'benchConcurrency', { rounds: ctx.quick ? 2 : 5 });
      return rows.map((r) => makeRow('concurrency', { case: r.case, torchface: r.torchface, peer: r.peer, peerName: 'sequential', unit: r.unit, goal: ratioGoal('>=', 1.5) }));
    },
  },
  {
    name: 'networks',
    ids: ['networks'],
    async run(ctx) {
      const rows = await fresh<{ case: string; torchface: number | null; peer: number | null; unit: string; goal: string }[]>('networks', 'benchNetworks', { reps: ctx.quick ? 4 : 10, rounds: ctx.quick ? 1 : 3 });
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
      const rows = await fresh<{ case: string; torchface: number; peer: number; unit: string }[]>('onnx', 'benchOnnx', { reps: ctx.quick ? 5 : 10, rounds: ctx.quick ? 1 : 3 });
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
      // Each round in a fresh process: RSS growth in a process that already held (and freed) an
      // index measures the allocator's reuse, not the index (a second round read -37 MB).
      const merged = await rounds(ctx, 'gallery', () => fresh<RawRow[]>('gallery', 'run', { repeats: ctx.quick ? 5 : 20 }));
      const single = merged.find(({ row }) => /1 query/.test(row.case))?.row.torchface ?? null;
      return merged.map(({ row: r, spread, peerSpread }) => {
        const base = { case: r.case, torchface: r.torchface, spread, peer: r.peer, peerSpread, unit: r.unit };
        if (/recall@10/.test(r.case)) return makeRow('gallery', { ...base, peerName: 'exact search', goal: { op: '>=', value: 0.99, on: 'torchface', text: '>= 0.99' } });
        if (/1 query, bfloat16/.test(r.case)) return makeRow('gallery', { ...base, peerName: 'float32 storage', goal: { op: '<', value: 50, on: 'torchface', text: '< 50 ms' } });
        // The goal is on what the index holds; the RSS growth beside it is for information (it adds
        // what loading left in the process: V8's young generation, freed temporaries glibc kept).
        if (/index memory.*bfloat16/.test(r.case)) return makeRow('gallery', { ...base, peerName: 'raw float32 size', note: 'the rows at half the bytes, the rest as float32' });
        if (/index memory/.test(r.case)) return makeRow('gallery', { ...base, peerName: 'raw float32 size', goal: ratioGoal('<=', 1.15, '<= 1.15x raw float32') });
        if (/RSS after loading/.test(r.case)) return makeRow('gallery', { ...base, peerName: 'raw float32 size', note: 'process RSS growth, for information' });
        if (/1 query/.test(r.case)) return makeRow('gallery', { ...base, peerName: 'naive JS scan', goal: { op: '<', value: 50, on: 'torchface', text: '< 50 ms' } });
        if (/batch of/.test(r.case)) return makeRow('gallery', { ...base, peerName: 'naive JS scan (1 query)', goal: single !== null ? { op: '<', value: single, on: 'torchface', text: '< single query' } : null });
        return makeRow('gallery', { ...base, peerName: r.peer !== null ? 'raw float32 size' : '-', note: typeof r.goal === 'string' && r.goal ? `module goal: ${r.goal}` : undefined });
      });
    },
  },
  {
    // 10M generated face-like embeddings take about an hour to index on 2 cores:
    // the full run only (or --only ann, at 1M with --quick).
    name: 'ann',
    ids: ['ann'],
    fullOnly: true,
    async run(ctx) {
      const rows = await fresh<RawRow[]>('ann', 'run', ctx.quick ? { rows: 1_000_000, efs: [1024, 2048] } : { rows: 10_000_000, efs: [1024, 2048, 3072] });
      ctx.raw.ann = rows;
      return rows.map((r) => {
        const base = { case: r.case, torchface: r.torchface, peer: r.peer, unit: r.unit, ratio: r.ratio };
        if (/: p50$/.test(r.case)) return makeRow('ann', { ...base, peerName: '-', goal: { op: '<', value: 10, on: 'torchface', text: '< 10 ms' } });
        if (/recall@10/.test(r.case)) return makeRow('ann', { ...base, peerName: 'exact search', goal: { op: '>=', value: 0.99, on: 'torchface', text: '>= 0.99' } });
        if (/event-loop/.test(r.case)) return makeRow('ann', { ...base, peerName: '-', goal: { op: '<', value: 20, on: 'torchface', text: '< 20 ms' } });
        return makeRow('ann', { ...base, peerName: r.peer !== null ? 'raw float32 rows' : '-', note: 'reported' });
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

/** `--device cuda`: the cuda module's rows (torchface vs Python torch on the same device). */
export async function cudaRows(device: string, quick: boolean): Promise<Row[]> {
  const m = load('cuda');
  return (await m.run({ device, quick })).map((r: RawRow & { torchfaceSpread?: Summary; peerSpread?: Summary | null }) =>
    makeRow('cuda', { case: r.case, torchface: r.torchface, spread: r.torchfaceSpread ?? null, peer: r.peer, peerSpread: r.peerSpread ?? null, peerName: 'PyTorch cuda', unit: r.unit, goal: ratioGoal('<=', 1.0) }),
  );
}
