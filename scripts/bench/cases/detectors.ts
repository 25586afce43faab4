// The face detector's three networks (SSD-MobileNet-v1 at 512 x 512, the tiny
// detector at 416 x 416, the 68-landmark net on three 112 x 112 crops), each
// forward traced and replayed at 1 thread, NCHW against channels-last (libtorch 1.13
// sends channels-last convolutions through oneDNN), and for SSD also its fused form
// (SsdMobileNetV1.fuse(): oneDNN convolutions with relu6 fused, what lib/face/detect.ts
// runs on the CPU when the build has them) against channels-last. Repetitions alternate
// the variants; ms per forward, median and spread; ratio = the faster path / the other.
//
//   node dist/scripts/bench/cases/detectors.js [--reps N]
import { getNumThreads, rand, setNumThreads, threadMode, traced, type Tensor } from '../../../lib';
import { onednnBlock } from '../../../lib/ops';
import { FaceLandmark68Net } from '../../../lib/models/face-landmark-68';
import { SsdMobileNetV1 } from '../../../lib/models/ssd-mobilenet-v1';
import { TinyFaceDetectorNet } from '../../../lib/models/tiny-face-detector';
import { BenchRow, Summary, cli, summarize } from '../harness/common';

type DetectorNet = SsdMobileNetV1 | TinyFaceDetectorNet | FaceLandmark68Net;
export type DetectorRow = BenchRow & { torchfaceSpread: Summary; peerSpread: Summary };

const CASES: { label: string; load: () => Promise<DetectorNet>; input: number[] }[] = [
  { label: 'SSD-MobileNet-v1 512x512', load: () => SsdMobileNetV1.load(), input: [1, 3, 512, 512] },
  { label: 'tiny face detector 416x416', load: () => TinyFaceDetectorNet.load(), input: [1, 3, 416, 416] },
  { label: '68-landmark net, 3 crops 112x112', load: () => FaceLandmark68Net.load(), input: [3, 3, 112, 112] },
];

export async function run(options: { reps?: number; log?: (s: string) => void } = {}): Promise<DetectorRow[]> {
  const reps = options.reps ?? 10;
  const mode = threadMode();
  const before = getNumThreads();
  setNumThreads(1);
  const rows: DetectorRow[] = [];
  try {
    for (const c of CASES) {
      // Two copies of the network, one per layout, so that both stay traced side by side.
      const nchw = await c.load();
      const cl = await c.load();
      cl.to({ channelsLast: true });
      const x = rand(c.input).mul(255);
      const fused = nchw instanceof SsdMobileNetV1 && onednnBlock() ? nchw.fuse() : null;
      const runs = [traced((t: Tensor) => nchw.forward(t)), traced((t: Tensor) => cl.forward(t.contiguous({ channelsLast: true })))];
      if (fused) runs.push(traced((t: Tensor) => fused.forward(t)));
      const times: number[][] = runs.map(() => []);
      for (let r = -2; r < reps; r++) {
        for (let k = 0; k < runs.length; k++) {
          const t0 = performance.now();
          (await runs[k](x)).forEach((t) => t.dispose());
          if (r >= 0) times[k].push(performance.now() - t0);
        }
      }
      x.dispose();
      nchw.dispose();
      cl.dispose();
      fused?.dispose();
      const [n, l, f] = times.map(summarize);
      options.log?.(`${c.label}: NCHW ${n.median.toFixed(1)} ms, channels-last ${l.median.toFixed(1)} ms${f ? `, fused oneDNN ${f.median.toFixed(1)} ms` : ''}`);
      rows.push({ case: `${c.label}, traced forward, 1 thread: channels-last vs NCHW`, torchface: l.median, peer: n.median, unit: 'ms', ratio: l.median / n.median, goal: null, torchfaceSpread: l, peerSpread: n });
      if (f) rows.push({ case: `${c.label}, traced forward, 1 thread: fused oneDNN (fuse()) vs channels-last`, torchface: f.median, peer: l.median, unit: 'ms', ratio: f.median / l.median, goal: null, torchfaceSpread: f, peerSpread: l });
    }
  } finally {
    setNumThreads(mode === 'auto' ? 'auto' : before);
  }
  return rows;
}

if (require.main === module) {
  const { flags } = cli(__filename, { reps: 'number' });
  run({ reps: flags.reps, log: (s) => console.error(s) })
    .then((rows) => console.table(rows.map(({ torchfaceSpread, peerSpread, ...r }) => ({ ...r, spread: `${torchfaceSpread.min.toFixed(1)}-${torchfaceSpread.max.toFixed(1)} vs ${peerSpread.min.toFixed(1)}-${peerSpread.max.toFixed(1)}` }))))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
