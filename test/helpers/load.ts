// Load test of the HTTP service on loopback: several thousand requests, a mix
// of good ones (identify, verify, people) and bad ones (malformed JSON, bad
// base64, corrupt images, unknown ids, duplicates, missing API key, oversized
// bodies, pixel bombs). Checks every status and every good answer, that the
// server's RSS grows by less than 50 MB and its event loop stays responsive,
// and reports requests/s and p50/p99 latency.
//
//   node dist/scripts/load-test.js [--requests 4000] [--concurrency 16] [--model pixels|faceapi]
//
// The server runs in a child process (`torchface serve`), so its RSS is its own.
// The request mix and its checks (driveLoad), shared by scripts/load-test.ts, the
// service bench and test/e2e/gallery-server.test.ts.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import sharp from 'sharp';
import { facesDir, packageRoot } from '../../lib/util/paths';

export interface LoadPerson {
  id: string;
  /** Photos used to enroll (one is enough). */
  enroll: Buffer[];
  /** Other photos of the same person, expected to be identified as `id`. */
  probes: Buffer[];
}

export interface LoadOptions {
  baseUrl: string;
  people: LoadPerson[];
  requests: number;
  concurrency: number;
  apiKey: string;
  /** Must match the server's body limit (bytes): oversized requests are 1.5x this. */
  bodyLimit: number;
  /** A server-side pixel limit that the pixel-bomb image exceeds. */
  detect: boolean;
  /** Returns the server's RSS in bytes (from /health by default). */
  rss?: () => Promise<number>;
  log?: (s: string) => void;
}

export interface LoadReport {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  byKind: Record<string, { count: number; ok: number }>;
  failures: string[];
  /** Good answers that were correct (identify top-1 / verify same), of those asked. */
  accuracy: { correct: number; total: number };
  rssStartMB: number;
  rssEndMB: number;
  rssGrowthMB: number;
  eventLoopDelayP99Ms: number;
}

interface Resp {
  status: number;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
/** Closes the keep-alive sockets of request(). */
export function closeClient(): void {
  agent.destroy();
}

export function request(base: string, method: string, url: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const u = new URL(url, base);
    const req = http.request({ method, hostname: u.hostname, port: u.port, path: u.pathname + u.search, agent, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    // A server that answers 413 before reading may close the socket mid-upload.
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? resolve({ status: -1, body: e.code }) : reject(e)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export function multipartBody(fields: Record<string, string>, files: Buffer[]): { body: Buffer; type: string } {
  const boundary = `----torchface${Math.random().toString(16).slice(2)}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  files.forEach((f, i) => {
    parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="image"; filename="f${i}.png"\r\ncontent-type: application/octet-stream\r\n\r\n`), f, Buffer.from('\r\n'));
  });
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : 0;
};

