// FaceGallery (SQLite + in-memory index): exact search against a brute-force
// reference, enroll / identify / verify / remove / list / get, duplicate and
// unknown ids, bad images written nowhere, model mismatch, export / import,
// and durability when the process is SIGKILLed in the middle of enrolments.
import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ArgumentError, DuplicateIdError, EmbeddingIndex, FaceGallery, FileFormatError, ImageError, ModelMismatchError, NoFaceError, UnknownIdError, euclidean, memory } from '../../lib';
import { PixelFaceModel } from '../../lib/testing/pixel-face-model';
import type { FaceModelLike } from '../../lib';

import { rng } from '../helpers/util';
import { DIST_HELPERS } from '../helpers/peers';
function randomVec(r: () => number, dim: number): Float32Array {
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) v[i] = r() * 2 - 1;
  return v;
}

/** A grey image whose left/right halves differ by `shade` (distinct embeddings per shade). */
function face(shade: number, w = 40, h = 48): { data: Uint8Array; width: number; height: number; channels: number } {
  const data = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = (x * 7 + y * shade * 13 + shade * 31) % 256;
  return { data, width: w, height: h, channels: 1 };
}
const blank = { data: new Uint8Array(40 * 48).fill(128), width: 40, height: 48, channels: 1 };

/** An embedder that returns a fixed vector per input string (for exact control). */
class TableEmbedder implements FaceModelLike {
  readonly name = 'table';
  readonly weightsHash = 'h1';
  readonly threshold = 0.5;
  constructor(
    readonly dim: number,
    readonly table: Map<string, Float32Array>,
  ) {}
  async embedBatch(inputs: unknown[]): Promise<Float32Array[]> {
    return inputs.map((i) => {
      const v = this.table.get(String(i));
      if (!v) throw new NoFaceError(`no face in ${String(i)}`);
      return v;
    });
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-gallery-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('EmbeddingIndex (exact search)', () => {
  it('matches a brute-force scan, per person (min over their embeddings), across blocks and after removals', async () => {
    const r = rng(1);
    const dim = 16;
    const idx = new EmbeddingIndex(dim);
    const rows: { id: string; v: Float32Array }[] = [];
    for (let p = 0; p < 300; p++) {
      const n = 1 + (p % 4);
      const vs = Array.from({ length: n }, () => randomVec(r, dim));
      idx.add(`p${p}`, vs, vs.map((_, i) => p * 10 + i));
      for (const v of vs) rows.push({ id: `p${p}`, v });
    }
    for (let p = 0; p < 300; p += 7) {
      assert.equal(idx.remove(`p${p}`), 1 + (p % 4));
    }
    const live = rows.filter((x) => Number(x.id.slice(1)) % 7 !== 0);
    assert.equal(idx.size, live.length);
    // Rows moved into the holes keep their person's order (the per-person row lists).
    for (const id of ['p1', 'p2', 'p3', 'p150', 'p298', 'p299']) {
      const mine = live.filter((x) => x.id === id).map((x) => Array.from(x.v));
      assert.equal(idx.countOf(id), mine.length, id);
      assert.deepEqual(idx.embeddingsOf(id)!.map((v) => Array.from(v)), mine, id);
    }
    assert.equal(idx.embeddingsOf('p7'), null);
    const queries = Array.from({ length: 9 }, () => randomVec(r, dim));
    const got = await idx.search(queries, 10);
    const single = await Promise.all(queries.map((q) => idx.search([q], 10)));
    queries.forEach((q, i) => {
      const best = new Map<string, number>();
      for (const { id, v } of live) best.set(id, Math.min(best.get(id) ?? Infinity, euclidean(q, v)));
      const want = [...best].sort((a, b) => a[1] - b[1]).slice(0, 10);
      assert.deepEqual(
        got[i].map((c) => c.id),
        want.map((w) => w[0]),
        `query ${i}`,
      );
      got[i].forEach((c, j) => assert.ok(Math.abs(c.distance - want[j][1]) < 1e-5));
      assert.deepEqual(single[i][0], got[i], `query ${i} alone`);
    });
    // A stored vector queried again is at distance exactly 0 (recomputed, not from the matrix form).
    assert.equal((await idx.search([live[3].v], 1))[0][0].distance, 0);
    idx.dispose();
  });

  it("bfloat16 storage: half the bytes, the same people as float32 (recall@10 on 50 queries), distances within bfloat16's rounding", async () => {
    const dim = 128;
    const r = rng(11);
    const f32 = new EmbeddingIndex(dim);
    const b16 = new EmbeddingIndex(dim, 'cpu', 'bfloat16');
    const unit = () => {
      const v = randomVec(r, dim);
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    };
    const people = Array.from({ length: 2000 }, (_, p) => ({ id: `p${p}`, vs: Array.from({ length: 1 + (p % 3) }, unit) }));
    for (const { id, vs } of people) {
      f32.add(id, vs, vs.map((_, i) => i));
      b16.add(id, vs, vs.map((_, i) => i));
    }
    // The rows in half the bytes; everything else (norms, row and person arrays, ids) the same.
    const saved = f32.bytes - b16.bytes;
    assert.equal(saved % (dim * 2), 0);
    assert.ok(saved >= f32.size * dim * 2 && b16.bytes < 0.6 * f32.bytes, `${b16.bytes} vs ${f32.bytes}`);
    // Queries near enrolled people (noisy copies) and far from all (random).
    const queries = Array.from({ length: 50 }, (_, i) => (i % 2 ? unit() : people[i * 37].vs[0].map((x, j) => x + 0.02 * Math.sin(i + j))));
    const [a, b] = [await f32.search(queries, 10), await b16.search(queries, 10)];
    let found = 0;
    queries.forEach((_, i) => {
      const want = new Set(a[i].map((c) => c.id));
      found += b[i].filter((c) => want.has(c.id)).length;
      // A person missed is a near-tie: within bfloat16's rounding of the 10th distance.
      const tenth = a[i][9].distance;
      for (const c of a[i]) if (!b[i].some((x) => x.id === c.id)) assert.ok(tenth - c.distance < 1e-2, `query ${i}: ${c.id} at ${c.distance} missed, 10th at ${tenth}`);
      // Exact distances to the bfloat16-rounded rows: 8 bits of mantissa.
      b[i].forEach((c) => {
        const ref = a[i].find((x) => x.id === c.id);
        if (ref) assert.ok(Math.abs(c.distance - ref.distance) < 1e-2, `${c.distance} vs ${ref.distance}`);
      });
      if (i % 2 === 0) assert.equal(b[i][0].id, a[i][0].id, `query ${i}: the nearest person`);
    });
    // Random queries are all about equally far from 2,000 random people: ties decide some of their ranks.
    assert.ok(found / (queries.length * 10) >= 0.97, `recall@10 ${found / (queries.length * 10)}`);
    const back = b16.embeddingsOf('p5')!;
    assert.ok(back.every((v, i) => v.every((x, j) => Math.abs(x - people[5].vs[i][j]) <= Math.abs(people[5].vs[i][j]) / 128 + 1e-30)));
    f32.dispose();
    b16.dispose();
  });

  it('finds people beyond the first rows when one person owns many near rows', async () => {
    const dim = 4;
    const idx = new EmbeddingIndex(dim);
    const near = Array.from({ length: 50 }, (_, i) => Float32Array.from([1 + i * 1e-3, 0, 0, 0]));
    idx.add('crowd', near, near.map((_, i) => i));
    idx.add('other', [Float32Array.from([5, 0, 0, 0])], [100]);
    const [res] = await idx.search([Float32Array.from([1, 0, 0, 0])], 2);
    assert.deepEqual(
      res.map((c) => c.id),
      ['crowd', 'other'],
    );
    assert.ok(Math.abs(res[1].distance - 4) < 1e-6);
    idx.dispose();
  });

  it('grows past a search block (chunks) and keeps rows', async () => {
    const dim = 8;
    const idx = new EmbeddingIndex(dim);
    const n = 300_000; // > SEARCH_BLOCK: two blocks
    const r = rng(7);
    const flat = new Float32Array(n * dim);
    for (let i = 0; i < flat.length; i++) flat[i] = r() * 2 - 1;
    const ids = Array.from({ length: n }, (_, i) => `r${i}`);
    idx.addRows(ids.slice(0, 1000), flat.subarray(0, 1000 * dim), ids.slice(0, 1000).map((_, i) => i));
    idx.addRows(ids.slice(1000), flat.subarray(1000 * dim), ids.slice(1000).map((_, i) => i + 1000));
    const target = 299_999;
    const q = flat.slice(target * dim, (target + 1) * dim);
    const [res] = await idx.search([q], 1);
    assert.equal(res[0].id, `r${target}`);
    assert.equal(res[0].distance, 0);
    const many = await idx.search([q, flat.slice(5 * dim, 6 * dim)], 1);
    assert.deepEqual(
      many.map((r) => r[0].id),
      [`r${target}`, 'r5'],
    );
    idx.dispose();
  });

  it('searches off the event loop, and enrolments or removals landing during a search give the answer for one state or the other', async () => {
    const dim = 64;
    const idx = new EmbeddingIndex(dim);
    const n = 200_000;
    const r = rng(11);
    const flat = new Float32Array(n * dim);
    for (let i = 0; i < flat.length; i++) flat[i] = r() * 2 - 1;
    idx.addRows(Array.from({ length: n }, (_, i) => `r${i}`), flat, Array.from({ length: n }, (_, i) => i));
    const q = flat.slice(1234 * dim, 1235 * dim);
    await idx.search([q], 3); // traces the search (on this thread)
    // While a replay runs, timers still fire: the loop is free.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const pending = Array.from({ length: 20 }, () => idx.search([q], 3));
    await new Promise((res) => setTimeout(res, 0));
    // Changes while searches are queued or running: each search answers for a consistent state.
    const twin = Float32Array.from(q);
    idx.add('twin', [twin], [n + 1]);
    idx.remove('r5');
    const results = await Promise.all(pending);
    clearInterval(timer);
    assert.ok(ticks > 0, 'no timer fired while 20 searches ran');
    for (const res of results) {
      assert.ok(['r1234', 'twin'].includes(res[0][0].id), res[0][0].id);
      assert.equal(res[0][0].distance, 0);
    }
    const after = await idx.search([q], 2);
    assert.deepEqual(after[0].map((c) => c.id).sort(), ['r1234', 'twin']);
    // No tensor leaks: searches (traced, replayed, re-run) leave only the index's own tensors.
    const live = memory().tensors;
    for (let i = 0; i < 5; i++) await Promise.all([idx.search([q], 3), idx.search([q, twin], 2)]);
    assert.equal(memory().tensors, live);
    idx.dispose();
  });
});

describe('FaceGallery', function () {
  this.timeout(60000);
  const model = new PixelFaceModel();

  it("indexStorage 'bfloat16': enrols and identifies as float32 does; a storage it does not know is an ArgumentError", async () => {
    const g = await FaceGallery.open(':memory:', { model, indexStorage: 'bfloat16' });
    try {
      await g.enroll('alice', face(1), { detect: false });
      await g.enroll('bob', [face(2), face(3)], { detect: false });
      const r = await g.identify(face(3), { detect: false });
      assert.equal(r.id, 'bob');
      assert.ok(r.distance < 1e-2, `distance ${r.distance} (the stored row is rounded to bfloat16)`);
    } finally {
      await g.close();
    }
    await assert.rejects(FaceGallery.open(':memory:', { model, indexStorage: 'float16' as never }), ArgumentError);
    assert.throws(() => new EmbeddingIndex(4, 'cpu', 'int8' as never), ArgumentError);
  });

  it('enrolls one-shot, identifies, verifies, lists, gets and removes', async () => {
    const g = await FaceGallery.open(':memory:', { model });
    assert.equal(g.threshold, model.threshold);
    await g.enroll('alice', face(1), { metadata: { team: 'a' }, detect: false });
    await g.enroll('bob', [face(2), face(3)], { detect: false });
    const p = await g.get('alice');
    assert.equal(p!.embeddings, 1);
    assert.deepEqual(p!.metadata, { team: 'a' });
    assert.equal((await g.get('bob'))!.embeddings, 2);
    assert.equal(await g.get('nobody'), null);
    assert.deepEqual(
      (await g.list()).map((x) => x.id),
      ['alice', 'bob'],
    );

    const r = await g.identify(face(3), { detect: false });
    assert.equal(r.id, 'bob');
    assert.ok(r.distance < 1e-6, `distance ${r.distance}`);
    assert.deepEqual(
      r.candidates.map((c) => c.id),
      ['bob', 'alice'],
    );
    const v = await g.verify(face(1), 'alice', { detect: false });
    assert.equal(v.same, true);
    const v2 = await g.verify(face(1), 'bob', { detect: false });
    assert.equal(v2.same, v2.distance <= g.threshold);
    await assert.rejects(g.verify(face(1), 'carol', { detect: false }), UnknownIdError);

    // Not recognised: the best distance is above the threshold.
    const far = await g.identify(face(9), { detect: false, threshold: 1e-6 });
    assert.equal(far.id, null);
    assert.equal(far.candidates.length, 2);

    await g.remove('bob');
    await assert.rejects(g.remove('bob'), UnknownIdError);
    assert.equal((await g.identify(face(3), { detect: false })).candidates[0].id, 'alice');
    assert.deepEqual(await g.counts(), { people: 1, embeddings: 1 });
    await g.close();
  });

  it('duplicate ids are DuplicateIdError unless append: true (adds images)', async () => {
    const g = await FaceGallery.open(':memory:', { model });
    await g.enroll('a', face(1), { detect: false });
    await assert.rejects(g.enroll('a', face(2), { detect: false }), DuplicateIdError);
    assert.equal((await g.get('a'))!.embeddings, 1);
    await g.enroll('a', face(2), { detect: false, append: true, metadata: { n: 2 } });
    assert.equal((await g.get('a'))!.embeddings, 2);
    assert.deepEqual((await g.get('a'))!.metadata, { n: 2 });
    // Concurrent enrolments of the same new id: exactly one wins.
    const both = await Promise.allSettled([g.enroll('c', face(4), { detect: false }), g.enroll('c', face(5), { detect: false })]);
    assert.equal(both.filter((x) => x.status === 'fulfilled').length, 1);
    assert.ok(both.some((x) => x.status === 'rejected' && x.reason instanceof DuplicateIdError));
    assert.equal((await g.get('c'))!.embeddings, 1);
    await g.close();
  });

  it('bad input: typed errors and nothing written', async () => {
    const file = path.join(tmp, 'bad.db');
    const g = await FaceGallery.open(file, { model });
    await g.enroll('x', face(1), { detect: false });
    const before = await g.counts();
    // One good and one faceless image: the whole enrolment fails.
    await assert.rejects(g.enroll('y', [face(2), blank]), NoFaceError);
    await assert.rejects(g.enroll('y', [face(2), Buffer.from('not an image at all')], { detect: false }), ImageError);
    await assert.rejects(g.enroll('y', Buffer.alloc(0)), ImageError);
    await assert.rejects(g.enroll('', face(2)), ArgumentError);
    await assert.rejects(g.enroll('y', [], { detect: false }), ArgumentError);
    await assert.rejects(g.enroll('y', face(2), { detect: false, metadata: 'x' as never }), ArgumentError);
    await assert.rejects(g.enroll('y', face(2), { bogus: 1 } as never), ArgumentError);
    await assert.rejects(g.enrollEmbeddings('y', new Float32Array(64)), ModelMismatchError);
    await assert.rejects(g.enrollEmbeddings('y', Float32Array.from({ length: 128 }, () => NaN)), ArgumentError);
    await assert.rejects(g.identifyEmbeddings([new Float32Array(3)]), ModelMismatchError);
    await assert.rejects(g.identify(face(1), { k: 0, detect: false }), ArgumentError);
    // A photo without a face is an answer, not an error, for identify.
    assert.deepEqual(await g.identify(blank).then((r) => [r.id, r.reason]), [null, 'no-face']);
    assert.deepEqual(await g.counts(), before);
    assert.equal(await g.get('y'), null);
    await g.close();
    const again = await FaceGallery.open(file, { model });
    assert.deepEqual(await again.counts(), before);
    await again.close();
  });

  it('persists to a file; a different model is a ModelMismatchError', async () => {
    const file = path.join(tmp, 'persist.db');
    const g = await FaceGallery.open(file, { model });
    await g.enroll('a', face(1), { detect: false });
    await g.enroll('b', [face(2), face(3)], { detect: false });
    await g.close();
    const g2 = await FaceGallery.open(file, { model: new PixelFaceModel() });
    assert.deepEqual(await g2.counts(), { people: 2, embeddings: 3 });
    assert.equal((await g2.identify(face(3), { detect: false })).id, 'b');
    assert.deepEqual(g2.modelIdentity, { name: 'pixels-16x8', hash: 'none-v1', dim: 128 });
    await g2.close();
    await assert.rejects(FaceGallery.open(file, { model: new PixelFaceModel({ weightsHash: 'retrained' }) }), (e: Error) => e instanceof ModelMismatchError && /pixels-16x8 \(weights none-v1/.test(e.message));
    // Without a model: list / export work, enrolling images does not.
    const ro = await FaceGallery.open(file);
    assert.equal((await ro.list()).length, 2);
    await assert.rejects(ro.enroll('c', face(4)), ArgumentError);
    await ro.close();
    // Not a SQLite file.
    const junk = path.join(tmp, 'junk.db');
    fs.writeFileSync(junk, 'this is not a database, just text that is long enough to have a header......');
    await assert.rejects(FaceGallery.open(junk, { model }), FileFormatError);
  });

  it('uses the verification head: a match the head rejects is not recognised', async () => {
    const table = new Map([
      ['a', Float32Array.from([1, 0, 0])],
      ['a2', Float32Array.from([0.9, 0.1, 0])],
      ['b', Float32Array.from([0, 1, 0])],
    ]);
    const seen: number[] = [];
    const head = {
      threshold: 0.5,
      predict: (pairs: { a: Float32Array; b: Float32Array }[]) => Float32Array.from(pairs, ({ a, b }) => (seen.push(1), a[1] > 0.05 && b[0] === 1 ? 0.1 : 0.9)),
    };
    const g = await FaceGallery.open(':memory:', { model: Object.assign(new TableEmbedder(3, table), { head }) });
    await g.enroll('alice', 'a');
    const r = await g.identify('a2', { threshold: 1 });
    assert.equal(r.candidates[0].id, 'alice');
    assert.ok(r.distance < 1);
    assert.equal(r.id, null, 'head says different');
    assert.ok(Math.abs(r.probability! - 0.1) < 1e-6);
    assert.equal((await g.identify('a', { threshold: 1 })).id, 'alice');
    assert.equal((await g.verify('a2', 'alice', { threshold: 1 })).same, false);
    assert.ok(seen.length >= 3);
    const noHead = await FaceGallery.open(':memory:', { model: Object.assign(new TableEmbedder(3, table), { head }), useHead: false });
    await noHead.enroll('alice', 'a');
    assert.equal((await noHead.identify('a2', { threshold: 1 })).id, 'alice');
    await g.close();
    await noHead.close();
  });

  it('exports and imports as JSON and safetensors', async () => {
    const g = await FaceGallery.open(':memory:', { model });
    await g.enroll('a', face(1), { detect: false, metadata: { x: 1 } });
    await g.enroll('b', [face(2), face(3)], { detect: false });
    const json = await g.export();
    assert.equal(json.people.length, 2);
    assert.equal(json.people[1].embeddings.length, 2);
    const st = await g.export({ format: 'safetensors' });
    for (const data of [json, JSON.stringify(json), st]) {
      const h = await FaceGallery.open(':memory:', { model });
      assert.equal(await h.import(data as never), 2);
      assert.deepEqual(await h.export(), json);
      await assert.rejects(h.import(data as never), DuplicateIdError);
      assert.deepEqual(await h.counts(), { people: 2, embeddings: 3 });
      await h.import(data as never, { append: true });
      assert.deepEqual(await h.counts(), { people: 2, embeddings: 6 });
      await h.import(data as never, { replace: true });
      assert.deepEqual(await h.counts(), { people: 2, embeddings: 3 });
      assert.equal((await h.identify(face(2), { detect: false })).id, 'b');
      await h.close();
    }
    const other = await FaceGallery.open(':memory:', { model: new PixelFaceModel({ name: 'other' }) });
    await assert.rejects(other.import(json), ModelMismatchError);
    await assert.rejects(other.import('{"format":"nope"}'), FileFormatError);
    await assert.rejects(other.import(new Uint8Array([1, 2, 3])), FileFormatError);
    await other.close();
    const file = path.join(tmp, 'export.safetensors');
    await g.exportFile(file);
    const h = await FaceGallery.open(path.join(tmp, 'imported.db'), { model });
    await h.importFile(file);
    assert.deepEqual(await h.export(), json);
    await h.close();
    await g.close();
  });

  it('loses no returned enrolment when the process is SIGKILLed mid-stream, and reopens cleanly', async function () {
    this.timeout(120000);
    const file = path.join(tmp, 'killed.db');
    const child = spawn(process.execPath, [path.join(DIST_HELPERS, 'gallery-enroll-child.js'), file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const printed: string[] = [];
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        printed.push(...lines.filter(Boolean));
        if (printed.length >= 150 && !child.killed) {
          child.kill('SIGKILL');
        }
      });
      child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited ${code} ${signal} before being killed`))));
    });
    assert.ok(printed.length >= 150);
    const g = await FaceGallery.open(file, { model: new PixelFaceModel() });
    const ids = new Set((await g.list()).map((p) => p.id));
    const missing = printed.filter((id) => !ids.has(id));
    assert.deepEqual(missing, [], `${missing.length} returned enrolments lost`);
    // Index and store agree, and the gallery still works.
    const c = await g.counts();
    assert.equal(g.index!.size, c.embeddings);
    assert.ok(c.people >= printed.length);
    await g.enrollEmbeddings('after-crash', new Float32Array(128).fill(0.1));
    await g.close();
  });
});
