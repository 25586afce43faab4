// The HTTP service under abuse (the robustness issue's service items, one
// `it` per item, each titled with its number): a regex that froze the event
// loop (#3), memory per request and in flight (#4), a search index that went
// stale when another handle wrote the file (#6), ids the router could not
// route (#11), malformed bodies that were 500s and a server that logged
// nothing (#12), one JSON error shape for every status (#13), and the
// service's policies (#14). Every request goes to 127.0.0.1, bounded in count
// and time; the weight-free PixelFaceModel stands in for the face model.
import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import sharp from 'sharp';
import { ArgumentError, FaceGallery, ImageError, createServer } from '../../lib';
import { PixelFaceModel } from '../../lib/testing/pixel-face-model';
import type { ServerOptions } from '../../lib';
import { ImageInput, loadImage } from '../../lib/image';
import { multipartBody } from '../helpers/load';
import { apiKeyFrom } from '../../cli/torchface';
import { packageRoot } from '../../lib/util/paths';

interface Resp {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** One request on its own connection (no shared agent). */
function req(base: string, method: string, url: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Resp> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const u = new URL(url, base);
    const r = http.request({ method, hostname: u.hostname, port: u.port, path: u.pathname + u.search, agent: false, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    r.on('error', reject);
    if (body !== undefined) r.write(body);
    r.end();
  });
}

/** Raw bytes on a socket; resolves with whatever the server sent before closing (or after `waitMs`). */
function raw(base: string, bytes: string | Buffer, waitMs = 5000): Promise<{ text: string; closedAfterMs: number | null }> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = net.connect(Number(u.port), u.hostname);
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ text, closedAfterMs: null });
    }, waitMs);
    s.on('data', (d) => (text += d.toString('utf8')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedAfterMs: performance.now() - t0 });
    });
    s.write(bytes);
  });
}

