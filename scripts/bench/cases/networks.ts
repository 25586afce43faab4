// Each face network FaceModel.pretrained({ network }) offers, and the fusion:
// ms per face at batch 1 and 16 through embedRgb (S x S crops of the network's
// input size, the traced program on a worker thread), 1 thread, against the
// same graph in its own runtime where there is one: MobileFaceNet in tfjs
// (wasm backend, the runtime its package is made for), faceplugin's ONNX file
// in onnxruntime-node (1 intra-op thread). torchface and the peer alternate
// inside each round. A network whose optional package is missing is a row
// saying so.
//   node dist/scripts/bench/cases/networks.js [--reps 10] [--rounds 3]
import { FaceModel, NETWORKS, setNumThreads, threadMode, type NetworkName, type RgbImage } from '../../../lib';
import { facepluginFile, mobileFaceNetFile } from '../../../lib/face/networks';
import { loadReferenceGraphModel } from '../../../test/helpers/tfjs-graph-ref';
import { TextGoalRow, median, ortSessionOptions, runStandalone } from '../harness/common';

type Peer = { name: string; run(batch: Float32Array, n: number): Promise<void> } | null;

function crops(S: number, n: number): RgbImage[] {
  // Deterministic pixels: timing does not depend on content.
  return Array.from({ length: n }, (_, k) => {
    const data = new Uint8Array(S * S * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + k * 13) % 251;
    return { data, width: S, height: S, channels: 3 };
  });
}

async function peerFor(network: NetworkName, S: number): Promise<Peer> {
  if (network === 'mobilefacenet') {
    const { tf, model } = await loadReferenceGraphModel(mobileFaceNetFile());
    return {
      name: 'tfjs wasm (same graph)',
      run: async (x, n) => {
        const t = tf.tensor(x, [n, S, S, 3], 'float32');
        const r = model.execute(t);
        await (Array.isArray(r) ? r[0] : r).data();
        tf.dispose([t, r]);
      },
    };
  }
  if (network === 'faceplugin') {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
    const session = await ort.InferenceSession.create(facepluginFile(), ortSessionOptions(1));
    return {
      name: 'onnxruntime-node (same file, 1 thread)',
      run: async (x, n) => {
        // fr_feature.onnx has a fixed batch of 1: 16 faces are 16 runs here (its input shape is fixed
        // in the file), one pass of 16 in torchface (OnnxModule.enableBatching, checked at load)
        const per = 3 * S * S;
        for (let i = 0; i < n; i++) await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x.subarray(i * per, (i + 1) * per), [1, 3, S, S]) });
      },
    };
  }
  return null;
}

export async function benchNetworks(options: { reps?: number; rounds?: number } = {}): Promise<TextGoalRow[]> {
  const reps = options.reps ?? 10;
  const rounds = options.rounds ?? 3;
  const mode = threadMode();
  setNumThreads(1);
  const rows: TextGoalRow[] = [];
  try {
    for (const network of ['faceapi', 'faceplugin', 'mobilefacenet', 'fusion'] as NetworkName[]) {
      let model: FaceModel;
      try {
        model = await FaceModel.pretrained({ network });
      } catch (e) {
        rows.push({ case: `${network}: not measured`, torchface: Number.NaN, peer: null, unit: '-', ratio: null, goal: (e as Error).message.slice(0, 120) });
        continue;
      }
      const S = model.inputSize;
      const peer = await peerFor(network, S).catch(() => null);
      for (const batch of [1, 16]) {
        const input = crops(S, batch);
        // the peer's input: the preprocessed float batch (its own preprocessing is not timed)
        const x = new Float32Array(batch * S * S * 3);
        input.forEach((c, k) => c.data.forEach((v, i) => (x[k * S * S * 3 + i] = (v - 127.5) / 128)));
        const ours: number[] = [];
        const theirs: number[] = [];
        // Steady state: the first calls at a new batch size trace it and pay oneDNN's and the
        // allocator's warm-up (measured for faceplugin at batch 16: 82, 35, 88, 215, then 10-15 ms/face).
        for (let i = 0; i < 5; i++) await model.embedRgb(input);
        if (peer) for (let i = 0; i < 2; i++) await peer.run(x, batch);
        for (let r = 0; r < rounds; r++) {
          let t0 = performance.now();
          for (let i = 0; i < reps; i++) await model.embedRgb(input);
          ours.push((performance.now() - t0) / reps / batch);
          if (peer) {
            t0 = performance.now();
            for (let i = 0; i < reps; i++) await peer.run(x, batch);
            theirs.push((performance.now() - t0) / reps / batch);
          }
        }
        const a = median(ours);
        const b = peer ? median(theirs) : null;
        const info = NETWORKS[network];
        rows.push({ case: `${network} (${info.embeddingDim}-d, ${S}x${S}), batch ${batch}, 1 thread${peer ? ` vs ${peer.name}` : ''}`, torchface: a, peer: b, unit: 'ms/face', ratio: b ? a / b : null, goal: peer ? '<= 1' : '-' });
      }
      model.dispose();
    }
  } finally {
    setNumThreads(mode);
  }
  return rows;
}

if (require.main === module) runStandalone(__filename, { reps: 10, rounds: 3 }, (o) => benchNetworks(o));
