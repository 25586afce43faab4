// The HTTP service over a gallery (Fastify): verify, identify, enroll, list,
// delete and health. Images come as multipart files or base64 strings in JSON;
// request bodies, file counts and image pixels (per image and per request) are
// limited before any decoding; photos are shrunk (longest side <= maxSide)
// before the model sees them; image requests are limited in flight (beyond:
// 503 + Retry-After); every request must arrive within requestTimeout. Every
// request schema is a zod schema; every error, whatever its status and
// whoever raises it (a route, Fastify, the router, Node's HTTP parser), is
// JSON `{ error: { code, message } }` with a status chosen from the error's
// class / code. Optional API key in the `x-api-key` header (/health answers a
// bare liveness check without it).
import * as crypto from 'crypto';
import * as http from 'http';
import type { Socket } from 'net';
import { monitorEventLoopDelay } from 'perf_hooks';
import multipart from '@fastify/multipart';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import sharp from 'sharp';
import { z } from 'zod';
import { ArgumentError, ImageError, TorchfaceError, fromZod, parseOptions } from '../core/errors';
import { decodeShrunk, type RawImage } from '../image';
import { releaseMemory } from '../core';
import { GalleryBase, MAX_ID_LENGTH, MAX_METADATA_DEPTH, UnknownIdError, checkId, jsonDepthWithin } from './gallery';
import { FaceGallery } from './sqlite/gallery';
import { PUBLIC_ROUTES, registerLibraryRoutes } from '../library/routes';
import { openApiDocument } from '../library/openapi';

export interface ServerOptions {
  gallery: GalleryBase;
  /** Required in `x-api-key` on every route but /health when set. */
  apiKey?: string;
  /** Largest request body in bytes (JSON or multipart, all images together). Default 16 MiB. */
  bodyLimit?: number;
  /** Largest image in pixels (width x height). Default 25 megapixels. */
  maxPixels?: number;
  /**
   * Most pixels per request, all images together (413 beyond), checked from
   * the image headers before anything is decoded. Default 50 megapixels.
   */
  maxRequestPixels?: number;
  /** Most images per request. Default 10. */
  maxImages?: number;
  /** Photos are shrunk so that their longest side is at most this before the model sees them. Default 1600. */
  maxSide?: number;
  /** Image requests (enroll, identify, verify) processed at once. Default 4. */
  maxInFlight?: number;
  /**
   * Image requests that may wait for a slot, their bodies unread; beyond that,
   * 503 with Retry-After. A wait counts against requestTimeout. Default 32.
   */
  maxQueued?: number;
  /** Seconds in the Retry-After header of a 503. Default 1. */
  retryAfter?: number;
  /** Milliseconds to receive a whole request, headers and body (408 and the connection closed beyond). Default 30000; 0 for none. */
  requestTimeout?: number;
  /** Milliseconds a connection may be idle before it is closed. Default 120000; 0 for none. */
  connectionTimeout?: number;
  /**
   * Threshold policy: a client's `threshold` may be stricter (smaller) than
   * the gallery's but not looser (400), since a huge threshold makes anyone
   * "the same person". true lets clients loosen it. Default false.
   */
  allowLooserThreshold?: boolean;
  /** Fastify logger: false (default), true, or pino options such as `{ level: 'warn' }`. 500s are logged with their stack. */
  logger?: FastifyServerOptions['logger'];
  /**
   * Serve the web page at /ui/ (people, photos, identify / enrol, verify): a
   * FaceGallery's photo library. Default true; false (`--no-ui`) leaves the JSON API only.
   */
  ui?: boolean;
}