function errorBody(r: { status: number; body: string }, status: number, what: string): { code: string; message: string } {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.body.slice(0, 300)}`);
  let j: { error?: { code?: unknown; message?: unknown } };
  try {
    j = JSON.parse(r.body);
  } catch {
    assert.fail(`${what}: the body is not JSON: ${r.body.slice(0, 200)}`);
  }
  assert.equal(typeof j.error?.code, 'string', `${what}: error.code in ${r.body.slice(0, 200)}`);
  assert.equal(typeof j.error?.message, 'string', `${what}: error.message in ${r.body.slice(0, 200)}`);
  return j.error as { code: string; message: string };
}

async function pattern(shade: number, w = 40, h = 48): Promise<Buffer> {
  const data = Buffer.alloc(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = (x * 7 + y * shade * 13 + shade * 31) % 256;
  return sharp(data, { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();
}

function zeroPng(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 0, g: 0, b: 0 } } }).png({ compressionLevel: 9 }).toBuffer();
}

/** A PixelFaceModel that records the size of what it is given, can be held at a gate, or can fail. */
class ProbeEmbedder extends PixelFaceModel {
  seen: { width: number; height: number }[] = [];
  hold: Promise<void> | null = null;
  entered: (() => void) | null = null;
  fail: Error | null = null;
  override async embedBatch(inputs: ImageInput[], options: { detect: boolean } = { detect: true }): Promise<Float32Array[]> {
    for (const i of inputs) {
      const img = await loadImage(i);
      this.seen.push({ width: img.width, height: img.height });
    }
    if (this.fail) throw this.fail;
    if (this.hold) {
      this.entered?.();
      await this.hold;
    }
    return super.embedBatch(inputs, options);
  }
  /** Holds the next embedding until the returned `open()`; `entered` resolves once a request is held. */
  holdNext(): { entered: Promise<void>; open: () => void } {
    let open!: () => void;
    this.hold = new Promise<void>((r) => (open = r));
    const entered = new Promise<void>((r) => (this.entered = r));
    return { entered, open };
  }
}

const KEY = 'abuse-key';
const JSON_H = { 'content-type': 'application/json', 'x-api-key': KEY };

describe('gallery HTTP service under abuse', function () {
  this.timeout(120000);
  const opened: { close(): Promise<void> }[] = [];

  async function start(options: Partial<ServerOptions> = {}, model = new ProbeEmbedder()): Promise<{ base: string; gallery: FaceGallery; model: ProbeEmbedder; app: ReturnType<typeof createServer> }> {
    const gallery = (options.gallery as FaceGallery | undefined) ?? (await FaceGallery.open(':memory:', { model }));
    const app = createServer({ apiKey: KEY, ...options, gallery });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    opened.push(app, gallery);
    return { base, gallery, model, app };
  }
  afterEach(async () => {
    for (const x of opened.splice(0)) await x.close();
  });

  it('#3 base64 validation is linear: 100 KB of spaces + "!" is a 400 at once, and /health answers meanwhile', async () => {
    const { base } = await start();
    const body = JSON.stringify({ image: ' '.repeat(100_000) + '!', detect: false });
    const bad = req(base, 'POST', '/identify', body, JSON_H);
    await new Promise((r) => setTimeout(r, 100)); // the check is under way (it took 11.6 s before the fix)
    const health = await req(base, 'GET', '/health');
    const r = await bad;
    errorBody(r, 400, 'spaces + !');
    assert.equal(health.status, 200);
    assert.ok(r.ms < 1000, `the bad base64 took ${r.ms.toFixed(0)} ms`);
    assert.ok(health.ms < 1000, `/health took ${health.ms.toFixed(0)} ms meanwhile`);
    // Whitespace inside base64 (MIME line breaks) and padding still work; '=' inside does not.
    const png = (await pattern(1)).toString('base64');
    const wrapped = png.replace(/.{1,76}/g, (l) => l + '\r\n');
    let ok = await req(base, 'POST', '/identify', JSON.stringify({ image: wrapped, detect: false }), JSON_H);
    assert.equal(ok.status, 200, ok.body);
    ok = await req(base, 'POST', '/identify', JSON.stringify({ image: `data:image/png;base64,${png}`, detect: false }), JSON_H);
    assert.equal(ok.status, 200, ok.body);
    errorBody(await req(base, 'POST', '/identify', JSON.stringify({ image: 'AAAA=AAAA' }), JSON_H), 400, '= inside');
    errorBody(await req(base, 'POST', '/identify', JSON.stringify({ image: 'AAAA===' }), JSON_H), 400, 'three =');
    // 1 MB of whitespace and then junk: still fast.
    const t0 = performance.now();
    errorBody(await req(base, 'POST', '/identify', JSON.stringify({ image: ' \n\t'.repeat(350_000) + '!' }), JSON_H), 400, '1 MB of whitespace');
    assert.ok(performance.now() - t0 < 1500);
  });

  it('#4 a per-request pixel budget refuses big all-zero PNGs with 413 before decoding them', async () => {
    const { base, gallery, model } = await start({ maxRequestPixels: 10_000_000, bodyLimit: 4 * 1024 * 1024 });
    const big = await zeroPng(3000, 3000); // 9 MP each: under the per-image limit, over the budget together
    const m = multipartBody({ id: 'zeros', detect: 'false' }, [big, big]);
    const r = await req(base, 'POST', '/enroll', m.body, { 'content-type': m.type, 'x-api-key': KEY });
    const e = errorBody(r, 413, 'two 9 MP images over a 10 MP budget');
    assert.equal(e.code, 'TooManyPixels');
    assert.match(e.message, /maxRequestPixels/);
    assert.equal(model.seen.length, 0, 'nothing reached the model');
    assert.equal((await gallery.counts()).people, 0);
    // Three base64 images, the same rule.
    const b64 = big.toString('base64');
    errorBody(await req(base, 'POST', '/verify', JSON.stringify({ image: b64, image2: b64 }), JSON_H), 413, 'verify over budget');
  });

  it('#4 large photos are shrunk (longest side <= maxSide) before the model sees them', async () => {
    const { base, model } = await start({ maxSide: 1600 });
    const wide = await sharp({ create: { width: 4000, height: 1000, channels: 3, background: { r: 40, g: 90, b: 160 } } }).png().toBuffer();
    const r = await req(base, 'POST', '/identify', JSON.stringify({ image: wide.toString('base64'), detect: false }), JSON_H);
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(model.seen, [{ width: 1600, height: 400 }]);
    // Small images pass through at their size.
    model.seen = [];
    assert.equal((await req(base, 'POST', '/identify', JSON.stringify({ image: (await pattern(2)).toString('base64'), detect: false }), JSON_H)).status, 200);
    assert.deepEqual(model.seen, [{ width: 40, height: 48 }]);
  });

  it('#4 image requests beyond the in-flight limit get 503 with Retry-After; others still answer', async () => {
    const model = new ProbeEmbedder();
    const { base } = await start({ maxInFlight: 1, maxQueued: 0, retryAfter: 2 }, model);
    const img = (await pattern(3)).toString('base64');
    const { entered, open } = model.holdNext();
    const first = req(base, 'POST', '/identify', JSON.stringify({ image: img, detect: false }), JSON_H);
    await entered;
    const second = await req(base, 'POST', '/identify', JSON.stringify({ image: img, detect: false }), JSON_H);
    const e = errorBody(second, 503, 'second image request while the first is held');
    assert.equal(e.code, 'Busy');
    assert.equal(second.headers['retry-after'], '2');
    const m = multipartBody({ id: 'x', detect: 'false' }, [await pattern(4)]);
    errorBody(await req(base, 'POST', '/enroll', m.body, { 'content-type': m.type, 'x-api-key': KEY }), 503, 'multipart enroll while held');
    assert.equal((await req(base, 'GET', '/people', undefined, { 'x-api-key': KEY })).status, 200, 'non-image routes are not limited');
    // A request refused for its key does not take a slot either.
    assert.equal((await req(base, 'POST', '/identify', JSON.stringify({ image: img }), { 'content-type': 'application/json' })).status, 401);
    model.hold = null;
    open();
    assert.equal((await first).status, 200);
    assert.equal((await req(base, 'POST', '/identify', JSON.stringify({ image: img, detect: false }), JSON_H)).status, 200, 'the slot is free again');
    // A failed request frees its slot too.
    assert.equal((await req(base, 'POST', '/identify', JSON.stringify({ image: '@@' }), JSON_H)).status, 400);
    assert.equal((await req(base, 'POST', '/identify', JSON.stringify({ image: img, detect: false }), JSON_H)).status, 200);
  });

  it('#4 queued image requests wait for a slot (bounded queue), in order', async () => {
    const model = new ProbeEmbedder();
    const { base } = await start({ maxInFlight: 1, maxQueued: 2 }, model);
    const img = (await pattern(3)).toString('base64');
    const { entered, open } = model.holdNext();
    const first = req(base, 'POST', '/identify', JSON.stringify({ image: img, detect: false }), JSON_H);
    await entered;
    model.hold = null;
    const queued = [req(base, 'POST', '/identify', JSON.stringify({ image: img, detect: false }), JSON_H), req(base, 'POST', '/identify', JSON.stringify({ image: img, detect: false }), JSON_H)];
    await new Promise((r) => setTimeout(r, 200));
    const over = await req(base, 'POST', '/identify', JSON.stringify({ image: img, detect: false }), JSON_H);
    errorBody(over, 503, 'beyond slot + queue');
    open();
    assert.deepEqual((await Promise.all([first, ...queued])).map((r) => r.status), [200, 200, 200]);
  });

  it('#4 a slow body is cut off by the request timeout (408, connection closed)', async () => {
    const { base } = await start({ requestTimeout: 1000 });
    const head = `POST /identify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nx-api-key: ${KEY}\r\nContent-Length: 100000\r\n\r\n{"image":"`;
    const r = await raw(base, head, 8000);
    assert.ok(r.closedAfterMs !== null && r.closedAfterMs < 4000, `the slow connection was held ${r.closedAfterMs ?? '> 8000'} ms`);
    assert.match(r.text, /^HTTP\/1\.1 408/);
    const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
    errorBody({ status: 408, body }, 408, 'request timeout');
  });

  it('#6 two FaceGallery handles on one file see each other\'s enrolments and removals', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-stale-'));
    const file = path.join(dir, 'g.db');
    const model = new PixelFaceModel();
    const a = await FaceGallery.open(file, { model });
    const b = await FaceGallery.open(file, { model });
    try {
      const alice = await pattern(5);
      const bob = await pattern(6);
      await a.enroll('alice', alice, { detect: false });
      assert.equal((await b.identify(alice, { detect: false })).id, 'alice', 'B finds what A enrolled');
      assert.equal((await b.verify(alice, 'alice', { detect: false })).same, true);
      await a.remove('alice');
      const r = await b.identify(alice, { detect: false });
      assert.equal(r.id, null, 'B no longer recognises a person A removed');
      assert.deepEqual(r.candidates, []);
      await assert.rejects(b.verify(alice, 'alice', { detect: false }), { code: 'ERR_UNKNOWN_ID' });
      await b.enroll('bob', bob, { detect: false });
      assert.equal((await a.identify(bob, { detect: false })).id, 'bob', 'A finds what B enrolled');
      // Own writes mixed with the other's: both stay exact.
      await a.enroll('alice', alice, { detect: false });
      await b.remove('bob');
      await a.enroll('carol', await pattern(7), { detect: false });
      for (const g of [a, b]) {
        assert.equal((await g.identify(alice, { detect: false })).id, 'alice');
        assert.equal((await g.identify(bob, { detect: false })).id, null);
        assert.equal(g.index?.size, 2);
      }
    } finally {
      await a.close();
      await b.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('#11 ids of the maximum length (256) enrol, get and delete; 257 is a 400 everywhere', async () => {
    const { base } = await start();
    const img = (await pattern(8)).toString('base64');
    for (const id of ['a'.repeat(256), 'é/%?#'.repeat(51) + 'z', '😀'.repeat(128)]) {
      assert.equal(id.length, 256);
      let r = await req(base, 'POST', '/enroll', JSON.stringify({ id, image: img, detect: false }), JSON_H);
      assert.equal(r.status, 201, r.body);
      r = await req(base, 'GET', `/people/${encodeURIComponent(id)}`, undefined, { 'x-api-key': KEY });
      assert.equal(r.status, 200, `GET ${id.slice(0, 10)}...: ${r.status} ${r.body.slice(0, 200)}`);
      assert.equal(JSON.parse(r.body).id, id);
      r = await req(base, 'DELETE', `/people/${encodeURIComponent(id)}`, undefined, { 'x-api-key': KEY });
      assert.equal(r.status, 200, r.body);
    }
    const long = 'b'.repeat(257);
    errorBody(await req(base, 'POST', '/enroll', JSON.stringify({ id: long, image: img, detect: false }), JSON_H), 400, 'enroll 257');
    errorBody(await req(base, 'GET', `/people/${long}`, undefined, { 'x-api-key': KEY }), 400, 'get 257');
    errorBody(await req(base, 'DELETE', `/people/${encodeURIComponent('é'.repeat(257))}`, undefined, { 'x-api-key': KEY }), 400, 'delete 257');
    errorBody(await req(base, 'POST', '/verify', JSON.stringify({ id: long, image: img, detect: false }), JSON_H), 400, 'verify 257');
  });

  it('#12 malformed multipart and deeply nested JSON metadata are 400s with a JSON error body', async () => {
    const { base, gallery } = await start();
    const png = await pattern(9);
    const key = { 'x-api-key': KEY };
    const good = multipartBody({ id: 'm', detect: 'false' }, [png]);
    errorBody(await req(base, 'POST', '/enroll', good.body, { ...key, 'content-type': 'multipart/form-data' }), 400, 'no boundary');
    const cut = good.body.subarray(0, good.body.length - 40);
    errorBody(await req(base, 'POST', '/enroll', cut, { ...key, 'content-type': good.type }), 400, 'truncated body');
    errorBody(await req(base, 'POST', '/enroll', Buffer.from('garbage with no parts'), { ...key, 'content-type': good.type }), 400, 'no parts at all');
    const deep = '['.repeat(4200) + ']'.repeat(4200);
    const meta = `{"a":${deep}}`;
    const m = multipartBody({ id: 'deep', detect: 'false', metadata: meta }, [png]);
    errorBody(await req(base, 'POST', '/enroll', m.body, { ...key, 'content-type': m.type }), 400, 'deep metadata (multipart)');
    errorBody(await req(base, 'POST', '/enroll', `{"id":"deep","detect":false,"image":"${png.toString('base64')}","metadata":${meta}}`, JSON_H), 400, 'deep metadata (JSON)');
    errorBody(await req(base, 'POST', '/identify', `{"image":${deep}}`, JSON_H), 400, 'deep JSON body');
    // The library refuses it too (so a gallery never stores what it cannot read back).
    await assert.rejects(gallery.enroll('deep', png, { detect: false, metadata: JSON.parse(meta) }), ArgumentError);
    // Metadata a few levels deep is fine.
    const ok = multipartBody({ id: 'shallow', detect: 'false', metadata: '{"a":{"b":[1,[2,{"c":3}]]}}' }, [png]);
    assert.equal((await req(base, 'POST', '/enroll', ok.body, { ...key, 'content-type': ok.type })).status, 201);
    assert.equal((await gallery.counts()).people, 1);
  });

  it('#12 a 500 is logged with its stack (warn level), and the client sees no internals', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const model = new ProbeEmbedder();
    const { base } = await start({ logger: { level: 'warn', stream } }, model);
    model.fail = new Error('boom in the model');
    const r = await req(base, 'POST', '/identify', JSON.stringify({ image: (await pattern(1)).toString('base64'), detect: false }), JSON_H);
    const e = errorBody(r, 500, 'model failure');
    assert.equal(e.code, 'Internal');
    assert.doesNotMatch(r.body, /boom/);
    const logged = lines.map((l) => JSON.parse(l) as { level: number; err?: { message: string; stack: string } }).find((l) => l.err?.message === 'boom in the model');
    assert.ok(logged, `no log line for the 500 in ${lines.join('')}`);
    assert.equal(logged.level, 50);
    assert.match(logged.err!.stack, /^Error: boom in the model\n\s+at /);
    // 4xx are not errors of the server: not logged at warn.
    model.fail = null;
    const before = lines.length;
    await req(base, 'POST', '/identify', '{"image":', JSON_H);
    assert.equal(lines.length, before);
  });

  it('#13 one JSON error shape for every status (400 401 404 413 414 415 422 431 500; 408 and 503 under #4), status chosen by error code', async () => {
    const model = new ProbeEmbedder();
    const { base } = await start({ bodyLimit: 64 * 1024 }, model);
    const png = (await pattern(2)).toString('base64');
    const key = { 'x-api-key': KEY };
    errorBody(await req(base, 'POST', '/identify', '{"image":', JSON_H), 400, 'bad JSON');
    errorBody(await req(base, 'GET', '/people', undefined, {}), 401, 'no key');
    assert.equal(errorBody(await req(base, 'GET', '/nowhere', undefined, key), 404, 'no route').code, 'NotFound');
    errorBody(await req(base, 'GET', '/nowhere'), 401, 'no route, no key');
    errorBody(await req(base, 'POST', '/identify', Buffer.alloc(100 * 1024, 32), JSON_H), 413, 'body too large');
    errorBody(await req(base, 'GET', `/people/${'x'.repeat(5000)}`, undefined, key), 414, 'param too long for the router');
    errorBody(await req(base, 'POST', '/identify', '<a/>', { ...key, 'content-type': 'application/xml' }), 415, 'media type');
    errorBody(await req(base, 'GET', '/people/%zz', undefined, key), 400, 'bad URL encoding');
    const big = await raw(base, `GET /health HTTP/1.1\r\nHost: x\r\nx-big: ${'y'.repeat(20000)}\r\n\r\n`);
    assert.match(big.text, /^HTTP\/1\.1 431/);
    errorBody({ status: 431, body: big.text.slice(big.text.indexOf('\r\n\r\n') + 4) }, 431, 'headers too large');
    const junk = await raw(base, 'NOT HTTP AT ALL\r\n\r\n');
    assert.match(junk.text, /^HTTP\/1\.1 400/);
    errorBody({ status: 400, body: junk.text.slice(junk.text.indexOf('\r\n\r\n') + 4) }, 400, 'not HTTP');
    // The status comes from the error's class, not its message: an ImageError that mentions
    // "pixel limit" is still a 422, and a plain Error that says "not enrolled" is still a 500.
    model.fail = new ImageError('image buffer exceeds the pixel limit of 5 (option maxPixels)');
    assert.equal(errorBody(await req(base, 'POST', '/identify', JSON.stringify({ image: png, detect: false }), JSON_H), 422, 'ImageError').code, 'BadImage');
    model.fail = new Error("person 'x' is not enrolled in this gallery");
    errorBody(await req(base, 'POST', '/identify', JSON.stringify({ image: png, detect: false }), JSON_H), 500, 'plain Error');
  });

  it('#14 a client threshold cannot be looser than the server\'s unless the server allows it', async () => {
    const { base, gallery } = await start();
    const img = (await pattern(10)).toString('base64');
    const other = (await pattern(11)).toString('base64');
    assert.equal((await req(base, 'POST', '/enroll', JSON.stringify({ id: 'ann', image: img, detect: false }), JSON_H)).status, 201);
    const t = gallery.threshold;
    for (const threshold of [1e308, t * 1.01, 'Infinity']) {
      const e = errorBody(await req(base, 'POST', '/identify', JSON.stringify({ image: other, detect: false, threshold }), JSON_H), 400, `identify threshold ${threshold}`);
      assert.match(e.message, /threshold/);
      errorBody(await req(base, 'POST', '/verify', JSON.stringify({ image: other, id: 'ann', detect: false, threshold }), JSON_H), 400, `verify threshold ${threshold}`);
    }
    // Stricter (or equal) thresholds are the client's choice.
    const r = await req(base, 'POST', '/identify', JSON.stringify({ image: img, detect: false, threshold: t }), JSON_H);
    assert.equal(JSON.parse(r.body).id, 'ann');
    const loose = await start({ allowLooserThreshold: true });
    await loose.gallery.enroll('ann', Buffer.from(img, 'base64'), { detect: false });
    const l = JSON.parse((await req(loose.base, 'POST', '/identify', JSON.stringify({ image: other, detect: false, threshold: 1e308 }), JSON_H)).body);
    assert.equal(l.id, 'ann', 'allowed by the server: anyone matches');
    assert.equal(l.threshold, 1e308);
  });

  it('#14 /health gives a bare liveness answer without the key, details with it', async () => {
    const { base } = await start();
    const bare = JSON.parse((await req(base, 'GET', '/health')).body);
    assert.equal(bare.ok, true);
    for (const secret of ['people', 'embeddings', 'rssBytes', 'eventLoopDelayMs']) assert.ok(!(secret in bare), `${secret} without the key`);
    assert.deepEqual(bare, { ok: true, status: 'ok' });
    const wrong = JSON.parse((await req(base, 'GET', '/health', undefined, { 'x-api-key': 'nope' })).body);
    assert.equal(wrong.rssBytes, undefined);
    const full = JSON.parse((await req(base, 'GET', '/health', undefined, { 'x-api-key': KEY })).body);
    assert.equal(full.ok, true);
    assert.equal(typeof full.rssBytes, 'number');
    assert.equal(full.people, 0);
    assert.equal(full.model.hash, 'none-v1');
    // Without an API key configured, everything is public.
    const open = await start({ apiKey: undefined });
    assert.equal(typeof JSON.parse((await req(open.base, 'GET', '/health')).body).rssBytes, 'number');
  });

  it('#14 ids with bidi or other control characters are refused (400, and by the library)', async () => {
    const { base, gallery } = await start();
    const img = (await pattern(12)).toString('base64');
    const bad = ['ann\u202Egpj.exe', 'a\u202Ab', 'a\u202Bb', 'a\u202Cb', 'a\u202Db', 'a\u2066b', 'a\u2067b', 'a\u2068b', 'a\u2069b', 'a\u200Eb', 'a\u200Fb', 'a\u061Cb', 'a\u0085b', 'a\u009Fb', 'a\u2028b', 'a\uFEFFb', 'a\u0000b', 'a\nb', 'a\uD800b'];
    for (const id of bad) {
      errorBody(await req(base, 'POST', '/enroll', JSON.stringify({ id, image: img, detect: false }), JSON_H), 400, `id ${JSON.stringify(id)}`);
      await assert.rejects(gallery.enroll(id, Buffer.from(img, 'base64'), { detect: false }), { code: 'ERR_ARGUMENT' });
    }
    for (const id of ['José', 'Łukasz', 'محمد', '李小龍', 'a b', 'O\'Brien', '😀']) {
      assert.equal((await req(base, 'POST', '/enroll', JSON.stringify({ id, image: img, detect: false }), JSON_H)).status, 201, id);
    }
  });

  it('#14 the CLI takes the API key from --api-key-file or TORCHFACE_API_KEY, and warns about --api-key', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-key-'));
    try {
      const file = path.join(dir, 'key');
      fs.writeFileSync(file, 'from-file\n');
      assert.deepEqual(apiKeyFrom({ 'api-key-file': file }, {}), { key: 'from-file', warning: null });
      assert.deepEqual(apiKeyFrom({}, { TORCHFACE_API_KEY: 'from-env' }), { key: 'from-env', warning: null });
      assert.deepEqual(apiKeyFrom({}, {}), { key: undefined, warning: null });
      const cl = apiKeyFrom({ 'api-key': 'on-the-line' }, {});
      assert.equal(cl.key, 'on-the-line');
      assert.match(cl.warning!, /ps/);
      assert.throws(() => apiKeyFrom({ 'api-key': 'a', 'api-key-file': file }, {}), /one of/);
      assert.throws(() => apiKeyFrom({ 'api-key-file': path.join(dir, 'missing') }, {}), /api-key-file/);
      fs.writeFileSync(path.join(dir, 'empty'), '\n');
      assert.throws(() => apiKeyFrom({ 'api-key-file': path.join(dir, 'empty') }, {}), /empty/);

      // The real command: a key on the command line is warned about; the server logs at warn.
      const cli = path.join(packageRoot, 'dist', 'cli', 'torchface.js');
      const child = spawn(process.execPath, [cli, 'serve', '--gallery', path.join(dir, 'g.db'), '--port', '0', '--model', 'pixels', '--api-key', 'cli-key'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TORCHFACE_TEST_MODEL: 'pixels' } });
      try {
        let err = '';
        const url = await new Promise<string>((resolve, reject) => {
          child.stderr!.on('data', (d: Buffer) => {
            err += d.toString();
            const m = /serving .* on (http:\/\/[^\s]+)/.exec(err);
            if (m) resolve(m[1]);
          });
          child.on('exit', (c) => reject(new Error(`serve exited ${c}: ${err}`)));
        });
        assert.match(err, /warning: .*--api-key.*ps/i);
        assert.equal(JSON.parse((await req(url, 'GET', '/health', undefined, { 'x-api-key': 'cli-key' })).body).people, 0);
        assert.equal((await req(url, 'GET', '/people')).status, 401);
      } finally {
        child.kill('SIGTERM');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
