// The embedded gallery store: one SQLite file (better-sqlite3), WAL journal,
// synchronous=FULL, every write in one transaction. Embeddings are float32
// little-endian BLOBs. Synchronous by design (better-sqlite3): a write either
// commits before the call returns or leaves nothing behind.
import type Database from 'better-sqlite3';
import { FileFormatError } from '../../core/errors';

export interface StoredModel {
  name: string;
  hash: string;
  dim: number;
}

export interface PersonRow {
  id: string;
  metadata: Record<string, unknown>;
  embeddings: number;
  createdAt: string;
  updatedAt: string;
}

const SCHEMA_VERSION = '1';

function toBlob(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}
function fromBlob(b: Buffer, dim: number): Float32Array {
  if (b.byteLength !== dim * 4) throw new FileFormatError(`gallery embedding has ${b.byteLength} bytes, expected ${dim * 4}`);
  const out = new Float32Array(dim);
  new Uint8Array(out.buffer).set(b);
  return out;
}

export class SqliteStore {
  readonly db: Database.Database;

  constructor(readonly path: string) {
    try {
      // better-sqlite3 is loaded with the first gallery, not with the package.
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const Sqlite = require('better-sqlite3') as typeof Database;
      this.db = new Sqlite(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS people (
          id TEXT PRIMARY KEY,
          metadata TEXT NOT NULL DEFAULT '{}',
          created_at TEXT NOT NULL,
          updated_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS embeddings (
          key INTEGER PRIMARY KEY AUTOINCREMENT,
          person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
          vector BLOB NOT NULL
        );
        CREATE INDEX IF NOT EXISTS embeddings_person ON embeddings(person_id);
        -- A counter that every change to the embeddings moves, whoever writes
        -- (another process, an older torchface), and the keys of removed rows
        -- with the counter at their removal: an approximate index saved beside
        -- the file records the counter and the largest key it reflects, and
        -- catches up (removes what was removed since, adds the rows above that
        -- key) instead of being rebuilt (FaceGallery with search: 'hnsw').
        -- removed_since: the counter from which the removals are all recorded.
        INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');
        INSERT OR IGNORE INTO meta (key, value) VALUES ('removed_since', '0');
        -- Which gallery this is (a graph saved beside another file, or beside a restored copy, is not its graph).
        INSERT OR IGNORE INTO meta (key, value) VALUES ('uuid', lower(hex(randomblob(16))));
        CREATE TABLE IF NOT EXISTS embeddings_removed (key INTEGER PRIMARY KEY, generation INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS embeddings_removed_generation ON embeddings_removed (generation);
        CREATE TRIGGER IF NOT EXISTS embeddings_generation_insert AFTER INSERT ON embeddings
          BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
        CREATE TRIGGER IF NOT EXISTS embeddings_generation_delete AFTER DELETE ON embeddings
          BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';
            INSERT OR REPLACE INTO embeddings_removed (key, generation)
              VALUES (OLD.key, (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'));
          END;
      `);
      const v = this.getMeta('schema');
      if (v === null) this.setMeta('schema', SCHEMA_VERSION);
      else if (v !== SCHEMA_VERSION) throw new FileFormatError(`gallery '${path}' has schema version ${v}; this torchface reads version ${SCHEMA_VERSION}`);
    } catch (e) {
      if (e instanceof FileFormatError) throw e;
      const err = e as { code?: string; message: string };
      throw new FileFormatError(`cannot open gallery '${path}': ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' '));
    }
  }

  private versionStmt: Database.Statement | null = null;
  /**
   * SQLite's PRAGMA data_version: changes when another connection (in this
   * process or another) commits to the file, not for this connection's own commits.
   */
  dataVersion(): number {
    this.versionStmt ??= this.db.prepare('PRAGMA data_version').pluck();
    return Number(this.versionStmt.get());
  }

  getMeta(key: string): string | null {
    const r = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return r ? r.value : null;
  }
  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** A random id given to the file when it was created. */
  uuid(): string {
    return this.getMeta('uuid') ?? '';
  }

  /** The embeddings' change counter (see the triggers above). */
  generation(): number {
    return Number(this.getMeta('generation') ?? 0);
  }

  /**
   * What changed since the counter read `since`, for a copy that held every
   * row up to key `maxKey` then, read in one snapshot: the counter now, the
   * keys removed since, and the largest key now (the rows added since are the
   * keys in (maxKey, lastKey]: read them page by page with embeddingsAfter, as
   * a catch-up after a million added rows would otherwise hold them all at
   * once); null when removals that old are no longer recorded (then rebuild).
   */
  changesSince(since: number, maxKey: number): { generation: number; removed: number[]; lastKey: number } | null {
    return this.db
      .transaction(() => {
        if (since < Number(this.getMeta('removed_since') ?? 0)) return null;
        const removed = this.db.prepare('SELECT key FROM embeddings_removed WHERE generation > ? AND key <= ?').pluck().all(since, maxKey) as number[];
        const last = this.db.prepare('SELECT max(key) FROM embeddings').pluck().get() as number | null;
        return { generation: this.generation(), removed, lastKey: Math.max(maxKey, last ?? 0) };
      })
      .deferred();
  }

  /**
   * Forgets removals up to counter `upTo`, keeping the newest `keep` of them (a
   * copy older than what is kept is rebuilt instead of caught up).
   */
  pruneRemoved(upTo: number, keep: number): void {
    this.transaction(() => {
      // The counter of the newest removal beyond the kept ones (each removal moves it by one).
      const nth = this.db.prepare('SELECT generation FROM embeddings_removed ORDER BY generation DESC LIMIT 1 OFFSET ?').pluck().get(keep) as number | undefined;
      if (nth === undefined) return;
      const cutoff = Math.min(upTo, nth);
      if (cutoff <= Number(this.getMeta('removed_since') ?? 0)) return;
      this.db.prepare('DELETE FROM embeddings_removed WHERE generation <= ?').run(cutoff);
      this.setMeta('removed_since', String(cutoff));
    });
  }

  readModel(): StoredModel | null {
    const s = this.getMeta('model');
    return s ? (JSON.parse(s) as StoredModel) : null;
  }
  writeModel(m: StoredModel): void {
    this.setMeta('model', JSON.stringify(m));
  }

  /** Transactions run through this handle (with data_version, says whether cached counts are current). */
  private writes = 0;

  /** Runs fn in one IMMEDIATE transaction (all or nothing). */
  transaction<T>(fn: () => T): T {
    this.writes++;
    return this.db.transaction(fn).immediate();
  }

  has(id: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM people WHERE id = ?').get(id);
  }

  /** Inserts (or touches) a person and their embeddings; returns the new keys. Call inside transaction(). */
  insert(id: string, metadata: Record<string, unknown> | undefined, vectors: Float32Array[], now: string): number[] {
    const exists = this.has(id);
    if (!exists) this.db.prepare('INSERT INTO people (id, metadata, created_at, updated_at) VALUES (?, ?, ?, ?)').run(id, JSON.stringify(metadata ?? {}), now, now);
    else if (metadata !== undefined) this.db.prepare('UPDATE people SET metadata = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(metadata), now, id);
    else this.db.prepare('UPDATE people SET updated_at = ? WHERE id = ?').run(now, id);
    const ins = this.db.prepare('INSERT INTO embeddings (person_id, vector) VALUES (?, ?)');
    return vectors.map((v) => Number(ins.run(id, toBlob(v)).lastInsertRowid));
  }

  /** Removes the given embedding rows of a person, and the person when none is left (undoes an insert). */
  removeEmbeddings(id: string, keys: number[]): void {
    const del = this.db.prepare('DELETE FROM embeddings WHERE key = ?');
    for (const k of keys) del.run(k);
    this.db.prepare('DELETE FROM people WHERE id = ? AND NOT EXISTS (SELECT 1 FROM embeddings WHERE person_id = ?)').run(id, id);
  }

  /** Removes every embedding of a person (the person stays). */
  removeEmbeddingsOf(id: string): void {
    this.db.prepare('DELETE FROM embeddings WHERE person_id = ?').run(id);
  }

  remove(id: string): boolean {
    return this.db.prepare('DELETE FROM people WHERE id = ?').run(id).changes > 0;
  }

  clear(): void {
    this.db.exec('DELETE FROM embeddings; DELETE FROM people;');
    // Every row went: a copy of the old rows is rebuilt, not caught up row by row.
    this.db.exec('DELETE FROM embeddings_removed');
    this.setMeta('removed_since', String(this.generation()));
  }

  list(): PersonRow[] {
    const rows = this.db
      .prepare(
        `SELECT p.id, p.metadata, p.created_at AS createdAt, p.updated_at AS updatedAt,
                (SELECT count(*) FROM embeddings e WHERE e.person_id = p.id) AS embeddings
         FROM people p ORDER BY p.id`,
      )
      .all() as (Omit<PersonRow, 'metadata'> & { metadata: string })[];
    return rows.map((r) => ({ ...r, metadata: JSON.parse(r.metadata) as Record<string, unknown> }));
  }

  get(id: string): PersonRow | null {
    const r = this.db
      .prepare(
        `SELECT p.id, p.metadata, p.created_at AS createdAt, p.updated_at AS updatedAt,
                (SELECT count(*) FROM embeddings e WHERE e.person_id = p.id) AS embeddings
         FROM people p WHERE p.id = ?`,
      )
      .get(id) as (Omit<PersonRow, 'metadata'> & { metadata: string }) | undefined;
    return r ? { ...r, metadata: JSON.parse(r.metadata) as Record<string, unknown> } : null;
  }

  embeddingsOf(id: string, dim: number): Float32Array[] {
    const rows = this.db.prepare('SELECT vector FROM embeddings WHERE person_id = ? ORDER BY key').all(id) as { vector: Buffer }[];
    return rows.map((r) => fromBlob(r.vector, dim));
  }

  /** The keys of a person's embeddings. */
  keysOf(id: string): number[] {
    return this.db.prepare('SELECT key FROM embeddings WHERE person_id = ? ORDER BY key').pluck().all(id) as number[];
  }

  /** The rows with these keys (in no particular order; unknown keys are skipped). */
  rowsByKeys(keys: readonly number[], dim: number): { key: number; id: string; vector: Float32Array }[] {
    if (keys.length === 0) return [];
    // One statement per batch size (SQLite caps bound parameters at 32766).
    const out: { key: number; id: string; vector: Float32Array }[] = [];
    for (let s = 0; s < keys.length; s += 500) {
      const part = keys.slice(s, s + 500);
      const rows = this.db.prepare(`SELECT key, person_id AS id, vector FROM embeddings WHERE key IN (${part.map(() => '?').join(',')})`).all(...part) as { key: number; id: string; vector: Buffer }[];
      for (const r of rows) out.push({ key: r.key, id: r.id, vector: fromBlob(r.vector, dim) });
    }
    return out;
  }

  /** Up to `limit` embeddings with keys above `after`, in key order (a page; no statement stays open). */
  embeddingsAfter(after: number, limit: number, dim: number, upTo = Number.MAX_SAFE_INTEGER): { key: number; id: string; vector: Float32Array }[] {
    const rows = this.db.prepare('SELECT key, person_id AS id, vector FROM embeddings WHERE key > ? AND key <= ? ORDER BY key LIMIT ?').all(after, upTo, limit) as { key: number; id: string; vector: Buffer }[];
    return rows.map((r) => ({ key: r.key, id: r.id, vector: fromBlob(r.vector, dim) }));
  }

  /** Streams every embedding in key order: (key, person id, vector). */
  *iterateEmbeddings(dim: number): Generator<{ key: number; id: string; vector: Float32Array }> {
    const it = this.db.prepare('SELECT key, person_id AS id, vector FROM embeddings ORDER BY key').iterate() as IterableIterator<{ key: number; id: string; vector: Buffer }>;
    for (const r of it) yield { key: r.key, id: r.id, vector: fromBlob(r.vector, dim) };
  }

  private countsCache: { key: string; value: { people: number; embeddings: number } } | null = null;
  /**
   * How many people and embeddings. count(*) reads a whole index (time
   * growing with the gallery) and identify asks on every call (the open-set threshold
   * depends on the gallery's size), so the answer is kept until this handle
   * writes or another connection commits.
   */
  counts(): { people: number; embeddings: number } {
    const key = `${this.dataVersion()}:${this.writes}`;
    if (this.countsCache?.key === key) return { ...this.countsCache.value };
    const value = this.countRows();
    this.countsCache = { key, value };
    return { ...value };
  }

  private countRows(): { people: number; embeddings: number } {
    const p = this.db.prepare('SELECT count(*) AS n FROM people').get() as { n: number };
    const e = this.db.prepare('SELECT count(*) AS n FROM embeddings').get() as { n: number };
    return { people: p.n, embeddings: e.n };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