const serverOptions = z
  .object({
    gallery: z.instanceof(GalleryBase as unknown as new () => GalleryBase),
    apiKey: z.string().min(1).optional(),
    bodyLimit: z.number().int().positive().default(16 * 1024 * 1024),
    maxPixels: z.number().int().positive().default(25_000_000),
    maxRequestPixels: z.number().int().positive().default(50_000_000),
    maxImages: z.number().int().min(2).max(100).default(10),
    maxSide: z.number().int().min(64).default(1600),
    maxInFlight: z.number().int().positive().default(4),
    maxQueued: z.number().int().min(0).default(32),
    retryAfter: z.number().int().positive().default(1),
    requestTimeout: z.number().int().min(0).default(30_000),
    connectionTimeout: z.number().int().min(0).default(120_000),
    allowLooserThreshold: z.boolean().default(false),
    logger: z.union([z.boolean(), z.object({}).passthrough()]).default(false),
    ui: z.boolean().default(true),
  })
  .strict();

/**
 * An error the service itself raises with its HTTP status and service code
 * (401 for the key, 413 for its limits, 503 when busy, 400 for a malformed
 * body). It never leaves the service: the error handler turns it into a reply.
 */
class HttpError extends TorchfaceError {
  override readonly code: string = 'ERR_HTTP';
  constructor(
    readonly status: number,
    readonly serviceCode: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** Status and service code of each TorchfaceError code (the service codes are part of the API). */
const BY_CODE: Record<string, [number, string]> = {
  ERR_ARGUMENT: [400, 'BadRequest'],
  ERR_UNKNOWN_ID: [404, 'UnknownId'],
  ERR_DUPLICATE_ID: [409, 'DuplicateId'],
  ERR_NO_FACE: [422, 'NoFace'],
  ERR_IMAGE: [422, 'BadImage'],
  ERR_MODEL_MISMATCH: [422, 'ModelMismatchError'],
  ERR_FILE_FORMAT: [422, 'FileFormatError'],
  ERR_FACE_QUALITY: [422, 'FaceQuality'],
  ERR_UNKNOWN_CLUSTER: [404, 'UnknownCluster'],
  ERR_UNKNOWN_FACE: [404, 'UnknownFace'],
  ERR_FILE_ACCESS: [404, 'FileAccess'],
};

// Multipart fields arrive as strings: accept "true"/"false" and numbers as text.
const bool = z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());
const num = z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), z.number());
// A multipart field of JSON text (or a JSON value already), at most MAX_METADATA_DEPTH deep.
const json = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}, z.record(z.unknown()).refine((m) => jsonDepthWithin(m, MAX_METADATA_DEPTH), { message: `Expected metadata at most ${MAX_METADATA_DEPTH} levels deep` }));
const base64 = z.string().min(1);
const threshold = num.pipe(z.number().positive().finite());

const common = { image: base64.optional(), images: z.array(base64).optional(), detect: bool.optional() };
const enrollBody = z.object({ ...common, id: z.string(), metadata: json.optional(), append: bool.optional(), force: bool.optional() }).strict();
const identifyBody = z.object({ ...common, k: num.pipe(z.number().int().min(1).max(100)).optional(), threshold: threshold.optional() }).strict();
const verifyBody = z.object({ ...common, image2: base64.optional(), id: z.string().optional(), threshold: threshold.optional() }).strict();

/**
 * Is s[from..] base64: the 64 letters, whitespace anywhere (MIME line breaks),
 * then at most two '=' and whitespace? One pass over the characters, no regex:
 * a regex such as /^[A-Za-z0-9+/\s]*={0,2}\s*$/ backtracks quadratically on
 * a long run of whitespace followed by a bad character (100 KB of spaces + '!'
 * froze the event loop for 12 s).
 */
export function isBase64(s: string, from = 0): boolean {
  let pad = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) continue;
    if (c === 0x3d) {
      if (++pad > 2) return false;
      continue;
    }
    if (pad > 0) return false; // data after padding
    if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f) continue;
    return false;
  }
  return true;
}

const DATA_URL = /^data:[\w/+.-]{1,100};base64$/;
function decodeBase64(s: string, where: string): Buffer {
  let from = 0;
  if (s.startsWith('data:')) {
    const comma = s.indexOf(',', 0);
    if (comma > 0 && comma <= 120 && DATA_URL.test(s.slice(0, comma))) from = comma + 1;
  }
  if (!isBase64(s, from)) throw new ArgumentError(where, 'a base64-encoded image', 'text that is not base64');
  return Buffer.from(from ? s.slice(from) : s, 'base64');
}

