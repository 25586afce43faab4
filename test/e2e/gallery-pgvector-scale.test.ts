// The scale-out case PgVectorGallery is for, on a real PostgreSQL server with
// pgvector (DATABASE_URL; CI sets one up): several Node processes sharing one
// gallery, concurrent enrolment of the same ids, and a connection killed in the
// middle of a transaction.
import { strict as assert } from 'assert';
import { ChildProcessWithoutNullStreams, spawn } from 'child_process';
import * as path from 'path';
import * as readline from 'readline';
import { Pool } from 'pg';
import { DatabaseError, PgVectorGallery, SqlClient, pgPoolClient } from '../../lib';
import { vectorFor } from '../helpers/pg-gallery-child';
import { needs } from '../helpers/peers';
import { DIST_HELPERS } from '../helpers/peers';

const CHILD = path.join(DIST_HELPERS, 'pg-gallery-child.js');

function child(table: string, ...args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [CHILD, table, ...args], { env: { ...process.env, OMP_NUM_THREADS: '1' } });
}
/** Resolves with the child's stdout lines once it exits with 0; rejects with its stderr otherwise. */
function finished(c: ChildProcessWithoutNullStreams): Promise<string[]> {
  const lines: string[] = [];
  let err = '';
  readline.createInterface({ input: c.stdout }).on('line', (l) => lines.push(l));
  c.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => c.on('close', (code) => (code === 0 ? resolve(lines) : reject(new Error(`child exited ${code}: ${err}`)))));
}

