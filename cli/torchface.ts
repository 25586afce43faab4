// The `torchface` command (bin/torchface.js): verify two photos, enroll people
// into a gallery file, identify a photo, list / remove people, and serve the
// HTTP API. `--json` prints machine-readable results; `--help` on any command.

import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { CLUSTER_ALGORITHMS, FaceGallery, TorchfaceError, createServer } from '../lib';
import { PixelFaceModel } from '../lib/testing/pixel-face-model';
import type { FaceModelLike, FaceRecord, IndexSummary } from '../lib';
import { contactSheet } from '../lib/library/report';
import { ProgressBar } from '../lib/util/progress';

const HELP: Record<string, string> = {
  main: `torchface: face verification and recognition on libtorch

Usage:
  torchface verify A.jpg B.jpg                     same person?
  torchface enroll --gallery g.db --id NAME photo...  add a person (one photo is enough)
  torchface identify --gallery g.db photo           who is this?
  torchface people --gallery g.db                   list enrolled people
  torchface remove --gallery g.db --id NAME         remove a person
  torchface serve --gallery g.db [--port 8080] [--host 127.0.0.1]   HTTP API and web page
  torchface index PHOTOS_DIR --gallery lib.db       find every face in a folder of photos
  torchface cluster PHOTOS_DIR [--gallery lib.db]   group the faces into people
  torchface name --gallery lib.db --cluster N --id NAME   name a cluster (enrols the person)
  torchface merge --gallery lib.db --cluster N --from M[,M2...]   merge clusters

Common options:
  --json            machine-readable output
  --no-detect       inputs are face crops (default: detect and align the largest face)
  --threshold T     Euclidean distance threshold (default: the model's, 0.6)
  --device D        cpu (default) or cuda
  --model M         faceapi (default)
  --help            help for a command`,
  verify: `torchface verify A B [--threshold T] [--no-detect] [--json]
  Prints whether the largest faces in A and B are the same person, and their distance.`,
  enroll: `torchface enroll --gallery FILE --id NAME PHOTO... [--append] [--metadata JSON] [--no-detect] [--json]
  Enrolls NAME from one or more photos. An existing NAME is an error unless --append (adds the photos).`,
  identify: `torchface identify --gallery FILE PHOTO [--k 5] [--threshold T] [--no-detect] [--json]
  Prints the recognised person (or "not recognized") and the k closest people.`,
  people: `torchface people --gallery FILE [--json]
  Lists enrolled people.`,
  remove: `torchface remove --gallery FILE --id NAME [--json]`,
  serve: `torchface serve --gallery FILE [--port 8080] [--host 127.0.0.1] [--api-key-file PATH] [options]
  Serves POST /verify, POST /identify, POST /enroll, DELETE /people/:id, GET /people, GET /health.
  Binds to loopback unless --host says otherwise. Clients send the API key in the x-api-key header;
  it comes from --api-key-file PATH (the file's first line), else TORCHFACE_API_KEY, else --api-key KEY
  (discouraged: a key on the command line shows in ps). Without the key, /health answers only
  { ok: true }-style liveness.
  --body-limit BYTES          largest request body (default 16 MiB)
  --max-pixels N              largest image in pixels (default 25000000)
  --max-request-pixels N      most pixels per request, all images together (default 50000000)
  --max-in-flight N           image requests processed at once (default 4; more wait, then 503)
  --max-queued N              image requests that may wait for a slot (default 32)
  --request-timeout MS        time to receive a whole request (default 30000)
  --allow-looser-threshold    let clients pass a threshold looser than the server's
  --log-level LEVEL           fatal, error, warn (default), info, debug or trace (logs go to stderr)
  --search hnsw               search an approximate HNSW graph (FILE.hnsw, built or loaded at start)
                              instead of every embedding: for millions of people (default: exact)
  --no-ui                     no web page at /ui/ (the JSON API only)
  The web page (/ui/: people, photos with names, identify / enrol, verify) and /docs/openapi.json are
  served without the key (they hold no data); the page asks for the key and sends it with every call.`,
  index: `torchface index PHOTOS_DIR --gallery FILE [--json] [--concurrency 2]
  Walks PHOTOS_DIR (recursively; JPEG, PNG, WebP; EXIF orientation applied), finds every face and stores
  its box, landmarks, quality and descriptor in the gallery file. Incremental: unchanged files (size +
  mtime, else content hash) are skipped, files gone from the folder are removed. Bad files are reported
  and skipped. A progress bar goes to stderr, the summary to stdout.`,
  cluster: `torchface cluster [PHOTOS_DIR] [--gallery FILE] [--json] [--html report.html] [--algorithm A] [--threshold T] [--reset]
  Groups the faces into people (indexing PHOTOS_DIR first when given; without --gallery, in memory).
  --algorithm chinese-whispers (default), dbscan or agglomerative; --threshold: the Euclidean distance
  under which two faces may be the same person (default: the model's calibrated distance at FAR 1e-3).
  Named clusters and faces placed by hand stay; new faces may join them. --reset forgets hand placements.
  --json prints { clusters: [{ id, name, faces: [{ file, box, score }] }], unclustered: [...] }.
  --html writes a self-contained contact sheet (one row of face thumbnails per person).`,
  name: `torchface name --gallery FILE --cluster N --id NAME [--json]
  Names cluster N: it becomes the enrolled person NAME (a NAME another cluster has merges the two).`,
  merge: `torchface merge --gallery FILE --cluster N --from M[,M2...] [--json]
  Moves the faces of clusters M... into cluster N.`,
};

