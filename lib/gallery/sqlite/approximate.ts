// FaceGallery's approximate search (search: 'hnsw'): an HNSW graph over the
// SQLite file's embeddings (../ann-index.ts), persisted beside the file as
// FILE.hnsw with FILE.hnsw.json saying which state of the file it reflects
// (the file's embedding change counter and the largest key, see store.ts).
// Opening a gallery loads the graph; when the file changed since (another
// process wrote it, or this one stopped without saving) the graph catches up
// with the removals the file records and the rows added since; it is rebuilt
// from the file when missing, damaged, older than the recorded removals, or
// built with other parameters. The graph only proposes candidates: their rows
// are read back from SQLite and ranked by exact distance, so answers carry
// exact distances, and the float32 rows are held once, in the file (no
// in-memory copy as the exact index keeps).
import * as crypto from 'crypto';
import * as fs from 'fs';
import { z } from 'zod';
import { AnnIndex, annOptions } from '../ann-index';
import { fromZod } from '../../core/errors';
import { writeFileAtomic } from '../../io/atomic';
import { type Candidate, euclidean } from '../gallery';
import type { SqliteStore } from './store';

const FORMAT = 1;

interface Sidecar {
  format: number;
  /** The gallery file's id (store.uuid()). */
  gallery: string;
  generation: number;
  rows: number;
  dim: number;
  connectivity: number;
  expansionAdd: number;
  quantization: string;
  /** The largest row key in the graph (rows added since have larger keys: SQLite's AUTOINCREMENT). */
  maxKey: number;
  /** The graph file's size, and SHA-256 of its first and last 64 KiB: usearch's format has no magic number or checksum, and reading a damaged file can take very long. */
  bytes: number;
  fingerprint: string;
}

/** Size and a hash of the ends of a file (cheap for a graph of gigabytes). */
function fingerprint(file: string): { bytes: number; fingerprint: string } {
  const fd = fs.openSync(file, 'r');
  try {
    const bytes = fs.fstatSync(fd).size;
    const span = Math.min(65536, bytes);
    const buf = Buffer.alloc(2 * span);
    fs.readSync(fd, buf, 0, span, 0);
    fs.readSync(fd, buf, span, span, bytes - span);
    return { bytes, fingerprint: crypto.createHash('sha256').update(buf).digest('hex') };
  } finally {
    fs.closeSync(fd);
  }
}

/** A gallery's HNSW options: the graph's (AnnIndex), and how long the file remembers removals. */
export const galleryHnswOptions = annOptions
  .extend({
    /**
     * Removals the file keeps recorded once a graph reflecting them is saved (the newest ones;
     * default 1,000,000, some 20 MB of rows): another process's graph, or an older copy, that
     * is behind by fewer catches up instead of being rebuilt (a 10M-row graph took an hour to
     * build on 2 cores). 0 forgets them at every save.
     */
    keepRemovals: z.number().int().min(0).max(1e9).default(1_000_000),
  })
  .strict();
export type GalleryHnswOptions = z.input<typeof galleryHnswOptions>;

/** Rows read from SQLite per add while rebuilding or catching up. */
const PAGE_ROWS = 65536;

/** Rows of dim values, one after another in one array (as AnnIndex takes them). */
function flat(rows: readonly Float32Array[], dim: number): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => out.set(r, i * dim));
  return out;
}

export class ApproximateSearch {
  /** The file's change counter that the graph reflects; -1: unknown (rebuild). */
  private generation = -1;
  /** The largest key in the graph. */
  private maxKey = 0;
  private saved = -1;
  private rebuilding: Promise<void> | null = null;
  private syncing: Promise<void> | null = null;
  /** How many times the graph was built from the file (opening loads it instead when it is current). */
  rebuilds = 0;
  /** How many times it caught up with changes made by other writers. */
  catchUps = 0;

  private constructor(
    private readonly store: SqliteStore,
    /** Where the graph is kept; null for ':memory:' galleries. */
    readonly file: string | null,
    private ann: AnnIndex,
    private readonly keepRemovals: number,
  ) {}

