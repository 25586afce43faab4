// npm run test:abuse: the standing robustness check. Runs the reproducers of the
// robustness issue (dist/test/{unit,e2e}/abuse-*.test.js: native boundary, model files,
// face pipeline, HTTP service), the seeded fuzz of the tensor API in child
// processes, a worker_thread torn down mid-replay many times, and the service load test with its malformed, oversized and
// pixel-bomb requests; prints one table (inputs tried, crashes, statuses, RSS,
// p99 of the answers under abuse). Exits 1 on any crash or failure.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..', '..');
const dist = path.join(root, 'dist');
interface Row {
  check: string;
  inputs: string;
  crashes: number;
  failures: number;
  detail: string;
}
const rows: Row[] = [];

function reproducers(): void {
  // The reproducers live among the unit and end-to-end tests (test/unit/abuse-*.test.ts, test/e2e/abuse-*.test.ts).
  const files = ['unit', 'parity', 'e2e'].flatMap((dir) => (fs.existsSync(path.join(dist, 'test', dir)) ? fs.readdirSync(path.join(dist, 'test', dir)).filter((f) => /^abuse-.*\.test\.js$/.test(f)).map((f) => path.join(dir, f)) : []));
  if (!files.length) throw new Error(`no abuse-*.test.js under ${path.join(dist, 'test')}: build first (npm run build:ts)`);
  for (const f of files) {
    const out = path.join(os.tmpdir(), `torchface-abuse-${process.pid}-${path.basename(f)}.json`);
    const t0 = Date.now();
    const r = spawnSync(
      process.execPath,
      [path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), '--no-config', '--require', path.join(dist, 'test', 'helpers', 'peers.js'), '--timeout', '300000', '--reporter', 'json', '--reporter-option', `output=${out}`, path.join(dist, 'test', f)],
      { encoding: 'utf8', cwd: root, maxBuffer: 64 << 20 },
    );
    let stats = { tests: 0, passes: 0, failures: 0, pending: 0 };
    let failed: string[] = [];
    try {
      const j = JSON.parse(fs.readFileSync(out, 'utf8')) as { stats: typeof stats; failures: { title: string }[] };
      stats = j.stats;
      failed = j.failures.map((x) => x.title);
      fs.rmSync(out, { force: true });
    } catch {
      failed = [`mocha produced no report (exit ${r.status}, signal ${r.signal}): ${r.stderr.slice(-300)}`];
    }
    rows.push({
      check: `reproducers ${path.basename(f).replace(/\.test\.js$/, '')}`,
      inputs: `${stats.tests} tests`,
      crashes: r.signal ? 1 : 0,
      failures: failed.length,
      detail: `${stats.passes} passed, ${stats.pending} skipped, ${((Date.now() - t0) / 1000).toFixed(1)} s${failed.length ? '; FAILED: ' + failed.join('; ') : ''}`,
    });
  }
}

function fuzz(): void {
  const seeds = [20240611, 7, 99];
  const calls = 4000;
  let crashes = 0;
  let foreign = 0;
  const thrown: Record<string, number> = {};
  for (const seed of seeds) {
    const r = spawnSync(process.execPath, [path.join(dist, 'test', 'helpers', 'fuzz.js'), String(seed), String(calls)], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' }, maxBuffer: 64 << 20 });
    if (r.signal || r.status !== 0) {
      crashes++;
      continue;
    }
    const j = JSON.parse(r.stdout) as { thrown: Record<string, number>; foreign: unknown[] };
    foreign += j.foreign.length;
    for (const [k, v] of Object.entries(j.thrown)) thrown[k] = (thrown[k] ?? 0) + v;
  }
  rows.push({
    check: 'fuzz: random tensor API calls (3 seeded children)',
    inputs: `${seeds.length * calls} calls`,
    crashes,
    failures: foreign,
    detail: `errors thrown: ${Object.entries(thrown).map(([k, v]) => `${k} ${v}`).join(', ')}; non-torchface errors: ${foreign}`,
  });
}

/** A worker_thread terminated while its traced replays are queued, many times (the abort was 1 run in 40). */
function workerTeardown(runs = 40): void {
  const lib = path.join(dist, 'lib');
  const inner = `const tf = require(${JSON.stringify(lib)}); const x = tf.randn([192, 192]); const f = tf.trace((a) => tf.mm(a, a).sum(), [x]);
    for (let i = 0; i < 20; i++) f(x).catch(() => {}); require('worker_threads').parentPort.postMessage('queued');`;
  const outer = `const { Worker } = require('worker_threads'); (async () => { const w = new Worker(${JSON.stringify(inner)}, { eval: true });
    await new Promise((r) => w.once('message', r)); await w.terminate(); })();`;
  let crashes = 0;
  let failures = 0;
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['-e', outer], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' }, timeout: 60_000 });
    if (r.signal) crashes++;
    else if (r.status !== 0) failures++;
  }
  rows.push({ check: 'worker_thread terminated with 20 replays queued (child processes)', inputs: `${runs} runs`, crashes, failures, detail: crashes || failures ? 'a run died or failed' : 'every run exited cleanly' });
}

function loadTest(): void {
  const r = spawnSync(process.execPath, [path.join(dist, 'scripts', 'load-test.js'), '--requests', '2000', '--concurrency', '16', '--people', '10'], { encoding: 'utf8', cwd: root, maxBuffer: 64 << 20, timeout: 600_000 });
  let j: { requests: number; requestsPerSecond: number; latencyMs: { p50: number; p99: number }; byKind: Record<string, { count: number; ok: number }>; failures: unknown[]; rssStartMB: number; rssEndMB: number; eventLoopDelayP99Ms: number } | null = null;
  try {
    j = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  } catch {
    /* reported below */
  }
  if (!j) {
    rows.push({ check: 'service load test', inputs: '-', crashes: r.signal ? 1 : 0, failures: 1, detail: `no report (exit ${r.status}): ${r.stderr.slice(-300)}` });
    return;
  }
  const bad = Object.entries(j.byKind).filter(([k]) => !/^(identify|enroll|verify|GET)/.test(k));
  rows.push({
    check: 'service load test (torchface serve in a child, loopback)',
    inputs: `${j.requests} requests, ${bad.reduce((n, [, v]) => n + v.count, 0)} of them malformed/oversized/bombs`,
    crashes: r.signal ? 1 : 0,
    failures: j.failures.length,
    detail: `every answer as expected for ${Object.values(j.byKind).reduce((n, v) => n + v.ok, 0)}/${j.requests}; ${j.requestsPerSecond} req/s; p50 ${j.latencyMs.p50} ms, p99 ${j.latencyMs.p99} ms; RSS ${j.rssStartMB} -> ${j.rssEndMB} MB; event-loop p99 ${j.eventLoopDelayP99Ms} ms; kinds: ${Object.keys(j.byKind).join(', ')}`,
  });
}

const t0 = Date.now();
reproducers();
fuzz();
workerTeardown();
loadTest();
console.log(`\n| check | inputs tried | crashes | failures | detail |\n| --- | --- | --- | --- | --- |`);
for (const r of rows) console.log(`| ${r.check} | ${r.inputs} | ${r.crashes} | ${r.failures} | ${r.detail} |`);
const crashes = rows.reduce((n, r) => n + r.crashes, 0);
const failures = rows.reduce((n, r) => n + r.failures, 0);
console.log(`\n${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, ${((Date.now() - t0) / 1000).toFixed(0)} s; crashes ${crashes}, failures ${failures}`);
process.exit(crashes || failures ? 1 : 0);
