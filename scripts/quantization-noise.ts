// How much do the weights' uint8 quantization errors matter? 109 of the 117
// tensors in face-api's manifest are uint8-quantized (step = (max - min) / 255).
// dlib's float weights are not available here, so this measures the opposite
// direction: add a second quantization's worth of error (uniform in +-step/2 per
// weight) and see how LFW DevTest moves. If doubling the error changes little,
// the quantization is not where the 1.4 points to dlib's 99.38% are lost.
// Usage: node dist/scripts/quantization-noise.js [seeds, default 2]
import * as path from 'path';
import { FaceModel, noGrad, setNumThreads, tensor } from '../lib';
import { seededRandom } from '../lib/util/random';
import { kFoldAccuracy, readLfwPairs } from '../lib/face/metrics';
import { alignLargestFace } from '../lib/face/align';
import { facesDir } from '../lib/util/paths';
import { RgbImage } from '../lib/image';

async function main(): Promise<void> {
  setNumThreads(1);
  const seeds = Number(process.argv[2] ?? 2);
  const dir = facesDir();
  if (!dir) throw new Error('no face data');
  const pairs = readLfwPairs(path.join(dir, 'lfw-view1', 'pairsDevTest.txt'));
  const files = [...new Set(pairs.flatMap((p) => [p.pathA, p.pathB]))];
  const chips = new Map<string, RgbImage | null>();
  const t0 = Date.now();
  for (const f of files) chips.set(f, await alignLargestFace(f).then((a) => a.aligned, () => null));
  console.log(`aligned ${files.length} DevTest photos in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const model = await FaceModel.pretrained({ fused: false });
  const original = new Map([...model.net.namedParameters()].map(([n, p]) => [n, p.clone()]));
  const evaluate = async (label: string) => {
    const ok = files.filter((f) => chips.get(f));
    const emb = new Map<string, Float32Array>();
    const ds = await model.embedBatch(ok.map((f) => chips.get(f)!), { tta: 'none' });
    ok.forEach((f, i) => emb.set(f, ds[i]));
    const scored = pairs.map((p) => ({ score: emb.has(p.pathA) && emb.has(p.pathB) ? model.distance(emb.get(p.pathA)!, emb.get(p.pathB)!) : 10, same: p.same }));
    const k = kFoldAccuracy(scored, { folds: 10 });
    console.log(`${label}: 10-fold ${(k.mean * 100).toFixed(2)} ± ${(k.std * 100).toFixed(2)}%`);
    return k.mean;
  };
  const base = await evaluate('face-api weights (uint8-quantized as shipped)');
  const deltas: number[] = [];
  for (let s = 1; s <= seeds; s++) {
    const rnd = seededRandom(s);
    let perturbed = 0;
    noGrad(() => {
      for (const [name, p] of model.net.namedParameters()) {
        const o = original.get(name)!;
        if (o.numel < 256) {
          p.copy_(o);
          continue;
        }
        const v = o.data() as Float32Array;
        let lo = Infinity;
        let hi = -Infinity;
        for (const x of v) (lo = Math.min(lo, x)), (hi = Math.max(hi, x));
        const step = (hi - lo) / 255;
        const noisy = v.map((x) => x + (rnd() - 0.5) * step);
        const t = tensor(noisy, { shape: o.shape });
        p.copy_(t);
        t.dispose();
        perturbed++;
      }
    });
    deltas.push((await evaluate(`+ a second quantization's error (seed ${s}, ${perturbed} tensors)`)) - base);
  }
  console.log(`change in 10-fold accuracy: ${deltas.map((d) => (d * 100).toFixed(2)).join(', ')} points`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