  /** Opens the graph of a gallery: loaded when current, else rebuilt from the file (and saved). */
  static async open(store: SqliteStore, galleryPath: string, dim: number, options: GalleryHnswOptions = {}): Promise<ApproximateSearch> {
    const parsed = galleryHnswOptions.safeParse(options);
    if (!parsed.success) throw fromZod(parsed.error, 'options.hnsw', options);
    const { keepRemovals, ...graph } = parsed.data;
    const file = galleryPath === ':memory:' || galleryPath === '' ? null : `${galleryPath}.hnsw`;
    const a = new ApproximateSearch(store, file, AnnIndex.create(dim, graph), keepRemovals);
    try {
      if (!(await a.tryLoad())) await a.rebuild();
    } catch (e) {
      await a.ann.close();
      throw e;
    }
    return a;
  }

  get index(): AnnIndex {
    return this.ann;
  }

  private sidecarFor(generation: number): Omit<Sidecar, 'bytes' | 'fingerprint'> {
    const o = this.ann.options;
    return { format: FORMAT, gallery: this.store.uuid(), generation, rows: this.ann.size, dim: this.ann.dim, connectivity: o.connectivity, expansionAdd: o.expansionAdd, quantization: o.quantization, maxKey: this.maxKey };
  }

  private async tryLoad(): Promise<boolean> {
    if (!this.file || !fs.existsSync(this.file) || !fs.existsSync(`${this.file}.json`)) return false;
    let side: Sidecar;
    try {
      side = JSON.parse(fs.readFileSync(`${this.file}.json`, 'utf8')) as Sidecar;
    } catch {
      return false;
    }
    const want = this.sidecarFor(this.store.generation());
    // Another gallery's graph, or one newer than the file (the file restored from a backup): rebuilt.
    const same = (['format', 'gallery', 'dim', 'connectivity', 'expansionAdd', 'quantization'] as const).every((k) => side[k] === want[k]) && Number.isInteger(side.generation) && side.generation <= want.generation && Number.isInteger(side.maxKey);
    if (!same) return false;
    const now = fingerprint(this.file);
    if (now.bytes !== side.bytes || now.fingerprint !== side.fingerprint) return false; // damaged or replaced
    try {
      await this.ann.load(this.file);
    } catch {
      return false; // unreadable: rebuilt instead
    }
    if (this.ann.size !== side.rows) return false;
    this.generation = this.saved = side.generation;
    this.maxKey = side.maxKey;
    // Written since it was saved (another process, or this one stopped without closing): catch up.
    return this.generation === this.store.generation() || (await this.catchUp());
  }

  /**
   * Applies what changed in the file since the graph's counter: removes the
   * rows removed since, adds the rows added since. False when the file no
   * longer records removals that old (the caller rebuilds).
   */
  private async catchUp(): Promise<boolean> {
    if (this.generation < 0) return false;
    const changes = this.store.changesSince(this.generation, this.maxKey);
    if (!changes) return false;
    await this.ann.remove(changes.removed);
    // The rows added up to the snapshot's last key. A row removed meanwhile is skipped here; its
    // removal, recorded with a later counter, is then a no-op on the next catch-up. Rows added
    // meanwhile have larger keys.
    await this.addRowsAfter(this.ann, this.maxKey, changes.lastKey);
    this.catchUps++;
    this.generation = changes.generation;
    return true;
  }

  /**
   * Adds the file's rows with keys in (after, upTo] to `graph`, page by page, so that no
   * statement stays open across the awaits (a write on this connection meanwhile would fail).
   * Into this graph, maxKey follows each page (a failure midway leaves it true). Returns the
   * last key added, or `after`.
   */
  private async addRowsAfter(graph: AnnIndex, after: number, upTo?: number): Promise<number> {
    for (;;) {
      const page = this.store.embeddingsAfter(after, PAGE_ROWS, graph.dim, upTo);
      if (page.length === 0) return after;
      await graph.add(page.map((r) => r.key), flat(page.map((r) => r.vector), graph.dim));
      after = page[page.length - 1].key;
      if (graph === this.ann) this.maxKey = Math.max(this.maxKey, after);
    }
  }

