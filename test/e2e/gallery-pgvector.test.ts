// PgVectorGallery: the same SQL through one SqlClient adapter, run against
// PGlite (PostgreSQL in WASM with its bundled pgvector) and, when DATABASE_URL
// is set, against a real PostgreSQL server with pgvector. Exact search is
// checked against the in-memory FaceGallery; HNSW is checked to be used and to
// find the right people.
import { strict as assert } from 'assert';
import { Pool } from 'pg';
import { DuplicateIdError, FaceGallery, ModelMismatchError, PgVectorGallery, UnknownIdError, pgPoolClient, pgliteClient } from '../../lib';
import { PixelFaceModel } from '../../lib/testing/pixel-face-model';
import type { SqlClient } from '../../lib';
import { Peer, needs } from '../helpers/peers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { PGlite } = require('@electric-sql/pglite') as typeof import('@electric-sql/pglite');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { vector } = require('@electric-sql/pglite/vector') as { vector: unknown };

function vec(seed: number, dim = 128): Float32Array {
  const v = new Float32Array(dim);
  let n = 0;
  for (let i = 0; i < dim; i++) n += (v[i] = Math.sin(seed * 12.9898 + i * 78.233) * 43758.5453 % 1) ** 2;
  return v.map((x) => x / Math.sqrt(n));
}
function near(v: Float32Array, eps: number, seed: number): Float32Array {
  return v.map((x, i) => x + eps * Math.sin(seed + i));
}

interface Target {
  name: string;
  needs?: Peer;
  make(table: string): Promise<SqlClient>;
  done(): Promise<void>;
}

const targets: Target[] = [];
let lite: InstanceType<typeof PGlite> | null = null;
targets.push({
  name: 'PGlite (pgvector in WASM)',
  async make() {
    lite ??= new PGlite({ extensions: { vector: vector as never } });
    return pgliteClient(lite as never);
  },
  async done() {
    await lite?.close();
  },
});
let pool: Pool | null = null;
targets.push({
  name: 'PostgreSQL at DATABASE_URL',
  needs: 'postgres',
  async make() {
    pool ??= new Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
    return pgPoolClient(pool);
  },
  async done() {
    await pool?.end();
  },
});

for (const target of targets) {
  describe(`PgVectorGallery on ${target.name}`, function () {
    this.timeout(120000);
    const model = new PixelFaceModel();
    let t = 0;
    const table = () => `tf_test_${process.pid}_${t++}`;
    before(function () {
      if (target.needs) needs(this, target.needs);
    });
    after(() => target.done());

    it('enroll / identify / verify / remove / list / get, matching the in-memory gallery exactly', async () => {
      const sql = await target.make('');
      const g = await PgVectorGallery.open(sql, { model, table: table() });
      const mem = await FaceGallery.open(':memory:', { model });
      for (let p = 0; p < 40; p++) {
        const vs = [vec(p), near(vec(p), 0.05, p)].slice(0, 1 + (p % 2));
        await g.enrollEmbeddings(`p${p}`, vs, { metadata: { p } });
        await mem.enrollEmbeddings(`p${p}`, vs, { metadata: { p } });
      }
      assert.deepEqual(await g.counts(), { people: 40, embeddings: 60 });
      const queries = Array.from({ length: 8 }, (_, i) => near(vec(i * 5), 0.2, 100 + i));
      const a = await g.identifyEmbeddings(queries, { k: 5 });
      const b = await mem.identifyEmbeddings(queries, { k: 5 });
      for (let i = 0; i < queries.length; i++) {
        assert.deepEqual(a[i].candidates.map((c) => c.id), b[i].candidates.map((c) => c.id), `query ${i}`);
        a[i].candidates.forEach((c, j) => assert.ok(Math.abs(c.distance - b[i].candidates[j].distance) < 1e-5));
        assert.equal(a[i].id, b[i].id);
      }
      assert.equal(a[0].candidates[0].id, 'p0');
      const person = await g.get('p3');
      assert.equal(person!.embeddings, 2);
      assert.deepEqual(person!.metadata, { p: 3 });
      assert.equal((await g.list()).length, 40);
      const e = await g.embeddingsOf('p3');
      assert.deepEqual(Array.from(e![0]), Array.from(vec(3)), 'float32 round trip through pgvector text is exact');
      assert.equal((await g.verifyEmbedding(vec(3), 'p3')).distance, 0);
      await assert.rejects(g.verifyEmbedding(vec(3), 'nobody'), UnknownIdError);
      await assert.rejects(g.enrollEmbeddings('p3', vec(99)), DuplicateIdError);
      assert.equal((await g.get('p3'))!.embeddings, 2, 'nothing written by the failed enrolment');
      await g.enrollEmbeddings('p3', vec(99), { append: true });
      assert.equal((await g.get('p3'))!.embeddings, 3);
      await g.remove('p3');
      await assert.rejects(g.remove('p3'), UnknownIdError);
      assert.equal(await g.get('p3'), null);
      assert.deepEqual(await g.counts(), { people: 39, embeddings: 58 });
      // Export from pgvector, import into SQLite: the same people.
      const exp = await g.export();
      const mem2 = await FaceGallery.open(':memory:', { model });
      await mem2.import(exp);
      assert.deepEqual((await mem2.export()).people.map((p) => [p.id, p.embeddings.length]), exp.people.map((p) => [p.id, p.embeddings.length]));
      await mem.close();
      await mem2.close();
      await g.close();
    });

    it('records the model; a different model is a ModelMismatchError', async () => {
      const name = table();
      const g = await PgVectorGallery.open(await target.make(name), { model, table: name });
      await g.enrollEmbeddings('a', vec(1));
      await g.close();
      await assert.rejects(PgVectorGallery.open(await target.make(name), { model: new PixelFaceModel({ weightsHash: 'other' }), table: name }), ModelMismatchError);
      const again = await PgVectorGallery.open(await target.make(name), { model, table: name });
      assert.equal((await again.identifyEmbeddings([vec(1)]))[0].id, 'a');
      await again.close();
    });

    it('HNSW: the index is used and finds the enrolled people', async () => {
      const name = table();
      const g = await PgVectorGallery.open(await target.make(name), { model, table: name, search: 'hnsw', threshold: 0.3 });
      const people = 300;
      await g.import({
        format: 'torchface-gallery',
        version: 1,
        model: g.modelIdentity,
        people: Array.from({ length: people }, (_, p) => ({ id: `h${p}`, metadata: {}, embeddings: [Array.from(vec(p + 1000))] })),
      });
      const sql = await target.make(name);
      await sql.query('SET enable_seqscan = off');
      const plan = await g.explainSearch(vec(1000));
      assert.match(plan, new RegExp(`Index Scan using ${name}_embeddings_hnsw`), plan);
      let hits = 0;
      const queries = Array.from({ length: 50 }, (_, i) => near(vec(1000 + i * 6), 0.05, i));
      const res = await g.identifyEmbeddings(queries, { k: 3 });
      res.forEach((r, i) => (hits += r.candidates[0]?.id === `h${i * 6}` ? 1 : 0));
      assert.ok(hits >= 48, `HNSW recall@1 ${hits}/50`);
      await sql.query('RESET enable_seqscan');
      await g.close();
    });
  });
}
