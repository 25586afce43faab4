// Benchmark of face descriptors (FaceModel.pretrained(), face-api's 128-d ResNet)
// on 150x150 crops: ms per face at batch 1 and 16, 1 and 2 threads, against
//  * face-api 1.7.15 on tfjs 4.22 + the WASM backend (SIMD, single-threaded), and
//  * the same network in PyTorch 1.13 from Python (scripts/bench/peers/recognition_torch.py,
//    weights read from the tfjs manifest there; its best variant is the peer),
// plus the arithmetic floor: multiply-adds per face / measured matmul throughput.
// It also times torchface's inference variants (FaceModel.pretrained()'s default: scale
// layers folded, convolutions through oneDNN with fused relu / residual adds; libtorch's
// oneDNN tensors; channels-last; unfused) so that the default is the measured fastest.
//
// `npm run bench` picks up run(); `node dist/scripts/bench/cases/descriptors.js [--quick]` runs it alone.
// The Python peer runs in TORCHFACE_PYTHON (default /usr/bin/python3); TORCHFACE_PYTHON=none skips it.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FaceModel, threadMode, memory, randn, setNumThreads, tidy, type RgbImage } from '../../../lib';
import { faceApiModelDir } from '../../../lib/io/tfjs';
import { recognitionMacs } from '../../../lib/models/face-recognition-net';
import { PYTHON, TextGoalRow, cli, fixtureCrops, initFaceApiWasm, median, peerScript } from '../harness/common';

export type BenchRow = TextGoalRow;

export interface DescriptorBenchOptions {
  /** Timed repetitions per configuration (median reported). Default 7. */
  runs?: number;
  threads?: number[];
  batches?: number[];
  /** Also time the non-default inference variants (default true). */
  variants?: boolean;
  /** Python with torch for the PyTorch peer; null to skip. */
  python?: string | null;
  faceapi?: boolean;
  log?: (s: string) => void;
}

const MANIFEST = path.join(faceApiModelDir(), 'face_recognition_model-weights_manifest.json');

/** Matmul throughput of libtorch here (GFLOP/s, float32, 512 x 2304 @ 2304 x 1024: a conv-like GEMM). */
export function matmulGflops(threads: number, runs = 5): number {
  const prev = threadMode();
  setNumThreads(threads);
  try {
    return tidy(() => {
      const a = randn([512, 2304]);
      const b = randn([2304, 1024]);
      for (let i = 0; i < 2; i++) a.matmul(b).dispose();
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        a.matmul(b).dispose();
        ms.push(performance.now() - t);
      }
      return (2 * 512 * 2304 * 1024) / (median(ms) * 1e6);
    });
  } finally {
    setNumThreads(prev);
  }
}

type Timer = (threads: number, batch: number) => Promise<number>;

/** face-api (tfjs wasm, single-threaded): a timer of computeFaceDescriptor, and its descriptor of crops[0]. */
async function faceApiPeer(crops: RgbImage[]): Promise<{ time: Timer; descriptor: ArrayLike<number>; dispose(): void }> {
  const { faceapi, tf } = await initFaceApiWasm();
  await faceapi.nets.faceRecognitionNet.loadFromDisk(faceApiModelDir());
  const tensors = crops.map((c) => tf.tensor3d(new Int32Array(c.data), [c.height, c.width, 3], 'int32'));
  const descriptor = (await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(tensors[0])) as Float32Array;
  return {
    descriptor,
    time: async (_threads, b) => {
      const input = b === 1 ? tensors[0] : tensors.slice(0, b);
      const t = performance.now();
      await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(input);
      return performance.now() - t;
    },
    dispose: () => tensors.forEach((t) => t.dispose()),
  };
}

/** The PyTorch peer as a long-running Python process (peers/recognition_torch.py --serve), so that its timings interleave with ours. */
async function pythonPeer(python: string): Promise<{ request(req: object): Promise<Record<string, unknown>>; close(): void }> {
  const child = spawn(python, [peerScript('recognition_torch.py'), MANIFEST, '--serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const lines: string[] = [];
  const waiting: ((line: string | null) => void)[] = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  child.on('close', () => {
    for (const w of waiting.splice(0)) w(null);
  });
  child.on('error', () => undefined);
  const request = async (req: object) => {
    child.stdin.write(JSON.stringify(req) + '\n');
    const line = lines.shift() ?? (await Promise.race([new Promise<string | null>((r) => waiting.push(r)), exited.then(() => null)]));
    if (line === null) throw new Error(`${python} recognition_torch.py exited: ${stderr.trim().split('\n').pop()}`);
    return JSON.parse(line) as Record<string, unknown>;
  };
  return { request, close: () => child.stdin.end() };
}

const l2 = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v, i) => s + (v - b[i]) ** 2, 0));

