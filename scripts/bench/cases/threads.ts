// The default thread policy ('auto', lib/core/threads.ts) against every fixed thread
// count, on the three workloads of issue #18: a descriptor at batch 1, a batch
// of 16, and the whole photo pipeline (detect + landmarks + align + descriptor).
// Settings alternate inside each round (auto, 1, 2, ..., auto, 1, 2, ...) so
// that the machine's load hits them alike; each setting runs in a fresh process
// (libgomp's thread pools outlive a setting: a main-thread pool of n threads left
// by setNumThreads(n) would throttle the next setting's replays, lib/core/threads.ts)
// with 8 untimed calls first (a service's steady state; auto explores there).
// A fixed count n (setNumThreads(n)) runs every replay and eager op on n threads.
// Goal: auto no more than 10% slower than the best fixed count.
//   node dist/scripts/bench/cases/threads.js [--rounds 3] [--reps 20]
import * as fs from 'fs';
import * as os from 'os';
import { FaceModel, setNumThreads } from '../../../lib';
import { TextGoalRow, demoPhoto, fixtureCrops, inFreshProcess, median, runStandalone } from '../harness/common';

type Setting = number | 'auto';

export async function benchThreads(options: { rounds?: number; reps?: number; one?: { workload: string; setting: Setting } } = {}): Promise<TextGoalRow[]> {
  const rounds = options.rounds ?? 3;
  const reps = options.reps ?? 20;
  const crops = fixtureCrops();
  const batch = fixtureCrops(16);
  const photo = fs.readFileSync(demoPhoto('sample1.jpg'));
  const settings: Setting[] = ['auto', ...Array.from({ length: os.availableParallelism() }, (_, i) => i + 1)];
  const workloads = {
    b1: { label: 'descriptor 150x150, batch 1', unit: 'ms/face', per: 1, reps, run: (m: FaceModel, k: number) => m.embedRgb([crops[k % crops.length]]) },
    b16: { label: 'descriptor 150x150, batch 16', unit: 'ms/face', per: 16, reps: Math.max(3, reps >> 2), run: (m: FaceModel) => m.embedRgb(batch) },
    pipeline: { label: 'pipeline sample1.jpg (detect + landmarks + align + descriptor with flip)', unit: 'ms/photo', per: 1, reps: Math.max(3, reps >> 2), run: (m: FaceModel) => m.embedFaces([photo], { detect: true }) },
  };
  const one = options.one;
  if (one) {
    // In a fresh process (below): one setting, one workload.
    const w = workloads[one.workload as keyof typeof workloads];
    setNumThreads(one.setting);
    const model = await FaceModel.pretrained();
    // The steady state of a service: 8 calls first (traces are made at load; these warm the
    // allocator, sharp and oneDNN's primitives, and let 'auto' time its candidates: it
    // explores within the first ~6 replays of each shape).
    for (let k = 0; k < 8; k++) await w.run(model, k);
    const t0 = performance.now();
    for (let k = 0; k < w.reps; k++) await w.run(model, k);
    const ms = (performance.now() - t0) / w.reps / w.per;
    model.dispose();
    return [{ case: one.workload, torchface: ms, peer: null, ratio: null, unit: w.unit, goal: '' }];
  }
  const times: Record<string, Record<string, number[]>> = {};
  for (let r = 0; r < rounds; r++)
    for (const name of Object.keys(workloads))
      // the order rotates by round: no setting is always the first after the previous workload
      for (const s of [...settings.slice(r % settings.length), ...settings.slice(0, r % settings.length)]) {
        // without OMP_NUM_THREADS (inFreshProcess): each child sets its own
        const [row] = await inFreshProcess<TextGoalRow[]>(__filename, 'benchThreads', { reps, one: { workload: name, setting: s } });
        ((times[name] ??= {})[String(s)] ??= []).push(row.torchface);
      }
  const rows: TextGoalRow[] = [];
  for (const [name, w] of Object.entries(workloads)) {
    const med = Object.fromEntries(Object.entries(times[name]).map(([s, v]) => [s, median(v)]));
    const fixed = settings.filter((s) => s !== 'auto').map(String);
    const best = fixed.reduce((a, b) => (med[b] < med[a] ? b : a));
    rows.push({ case: `${w.label}: default threads (auto) vs the best fixed count (${best}; ${fixed.map((s) => `${s}: ${med[s].toFixed(1)}`).join(', ')})`, torchface: med.auto, peer: med[best], unit: w.unit, ratio: med.auto / med[best], goal: '<= 1.1' });
  }
  return rows;
}

if (require.main === module) runStandalone(__filename, { rounds: 3, reps: 20 }, (o) => benchThreads(o));
