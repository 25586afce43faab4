// An approximate nearest-neighbour index for galleries too large to scan:
// usearch's HNSW graph (https://github.com/unum-cloud/usearch, from npm, chosen
// over hnswlib-node by measurement: its batch add uses every core, hnswlib-node
// adds one JS array at a time on one), owned by a worker thread (ann-worker.ts)
// so that building and searching never block the event loop.
//
// It proposes candidates; the caller re-ranks them by exact distance to the
// stored float32 rows (FaceGallery fetches them from SQLite), so 'bf16'
// storage (half the memory of the graph's vectors) costs recall, never exactness.
// Parameters and what they cost (build time, memory, latency, recall@10 on
// face-like embeddings) are measured by scripts/bench/cases/ann.ts.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { z } from 'zod';
import { MissingPackageError, TorchfaceError, fromZod } from '../core/errors';
import { tempPathFor } from '../io/atomic';
import type { AnnReply, AnnRequest, AnnWorkerConfig } from './ann-worker';

export const annOptions = z
  .object({
    /** HNSW's M: links per node. More: better recall, slower build, more memory. */
    connectivity: z.number().int().min(4).max(128).default(24),
    /** ef_construction: candidates considered when linking a new row. */
    expansionAdd: z.number().int().min(8).max(4096).default(96),
    /** ef_search: candidates kept while searching (at least the rows asked for). */
    expansionSearch: z.number().int().min(8).max(16384).default(1024),
    /**
     * How the graph stores vectors: 'bf16' (default) at half the memory of 'f32'
     * and faster to build, with about the same recall once the candidates
     * are re-ranked exactly (as FaceGallery does); its distances are approximate.
     */
    quantization: z.enum(['f32', 'bf16', 'f16']).default('bf16'),
    /** Threads for adding rows (default: every core). */
    threads: z.number().int().min(1).max(1024).optional(),
  })
  .strict();
export type AnnOptions = z.input<typeof annOptions>;
export type ResolvedAnnOptions = z.output<typeof annOptions>;

/** One query's candidates, nearest first: store keys and squared distances (as the graph computed them). */
export interface AnnCandidates {
  keys: Float64Array;
  distances: Float32Array;
}

export class AnnIndexError extends TorchfaceError {
  override readonly code: string = 'ERR_ANN_INDEX';
}

function requireUsearch(): void {
  try {
    require.resolve('usearch');
  } catch {
    throw new MissingPackageError('usearch', "the approximate index (search: 'hnsw') needs the 'usearch' package: npm install usearch");
  }
}

/** Rows per message when adding: bounds the copy held by the worker's queue. */
const ADD_CHUNK = 65536;
/** Rows a graph receives on one thread before adds use every core. */
const SERIAL_ROWS = 10000;

export class AnnIndex {
  private nextId = 1;
  private pending = new Map<number, { resolve: (r: AnnReply) => void; reject: (e: Error) => void }>();
  private closed = false;
  private dead: Error | null = null;
  private count = 0;
  readonly options: ResolvedAnnOptions;

