// Benchmark: seconds per style-transfer iteration at 256x256 (bundled
// MobileNet-v1 feature network, preset layers, Adam), torchface vs the same
// network, costs and optimiser in Python torch (peers/style_torch.py) on the
// same images and weights (exported to a safetensors file Python reads). Goal:
// torchface no slower than Python (ratio <= 1).
//
//   node dist/scripts/bench/cases/style.js [size=256] [iterations=10] [threads]
// runStyleBench() returns rows for the `npm run bench` harness.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { getNumThreads, imageToTensor, resizeImage, setNumThreads, style as styleLib, threadMode } from '../../../lib';
import { fromTypedArray, saveSafetensorsSync, type RawTensor } from '../../../lib/io/safetensors';
import { landscapeContent, wavesStyle } from '../../../test/helpers/style-images';
import { BenchRow, cli, median, runPython } from '../harness/common';

export type StyleBenchRow = BenchRow;

/**
 * Alternates torchface and PyTorch runs for `rounds` rounds and keeps each side's
 * best median (the machine is shared: the minimum is the least disturbed).
 */
export async function runStyleBench(options: { size?: number; iterations?: number; warmup?: number; threads?: number; rounds?: number } = {}): Promise<StyleBenchRow[]> {
  const size = options.size ?? 256;
  const iterations = options.iterations ?? 10;
  const warmup = options.warmup ?? 2;
  const threads = options.threads ?? getNumThreads();
  const mode = threadMode(); // restored after: 'auto' stays 'auto'
  setNumThreads(threads);
  const content = await resizeImage(landscapeContent(size, size), size, size);
  const style = wavesStyle(size);
  const preset = styleLib.MOBILENET_PRESET;

  const rounds = options.rounds ?? 3;
  // torchface: the library's own loop, in this thread, init from the content (as the peer).
  const first: number[] = [];
  const torchfaceRun = async (): Promise<number> => {
    const stamps: number[] = [];
    first.length = 0;
    await styleLib.styleTransfer({ content, style, size, iterations: iterations + warmup, init: 'content', worker: false, onProgress: (p) => (stamps.push(performance.now()), first.push(p.costs.total)) });
    return median(stamps.slice(warmup).map((t, i) => t - stamps[warmup + i - 1])) / 1000;
  };

  // peer: the same weights, images and costs in PyTorch
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-style-bench-'));
  let peer: number | null = null;
  let tf = Infinity;
  try {
    const net = await styleLib.MobileNetFeatures.load();
    const raw = new Map<string, RawTensor>();
    for (const [k, t] of net.net.stateDict()) raw.set(k, fromTypedArray('float32', t.shape, t.contiguous().data()));
    for (const [k, img] of [['content', content], ['style', style]] as const) {
      const t = imageToTensor(img);
      raw.set(k, fromTypedArray('float32', t.shape, t.data()));
      t.dispose();
    }
    net.dispose();
    const file = path.join(dir, 'bench.safetensors');
    saveSafetensorsSync(file, raw, { config: JSON.stringify(preset) });
    for (let round = 0; round < rounds; round++) {
      tf = Math.min(tf, await torchfaceRun());
      const py = runPython<{ msPerIteration: number; initialTotal: number }>('style_torch.py', { file, iterations, warmup, threads });
      if (!py) break;
      peer = Math.min(peer ?? Infinity, py.msPerIteration / 1000);
      // same network and costs: the first iteration's total cost must agree
      const rel = Math.abs(py.initialTotal - first[0]) / Math.abs(py.initialTotal);
      if (!(rel < 1e-3)) throw new Error(`style bench: torchface and PyTorch disagree on the initial cost (${first[0]} vs ${py.initialTotal})`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    setNumThreads(mode);
  }
  return [
    {
      case: `style transfer iteration ${size}x${size} (mobilenet, Adam, ${threads} thread${threads > 1 ? 's' : ''})`,
      torchface: tf,
      peer,
      unit: 's/iteration',
      ratio: peer ? tf / peer : null,
      goal: 1,
    },
  ];
}

if (require.main === module) {
  const [size, iterations, threads] = cli(__filename, {}, { positionals: true }).positionals.map(Number);
  runStyleBench({ size: size || undefined, iterations: iterations || undefined, threads: threads || undefined }).then((rows) => {
    for (const r of rows) console.log(`${r.case}\ttorchface ${r.torchface.toFixed(3)} ${r.unit}\tpython ${r.peer?.toFixed(3) ?? '-'}\tratio ${r.ratio?.toFixed(2) ?? '-'} (goal <= ${r.goal})`);
  });
}
