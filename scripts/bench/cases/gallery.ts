// Benchmark of gallery search: 1,000,000 enrolled 128-d embeddings (synthetic,
// inserted straight into the in-memory index, not through images), one query
// and a batch of 64. Reports ms per query and the process's resident memory.
// `npm run bench` picks up run(); `node dist/scripts/bench/cases/gallery.js [N]`
// runs it alone (N enrolled embeddings, default 1,000,000).
import { monitorEventLoopDelay } from 'perf_hooks';
import { EmbeddingIndex } from '../../../lib';
import { cli, type TextGoalRow } from '../harness/common';

export type BenchRow = TextGoalRow;

function randomUnitRows(n: number, dim: number, seed: number, out = new Float32Array(n * dim)): Float32Array {
  // xorshift32 + Box-Muller-free approximation: uniform in [-1, 1) then normalised.
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const v = (s >>> 0) / 2147483648 - 1;
      out[i * dim + j] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let j = 0; j < dim; j++) out[i * dim + j] /= norm;
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Naive JS scan (the "peer"): one query against all rows, for the ratio column. */
function naiveNearest(rows: Float32Array, dim: number, q: Float32Array): number {
  let best = Infinity;
  let arg = -1;
  const n = rows.length / dim;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) {
      const d = rows[i * dim + j] - q[j];
      s += d * d;
    }
    if (s < best) {
      best = s;
      arg = i;
    }
  }
  return arg;
}

