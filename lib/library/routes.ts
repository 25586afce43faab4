// The photo library's HTTP routes (registered by lib/gallery/server.ts when the
// gallery is a FaceGallery), the web page's static files (lib/library/ui/) and
// the OpenAPI description at /docs/openapi.json. Every /library route needs the
// API key like the rest of the service; the page itself and the description
// hold no data and are served without it (the page asks for the key).
import * as fs from 'fs';
import * as path from 'path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { z } from 'zod';
import { ArgumentError, fromZod } from '../core/errors';
import type { RawImage } from '../image';
import { packageRoot } from '../util/paths';
import type { FaceGallery } from '../gallery/sqlite/gallery';
import { UnknownClusterError } from './library';
import type { FaceRecord } from './store';
import { openApiDocument } from './openapi';
import { faceThumbnail, fileBytes } from './thumbnail';

/** Where the page's files are (read from the package, like the calibration tables). */
export const UI_DIR = path.join(packageRoot, 'lib', 'library', 'ui');
const UI_FILES: Record<string, string> = { 'index.html': 'text/html; charset=utf-8', 'app.js': 'text/javascript; charset=utf-8', 'style.css': 'text/css; charset=utf-8' };
/** Routes served without the API key. */
export const PUBLIC_ROUTES = new Set(['/', '/ui/', '/ui/:file', '/docs/openapi.json']);

interface Parsed {
  fields: Record<string, unknown>;
  images: Buffer[];
}
export interface LibraryRouteDeps {
  gallery: FaceGallery;
  ui: boolean;
  parse(req: FastifyRequest): Promise<Parsed>;
  imagesOf(p: Parsed, f: { image?: string }): Promise<RawImage[]>;
  withSlot<T>(handler: (req: FastifyRequest, reply: FastifyReply) => Promise<T>): (req: FastifyRequest, reply: FastifyReply) => Promise<T>;
}

const idParam = z.object({ id: z.coerce.number().int().positive() });
const nameBody = z.object({ name: z.string() }).strict();
const mergeBody = z.object({ from: z.array(z.number().int().positive()).min(1).max(1000) }).strict();
const splitBody = z.object({ faces: z.array(z.number().int().positive()).min(1).max(10000) }).strict();
const moveBody = z.object({ cluster: z.number().int().positive().nullable() }).strict();
const clusterBody = z
  .object({ algorithm: z.enum(['chinese-whispers', 'dbscan', 'agglomerative']).optional(), threshold: z.number().positive().max(2).optional(), reset: z.boolean().optional() })
  .strict();
const listQuery = z.object({ cluster: z.coerce.number().int().positive().optional(), offset: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(1000).default(200) }).strict();
const sizeQuery = z.object({ size: z.coerce.number().int().min(16).max(2048).optional() }).strict();
const identifyBody = z.object({ image: z.string().min(1).optional(), k: z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), z.number().int().min(1).max(20)).optional() }).strict();

function parseWith<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown, root: string): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw fromZod(r.error, root, value ?? {});
  return r.data;
}

/** A face as the API shows it (landmarks left out: GET /library/faces/:id has them). */
function faceJson(f: FaceRecord, withLandmarks = false) {
  const { landmarks, ...rest } = f;
  return withLandmarks ? f : rest;
}

