// `npm start`: the face demo on embedded defaults. Loads face-api's recognition
// network (FaceModel.pretrained()), finds every face in three of face-api's
// sample photos, embeds them (one batch per photo, off the event loop), prints
// the distance matrix and the verify() decisions, and checks a face against a
// mirrored copy of itself.
import * as path from 'path';
import { FaceModel, memory, versions } from '../lib';
import { mirrorImage } from '../lib/face/model';
import { alignLargestFace } from '../lib/face/align';

const SAMPLES = ['sample1.jpg', 'sample2.jpg', 'sample3.jpg'];

async function main(): Promise<void> {
  const t0 = performance.now();
  const v = versions();
  console.log(`torchface ${v.torchface} on libtorch ${v.libtorch}`);
  const model = await FaceModel.pretrained();
  console.log(`FaceModel.pretrained(): face-api's ResNet-34 recognition net, ${model.embeddingDim}-d, same person at L2 <= ${model.threshold.toFixed(3)}${model.defaultFar ? ` (the distance for a false-accept rate of ${model.defaultFar}, measured)` : ''} (${(performance.now() - t0).toFixed(0)} ms)`);

  const demoDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
  const labels: string[] = [];
  const descriptors: Float32Array[] = [];
  for (const [k, file] of SAMPLES.entries()) {
    const t = performance.now();
    const faces = await model.faces(path.join(demoDir, file));
    faces.sort((a, b) => a.box.x - b.box.x); // left to right
    faces.forEach((f, i) => {
      labels.push(`${String.fromCharCode(65 + k)}${i + 1}`);
      descriptors.push(f.descriptor);
    });
    const boxes = faces.map((f, i) => `${String.fromCharCode(65 + k)}${i + 1} (${Math.round(f.box.x)},${Math.round(f.box.y)} ${Math.round(f.box.width)}x${Math.round(f.box.height)}, score ${f.score.toFixed(2)})`);
    console.log(`${file}: ${faces.length} faces, left to right ${boxes.join(', ')}  [${(performance.now() - t).toFixed(0)} ms]`);
  }

  console.log(`\nEuclidean distances between the descriptors (* = same person by verify, <= ${model.threshold.toFixed(3)}):`);
  console.log('      ' + labels.map((l) => l.padStart(6)).join(''));
  for (let i = 0; i < labels.length; i++) {
    const row = labels.map((_, j) => (i === j ? '     -' : `${model.distance(descriptors[i], descriptors[j]).toFixed(2)}${model.distance(descriptors[i], descriptors[j]) <= model.threshold ? '*' : ' '}`.padStart(6)));
    console.log(labels[i].padEnd(6) + row.join(''));
  }
  let best = { d: Infinity, i: 0, j: 0 };
  for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) if (labels[i][0] !== labels[j][0] && model.distance(descriptors[i], descriptors[j]) < best.d) best = { d: model.distance(descriptors[i], descriptors[j]), i, j };
  const across = await model.verify(descriptors[best.i], descriptors[best.j]);
  console.log(`\nClosest pair across photos: ${labels[best.i]} / ${labels[best.j]}: distance ${across.distance.toFixed(3)} -> ${across.same ? 'same person' : 'different people'}${across.far !== undefined ? ` (estimated false-accept rate at this distance: ${across.far.toExponential(1)})` : ''}`);

  // The same face, mirrored: a different image of the same person.
  const face = await alignLargestFace(path.join(demoDir, SAMPLES[0]));
  const r = await model.verify(face.aligned, mirrorImage(face.aligned));
  console.log(`${SAMPLES[0]} largest face vs its mirror image: distance ${r.distance.toFixed(3)} -> ${r.same ? 'same person' : 'different people'}`);
  model.dispose();
  console.log(`\ndone in ${((performance.now() - t0) / 1000).toFixed(1)} s; live tensors: ${memory().tensors}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