describe('PgVectorGallery scale-out on a real PostgreSQL server (DATABASE_URL)', function () {
  this.timeout(180_000);
  let pool: Pool;
  const tables: string[] = [];
  const table = () => {
    const t = `tf_scale_${process.pid}_${tables.length}`;
    tables.push(t);
    return t;
  };

  before(function () {
    needs(this, 'postgres');
    pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
  });
  after(async () => {
    if (!pool) return;
    for (const t of tables) await pool.query(`DROP TABLE IF EXISTS ${t}_embeddings, ${t}_people, ${t}_meta`);
    await pool.end();
  });

  it('two processes: one enrolls while the other identifies, and sees every enrolment as soon as it is committed', async () => {
    const t = table();
    const N = 60;
    const reader = child(t, 'identify');
    const readerDone = finished(reader);
    const answers = new Map<string, string>();
    const ready = new Promise<void>((resolve) =>
      readline.createInterface({ input: reader.stdout }).on('line', (l) => {
        if (l === 'ready') return resolve();
        const [id, got] = l.split(' ');
        answers.set(id, got);
      }),
    );
    await ready;
    const writer = child(t, 'enroll', '0', String(N));
    // Each id the writer prints has been committed: ask the other process at once.
    readline.createInterface({ input: writer.stdout }).on('line', (l) => reader.stdin.write(l.split(' ')[1] + '\n'));
    await finished(writer);
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => answers.size === N && (clearInterval(poll), resolve()), 20);
    });
    reader.stdin.end();
    await readerDone;
    for (let i = 0; i < N; i++) assert.equal(answers.get(`person-${i}`), `person-${i}`, `the reading process identified person-${i} right after its commit`);
    const g = await PgVectorGallery.open(pgPoolClient(pool), { table: t });
    assert.deepEqual(await g.counts(), { people: N, embeddings: N });
  });

  it('two processes enrolling the same ids at once: each id enrolled exactly once (DuplicateIdError for the other); with append, no embedding lost or doubled', async () => {
    const t = table();
    const N = 80;
    // Both start at the same moment: the schema is also created concurrently.
    const [a, b] = await Promise.all([finished(child(t, 'enroll', '0', String(N))), finished(child(t, 'enroll', '0', String(N)))]);
    const ok = new Map<string, number>();
    for (const line of [...a, ...b]) {
      const [status, id] = line.split(' ');
      assert.ok(status === 'ok' || status === 'dup', line);
      if (status === 'ok') ok.set(id, (ok.get(id) ?? 0) + 1);
    }
    assert.equal(a.length + b.length, 2 * N, 'every call answered');
    for (let i = 0; i < N; i++) assert.equal(ok.get(`person-${i}`), 1, `person-${i} enrolled by exactly one process`);
    const rows = await pool.query(`SELECT person_id, count(*)::int AS n FROM ${t}_embeddings GROUP BY person_id`);
    assert.equal(rows.rows.length, N);
    assert.ok(rows.rows.every((r) => r.n === 1), 'one embedding per person: no duplicated rows');

    await Promise.all([finished(child(t, 'enroll', '0', String(N), 'append')), finished(child(t, 'enroll', '0', String(N), 'append'))]);
    const after = await pool.query(`SELECT count(DISTINCT person_id)::int AS people, count(*)::int AS n FROM ${t}_embeddings`);
    assert.deepEqual(after.rows[0], { people: N, n: 3 * N }, 'both appends of every person kept');
  });

  it('a connection killed mid-transaction (pg_terminate_backend): a clear DatabaseError, nothing half-written, and the gallery answers again', async () => {
    const t = table();
    const killer = new Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
    const base = pgPoolClient(pool);
    // A SqlClient that kills its own transaction's server process after the second INSERT of embeddings.
    let inserts = 0;
    const sql: SqlClient = {
      query: base.query,
      close: base.close,
      transaction: (fn) =>
        base.transaction(async (tx) => {
          const [{ pid }] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          return fn({
            ...tx,
            async query(text, params) {
              const r = await tx.query(text, params);
              if (text.includes('_embeddings (person_id, embedding)') && ++inserts === 2) await killer.query('SELECT pg_terminate_backend($1)', [pid]);
              return r;
            },
          } as SqlClient);
        }),
    };
    try {
      const g = await PgVectorGallery.open(sql, { table: t });
      await g.enrollEmbeddings('before', vectorFor(1));
      // 600 embeddings are written in 3 INSERTs of 200: the connection dies after the 2nd.
      const many = Array.from({ length: 600 }, (_, i) => vectorFor(1000 + i));
      await assert.rejects(g.enrollEmbeddings('victim', many), (e: unknown) => {
        assert.ok(e instanceof DatabaseError, `a DatabaseError, got ${e}`);
        assert.match((e as Error).message, /database failed: .*(terminat|connection)/i);
        assert.match((e as Error).message, /nothing of this call was written/);
        return true;
      });
      assert.equal(inserts >= 2, true);
      // Consistent: the victim is absent entirely (no person row, no orphan embeddings).
      assert.equal(await g.get('victim'), null);
      assert.deepEqual((await pool.query(`SELECT count(*)::int AS n FROM ${t}_embeddings`)).rows[0], { n: 1 });
      // And the API answers again on fresh connections.
      await g.enrollEmbeddings('after', vectorFor(2));
      const [r] = await g.identifyEmbeddings([vectorFor(2)]);
      assert.equal(r.id, 'after');
      assert.deepEqual(await g.counts(), { people: 2, embeddings: 2 });
    } finally {
      await killer.end();
    }
  });

  it('an idle pooled connection killed by the server does not end the process; the next call reconnects', async () => {
    const t = table();
    const own = new Pool({ connectionString: process.env.DATABASE_URL, max: 2, application_name: `tf-idle-${process.pid}` });
    const g = await PgVectorGallery.open(own, { table: t });
    await g.enrollEmbeddings('a', vectorFor(3));
    const killed = await pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [`tf-idle-${process.pid}`]);
    assert.ok(killed.rows.length >= 1, 'the pool had an idle connection to kill');
    await new Promise((r) => setTimeout(r, 200));
    const [res] = await g.identifyEmbeddings([vectorFor(3)]);
    assert.equal(res.id, 'a');
    await own.end();
  });
});
