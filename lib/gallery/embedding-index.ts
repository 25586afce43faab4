// Exact nearest-neighbour search over enrolled embeddings, held in memory as
// one contiguous [capacity, dim] float32 tensor on the model's device (grown
// in chunks), with the squared norms of the rows beside it. A search is a
// matrix product, d^2 = ||q||^2 - 2 q.E^T + ||e||^2 (one addmm per block of
// rows), then topk; candidates are aggregated per person (a person's distance
// is the minimum over their embeddings) and the final distances are recomputed
// exactly from the stored rows. The matrix work runs off the event loop: it is
// a traced program over the whole allocation (unused rows have squared norm
// +Infinity, so they never rank among the nearest), replayed on a worker thread;
// the program captures the matrix, so shapes change only when it grows.
//
// Storage 'bfloat16' (an option) halves the matrix: the dot products run in
// bfloat16 (libtorch 1.13 has no float16 matrix-vector product on the CPU; its
// bfloat16 one ran as fast as float32 here: 49 vs 50 ms for 1M x 128), rounded
// to bfloat16, so the candidates are chosen coarsely and then re-ranked by
// their exact distance to the stored (bfloat16-rounded) rows. What that costs
// in recall is measured (scripts/bench/cases/gallery.ts, test/e2e/gallery.test.ts).
import { ArgumentError, invalid } from '../core/errors';
import { TorchError } from '../core/errors';
import { TracedFunction, trace } from '../core/jit';
import { callOp, cat, copy_, gather, narrow, topk, indexSelect } from '../ops';
import { Device, Tensor, full, tensor, zeros, dispose } from '../core';
import { IdTable } from './id-table';

/** How the index stores its rows: float32, or bfloat16 at half the memory (re-ranked exactly). */
export type IndexStorage = 'float32' | 'bfloat16';
export const INDEX_STORAGES: readonly IndexStorage[] = ['float32', 'bfloat16'];

/** Rows searched per addmm + topk: bounds the temporary distance matrix to m x BLOCK floats. */
export const SEARCH_BLOCK = 262144;
const MIN_CAPACITY = 1024;
/**
 * Rows copied into the matrix per temporary tensor. Copying 50,000 rows (25 MB)
 * at a time left most of the freed temporaries in the heap (glibc did not reuse
 * them): loading 1M x 128 grew RSS by 220 MB beyond the matrix; 2,048 rows (1 MB
 * for 128-d) made it 7 MB.
 */
const COPY_ROWS = 2048;

export interface Neighbour {
  /** The person's id. */
  id: string;
  /** Euclidean distance from the query to the person's nearest embedding. */
  distance: number;
  /** The store key of that nearest embedding. */
  key: number;
}

function rowsToFloat32(rows: readonly Float32Array[] | Float32Array, dim: number): Float32Array {
  if (rows instanceof Float32Array) {
    if (rows.length % dim !== 0) invalid('embeddings', `a multiple of ${dim} values`, rows.length);
    return rows;
  }
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    if (!(r instanceof Float32Array) || r.length !== dim) invalid(`embeddings[${i}]`, `a Float32Array of length ${dim}`, r);
    out.set(r, i * dim);
  });
  return out;
}

/**
 * The in-memory index. Rows are identified by a numeric key (the store's row
 * id) and belong to a person id. Removing swaps the last row into the hole, so
 * rows [0, size) are always the live ones.
 */
export class EmbeddingIndex {
  private E: Tensor | null = null;
  /** Squared norms; +Infinity for unused rows so that they never win a topk. */
  private sq: Tensor | null = null;
  private capacity = 0;
  private count = 0;
  // Per row (slot): its person's number, its store key, and the links of its
  // person's list of rows (insertion order; -1 ends it). Typed arrays, not a JS
  // array per person: with one embedding per person, arrays cost ~200 bytes each.
  private owner = new Int32Array(0);
  private keys = new Float64Array(0);
  private nextRow = new Int32Array(0);
  private prevRow = new Int32Array(0);
  // Per person number (IdTable: ids interned in typed arrays): the first and last row, the row count.
  private ids = new IdTable();
  private firstRow = new Int32Array(0);
  private lastRow = new Int32Array(0);
  private rowCount = new Int32Array(0);
  /** Traced searches over the current allocation, by `${queries}:${rows wanted}` (cleared when it grows). */
  private programs = new Map<string, TracedFunction>();