export async function run(options: { n?: number; dim?: number; repeats?: number; perPerson?: number; log?: (s: string) => void } = {}): Promise<BenchRow[]> {
  const n = options.n ?? 1_000_000;
  const dim = options.dim ?? 128;
  const repeats = options.repeats ?? 20;
  const log = options.log ?? (() => {});
  // One buffer for every batch, made before the first reading: the RSS growth is then the index's,
  // not the input's or the garbage of a generator that made a new array per batch.
  const buffer = new Float32Array(50_000 * dim).fill(1); // written, so its pages count before the first reading
  const rss0 = process.memoryUsage().rss;
  const index = new EmbeddingIndex(dim, 'cpu');
  index.reserve(n);
  // Embeddings per synthetic person: 1 (default) is the worst case for the per-person bookkeeping.
  const perPerson = options.perPerson ?? 1;
  const idOf = (row: number) => `p${Math.floor(row / perPerson) * perPerson}`;
  const batchRows = buffer.length / dim;
  const t0 = performance.now();
  for (let start = 0; start < n; start += batchRows) {
    const m = Math.min(batchRows, n - start);
    const rows = randomUnitRows(m, dim, 1234 + start, buffer.subarray(0, m * dim));
    const ids = Array.from({ length: m }, (_, i) => idOf(start + i));
    index.addRows(ids, rows, Array.from({ length: m }, (_, i) => start + i));
  }
  const loadMs = performance.now() - t0;
  log(`inserted ${n} x ${dim} in ${loadMs.toFixed(0)} ms`);
  const rss1 = process.memoryUsage().rss;
  const held = index.bytes;
  // The same rows again, for the queries and the naive JS scan used as the peer.
  const all = new Float32Array(n * dim);
  for (let start = 0; start < n; start += batchRows) all.set(randomUnitRows(Math.min(batchRows, n - start), dim, 1234 + start), start * dim);

  // Queries: noisy copies of enrolled rows, so that the right answer is known.
  const target = 777_777 % n;
  const q = all.slice(target * dim, (target + 1) * dim);
  for (let j = 0; j < dim; j++) q[j] += 0.01 * Math.sin(j);
  const r = await index.search([q], 5);
  if (r[0][0].id !== idOf(target)) throw new Error(`benchmark sanity: nearest is ${r[0][0].id}, expected ${idOf(target)}`);

  const single: number[] = [];
  // The event loop during the searches: a 1 ms timer keeps running while they replay on a worker thread.
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await index.search([q], 5);
    single.push(performance.now() - t);
  }
  loop.disable();
  const loopP99 = loop.percentile(99) / 1e6;
  const batch = 64;
  const qs = Array.from({ length: batch }, (_, i) => all.slice(((i * 9973) % n) * dim, (((i * 9973) % n) + 1) * dim));
  const batched: number[] = [];
  for (let i = 0; i < Math.max(3, Math.floor(repeats / 4)); i++) {
    const t = performance.now();
    const res = await index.search(qs, 5);
    batched.push((performance.now() - t) / batch);
    if (res[7][0].id !== idOf((7 * 9973) % n)) throw new Error('benchmark sanity: batch answer wrong');
  }
  const tPeer = performance.now();
  const arg = naiveNearest(all, dim, q);
  const peerMs = performance.now() - tPeer;
  if (arg !== target) throw new Error('benchmark sanity: naive scan disagrees');
  const rss2 = process.memoryUsage().rss;
  const singleMs = median(single);
  const batchMs = median(batched);
  log(`single ${singleMs.toFixed(2)} ms, batch ${batchMs.toFixed(3)} ms/query, naive JS ${peerMs.toFixed(1)} ms`);

  // The same rows in a bfloat16 index: memory, one query, and recall@10 against the float32 index
  // (exact search) on 100 queries near enrolled rows (noisy copies, as a probe of an enrolled face is).
  const rss3 = process.memoryUsage().rss;
  const b16 = new EmbeddingIndex(dim, 'cpu', 'bfloat16');
  b16.reserve(n);
  for (let start = 0; start < n; start += batchRows) {
    const m = Math.min(batchRows, n - start);
    b16.addRows(Array.from({ length: m }, (_, i) => idOf(start + i)), all.subarray(start * dim, (start + m) * dim), Array.from({ length: m }, (_, i) => start + i));
  }
  const rss4 = process.memoryUsage().rss;
  const held16 = b16.bytes;
  const single16: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await b16.search([q], 5);
    single16.push(performance.now() - t);
  }
  const probes = Array.from({ length: 100 }, (_, i) => {
    const row = (i * 7919 + 13) % n;
    return all.slice(row * dim, (row + 1) * dim).map((x, j) => x + 0.05 * Math.sin(i * 3 + j));
  });
  const [exact, approx] = [await index.search(probes, 10), await b16.search(probes, 10)];
  let hits = 0;
  exact.forEach((want, i) => (hits += approx[i].filter((c) => want.some((w) => w.id === c.id)).length));
  const recall = hits / (probes.length * 10);
  log(`bfloat16: RSS growth ${((rss4 - rss3) / 1048576).toFixed(0)} MB, single ${median(single16).toFixed(2)} ms, recall@10 ${recall.toFixed(4)}`);
  b16.dispose();
  index.dispose();
  const mb = (b: number) => Math.round(b / 1048576);
  return [
    { case: `gallery identify, ${n} x ${dim}-d, 1 query (top-5 people)`, torchface: +singleMs.toFixed(2), peer: +peerMs.toFixed(1), unit: 'ms/query', ratio: +(peerMs / singleMs).toFixed(1), goal: '< 50 ms' },
    { case: `gallery identify, ${n} x ${dim}-d, batch of ${batch}`, torchface: +batchMs.toFixed(3), peer: +peerMs.toFixed(1), unit: 'ms/query', ratio: +(peerMs / batchMs).toFixed(1), goal: 'faster per query than single' },
    // What the index holds (matrix, norms, row and person arrays, the id table: EmbeddingIndex.bytes), and
    // the process's RSS growth, which adds what loading left behind (V8's young generation grown by the
    // loop's id strings, freed temporaries glibc kept).
    { case: `gallery index memory, ${n} x ${dim}-d, ${n / perPerson} people`, torchface: mb(held), peer: mb(n * dim * 4), unit: 'MB (held; peer = raw float32 bytes)', ratio: +(held / (n * dim * 4)).toFixed(3), goal: '<= 1.15x raw' },
    { case: `gallery RSS after loading ${n} x ${dim}-d`, torchface: mb(rss1 - rss0), peer: mb((n * dim * 4)), unit: 'MB (growth; peer = raw float32 bytes)', ratio: +((rss1 - rss0) / (n * dim * 4)).toFixed(3), goal: '~ raw size' },
    { case: `gallery identify, ${n} x ${dim}-d: event-loop delay p99 during single queries`, torchface: +loopP99.toFixed(1), peer: null, unit: 'ms', ratio: null, goal: '< 20 ms' },
    { case: 'gallery RSS at end (process)', torchface: mb(rss2), peer: null, unit: 'MB', ratio: null, goal: '' },
    { case: `gallery index memory, ${n} x ${dim}-d, bfloat16 storage`, torchface: mb(held16), peer: mb(n * dim * 4), unit: 'MB (held; peer = raw float32 bytes)', ratio: +(held16 / (n * dim * 4)).toFixed(3), goal: '' },
    { case: `gallery RSS after loading ${n} x ${dim}-d, bfloat16 storage`, torchface: mb(rss4 - rss3), peer: mb(n * dim * 4), unit: 'MB (growth; peer = raw float32 bytes)', ratio: +((rss4 - rss3) / (n * dim * 4)).toFixed(3), goal: '~ half the raw size' },
    { case: `gallery identify, ${n} x ${dim}-d, 1 query, bfloat16 storage`, torchface: +median(single16).toFixed(2), peer: +singleMs.toFixed(2), unit: 'ms/query (peer = float32 storage)', ratio: +(median(single16) / singleMs).toFixed(2), goal: '< 50 ms' },
    { case: `gallery recall@10, bfloat16 storage vs exact float32, 100 probes near enrolled rows`, torchface: +recall.toFixed(4), peer: 1, unit: 'recall', ratio: null, goal: '>= 0.99' },
  ];
}

if (require.main === module) {
  const { flags, positionals } = cli(__filename, { 'per-person': 'number' }, { positionals: true });
  const n = positionals[0] ? Number(positionals[0]) : undefined;
  run({ n, perPerson: flags['per-person'], log: (s) => console.error(s) })
    .then((rows) => console.table(rows))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
