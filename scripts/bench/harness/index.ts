// `npm run bench`: torchface side by side with its peers (issue #6).
//
//   npm run bench                          # the full run
//   npm run bench -- --quick               # a short version (a few minutes)
//   npm run bench -- --only add --only conv,descriptors   # case ids or prefixes
//   npm run bench -- --device cuda         # CUDA vs Python torch on CUDA (needs a GPU)
//   npm run bench -- --list                # the case ids
//   options: --rounds N (repeat the area modules that report only a median),
//            --out FILE (default bench/results.json), --no-setup
//   (`npm run bench` = npm run build:ts && node dist/scripts/bench/harness/index.js)
//
// The harness runs scripts/bench/peers/setup-peers.sh (Python torch at
// TORCHFACE_PYTHON, face-api + tfjs wasm), measures this machine's float32
// matmul throughput (the arithmetic floor), then runs each area (areas.ts: the
// modules in scripts/bench/cases, their Python peers in scripts/bench/peers),
// each of which times torchface and its peer on the same inputs after a
// warm-up. Rows are normalised to ratio = torchface / peer (for times: < 1
// means torchface is faster), given the goals of issue #6, and printed as ONE
// table; bench/results.json gets the rows, the modules' raw rows and the
// machine. A module that is missing or fails becomes an error row.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cuda, getNumThreads, setNumThreads, versions } from '../../../lib';
import { packageRoot } from '../../../lib/util/paths';
import { AREAS, Area, Ctx, cudaRows } from './areas';
import { Summary, cli, peerScript, runPython } from './common';
import { Row, errorRow, floorGflops, fmt } from './rows';

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

function options(): Options {
  const { flags } = cli(__filename, { quick: 'boolean', only: 'list', device: 'string', rounds: 'number', out: 'string', 'no-setup': 'boolean', list: 'boolean' });
  const quick = !!flags.quick;
  return {
    quick,
    only: (flags.only ?? []).flatMap((v) => v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)),
    device: flags.device ?? 'cpu',
    rounds: flags.rounds || (quick ? 1 : 2),
    out: flags.out !== undefined ? path.resolve(flags.out) : path.join(packageRoot, 'bench', 'results.json'),
    setup: !flags['no-setup'],
    list: !!flags.list,
  };
}

// ---------------------------------------------------------------- output
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
  const py = runPython<{ torch: string; threads: number; cuda: boolean }>('torch_info.py');
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
  const opts = options();
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
    const rows = await cudaRows(opts.device, opts.quick);
    console.log(table(rows));
    fs.mkdirSync(path.dirname(opts.out), { recursive: true });
    fs.writeFileSync(opts.out, JSON.stringify({ machine: machine(opts), command: process.argv.slice(2), rows }, null, 1) + '\n');
    return;
  }

  const started = Date.now();
  const log = (s: string) => console.error(s);
  if (opts.setup) {
    const r = spawnSync('sh', [peerScript('setup-peers.sh')], { encoding: 'utf8', cwd: packageRoot });
    log(`peers (scripts/bench/peers/setup-peers.sh):\n${(r.stdout + (r.stderr ?? '')).trim().replace(/^/gm, '  ')}`);
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
  fs.writeFileSync(opts.out, JSON.stringify({ machine: { ...info, loadAverageAtEnd: os.loadavg().map((v) => +v.toFixed(2)) }, command: `npm run bench --${opts.quick ? ' --quick' : ''}${opts.only.length ? ` --only ${opts.only.join(',')}` : ''}`, quick: opts.quick, rounds: opts.rounds, seconds, areaSeconds: timings, floorGflops: Object.fromEntries(floorGflops), rows, raw: ctx.raw }, null, 1) + '\n');
  console.log(`wrote ${path.relative(process.cwd(), opts.out)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