  /** The allocation is replaced (grown or freed): traced searches hold the old one. */
  private dropPrograms(): void {
    this.programs.clear(); // each program's captured tensors are released with it
  }

  constructor(
    readonly dim: number,
    readonly device: Device = 'cpu',
    readonly storage: IndexStorage = 'float32',
  ) {
    if (!Number.isInteger(dim) || dim <= 0) invalid('dim', 'a positive integer', dim);
    if (!INDEX_STORAGES.includes(storage)) invalid('storage', INDEX_STORAGES.map((x) => `'${x}'`).join(' or '), storage);
  }

  /** Number of embeddings. */
  get size(): number {
    return this.count;
  }
  /** Number of people with at least one embedding. */
  get people(): number {
    return this.ids.size;
  }
  /** Bytes held (capacity, not size): the matrix and its norms, the per-row and per-person arrays, the id table. */
  get bytes(): number {
    const arrays = [this.owner, this.keys, this.nextRow, this.prevRow, this.firstRow, this.lastRow, this.rowCount].reduce((s, a) => s + a.byteLength, 0);
    return this.capacity * (this.dim * (this.storage === 'bfloat16' ? 2 : 4) + 4) + arrays + this.ids.bytes;
  }
  has(id: string): boolean {
    return this.ids.get(id) >= 0;
  }
  countOf(id: string): number {
    const n = this.ids.get(id);
    return n < 0 ? 0 : this.rowCount[n];
  }

  /** The rows of a person number, in insertion order. */
  private slotsOf(num: number): number[] {
    const out: number[] = [];
    for (let s = this.firstRow[num]; s >= 0; s = this.nextRow[s]) out.push(s);
    return out;
  }

  /** Makes room for `total` rows without further growth (exactly that many, beyond MIN_CAPACITY). */
  reserve(total: number): void {
    if (total <= this.capacity) return;
    this.dropPrograms();
    const cap = Math.max(MIN_CAPACITY, total);
    const E = zeros([cap, this.dim], { device: this.device, dtype: this.storage });
    const sq = full([cap], Infinity, { device: this.device });
    try {
      if (this.count > 0) {
        const dst = narrow(E, 0, 0, this.count);
        const src = narrow(this.E!, 0, 0, this.count);
        const dsq = narrow(sq, 0, 0, this.count);
        const ssq = narrow(this.sq!, 0, 0, this.count);
        copy_(dst, src);
        copy_(dsq, ssq);
        dispose(dst, src, dsq, ssq);
      }
    } catch (e) {
      dispose(E, sq);
      throw e;
    }
    dispose(this.E, this.sq);
    this.E = E;
    this.sq = sq;
    const owner = new Int32Array(cap);
    owner.set(this.owner.subarray(0, this.count));
    const keys = new Float64Array(cap);
    keys.set(this.keys.subarray(0, this.count));
    const nextRow = new Int32Array(cap);
    nextRow.set(this.nextRow.subarray(0, this.count));
    const prevRow = new Int32Array(cap);
    prevRow.set(this.prevRow.subarray(0, this.count));
    this.owner = owner;
    this.keys = keys;
    this.nextRow = nextRow;
    this.prevRow = prevRow;
    this.capacity = cap;
  }

  /** A number for a new person (reusing freed ones), with room in the per-person arrays. */
  private newPerson(id: string): number {
    const num = this.ids.add(id);
    if (num >= this.firstRow.length) {
      const cap = Math.max(1024, Math.ceil(this.firstRow.length * 1.5), num + 1);
      const grow = (a: Int32Array) => {
        const b = new Int32Array(cap);
        b.set(a);
        return b;
      };
      this.firstRow = grow(this.firstRow);
      this.lastRow = grow(this.lastRow);
      this.rowCount = grow(this.rowCount);
    }
    this.firstRow[num] = this.lastRow[num] = -1;
    this.rowCount[num] = 0;
    return num;
  }

