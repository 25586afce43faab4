// Model files: .safetensors state dicts with metadata (round trips, Python
// interop both ways, atomic saves), PyTorch .pt checkpoints (values, a ResNet
// that loads strictly and computes the same output, refusal of malicious
// pickles) and tfjs manifests.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import {
  FileFormatError,
  ResNet,
  Tensor,
  fromBytes,
  loadPytorchStateDict,
  loadStateDict,
  loadTfjsWeights,
  manualSeed,
  noGrad,
  randn,
  saveStateDict,
  tensor,
  toBytes,
  versions,
} from '../../lib';
import { listStaleTempFiles } from '../../lib/io/atomic';
import { faceApiModelDir, readTfjsWeights } from '../../lib/io/tfjs';
import { HELPERS, needs, runPython } from '../helpers/peers';
import { relError, tmpDir } from '../helpers/torch';

const sameBytes = (a: Tensor, b: Tensor) => a.dtype === b.dtype && a.shape.join() === b.shape.join() && Buffer.compare(Buffer.from(toBytes(a)), Buffer.from(toBytes(b))) === 0;

describe('model files: safetensors state dicts', function () {
  let dir: string;
  before(() => (dir = tmpDir('torchface-modelfile-')));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function everyDtype(): Map<string, Tensor> {
    manualSeed(9);
    const f = randn([3, 4]);
    return new Map<string, Tensor>([
      ['layer.weight', f],
      ['layer.f64', f.to('float64')],
      ['half', fromBytes(new Uint8Array(new Uint16Array([0x3c00, 0xc0a0, 0x7bff, 0x0001]).buffer), [4], 'float16')],
      ['bf', fromBytes(new Uint8Array(new Uint16Array([0x3f80, 0xc020, 0x4049]).buffer), [3], 'bfloat16')],
      ['ids', tensor(new BigInt64Array([2n ** 40n + 3n, -(2n ** 62n) + 5n]))],
      ['i32', tensor(new Int32Array([-5, 7]))],
      ['i16', tensor([1, -2], { dtype: 'int16' })],
      ['i8', tensor(new Int8Array([-128, 127]))],
      ['u8', tensor(new Uint8Array([0, 255]))],
      ['mask', tensor([true, false, true])],
      ['scalar', tensor(2.5)],
      ['empty', randn([0, 3])],
    ]);
  }

  it('round-trips every dtype bit-exactly with metadata and versions', async () => {
    const sd = everyDtype();
    const file = path.join(dir, 'all.safetensors');
    await saveStateDict(file, sd, { architecture: 'test-net', hyperParameters: { width: 8, lr: 1e-3, layers: [1, 2] } });
    const loaded = await loadStateDict(file);
    assert.deepEqual([...loaded.stateDict.keys()].sort(), [...sd.keys()].sort());
    for (const [k, t] of sd) assert.ok(sameBytes(loaded.stateDict.get(k)!, t), k);
    assert.deepEqual(loaded.metadata, { architecture: 'test-net', hyperParameters: { width: 8, lr: 1e-3, layers: [1, 2] } });
    assert.deepEqual(loaded.versions, versions());
    assert.equal(loaded.fileMetadata.format, 'pt');
    // float16 / bfloat16 bit patterns read as the right numbers
    assert.deepEqual(Array.from(loaded.stateDict.get('half')!.data() as Float32Array), [1, -2.3125, 65504, 2 ** -24]);
    assert.deepEqual(Array.from(loaded.stateDict.get('bf')!.data() as Float32Array), [1, -2.5, 3.140625]);
  });

  it('a failed (aborted) save leaves the previous file intact and no temp files', async () => {
    const file = path.join(dir, 'keep.safetensors');
    await saveStateDict(file, new Map([['a', tensor([1, 2])]]), { architecture: 'v1' });
    const before = fs.readFileSync(file);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(saveStateDict(file, new Map([['a', randn([1000])]]), { architecture: 'v2' }, { signal: ac.signal }));
    assert.ok(Buffer.compare(fs.readFileSync(file), before) === 0);
    assert.deepEqual(listStaleTempFiles(file, { includeLive: true }), []);
    assert.equal((await loadStateDict(file)).metadata.architecture, 'v1');
  });

  it('rejects non-tensor values and unserialisable metadata before writing', async () => {
    const file = path.join(dir, 'bad.safetensors');
    await assert.rejects(saveStateDict(file, new Map([['a', 3 as unknown as Tensor]])), /stateDict\['a'\]/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await assert.rejects(saveStateDict(file, new Map([['a', tensor([1])]]), cyclic), /metadata/);
    assert.equal(fs.existsSync(file), false);
  });

  describe('interop with Python (safetensors_ref.py)', function () {
    before(function () {
      needs(this, 'python-torch');
    });

    it('loads a file written by Python with equal values', async () => {
      const file = path.join(dir, 'py.safetensors');
      const desc = JSON.parse(runPython([path.join(HELPERS, 'safetensors_ref.py'), 'write', file]));
      const { stateDict, fileMetadata } = await loadStateDict(file);
      assert.deepEqual(fileMetadata, desc.metadata);
      for (const [name, d] of Object.entries(desc.tensors) as [string, { shape: number[]; values?: (number | string)[] }][]) {
        const t = stateDict.get(name)!;
        assert.deepEqual(t.shape, d.shape, name);
        if (d.values) assert.deepEqual(Array.from(t.data() as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? String(v) : Number(v))), d.values, name);
      }
    });

    it('writes a file Python reads with equal values and our metadata', async () => {
      const sd = everyDtype();
      const file = path.join(dir, 'ours.safetensors');
      await saveStateDict(file, sd, { architecture: 'x' });
      const desc = JSON.parse(runPython([path.join(HELPERS, 'safetensors_ref.py'), 'read', file]));
      assert.deepEqual(JSON.parse(desc.metadata['torchface.metadata']), { architecture: 'x' });
      for (const [name, t] of sd) {
        const d = desc.tensors[name];
        assert.deepEqual(d.shape, t.shape, name);
        const ours = Array.from(t.data() as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? String(v) : Number(v)));
        if (d.values) assert.deepEqual(d.values, ours, name);
      }
    });
  });
});

