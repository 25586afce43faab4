import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';

import { faceApiModelDir, readTfjsManifest, readTfjsWeights, TfjsTensor } from '../../lib/io/tfjs';

const manifest = (name: string) => path.join(faceApiModelDir(), `${name}-weights_manifest.json`);

function allFinite(t: TfjsTensor): boolean {
  for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) return false;
  return true;
}

/** Decode the same manifest with tfjs itself; returns name -> {shape, dtype, values}. */
function decodeWithTfjs(manifestPath: string) {
  const groups = readTfjsManifest(manifestPath);
  const out = new Map<string, { shape: number[]; dtype: string; values: Float32Array | Int32Array }>();
  for (const g of groups) {
    const buf = Buffer.concat(g.paths.map((p) => fs.readFileSync(path.join(path.dirname(manifestPath), p))));
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const map = tf.io.decodeWeights(ab, g.weights as tf.io.WeightsManifestEntry[]);
    for (const [name, t] of Object.entries(map)) {
      out.set(name, { shape: t.shape, dtype: t.dtype, values: t.dataSync() as Float32Array | Int32Array });
      t.dispose();
    }
  }
  return out;
}

function writeModel(dir: string, entries: object[], shards: Record<string, Buffer>, paths = Object.keys(shards)) {
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, b] of Object.entries(shards)) fs.writeFileSync(path.join(dir, f), b);
  const m = path.join(dir, 'test-weights_manifest.json');
  fs.writeFileSync(m, JSON.stringify([{ paths, weights: entries }]));
  return m;
}

