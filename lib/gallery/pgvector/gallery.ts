// PgVectorGallery: the same gallery, with embeddings in PostgreSQL + pgvector.
// Search runs in the database with pgvector's L2 operator `<->`: exactly (a
// GROUP BY over every row) or approximately through an HNSW index. All SQL goes
// through one tiny SqlClient interface, implemented for a pg.Pool (production)
// and for PGlite (tests: PostgreSQL compiled to WASM, with its bundled vector
// extension): the same statements run on both.
import type { Pool, PoolClient } from 'pg';
import { z } from 'zod';
import { TorchfaceError, invalid, parseOptions } from '../../core/errors';
import { Candidate, DuplicateIdError, GalleryBackend, GalleryBase, GalleryOptions, ModelIdentity, Person, PersonData, galleryOptions } from '../gallery';

/** The one database interface the pgvector gallery uses. */
export interface SqlClient {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Runs fn in BEGIN ... COMMIT (ROLLBACK when it throws), on one connection. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * The database behind a gallery failed (connection lost, server shut down,
 * statement error). The transaction it was in was rolled back: nothing of the
 * failed call was written. `cause` is the driver's error.
 */
export class DatabaseError extends TorchfaceError {
  override readonly code: string = 'ERR_DATABASE';
  constructor(
    message: string,
    readonly sqlState: string | undefined,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

function databaseError(e: unknown): unknown {
  if (e instanceof TorchfaceError) return e;
  const err = e as { message?: string; code?: unknown };
  const sqlState = typeof err?.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) ? err.code : undefined;
  return new DatabaseError(`the gallery's database failed: ${err?.message ?? String(e)} (nothing of this call was written)`, sqlState, { cause: e });
}

/** SqlClient over a node-postgres pool. `end` also closes the pool on close(). */
export function pgPoolClient(pool: Pool, options: { end?: boolean } = {}): SqlClient {
  // An idle connection that the server drops makes the pool emit 'error'; without
  // a listener that event would end the process. The pool discards that client and
  // the next query opens a new connection, so there is nothing more to do here.
  if (pool.listenerCount('error') === 0) pool.on('error', () => {});
  const over =
    (c: Pool | PoolClient): SqlClient['query'] =>
    async (text, params) => {
      try {
        return (await c.query(text, params as unknown[])).rows;
      } catch (e) {
        throw databaseError(e);
      }
    };
  return {
    query: over(pool),
    async transaction(fn) {
      let c: PoolClient;
      try {
        c = await pool.connect();
      } catch (e) {
        throw databaseError(e);
      }
      // A connection that broke inside the transaction must not go back to the pool.
      let broken: unknown;
      const onError = (e: unknown) => (broken = e);
      c.on('error', onError);
      try {
        const tx: SqlClient = { query: over(c), transaction: (f) => f(tx), close: async () => {} };
        await tx.query('BEGIN');
        const r = await fn(tx);
        await tx.query('COMMIT');
        return r;
      } catch (e) {
        await c.query('ROLLBACK').catch((rollbackError: unknown) => (broken ??= rollbackError));
        // A dropped connection is reported by the error that dropped it (e.g. "terminating
        // connection due to administrator command"), not by the next query's "not queryable".
        throw databaseError(broken instanceof Error && !(e instanceof TorchfaceError) ? broken : e);
      } finally {
        c.off('error', onError);
        c.release(broken instanceof Error ? broken : broken === undefined ? undefined : true);
      }
    },
    close: async () => {
      if (options.end) await pool.end();
    },
  };
}

/** The part of PGlite's API the adapter uses (structural, so that pglite stays a dev dependency). */
export interface PGliteLike {
  query<R>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
  transaction<T>(fn: (tx: { query<R>(text: string, params?: unknown[]): Promise<{ rows: R[] }> }) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** SqlClient over a PGlite instance (load it with `extensions: { vector }`). `close` also closes the database. */
export function pgliteClient(db: PGliteLike, options: { close?: boolean } = {}): SqlClient {
  return {
    query: async (text, params) => (await db.query(text, params)).rows as never,
    transaction: (fn) =>
      db.transaction(async (t) => {
        const tx: SqlClient = { query: async (text, params) => (await t.query(text, params)).rows as never, transaction: (f) => f(tx), close: async () => {} };
        return fn(tx);
      }),
    close: async () => {
      if (options.close) await db.close();
    },
  };
}

export function vectorLiteral(v: Float32Array): string {
  let s = '[';
  for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + v[i];
  return s + ']';
}
export function parseVector(text: string): Float32Array {
  const body = text.trim().replace(/^\[|\]$/g, '');
  return Float32Array.from(body.length ? body.split(',') : [], Number);
}

const pgOptions = galleryOptions.extend({
  /** Table name prefix (tables PREFIX_meta, PREFIX_people, PREFIX_embeddings). */
  table: z.string().regex(/^[a-z_][a-z0-9_]{0,40}$/, 'Expected a lower-case SQL identifier').default('torchface'),
  /** 'exact': every row, GROUP BY person (default). 'hnsw': approximate, through an HNSW index. */
  search: z.enum(['exact', 'hnsw']).default('exact'),
  /** hnsw.ef_search for HNSW queries (at least the number of rows fetched). */
  efSearch: z.number().int().min(1).max(1000).default(100),
});
export interface PgVectorGalleryOptions extends GalleryOptions {
  table?: string;
  search?: 'exact' | 'hnsw';
  efSearch?: number;
}

const toIso = (v: unknown): string => (v instanceof Date ? v.toISOString() : String(v));

class PgBackend implements GalleryBackend {
  dim: number | null = null;
  constructor(
    readonly sql: SqlClient,
    readonly t: string,
    readonly mode: 'exact' | 'hnsw',
    readonly efSearch: number,
  ) {}

  /**
   * Creates the tables. Services that start together may all do this at once, and
   * concurrent CREATE ... IF NOT EXISTS can still fail on PostgreSQL's catalogue,
   * so the schema changes run under one transaction-scoped advisory lock per table prefix.
   */
  async setup(): Promise<void> {
    await this.schemaChange(async (tx) => {
      await tx.query('CREATE EXTENSION IF NOT EXISTS vector');
      await tx.query(`CREATE TABLE IF NOT EXISTS ${this.t}_meta (key text PRIMARY KEY, value text NOT NULL)`);
      await tx.query(
        `CREATE TABLE IF NOT EXISTS ${this.t}_people (id text PRIMARY KEY, metadata jsonb NOT NULL DEFAULT '{}', created_at text NOT NULL, updated_at text NOT NULL)`,
      );
      const m = await this.readModel(tx);
      if (m) await this.createEmbeddings(tx, m.dim);
    });
  }

  private schemaChange(fn: (tx: SqlClient) => Promise<void>): Promise<void> {
    return this.sql.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`torchface schema ${this.t}`]);
      await fn(tx);
    });
  }