/** Enrolls `people` (over HTTP), then drives the request mix and checks every answer. */
export async function driveLoad(o: LoadOptions): Promise<LoadReport> {
  const log = o.log ?? (() => {});
  const key = { 'x-api-key': o.apiKey };
  const jsonH = { ...key, 'content-type': 'application/json' };
  for (const p of o.people) {
    const r = await request(o.baseUrl, 'POST', '/enroll', JSON.stringify({ id: p.id, images: p.enroll.map((b) => b.toString('base64')), detect: o.detect }), jsonH);
    if (r.status !== 201 && r.status !== 409) throw new Error(`enroll ${p.id}: ${r.status} ${r.body}`);
  }
  // /health gives its figures only with the key (without: a bare liveness answer).
  const health = async () => JSON.parse((await request(o.baseUrl, 'GET', '/health', undefined, key)).body) as { rssBytes: number; eventLoopDelayMs: { p99: number } };
  const rss = o.rss ?? (async () => (await health()).rssBytes);
  const corrupt = Buffer.concat([o.people[0].probes[0].subarray(0, 200), Buffer.alloc(300, 7)]);
  const bomb = await sharp({ create: { width: 6000, height: 6000, channels: 3, background: { r: 0, g: 0, b: 0 } } }).png({ compressionLevel: 9 }).toBuffer();
  const oversized = Buffer.alloc(Math.floor(o.bodyLimit * 1.5), 65);
  const probes = o.people.flatMap((p) => p.probes.map((b) => ({ id: p.id, b64: b.toString('base64'), raw: b })));

  type Kind = { name: string; weight: number; run: (i: number) => Promise<{ ok: boolean; why?: string; correct?: boolean }> };
  const expectStatus = (r: Resp, want: number[]) => ({ ok: want.includes(r.status), why: `status ${r.status} (want ${want.join('/')}): ${r.body.slice(0, 200)}` });
  const kinds: Kind[] = [
    {
      name: 'identify (JSON base64)',
      weight: 50,
      run: async (i) => {
        const p = probes[i % probes.length];
        const r = await request(o.baseUrl, 'POST', '/identify', JSON.stringify({ image: p.b64, k: 3, detect: o.detect }), jsonH);
        if (r.status !== 200) return expectStatus(r, [200]);
        const j = JSON.parse(r.body) as { id: string | null; candidates: { id: string }[] };
        return { ok: Array.isArray(j.candidates), correct: j.id === p.id, why: r.body.slice(0, 200) };
      },
    },
    {
      name: 'verify image + id (multipart)',
      weight: 15,
      run: async (i) => {
        const p = probes[(i * 7) % probes.length];
        const m = multipartBody({ id: p.id, detect: String(o.detect) }, [p.raw]);
        const r = await request(o.baseUrl, 'POST', '/verify', m.body, { ...key, 'content-type': m.type });
        if (r.status !== 200) return expectStatus(r, [200]);
        return { ok: true, correct: (JSON.parse(r.body) as { same: boolean }).same };
      },
    },
    { name: 'GET /people', weight: 5, run: async () => expectStatus(await request(o.baseUrl, 'GET', '/people', undefined, key), [200]) },
    { name: 'malformed JSON', weight: 4, run: async () => expectStatus(await request(o.baseUrl, 'POST', '/identify', '{"image": "abc', jsonH), [400]) },
    { name: 'unknown field', weight: 2, run: async () => expectStatus(await request(o.baseUrl, 'POST', '/identify', JSON.stringify({ image: probes[0].b64, kk: 1 }), jsonH), [400]) },
    { name: 'no image', weight: 3, run: async () => expectStatus(await request(o.baseUrl, 'POST', '/identify', JSON.stringify({ k: 2 }), jsonH), [400]) },
    { name: 'bad base64', weight: 2, run: async () => expectStatus(await request(o.baseUrl, 'POST', '/identify', JSON.stringify({ image: '!!!not base64!!!' }), jsonH), [400]) },
    { name: 'corrupt image', weight: 4, run: async () => expectStatus(await request(o.baseUrl, 'POST', '/identify', JSON.stringify({ image: corrupt.toString('base64'), detect: o.detect }), jsonH), [422]) },
    { name: 'unknown id', weight: 3, run: async () => expectStatus(await request(o.baseUrl, 'POST', '/verify', JSON.stringify({ image: probes[0].b64, id: 'nobody-at-all', detect: o.detect }), jsonH), [404]) },
    { name: 'DELETE unknown id', weight: 2, run: async () => expectStatus(await request(o.baseUrl, 'DELETE', '/people/nobody-at-all', undefined, key), [404]) },
    { name: 'duplicate enroll', weight: 2, run: async () => expectStatus(await request(o.baseUrl, 'POST', '/enroll', JSON.stringify({ id: o.people[0].id, image: probes[0].b64, detect: o.detect }), jsonH), [409]) },
    { name: 'no API key', weight: 3, run: async () => expectStatus(await request(o.baseUrl, 'POST', '/identify', JSON.stringify({ image: probes[0].b64 }), { 'content-type': 'application/json' }), [401]) },
    { name: 'oversized body', weight: 2, run: async () => expectStatus(await request(o.baseUrl, 'POST', '/identify', oversized, jsonH), [413, -1]) },
    { name: 'pixel bomb', weight: 3, run: async () => expectStatus(await request(o.baseUrl, 'POST', '/identify', JSON.stringify({ image: bomb.toString('base64') }), jsonH), [413]) },
  ];
  const schedule: Kind[] = [];
  for (const k of kinds) for (let w = 0; w < k.weight; w++) schedule.push(k);

  // Warm up (first traces, allocator), then measure.
  for (let i = 0; i < Math.min(50, o.requests); i++) await kinds[i % kinds.length].run(i);
  const rss0 = await rss();
  const byKind: LoadReport['byKind'] = {};
  const failures: string[] = [];
  const lat: number[] = [];
  let correct = 0;
  let asked = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= o.requests) return;
        const k = schedule[(i * 37) % schedule.length];
        const s = performance.now();
        let r: { ok: boolean; why?: string; correct?: boolean };
        try {
          r = await k.run(i);
        } catch (e) {
          r = { ok: false, why: (e as Error).message };
        }
        lat.push(performance.now() - s);
        const b = (byKind[k.name] ??= { count: 0, ok: 0 });
        b.count++;
        if (r.ok) b.ok++;
        else if (failures.length < 20) failures.push(`${k.name}: ${r.why}`);
        if (r.correct !== undefined) {
          asked++;
          if (r.correct) correct++;
        }
        if (i % 1000 === 0 && i) log(`${i} requests`);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const rss1 = await rss();
  const h = await health();
  return {
    requests: o.requests,
    seconds: +seconds.toFixed(2),
    requestsPerSecond: +(o.requests / seconds).toFixed(1),
    latencyMs: { p50: +pct(lat, 50).toFixed(2), p99: +pct(lat, 99).toFixed(2), max: +Math.max(...lat).toFixed(1) },
    byKind,
    failures,
    accuracy: { correct, total: asked },
    rssStartMB: +(rss0 / 1048576).toFixed(1),
    rssEndMB: +(rss1 / 1048576).toFixed(1),
    rssGrowthMB: +((rss1 - rss0) / 1048576).toFixed(1),
    eventLoopDelayP99Ms: h.eventLoopDelayMs.p99,
  };
}

