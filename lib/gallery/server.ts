// The HTTP service over a gallery (Fastify): verify, identify, enroll, list,
// delete and health. Images come as multipart files or base64 strings in JSON;
// request bodies, file counts and image pixels are limited before any decoding;
// every request schema is a zod schema; errors are JSON with a status from the
// error's type. Optional API key in the `x-api-key` header (not for /health).
import * as crypto from 'crypto';
import { monitorEventLoopDelay } from 'perf_hooks';
import multipart from '@fastify/multipart';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { z } from 'zod';
import { ArgumentError, FileFormatError, ImageError, ModelMismatchError, NoFaceError, TorchfaceError, fromZod, parseOptions } from '../errors';
import { DuplicateIdError, GalleryBase, UnknownIdError, checkId } from './gallery';

export interface ServerOptions {
  gallery: GalleryBase;
  /** Required in `x-api-key` on every route but /health when set. */
  apiKey?: string;
  /** Largest request body in bytes (JSON or multipart, all images together). Default 16 MiB. */
  bodyLimit?: number;
  /** Largest image in pixels (width x height). Default 25 megapixels. */
  maxPixels?: number;
  /** Most images per request. Default 10. */
  maxImages?: number;
  /** Fastify logger (default off). */
  logger?: boolean;
}

const serverOptions = z
  .object({
    gallery: z.instanceof(GalleryBase as unknown as new () => GalleryBase),
    apiKey: z.string().min(1).optional(),
    bodyLimit: z.number().int().positive().default(16 * 1024 * 1024),
    maxPixels: z.number().int().positive().default(25_000_000),
    maxImages: z.number().int().min(2).max(100).default(10),
    logger: z.boolean().default(false),
  })
  .strict();

/** An error with an HTTP status (413 for limits, 401 for the key, ...). */
class HttpError extends TorchfaceError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// Multipart fields arrive as strings: accept "true"/"false" and numbers as text.
const bool = z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());
const num = z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), z.number());
const json = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}, z.record(z.unknown()));
const base64 = z.string().min(1);

const common = { image: base64.optional(), images: z.array(base64).optional(), detect: bool.optional() };
const enrollBody = z.object({ ...common, id: z.string(), metadata: json.optional(), append: bool.optional() }).strict();
const identifyBody = z.object({ ...common, k: num.pipe(z.number().int().min(1).max(100)).optional(), threshold: num.pipe(z.number().positive()).optional() }).strict();
const verifyBody = z.object({ ...common, image2: base64.optional(), id: z.string().optional(), threshold: num.pipe(z.number().positive()).optional() }).strict();

const B64_RE = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;
function decodeBase64(s: string, where: string): Buffer {
  const body = s.replace(/^data:[\w/+.-]+;base64,/, '');
  if (!B64_RE.test(body)) throw new ArgumentError(where, 'a base64-encoded image', 'text that is not base64');
  return Buffer.from(body, 'base64');
}

interface Parsed {
  fields: Record<string, unknown>;
  images: Buffer[];
}

function statusOf(e: unknown): { status: number; code: string; message: string } {
  const err = e as Error & { statusCode?: number; code?: string };
  if (e instanceof HttpError) return { status: e.status, code: e.code, message: e.message };
  if (e instanceof ArgumentError || e instanceof z.ZodError) return { status: 400, code: 'BadRequest', message: err.message };
  if (e instanceof UnknownIdError) return { status: 404, code: 'UnknownId', message: err.message };
  if (e instanceof DuplicateIdError) return { status: 409, code: 'DuplicateId', message: err.message };
  if (e instanceof NoFaceError) return { status: 422, code: 'NoFace', message: err.message };
  if (e instanceof ImageError) return { status: /pixel limit|above the limit/.test(err.message) ? 413 : 422, code: 'BadImage', message: err.message };
  if (e instanceof ModelMismatchError || e instanceof FileFormatError) return { status: 422, code: err.name, message: err.message };
  // Fastify / multipart errors carry their own status (400 bad JSON, 413 limits, 415 media type, 406 not multipart).
  if (typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return { status: err.statusCode === 406 ? 415 : err.statusCode, code: err.code ?? 'BadRequest', message: err.message };
  }
  return { status: 500, code: 'Internal', message: 'internal error' };
}

/**
 * Builds the service (not yet listening): `const app = createServer({ gallery });
 * await app.listen({ port: 8080, host: '127.0.0.1' })`.
 */
