// Benchmark (not a test): the pretrained face recognition net exported to ONNX
// (saveOnnx), run by onnxruntime-node on the CPU with the same intra-op thread
// count, vs the same network in torchface (a traced program replayed on a
// worker thread, its input read in place, fused, its convolutions through oneDNN with relu and residual adds fused, as FaceModel
// runs it), batch 1 and 16, alternating in one run.
//   node dist/scripts/bench/cases/onnx.js [--reps N] [--rounds N]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FaceRecognitionNet, Tensor, mkldnnAvailable, noGrad, rand, saveOnnx, setNumThreads, threadMode, trace } from '../../../lib';
import { onednnBlock } from '../../../lib/ops';
import { TextGoalRow, cli, median, ortSessionOptions } from '../harness/common';

export async function benchOnnx(options: { reps?: number; rounds?: number } = {}): Promise<TextGoalRow[]> {
  const reps = options.reps ?? 10;
  const rounds = options.rounds ?? 3;
  const net = await FaceRecognitionNet.load();
  net.eval();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-bench-onnx-'));
  try {
    return await compare(net, await exportFaceNet(net, dir), reps, rounds);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The face net as the ONNX comparisons export it (dynamic batch), written into `dir`. */
export async function exportFaceNet(net: FaceRecognitionNet, dir: string): Promise<string> {
  const file = path.join(dir, 'face.onnx');
  await saveOnnx(net, [rand([1, 3, 150, 150]).mul(255)], file, { dynamicBatch: true });
  return file;
}

async function compare(net: FaceRecognitionNet, file: string, reps: number, rounds: number): Promise<TextGoalRow[]> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  // As FaceModel.pretrained() runs it on the CPU: scales folded into the convolutions, which run
  // through oneDNN with relu and the residual adds fused (else libtorch's oneDNN tensors, else channels-last).
  const onednn = onednnBlock() > 0;
  const mkldnn = !onednn && mkldnnAvailable();
  const fused = net.fuse(onednn ? { onednn } : mkldnn ? { mkldnn } : { channelsLast: true });
  const forward = (x: Tensor) => noGrad(() => fused.forward(onednn || mkldnn ? x : x.contiguous({ channelsLast: true })));
  const rows: TextGoalRow[] = [];
  const mode = threadMode();
  // The same thread count on both sides: each replay is told it (runWith), while eager ops on this
  // thread stay at 'auto's one thread (an all-core main-thread OpenMP pool would throttle the
  // replays' OpenMP threads: lib/core/threads.ts, AUTO_EAGER_THREADS).
  setNumThreads('auto');
  for (const threads of [...new Set([1, os.availableParallelism()])]) {
  const session = await ort.InferenceSession.create(file, ortSessionOptions(threads));
  for (const batch of [1, 16]) {
    const x = rand([batch, 3, 150, 150]).mul(255);
    // The input read in place, as FaceModel's replays read theirs (and onnxruntime its feed).
    const program = trace(forward, [x], { sharedInputs: true });
    const run = (t: Tensor) => program.runWith({ threads }, t);
    const feeds = { input: new ort.Tensor('float32', x.data() as Float32Array, x.shape) };
    const ours: number[] = [];
    const peer: number[] = [];
    for (let i = 0; i < 2; i++) {
      (await run(x)).forEach((t) => t.dispose());
      await session.run(feeds);
    }
    // Each side's idle threads keep spinning for a while after its last run (onnxruntime's pool,
    // libgomp's): measured, the first ~80 ms of torchface runs after an onnxruntime block took
    // twice as long. A pause before each block lets the other side's threads go to sleep.
    const settle = () => new Promise((resolve) => setTimeout(resolve, 300));
    for (let r = 0; r < rounds; r++) {
      await settle();
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        (await run(x)).forEach((t) => t.dispose());
        ours.push(performance.now() - t0);
      }
      await settle();
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        await session.run(feeds);
        peer.push(performance.now() - t0);
      }
    }
    const a = median(ours);
    const b = median(peer);
    rows.push({ case: `face recognition net exported to ONNX, batch ${batch}, ${threads} thread(s): torchface (traced, worker thread) vs onnxruntime-node CPU`, torchface: a, peer: b, unit: 'ms', ratio: a / b, goal: '<= 1.0' });
    x.dispose();
  }
  await session.release();
  }
  setNumThreads(mode);
  return rows;
}

if (require.main === module) {
  const { flags } = cli(__filename, { reps: 'number', rounds: 'number' });
  benchOnnx(flags).then((rows) => {
    for (const r of rows) console.log(`${r.case}\t${r.torchface.toFixed(2)}\t${r.peer?.toFixed(2)}\t${r.unit}\tratio ${r.ratio?.toFixed(2)}\t${r.goal}`);
  });
}