/** People for the load test: AT&T faces when available (photo 1 enrolls, 2-4 probe), else synthetic patterns. */
export async function loadPeople(count: number): Promise<{ people: LoadPerson[]; source: string }> {
  const dir = facesDir();
  if (dir && fs.existsSync(path.join(dir, 'att'))) {
    const people: LoadPerson[] = [];
    for (let s = 1; s <= count; s++) {
      const f = (k: number) => fs.readFileSync(path.join(dir, 'att', `s${s}`, `${k}.png`));
      people.push({ id: `s${s}`, enroll: [f(1)], probes: [f(2), f(3), f(4)] });
    }
    return { people, source: 'AT&T faces' };
  }
  const people: LoadPerson[] = [];
  for (let s = 0; s < count; s++) {
    const img = async (noise: number) => {
      const w = 48;
      const h = 56;
      const data = Buffer.alloc(w * h);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = (((x * (s + 3)) ^ (y * (2 * s + 1))) + noise * ((x + y) % 3)) & 255;
      return sharp(data, { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();
    };
    people.push({ id: `p${s}`, enroll: [await img(0)], probes: [await img(1), await img(2)] });
  }
  return { people, source: 'synthetic patterns' };
}

export async function startServer(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const cli = path.join(packageRoot, 'dist', 'cli', 'torchface.js');
  const child = spawn(process.execPath, [cli, 'serve', ...args], { stdio: ['ignore', 'inherit', 'pipe'], env });
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving .* on (http:\/\/[^\s]+)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.on('exit', (c) => reject(new Error(`server exited ${c}: ${err}`)));
  });
  return { child, url };
}

/** Resident set size of a process (Linux: /proc/PID/status), bytes. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