interface Parsed {
  fields: Record<string, unknown>;
  images: Buffer[];
}

/**
 * The status, service code and message of an error: from its class / `code`
 * (never from its message). Fastify's and @fastify/multipart's errors carry
 * their own 4xx status (400 bad JSON, 413 limits, 414 a too-long URL
 * parameter, 415 media type; 406 "not multipart" is answered 415). Anything
 * else is a 500 that says nothing about the internals (and is logged).
 */
export function statusOf(e: unknown): { status: number; code: string; message: string } {
  const err = e as Error & { statusCode?: number; code?: string };
  if (e instanceof HttpError) return { status: e.status, code: e.serviceCode, message: e.message };
  if (e instanceof z.ZodError) return { status: 400, code: 'BadRequest', message: e.message };
  if (e instanceof TorchfaceError) {
    const known = BY_CODE[e.code];
    if (known) return { status: known[0], code: known[1], message: e.message };
    return { status: 500, code: 'Internal', message: 'internal error' };
  }
  if (typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return { status: err.statusCode === 406 ? 415 : err.statusCode, code: typeof err.code === 'string' ? err.code : 'BadRequest', message: String(err.message) };
  }
  return { status: 500, code: 'Internal', message: 'internal error' };
}

function errorJson(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/**
 * Slots for image requests: `max` run at once, up to `maxQueued` wait (in
 * order) for one; beyond that acquire() refuses (the caller answers 503).
 */
class Slots {
  active = 0;
  private queue: { grant: () => void }[] = [];
  constructor(
    readonly max: number,
    readonly maxQueued: number,
  ) {}
  get queued(): number {
    return this.queue.length;
  }
  /** Resolves when a slot is held; null when full. `gone` rejects a queued wait (the client left). */
  acquire(onGone: (cancel: () => void) => void): Promise<void> | null {
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve();
    }
    if (this.queue.length >= this.maxQueued) return null;
    return new Promise<void>((resolve, reject) => {
      const w = { grant: resolve };
      this.queue.push(w);
      onGone(() => {
        const i = this.queue.indexOf(w);
        if (i >= 0) {
          this.queue.splice(i, 1);
          reject(new HttpError(499, 'ClientGone', 'the client closed the connection while waiting'));
        }
      });
    });
  }
  release(): void {
    const next = this.queue.shift();
    if (next) next.grant(); // the slot passes on: active stays
    else if (--this.active === 0) this.idle();
  }
  /** Once no image request has run for a second, freed memory goes back to the OS (after a burst RSS falls). */
  private trim: NodeJS.Timeout | null = null;
  private idle(): void {
    if (this.trim) clearTimeout(this.trim);
    this.trim = setTimeout(() => {
      this.trim = null;
      if (this.active === 0) releaseMemory();
    }, 1000);
    this.trim.unref();
  }
}

/** A request's slot: released once, when its handler ends, or when it ends without reaching the handler. */
interface Slot {
  handling: boolean;
  release: () => void;
}
const slotOf = new WeakMap<FastifyRequest, Slot>();
/** The routes that decode images (and take a slot). */
const IMAGE_ROUTES = new Set(['/enroll', '/identify', '/verify', '/library/identify']);

/** The answer to an error Node's HTTP parser or its timeouts raise before Fastify sees a request. */
function clientError(err: NodeJS.ErrnoException, socket: Socket, requestTimeout: number): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'RequestTimeout', `the request was not received within ${requestTimeout} ms`]
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'HeadersTooLarge', 'the request headers are too large']
        : [400, 'BadRequest', 'malformed HTTP request'];
  const body = errorJson(code, message);
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

/**
 * Builds the service (not yet listening): `const app = createServer({ gallery });
 * await app.listen({ port: 8080, host: '127.0.0.1' })`.
 */
