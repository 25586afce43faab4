// Benchmark of the approximate index (lib/gallery/ann-index.ts: usearch's HNSW
// in a worker thread) at gallery scale: N generated face-like embeddings
// (../face-like.ts: the statistics of real LFW embeddings, not uniform noise,
// on which every graph index does far worse), built chunk by chunk; then, for
// each ef (expansionSearch), single queries as FaceGallery makes them: the
// graph's 40 nearest rows re-ranked by exact distance to the stored float32
// rows (read back from a file, as the gallery reads them from SQLite), and
// recall@10 against exact search (libtorch, every row). Half the queries are
// strangers (new people), half another photo of an enrolled person.
// Reports build time, memory (process RSS growth while building; peer: the raw
// float32 bytes), query latency p50/p99 and recall@10 per ef.
// Usage: node dist/scripts/bench/cases/ann.js [--rows 10000000] [--queries 200]
//   [--connectivity 24] [--expansion-add 96] [--quantization bf16] [--ef 512,1024,2048]
//   [--keep] (keep the generated rows and the graph under .cache/bench/)
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';
import { AnnIndex, Tensor, tensor, tidy, topk } from '../../../lib';
import { packageRoot } from '../../../lib/util/paths';
import { ProgressBar } from '../../../lib/util/progress';
import { FaceLikeEmbeddings } from '../face-like';
import { cli, median, percentile, type TextGoalRow } from '../harness/common';

export interface AnnBenchOptions {
  rows?: number;
  queries?: number;
  connectivity?: number;
  expansionAdd?: number;
  quantization?: 'f32' | 'bf16' | 'f16';
  efs?: number[];
  keep?: boolean;
  log?: (s: string) => void;
  progress?: boolean;
}

const CHUNK = 65536;
const K = 10;
/** Rows the graph proposes per query, re-ranked exactly (FaceGallery: max(32, 4k) for k = 10). */
const CANDIDATES = 40;


