// Diagnostic (not a benchmark row): where the face recognition net's time goes, convolution by
// convolution, in torchface (oneDNN's own timer, DNNL_VERBOSE=1, inside a traced replay as
// FaceModel runs it) and in onnxruntime-node (its profiler, enableProfiling) on the same exported
// network, batch and thread count. Both are listed in execution order, which is the network's
// order for the convolutions on both sides; each side's figure is the median over the runs.
// The per-layer tables behind docs/models.md "Speed" came from this comparison.
//   node dist/scripts/bench/cases/onnx-layers.js [--batch 1] [--threads 1] [--runs 100]
// DNNL_VERBOSE must be set before oneDNN starts, so the torchface side runs in a child process.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FaceRecognitionNet, noGrad, rand, setNumThreads, trace } from '../../../lib';
import { onednnBlock } from '../../../lib/ops';
import { cli, median, ortSessionOptions } from '../harness/common';
import { exportFaceNet } from './onnx';

interface Layer {
  shape: string;
  us: number;
}

/** The child: replays the fused net `runs` times with DNNL_VERBOSE=1 and prints oneDNN's lines. */
async function torchfaceChild(batch: number, threads: number, runs: number): Promise<void> {
  const net = await FaceRecognitionNet.load();
  net.eval();
  setNumThreads('auto');
  const fused = net.fuse({ onednn: true });
  const x = rand([batch, 3, 150, 150]).mul(255);
  const program = trace((t) => noGrad(() => fused.forward(t)), [x], { sharedInputs: true });
  for (let i = 0; i < 5; i++) (await program.runWith({ threads }, x)).forEach((t) => t.dispose());
  console.log('--- timed');
  for (let i = 0; i < runs; i++) (await program.runWith({ threads }, x)).forEach((t) => t.dispose());
}

/** oneDNN's exec lines after the marker: per convolution, its problem and median time. */
function torchfaceLayers(batch: number, threads: number, runs: number): Layer[] {
  const r = spawnSync(process.execPath, [__filename, '--child', '--batch', String(batch), '--threads', String(threads), '--runs', String(runs)], {
    env: { ...process.env, DNNL_VERBOSE: '1' },
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0) throw new Error(`the torchface child failed: ${r.stderr}`);
  const lines = r.stdout.slice(r.stdout.indexOf('--- timed')).split('\n');
  const convs = lines.filter((l) => /^(onednn|dnnl)_verbose,exec,cpu,convolution,/.test(l)).map((l) => l.split(','));
  const perRun = convs.length / runs;
  if (!perRun || !Number.isInteger(perRun)) throw new Error(`${convs.length} convolution lines for ${runs} runs`);
  return Array.from({ length: perRun }, (_, k) => {
    const f = convs[k];
    return { shape: `${f[4]} ${f[f.length - 2]}`, us: median(Array.from({ length: runs }, (_, i) => Number(convs[i * perRun + k][f.length - 1]) * 1000)) };
  });
}

async function onnxruntimeLayers(batch: number, threads: number, runs: number): Promise<Layer[]> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-onnx-layers-'));
  try {
    const net = await FaceRecognitionNet.load();
    net.eval();
    const file = await exportFaceNet(net, dir);
    const session = await ort.InferenceSession.create(file, { ...ortSessionOptions(threads), enableProfiling: true, profileFilePrefix: path.join(dir, 'profile') });
    const x = rand([batch, 3, 150, 150]).mul(255);
    const feeds = { input: new ort.Tensor('float32', x.data() as Float32Array, x.shape) };
    for (let i = 0; i < 5 + runs; i++) await session.run(feeds);
    session.endProfiling();
    await session.release();
    const profile = fs.readdirSync(dir).find((f) => f.startsWith('profile') && f.endsWith('.json'));
    if (!profile) throw new Error('onnxruntime wrote no profile');
    type Event = { cat?: string; name: string; dur: number; args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] } };
    const events = (JSON.parse(fs.readFileSync(path.join(dir, profile), 'utf8')) as Event[]).filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.args?.op_name === 'Conv');
    const byNode = new Map<string, Event[]>();
    for (const e of events) byNode.set(e.name, [...(byNode.get(e.name) ?? []), e]);
    return [...byNode.values()].map((es) => {
      const shapes = es[0].args?.input_type_shape ?? [];
      const timed = es.slice(5).map((e) => e.dur);
      return { shape: shapes.slice(0, 2).map((s) => Object.values(s)[0].join('x')).join(' * '), us: median(timed) };
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { flags } = cli(__filename, { batch: 'number', threads: 'number', runs: 'number', child: 'boolean' });
  const batch = flags.batch ?? 1;
  const threads = flags.threads ?? 1;
  const runs = flags.runs ?? 100;
  if (flags.child) return torchfaceChild(batch, threads, runs);
  if (!onednnBlock()) throw new Error('this build has no oneDNN convolutions (F.onednnBlock() is 0): nothing to compare');
  const ours = torchfaceLayers(batch, threads, runs);
  const theirs = await onnxruntimeLayers(batch, threads, runs);
  console.log(`face recognition net, batch ${batch}, ${threads} thread(s), median of ${runs} runs; convolutions in execution order (us)`);
  console.log(['#', 'torchface', 'onnxruntime', 'torchface (oneDNN problem, kernel)', 'onnxruntime (input * weight)'].join('\t'));
  for (let k = 0; k < Math.max(ours.length, theirs.length); k++) {
    const a = ours[k];
    const b = theirs[k];
    console.log([k + 1, a ? a.us.toFixed(1) : '-', b ? b.us.toFixed(1) : '-', a?.shape ?? '-', b?.shape ?? '-'].join('\t'));
  }
  const sum = (ls: Layer[]) => ls.reduce((s, l) => s + l.us, 0);
  console.log(['sum', sum(ours).toFixed(0), sum(theirs).toFixed(0)].join('\t'));
}

if (require.main === module) {
  main().catch((e) => {
    console.error((e as Error).message);
    process.exit(1);
  });
}
