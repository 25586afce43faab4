// The HTTP service on loopback: every route, both image encodings, the status
// of each kind of bad request, the API key, and a small load run (a few hundred
// good and bad requests: every answer checked, RSS growth bounded, no crash).
// Uses the weight-free PixelFaceModel on synthetic images (no face data needed).
import { strict as assert } from 'assert';
import sharp from 'sharp';
import { FaceGallery, createServer } from '../../lib';
import { PixelFaceModel } from '../../lib/testing/pixel-face-model';
import { closeClient, driveLoad, multipartBody, request } from '../helpers/load';

async function png(shade: number): Promise<Buffer> {
  const w = 40;
  const h = 48;
  const data = Buffer.alloc(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = (x * 7 + y * shade * 13 + shade * 31) % 256;
  return sharp(data, { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();
}

describe('gallery HTTP service', function () {
  this.timeout(120000);
  let gallery: FaceGallery;
  let app: ReturnType<typeof createServer>;
  let base: string;
  const apiKey = 'sekrit';
  const json = { 'content-type': 'application/json', 'x-api-key': apiKey };

  before(async () => {
    gallery = await FaceGallery.open(':memory:', { model: new PixelFaceModel() });
    app = createServer({ gallery, apiKey, bodyLimit: 512 * 1024, maxPixels: 1_000_000 });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    closeClient();
    await app.close();
    await gallery.close();
  });

  it('binds to loopback and answers /health without a key (bare), with details for the key', async () => {
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await request(base, 'GET', '/health');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { ok: true, status: 'ok' }); // bare liveness: details need the key
    const h = JSON.parse((await request(base, 'GET', '/health', undefined, { 'x-api-key': apiKey })).body);
    assert.equal(h.status, 'ok');
    assert.equal(h.model.name, 'pixels-16x8');
  });

  it('enroll (JSON and multipart), identify, verify, people, delete', async () => {
    const a = await png(1);
    const b = await png(2);
    let r = await request(base, 'POST', '/enroll', JSON.stringify({ id: 'alice', image: a.toString('base64'), metadata: { role: 'x' }, detect: false }), json);
    assert.equal(r.status, 201, r.body);
    assert.equal(JSON.parse(r.body).embeddings, 1);
    const m = multipartBody({ id: 'bob', detect: 'false', metadata: '{"n":1}' }, [b, await png(3)]);
    r = await request(base, 'POST', '/enroll', m.body, { 'content-type': m.type, 'x-api-key': apiKey });
    assert.equal(r.status, 201, r.body);
    assert.deepEqual(JSON.parse(r.body).metadata, { n: 1 });
    assert.equal(JSON.parse(r.body).embeddings, 2);

    r = await request(base, 'POST', '/identify', JSON.stringify({ image: `data:image/png;base64,${b.toString('base64')}`, detect: false, k: 2 }), json);
    assert.equal(r.status, 200, r.body);
    const id = JSON.parse(r.body);
    assert.equal(id.id, 'bob');
    assert.deepEqual(id.candidates.map((c: { id: string }) => c.id), ['bob', 'alice']);

    r = await request(base, 'POST', '/identify', JSON.stringify({ image: b.toString('base64'), detect: false, threshold: 1e-9 }), json);
    assert.equal(JSON.parse(r.body).id, 'bob', 'distance 0 is within any threshold');
    r = await request(base, 'POST', '/identify', JSON.stringify({ image: (await png(9)).toString('base64'), detect: false, threshold: 1e-6 }), json);
    assert.equal(JSON.parse(r.body).id, null);

    r = await request(base, 'POST', '/verify', JSON.stringify({ image: a.toString('base64'), id: 'alice', detect: false }), json);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).same, true);
    const two = multipartBody({ detect: 'false' }, [a, a]);
    r = await request(base, 'POST', '/verify', two.body, { 'content-type': two.type, 'x-api-key': apiKey });
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).distance, 0);

    r = await request(base, 'GET', '/people', undefined, { 'x-api-key': apiKey });
    assert.deepEqual(JSON.parse(r.body).people.map((p: { id: string }) => p.id), ['alice', 'bob']);
    r = await request(base, 'DELETE', '/people/alice', undefined, { 'x-api-key': apiKey });
    assert.equal(r.status, 200);
    r = await request(base, 'DELETE', '/people/alice', undefined, { 'x-api-key': apiKey });
    assert.equal(r.status, 404);
    assert.equal(JSON.parse(r.body).error.code, 'UnknownId');
  });

  it('maps bad requests to 400/401/404/409/413/422 with JSON bodies, and writes nothing', async () => {
    const a = (await png(4)).toString('base64');
    const before = await gallery.counts();
    const cases: [string, string, string | Buffer | undefined, Record<string, string>, number][] = [
      ['POST', '/identify', '{"image":', json, 400],
      ['POST', '/identify', JSON.stringify({ image: a, bogus: 1 }), json, 400],
      ['POST', '/identify', JSON.stringify({ image: a, k: 0 }), json, 400],
      ['POST', '/identify', JSON.stringify({}), json, 400],
      ['POST', '/identify', JSON.stringify({ image: '@@@' }), json, 400],
      ['POST', '/verify', JSON.stringify({ image: a }), json, 400],
      ['POST', '/enroll', JSON.stringify({ id: '', image: a }), json, 400],
      ['POST', '/enroll', JSON.stringify({ id: 'x', image: a, metadata: 'nope' }), json, 400],
      ['POST', '/identify', JSON.stringify({ image: a }), { 'content-type': 'application/json' }, 401],
      ['POST', '/identify', JSON.stringify({ image: a }), { 'content-type': 'application/json', 'x-api-key': 'wrong' }, 401],
      ['GET', '/people', undefined, {}, 401],
      ['POST', '/verify', JSON.stringify({ image: a, id: 'nobody', detect: false }), json, 404],
      ['GET', '/people/nobody', undefined, { 'x-api-key': apiKey }, 404],
      ['GET', '/nowhere', undefined, { 'x-api-key': apiKey }, 404],
      ['POST', '/enroll', JSON.stringify({ id: 'bob', image: a, detect: false }), json, 409],
      ['POST', '/identify', Buffer.alloc(600 * 1024, 32), json, 413],
      ['POST', '/identify', JSON.stringify({ image: Buffer.from('GIF89a corrupt').toString('base64') }), json, 422],
      ['POST', '/enroll', JSON.stringify({ id: 'blank', image: (await sharp({ create: { width: 30, height: 30, channels: 3, background: 'grey' } }).png().toBuffer()).toString('base64') }), json, 422],
    ];
    const bomb = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: 'black' } }).png().toBuffer();
    cases.push(['POST', '/identify', JSON.stringify({ image: bomb.toString('base64') }), json, 413]);
    const many = multipartBody({}, Array.from({ length: 12 }, () => Buffer.from('x')));
    cases.push(['POST', '/identify', many.body, { 'content-type': many.type, 'x-api-key': apiKey }, 413]);
    for (const [method, url, body, headers, want] of cases) {
      const r = await request(base, method, url, body, headers);
      assert.equal(r.status, want, `${method} ${url} ${String(body).slice(0, 60)}: ${r.status} ${r.body}`);
      const j = JSON.parse(r.body);
      assert.equal(typeof j.error.message, 'string');
    }
    assert.deepEqual(await gallery.counts(), before);
  });

  it('under load: every answer right, RSS growth < 50 MB, no crash', async function () {
    this.timeout(300000);
    // Synthetic people (the service test must not depend on face data).
    const synth: { id: string; enroll: Buffer[]; probes: Buffer[] }[] = [];
    for (let s = 0; s < 8; s++) synth.push({ id: `load${s}`, enroll: [await png(20 + s)], probes: [await png(20 + s)] });
    const report = await driveLoad({ baseUrl: base, people: synth, requests: 600, concurrency: 8, apiKey, bodyLimit: 512 * 1024, detect: false });
    assert.deepEqual(report.failures, []);
    assert.equal(report.accuracy.correct, report.accuracy.total, 'identical probes must be identified');
    assert.ok(report.rssGrowthMB < 50, `RSS grew ${report.rssGrowthMB} MB`);
    console.log(`      ${report.requests} requests: ${report.requestsPerSecond} req/s, p50 ${report.latencyMs.p50} ms, p99 ${report.latencyMs.p99} ms, RSS +${report.rssGrowthMB} MB, event-loop p99 ${report.eventLoopDelayP99Ms} ms`);
  });
});