class UsageError extends Error {}

const options = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  'no-detect': { type: 'boolean' },
  threshold: { type: 'string' },
  device: { type: 'string' },
  model: { type: 'string' },
  gallery: { type: 'string', short: 'g' },
  id: { type: 'string' },
  append: { type: 'boolean' },
  metadata: { type: 'string' },
  k: { type: 'string' },
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  'api-key': { type: 'string' },
  'api-key-file': { type: 'string' },
  'body-limit': { type: 'string' },
  'max-pixels': { type: 'string' },
  'max-request-pixels': { type: 'string' },
  'max-in-flight': { type: 'string' },
  'max-queued': { type: 'string' },
  'request-timeout': { type: 'string' },
  'allow-looser-threshold': { type: 'boolean' },
  'log-level': { type: 'string' },
  'no-ui': { type: 'boolean' },
  html: { type: 'string' },
  algorithm: { type: 'string' },
  cluster: { type: 'string' },
  from: { type: 'string' },
  reset: { type: 'boolean' },
  concurrency: { type: 'string' },
  search: { type: 'string' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

function number(v: string | undefined, name: string, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} expects ${integer ? 'an integer' : 'a number'}, got '${v}'`);
  return n;
}

async function loadModel(f: Flags): Promise<FaceModelLike> {
  const which = f.model ?? 'faceapi';
  // A weight-free stand-in (not a face recogniser) that the tests and the load test
  // serve with; offered only when TORCHFACE_TEST_MODEL=pixels says a test asks for it.
  if (which === 'pixels' && process.env.TORCHFACE_TEST_MODEL === 'pixels') return new PixelFaceModel();
  if (which !== 'faceapi') throw new UsageError(`--model expects faceapi, got '${which}'`);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { FaceModel } = require('../lib') as { FaceModel: { pretrained(o: { device?: string }): Promise<FaceModelLike> } };
  return FaceModel.pretrained({ device: f.device ?? 'cpu' });
}

/**
 * The service's API key: from --api-key-file PATH (its first line), else the
 * TORCHFACE_API_KEY environment variable, else --api-key KEY, which comes with
 * a warning: a command line is visible to every user of the machine (ps,
 * /proc/PID/cmdline). Both --api-key and --api-key-file is a usage error.
 */
export function apiKeyFrom(f: { 'api-key'?: string; 'api-key-file'?: string }, env: NodeJS.ProcessEnv): { key: string | undefined; warning: string | null } {
  if (f['api-key'] !== undefined && f['api-key-file'] !== undefined) throw new UsageError('give one of --api-key and --api-key-file');
  if (f['api-key-file'] !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(f['api-key-file'], 'utf8');
    } catch (e) {
      throw new UsageError(`--api-key-file: cannot read '${f['api-key-file']}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const key = text.split(/\r?\n/, 1)[0].trim();
    if (!key) throw new UsageError(`--api-key-file: '${f['api-key-file']}' is empty`);
    return { key, warning: null };
  }
  if (env.TORCHFACE_API_KEY) return { key: env.TORCHFACE_API_KEY, warning: null };
  if (f['api-key'] !== undefined) {
    if (!f['api-key']) throw new UsageError('--api-key expects a key');
    return { key: f['api-key'], warning: 'warning: a key given with --api-key shows in ps and /proc to every user of this machine; use --api-key-file PATH or TORCHFACE_API_KEY instead' };
  }
  return { key: undefined, warning: null };
}