  private constructor(
    private readonly worker: Worker,
    readonly dim: number,
    options: ResolvedAnnOptions,
  ) {
    this.options = options;
    worker.unref(); // an idle index does not keep the process alive
    worker.on('message', (r: AnnReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) worker.unref();
      if (r.error) p.reject(new AnnIndexError(`approximate index: ${r.error.message}`));
      else {
        this.count = r.size;
        p.resolve(r);
      }
    });
    const die = (e: Error) => {
      this.dead ??= e;
      for (const p of this.pending.values()) p.reject(new AnnIndexError(`approximate index worker stopped: ${e.message}`));
      this.pending.clear();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`exit code ${code}`)));
  }

  /** An empty index for dim-dimensional rows. */
  static create(dim: number, options: AnnOptions = {}): AnnIndex {
    if (!Number.isInteger(dim) || dim < 1) throw new AnnIndexError(`dim must be a positive integer, got ${dim}`);
    const parsed = annOptions.safeParse(options);
    if (!parsed.success) throw fromZod(parsed.error, 'options', options);
    requireUsearch();
    const o = parsed.data;
    const config: AnnWorkerConfig = { dim, connectivity: o.connectivity, expansionAdd: o.expansionAdd, expansionSearch: o.expansionSearch, quantization: o.quantization };
    return new AnnIndex(new Worker(path.join(__dirname, 'ann-worker.js'), { workerData: config }), dim, o);
  }

  /** Rows in the index. */
  get size(): number {
    return this.count;
  }

  private call(req: AnnRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never, transfer: ArrayBuffer[] = []): Promise<AnnReply> {
    if (this.closed) return Promise.reject(new AnnIndexError('the approximate index is closed'));
    if (this.dead) return Promise.reject(new AnnIndexError(`approximate index worker stopped: ${this.dead.message}`));
    const id = this.nextId++;
    return new Promise<AnnReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  /** Adds rows (vectors: keys.length x dim values); keys are the store's row ids (integers below 2^53). */
  async add(keys: ArrayLike<number>, vectors: Float32Array): Promise<void> {
    const n = keys.length;
    if (vectors.length !== n * this.dim) throw new AnnIndexError(`add: ${n} keys need ${n * this.dim} values, got ${vectors.length}`);
    const threads = this.options.threads ?? os.availableParallelism();
    const base = this.count;
    for (let s = 0; s < n; ) {
      // The first rows of a graph go in on one thread: rows linked concurrently
      // into a graph of a few hundred nodes were occasionally left unreachable
      // (a 600-row graph missed a query's obvious nearest row about once in 600
      // queries with two threads, never with one); a large graph does not notice.
      const serial = base + s < SERIAL_ROWS;
      const e = Math.min(n, s + (serial ? SERIAL_ROWS - base - s : ADD_CHUNK), s + ADD_CHUNK);
      const k = Float64Array.from({ length: e - s }, (_, i) => keys[s + i]);
      const v = vectors.slice(s * this.dim, e * this.dim); // a copy, transferred: the caller keeps its array
      await this.call({ op: 'add', keys: k, vectors: v, threads: serial ? 1 : threads }, [k.buffer, v.buffer]);
      s = e;
    }
  }

  /** Removes rows by key (unknown keys are ignored). */
  async remove(keys: ArrayLike<number>): Promise<void> {
    if (keys.length) await this.call({ op: 'remove', keys: Float64Array.from(keys) });
  }

  /** The k nearest candidates of each query (queries: m x dim values); missing slots have key -1. */
  async search(queries: Float32Array, k: number): Promise<AnnCandidates[]> {
    if (queries.length % this.dim !== 0) throw new AnnIndexError(`search: queries must hold a multiple of ${this.dim} values, got ${queries.length}`);
    const m = queries.length / this.dim;
    const r = await this.call({ op: 'search', queries: queries.slice(), k });
    return Array.from({ length: m }, (_, q) => ({ keys: r.keys!.subarray(q * k, (q + 1) * k), distances: r.distances!.subarray(q * k, (q + 1) * k) }));
  }

  /** Writes the graph to a file (through a temporary file and a rename: a crash never leaves half a file). */
  async save(file: string): Promise<void> {
    const tmp = tempPathFor(file);
    try {
      await this.call({ op: 'save', path: tmp });
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Reads a graph written by save() (with the same dim and options). */
  async load(file: string): Promise<void> {
    await this.call({ op: 'load', path: file });
  }

  /** Stops the worker once the work queued before has run; the graph is gone (save() first to keep it). */
  async close(): Promise<void> {
    if (this.closed) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    if (!this.dead) {
      try {
        await this.call({ op: 'close' });
      } catch {
        // the worker died meanwhile: nothing left to close
      }
    }
    this.closed = true;
    if (this.dead) return;
    this.worker.ref();
    const timer = setTimeout(() => void this.worker.terminate(), 10000);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
