// The approximate index (usearch's HNSW in a worker thread) and FaceGallery
// with search: 'hnsw': exact distances (the candidates are re-ranked against
// the stored rows), enrolled people found, high recall; the graph is persisted beside
// the file, loaded when current and rebuilt when missing, stale (another
// handle wrote the file) or unreadable; the event loop stays free while it builds.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AnnIndex, ArgumentError, FaceGallery, euclidean } from '../../lib';
import { PixelFaceModel } from '../../lib/testing/pixel-face-model';
import { startServer } from '../helpers/load';
import { rng } from '../helpers/util';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-hnsw-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Clustered rows (as face embeddings are: people around centres), n x dim. */
function clustered(r: () => number, n: number, dim: number, spread = 0.3): Float32Array {
  const out = new Float32Array(n * dim);
  const centres = Array.from({ length: 50 }, () => Float32Array.from({ length: dim }, () => r() * 2 - 1));
  for (let i = 0; i < n; i++) {
    const c = centres[i % centres.length];
    for (let j = 0; j < dim; j++) out[i * dim + j] = c[j] + spread * (r() * 2 - 1);
  }
  return out;
}

function bruteForce(rows: Float32Array, keys: number[], dim: number, q: Float32Array, k: number): number[] {
  const d = keys.map((key, i) => ({ key, d: euclidean(rows.subarray(i * dim, (i + 1) * dim), q) }));
  return d.sort((a, b) => a.d - b.d).slice(0, k).map((x) => x.key);
}