  /**
   * The embedding length, read again while unknown: another service sharing the
   * database may have recorded the model (and created the embeddings table)
   * after this one opened the gallery empty.
   */
  private async knownDim(): Promise<number | null> {
    if (this.dim === null) this.dim = (await this.readModel())?.dim ?? null;
    return this.dim;
  }

  private async createEmbeddings(tx: SqlClient, dim: number): Promise<void> {
    if (!Number.isInteger(dim) || dim <= 0 || dim > 16000) invalid('dim', 'an integer in 1..16000', dim);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS ${this.t}_embeddings (key bigserial PRIMARY KEY, person_id text NOT NULL REFERENCES ${this.t}_people(id) ON DELETE CASCADE, embedding vector(${dim}) NOT NULL)`,
    );
    await tx.query(`CREATE INDEX IF NOT EXISTS ${this.t}_embeddings_person ON ${this.t}_embeddings (person_id)`);
    if (this.mode === 'hnsw') await tx.query(`CREATE INDEX IF NOT EXISTS ${this.t}_embeddings_hnsw ON ${this.t}_embeddings USING hnsw (embedding vector_l2_ops)`);
    this.dim = dim;
  }

  async readModel(sql: SqlClient = this.sql): Promise<ModelIdentity | null> {
    const r = await sql.query<{ value: string }>(`SELECT value FROM ${this.t}_meta WHERE key = 'model'`);
    return r.length ? (JSON.parse(r[0].value) as ModelIdentity) : null;
  }
  /** Records the model (the first service to do so wins; the others then see its identity). */
  async writeModel(m: ModelIdentity): Promise<void> {
    await this.schemaChange(async (tx) => {
      await tx.query(`INSERT INTO ${this.t}_meta (key, value) VALUES ('model', $1) ON CONFLICT (key) DO NOTHING`, [JSON.stringify(m)]);
      const stored = await this.readModel(tx);
      await this.createEmbeddings(tx, stored!.dim);
    });
  }

  private async insert(tx: SqlClient, p: PersonData, metadata: Record<string, unknown> | undefined, append: boolean): Promise<void> {
    const now = new Date().toISOString();
    const ins = await tx.query(`INSERT INTO ${this.t}_people (id, metadata, created_at, updated_at) VALUES ($1, $2, $3, $3) ON CONFLICT (id) DO NOTHING RETURNING id`, [
      p.id,
      JSON.stringify(metadata ?? {}),
      p.createdAt ?? now,
    ]);
    if (ins.length === 0) {
      if (!append) throw new DuplicateIdError(p.id);
      if (metadata !== undefined) await tx.query(`UPDATE ${this.t}_people SET metadata = $2, updated_at = $3 WHERE id = $1`, [p.id, JSON.stringify(metadata), now]);
      else await tx.query(`UPDATE ${this.t}_people SET updated_at = $2 WHERE id = $1`, [p.id, now]);
    }
    for (let i = 0; i < p.embeddings.length; i += 200) {
      const part = p.embeddings.slice(i, i + 200);
      const values = part.map((_, j) => `($1, $${j + 2}::vector)`).join(', ');
      await tx.query(`INSERT INTO ${this.t}_embeddings (person_id, embedding) VALUES ${values}`, [p.id, ...part.map(vectorLiteral)]);
    }
  }

  async enroll(id: string, metadata: Record<string, unknown> | undefined, vectors: Float32Array[], append: boolean): Promise<void> {
    await this.sql.transaction((tx) => this.insert(tx, { id, metadata: metadata ?? {}, embeddings: vectors }, metadata, append));
  }

  async importPeople(people: PersonData[], replace: boolean, append: boolean): Promise<void> {
    await this.sql.transaction(async (tx) => {
      if (replace) await tx.query(`DELETE FROM ${this.t}_people`);
      for (const p of people) await this.insert(tx, p, p.metadata, append);
    });
  }

  async remove(id: string): Promise<boolean> {
    const r = await this.sql.query(`DELETE FROM ${this.t}_people WHERE id = $1 RETURNING id`, [id]);
    return r.length > 0;
  }

  private personQuery(where: string): string {
    const count = this.dim ? `(SELECT count(*) FROM ${this.t}_embeddings e WHERE e.person_id = p.id)` : '0';
    return `SELECT p.id, p.metadata, p.created_at, p.updated_at, ${count}::int AS embeddings FROM ${this.t}_people p ${where} ORDER BY p.id`;
  }
  private toPerson(r: Record<string, unknown>): Person {
    const md = typeof r.metadata === 'string' ? JSON.parse(r.metadata) : r.metadata;
    return { id: String(r.id), metadata: md as Record<string, unknown>, embeddings: Number(r.embeddings), createdAt: toIso(r.created_at), updatedAt: toIso(r.updated_at) };
  }
  async list(): Promise<Person[]> {
    await this.knownDim();
    return (await this.sql.query(this.personQuery(''))).map((r) => this.toPerson(r));
  }
  async get(id: string): Promise<Person | null> {
    await this.knownDim();
    const r = await this.sql.query(this.personQuery('WHERE p.id = $1'), [id]);
    return r.length ? this.toPerson(r[0]) : null;
  }
  async embeddingsOf(id: string): Promise<Float32Array[] | null> {
    if (!(await this.get(id))) return null;
    if (!(await this.knownDim())) return [];
    const r = await this.sql.query<{ e: string }>(`SELECT embedding::text AS e FROM ${this.t}_embeddings WHERE person_id = $1 ORDER BY key`, [id]);
    return r.map((x) => parseVector(x.e));
  }
  async all(): Promise<PersonData[]> {
    const people = new Map<string, PersonData>();
    for (const p of await this.list()) people.set(p.id, { id: p.id, metadata: p.metadata, createdAt: p.createdAt, embeddings: [] });
    if (await this.knownDim()) {
      const rows = await this.sql.query<{ id: string; e: string }>(`SELECT person_id AS id, embedding::text AS e FROM ${this.t}_embeddings ORDER BY key`);
      for (const r of rows) people.get(r.id)?.embeddings.push(parseVector(r.e));
    }
    return [...people.values()];
  }

  async search(queries: Float32Array[], k: number): Promise<Candidate[][]> {
    if (!(await this.knownDim())) return queries.map(() => []);
    const out: Candidate[][] = [];
    for (const q of queries) {
      const v = vectorLiteral(q);
      if (this.mode === 'exact') {
        const rows = await this.sql.query<{ id: string; distance: number }>(
          `SELECT person_id AS id, min(embedding <-> $1::vector) AS distance FROM ${this.t}_embeddings GROUP BY person_id ORDER BY distance, person_id LIMIT $2`,
          [v, k],
        );
        out.push(rows.map((r) => ({ id: r.id, distance: Number(r.distance) })));
      } else {
        // Nearest rows through the HNSW index, then the best row per person.
        const limit = Math.min(1000, k * 4 + 16);
        const rows = await this.sql.transaction(async (tx) => {
          await tx.query(`SET LOCAL hnsw.ef_search = ${Math.max(this.efSearch, limit)}`);
          return tx.query<{ id: string; distance: number }>(
            `SELECT person_id AS id, embedding <-> $1::vector AS distance FROM ${this.t}_embeddings ORDER BY embedding <-> $1::vector LIMIT $2`,
            [v, limit],
          );
        });
        const best = new Map<string, number>();
        for (const r of rows) if (!best.has(r.id)) best.set(r.id, Number(r.distance));
        out.push([...best].slice(0, k).map(([id, distance]) => ({ id, distance })));
      }
    }
    return out;
  }

  async counts(): Promise<{ people: number; embeddings: number }> {
    const p = await this.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.t}_people`);
    const e = (await this.knownDim()) ? await this.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.t}_embeddings`) : [{ n: 0 }];
    return { people: Number(p[0].n), embeddings: Number(e[0].n) };
  }
  async close(): Promise<void> {
    await this.sql.close();
  }
}

/** node-postgres, loaded on first use (a program without PostgreSQL never loads it). */
// eslint-disable-next-line @typescript-eslint/no-var-requires
const pg = (): typeof import('pg') => require('pg') as typeof import('pg');
/** A pg.Pool, without loading pg when it is not one (pg is loaded if a caller already made one). */
function isPool(v: unknown): v is Pool {
  return !!v && typeof v === 'object' && require.cache[require.resolve('pg')] !== undefined && v instanceof pg().Pool;
}

function isSqlClient(v: unknown): v is SqlClient {
  return !!v && typeof (v as SqlClient).query === 'function' && typeof (v as SqlClient).transaction === 'function' && typeof (v as SqlClient).close === 'function' && !('exec' in (v as object));
}

/**
 * A gallery in PostgreSQL with pgvector. `connection` is a postgres:// URL
 * (a pg.Pool is made, and closed with the gallery), a pg.Pool, or a SqlClient
 * (e.g. pgliteClient(new PGlite({ extensions: { vector } }))).
 */
export class PgVectorGallery extends GalleryBase {
  private constructor(
    private readonly pg: PgBackend,
    readonly search: 'exact' | 'hnsw',
  ) {
    super(pg);
  }

  static async open(connection: string | Pool | SqlClient, options: PgVectorGalleryOptions = {}): Promise<PgVectorGallery> {
    const o = parseOptions(pgOptions, options);
    let sql: SqlClient;
    if (typeof connection === 'string') {
      if (!/^postgres(ql)?:\/\//.test(connection)) invalid('connection', 'a postgres:// URL, a pg.Pool or a SqlClient', connection);
      sql = pgPoolClient(new (pg().Pool)({ connectionString: connection, max: 4 }), { end: true });
    } else if (isPool(connection)) sql = pgPoolClient(connection);
    else if (isSqlClient(connection)) sql = connection;
    else if (connection && typeof connection === 'object' && 'exec' in connection && 'transaction' in connection) sql = pgliteClient(connection as unknown as PGliteLike);
    else return invalid('connection', 'a postgres:// URL, a pg.Pool or a SqlClient (pgliteClient(db) for PGlite)', connection);
    const backend = new PgBackend(sql, o.table, o.search, o.efSearch);
    const g = new PgVectorGallery(backend, o.search);
    try {
      await backend.setup();
      await g.init(options);
    } catch (e) {
      await sql.close().catch(() => {});
      throw e;
    }
    return g;
  }

  /** The query plan of a search (to check that HNSW is used). */
  async explainSearch(query: Float32Array): Promise<string> {
    const rows = await this.pg.sql.query<Record<string, string>>(
      `EXPLAIN SELECT person_id FROM ${this.pg.t}_embeddings ORDER BY embedding <-> $1::vector LIMIT 10`,
      [vectorLiteral(query)],
    );
    return rows.map((r) => Object.values(r)[0]).join('\n');
  }
}