export function registerLibraryRoutes(app: FastifyInstance, deps: LibraryRouteDeps): void {
  const { gallery } = deps;
  const lib = () => gallery.library;

  if (deps.ui) {
    app.get('/', async (_req, reply) => reply.redirect('/ui/'));
    const serve = async (name: string, reply: FastifyReply) => {
      const type = UI_FILES[name];
      if (!type) return reply.status(404).send({ error: { code: 'NotFound', message: `no file /ui/${name.slice(0, 100)}` } });
      const body = await fs.promises.readFile(path.join(UI_DIR, name));
      return reply.type(type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(body);
    };
    app.get('/ui/', async (_req, reply) =>
      serve('index.html', reply.header('content-security-policy', "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")),
    );
    app.get('/ui/:file', async (req, reply) => serve((req.params as { file: string }).file, reply));
  }
  app.get('/docs/openapi.json', async () => openApiDocument());

  app.get('/library', async () => lib().counts());

  app.get('/library/clusters', async () => {
    const { clusters, unclustered } = lib().clusters();
    return {
      clusters: clusters.map((c) => ({ id: c.id, name: c.name, faces: c.faces.length, sample: c.faces.slice(0, 12).map((f) => f.id), photos: new Set(c.faces.map((f) => f.photoId)).size })),
      unclustered: unclustered.length,
      unclusteredSample: unclustered.slice(0, 48).map((f) => f.id),
    };
  });
  app.get('/library/clusters/:id', async (req) => {
    const { id } = parseWith(idParam, req.params, 'params');
    const c = lib().cluster1(id);
    return { id: c.id, name: c.name, faces: c.faces.map((f) => faceJson(f)) };
  });
  app.post('/library/cluster', async (req) => {
    const o = parseWith(clusterBody, req.body ?? {}, 'body');
    return lib().cluster(o);
  });
  app.post('/library/clusters/:id/name', async (req) => {
    const { id } = parseWith(idParam, req.params, 'params');
    const { name } = parseWith(nameBody, req.body, 'body');
    const c = await lib().name(id, name);
    return { id: c.id, name: c.name, faces: c.faces.length };
  });
  app.delete('/library/clusters/:id/name', async (req) => {
    const { id } = parseWith(idParam, req.params, 'params');
    const c = await lib().unname(id);
    return { id: c.id, name: c.name, faces: c.faces.length };
  });
  app.post('/library/clusters/:id/merge', async (req) => {
    const { id } = parseWith(idParam, req.params, 'params');
    const { from } = parseWith(mergeBody, req.body, 'body');
    const c = await lib().merge(id, from);
    return { id: c.id, name: c.name, faces: c.faces.length };
  });
  app.post('/library/clusters/:id/split', async (req, reply) => {
    const { id } = parseWith(idParam, req.params, 'params');
    const { faces } = parseWith(splitBody, req.body, 'body');
    const c = await lib().split(id, faces);
    return reply.status(201).send({ id: c.id, name: c.name, faces: c.faces.length });
  });
  app.delete('/library/clusters/:id', async (req) => {
    const { id } = parseWith(idParam, req.params, 'params');
    await lib().removeCluster(id);
    return { removed: id };
  });

  app.get('/library/photos', async (req) => {
    const q = parseWith(listQuery, req.query, 'query');
    if (q.cluster !== undefined && !lib().store.cluster(q.cluster)) throw new UnknownClusterError(q.cluster);
    return { photos: lib().photos(q).map((p) => ({ id: p.id, file: p.path, name: path.basename(p.path), width: p.width, height: p.height, faces: p.faces })), total: lib().counts().photos };
  });
  app.get('/library/photos/:id', async (req, reply) => {
    const { id } = parseWith(idParam, req.params, 'params');
    const p = lib().photo(id);
    if (!p) return reply.status(404).send({ error: { code: 'UnknownPhoto', message: `photo ${id} is not in this library` } });
    return { id: p.id, file: p.path, name: path.basename(p.path), width: p.width, height: p.height, faces: p.faceList.map((f) => faceJson(f)) };
  });
  app.get('/library/photos/:id/image', async (req, reply) => {
    const { id } = parseWith(idParam, req.params, 'params');
    const { size } = parseWith(sizeQuery, req.query, 'query');
    const p = lib().store.photo(id);
    if (!p) return reply.status(404).send({ error: { code: 'UnknownPhoto', message: `photo ${id} is not in this library` } });
    const jpeg = await sharp(await fileBytes(p.path), { failOn: 'none' })
      .rotate()
      .resize({ width: size ?? 1280, height: size ?? 1280, fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 85 })
      .toBuffer();
    return reply.type('image/jpeg').header('cache-control', 'private, max-age=300').send(jpeg);
  });
  app.get('/library/faces/:id', async (req, reply) => {
    const { id } = parseWith(idParam, req.params, 'params');
    const f = lib().face(id);
    if (!f) return reply.status(404).send({ error: { code: 'UnknownFace', message: `face ${id} is not in this library` } });
    return faceJson(f, true);
  });
  app.get('/library/faces/:id/thumbnail', async (req, reply) => {
    const { id } = parseWith(idParam, req.params, 'params');
    const { size } = parseWith(sizeQuery, req.query, 'query');
    const f = lib().face(id);
    if (!f) return reply.status(404).send({ error: { code: 'UnknownFace', message: `face ${id} is not in this library` } });
    return reply.type('image/jpeg').header('cache-control', 'private, max-age=300').send(await faceThumbnail(f, lib().store.photo(f.photoId)!, size ?? 112));
  });
  app.post('/library/faces/:id/move', async (req) => {
    const { id } = parseWith(idParam, req.params, 'params');
    const { cluster } = parseWith(moveBody, req.body, 'body');
    return faceJson(await lib().moveFace(id, cluster));
  });

  // Every face of an uploaded photo, identified: boxes and names for the photo view.
  app.post(
    '/library/identify',
    deps.withSlot(async (req) => {
      const p = await deps.parse(req);
      const f = parseWith(identifyBody, p.fields, 'body');
      const imgs = await deps.imagesOf(p, f);
      if (imgs.length !== 1) throw new ArgumentError('image', 'exactly one image', `${imgs.length} images`);
      const r = await gallery.identifyFaces(imgs[0], { k: f.k ?? 3 });
      return {
        width: r.width,
        height: r.height,
        faces: r.faces.map((x) => ({ ...x, distance: Number.isFinite(x.distance) ? x.distance : null })),
      };
    }),
  );
}