describe('io/tfjs: TensorFlow.js weight manifest reader', () => {
  it('faceApiModelDir() points at the face-api model folder', () => {
    const dir = faceApiModelDir();
    assert.ok(fs.existsSync(path.join(dir, 'face_recognition_model-weights_manifest.json')), dir);
  });

  it('reads face_recognition_model: 117 tensors, ResNet shapes, finite values, manifest order', async () => {
    const w = await readTfjsWeights(manifest('face_recognition_model'));
    assert.equal(w.size, 117);
    const names = [...w.keys()];
    assert.equal(names[0], 'conv32_down/conv/filters');
    assert.equal(names[names.length - 1], 'fc');
    assert.deepEqual(w.get('conv32_down/conv/filters')!.shape, [7, 7, 3, 32]);
    assert.deepEqual(w.get('conv64_down/conv1/conv/filters')!.shape, [3, 3, 32, 64]);
    assert.deepEqual(w.get('conv256_down_out/conv2/scale/weights')!.shape, [256]);
    assert.deepEqual(w.get('fc')!.shape, [256, 128]);
    for (const [name, t] of w) {
      assert.equal(t.dtype, 'float32', name);
      assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1), name);
      assert.ok(allFinite(t), `${name} has non-finite values`);
    }
  });

  it('reads ssd_mobilenetv1_model: 151 tensors incl. uint8-quantized int32 constants', async () => {
    const w = await readTfjsWeights(manifest('ssd_mobilenetv1_model'));
    assert.equal(w.size, 151);
    assert.deepEqual(w.get('MobilenetV1/Conv2d_0_pointwise/weights')!.shape, [3, 3, 3, 32]);
    assert.deepEqual(w.get('MobilenetV1/Conv2d_13_depthwise/depthwise_weights')!.shape, [3, 3, 1024, 1]);
    assert.deepEqual(w.get('MobilenetV1/Conv2d_13_pointwise/weights')!.shape, [1, 1, 1024, 1024]);
    assert.deepEqual(w.get('Prediction/BoxPredictor_0/ClassPredictor/weights')!.shape, [1, 1, 512, 9]);
    assert.deepEqual(w.get('Output/extra_dim')!.shape, [1, 5118, 4]);
    const n = w.get('Postprocessor/stack/1')!;
    assert.equal(n.dtype, 'int32');
    assert.ok(n.data instanceof Int32Array);
    assert.deepEqual(Array.from(n.data), [5118]);
    assert.deepEqual(Array.from(w.get('Preprocessor/ResizeImage/size')!.data), [512, 512]);
    assert.deepEqual(Array.from(w.get('Postprocessor/Slice/size')!.data), [-1, -1, -1]);
    for (const [name, t] of w) assert.ok(allFinite(t), `${name} has non-finite values`);
  });

  it('reads face_landmark_68_model: 49 tensors', async () => {
    const w = await readTfjsWeights(manifest('face_landmark_68_model'));
    assert.equal(w.size, 49);
    assert.deepEqual(w.get('dense0/conv0/filters')!.shape, [3, 3, 3, 32]);
    assert.deepEqual(w.get('dense3/conv0/depthwise_filter')!.shape, [3, 3, 128, 1]);
    assert.deepEqual(w.get('dense3/conv0/pointwise_filter')!.shape, [1, 1, 128, 256]);
    assert.deepEqual(w.get('fc/weights')!.shape, [256, 136]);
    assert.deepEqual(w.get('fc/bias')!.shape, [136]);
    for (const [name, t] of w) assert.ok(allFinite(t), `${name} has non-finite values`);
  });

  it('reads tiny_face_detector_model: 19 tensors', async () => {
    const w = await readTfjsWeights(manifest('tiny_face_detector_model'));
    assert.equal(w.size, 19);
    assert.deepEqual(w.get('conv0/filters')!.shape, [3, 3, 3, 16]);
    assert.deepEqual(w.get('conv5/pointwise_filter')!.shape, [1, 1, 256, 512]);
    assert.deepEqual(w.get('conv8/filters')!.shape, [1, 1, 512, 25]);
    assert.ok(!w.has('conv6/bias') && !w.has('conv7/bias'));
    for (const [name, t] of w) assert.ok(allFinite(t), `${name} has non-finite values`);
  });

  it('decodes a uint8-quantized tensor exactly like tf.io.decodeWeights', async () => {
    const m = manifest('face_landmark_68_model');
    const spec = readTfjsManifest(m)[0].weights.find((e) => e.name === 'dense1/conv0/pointwise_filter')!;
    assert.equal(spec.quantization?.dtype, 'uint8');
    const ours = (await readTfjsWeights(m)).get(spec.name)!;
    const theirs = decodeWithTfjs(m).get(spec.name)!;
    assert.deepEqual(ours.shape, theirs.shape);
    assert.equal(ours.dtype, theirs.dtype);
    assert.deepEqual(Array.from(ours.data), Array.from(theirs.values));
  });

  for (const name of ['face_recognition_model', 'ssd_mobilenetv1_model', 'face_landmark_68_model', 'tiny_face_detector_model']) {
    it(`every tensor of ${name} is bit-identical to tf.io.decodeWeights`, async () => {
      const ours = await readTfjsWeights(manifest(name));
      const theirs = decodeWithTfjs(manifest(name));
      assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
      for (const [k, t] of ours) {
        const r = theirs.get(k)!;
        assert.deepEqual(t.shape, r.shape, k);
        assert.equal(t.dtype, r.dtype, k);
        assert.equal(t.data.length, r.values.length, k);
        for (let i = 0; i < t.data.length; i++) {
          if (t.data[i] !== r.values[i]) assert.fail(`${k}[${i}]: ${t.data[i]} !== ${r.values[i]}`);
        }
      }
    });
  }

  describe('synthetic manifests', () => {
    let tmp: string;
    before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-tfjs-')); });
    after(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

    it('handles multi-shard groups, float16 and uint16 quantization like tfjs', async () => {
      const f32 = Buffer.from(new Float32Array([1.5, -2.25, 3]).buffer);
      const half = Buffer.alloc(8);
      [0x3c00, 0xc000, 0x0001, 0x7bff].forEach((h, i) => half.writeUInt16LE(h, 2 * i)); // 1, -2, 2^-24, 65504
      const u16 = Buffer.alloc(4);
      u16.writeUInt16LE(0, 0); u16.writeUInt16LE(65535, 2);
      const u8i = Buffer.from([0, 7, 255]);
      const all = Buffer.concat([f32, half, u16, u8i]);
      const entries = [
        { name: 'a', shape: [3], dtype: 'float32' },
        { name: 'b', shape: [2, 2], dtype: 'float32', quantization: { dtype: 'float16', original_dtype: 'float32' } },
        { name: 'c', shape: [2], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.001, min: -1 } },
        { name: 'd', shape: [3], dtype: 'int32', quantization: { dtype: 'uint8', scale: 0.5, min: -3 } },
      ];
      // split the bytes across two shards at an odd offset, mid-tensor
      const m = writeModel(path.join(tmp, 'ok'), entries, { 'w.bin-shard1of2': all.subarray(0, 13), 'w.bin-shard2of2': all.subarray(13) });
      const ours = await readTfjsWeights(m);
      assert.deepEqual([...ours.keys()], ['a', 'b', 'c', 'd']);
      assert.deepEqual(Array.from(ours.get('b')!.data), [1, -2, 2 ** -24, 65504]);
      const theirs = decodeWithTfjs(m);
      for (const [k, t] of ours) {
        assert.deepEqual(t.shape, theirs.get(k)!.shape, k);
        assert.equal(t.dtype, theirs.get(k)!.dtype, k);
        assert.deepEqual(Array.from(t.data), Array.from(theirs.get(k)!.values), k);
      }
      assert.deepEqual(Array.from(ours.get('d')!.data), [-3, 1, 125]); // round(q*0.5-3)
    });

    it('reports a missing shard with its file name', async () => {
      const m = writeModel(path.join(tmp, 'missing'), [{ name: 'a', shape: [2], dtype: 'float32' }], {}, ['nope.bin']);
      await assert.rejects(readTfjsWeights(m), (e: Error) => /nope\.bin/.test(e.message) && /could not be read/.test(e.message));
    });

    it('reports a wrong byte count with the file names and sizes', async () => {
      const m = writeModel(path.join(tmp, 'short'), [{ name: 'a', shape: [4], dtype: 'float32' }], { 'short.bin': Buffer.alloc(12) });
      await assert.rejects(readTfjsWeights(m), (e: Error) => /short\.bin: 12 bytes/.test(e.message) && /needs 16 bytes/.test(e.message));
      const m2 = writeModel(path.join(tmp, 'long'), [{ name: 'a', shape: [2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 1, min: 0 } }], { 'long.bin': Buffer.alloc(3) });
      await assert.rejects(readTfjsWeights(m2), /long\.bin: 3 bytes/);
    });

    it('rejects bad manifests with clear errors', async () => {
      const dir = path.join(tmp, 'bad');
      fs.mkdirSync(dir, { recursive: true });
      const m = path.join(dir, 'x-weights_manifest.json');
      fs.writeFileSync(m, '{not json');
      await assert.rejects(readTfjsWeights(m), /x-weights_manifest\.json is not valid JSON/);
      const q = writeModel(path.join(tmp, 'noscale'), [{ name: 'a', shape: [1], dtype: 'float32', quantization: { dtype: 'uint8' } }], { 'a.bin': Buffer.alloc(1) });
      await assert.rejects(readTfjsWeights(q), /'a' with uint8 quantization lacks numeric 'scale' and 'min'/);
      const s = writeModel(path.join(tmp, 'str'), [{ name: 's', shape: [1], dtype: 'string' }], { 's.bin': Buffer.alloc(4) });
      await assert.rejects(readTfjsWeights(s), /unsupported dtype 'string'/);
      await assert.rejects(readTfjsWeights(path.join(tmp, 'absent.json')), /cannot read tfjs weights manifest .*absent\.json/);
    });
  });
});
