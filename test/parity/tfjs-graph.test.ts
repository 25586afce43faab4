// TensorFlow.js graph models imported as torchface modules (issue #16):
// outputs against tfjs itself (wasm backend), load-time errors for what is not
// supported, training through the imported weights, state-dict round trips and
// traced (worker-thread) runs.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '../../lib';
import { ArgumentError, FileFormatError, TfjsGraphModule, loadTfjsGraphModel, loadStateDict, noGrad, optim, saveStateDict, tensor, UnsupportedTfjsOpError } from '../../lib';
import { needs } from '../helpers/peers';
import { humanModelsDir, photoInput, referenceOutputs, seededUniform } from '../helpers/tfjs-graph-ref';

const modelFile = (name: string) => path.join(humanModelsDir(), `${name}.json`);

/** A seeded input in the value range the model is used with (human: blazeface [-1, 1], facemesh and mobilefacenet [0, 1]). */
function fixedInput(m: TfjsGraphModule, seed: number, range: [number, number]): { data: Float32Array; shape: number[] } {
  const shape = m.inputShapes[0]!.map((d) => (d < 0 ? 1 : d));
  const u = seededUniform(shape.reduce((a, b) => a * b, 1), seed);
  const data = u.map((v) => range[0] + (range[1] - range[0]) * v);
  return { data, shape };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d; // NaN propagates
  }
  return m;
}

const MODELS: { name: string; range: [number, number]; outputs: string[]; shapes: number[][] }[] = [
  { name: 'mobilefacenet', range: [0, 1], outputs: ['embeddings'], shapes: [[1, 192]] },
  { name: 'blazeface-back', range: [-1, 1], outputs: ['Identity_3', 'Identity', 'Identity_1', 'Identity_2'], shapes: [[1, 384, 16], [1, 512, 1], [1, 384, 1], [1, 512, 16]] },
  { name: 'facemesh', range: [0, 1], outputs: ['Identity_2', 'Identity_1', 'Identity'], shapes: [[1, 1404], [1, 1], [1, 266]] },
];