  /** Rebuilds the graph from every row of the file (one rebuild at a time; callers share it). */
  rebuild(): Promise<void> {
    this.rebuilding ??= (async () => {
      const dim = this.ann.dim;
      const fresh = AnnIndex.create(dim, this.ann.options);
      try {
        const generation = this.store.generation();
        const after = await this.addRowsAfter(fresh, 0);
        const old = this.ann;
        this.ann = fresh;
        this.rebuilds++;
        await old.close();
        // Rows committed elsewhere while the pages were read are caught up with on the next refresh.
        this.generation = generation;
        this.maxKey = after;
        await this.save();
      } catch (e) {
        await fresh.close();
        throw e;
      } finally {
        this.rebuilding = null;
      }
    })();
    return this.rebuilding;
  }

  /**
   * Runs a write transaction and records whether it was the only change to the
   * file since the graph was last current: the counter moves by one per row
   * inserted or deleted, so a counter that did not start where the graph left
   * it means another writer came first (the graph is then rebuilt before the next search).
   */
  track<T>(write: () => T): T {
    return this.store.transaction(() => {
      const before = this.store.generation();
      const out = write();
      this.generation = before === this.generation ? this.store.generation() : -1;
      return out;
    });
  }

  async add(keys: number[], vectors: Float32Array[]): Promise<void> {
    for (const k of keys) if (k > this.maxKey) this.maxKey = k;
    await this.ann.add(keys, flat(vectors, this.ann.dim));
  }

  async remove(keys: number[]): Promise<void> {
    await this.ann.remove(keys);
  }

  /**
   * Brings the graph in step with the file when it changed behind its back
   * (another process wrote it): caught up when the file recorded the changes,
   * else rebuilt. Searches and writes call it first (one at a time).
   */
  async refresh(): Promise<void> {
    while (this.rebuilding || this.syncing) await (this.rebuilding ?? this.syncing);
    if (this.generation === this.store.generation()) return;
    this.syncing = (async () => {
      try {
        if (!(await this.catchUp())) await this.rebuild();
      } finally {
        this.syncing = null;
      }
    })();
    await this.syncing;
  }

  /**
   * The k nearest people of each query: the graph's nearest rows (4k, at least
   * 32, so that people with several embeddings still leave k distinct people),
   * re-ranked by exact distance to their stored rows; each of the 2k leading
   * people then measured over all their rows (the minimum per person).
   */
  async search(queries: Float32Array[], k: number): Promise<Candidate[][]> {
    await this.refresh();
    const dim = this.ann.dim;
    if (this.ann.size === 0) return queries.map(() => []);
    const rows = Math.min(this.ann.size, Math.max(32, 4 * k));
    const found = await this.ann.search(flat(queries, dim), rows);
    return found.map((c, qi) => {
      const q = queries[qi];
      const keys = Array.from(c.keys).filter((key) => key >= 0);
      const best = new Map<string, number>();
      for (const r of this.store.rowsByKeys(keys, dim)) {
        const d = euclidean(r.vector, q);
        if (!(best.get(r.id)! <= d)) best.set(r.id, d);
      }
      // A person's distance is to their nearest embedding, which need not be
      // among the rows proposed: the leading people are measured over all their rows.
      const leading = [...best].sort((a, b) => a[1] - b[1]).slice(0, 2 * k);
      return leading
        .map(([id]) => ({ id, distance: Math.min(...this.store.embeddingsOf(id, dim).map((v) => euclidean(v, q))) }))
        .sort((a, b) => a.distance - b.distance)
        .slice(0, k);
    });
  }

  /** Writes the graph and its sidecar when it is current and changed since the last save. */
  async save(): Promise<void> {
    if (!this.file || this.generation < 0 || this.generation === this.saved) return;
    const generation = this.generation;
    await this.ann.save(this.file);
    await writeFileAtomic(`${this.file}.json`, JSON.stringify({ ...this.sidecarFor(generation), ...fingerprint(this.file) }) + '\n');
    this.saved = generation;
    // Removals the saved graph reflects, past the newest keepRemovals: other processes' graphs
    // (or an older copy) still behind them are rebuilt rather than caught up.
    this.store.pruneRemoved(generation, this.keepRemovals);
  }

  /** Saves (when current) and stops the graph's worker. */
  async close(): Promise<void> {
    try {
      if (this.rebuilding) await this.rebuilding.catch(() => {});
      await this.save();
    } finally {
      await this.ann.close();
    }
  }
}