describe('AnnIndex (usearch HNSW in a worker thread)', () => {
  it('adds small batches past the first 10,000 rows (added on one thread) on more threads', async () => {
    // usearch makes one insertion context per thread when it grows: the first 10,000 rows went in
    // on one thread, so a later add of a few rows spread over two failed ("Reserve capacity ahead
    // of insertions!") until the index grew again; enrolling 30,000 people of 1-3 photos hit it.
    const dim = 8;
    const ann = AnnIndex.create(dim, { connectivity: 8, expansionAdd: 16, threads: 2 });
    try {
      const random = rng(7);
      const rows = (n: number) => Float32Array.from({ length: n * dim }, () => random() - 0.5);
      await ann.add(Array.from({ length: 10000 }, (_, i) => i), rows(10000));
      for (let i = 0; i < 20; i++) await ann.add([10000 + 3 * i, 10001 + 3 * i, 10002 + 3 * i], rows(3));
      assert.equal(ann.size, 10060);
      await ann.add(Array.from({ length: 7000 }, (_, i) => 20000 + i), rows(7000)); // grows: contexts for two threads
      await ann.add([30000, 30001, 30002], rows(3));
      assert.equal(ann.size, 17063);
    } finally {
      await ann.close();
    }
  });

  it('finds the exact nearest rows at this size, forgets removed rows, and saves / loads the same graph', async () => {
    const r = rng(7);
    const dim = 16;
    const n = 4000;
    const rows = clustered(r, n, dim);
    const keys = Array.from({ length: n }, (_, i) => 1000 + i);
    const ann = AnnIndex.create(dim, { connectivity: 16, expansionSearch: 256 });
    try {
      await ann.add(keys, rows);
      assert.equal(ann.size, n);
      const queries = clustered(r, 20, dim);
      const found = await ann.search(queries, 10);
      let hits = 0;
      found.forEach((c, q) => {
        const want = new Set(bruteForce(rows, keys, dim, queries.subarray(q * dim, (q + 1) * dim), 10));
        for (const k of c.keys) if (want.has(k)) hits++;
        // Squared distances, nearest first.
        for (let i = 1; i < c.distances.length; i++) assert.ok(c.distances[i] >= c.distances[i - 1]);
      });
      assert.ok(hits / 200 >= 0.98, `recall@10 ${hits / 200}`);

      const gone = Array.from(found[0].keys.slice(0, 5));
      await ann.remove(gone);
      assert.equal(ann.size, n - 5);
      const again = await ann.search(queries.subarray(0, dim), 10);
      for (const k of gone) assert.ok(!again[0].keys.includes(k), `removed key ${k} found`);

      const file = path.join(tmp, 'ann.usearch');
      await ann.save(file);
      const loaded = AnnIndex.create(dim, { connectivity: 16, expansionSearch: 256 });
      try {
        await loaded.load(file);
        assert.equal(loaded.size, n - 5);
        const same = await loaded.search(queries, 10);
        assert.deepEqual(Array.from(same[3].keys), Array.from((await ann.search(queries.subarray(3 * dim, 4 * dim), 10))[0].keys));
      } finally {
        await loaded.close();
      }
    } finally {
      await ann.close();
    }
    await assert.rejects(ann.search(new Float32Array(dim), 1), /closed/);
  });

  it('keeps the event loop free while it builds', async () => {
    const dim = 64;
    const n = 40000;
    const rows = clustered(rng(3), n, dim);
    const ann = AnnIndex.create(dim, { connectivity: 16, expansionAdd: 64 });
    let last = Date.now();
    let worst = 0;
    const timer = setInterval(() => {
      const now = Date.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 5);
    const t0 = Date.now();
    try {
      await ann.add(Array.from({ length: n }, (_, i) => i), rows);
    } finally {
      clearInterval(timer);
      await ann.close();
    }
    const took = Date.now() - t0;
    // The build takes seconds; the loop's longest gap is the copies of one
    // 65,536-row chunk at most, not the build.
    assert.ok(took > 4 * worst, `build ${took} ms, longest event-loop gap ${worst} ms`);
  });

  it('closes cleanly right after it is created, and after queued work', async () => {
    // Terminating the worker while usearch was still being set up aborted the process (1 run in 6 of this file).
    for (let i = 0; i < 20; i++) await AnnIndex.create(16).close();
    const ann = AnnIndex.create(4);
    const added = ann.add([1, 2], new Float32Array(8));
    await ann.close(); // waits for the add queued before it
    await added;
    await assert.rejects(ann.add([3], new Float32Array(4)), /closed/);
  });

  it('rejects bad arguments with typed errors', async () => {
    assert.throws(() => AnnIndex.create(16, { connectivity: 2 }), ArgumentError);
    assert.throws(() => AnnIndex.create(16, { quantization: 'i4' as never }), ArgumentError);
    assert.throws(() => AnnIndex.create(16, { bogus: 1 } as never), ArgumentError);
    assert.throws(() => AnnIndex.create(0), /dim/);
    const ann = AnnIndex.create(4);
    try {
      await assert.rejects(ann.add([1, 2], new Float32Array(4)), /2 keys need 8 values/);
      await assert.rejects(ann.search(new Float32Array(3), 1), /multiple of 4/);
      assert.deepEqual(Array.from((await ann.search(new Float32Array(4), 2))[0].keys), [-1, -1]);
      await assert.rejects(ann.load(path.join(tmp, 'missing.usearch')), /approximate index/);
    } finally {
      await ann.close();
    }
  });
});

describe("FaceGallery with search: 'hnsw'", () => {
  const model = new PixelFaceModel();
  const dim = model.dim;

  /**
   * 300 people with 1-3 embeddings each (each person's photos around their own
   * point, as faces are), and 30 queries: 15 other photos of enrolled people,
   * 15 strangers.
   */
  function people() {
    const r = rng(11);
    const point = () => Float32Array.from({ length: dim }, () => r() * 2 - 1);
    const near = (c: Float32Array, spread: number) => c.map((x) => x + spread * (r() * 2 - 1));
    const list = Array.from({ length: 300 }, (_, p) => {
      const c = point();
      return { id: `person-${p}`, centre: c, vs: Array.from({ length: 1 + (p % 3) }, () => near(c, 0.3)) };
    });
    const others = list.filter((_, i) => i % 19 === 3).slice(0, 15).map((p) => near(p.centre, 0.3));
    const strangers = Array.from({ length: 15 }, point);
    return { list: list.map(({ id, vs }) => ({ id, vs })), queries: [...others, ...strangers] };
  }

  /**
   * The graph proposes, exact distances decide: every answer's distance is the
   * person's exact distance; other photos of enrolled people find them first;
   * over all queries, recall@5 of people against exact search is at least 0.95
   * (a graph built on two threads differs from run to run, and a stranger far
   * from every cluster is where HNSW misses, which is why it is not asked to be exact).
   */
  async function checkAnswers(g: FaceGallery, people: { id: string; vs: Float32Array[] }[], queries: Float32Array[]) {
    const res = await g.identifyEmbeddings(queries, { k: 5, threshold: 100 });
    let hits = 0;
    res.forEach((x, qi) => {
      const exact = people.map((p) => ({ id: p.id, d: Math.min(...p.vs.map((v) => euclidean(v, queries[qi]))) })).sort((a, b) => a.d - b.d);
      const dist = new Map(exact.map((e) => [e.id, e.d]));
      for (const c of x.candidates) assert.ok(Math.abs(c.distance - dist.get(c.id)!) < 1e-4, `${c.id}: ${c.distance} vs exact ${dist.get(c.id)}`);
      if (qi < 15) assert.equal(x.candidates[0].id, exact[0].id, `query ${qi}`);
      const want = new Set(exact.slice(0, 5).map((e) => e.id));
      hits += x.candidates.filter((c) => want.has(c.id)).length;
    });
    assert.ok(hits / (5 * queries.length) >= 0.95, `recall@5 ${hits / (5 * queries.length)}`);
  }

  it('answers with exact distances, finds enrolled people first; persists the graph, loads it when current, rebuilds it when missing, stale or unreadable', async () => {
    const { list, queries } = people();
    const file = path.join(tmp, 'hnsw.db');
    const g = await FaceGallery.open(file, { model, search: 'hnsw' });
    for (const p of list) await g.enrollEmbeddings(p.id, p.vs);
    await g.remove('person-7');
    let live = list.filter((p) => p.id !== 'person-7');
    await checkAnswers(g, live, queries);
    assert.equal(g.index, null);
    assert.equal(g.approximateIndex!.size, (await g.counts()).embeddings);
    assert.equal(g.indexRebuilds, 1); // built once, from the empty file, when the model was first stored
    assert.deepEqual(await g.embeddingsOf('person-8'), list[8].vs);
    await g.close();
    assert.ok(fs.existsSync(`${file}.hnsw`) && fs.existsSync(`${file}.hnsw.json`));

    // Current: loaded, not rebuilt.
    const loaded = await FaceGallery.open(file, { model, search: 'hnsw' });
    assert.equal(loaded.indexRebuilds, 0);
    await checkAnswers(loaded, live, queries);

    // Another handle (exact search, as `torchface remove` would be) writes the file: the graph
    // catches up (the file records the removed keys; added rows have larger keys), and the counts
    // this handle keeps are refreshed.
    const before = await loaded.counts();
    const other = await FaceGallery.open(file, { model });
    await other.remove('person-0');
    await other.enrollEmbeddings('newcomer', [queries[20], queries[21]]);
    await other.close();
    const after = await loaded.identifyEmbeddings([queries[20], list[0].vs[0]], { k: 5, threshold: 100 });
    assert.deepEqual([after[0].candidates[0].id, after[0].candidates[0].distance], ['newcomer', 0]);
    assert.ok(!after[1].candidates.some((c) => c.id === 'person-0'));
    assert.deepEqual(await loaded.counts(), { people: before.people, embeddings: before.embeddings + 1 });
    assert.equal((await loaded.counts()).embeddings, loaded.approximateIndex!.size);
    assert.deepEqual([loaded.indexRebuilds, loaded.indexCatchUps], [0, 1]);
    await loaded.close();

    // Stale on disk (written while no hnsw handle was open): caught up on open.
    const writer = await FaceGallery.open(file, { model });
    await writer.remove('newcomer');
    await writer.close();
    const reopened = await FaceGallery.open(file, { model, search: 'hnsw' });
    assert.deepEqual([reopened.indexRebuilds, reopened.indexCatchUps], [0, 1]);
    assert.equal(reopened.approximateIndex!.size, (await reopened.counts()).embeddings);
    live = live.filter((p) => p.id !== 'person-0');
    await checkAnswers(reopened, live, queries);
    await reopened.close();

    // The saved graph's sidecar rewound to counter 1 (a copy saved long ago, or another
    // process's): opened, it is caught up or rebuilt as `expected` says, and answers right.
    const reopenBehind = async (removed: string, expected: [rebuilds: number, catchUps: number]) => {
      const side = JSON.parse(fs.readFileSync(`${file}.hnsw.json`, 'utf8')) as { generation: number };
      fs.writeFileSync(`${file}.hnsw.json`, JSON.stringify({ ...side, generation: 1 }));
      const h = await FaceGallery.open(file, { model, search: 'hnsw' });
      assert.deepEqual([h.indexRebuilds, h.indexCatchUps], expected);
      live = live.filter((p) => p.id !== removed);
      await checkAnswers(h, live, queries);
      await h.close();
    };

    // Removals stay recorded after saves (hnsw.keepRemovals, default 1,000,000): a graph far
    // behind them catches up instead of being rebuilt.
    const w2 = await FaceGallery.open(file, { model });
    await w2.remove('person-1');
    await w2.close();
    await reopenBehind('person-1', [0, 1]);

    // keepRemovals: 0 forgets them at each save: a graph older than what the file records is
    // rebuilt, not caught up.
    const forgetful = await FaceGallery.open(file, { model, search: 'hnsw', hnsw: { keepRemovals: 0 } });
    await forgetful.remove('person-2');
    await forgetful.close();
    await reopenBehind('person-2', [1, 0]);

    // Another gallery's graph copied beside a file: rebuilt, not trusted.
    const twin = path.join(tmp, 'twin.db');
    const t = await FaceGallery.open(twin, { model });
    await t.enrollEmbeddings('someone', [queries[0]]);
    await t.close();
    fs.copyFileSync(`${file}.hnsw`, `${twin}.hnsw`);
    fs.copyFileSync(`${file}.hnsw.json`, `${twin}.hnsw.json`);
    const tw = await FaceGallery.open(twin, { model, search: 'hnsw' });
    assert.deepEqual([tw.indexRebuilds, tw.approximateIndex!.size], [1, 1]);
    await tw.close();

    // Missing, unreadable, or built with other parameters: rebuilt.
    fs.rmSync(`${file}.hnsw`);
    let h = await FaceGallery.open(file, { model, search: 'hnsw' });
    assert.equal(h.indexRebuilds, 1);
    await h.close();
    fs.writeFileSync(`${file}.hnsw`, 'not a graph');
    h = await FaceGallery.open(file, { model, search: 'hnsw' });
    assert.equal(h.indexRebuilds, 1);
    await checkAnswers(h, live, queries);
    await h.close();
    h = await FaceGallery.open(file, { model, search: 'hnsw', hnsw: { connectivity: 8 } });
    assert.equal(h.indexRebuilds, 1);
    await h.close();
  });

  it('bad options are ArgumentErrors; the file is left closed', async () => {
    const file = path.join(tmp, 'bad-options.db');
    await assert.rejects(FaceGallery.open(file, { model, search: 'ivf' as never }), ArgumentError);
    await assert.rejects(FaceGallery.open(file, { model, hnsw: { connectivity: 16 } }), ArgumentError);
    await assert.rejects(FaceGallery.open(file, { model, search: 'hnsw', hnsw: { connectivity: 1 } }), ArgumentError);
    await assert.rejects(FaceGallery.open(file, { model, search: 'hnsw', hnsw: { keepRemovals: -1 } }), /keepRemovals/);
    await assert.rejects(FaceGallery.open(file, { model, search: 'hnsw', hnsw: { keepRemoval: 5 } as never }), ArgumentError);
    const g = await FaceGallery.open(file, { model, search: 'hnsw' });
    await g.close();
  });

  it('torchface serve --search hnsw serves from the graph and leaves it saved beside the file', async function () {
    const file = path.join(tmp, 'served.db');
    const g = await FaceGallery.open(file, { model });
    const { list } = people();
    for (const p of list.slice(0, 50)) await g.enrollEmbeddings(p.id, p.vs);
    await g.close();
    const serve = (search: string) => startServer(['--gallery', file, '--port', '0', '--model', 'pixels', '--search', search], { ...process.env, TORCHFACE_TEST_MODEL: 'pixels' });
    const { child, url } = await serve('hnsw');
    try {
      const listed = (await (await fetch(`${url}/people`)).json()) as { people: unknown[] };
      assert.equal(listed.people.length, 50);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    assert.ok(fs.existsSync(`${file}.hnsw`) && fs.existsSync(`${file}.hnsw.json`));
    const h = await FaceGallery.open(file, { model, search: 'hnsw' });
    assert.equal(h.indexRebuilds, 0);
    assert.equal((await h.identifyEmbeddings([list[3].vs[0]]))[0].id, list[3].id);
    await h.close();
    // A wrong --search value is the gallery's ArgumentError, and the command fails.
    await assert.rejects(serve('ivf'), /options\.search/);
  });
});