export function createServer(options: ServerOptions): FastifyInstance {
  const o = parseOptions(serverOptions, options);
  const gallery = o.gallery;
  const app = Fastify({ logger: o.logger, bodyLimit: o.bodyLimit });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  app.addHook('onClose', async () => loop.disable());

  void app.register(multipart, {
    limits: { fileSize: o.bodyLimit, files: o.maxImages, fields: 20, fieldSize: 256 * 1024, parts: o.maxImages + 20 },
  });

  const keyHash = o.apiKey ? crypto.createHash('sha256').update(o.apiKey).digest() : null;
  app.addHook('onRequest', async (req) => {
    if (!keyHash || req.url === '/health') return;
    const given = req.headers['x-api-key'];
    const ok = typeof given === 'string' && crypto.timingSafeEqual(crypto.createHash('sha256').update(given).digest(), keyHash);
    if (!ok) throw new HttpError(401, 'Unauthorized', 'missing or wrong x-api-key');
  });

  app.setErrorHandler((error, req, reply) => {
    const { status, code, message } = statusOf(error);
    if (status >= 500) req.log.error(error);
    void reply.status(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'NotFound', message: `no route ${req.method} ${req.url}` } });
  });

  async function parse(req: FastifyRequest): Promise<Parsed> {
    const fields: Record<string, unknown> = {};
    const images: Buffer[] = [];
    if (req.isMultipart()) {
      let total = 0;
      for await (const part of req.parts()) {
        if (part.type === 'file') {
          const buf = await part.toBuffer();
          total += buf.length;
          if (total > o.bodyLimit) throw new HttpError(413, 'PayloadTooLarge', `images total more than ${o.bodyLimit} bytes`);
          images.push(buf);
        } else {
          fields[part.fieldname] = part.value;
        }
      }
      return { fields, images };
    }
    const body = req.body;
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) throw new ArgumentError('body', 'a JSON object or multipart/form-data', body);
    Object.assign(fields, body);
    return { fields, images };
  }

  /** The request's images: multipart files, then base64 `image`, `images[]`, `image2`. */
  async function imagesOf(p: Parsed, f: { image?: string; images?: string[]; image2?: string }): Promise<Buffer[]> {
    const out = [...p.images];
    if (f.image) out.push(decodeBase64(f.image, 'image'));
    f.images?.forEach((s, i) => out.push(decodeBase64(s, `images[${i}]`)));
    if (f.image2) out.push(decodeBase64(f.image2, 'image2'));
    if (out.length > o.maxImages) throw new HttpError(413, 'TooManyImages', `at most ${o.maxImages} images per request`);
    for (const [i, b] of out.entries()) {
      if (b.length === 0) throw new ImageError(`image ${i} is empty`);
      let meta: sharp.Metadata;
      try {
        meta = await sharp(b).metadata();
      } catch (e) {
        throw new ImageError(`image ${i} could not be decoded: ${(e as Error).message}`);
      }
      const px = (meta.width ?? 0) * (meta.height ?? 0);
      if (px > o.maxPixels) throw new HttpError(413, 'TooManyPixels', `image ${i} has ${meta.width} x ${meta.height} pixels, above the limit of ${o.maxPixels}`);
    }
    return out;
  }

  function fieldsOf<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, p: Parsed): T {
    const r = schema.safeParse(p.fields);
    if (!r.success) throw fromZod(r.error, 'body');
    return r.data;
  }

  app.get('/health', async () => {
    const counts = await gallery.counts();
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    return {
      status: 'ok',
      ...counts,
      model: gallery.modelIdentity,
      rssBytes: process.memoryUsage().rss,
      eventLoopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
    };
  });

  app.get('/people', async () => ({ people: await gallery.list() }));

  app.get('/people/:id', async (req) => {
    const id = checkId((req.params as { id: string }).id);
    const p = await gallery.get(id);
    if (!p) throw new UnknownIdError(id);
    return p;
  });

  app.delete('/people/:id', async (req) => {
    const id = checkId((req.params as { id: string }).id);
    await gallery.remove(id);
    return { removed: id };
  });

  app.post('/enroll', async (req, reply: FastifyReply) => {
    const p = await parse(req);
    const f = fieldsOf(enrollBody, p);
    checkId(f.id);
    const images = await imagesOf(p, f);
    if (images.length === 0) throw new ArgumentError('images', 'at least one image', 'none');
    const person = await gallery.enroll(f.id, images, { metadata: f.metadata, append: f.append ?? false, detect: f.detect ?? true });
    return reply.status(201).send(person);
  });

  app.post('/identify', async (req) => {
    const p = await parse(req);
    const f = fieldsOf(identifyBody, p);
    const images = await imagesOf(p, f);
    if (images.length !== 1) throw new ArgumentError('image', 'exactly one image', `${images.length} images`);
    const r = await gallery.identify(images[0], { k: f.k ?? 5, threshold: f.threshold, detect: f.detect ?? true });
    return { ...r, distance: Number.isFinite(r.distance) ? r.distance : null };
  });

  app.post('/verify', async (req) => {
    const p = await parse(req);
    const f = fieldsOf(verifyBody, p);
    const images = await imagesOf(p, f);
    const opts = { threshold: f.threshold, detect: f.detect ?? true };
    if (f.id !== undefined) {
      if (images.length !== 1) throw new ArgumentError('image', 'exactly one image with an id', `${images.length} images`);
      return gallery.verify(images[0], checkId(f.id), opts);
    }
    if (images.length !== 2) throw new ArgumentError('images', 'two images, or one image and an id', `${images.length} images`);
    return gallery.compare(images[0], images[1], opts);
  });

  return app;
}
