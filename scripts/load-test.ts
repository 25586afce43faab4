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
// driveLoad() is also used by test/e2e/gallery-server.test.ts with fewer requests.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { closeClient, driveLoad, loadPeople, rssOf, startServer } from '../test/helpers/load';

const USAGE = `node dist/scripts/load-test.js [--requests 4000] [--concurrency 16] [--people 20] [--model pixels|faceapi]
  Starts \`torchface serve\` on loopback (a temporary gallery, the key in TORCHFACE_API_KEY), drives the
  request mix, checks every answer, and prints a JSON report (exit 1 on a failure or RSS growth >= 50 MB).
  --model pixels (default) is the weight-free PixelFaceModel; faceapi needs the model weights.`;

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const arg = (name: string, dflt: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : dflt;
  };
  const requests = Number(arg('requests', '4000'));
  const concurrency = Number(arg('concurrency', '16'));
  const model = arg('model', 'pixels');
  const { people, source } = await loadPeople(Number(arg('people', '20')));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-load-'));
  const apiKey = 'load-test-key';
  const bodyLimit = 1024 * 1024;
  const { child, url } = await startServer(['--gallery', path.join(dir, 'g.db'), '--port', '0', '--model', model, '--body-limit', String(bodyLimit), '--max-pixels', '4000000'], { ...process.env, TORCHFACE_API_KEY: apiKey, TORCHFACE_TEST_MODEL: 'pixels' });
  try {
    console.error(`server ${url} (pid ${child.pid}, model ${model}), ${people.length} people from ${source}, ${requests} requests x ${concurrency} concurrent`);
    const report = await driveLoad({ baseUrl: url, people, requests, concurrency, apiKey, bodyLimit, detect: false, rss: async () => rssOf(child.pid!), log: (s) => console.error(s) });
    console.log(JSON.stringify(report, null, 2));
    const bad = report.failures.length > 0 || report.rssGrowthMB >= 50;
    if (bad) console.error(`FAIL: ${report.failures.length} failures, RSS growth ${report.rssGrowthMB} MB`);
    process.exitCode = bad ? 1 : 0;
  } finally {
    child.kill('SIGTERM');
    closeClient();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