  /**
   * Adds embeddings of one person (rows: n arrays of dim floats, or one flat
   * Float32Array of n*dim) with their store keys. Atomic: on error nothing changed.
   */
  add(id: string, rows: readonly Float32Array[] | Float32Array, keys: readonly number[]): void {
    const flat = rowsToFloat32(rows, this.dim);
    this.addRows(new Array<string>(flat.length / this.dim).fill(id), flat, keys);
  }

  /** Adds rows that belong to possibly different people: ids[i] owns row i of flat (n*dim floats). Atomic. */
  addRows(ids: readonly string[], flat: Float32Array, keys: readonly number[]): void {
    const n = ids.length;
    if (flat.length !== n * this.dim) invalid('embeddings', `${n * this.dim} values (${n} x ${this.dim})`, flat.length);
    if (keys.length !== n) invalid('keys', `${n} keys`, keys.length);
    if (n === 0) return;
    const sqv = new Float32Array(n);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let j = r * this.dim; j < (r + 1) * this.dim; j++) {
        const v = flat[j];
        if (!Number.isFinite(v)) invalid('embeddings', 'finite values', v);
        s += v * v;
      }
      sqv[r] = s;
    }
    if (this.count + n > this.capacity) this.reserve(Math.max(this.count + n, Math.ceil(this.capacity * 1.25)));
    for (let start = 0; start < n; start += COPY_ROWS) {
      const rows = Math.min(COPY_ROWS, n - start);
      const src = tensor(flat.subarray(start * this.dim, (start + rows) * this.dim), { shape: [rows, this.dim], device: this.device });
      const srcSq = tensor(sqv.subarray(start, start + rows), { device: this.device });
      const dst = narrow(this.E!, 0, this.count + start, rows);
      const dstSq = narrow(this.sq!, 0, this.count + start, rows);
      try {
        copy_(dst, src);
        copy_(dstSq, srcSq);
      } finally {
        dispose(src, srcSq, dst, dstSq);
      }
    }
    for (let r = 0; r < n; r++) {
      let num = this.ids.get(ids[r]);
      if (num < 0) num = this.newPerson(ids[r]);
      const slot = this.count++;
      this.owner[slot] = num;
      this.keys[slot] = keys[r];
      // Appended to the person's list.
      const tail = this.lastRow[num];
      this.prevRow[slot] = tail;
      this.nextRow[slot] = -1;
      if (tail >= 0) this.nextRow[tail] = slot;
      else this.firstRow[num] = slot;
      this.lastRow[num] = slot;
      this.rowCount[num]++;
    }
  }

  /** Removes all rows of a person; returns how many were removed. */
  remove(id: string): number {
    const num = this.ids.get(id);
    if (num < 0) return 0;
    // Highest first: a row moved into a hole is then never one of this person's.
    const slots = this.slotsOf(num).sort((a, b) => b - a);
    for (const s of slots) this.removeSlot(s);
    this.firstRow[num] = this.lastRow[num] = -1;
    this.rowCount[num] = 0;
    this.ids.delete(num);
    return slots.length;
  }

  private removeSlot(s: number): void {
    const last = this.count - 1;
    if (s !== last) {
      const dst = narrow(this.E!, 0, s, 1);
      const src = narrow(this.E!, 0, last, 1);
      const dsq = narrow(this.sq!, 0, s, 1);
      const ssq = narrow(this.sq!, 0, last, 1);
      copy_(dst, src);
      copy_(dsq, ssq);
      dispose(dst, src, dsq, ssq);
      const moved = this.owner[last];
      this.owner[s] = moved;
      this.keys[s] = this.keys[last];
      // The moved row keeps its place in its person's list.
      const prev = this.prevRow[last];
      const next = this.nextRow[last];
      this.prevRow[s] = prev;
      this.nextRow[s] = next;
      if (prev >= 0) this.nextRow[prev] = s;
      else this.firstRow[moved] = s;
      if (next >= 0) this.prevRow[next] = s;
      else this.lastRow[moved] = s;
    }
    const lsq = narrow(this.sq!, 0, last, 1);
    const lE = narrow(this.E!, 0, last, 1);
    lsq.fill_(Infinity);
    lE.zero_();
    dispose(lsq, lE);
    this.count--;
  }

  /** Removes everything (keeps the allocation). */
  clear(): void {
    for (const num of this.ids.numbers()) this.remove(this.ids.idOf(num));
  }

  /** Frees the tensors. */
  dispose(): void {
    this.dropPrograms();
    dispose(this.E, this.sq);
    this.E = this.sq = null;
    this.capacity = this.count = 0;
    this.ids.clear();
    this.owner = new Int32Array(0);
    this.keys = new Float64Array(0);
    this.nextRow = new Int32Array(0);
    this.prevRow = new Int32Array(0);
    this.firstRow = new Int32Array(0);
    this.lastRow = new Int32Array(0);
    this.rowCount = new Int32Array(0);
  }

  /** Rows (embeddings) at the given slots, read back from the device. */
  private rowsAt(slots: number[]): Float32Array {
    if (slots.length === 0) return new Float32Array(0);
    const idx = tensor(BigInt64Array.from(slots, (s) => BigInt(s)), { device: this.device });
    const rows = indexSelect(this.E!, 0, idx);
    const f32 = this.storage === 'float32' ? rows : rows.to('float32');
    try {
      return f32.data() as Float32Array;
    } finally {
      dispose(idx, rows, f32);
    }
  }

  /** The embeddings of one person (copies), or null if unknown. */
  embeddingsOf(id: string): Float32Array[] | null {
    const num = this.ids.get(id);
    if (num < 0) return null;
    const slots = this.slotsOf(num);
    const flat = this.rowsAt(slots);
    return slots.map((_, i) => flat.slice(i * this.dim, (i + 1) * this.dim));
  }

  /**
   * For each query (m rows of dim floats), the k nearest people by their
   * nearest embedding, closest first. Exact. The distance matrix and its topk
   * run on a worker thread; an enrolment or removal that lands while one runs
   * makes it run again (at most twice, then once on this thread).
   */
  async search(queries: readonly Float32Array[] | Float32Array, k: number): Promise<Neighbour[][]> {
    if (!Number.isInteger(k) || k < 1) invalid('k', 'a positive integer', k);
    const q = rowsToFloat32(queries, this.dim);
    const m = q.length / this.dim;
    for (let i = 0; i < q.length; i++) if (!Number.isFinite(q[i])) throw new ArgumentError('query', 'finite values', q[i]);
    if (m === 0) return [];
    if (this.count === 0) return Array.from({ length: m }, () => []);
    // Candidate rows per query (matrix form, ascending), re-ranked by exact
    // distance, must cover `want` distinct people; else fetch more.
    let kRows = Math.min(this.count, Math.max(32, Math.min(this.people, k) * 2 + 8));
    for (;;) {
      const rows = await this.topRows(q, m, kRows);
      if (this.count === 0) return Array.from({ length: m }, () => []);
      const want = Math.min(k, this.people);
      const vecs = this.rowsAt(rows.flat());
      let p = 0;
      let short = false;
      const result: Neighbour[][] = rows.map((slots, i) => {
        const exact = slots.map((slot) => {
          let s = 0;
          for (let j = 0; j < this.dim; j++) {
            const d = q[i * this.dim + j] - vecs[p * this.dim + j];
            s += d * d;
          }
          p++;
          return { slot, d: Math.sqrt(s) };
        });
        exact.sort((a, b) => a.d - b.d || a.slot - b.slot);
        const seen = new Set<number>();
        const best: Neighbour[] = [];
        for (const { slot, d } of exact) {
          const num = this.owner[slot];
          if (seen.has(num)) continue;
          seen.add(num);
          best.push({ id: this.ids.idOf(num), distance: d, key: this.keys[slot] });
          if (best.length === want) break;
        }
        if (best.length < want) short = true;
        return best;
      });
      if (short && kRows < this.count) {
        kRows = Math.min(this.count, kRows * 4);
        continue;
      }
      return result;
    }
  }

  /** Slots of the kRows nearest rows for each query, nearest first (live rows only: kRows <= size). */
  private async topRows(q: Float32Array, m: number, kRows: number): Promise<number[][]> {
    for (let attempt = 0; ; attempt++) {
      kRows = Math.min(kRows, this.count);
      const qt = tensor(q, { shape: [m, this.dim], device: this.device });
      try {
        if (attempt >= 2) return this.rowsOf(this.nearest(qt, kRows), m, kRows); // the matrix kept changing: once on this thread
        const key = `${m}:${kRows}`;
        let f = this.programs.get(key);
        if (!f) {
          if (this.programs.size >= 32) this.programs.delete(this.programs.keys().next().value as string);
          // Tracing runs the search once here (on this thread), as the first search of a shape did before.
          f = trace((x: Tensor) => this.nearest(x, kRows), [qt]);
          this.programs.set(key, f);
        }
        const [idx] = await f(qt);
        return this.rowsOf(idx, m, kRows);
      } catch (e) {
        // A replay refused because the matrix changed while it ran (an enrolment landed): run again.
        if (!(e instanceof TorchError && /changed while the program ran/.test(e.message))) throw e;
      } finally {
        qt.dispose();
      }
    }
  }

  private rowsOf(idx: Tensor, m: number, kRows: number): number[][] {
    try {
      const ix = idx.data() as BigInt64Array;
      return Array.from({ length: m }, (_, i) => Array.from(ix.subarray(i * kRows, (i + 1) * kRows), Number));
    } finally {
      idx.dispose();
    }
  }

  /**
   * sq - 2 q.E (the squared distances up to ||q||^2): one addmv (q a vector, E
   * rows x dim) or addmm (q m x dim, E transposed); for bfloat16 storage the
   * product in bfloat16 and the sum in float32.
   */
  private distances(sq: Tensor, E: Tensor, q: Tensor, temps: Tensor[]): Tensor {
    const vector = q.ndim === 1;
    if (this.storage === 'float32') {
      const d = callOp(vector ? 'aten::addmv' : 'aten::addmm', '', sq, vector ? E : q, vector ? q : E, 1, -2) as Tensor;
      temps.push(d);
      return d;
    }
    const q16 = q.to(this.storage);
    const dot16 = vector ? (callOp('aten::mv', '', E, q16) as Tensor) : (callOp('aten::mm', '', q16, E) as Tensor);
    const dot = dot16.to('float32');
    const d = sq.sub(dot, 2);
    temps.push(q16, dot16, dot, d);
    return d;
  }

  /**
   * Indices [m, kRows] of the nearest rows of the whole allocation, nearest
   * first: sq - 2 q E^T per block of rows (one addmv for a single query: one
   * pass over E), topk per block, then topk of the blocks' candidates.
   * (||q||^2 does not change the ranking.) Tensor ops only: traceable.
   */
  private nearest(qt: Tensor, kRows: number): Tensor {
    const temps: Tensor[] = [];
    try {
      const m = qt.shape[0];
      if (m === 1 && this.capacity <= SEARCH_BLOCK * 4) {
        const q = qt.squeeze(0);
        temps.push(q);
        const d = this.distances(this.sq!, this.E!, q, temps);
        const { values, indices } = topk(d, kRows, 0, false, true);
        temps.push(values);
        const out = indices.unsqueeze(0);
        indices.dispose();
        return out;
      }
      const vals: Tensor[] = [];
      const idxs: Tensor[] = [];
      for (let start = 0; start < this.capacity; start += SEARCH_BLOCK) {
        const rows = Math.min(SEARCH_BLOCK, this.capacity - start);
        const Eb = narrow(this.E!, 0, start, rows);
        const sqb = narrow(this.sq!, 0, start, rows);
        const Ebt = Eb.t();
        temps.push(Eb, sqb, Ebt);
        const d = this.distances(sqb, Ebt, qt, temps);
        const { values, indices } = topk(d, Math.min(kRows, rows), 1, false, true);
        temps.push(indices);
        vals.push(values);
        idxs.push(start ? indices.add(start) : indices);
        if (start) temps.push(idxs[idxs.length - 1]);
      }
      temps.push(...vals);
      if (vals.length === 1) return idxs[0].clone();
      const allV = cat(vals, 1);
      const allI = cat(idxs, 1);
      temps.push(allV, allI);
      const { values, indices } = topk(allV, kRows, 1, false, true);
      temps.push(values, indices);
      return gather(allI, 1, indices);
    } finally {
      dispose(temps);
    }
  }
}