/**
 * Rows for `npm run bench`. Every contender (torchface variants, face-api, Python
 * variants) is timed once per configuration per round, round-robin, for `runs`
 * rounds after one warm-up round: on a shared machine the load then affects all
 * of them alike. Reported: median ms per face.
 */
export async function run(options: DescriptorBenchOptions = {}): Promise<BenchRow[]> {
  const runs = options.runs ?? 7;
  const threadsList = options.threads ?? [1, 2];
  const batches = options.batches ?? [1, 16];
  const log = options.log ?? (() => {});
  const python = options.python === undefined ? PYTHON : options.python;
  const maxBatch = Math.max(...batches);
  const crops = fixtureCrops(maxBatch);
  const prevThreads = threadMode();
  const rows: BenchRow[] = [];
  log(`load average ${os.loadavg().map((v) => v.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs (a shared machine: timings are noisy; contenders are interleaved)`);

  // --- contenders
  type Variant = { name: string; options: Parameters<typeof FaceModel.pretrained>[0] };
  const DEFAULT = 'default';
  const all: Variant[] = [
    { name: DEFAULT, options: {} },
    { name: 'fused+mkldnn', options: { mkldnn: true } },
    { name: 'fused+channels-last', options: { channelsLast: true } },
    { name: 'unfused+channels-last', options: { fused: false, channelsLast: true } },
  ];
  const variants = options.variants === false ? all.slice(0, 1) : all;
  const contenders: { name: string; kind: 'torchface' | 'face-api' | 'python'; time: Timer }[] = [];
  const models: FaceModel[] = [];
  let tfDescriptor: ArrayLike<number> = [];
  for (const v of variants) {
    const model = await FaceModel.pretrained(v.options);
    models.push(model);
    if (v.name === DEFAULT) [tfDescriptor] = await model.embedRgb([crops[0]]);
    contenders.push({
      name: `torchface ${v.name}`,
      kind: 'torchface',
      time: async (threads, b) => {
        setNumThreads(threads);
        const batch = crops.slice(0, b);
        const t = performance.now();
        await model.embedRgb(batch);
        return performance.now() - t;
      },
    });
  }
  let fa: Awaited<ReturnType<typeof faceApiPeer>> | null = null;
  if (options.faceapi !== false) {
    try {
      fa = await faceApiPeer(crops);
      log(`face-api descriptor vs torchface: L2 ${l2(fa.descriptor, tfDescriptor).toExponential(2)}`);
      contenders.push({ name: 'face-api wasm', kind: 'face-api', time: fa.time });
    } catch (e) {
      log(`face-api wasm peer skipped: ${(e as Error).message}`);
    }
  }
  let py: Awaited<ReturnType<typeof pythonPeer>> | null = null;
  if (python) {
    try {
      py = await pythonPeer(python);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-bench-'));
      const px = new Float32Array(3 * 150 * 150);
      for (let i = 0; i < 150 * 150; i++) for (let c = 0; c < 3; c++) px[c * 150 * 150 + i] = crops[0].data[i * 3 + c];
      fs.writeFileSync(path.join(dir, 'check.f32'), Buffer.from(px.buffer));
      const check = (await py.request({ check: path.join(dir, 'check.f32') })) as Record<string, number[][]>;
      fs.rmSync(dir, { recursive: true, force: true });
      log(`PyTorch (Python) descriptor vs torchface: L2 ${l2(check.plain[0], tfDescriptor).toExponential(2)} (plain), ${l2(check['fused-cl'][0], tfDescriptor).toExponential(2)} (fused-cl)`);
      for (const variant of ['plain', 'fused-cl']) {
        const p = py;
        contenders.push({ name: `PyTorch ${variant}`, kind: 'python', time: async (threads, batch) => ((await p.request({ variant, threads, batch, runs: 1 })).ms as number[])[0] });
      }
    } catch (e) {
      log(`Python peer skipped: ${(e as Error).message}`);
      py?.close();
      py = null;
    }
  }

  // --- interleaved timing
  const times = new Map<string, number[]>(); // `${name}|${threads}|${batch}` -> ms per face
  for (let round = -1; round < runs; round++) {
    for (const threads of threadsList)
      for (const b of batches)
        for (const c of contenders) {
          if (c.kind === 'face-api' && threads !== threadsList[0]) continue; // single-threaded: time once
          const ms = (await c.time(threads, b)) / b;
          if (round < 0) continue; // warm-up
          const key = `${c.name}|${threads}|${b}`;
          times.set(key, [...(times.get(key) ?? []), ms]);
        }
  }
  setNumThreads(prevThreads);
  for (const m of models) m.dispose();
  fa?.dispose();
  py?.close();
  const med = (name: string, threads: number, b: number) => {
    const t = times.get(`${name}|${threads}|${b}`);
    return t ? median(t) : NaN;
  };
  for (const [key, t] of times) log(`${key.replace(/\|/, ', ').replace(/\|(\d+)$/, ' thread(s), batch $1')}: ${median(t).toFixed(2)} ms/face (min ${Math.min(...t).toFixed(2)})`);

  const round2 = (v: number) => +v.toFixed(2);
  for (const threads of threadsList)
    for (const b of batches) {
      const def = med(`torchface ${DEFAULT}`, threads, b);
      for (const v of variants) {
        if (v.name === DEFAULT) continue;
        const ms = med(`torchface ${v.name}`, threads, b);
        rows.push({ case: `torchface ${DEFAULT} (default) vs ${v.name}, batch ${b}, ${threads} thread(s)`, torchface: round2(def), peer: round2(ms), unit: 'ms/face', ratio: round2(ms / def), goal: 'default is the fastest variant (ratio >= 1)' });
      }
      if (fa) {
        const peer = med('face-api wasm', threadsList[0], b);
        rows.push({ case: `descriptor 150x150, batch ${b}, ${threads} thread(s) vs face-api wasm (single-threaded, batch ${b})`, torchface: round2(def), peer: round2(peer), unit: 'ms/face', ratio: round2(peer / def), goal: b >= 16 ? '>= 10x face-api throughput (ratio >= 10)' : '' });
      }
      if (py) {
        const [bestName, peer] = ['PyTorch plain', 'PyTorch fused-cl'].map((n) => [n, med(n, threads, b)] as [string, number]).reduce((m, e) => (e[1] < m[1] ? e : m));
        rows.push({ case: `descriptor 150x150, batch ${b}, ${threads} thread(s) vs ${bestName} (Python, faster variant)`, torchface: round2(def), peer: round2(peer), unit: 'ms/face', ratio: round2(peer / def), goal: b === 1 ? '<= 1.0x Python time (ratio >= 1)' : '' });
      }
    }

  // --- arithmetic floor
  const macs = recognitionMacs();
  for (const threads of threadsList) {
    const gflops = matmulGflops(threads);
    const floorMs = (2 * macs) / (gflops * 1e6);
    const t = med(`torchface ${DEFAULT}`, threads, maxBatch);
    log(`floor, ${threads} thread(s): ${(macs / 1e6).toFixed(0)} M multiply-adds/face at ${gflops.toFixed(1)} GFLOP/s (matmul) = ${floorMs.toFixed(2)} ms/face`);
    rows.push({ case: `arithmetic floor, ${threads} thread(s): ${(macs / 1e6).toFixed(0)} M MACs/face at ${gflops.toFixed(0)} GFLOP/s (matmul) vs torchface batch ${maxBatch}`, torchface: round2(t), peer: round2(floorMs), unit: 'ms/face (peer = floor)', ratio: round2(floorMs / t), goal: 'fraction of the floor reached' });
  }
  log(`live tensors at the end: ${memory().tensors}`);
  return rows;
}

if (require.main === module) {
  const { flags } = cli(__filename, { quick: 'boolean' });
  run({ log: (s) => console.error(s), ...(flags.quick ? { runs: 3, variants: false } : {}) })
    .then((rows) => console.table(rows))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