describe('io/tfjs-graph: TensorFlow.js graph models as torchface modules', () => {
  for (const spec of MODELS) {
    it(`${spec.name}: outputs equal tfjs (wasm backend) within 1e-4`, async () => {
      const m = await loadTfjsGraphModel(modelFile(spec.name));
      assert.ok(m instanceof tf.nn.Module);
      assert.deepEqual(m.outputNames, spec.outputs);
      const input = fixedInput(m, 20261202, spec.range);
      const ours = noGrad(() => m.forwardAll([tensor(input.data, { shape: input.shape })]));
      const ref = await referenceOutputs(modelFile(spec.name), [input]);
      assert.equal(ours.length, ref.length);
      const diffs = ours.map((o, i) => {
        assert.deepEqual(o.shape, ref[i].shape, `${spec.outputs[i]} shape`);
        assert.deepEqual(o.shape, spec.shapes[i]);
        return maxAbsDiff(o.data() as Float32Array, ref[i].data);
      });
      // the outputs are not trivially equal: they vary over the input
      for (const r of ref) if (r.data.length > 1) assert.ok(maxAbsDiff(r.data, new Float32Array(r.data.length).fill(r.data[0])) > 1e-3, 'output is constant');
      console.log(`      ${spec.name}: max |torchface - tfjs| ${diffs.map((d, i) => `${spec.outputs[i]} ${d.toExponential(2)}`).join(', ')}`);
      for (const [i, d] of diffs.entries()) assert.ok(d <= 1e-4, `${spec.outputs[i]}: max abs diff ${d}`);
      m.dispose();
    });
  }

  for (const spec of MODELS) {
    it(`${spec.name} on a photo: as close to a float64 evaluation as tfjs is`, async () => {
      // Outputs of magnitude 100-300 (blazeface logits, facemesh pixel coordinates) carry float32
      // rounding of ~1e-4 in any runtime: tfjs itself is up to 1.2e-3 from the exact (float64) result
      // on this photo. So: no further from float64 than 2x tfjs's own error, and within 1e-5 relative.
      const m = await loadTfjsGraphModel(modelFile(spec.name));
      const m64 = await loadTfjsGraphModel(modelFile(spec.name), { dtype: 'float64' });
      const shape = m.inputShapes[0]!.map((d) => (d < 0 ? 1 : d));
      const data = await photoInput(shape, spec.range);
      const ours = noGrad(() => m.forwardAll([tensor(data, { shape })]));
      const exact = noGrad(() => m64.forwardAll([tensor(Float64Array.from(data), { shape })]));
      assert.equal(exact[0].dtype, 'float64');
      const ref = await referenceOutputs(modelFile(spec.name), [{ data, shape }]);
      const lines: string[] = [];
      ref.forEach((r, i) => {
        const o = ours[i].data() as Float32Array;
        const e = exact[i].data() as Float64Array;
        const vsTfjs = maxAbsDiff(o, r.data);
        const oursErr = maxAbsDiff(o, e);
        const tfjsErr = maxAbsDiff(r.data, e);
        const mag = r.data.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
        lines.push(`${spec.outputs[i]} vs tfjs ${vsTfjs.toExponential(2)} (|out| <= ${mag.toPrecision(3)}), vs float64 ${oursErr.toExponential(2)} (tfjs ${tfjsErr.toExponential(2)})`);
        assert.ok(oursErr <= 2 * tfjsErr + 1e-7, `${spec.outputs[i]}: ${oursErr} from float64, tfjs ${tfjsErr}`);
        assert.ok(vsTfjs <= 1e-5 * Math.max(1, mag), `${spec.outputs[i]}: ${vsTfjs} from tfjs (max |output| ${mag})`);
      });
      console.log(`      ${spec.name} (sample1.jpg): ${lines.join('; ')}`);
      m.dispose();
      m64.dispose();
    });
  }

  it('weights are named Parameters with the TF node names and the manifest shapes', async () => {
    const m = await loadTfjsGraphModel(modelFile('mobilefacenet'));
    const sd = m.stateDict();
    const w = sd.get('MobileFaceNet/MobileFaceNet/Conv2d_0/Conv2D_weights');
    assert.ok(w, [...sd.keys()].slice(0, 5).join(', '));
    assert.deepEqual(w.shape, [3, 3, 3, 64]);
    assert.ok(w.requiresGrad);
    assert.equal(m.parameterName('MobileFaceNet/MobileFaceNet/Conv2d_0/Conv2D_weights'), 'MobileFaceNet/MobileFaceNet/Conv2d_0/Conv2D_weights');
    // the L2 normalisation's epsilon is a (non-trainable) buffer, not a parameter
    assert.ok(m.buffers().length >= 1);
    assert.ok(m.numParameters() > 1_000_000);
    for (const k of sd.keys()) assert.ok(!k.includes('.'), k);
    // inputs are checked against the Placeholder's shape (-1: any) and count
    assert.throws(() => m.forward(tensor(new Float32Array(100 * 100 * 3), { shape: [1, 100, 100, 3] })), (e: Error) => e instanceof ArgumentError && /112,112,3/.test(e.message));
    assert.throws(() => m.forward(), ArgumentError);
    const two = noGrad(() => m.forward(tensor(new Float32Array(2 * 112 * 112 * 3).fill(0.5), { shape: [2, 112, 112, 3] })) as tf.Tensor);
    assert.deepEqual(two.shape, [2, 192]); // any batch size
    m.dispose();
  });

  describe('load-time errors', () => {
    let tmp: string;
    before(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-tfjs-graph-'));
    });
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));

    const b64 = (s: string) => Buffer.from(s).toString('base64');
    /** A tiny graph: x -> conv (weights w) -> [op] -> out; `extra` nodes appended. */
    function writeModel(name: string, nodes: object[], weights: { name: string; shape: number[]; dtype: string }[], bin = Buffer.alloc(weights.reduce((n, w) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0))) {
      const dir = path.join(tmp, name);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'w.bin'), bin);
      const file = path.join(dir, 'model.json');
      fs.writeFileSync(file, JSON.stringify({ format: 'graph-model', generatedBy: '2.10.0', convertedBy: 'TensorFlow.js Converter v4.22.0', modelTopology: { node: nodes, library: {}, versions: { producer: 1286 } }, weightsManifest: [{ paths: ['w.bin'], weights }] }));
      return file;
    }
    const placeholder = { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '1' }, { size: '4' }, { size: '4' }, { size: '2' }] } } } };
    const conv = (extra: object = {}) => ({
      name: 'net/conv',
      op: '_FusedConv2D',
      input: ['x', 'net/w', 'net/b'],
      attr: { fused_ops: { list: { s: [b64('BiasAdd'), b64('Relu')] } }, num_args: { i: '1' }, padding: { s: b64('SAME') }, strides: { list: { i: ['1', '2', '2', '1'] } }, data_format: { s: b64('NHWC') }, dilations: { list: { i: ['1', '1', '1', '1'] } }, ...extra },
    });
    const constNode = (name: string) => ({ name, op: 'Const', attr: { dtype: { type: 'DT_FLOAT' } } });
    const weights = [
      { name: 'net/w', shape: [3, 3, 2, 3], dtype: 'float32' },
      { name: 'net/b', shape: [3], dtype: 'float32' },
    ];

    it('a tiny hand-written graph loads and runs (the fixture is valid)', async () => {
      const vals = new Float32Array(57).map((_, i) => Math.sin(i));
      const file = writeModel('ok', [placeholder, constNode('net/w'), constNode('net/b'), conv(), { name: 'out', op: 'Sigmoid', input: ['net/conv'] }], weights, Buffer.from(vals.buffer));
      const m = await loadTfjsGraphModel(file);
      assert.deepEqual(m.inputNames, ['x']);
      assert.deepEqual(m.outputNames, ['out']);
      const x = seededUniform(32, 7);
      const y = m.forward(tensor(x, { shape: [1, 4, 4, 2] })) as tf.Tensor;
      assert.deepEqual(y.shape, [1, 2, 2, 3]); // SAME at stride 2: ceil(4 / 2)
      const [ref] = await referenceOutputs(file, [{ data: x, shape: [1, 4, 4, 2] }]);
      assert.ok(maxAbsDiff(y.data() as Float32Array, ref.data) < 1e-6);
    });

    it('an unsupported op is an ArgumentError naming the op, the node and the format version, raised at load time', async () => {
      // the shard is missing: the op check must come before the weights are read
      const file = writeModel('unsupported', [placeholder, constNode('net/w'), constNode('net/b'), conv(), { name: 'net/angle', op: 'Atan2', input: ['net/conv', 'net/conv'] }], weights);
      fs.rmSync(path.join(path.dirname(file), 'w.bin'));
      await assert.rejects(loadTfjsGraphModel(file), (e: Error) => {
        assert.ok(e instanceof UnsupportedTfjsOpError, String(e));
        assert.ok(e instanceof ArgumentError);
        assert.equal((e as UnsupportedTfjsOpError).code, 'ERR_UNSUPPORTED_OP');
        assert.equal((e as UnsupportedTfjsOpError).op, 'Atan2');
        assert.equal((e as UnsupportedTfjsOpError).node, 'net/angle');
        assert.match(e.message, /'Atan2'/);
        assert.match(e.message, /'net\/angle'/);
        assert.match(e.message, /graph-model, producer 1286/);
        return true;
      });
    });

    it('a control-flow loop is reported as its unsupported op, not as a malformed cycle', async () => {
      const loop = writeModel('loop', [placeholder, { name: 'enter', op: 'Enter', input: ['x'] }, { name: 'merge', op: 'Merge', input: ['enter', 'next'] }, { name: 'body', op: 'Relu', input: ['merge'] }, { name: 'next', op: 'NextIteration', input: ['body'] }, { name: 'out', op: 'Identity', input: ['body'] }], []);
      await assert.rejects(loadTfjsGraphModel(loop), (e: Error) => e instanceof UnsupportedTfjsOpError && e.op === 'Merge' && /control flow/.test(e.message));
    });

    it('unsupported attributes (fused FusedBatchNorm, NCHW) name the node too', async () => {
      const bn = writeModel('bn', [placeholder, constNode('net/w'), constNode('net/b'), conv({ fused_ops: { list: { s: [b64('FusedBatchNorm')] } } })], weights);
      await assert.rejects(loadTfjsGraphModel(bn), (e: Error) => e instanceof UnsupportedTfjsOpError && /FusedBatchNorm/.test(e.message) && /'net\/conv'/.test(e.message));
      const nchw = writeModel('nchw', [placeholder, constNode('net/w'), constNode('net/b'), conv({ data_format: { s: b64('NCHW') } })], weights);
      await assert.rejects(loadTfjsGraphModel(nchw), (e: Error) => e instanceof UnsupportedTfjsOpError && /NCHW/.test(e.message) && /'net\/conv'/.test(e.message));
    });

    it('malformed graphs are FileFormatErrors', async () => {
      const dangling = writeModel('dangling', [placeholder, { name: 'out', op: 'Relu', input: ['nowhere'] }], []);
      await assert.rejects(loadTfjsGraphModel(dangling), (e: Error) => e instanceof FileFormatError && /nowhere/.test(e.message));
      const cycle = writeModel('cycle', [placeholder, { name: 'a', op: 'Relu', input: ['b'] }, { name: 'b', op: 'Relu', input: ['a'] }, { name: 'out', op: 'Relu', input: ['a'] }], []);
      await assert.rejects(loadTfjsGraphModel(cycle), (e: Error) => e instanceof FileFormatError && /cycle/.test(e.message));
      const layers = path.join(tmp, 'layers.json');
      fs.writeFileSync(layers, JSON.stringify({ format: 'layers-model', modelTopology: {}, weightsManifest: [] }));
      await assert.rejects(loadTfjsGraphModel(layers), (e: Error) => e instanceof FileFormatError && /layers-model/.test(e.message));
      await assert.rejects(loadTfjsGraphModel(42 as unknown as string), ArgumentError);
    });
  });

  describe('single ops on small hand-written graphs equal tfjs', () => {
    let tmp: string;
    before(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-tfjs-ops-'));
    });
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));

    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const s = (v: string) => ({ s: b64(v) });
    const ints = (...v: number[]) => ({ list: { i: v.map(String) } });
    const fused = (...ops: string[]) => ({ list: { s: ops.map(b64) } });
    const conv = (padding: string, stride: number, dilation = 1) => ({ padding: s(padding), strides: ints(1, stride, stride, 1), dilations: ints(1, dilation, dilation, 1), data_format: s('NHWC') });
    type W = { name: string; shape: number[]; int?: number[] };
    interface Case {
      title: string;
      inputs: number[][];
      weights: W[];
      nodes: { name: string; op: string; input: string[]; attr?: object }[];
      /** tfjs 4.22's wasm backend gets fused MatMul with transpose_b wrong (its CPU backend and unfused MatMul+BiasAdd+Relu agree with torchface) */
      backend?: 'cpu';
    }
    const CASES: Case[] = [
      { title: '_FusedMatMul [BiasAdd, Relu], transpose_b (vs tfjs cpu: wasm 4.22 gets this wrong)', backend: 'cpu', inputs: [[3, 5]], weights: [{ name: 'w', shape: [4, 5] }, { name: 'b', shape: [4] }], nodes: [{ name: 'y', op: '_FusedMatMul', input: ['x0', 'w', 'b'], attr: { fused_ops: fused('BiasAdd', 'Relu'), num_args: { i: '1' }, transpose_b: { b: true } } }] },
      { title: '_FusedMatMul [BiasAdd, LeakyRelu]', inputs: [[3, 5]], weights: [{ name: 'w', shape: [5, 4] }, { name: 'b', shape: [4] }], nodes: [{ name: 'y', op: '_FusedMatMul', input: ['x0', 'w', 'b'], attr: { fused_ops: fused('BiasAdd', 'LeakyRelu'), num_args: { i: '1' }, leakyrelu_alpha: { f: 0.3 } } }] },
      { title: '_FusedMatMul [BiasAdd, Prelu]', inputs: [[3, 5]], weights: [{ name: 'w', shape: [5, 4] }, { name: 'b', shape: [4] }, { name: 'a', shape: [4] }], nodes: [{ name: 'y', op: '_FusedMatMul', input: ['x0', 'w', 'b', 'a'], attr: { fused_ops: fused('BiasAdd', 'Prelu'), num_args: { i: '2' } } }] },
      { title: 'MatMul transpose_a, BatchMatMulV2', inputs: [[5, 3], [2, 3, 4]], weights: [{ name: 'w', shape: [5, 3] }], nodes: [{ name: 'm', op: 'MatMul', input: ['x0', 'w'], attr: { transpose_a: { b: true } } }, { name: 'y', op: 'BatchMatMulV2', input: ['m', 'x1'] }] },
      { title: '_FusedConv2D [BiasAdd, Relu6], SAME stride 2 on odd sizes', inputs: [[2, 7, 5, 3]], weights: [{ name: 'w', shape: [3, 3, 3, 4] }, { name: 'b', shape: [4] }], nodes: [{ name: 'y', op: '_FusedConv2D', input: ['x0', 'w', 'b'], attr: { ...conv('SAME', 2), fused_ops: fused('BiasAdd', 'Relu6'), num_args: { i: '1' } } }] },
      { title: '_FusedConv2D [BiasAdd, Prelu], SAME 4x4 stride 2 (even kernel)', inputs: [[1, 8, 8, 2]], weights: [{ name: 'w', shape: [4, 4, 2, 3] }, { name: 'b', shape: [3] }, { name: 'a', shape: [1, 1, 3] }], nodes: [{ name: 'y', op: '_FusedConv2D', input: ['x0', 'w', 'b', 'a'], attr: { ...conv('SAME', 2), fused_ops: fused('BiasAdd', 'Prelu'), num_args: { i: '2' } } }] },
      { title: 'Conv2D dilated SAME, Conv2D EXPLICIT', inputs: [[1, 9, 9, 2]], weights: [{ name: 'w', shape: [3, 3, 2, 2] }, { name: 'w2', shape: [2, 2, 2, 3] }], nodes: [{ name: 'c', op: 'Conv2D', input: ['x0', 'w'], attr: conv('SAME', 1, 2) }, { name: 'y', op: 'Conv2D', input: ['c', 'w2'], attr: { ...conv('EXPLICIT', 2), explicit_paddings: ints(0, 0, 1, 0, 2, 1, 0, 0) } }] },
      { title: 'FusedDepthwiseConv2dNative multiplier 2 [BiasAdd, Elu], SAME stride 2', inputs: [[1, 6, 7, 3]], weights: [{ name: 'w', shape: [3, 3, 3, 2] }, { name: 'b', shape: [6] }], nodes: [{ name: 'y', op: 'FusedDepthwiseConv2dNative', input: ['x0', 'w', 'b'], attr: { ...conv('SAME', 2), fused_ops: fused('BiasAdd', 'Elu'), num_args: { i: '1' } } }] },
      { title: 'DepthwiseConv2dNative VALID + BiasAdd + Sigmoid', inputs: [[1, 6, 6, 2]], weights: [{ name: 'w', shape: [3, 3, 2, 1] }, { name: 'b', shape: [2] }], nodes: [{ name: 'd', op: 'DepthwiseConv2dNative', input: ['x0', 'w'], attr: conv('VALID', 1) }, { name: 'e', op: 'BiasAdd', input: ['d', 'b'], attr: { data_format: s('NHWC') } }, { name: 'y', op: 'Sigmoid', input: ['e'] }] },
      {
        title: 'MaxPool and AvgPool, SAME stride 2 (the padding does not count in the average)',
        inputs: [[1, 5, 7, 2]],
        weights: [],
        nodes: [
          { name: 'mp', op: 'MaxPool', input: ['x0'], attr: { ...conv('SAME', 2), ksize: ints(1, 3, 3, 1) } },
          { name: 'ap', op: 'AvgPool', input: ['x0'], attr: { ...conv('SAME', 2), ksize: ints(1, 3, 3, 1) } },
          { name: 'y', op: 'AddV2', input: ['mp', 'ap'] },
        ],
      },
      {
        title: 'Pad, ConcatV2, Mean, Sum, Max, Transpose, ExpandDims, Reshape, Squeeze',
        inputs: [[2, 3, 4]],
        weights: [{ name: 'pads', shape: [3, 2], int: [0, 0, 1, 2, 0, 1] }, { name: 'ax', shape: [], int: [-1] }, { name: 'ax1', shape: [1], int: [1] }, { name: 'perm', shape: [3], int: [2, 0, 1] }, { name: 'shape', shape: [2], int: [-1, 5] }, { name: 'zero', shape: [], int: [0] }],
        nodes: [
          { name: 'p', op: 'Pad', input: ['x0', 'pads'] },
          { name: 'c', op: 'ConcatV2', input: ['p', 'p', 'ax'], attr: { N: { i: '2' } } },
          { name: 'm', op: 'Mean', input: ['c', 'ax1'], attr: { keep_dims: { b: true } } },
          { name: 'sm', op: 'Sum', input: ['c', 'ax1'], attr: { keep_dims: { b: true } } },
          { name: 'mx', op: 'Max', input: ['c', 'ax1'], attr: { keep_dims: { b: true } } },
          { name: 'a', op: 'AddN', input: ['m', 'sm', 'mx'], attr: { N: { i: '3' } } },
          { name: 't', op: 'Transpose', input: ['a', 'perm'] },
          { name: 'e', op: 'ExpandDims', input: ['t', 'zero'] },
          { name: 'q', op: 'Squeeze', input: ['e'], attr: { squeeze_dims: ints(0, 3) } },
          { name: 'y', op: 'Reshape', input: ['q', 'shape'] },
        ],
      },
      {
        title: 'FusedBatchNormV3, Softmax, Tanh, Selu, SquaredDifference, Maximum, RealDiv, Rsqrt',
        inputs: [[2, 3, 3, 4]],
        weights: [{ name: 'g', shape: [4] }, { name: 'o', shape: [4] }, { name: 'mu', shape: [4] }, { name: 'var', shape: [4] }, { name: 'k', shape: [4] }],
        nodes: [
          { name: 'bn', op: 'FusedBatchNormV3', input: ['x0', 'g', 'o', 'mu', 'var'], attr: { epsilon: { f: 0.001 }, data_format: s('NHWC'), is_training: { b: false } } },
          { name: 'sm', op: 'Softmax', input: ['bn'] },
          { name: 'th', op: 'Tanh', input: ['bn'] },
          { name: 'se', op: 'Selu', input: ['bn'] },
          { name: 'sd', op: 'SquaredDifference', input: ['sm', 'th'] },
          { name: 'mx', op: 'Maximum', input: ['sd', 'se'] },
          { name: 'dv', op: 'RealDiv', input: ['mx', 'k'] },
          { name: 'sq', op: 'Square', input: ['dv'] },
          { name: 'ad', op: 'AddV2', input: ['sq', 'k'] },
          { name: 'y', op: 'Rsqrt', input: ['ad'] },
        ],
      },
      {
        title: 'Conv2DBackpropInput (transposed conv), SAME stride 2 (asymmetric: the extra row and column at the bottom / right), then VALID',
        inputs: [[1, 3, 4, 2]],
        weights: [{ name: 'os', shape: [4], int: [1, 6, 8, 3] }, { name: 'w', shape: [3, 3, 3, 2] }, { name: 'os2', shape: [4], int: [1, 8, 10, 2] }, { name: 'w2', shape: [3, 3, 2, 3] }],
        nodes: [
          { name: 'd', op: 'Conv2DBackpropInput', input: ['os', 'w', 'x0'], attr: conv('SAME', 2) },
          { name: 'y', op: 'Conv2DBackpropInput', input: ['os2', 'w2', 'd'], attr: conv('VALID', 1) },
        ],
      },
      {
        title: 'ResizeBilinear and ResizeNearestNeighbor: legacy, align_corners, half_pixel_centers',
        inputs: [[1, 5, 7, 2]],
        weights: [{ name: 'up', shape: [2], int: [9, 11] }, { name: 'down', shape: [2], int: [3, 4] }],
        nodes: [
          { name: 'b0', op: 'ResizeBilinear', input: ['x0', 'up'] },
          { name: 'b1', op: 'ResizeBilinear', input: ['x0', 'up'], attr: { align_corners: { b: true } } },
          { name: 'b2', op: 'ResizeBilinear', input: ['x0', 'up'], attr: { half_pixel_centers: { b: true } } },
          { name: 'n0', op: 'ResizeNearestNeighbor', input: ['x0', 'up'] },
          { name: 'n1', op: 'ResizeNearestNeighbor', input: ['x0', 'up'], attr: { align_corners: { b: true } } },
          { name: 'n2', op: 'ResizeNearestNeighbor', input: ['x0', 'up'], attr: { half_pixel_centers: { b: true } } },
          { name: 'b3', op: 'ResizeBilinear', input: ['x0', 'down'], attr: { half_pixel_centers: { b: true } } },
          { name: 'n3', op: 'ResizeNearestNeighbor', input: ['b3', 'up'], attr: { half_pixel_centers: { b: true } } },
          { name: 'y', op: 'AddN', input: ['b0', 'b1', 'b2', 'n0', 'n1', 'n2', 'n3'], attr: { N: { i: '7' } } },
        ],
      },
      {
        title: 'Slice, StridedSlice (masks, stride 2, negative bounds, shrink), Split, SplitV (outputs :1, :2), Pack, DepthToSpace, Cast',
        inputs: [[2, 6, 8, 4]],
        weights: [
          { name: 'sb', shape: [4], int: [0, 1, 0, 0] },
          { name: 'ss', shape: [4], int: [-1, 4, 6, -1] },
          { name: 'b', shape: [4], int: [0, -5, 1, 0] },
          { name: 'e', shape: [4], int: [0, -1, 7, 3] },
          { name: 'st', shape: [4], int: [1, 2, 2, 1] },
          { name: 'b2', shape: [4], int: [0, 0, 0, 0] },
          { name: 'e2', shape: [4], int: [0, 8, 12, 1] },
          { name: 'st2', shape: [4], int: [1, 3, 5, 1] },
          { name: 'axis3', shape: [], int: [3] },
          { name: 'sizes', shape: [3], int: [1, -1, 1] },
          { name: 'rs', shape: [4], int: [2, 4, 6, 4] },
          { name: 'flat', shape: [2], int: [2, -1] },
          { name: 'ax1', shape: [], int: [1] },
        ],
        nodes: [
          { name: 'sl', op: 'Slice', input: ['x0', 'sb', 'ss'] }, // [2, 4, 6, 4]
          { name: 'sts', op: 'StridedSlice', input: ['sl', 'b', 'e', 'st'], attr: { begin_mask: { i: '1' }, end_mask: { i: '1' } } }, // [2, 2, 3, 3]
          { name: 'sp', op: 'Split', input: ['axis3', 'sl'], attr: { num_split: { i: '2' } } }, // 2 x [2, 4, 6, 2]
          { name: 'spv', op: 'SplitV', input: ['sl', 'sizes', 'axis3'], attr: { num_split: { i: '3' } } }, // [..., 1], [..., 2], [..., 1]
          { name: 'pk', op: 'Pack', input: ['sp:1', 'spv:1'], attr: { axis: { i: '-1' }, N: { i: '2' } } }, // [2, 4, 6, 2, 2]
          { name: 'r', op: 'Reshape', input: ['pk', 'rs'] }, // [2, 4, 6, 4]
          { name: 'd2s', op: 'DepthToSpace', input: ['r'], attr: { block_size: { i: '2' }, data_format: s('NHWC') } }, // [2, 8, 12, 1]
          { name: 'sh', op: 'StridedSlice', input: ['d2s', 'b2', 'e2', 'st2'], attr: { begin_mask: { i: '1' }, end_mask: { i: '1' }, shrink_axis_mask: { i: '8' } } }, // [2, 3, 3]
          { name: 'ci', op: 'Cast', input: ['sh'], attr: { SrcT: { type: 'DT_FLOAT' }, DstT: { type: 'DT_INT32' } } },
          { name: 'cf', op: 'Cast', input: ['ci'], attr: { SrcT: { type: 'DT_INT32' }, DstT: { type: 'DT_FLOAT' } } },
          { name: 'f1', op: 'Reshape', input: ['sts', 'flat'] },
          { name: 'f2', op: 'Reshape', input: ['cf', 'flat'] },
          { name: 'f3', op: 'Reshape', input: ['spv', 'flat'] },
          { name: 'f4', op: 'Reshape', input: ['spv:2', 'flat'] },
          { name: 'f5', op: 'Reshape', input: ['d2s', 'flat'] },
          { name: 'y', op: 'ConcatV2', input: ['f1', 'f2', 'f3', 'f4', 'f5', 'ax1'], attr: { N: { i: '5' } } },
        ],
      },
    ];

    function writeGraph(dir: string, c: Case): string {
      fs.mkdirSync(dir, { recursive: true });
      const bufs: Buffer[] = [];
      const entries = c.weights.map((w, k) => {
        const n = w.shape.reduce((a, b) => a * b, 1);
        // positive variances; other weights in [-1, 1)
        const data = w.int ? Int32Array.from(w.int) : seededUniform(n, 100 + k).map((v) => (w.name === 'var' || w.name === 'k' ? 0.5 + v : 2 * v - 1));
        bufs.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
        return { name: w.name, shape: w.shape, dtype: w.int ? 'int32' : 'float32' };
      });
      fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.concat(bufs));
      const nodes = [
        ...c.inputs.map((shape, i) => ({ name: `x${i}`, op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: shape.map((d) => ({ size: String(d) })) } } } })),
        ...c.weights.map((w) => ({ name: w.name, op: 'Const', attr: { dtype: { type: w.int ? 'DT_INT32' : 'DT_FLOAT' } } })),
        ...c.nodes,
      ];
      const file = path.join(dir, 'model.json');
      fs.writeFileSync(file, JSON.stringify({ format: 'graph-model', modelTopology: { node: nodes, versions: { producer: 1286 } }, weightsManifest: [{ paths: ['w.bin'], weights: entries }] }));
      return file;
    }

    CASES.forEach((c, ci) => {
      it(c.title, async () => {
        const file = writeGraph(path.join(tmp, `case${ci}`), c);
        const m = await loadTfjsGraphModel(file);
        assert.deepEqual(m.outputNames, ['y']);
        const inputs = c.inputs.map((shape, i) => ({ shape, data: seededUniform(shape.reduce((a, b) => a * b, 1), 7 + i).map((v) => 4 * v - 2) }));
        const [ref] = await referenceOutputs(file, inputs, c.backend);
        const ours = m.forward(...inputs.map((x) => tensor(x.data, { shape: x.shape }))) as tf.Tensor;
        assert.deepEqual(ours.shape, ref.shape);
        const d = maxAbsDiff(ours.data() as Float32Array, ref.data);
        assert.ok(d <= 1e-5, `max abs diff ${d}`);
        // traced on a worker thread: the same values, and a second input replays to its own values
        const xs = inputs.map((x) => tensor(x.data, { shape: x.shape }));
        const [traced1] = await m.run(...xs);
        assert.ok(maxAbsDiff(traced1.data() as Float32Array, ours.data() as Float32Array) <= 1e-5, 'traced run differs from forward()');
        const xs2 = c.inputs.map((shape, i) => tensor(seededUniform(shape.reduce((a, b) => a * b, 1), 70 + i).map((v) => 4 * v - 2), { shape }));
        const [traced2] = await m.run(...xs2);
        const eager2 = noGrad(() => m.forward(...xs2) as tf.Tensor);
        assert.ok(maxAbsDiff(traced2.data() as Float32Array, eager2.data() as Float32Array) <= 1e-5, 'replay differs from forward() on a second input');
        assert.ok(maxAbsDiff(traced2.data() as Float32Array, traced1.data() as Float32Array) > 1e-4, 'the replay did not follow its input');
        // batch-norm statistics are buffers, not parameters
        if (c.nodes.some((n) => n.op.startsWith('FusedBatchNorm'))) {
          assert.deepEqual(m.buffers().length, 2);
          assert.ok(!m.parameterName('mu') || !m.parameters().includes(m.stateDict().get(m.parameterName('mu')!)!));
        }
        // and autograd reaches every float weight
        if (m.parameters().length) {
          ours.square().sum().backward();
          for (const [name, p] of m.namedParameters()) assert.ok((p.grad!.data() as Float32Array).some((v) => v !== 0), `${name}: zero gradient`);
        }
        m.dispose();
      });
    });
  });

  describe('training mobilefacenet', () => {
    it('gradients flow to the weights; one SGD step changes the output; the state dict round-trips', async () => {
      const m = await loadTfjsGraphModel(modelFile('mobilefacenet'));
      const input = fixedInput(m, 99, [0, 1]);
      const x = tensor(input.data, { shape: input.shape });
      const target = tensor(seededUniform(192, 5).map((v) => v - 0.5), { shape: [1, 192] });
      const before = noGrad(() => m.forward(x) as tf.Tensor);
      // the embedding is L2-normalised: pull it towards a fixed direction
      const out = m.forward(x) as tf.Tensor;
      const loss = out.mul(target).sum().neg();
      loss.backward();
      const params = [...m.namedParameters()];
      const zero: string[] = [];
      for (const [name, p] of params) {
        const g = p.grad;
        assert.ok(g, `${name} has no gradient`);
        const gd = g.data() as Float32Array;
        assert.ok(gd.every(Number.isFinite), `${name}: non-finite gradient`);
        if (!gd.some((v) => v !== 0)) zero.push(name);
      }
      // Every filter and bias learns. The only zero gradients are the 16 PReLU alphas the
      // converter left behind a fused Relu (FusedDepthwiseConv2dNative [BiasAdd, Relu] -> x - |x| = 0):
      // dead in the graph itself, in tfjs as well.
      assert.ok(zero.every((n) => /SeparableConv2d\/mul$/.test(n)), `zero gradients: ${zero.join(', ')}`);
      assert.ok(zero.length <= 16, `${zero.length} zero gradients`);
      assert.ok(params.length > 100);
      const sgd = new optim.SGD(m.parameters(), { lr: 0.05 });
      sgd.step();
      const after = noGrad(() => m.forward(x) as tf.Tensor);
      const change = maxAbsDiff(before.data() as Float32Array, after.data() as Float32Array);
      // the traced worker-thread run uses the trained weights too
      const [replayed] = await m.run(x);
      assert.ok(maxAbsDiff(replayed.data() as Float32Array, after.data() as Float32Array) <= 1e-5);
      assert.ok(change > 1e-3, `one SGD step changed the output by only ${change}`);
      const lossAfter = -(noGrad(() => after.mul(target).sum()).item());
      assert.ok(lossAfter < loss.item(), `loss ${loss.item()} -> ${lossAfter}`);

      // save the trained weights; a fresh import differs until they are loaded
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-tfjs-graph-sd-')), 'mobilefacenet.safetensors');
      await saveStateDict(file, m.stateDict());
      const fresh = await loadTfjsGraphModel(modelFile('mobilefacenet'));
      const untrained = noGrad(() => fresh.forward(x) as tf.Tensor);
      assert.ok(maxAbsDiff(untrained.data() as Float32Array, after.data() as Float32Array) > 1e-3);
      assert.equal(maxAbsDiff(untrained.data() as Float32Array, before.data() as Float32Array), 0);
      const { stateDict } = await loadStateDict(file);
      assert.deepEqual([...stateDict.keys()].sort(), [...m.stateDict().keys()].sort());
      fresh.loadStateDict(stateDict);
      const restored = noGrad(() => fresh.forward(x) as tf.Tensor);
      assert.equal(maxAbsDiff(restored.data() as Float32Array, after.data() as Float32Array), 0);
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
      m.dispose();
      fresh.dispose();
    });
  });

  describe('traced runs on a worker thread', () => {
    it('blazeface-back: run() equals forward() (4 outputs), and replays', async () => {
      const m = await loadTfjsGraphModel(modelFile('blazeface-back'));
      const input = fixedInput(m, 3, [-1, 1]);
      const x = tensor(input.data, { shape: input.shape });
      const eager = noGrad(() => m.forwardAll([x]));
      const first = await m.run(x); // traces
      const second = await m.run(x); // replays
      assert.equal(first.length, 4);
      // Equal up to float32 rounding: the replay may run with another intra-op thread count than
      // this thread (the style tests' worker changes it), and so sum in another order; seen: 4.4e-5.
      const close = (a: tf.Tensor, b: tf.Tensor) => maxAbsDiff(a.data() as Float32Array, b.data() as Float32Array) <= 1e-4 + 1e-6 * maxAbsDiff(b.data() as Float32Array, new Float32Array(b.numel));
      for (const [i, e] of eager.entries()) {
        assert.deepEqual(first[i].shape, e.shape);
        const d1 = maxAbsDiff(first[i].data() as Float32Array, e.data() as Float32Array);
        const d2 = maxAbsDiff(second[i].data() as Float32Array, e.data() as Float32Array);
        assert.ok(close(first[i], e), `output ${i} (trace): ${d1}`);
        assert.ok(close(second[i], e), `output ${i} (replay): ${d2}`);
      }
      // a different input gives different outputs through the same trace
      const y = tensor(fixedInput(m, 4, [-1, 1]).data, { shape: input.shape });
      const third = await m.run(y);
      const eagerY = noGrad(() => m.forwardAll([y]));
      assert.ok(close(third[1], eagerY[1]));
      assert.ok(maxAbsDiff(third[1].data() as Float32Array, second[1].data() as Float32Array) > 1e-3);
      // the event loop keeps turning while replays run
      let ticks = 0;
      const timer = setInterval(() => ticks++, 0);
      const runs = [];
      for (let i = 0; i < 4; i++) runs.push(m.run(x));
      await Promise.all(runs);
      clearInterval(timer);
      assert.ok(ticks >= 1, 'no timer ran during four replays');
      m.dispose();
    });

    it('facemesh on CUDA equals CPU (eager and traced)', async function () {
      needs(this, 'cuda');
      const m = await loadTfjsGraphModel(modelFile('facemesh'));
      const input = fixedInput(m, 11, [0, 1]);
      const x = tensor(input.data, { shape: input.shape });
      const cpu = noGrad(() => m.forwardAll([x]));
      m.to('cuda');
      const xg = x.cuda();
      const gpu = noGrad(() => m.forwardAll([xg]));
      const gpuTraced = await m.run(xg);
      for (const [i, c] of cpu.entries()) {
        assert.equal(gpu[i].device, 'cuda:0');
        const d = maxAbsDiff(gpu[i].data() as Float32Array, c.data() as Float32Array);
        console.log(`      facemesh ${m.outputNames[i]}: max |cuda - cpu| ${d.toExponential(2)}`);
        assert.ok(d <= 1e-3, `output ${i}: ${d}`);
        assert.ok(maxAbsDiff(gpuTraced[i].data() as Float32Array, gpu[i].data() as Float32Array) <= 1e-4);
      }
      m.dispose();
    });
  });
});
