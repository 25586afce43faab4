// The photo library over HTTP: the /library routes behind the API key, the web
// page and the OpenAPI description without it, photos and thumbnails as JPEG,
// every face of an upload identified, verify with distance (and far for
// calibrated models), name / merge / split / remove, errors in the service's
// shape, and --no-ui. PixelFaceModel on generated photos (no face data needed).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { FaceGallery, createServer } from '../../lib';
import { PixelFaceModel } from '../../lib/testing/pixel-face-model';
import { photo } from '../helpers/photos';

describe('photo library HTTP service', function () {
  this.timeout(120000);
  let dir: string;
  let gallery: FaceGallery;
  let app: ReturnType<typeof createServer>;
  let base: string;
  const key = 'library-key';
  const H = { 'x-api-key': key };
  const get = (p: string, headers: Record<string, string> = H) => fetch(base + p, { headers });
  const post = (p: string, body: unknown, method = 'POST') =>
    fetch(base + p, body === undefined ? { method, headers: H } : { method, headers: { ...H, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Json = any;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-library-http-'));
    const photos = path.join(dir, 'photos');
    fs.mkdirSync(photos);
    for (let i = 0; i < 3; i++) {
      fs.writeFileSync(path.join(photos, `a${i}.jpg`), await photo('a', 100 + i));
      fs.writeFileSync(path.join(photos, `b${i}.jpg`), await photo('b', 200 + i));
      fs.writeFileSync(path.join(photos, `c${i}.png`), await photo('c', 300 + i, 'png'));
    }
    gallery = await FaceGallery.open(path.join(dir, 'lib.db'), { model: new PixelFaceModel() });
    await gallery.indexPhotos(photos);
    await gallery.cluster();
    app = createServer({ gallery, apiKey: key });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await app?.close();
    await gallery?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the page and the OpenAPI description need no key; every /library route does', async () => {
    const page = await fetch(base + '/ui/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /text\/html/);
    assert.match(page.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.match(await page.text(), /<script type="module" src="app.js">/);
    assert.equal((await fetch(base + '/ui/app.js')).status, 200);
    assert.equal((await fetch(base + '/ui/%2e%2e%2fserver.js')).status, 404); // only the page's own files
    assert.equal((await fetch(base + '/ui/secret.json')).status, 404);
    const root = await fetch(base + '/', { redirect: 'manual' });
    assert.equal(root.status, 302);
    const doc = (await (await fetch(base + '/docs/openapi.json')).json()) as Json;
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.components.securitySchemes.apiKey.name, 'x-api-key');
    for (const p of ['/library/clusters', '/library/clusters/{id}/name', '/library/identify', '/verify', '/library/photos/{id}/image']) assert.ok(doc.paths[p], p);
    for (const p of ['/library', '/library/clusters', '/library/photos', '/library/faces/1/thumbnail', '/library/photos/1/image']) {
      const r = await fetch(base + p);
      assert.equal(r.status, 401, p);
      assert.equal((await r.json() as Json).error.code, 'Unauthorized');
    }
  });

  it('GET /library/clusters, /library/clusters/:id, photos with faces, thumbnails and images as JPEG', async () => {
    const c = (await (await get('/library/clusters')).json()) as Json;
    assert.equal(c.clusters.length, 3);
    assert.ok(c.clusters.every((x: { faces: number; sample: number[]; name: null }) => x.faces === 3 && x.sample.length === 3 && x.name === null));
    const one = (await (await get(`/library/clusters/${c.clusters[0].id}`)).json()) as Json;
    assert.equal(one.faces.length, 3);
    assert.ok(!('landmarks' in one.faces[0]));
    const photos = (await (await get('/library/photos')).json()) as Json;
    assert.equal(photos.total, 9);
    const ofCluster = (await (await get(`/library/photos?cluster=${c.clusters[0].id}`)).json()) as Json;
    assert.equal(ofCluster.photos.length, 3);
    const p = (await (await get(`/library/photos/${photos.photos[0].id}`)).json()) as Json;
    assert.equal(p.faces.length, 1);
    assert.deepEqual(p.faces[0].box, { x: 0, y: 0, width: 80, height: 96 });
    const thumb = await get(`/library/faces/${p.faces[0].id}/thumbnail?size=64`);
    assert.equal(thumb.headers.get('content-type'), 'image/jpeg');
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    assert.deepEqual([meta.width, meta.height, meta.format], [64, 64, 'jpeg']);
    const img = await get(`/library/photos/${p.id}/image?size=48`);
    const m2 = await sharp(Buffer.from(await img.arrayBuffer())).metadata();
    assert.equal(m2.height, 48);
    // Errors: the service's shape and status.
    let r = await get('/library/clusters/9999');
    assert.equal(r.status, 404);
    assert.equal((await r.json() as Json).error.code, 'UnknownCluster');
    r = await get('/library/clusters/abc');
    assert.equal(r.status, 400);
    r = await get('/library/faces/9999/thumbnail');
    assert.equal(r.status, 404);
    r = await get('/library/photos?limit=5000');
    assert.equal(r.status, 400);
  });

  it('name, identify every face of an upload, merge, split, remove, recluster', async () => {
    const c = ((await (await get('/library/clusters')).json()) as Json).clusters;
    const [x, y, z] = c.map((q: { id: number }) => q.id);
    let r = await post(`/library/clusters/${x}/name`, { name: 'Ada' });
    assert.equal(r.status, 200);
    assert.deepEqual((await r.json()) as Json, { id: x, name: 'Ada', faces: 3 });
    assert.equal(((await (await get('/people/Ada')).json()) as Json).embeddings, 3);
    r = await post(`/library/clusters/${x}/name`, { name: '' });
    assert.equal(r.status, 400);
    // Upload a new photo of the person behind cluster x: identified as Ada, with its box.
    const one = (await (await get(`/library/clusters/${x}`)).json()) as Json;
    const letter = path.basename(one.faces[0].file)[0] as 'a' | 'b' | 'c';
    const form = new FormData();
    form.append('image', new Blob([await photo(letter, 999)]), 'new.jpg');
    r = await fetch(base + '/library/identify', { method: 'POST', headers: H, body: form });
    assert.equal(r.status, 200);
    const found = (await r.json()) as Json;
    assert.equal(found.faces.length, 1);
    assert.equal(found.faces[0].id, 'Ada');
    assert.equal(found.faces[0].reason, 'match');
    assert.deepEqual(found.faces[0].box, { x: 0, y: 0, width: 80, height: 96 });
    assert.deepEqual([found.width, found.height], [80, 96]);
    // Verify two photos side by side: distance and threshold (PixelFaceModel has no calibration: no far).
    const vf = new FormData();
    vf.append('a', new Blob([await photo('a', 1)]), 'a.jpg');
    vf.append('b', new Blob([await photo('b', 2)]), 'b.jpg');
    const v = (await (await fetch(base + '/verify', { method: 'POST', headers: H, body: vf })).json()) as Json;
    assert.equal(v.same, false);
    assert.ok(v.distance > 0.5);
    // Merge y into x, split it out again, remove z.
    r = await post(`/library/clusters/${x}/merge`, { from: [y] });
    assert.deepEqual((await r.json()) as Json, { id: x, name: 'Ada', faces: 6 });
    const merged = (await (await get(`/library/clusters/${x}`)).json()) as Json;
    const ys = merged.faces.filter((f: { file: string }) => path.basename(f.file)[0] !== letter).map((f: { id: number }) => f.id);
    r = await post(`/library/clusters/${x}/split`, { faces: ys });
    assert.equal(r.status, 201);
    const split = (await r.json()) as Json;
    assert.equal(split.faces, 3);
    r = await post(`/library/clusters/${z}`, undefined, 'DELETE');
    assert.deepEqual((await r.json()) as Json, { removed: z });
    r = await post('/library/cluster', {});
    const s = (await r.json()) as Json;
    assert.equal(s.clusters, 2);
    const after = ((await (await get('/library/clusters')).json()) as Json).clusters;
    assert.deepEqual(after.map((q: { id: number; name: string | null; faces: number }) => [q.id, q.name, q.faces]), [
      [x, 'Ada', 3],
      [split.id, null, 3],
    ]);
    r = await post(`/library/clusters/${x}/name`, undefined, 'DELETE');
    assert.equal((await r.json() as Json).name, null);
    assert.equal((await get('/people/Ada')).status, 404);
    r = await post('/library/cluster', { algorithm: 'kmeans' });
    assert.equal(r.status, 400);
  });

  it('POST /verify of two photos reports the estimated false-accept rate for a calibrated model', async () => {
    // PixelFaceModel with a made-up calibration table: far(d) interpolates it.
    class Calibrated extends PixelFaceModel {
      operatingPoints() {
        return { impostorCdf: [[0.2, 1e-4], [0.6, 1e-2], [1.5, 1]] } as unknown as ReturnType<NonNullable<import('../../lib').FaceModelLike['operatingPoints']>>;
      }
    }
    const g = await FaceGallery.open(':memory:', { model: new Calibrated() });
    const other = createServer({ gallery: g });
    const b = await other.listen({ port: 0, host: '127.0.0.1' });
    try {
      const vf = new FormData();
      vf.append('a', new Blob([await photo('a', 1)]), 'a.jpg');
      vf.append('b', new Blob([await photo('a', 2)]), 'b.jpg');
      const v = (await (await fetch(b + '/verify', { method: 'POST', body: vf })).json()) as Json;
      assert.equal(v.same, true);
      assert.ok(v.distance < 0.2, String(v.distance));
      assert.ok(v.far > 0 && v.far < 1e-4, String(v.far));
    } finally {
      await other.close();
      await g.close();
    }
  });

  it('--no-ui (ui: false): no page, the JSON API and the description stay', async () => {
    const other = createServer({ gallery, apiKey: key, ui: false });
    const b = await other.listen({ port: 0, host: '127.0.0.1' });
    try {
      assert.equal((await fetch(b + '/ui/')).status, 401); // no such route: like any unknown route, the key comes first
      assert.equal((await fetch(b + '/ui/', { headers: H })).status, 404);
      assert.equal((await fetch(b + '/library', { headers: H })).status, 200);
      assert.equal((await fetch(b + '/docs/openapi.json')).status, 200);
    } finally {
      await other.close();
    }
  });
});
