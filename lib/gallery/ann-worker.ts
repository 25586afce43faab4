// The worker thread that owns an approximate index (usearch's HNSW graph).
// usearch's calls are synchronous (an add of a million rows takes minutes, a
// search milliseconds), so they run here, never on the caller's event loop.
// Messages are handled one at a time, in order: a search sent after an add
// sees the added rows. The protocol is private to ann-index.ts.
import * as os from 'os';
import { parentPort, workerData } from 'worker_threads';

interface UsearchIndex {
  add(keys: BigUint64Array, vectors: Float32Array, threads: number): void;
  search(vectors: Float32Array, k: number, threads: number): { keys: BigUint64Array; distances: Float32Array; counts?: BigUint64Array };
  remove(keys: BigUint64Array): number | number[];
  size(): number;
  capacity(): number;
  save(path: string): void;
  load(path: string): void;
}

export interface AnnWorkerConfig {
  dim: number;
  connectivity: number;
  expansionAdd: number;
  expansionSearch: number;
  quantization: string;
}

export type AnnRequest =
  | { id: number; op: 'add'; keys: Float64Array; vectors: Float32Array; threads: number }
  | { id: number; op: 'search'; queries: Float32Array; k: number }
  | { id: number; op: 'remove'; keys: Float64Array }
  | { id: number; op: 'save'; path: string }
  | { id: number; op: 'load'; path: string }
  | { id: number; op: 'close' };

export type AnnReply = { id: number; error?: { name: string; message: string }; size: number; keys?: Float64Array; distances?: Float32Array };

const config = workerData as AnnWorkerConfig;
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { Index } = require('usearch') as { Index: new (o: Record<string, unknown>) => UsearchIndex };
const index = new Index({
  dimensions: config.dim,
  metric: 'l2sq',
  quantization: config.quantization,
  connectivity: config.connectivity,
  expansion_add: config.expansionAdd,
  expansion_search: config.expansionSearch,
});

// Keys travel as float64 (store row ids are integers below 2^53) and become u64 here.
const toU64 = (keys: Float64Array): BigUint64Array => BigUint64Array.from(keys, (k) => BigInt(k));

// usearch keeps one insertion context per thread, made when it reserves capacity: an add that
// grows the index reserves for the threads it is given, and an add on more threads than the last
// reservation made contexts for fails ("Reserve capacity ahead of insertions!"; seen when the
// graph's first rows went in on one thread and later single enrolments on two). So an add that
// does not grow the index uses at most that many threads. Loading reserves for every core.
let reservedThreads = 0;

function handle(m: AnnRequest): AnnReply {
  switch (m.op) {
    case 'add': {
      const n = m.keys.length;
      if (!n) return { id: m.id, size: index.size() };
      const grows = index.size() + n >= index.capacity();
      const threads = grows ? m.threads : Math.max(1, Math.min(m.threads, reservedThreads));
      index.add(toU64(m.keys), m.vectors, threads);
      if (grows) reservedThreads = threads;
      return { id: m.id, size: index.size() };
    }
    case 'search': {
      const nq = m.queries.length / config.dim;
      const keys = new Float64Array(nq * m.k).fill(-1);
      const distances = new Float32Array(nq * m.k).fill(Infinity);
      if (index.size() > 0)
        for (let q = 0; q < nq; q++) {
          const r = index.search(m.queries.subarray(q * config.dim, (q + 1) * config.dim), m.k, 1);
          for (let i = 0; i < r.keys.length && i < m.k; i++) {
            keys[q * m.k + i] = Number(r.keys[i]);
            distances[q * m.k + i] = r.distances[i];
          }
        }
      return { id: m.id, size: index.size(), keys, distances };
    }
    case 'remove':
      if (m.keys.length) index.remove(toU64(m.keys));
      return { id: m.id, size: index.size() };
    case 'save':
      index.save(m.path);
      return { id: m.id, size: index.size() };
    case 'load':
      index.load(m.path);
      reservedThreads = os.cpus().length; // usearch's load reserves for std::thread::hardware_concurrency()
      return { id: m.id, size: index.size() };
    case 'close':
      return { id: m.id, size: index.size() };
  }
}

parentPort!.on('message', (m: AnnRequest) => {
  let reply: AnnReply;
  try {
    reply = handle(m);
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    reply = { id: m.id, size: -1, error: { name: err.name, message: err.message } };
  }
  const transfer = [reply.keys?.buffer, reply.distances?.buffer].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
  parentPort!.postMessage(reply, transfer);
  // Closing ends the thread the ordinary way, after the work queued before it
  // (terminating it from outside while usearch was still being set up aborted the process).
  if (m.op === 'close') parentPort!.close();
});