describe('model files: PyTorch .pt checkpoints', function () {
  let dir: string;
  before(function () {
    needs(this, 'python-torch');
    dir = tmpDir('torchface-pt-');
    runPython([path.join(HELPERS, 'make_checkpoints.py'), dir]);
  });
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  it('torch.save(model.state_dict()) of a ResNet loads strictly into torchface.ResNet, which then computes the same output', async () => {
    const sd = await loadPytorchStateDict(path.join(dir, 'resnet.pt'));
    const ref = (await loadStateDict(path.join(dir, 'resnet.safetensors'))).stateDict;
    for (const [k, t] of sd) assert.ok(sameBytes(t, ref.get(k)!), `${k} equals the Python value`);
    assert.ok(sd.has('layer2.0.downsample.1.running_var') && sd.has('bn1.num_batches_tracked'));
    const model = new ResNet({ width: 8, outFeatures: 5, inputSize: 32, stem: 'imagenet' });
    assert.deepEqual(model.loadStateDict(sd), { missing: [], unexpected: [] });
    model.eval();
    const y = noGrad(() => model.forward(ref.get('input')!));
    const err = relError(y, ref.get('output')!);
    assert.ok(err < 1e-5, `output relative error ${err}`);
    // training mode: output and gradients of sum(out^2) match PyTorch's
    model.train();
    const x = ref.get('input')!.clone().requiresGrad_(true);
    const out = model.forward(x);
    out.square().sum().backward();
    const checks: [string, Tensor][] = [
      ['train_output', out.detach()],
      ['train_input_grad', x.grad!],
      ['train_conv1_grad', model.stateDict().get('conv1.weight')!.grad!],
      ['train_fc_grad', model.stateDict().get('fc.weight')!.grad!],
      ['train_layer4_conv2_grad', model.stateDict().get('layer4.1.conv2.weight')!.grad!],
    ];
    // Per-layer parity is 1e-5 (test/parity/nn.test.ts); through 18 layers of training-mode
    // BatchNorm over batch 2 (layer4 normalises 2 values per channel) float32
    // rounding differences grow, measured up to ~2.2e-5, so the whole network gets 1e-4.
    for (const [k, t] of checks) {
      const e = relError(t, ref.get(k)!);
      assert.ok(e < 1e-4, `${k}: relative error ${e}`);
    }
    // and the comparison can fail: eval-mode output is not the training output
    assert.ok(relError(y, ref.get('train_output')!) > 1e-3);
  });

  it('nested checkpoints give dotted names; strided views, float16, bfloat16, int64, bool and tied tensors load with equal values', async () => {
    const sd = await loadPytorchStateDict(path.join(dir, 'checkpoint.pt'));
    const ref = (await loadStateDict(path.join(dir, 'checkpoint.safetensors'))).stateDict;
    assert.deepEqual([...sd.keys()].sort(), [...ref.keys()].sort());
    for (const [k, t] of ref) assert.ok(sameBytes(sd.get(k)!, t), k);
    assert.notEqual(sd.get('tied.0'), sd.get('tied.1'));
  });

  it('refuses a pickle hiding os.system in __reduce__ without running it (torch.load in Python does run it)', async () => {
    await assert.rejects(loadPytorchStateDict(path.join(dir, 'evil_a.pt')), (e: Error) => e instanceof FileFormatError && /refusing to load global 'posix\.system'/.test(e.message));
    assert.equal(fs.existsSync(path.join(dir, 'pwned_a')), false, 'the command did not run');
    runPython([path.join(HELPERS, 'make_checkpoints.py'), dir, '--load-evil-b']);
    assert.equal(fs.existsSync(path.join(dir, 'pwned_b')), true, 'the file really is malicious');
  });

  it('explains legacy (pre-1.6) files and non-checkpoints', async () => {
    await assert.rejects(loadPytorchStateDict(path.join(dir, 'legacy.pt')), /legacy \(pre-1\.6/);
    await assert.rejects(loadPytorchStateDict(path.join(dir, 'resnet.safetensors')), FileFormatError);
  });
});

describe('model files: tfjs weights', () => {
  it('loadTfjsWeights gives tensors equal to the manifest reader', async () => {
    const manifest = path.join(faceApiModelDir(), 'face_landmark_68_tiny_model-weights_manifest.json');
    const tensors = await loadTfjsWeights(manifest);
    const raw = await readTfjsWeights(manifest);
    assert.deepEqual([...tensors.keys()], [...raw.keys()]);
    for (const [k, w] of raw) {
      const t = tensors.get(k)!;
      assert.deepEqual(t.shape, w.shape, k);
      assert.deepEqual(Array.from(t.data() as Float32Array), Array.from(w.data), k);
    }
  });
});
