// Benchmark of the whole face pipeline on full photos: detection (SSD
// MobileNet v1, face-api's defaults) + 68 landmarks + a 128-d descriptor for
// every face, torchface (FaceModel.pretrained().faces(), lib/face/detect.ts)
// vs face-api 1.7.15 on tfjs 4.22 + the WASM backend
// (detectAllFaces(img, new SsdMobilenetv1Options()).withFaceLandmarks().withFaceDescriptors()).
// Inputs are face-api's demo photos (node_modules/@vladmandic/face-api/demo/),
// decoded once by sharp to RGB (decoding is not timed, for either side).
// Repetitions alternate torchface / face-api so both see the same background
// load; ms per photo, median and spread, ratio = torchface / face-api (< 1:
// torchface is faster). face-api's wasm backend is single-threaded; torchface
// is timed at 1 thread and at its default thread count.
//
//   node dist/scripts/bench/cases/pipeline.js [--quick]
// `npm run bench` uses run().
import * as fs from 'fs';
import { FaceModel, getNumThreads, loadImage, threadMode, setNumThreads, type RgbImage } from '../../../lib';
import { faceApiModelDir } from '../../../lib/io/tfjs';
import { BenchRow, Summary, cli, demoPhoto, initFaceApiWasm, summarize } from '../harness/common';

export interface PipelineBenchOptions {
  /** Photos in face-api's demo folder (default sample1.jpg). */
  images?: string[];
  /** Timed repetitions per contender (after `warmup`). Default 5. */
  reps?: number;
  warmup?: number;
  /** torchface thread counts (default [1, current]). */
  threads?: number[];
  faceapi?: boolean;
  log?: (s: string) => void;
}

export type PipelineRow = BenchRow & { torchfaceSpread: Summary; peerSpread: Summary | null; faces: { torchface: number; peer: number | null } };

export async function run(options: PipelineBenchOptions = {}): Promise<PipelineRow[]> {
  const images = options.images ?? ['sample1.jpg'];
  const reps = options.reps ?? 5;
  const warmup = options.warmup ?? 1;
  const before = getNumThreads();
  const mode = threadMode(); // restored after: 'auto' stays 'auto'
  const threadsList = [...new Set(options.threads ?? [1, before])];
  const log = options.log ?? (() => undefined);
  const model = await FaceModel.pretrained();
  let fa: Awaited<ReturnType<typeof initFaceApiWasm>> | null = null;
  if (options.faceapi !== false) {
    try {
      fa = await initFaceApiWasm();
      const dir = faceApiModelDir();
      await fa.faceapi.nets.ssdMobilenetv1.loadFromDisk(dir);
      await fa.faceapi.nets.faceLandmark68Net.loadFromDisk(dir);
      await fa.faceapi.nets.faceRecognitionNet.loadFromDisk(dir);
    } catch (e) {
      log(`face-api wasm peer skipped: ${(e as Error).message}`);
      fa = null;
    }
  }
  const rows: PipelineRow[] = [];
  try {
    for (const name of images) {
      const file = demoPhoto(name);
      if (!fs.existsSync(file)) throw new Error(`${file} not found (is @vladmandic/face-api installed?)`);
      const img: RgbImage = await loadImage(file);
      const input = fa ? fa.tf.tensor3d(new Int32Array(img.data), [img.height, img.width, 3], 'int32') : null;
      let facesTf = 0;
      let facesPeer: number | null = null;
      const ours = new Map<number, number[]>(threadsList.map((t) => [t, []]));
      const theirs: number[] = [];
      for (let r = -warmup; r < reps; r++) {
        for (const t of threadsList) {
          setNumThreads(t);
          const t0 = performance.now();
          const found = await model.faces(img);
          const ms = performance.now() - t0;
          facesTf = found.length;
          if (r >= 0) ours.get(t)!.push(ms);
        }
        setNumThreads(mode);
        if (fa && input) {
          const t0 = performance.now();
          const res = await fa.faceapi.detectAllFaces(input, new fa.faceapi.SsdMobilenetv1Options()).withFaceLandmarks().withFaceDescriptors();
          const ms = performance.now() - t0;
          facesPeer = res.length;
          if (r >= 0) theirs.push(ms);
        }
      }
      input?.dispose();
      const peer = fa ? summarize(theirs) : null;
      for (const t of threadsList) {
        const s = summarize(ours.get(t)!);
        rows.push({
          case: `pipeline ${name} ${img.width}x${img.height} (SSD + 68 landmarks + descriptors, ${facesTf} faces), ${t} thread(s) vs face-api wasm`,
          torchface: s.median,
          peer: peer ? peer.median : null,
          unit: 'ms/photo',
          ratio: peer ? s.median / peer.median : null,
          goal: null,
          torchfaceSpread: s,
          peerSpread: peer,
          faces: { torchface: facesTf, peer: facesPeer },
        });
        log(`${name}, ${t} thread(s): torchface ${s.median.toFixed(1)} ms (${facesTf} faces), face-api ${peer ? peer.median.toFixed(1) : '-'} ms (${facesPeer ?? '-'} faces)`);
      }
    }
  } finally {
    setNumThreads(mode);
    model.dispose();
  }
  return rows;
}

if (require.main === module) {
  const { flags } = cli(__filename, { quick: 'boolean' });
  run({ log: (s) => console.error(s), ...(flags.quick ? { reps: 3 } : {}) })
    .then((rows) => console.table(rows.map(({ torchfaceSpread, peerSpread, faces, ...r }) => r)))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
