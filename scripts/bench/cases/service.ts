// The service as its users see it (issue #18): `torchface serve` with the
// pretrained model in a child process, people enrolled from one real photo
// each, then /verify requests with other real photos of them (multipart,
// detect: true: detection + landmarks + alignment + descriptor per request)
// from N concurrent clients. Reports requests/s, p50 and p99 latency, and the
// server's event-loop p99 (from /health). Photos: LFW view 1 (people with >= 3
// photos) from the shared face data, else face-api's demo photos.
//   node dist/scripts/bench/cases/service.js [--clients 8] [--requests 96] [--people 12]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { closeClient, multipartBody, request, startServer } from '../../../test/helpers/load';
import { facesDir } from '../../../lib/util/paths';
import { TextGoalRow, demoPhoto, percentile, runStandalone } from '../harness/common';

interface Person {
  id: string;
  enroll: Buffer;
  probes: Buffer[];
}

function people(count: number): { people: Person[]; source: string } {
  const dir = facesDir();
  const lfw = dir ? path.join(dir, 'lfw-view1') : '';
  if (dir && fs.existsSync(lfw)) {
    const ids = fs.readdirSync(lfw).sort().filter((d) => fs.statSync(path.join(lfw, d)).isDirectory() && fs.readdirSync(path.join(lfw, d)).length >= 3);
    const out = ids.slice(0, count * 2).map((id) => {
      const files = fs.readdirSync(path.join(lfw, id)).sort().map((f) => fs.readFileSync(path.join(lfw, id, f)));
      return { id, enroll: files[0], probes: files.slice(1, 4) };
    });
    return { people: out, source: 'LFW view 1 (250x250 JPEGs)' };
  }
  const photos = ['sample1.jpg', 'sample2.jpg', 'sample3.jpg', 'sample4.jpg', 'sample5.jpg', 'sample6.jpg'].map((f) => fs.readFileSync(demoPhoto(f)));
  return { people: photos.map((b, i) => ({ id: `demo${i}`, enroll: b, probes: [b] })), source: "face-api's demo photos (probe = the enrolled photo)" };
}


export async function benchService(options: { clients?: number; requests?: number; people?: number } = {}): Promise<{ rows: TextGoalRow[]; report: Record<string, unknown> }> {
  const clients = options.clients ?? 8;
  const requests = options.requests ?? 96;
  const { people: ps, source } = people(options.people ?? 12);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-bench-service-'));
  const apiKey = 'bench-key';
  const { child, url } = await startServer(['--gallery', path.join(tmp, 'g.db'), '--port', '0', '--model', 'faceapi'], { ...process.env, TORCHFACE_API_KEY: apiKey });
  const key = { 'x-api-key': apiKey };
  try {
    // Enrol the first `people` whose photo passes the enrolment quality check (422 otherwise).
    const enrolled: Person[] = [];
    for (const p of ps) {
      if (enrolled.length >= (options.people ?? 12)) break;
      const r = await request(url, 'POST', '/enroll', JSON.stringify({ id: p.id, image: p.enroll.toString('base64'), detect: true }), { ...key, 'content-type': 'application/json' });
      if (r.status === 201) enrolled.push(p);
      else if (r.status !== 422) throw new Error(`enroll ${p.id}: ${r.status} ${r.body}`);
    }
    const probes = enrolled.flatMap((p) => p.probes.map((b) => ({ id: p.id, b })));
    const verify = async (i: number) => {
      const p = probes[i % probes.length];
      const m = multipartBody({ id: p.id, detect: 'true' }, [p.b]);
      const t0 = performance.now();
      const r = await request(url, 'POST', '/verify', m.body, { ...key, 'content-type': m.type });
      const ms = performance.now() - t0;
      return { ms, ok: r.status === 200, same: r.status === 200 && (JSON.parse(r.body) as { same: boolean }).same, status: r.status };
    };
    for (let i = 0; i < Math.min(4, probes.length); i++) await verify(i); // warm-up
    // The server's CPU time (user + system, from /proc) over the timed requests.
    const cpuMs = () => {
      const f = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks of 10 ms
    };
    const cpu0 = fs.existsSync(`/proc/${child.pid}/stat`) ? cpuMs() : null;
    const lat: number[] = [];
    let next = 0;
    let failed = 0;
    let same = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < requests) {
          const r = await verify(next++);
          lat.push(r.ms);
          if (!r.ok) failed++;
          if (r.same) same++;
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const serverCpuMsPerRequest = cpu0 === null ? null : (cpuMs() - cpu0) / requests;
    const health = JSON.parse((await request(url, 'GET', '/health', undefined, key)).body) as { eventLoopDelayMs?: { p99: number } };
    const report = { source, people: enrolled.length, clients, requests, failed, verifiedSame: same, reqPerS: requests / seconds, p50: percentile(lat, 50), p99: percentile(lat, 99), serverCpuMsPerRequest, serverCpuCores: serverCpuMsPerRequest === null ? null : (serverCpuMsPerRequest * requests) / 1000 / seconds, serverEventLoopP99: health.eventLoopDelayMs?.p99 ?? null };
    const rows: TextGoalRow[] = [
      { case: `service /verify with real photos (detect), ${clients} concurrent clients: requests/s`, torchface: report.reqPerS, peer: null, unit: 'req/s (higher is better)', ratio: null, goal: '>= 2x the recorded baseline (README)' },
      { case: `service /verify, ${clients} clients: p99 / p50 latency (p50 ${report.p50.toFixed(0)} ms)`, torchface: report.p99, peer: report.p50, unit: 'ms', ratio: report.p99 / report.p50, goal: '< 4' },
    ];
    return { rows, report };
  } finally {
    child.kill('SIGTERM');
    closeClient();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone(__filename, { clients: 8, requests: 96, people: 12 }, (o) => benchService(o));