export function createServer(options: ServerOptions): FastifyInstance {
  const o = parseOptions(serverOptions, options);
  const gallery = o.gallery;
  const httpOptions: http.ServerOptions = {};
  if (o.requestTimeout > 0) {
    // Node checks the request timeout every connectionsCheckingInterval (30 s by default): check often enough.
    httpOptions.requestTimeout = o.requestTimeout;
    httpOptions.headersTimeout = Math.min(60_000, o.requestTimeout);
    httpOptions.connectionsCheckingInterval = Math.max(100, Math.min(30_000, Math.floor(o.requestTimeout / 4)));
  }
  const app = Fastify({
    logger: o.logger as FastifyServerOptions['logger'],
    bodyLimit: o.bodyLimit,
    requestTimeout: o.requestTimeout,
    connectionTimeout: o.connectionTimeout,
    http: httpOptions,
    // Every id checkId() accepts must reach the route: MAX_ID_LENGTH UTF-16 units, each
    // at most 9 characters percent-encoded (a 3-byte UTF-8 character). Longer ones are a
    // 414 from the router; ids between are a 400 from checkId().
    routerOptions: { maxParamLength: MAX_ID_LENGTH * 9 },
    clientErrorHandler: (err, socket) => clientError(err, socket, o.requestTimeout),
    // Errors of the router (a bad URL encoding, a too-long parameter): the same shape.
    frameworkErrors: (error, _req, reply) => {
      const { status, code, message } = statusOf(error);
      void (reply as unknown as FastifyReply).status(status).send({ error: { code, message } });
    },
  });
  // Each sample is a whole sampling interval, the resolution included: at 10 ms an idle
  // process read p50 10.1 and p99 16.9 ms on this 2-core host. At 1 ms what /health reports
  // is the loop's delay plus about 1 ms.
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  app.addHook('onClose', async () => loop.disable());
  const slots = new Slots(o.maxInFlight, o.maxQueued);

  void app.register(multipart, {
    limits: { fileSize: o.bodyLimit, files: o.maxImages, fields: 20, fieldSize: 256 * 1024, parts: o.maxImages + 20 },
  });

  const keyHash = o.apiKey ? crypto.createHash('sha256').update(o.apiKey).digest() : null;
  const keyOk = (req: FastifyRequest): boolean => {
    if (!keyHash) return true;
    const given = req.headers['x-api-key'];
    return typeof given === 'string' && crypto.timingSafeEqual(crypto.createHash('sha256').update(given).digest(), keyHash);
  };
  app.addHook('onRequest', async (req) => {
    const route = req.routeOptions;
    if (route.url !== '/health' && !PUBLIC_ROUTES.has(route.url ?? '') && !keyOk(req)) throw new HttpError(401, 'Unauthorized', 'missing or wrong x-api-key');
    if (req.method !== 'POST' || !IMAGE_ROUTES.has(route.url ?? '')) return;
    // An image request takes a slot before its body is read, so that at most maxInFlight
    // bodies and their decoded images are in memory; maxQueued more wait with their
    // bodies unread; beyond that, 503.
    const socket = req.raw.socket;
    let slot: Slot | null = null;
    let cancel: (() => void) | null = null;
    // The client gone: leave the queue, or free the slot unless the handler runs (it frees it when done).
    const onClose = () => {
      if (!slot) cancel?.();
      else if (!slot.handling) slot.release();
    };
    socket.once('close', onClose);
    const wait = slots.acquire((c) => (cancel = c));
    if (!wait) {
      socket.off('close', onClose);
      throw new HttpError(503, 'Busy', `the server is busy (${o.maxInFlight} image requests in flight, ${o.maxQueued} waiting); retry in ${o.retryAfter} s`, o.retryAfter);
    }
    try {
      await wait;
    } catch (e) {
      socket.off('close', onClose);
      throw e;
    }
    let released = false;
    slot = {
      handling: false,
      release: () => {
        if (released) return;
        released = true;
        socket.off('close', onClose);
        slots.release();
      },
    };
    slotOf.set(req, slot);
  });
  // Requests that end without reaching their handler (a bad body, a limit, the client gone) free their slot here.
  const releaseUnhandled = async (req: FastifyRequest) => {
    const slot = slotOf.get(req);
    if (slot && !slot.handling) slot.release();
  };
  app.addHook('onResponse', releaseUnhandled);
  app.addHook('onRequestAbort', releaseUnhandled);

  app.setErrorHandler((error, req, reply) => {
    const { status, code, message } = statusOf(error);
    if (status >= 500 && !(error instanceof HttpError)) req.log.error({ err: error }, `${req.method} ${req.url}: ${(error as Error)?.message}`);
    if (error instanceof HttpError && error.retryAfter !== undefined) void reply.header('retry-after', String(error.retryAfter));
    void reply.status(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'NotFound', message: `no route ${req.method} ${req.url.slice(0, 200)}` } });
  });

  async function parse(req: FastifyRequest): Promise<Parsed> {
    const fields: Record<string, unknown> = {};
    const images: Buffer[] = [];
    if (req.isMultipart()) {
      let total = 0;
      try {
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
      } catch (e) {
        // The multipart parser's own errors (no boundary, a truncated body, no parts) have no
        // status: they are the client's malformed body. Limits keep their 413.
        if (e instanceof TorchfaceError || typeof (e as { statusCode?: unknown })?.statusCode === 'number') throw e;
        throw new HttpError(400, 'BadRequest', `malformed multipart/form-data body: ${(e as Error)?.message ?? String(e)}`);
      }
      return { fields, images };
    }
    const body = req.body;
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) throw new ArgumentError('body', 'a JSON object or multipart/form-data', body);
    Object.assign(fields, body);
    return { fields, images };
  }

  /**
   * The request's images (multipart files, then base64 `image`, `images[]`,
   * `image2`) as RGB pixels no larger than maxSide on their longest side.
   * Every image's size is read from its header first, and the per-image and
   * per-request pixel limits checked, before any is decoded; then they are
   * decoded (and shrunk) one at a time.
   */
  async function imagesOf(p: Parsed, f: { image?: string; images?: string[]; image2?: string }): Promise<RawImage[]> {
    const out = [...p.images];
    if (f.image) out.push(decodeBase64(f.image, 'image'));
    f.images?.forEach((s, i) => out.push(decodeBase64(s, `images[${i}]`)));
    if (f.image2) out.push(decodeBase64(f.image2, 'image2'));
    if (out.length > o.maxImages) throw new HttpError(413, 'TooManyImages', `at most ${o.maxImages} images per request`);
    let total = 0;
    for (const [i, b] of out.entries()) {
      if (b.length === 0) throw new ImageError(`image ${i} is empty`);
      let meta: sharp.Metadata;
      try {
        meta = await sharp(b).metadata();
      } catch (e) {
        throw new ImageError(`image ${i} could not be decoded: ${(e as Error).message}`);
      }
      const px = (meta.width ?? 0) * (meta.height ?? 0);
      if (px > o.maxPixels) throw new HttpError(413, 'TooManyPixels', `image ${i} has ${meta.width} x ${meta.height} pixels, above the limit of ${o.maxPixels} (maxPixels)`);
      total += px;
      if (total > o.maxRequestPixels) throw new HttpError(413, 'TooManyPixels', `the ${out.length} images have more than ${o.maxRequestPixels} pixels together, the limit per request (maxRequestPixels)`);
    }
    const images: RawImage[] = [];
    for (const [i, b] of out.entries()) images.push(await shrink(b, i));
    return images;
  }

  /** Decodes an image to RGB (EXIF orientation applied), shrunk to fit maxSide x maxSide. */
  async function shrink(b: Buffer, i: number): Promise<RawImage> {
    try {
      return await decodeShrunk(b, { maxSide: o.maxSide, maxPixels: o.maxPixels, sequentialRead: true });
    } catch (e) {
      throw new ImageError(`image ${i} could not be decoded: ${(e as Error).message}`);
    }
  }

  function fieldsOf<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, p: Parsed): T {
    const r = schema.safeParse(p.fields);
    if (!r.success) throw fromZod(r.error, 'body', p.fields);
    return r.data;
  }

  /** The threshold policy (see ServerOptions.allowLooserThreshold). */
  function policyThreshold(t: number | undefined): number | undefined {
    if (t === undefined || o.allowLooserThreshold) return t;
    const max = gallery.threshold;
    if (t > max) throw new ArgumentError('threshold', `a threshold of at most ${max}, the server's (a looser one needs a server started with allowLooserThreshold)`, t);
    return t;
  }

  /** An image route: its handler holds the request's slot until it ends. */
  function withSlot<T>(handler: (req: FastifyRequest, reply: FastifyReply) => Promise<T>) {
    return async (req: FastifyRequest, reply: FastifyReply): Promise<T> => {
      const slot = slotOf.get(req);
      if (slot) slot.handling = true;
      try {
        return await handler(req, reply);
      } finally {
        slot?.release();
      }
    };
  }

  // Without the key (when one is set): a bare liveness answer, for load balancers. The
  // model, counts, memory and event-loop figures need the key.
  app.get('/health', async (req) => {
    if (!keyOk(req)) return { ok: true, status: 'ok' };
    const counts = await gallery.counts();
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    return {
      ok: true,
      status: 'ok',
      ...counts,
      model: gallery.modelIdentity,
      rssBytes: process.memoryUsage().rss,
      eventLoopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
      imageRequests: { inFlight: slots.active, queued: slots.queued, maxInFlight: o.maxInFlight, maxQueued: o.maxQueued },
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

  app.post(
    '/enroll',
    withSlot(async (req, reply) => {
      const p = await parse(req);
      const f = fieldsOf(enrollBody, p);
      checkId(f.id);
      const imgs = await imagesOf(p, f);
      if (imgs.length === 0) throw new ArgumentError('images', 'at least one image', 'none');
      const person = await gallery.enroll(f.id, imgs, { metadata: f.metadata, append: f.append ?? false, detect: f.detect ?? true, force: f.force ?? false });
      return reply.status(201).send(person);
    }),
  );

  app.post(
    '/identify',
    withSlot(async (req) => {
      const p = await parse(req);
      const f = fieldsOf(identifyBody, p);
      const threshold = policyThreshold(f.threshold);
      const imgs = await imagesOf(p, f);
      if (imgs.length !== 1) throw new ArgumentError('image', 'exactly one image', `${imgs.length} images`);
      const r = await gallery.identify(imgs[0], { k: f.k ?? 5, threshold, detect: f.detect ?? true });
      return { ...r, distance: Number.isFinite(r.distance) ? r.distance : null };
    }),
  );

  app.post(
    '/verify',
    withSlot(async (req) => {
      const p = await parse(req);
      const f = fieldsOf(verifyBody, p);
      const opts = { threshold: policyThreshold(f.threshold), detect: f.detect ?? true };
      if (f.id !== undefined) checkId(f.id);
      const imgs = await imagesOf(p, f);
      if (f.id !== undefined) {
        if (imgs.length !== 1) throw new ArgumentError('image', 'exactly one image with an id', `${imgs.length} images`);
        return gallery.verify(imgs[0], f.id, opts);
      }
      if (imgs.length !== 2) throw new ArgumentError('images', 'two images, or one image and an id', `${imgs.length} images`);
      return gallery.compare(imgs[0], imgs[1], opts);
    }),
  );

  // The photo library, its web page and the OpenAPI description (lib/library/routes.ts).
  if (gallery instanceof FaceGallery) registerLibraryRoutes(app, { gallery, ui: o.ui, parse, imagesOf, withSlot });
  else app.get('/docs/openapi.json', async () => openApiDocument());

  return app;
}