export async function run(options: AnnBenchOptions = {}): Promise<TextGoalRow[]> {
  const n = options.rows ?? 10_000_000;
  const nq = options.queries ?? 200;
  const connectivity = options.connectivity ?? 24;
  const expansionAdd = options.expansionAdd ?? 96;
  const quantization = options.quantization ?? 'bf16';
  const efs = options.efs ?? [512, 1024, 2048];
  const log = options.log ?? (() => {});
  const gen = new FaceLikeEmbeddings();
  const dim = gen.dim;
  const chunks = Math.ceil(n / CHUNK);
  const chunkRows = (c: number) => gen.people(Math.min(CHUNK, n - c * CHUNK), 1000 + c);

  // Queries: strangers, and another photo of people spread over the whole insertion order.
  const strangers = gen.people(nq / 2, 2);
  const picked = new Float32Array((nq / 2) * dim);
  for (let i = 0; i < nq / 2; i++) {
    const row = Math.floor(((i + 0.5) * n) / (nq / 2));
    const c = Math.floor(row / CHUNK);
    const x = chunkRows(c);
    picked.set(x.subarray((row - c * CHUNK) * dim, (row - c * CHUNK + 1) * dim), i * dim);
  }
  const queries = new Float32Array(nq * dim);
  queries.set(strangers);
  queries.set(gen.anotherPhoto(picked, 3), (nq / 2) * dim);

  const dir = path.join(packageRoot, '.cache', 'bench');
  fs.mkdirSync(dir, { recursive: true });
  const rowsFile = path.join(dir, `ann-${n}.f32`);
  const graphFile = path.join(dir, `ann-${n}-${quantization}-m${connectivity}.usearch`);
  const fd = fs.openSync(rowsFile, 'w+');

  // Exact top-10 of every query, merged chunk by chunk (libtorch: one matrix product per chunk).
  const best = Array.from({ length: nq }, () => [] as { key: number; d: number }[]);
  const q = tensor(queries).reshape([nq, dim]);
  const qq = tidy(() => q.mul(q).sum(1).reshape([1, nq]));
  const exact = (x: Float32Array, first: number) =>
    tidy(() => {
      const m = x.length / dim;
      const X: Tensor = tensor(x).reshape([m, dim]);
      const d2 = X.mul(X).sum(1, true).add(qq).sub(X.matmul(q.t()).mul(2));
      const { values, indices } = topk(d2, Math.min(K, m), 0, false);
      const v = values.data() as Float32Array;
      const ix = indices.data() as BigInt64Array;
      const kk = v.length / nq;
      for (let j = 0; j < nq; j++) {
        const list = best[j];
        for (let r = 0; r < kk; r++) list.push({ key: first + Number(ix[r * nq + j]), d: v[r * nq + j] });
        list.sort((a, b) => a.d - b.d).splice(K);
      }
    });

  const rss0 = process.memoryUsage().rss;
  const ann = AnnIndex.create(dim, { connectivity, expansionAdd, quantization });
  let addMs = 0;
  const t0 = Date.now();
  const bar = options.progress ? new ProgressBar({ total: n, label: 'building the graph', stream: process.stderr, intervalMs: 30000 }) : null;
  try {
    for (let c = 0; c < chunks; c++) {
      const x = chunkRows(c);
      fs.writeSync(fd, x, 0, x.byteLength, c * CHUNK * dim * 4);
      exact(x, c * CHUNK);
      const keys = Array.from({ length: x.length / dim }, (_, i) => c * CHUNK + i);
      const a = process.hrtime.bigint();
      await ann.add(keys, x);
      addMs += Number(process.hrtime.bigint() - a) / 1e6;
      bar?.tick(keys.length);
      if (!bar && c % 16 === 15) log(`  ${(c + 1) * CHUNK} rows, ${(addMs / 1000).toFixed(0)} s adding`);
    }
    bar?.done();
  } catch (e) {
    await ann.close();
    throw e;
  }
  const wallS = (Date.now() - t0) / 1000;
  const rss1 = process.memoryUsage().rss;
  const s0 = Date.now();
  await ann.save(graphFile);
  const saveS = (Date.now() - s0) / 1000;
  const fileBytes = fs.statSync(graphFile).size;
  await ann.close();
  q.dispose();
  qq.dispose();
  gen.dispose();
  log(`  built ${n} rows: ${(addMs / 1000).toFixed(0)} s adding, ${wallS.toFixed(0)} s in all; RSS +${((rss1 - rss0) / 1e9).toFixed(2)} GB; saved ${(fileBytes / 1e9).toFixed(2)} GB in ${saveS.toFixed(1)} s`);

  const row = Buffer.alloc(dim * 4);
  const stored = (key: number) => {
    fs.readSync(fd, row, 0, dim * 4, key * dim * 4);
    return new Float32Array(row.buffer, row.byteOffset, dim);
  };
  const rows: TextGoalRow[] = [];
  const label = `${n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`} x ${dim}-d face-like, ${quantization}, M=${connectivity}, ef_construction=${expansionAdd}`;
  const raw = n * dim * 4;
  rows.push({ case: `ANN build, ${label} (2 cores)`, torchface: +(addMs / 1000).toFixed(0), peer: null, unit: `s (${Math.round(n / (addMs / 1000))} rows/s)`, ratio: null, goal: 'reported' });
  rows.push({ case: `ANN memory while building, ${label}`, torchface: +((rss1 - rss0) / 1e9).toFixed(2), peer: +(raw / 1e9).toFixed(2), unit: 'GB RSS growth (peer = raw float32 rows)', ratio: +((rss1 - rss0) / raw).toFixed(2), goal: 'reported' });
  rows.push({ case: `ANN graph file, ${label}`, torchface: +(fileBytes / 1e9).toFixed(2), peer: +(raw / 1e9).toFixed(2), unit: 'GB (peer = raw float32 rows)', ratio: +(fileBytes / raw).toFixed(2), goal: 'reported' });

  for (const ef of efs) {
    const idx = AnnIndex.create(dim, { connectivity, expansionAdd, quantization, expansionSearch: ef });
    try {
      const l0 = Date.now();
      await idx.load(graphFile);
      const loadS = (Date.now() - l0) / 1000;
      const ms: number[] = [];
      const hits = [0, 0];
      const loop = monitorEventLoopDelay({ resolution: 1 });
      for (let i = 0; i < Math.min(20, nq); i++) await idx.search(queries.subarray(i * dim, (i + 1) * dim), CANDIDATES); // warm-up
      loop.enable();
      for (let i = 0; i < nq; i++) {
        const qi = queries.subarray(i * dim, (i + 1) * dim);
        const a = process.hrtime.bigint();
        const [c] = await idx.search(qi, CANDIDATES);
        const ranked = Array.from(c.keys)
          .filter((k) => k >= 0)
          .map((key) => {
            const v = stored(key);
            let s = 0;
            for (let j = 0; j < dim; j++) s += (v[j] - qi[j]) ** 2;
            return { key, s };
          })
          .sort((x, y) => x.s - y.s)
          .slice(0, K);
        ms.push(Number(process.hrtime.bigint() - a) / 1e6);
        const want = new Set(best[i].map((b) => b.key));
        hits[i < nq / 2 ? 0 : 1] += ranked.filter((r) => want.has(r.key)).length;
      }
      loop.disable();
      const recall = hits.map((h) => h / ((nq / 2) * K));
      log(`  ef ${ef}: loaded in ${loadS.toFixed(1)} s; p50 ${median(ms).toFixed(2)} ms, p99 ${percentile(ms, 99).toFixed(2)} ms; recall@10 strangers ${recall[0].toFixed(4)}, same person ${recall[1].toFixed(4)}`);
      rows.push({ case: `ANN 1 query (top-${CANDIDATES} re-ranked), ${label}, ef=${ef}: p50`, torchface: +median(ms).toFixed(2), peer: null, unit: 'ms/query', ratio: null, goal: '< 10 ms' });
      rows.push({ case: `ANN 1 query, ${label}, ef=${ef}: p99`, torchface: +percentile(ms, 99).toFixed(2), peer: null, unit: 'ms/query', ratio: null, goal: 'reported' });
      rows.push({ case: `ANN recall@10 vs exact, ${label}, ef=${ef}, ${nq / 2} strangers`, torchface: +recall[0].toFixed(4), peer: 1, unit: 'recall', ratio: null, goal: '>= 0.99' });
      rows.push({ case: `ANN recall@10 vs exact, ${label}, ef=${ef}, ${nq / 2} enrolled people's other photo`, torchface: +recall[1].toFixed(4), peer: 1, unit: 'recall', ratio: null, goal: '>= 0.99' });
      rows.push({ case: `ANN event-loop delay p99 during queries, ${label}, ef=${ef}`, torchface: +(loop.percentile(99) / 1e6).toFixed(1), peer: null, unit: 'ms', ratio: null, goal: '< 20 ms' });
    } finally {
      await idx.close();
    }
  }
  fs.closeSync(fd);
  if (!options.keep) for (const f of [rowsFile, graphFile]) fs.rmSync(f, { force: true });
  return rows;
}

if (require.main === module) {
  const { flags } = cli(__filename, { rows: 'number', queries: 'number', connectivity: 'number', 'expansion-add': 'number', quantization: 'string', ef: 'string', keep: 'boolean' });
  const quantization = (flags.quantization ?? 'bf16') as 'f32' | 'bf16' | 'f16';
  if (!['f32', 'bf16', 'f16'].includes(quantization)) throw new Error(`--quantization: f32, bf16 or f16, not ${quantization}`);
  const efs = flags.ef ? flags.ef.split(',').map(Number) : undefined;
  if (efs?.some((e) => !Number.isInteger(e) || e < 8)) throw new Error(`--ef: integers >= 8, comma-separated, not ${flags.ef}`);
  console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  run({ rows: flags.rows, queries: flags.queries, connectivity: flags.connectivity, expansionAdd: flags['expansion-add'], quantization, efs, keep: flags.keep, log: (s) => console.error(s), progress: true })
    .then((rows) => {
      for (const r of rows) console.log(JSON.stringify(r));
      console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    })
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