/** Indexes a folder with a progress bar on stderr; failed files are listed on stderr. */
async function indexFolder(g: FaceGallery, dir: string, f: Flags): Promise<IndexSummary> {
  let bar: ProgressBar | null = null;
  const summary = await g.indexPhotos(dir, {
    concurrency: number(f.concurrency, 'concurrency', true),
    onProgress: (p) => {
      bar ??= new ProgressBar({ total: p.total, label: 'index' });
      bar.update(p.done, { faces: p.faces });
    },
  });
  (bar as ProgressBar | null)?.done();
  for (const x of summary.failed) process.stderr.write(`skipped ${x.file}: ${x.error}\n`);
  return summary;
}

function summaryText(s: IndexSummary): string {
  return `${s.files} photos in ${s.root}: ${s.added} added, ${s.updated} updated, ${s.unchanged} unchanged, ${s.removed} removed, ${s.failed.length} failed; ${s.faces} faces found (${s.totalFaces} in the library) in ${s.seconds.toFixed(1)} s${s.faces ? ` (${s.facesPerSecond.toFixed(1)} faces/s)` : ''}`;
}

function requireGallery(f: Flags): string {
  if (!f.gallery) throw new UsageError('--gallery FILE is required');
  return f.gallery;
}

function out(f: Flags, value: unknown, text: string): void {
  process.stdout.write(f.json ? JSON.stringify(value) + '\n' : text + '\n');
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${HELP.main}\n`);
    return 2;
  }
  const f = parsed.values;
  const [command, ...rest] = parsed.positionals;
  if (!command || !(command in HELP) || command === 'main') {
    process.stdout.write(HELP.main + '\n');
    return command && !f.help ? 2 : 0;
  }
  if (f.help) {
    process.stdout.write(HELP[command] + '\n');
    return 0;
  }
  const detect = !f['no-detect'];
  const threshold = number(f.threshold, 'threshold');
  try {
    switch (command) {
      case 'verify': {
        if (rest.length !== 2) throw new UsageError('verify takes two images');
        const g = await FaceGallery.open(':memory:', { model: await loadModel(f), threshold });
        const r = await g.compare(rest[0], rest[1], { detect });
        await g.close();
        out(f, r, `${r.same ? 'same person' : 'different people'} (distance ${r.distance.toFixed(4)}, threshold ${r.threshold})`);
        return 0;
      }
      case 'enroll': {
        if (!f.id) throw new UsageError('--id NAME is required');
        if (rest.length === 0) throw new UsageError('enroll needs at least one photo');
        let metadata: Record<string, unknown> | undefined;
        if (f.metadata !== undefined) {
          try {
            metadata = JSON.parse(f.metadata);
          } catch {
            throw new UsageError('--metadata expects a JSON object');
          }
        }
        const g = await FaceGallery.open(requireGallery(f), { model: await loadModel(f) });
        try {
          const p = await g.enroll(f.id, rest, { detect, append: !!f.append, metadata });
          out(f, p, `enrolled ${p.id} (${p.embeddings} image${p.embeddings === 1 ? '' : 's'})`);
        } finally {
          await g.close();
        }
        return 0;
      }
      case 'identify': {
        if (rest.length !== 1) throw new UsageError('identify takes one photo');
        const g = await FaceGallery.open(requireGallery(f), { model: await loadModel(f), threshold });
        try {
          const r = await g.identify(rest[0], { detect, k: number(f.k, 'k', true) ?? 5 });
          const lines = [r.id === null ? 'not recognized' : `${r.id} (distance ${r.distance.toFixed(4)})`, ...r.candidates.map((c) => `  ${c.id}\t${c.distance.toFixed(4)}`)];
          out(f, { ...r, distance: Number.isFinite(r.distance) ? r.distance : null }, lines.join('\n'));
        } finally {
          await g.close();
        }
        return 0;
      }
      case 'people': {
        const g = await FaceGallery.open(requireGallery(f));
        const people = await g.list();
        await g.close();
        out(f, people, people.map((p) => `${p.id}\t${p.embeddings}`).join('\n') || '(nobody enrolled)');
        return 0;
      }
      case 'remove': {
        if (!f.id) throw new UsageError('--id NAME is required');
        const g = await FaceGallery.open(requireGallery(f));
        try {
          await g.remove(f.id);
        } finally {
          await g.close();
        }
        out(f, { removed: f.id }, `removed ${f.id}`);
        return 0;
      }
      case 'serve': {
        const file = requireGallery(f);
        const { key, warning } = apiKeyFrom(f, process.env);
        if (warning) process.stderr.write(warning + '\n');
        const level = f['log-level'] ?? 'warn';
        if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(level)) throw new UsageError(`--log-level expects fatal, error, warn, info, debug or trace, got '${level}'`);
        const serverOptions = {
          apiKey: key,
          bodyLimit: number(f['body-limit'], 'body-limit', true),
          maxPixels: number(f['max-pixels'], 'max-pixels', true),
          maxRequestPixels: number(f['max-request-pixels'], 'max-request-pixels', true),
          maxInFlight: number(f['max-in-flight'], 'max-in-flight', true),
          maxQueued: number(f['max-queued'], 'max-queued', true),
          requestTimeout: number(f['request-timeout'], 'request-timeout', true),
          allowLooserThreshold: !!f['allow-looser-threshold'],
          ui: !f['no-ui'],
          // JSON lines on stderr; errors (500s with their stack) and warnings by default.
          logger: { level, stream: process.stderr },
        };
        const search = f.search as 'exact' | 'hnsw' | undefined; // FaceGallery.open names a wrong value
        const g = await FaceGallery.open(file, { model: await loadModel(f), threshold, search });
        let app;
        try {
          app = createServer({ gallery: g, ...serverOptions });
        } catch (e) {
          await g.close();
          throw e;
        }
        const host = f.host ?? '127.0.0.1';
        const port = number(f.port, 'port', true) ?? 8080;
        const address = await app.listen({ host, port });
        process.stderr.write(`torchface serving ${file} on ${address}${key ? ' (API key required)' : ''}\n`);
        const stop = async () => {
          await app.close();
          await g.close();
          process.exit(0);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        return -1; // keep running
      }
      case 'index': {
        if (rest.length !== 1) throw new UsageError('index takes one folder of photos');
        const g = await FaceGallery.open(requireGallery(f), { model: await loadModel(f) });
        try {
          const summary = await indexFolder(g, rest[0], f);
          out(f, summary, summaryText(summary));
        } finally {
          await g.close();
        }
        return 0;
      }
      case 'cluster': {
        if (rest.length > 1) throw new UsageError('cluster takes at most one folder of photos');
        if (rest.length === 0 && !f.gallery) throw new UsageError('give a folder of photos, or --gallery FILE of an indexed library');
        const algorithm = f.algorithm ?? 'chinese-whispers';
        if (!(CLUSTER_ALGORITHMS as readonly string[]).includes(algorithm)) throw new UsageError(`--algorithm expects ${CLUSTER_ALGORITHMS.join(', ')}, got '${algorithm}'`);
        const g = await FaceGallery.open(f.gallery ?? ':memory:', { model: await loadModel(f) });
        try {
          if (rest.length === 1) {
            const summary = await indexFolder(g, rest[0], f);
            process.stderr.write(summaryText(summary) + '\n');
          }
          const r = await g.cluster({ algorithm: algorithm as (typeof CLUSTER_ALGORITHMS)[number], threshold, reset: !!f.reset });
          if (f.html) {
            const html = await contactSheet(r, (id) => g.library.store.photo(id) ?? { width: 0, height: 0 }, { title: `torchface: people in ${rest[0] ?? f.gallery}` });
            fs.writeFileSync(f.html, html);
            process.stderr.write(`wrote ${f.html}\n`);
          }
          const face = (x: FaceRecord) => ({ id: x.id, file: x.file, box: x.box, score: x.score });
          const json = { clusters: r.clusters.map((c) => ({ id: c.id, name: c.name, faces: c.faces.map(face) })), unclustered: r.unclustered.map(face), summary: r.summary };
          const lines = [
            ...r.clusters.map((c) => `${String(c.id).padStart(5)}  ${(c.name ?? '(unnamed)').padEnd(24)} ${String(c.faces.length).padStart(4)} faces  ${[...new Set(c.faces.map((x) => path.basename(x.file)))].slice(0, 4).join(', ')}${c.faces.length > 4 ? ', ...' : ''}`),
            `${r.clusters.length} people, ${r.summary.clustered} faces clustered, ${r.unclustered.length} unclustered (${r.summary.poor} too poor to place); ${r.summary.algorithm} at ${r.summary.threshold.toFixed(4)} in ${r.summary.ms.total} ms`,
          ];
          out(f, json, lines.join('\n'));
        } finally {
          await g.close();
        }
        return 0;
      }
      case 'name': {
        if (!f.id) throw new UsageError('--id NAME is required');
        const cluster = number(f.cluster, 'cluster', true);
        if (cluster === undefined) throw new UsageError('--cluster N is required');
        const g = await FaceGallery.open(requireGallery(f));
        try {
          const c = await g.name(cluster, f.id);
          out(f, { id: c.id, name: c.name, faces: c.faces.length }, `cluster ${c.id} is ${c.name} (${c.faces.length} faces)`);
        } finally {
          await g.close();
        }
        return 0;
      }
      case 'merge': {
        const cluster = number(f.cluster, 'cluster', true);
        if (cluster === undefined || !f.from) throw new UsageError('--cluster N and --from M[,M2...] are required');
        const from = f.from.split(',').map((x) => number(x.trim(), 'from', true)!);
        const g = await FaceGallery.open(requireGallery(f));
        try {
          const c = await g.merge(cluster, from);
          out(f, { id: c.id, name: c.name, faces: c.faces.length }, `cluster ${c.id}${c.name ? ` (${c.name})` : ''} has ${c.faces.length} faces`);
        } finally {
          await g.close();
        }
        return 0;
      }
    }
    return 2;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n\n${HELP[command]}\n`);
      return 2;
    }
    if (e instanceof TorchfaceError) {
      if (f.json) process.stdout.write(JSON.stringify({ error: { code: e.name, message: e.message } }) + '\n');
      else process.stderr.write(`${e.name}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}


