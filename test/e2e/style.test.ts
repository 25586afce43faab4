// Style transfer (issue #5): each cost against a direct computation (values and
// gradients), VGG-19 loading against PyTorch, the generation loop (cost drops,
// progress, cancel, worker keeps the event loop free), option errors, and the
// top-activating-patches visualisation.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';
import { ArgumentError, Tensor, grad, manualSeed, noGrad, randn, tensor, tidy } from '../../lib';
import { RgbImage } from '../../lib/image';
import { fromTypedArray, saveSafetensorsSync } from '../../lib/io/safetensors';
import { loadTorchStateDictBytes } from '../../lib/io/pickle';
import {
  CancelledError,
  FaceRecognitionFeatures,
  FeatureNetwork,
  layerInfo,
  MobileNetFeatures,
  StyleProgress,
  VGG19_LAYERS,
  Vgg19,
  contentCost,
  gramMatrix,
  layerStyleCost,
  loadVgg19,
  styleCost,
  styleTransfer,
  topActivatingPatches,
  totalCost,
  totalVariation,
} from '../../lib/style';
import { landscapeContent, mosaicStyle, stripesStyle, wavesStyle } from '../helpers/style-images';
import { HELPERS, PYTHON, needs } from '../helpers/peers';
import { assertClose, values } from '../helpers/util';

const vals = (t: Tensor): number[] => Array.from(t.data() as Float64Array, Number);

/** a as n_C rows of n_H * n_W values (C x H x W, row-major). */
function rows(a: number[], c: number): number[][] {
  const m = a.length / c;
  return Array.from({ length: c }, (_, k) => a.slice(k * m, (k + 1) * m));
}
function directGram(a: number[], c: number): number[][] {
  const r = rows(a, c);
  return r.map((x) => r.map((y) => x.reduce((s, v, i) => s + v * y[i], 0)));
}

describe('style: costs against direct computations', () => {
  const C = 3;
  const H = 4;
  const W = 5;
  let aC: Tensor;
  let aG: Tensor;
  let aS: Tensor;
  before(() => {
    manualSeed(5);
    aC = randn([1, C, H, W], { dtype: 'float64' });
    aG = randn([1, C, H, W], { dtype: 'float64' });
    aS = randn([1, C, H + 2, W + 1], { dtype: 'float64' }); // style maps may differ in size
  });
  after(() => [aC, aG, aS].forEach((t) => t.dispose()));

  it('gramMatrix is sum_i sum_j a_ijk a_ijk` (unbatched and batched)', () => {
    const g = gramMatrix(aG);
    assert.deepEqual(g.shape, [1, C, C]);
    assertClose(g, directGram(vals(aG), C), 1e-12, 1e-12, 'gram');
    const g3 = gramMatrix(aG.squeeze(0));
    assert.deepEqual(g3.shape, [C, C]);
    assertClose(g3, directGram(vals(aG), C), 1e-12, 1e-12, 'gram 3-D');
    const two = tidy(() => gramMatrix(tensor([...vals(aG), ...vals(aC)], { shape: [2, C, H, W], dtype: 'float64' })));
    assertClose(two, [directGram(vals(aG), C), directGram(vals(aC), C)], 1e-12, 1e-12, 'batched gram');
    [g, g3, two].forEach((t) => t.dispose());
  });

  it('contentCost = 1/2 ||a(C) - a(G)||^2 and its gradient is a(G) - a(C)', () => {
    const c = vals(aC);
    const g = vals(aG);
    const expected = 0.5 * c.reduce((s, v, i) => s + (v - g[i]) ** 2, 0);
    const x = aG.clone().requiresGrad_(true);
    const j = contentCost(aC, x);
    assertClose(j.item(), expected, 1e-12, 1e-12, 'J_content');
    const [dx] = grad(j, x);
    assertClose(dx!, g.map((v, i) => v - c[i]), 1e-12, 1e-12, 'dJ/da(G)');
    [x, j, dx!].forEach((t) => t.dispose());
  });

  it('layerStyleCost = 1/(2 nH nW nC)^2 sum (G(S) - G(G))^2, gradient 4k (G(G) - G(S)) A', () => {
    const gs = directGram(vals(aS), C);
    const gg = directGram(vals(aG), C);
    const k = 1 / (2 * H * W * C) ** 2;
    let sum = 0;
    for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) sum += (gs[a][b] - gg[a][b]) ** 2;
    const x = aG.clone().requiresGrad_(true);
    const j = layerStyleCost(aS, x);
    assertClose(j.item(), k * sum, 1e-12, 1e-10, 'J_style[l]');
    const [dx] = grad(j, x);
    // dJ/dA = 4k (G(G) - G(S)) A, A = a(G) as C x (H W)
    const A = rows(vals(aG), C);
    const expected = A.flatMap((_, r) => A[0].map((__, col) => 4 * k * A.reduce((s, row, q) => s + (gg[r][q] - gs[r][q]) * row[col], 0)));
    assertClose(dx!, expected, 1e-12, 1e-9, 'dJ_style/da(G)');
    // the precomputed-Gram form gives the same value
    const gram = gramMatrix(aS);
    const j2 = layerStyleCost({ gram }, aG);
    assertClose(j2.item(), k * sum, 1e-12, 1e-10, 'J_style[l] from a Gram');
    [x, j, dx!, gram, j2].forEach((t) => t.dispose());
  });

  it('styleCost = sum_l lambda_l J_style[l]; 0 for an image with itself', () => {
    const s2 = randn([1, 2, 3, 3], { dtype: 'float64' });
    const g2 = randn([1, 2, 3, 3], { dtype: 'float64' });
    const j = styleCost({ a: aS, b: s2 }, { a: aG, b: g2 }, { a: 0.3, b: 0.7 });
    const ja = layerStyleCost(aS, aG).item();
    const jb = layerStyleCost(s2, g2).item();
    assertClose(j.item(), 0.3 * ja + 0.7 * jb, 1e-12, 1e-10, 'J_style');
    assert.ok(ja > 0 && jb > 0);
    const self = styleCost({ a: aG, b: g2 }, { a: aG, b: g2 }, { a: 0.5, b: 0.5 });
    assert.equal(self.item(), 0);
    [s2, g2, j, self].forEach((t) => t.dispose());
  });

  it('totalVariation (value and gradient by finite differences) and totalCost = alpha Jc + beta Js + w TV', () => {
    const x = randn([1, 2, 3, 4], { dtype: 'float64' });
    const v = vals(x);
    const tvOf = (a: number[]) => {
      let s = 0;
      for (let c = 0; c < 2; c++)
        for (let i = 0; i < 3; i++)
          for (let k = 0; k < 4; k++) {
            const at = (ii: number, kk: number) => a[c * 12 + ii * 4 + kk];
            if (i + 1 < 3) s += (at(i + 1, k) - at(i, k)) ** 2;
            if (k + 1 < 4) s += (at(i, k + 1) - at(i, k)) ** 2;
          }
      return s;
    };
    const xg = x.clone().requiresGrad_(true);
    const tv = totalVariation(xg);
    assertClose(tv.item(), tvOf(v), 1e-12, 1e-12, 'TV');
    const [dx] = grad(tv, xg, { retainGraph: true });
    const h = 1e-6;
    const fd = v.map((_, i) => {
      const p = v.slice();
      const m = v.slice();
      p[i] += h;
      m[i] -= h;
      return (tvOf(p) - tvOf(m)) / (2 * h);
    });
    assertClose(dx!, fd, 1e-6, 1e-6, 'dTV/dx');
    const jc = tensor(3, { dtype: 'float64' });
    const js = tensor(0.5, { dtype: 'float64' });
    const j = totalCost(jc, js, 10, 40, { cost: tv, weight: 0.1 });
    assertClose(j.item(), 10 * 3 + 40 * 0.5 + 0.1 * tvOf(v), 1e-10, 1e-12, 'J');
    const j0 = totalCost(jc, js, 2, 3);
    assert.equal(j0.item(), 7.5);
    [x, xg, tv, dx!, jc, js, j, j0].forEach((t) => t.dispose());
  });

  it('rejects mismatched activations with ArgumentErrors', () => {
    const other = randn([1, C, H + 1, W], { dtype: 'float64' });
    assert.throws(() => contentCost(aC, other), (e: Error) => e instanceof ArgumentError && /aC, aG/.test(e.message));
    const fewer = randn([1, C - 1, H, W], { dtype: 'float64' });
    assert.throws(() => layerStyleCost(fewer, aG), ArgumentError);
    assert.throws(() => styleCost({ a: aS }, { a: aG }, {}), /lambdas/);
    assert.throws(() => gramMatrix(tensor([1, 2, 3])), /C x H x W/);
    other.dispose();
    fewer.dispose();
  });
});

describe('style: feature networks', () => {
  let mobilenet: MobileNetFeatures;
  before(async () => {
    mobilenet = await MobileNetFeatures.load();
  });
  after(() => mobilenet?.dispose());

  it('style cost of an image with itself is 0 and of another image > 0 (MobileNet preset layers)', () => {
    const p = mobilenet.preset;
    const layers = Object.keys(p.styleLayers);
    const a = tidy(() => noGrad(() => mobilenet.features(imageTensor(wavesStyle(64)), layers)));
    const b = tidy(() => noGrad(() => mobilenet.features(imageTensor(mosaicStyle(64)), layers)));
    const self = styleCost(a, a, p.styleLayers);
    const cross = styleCost(a, b, p.styleLayers);
    assert.equal(self.item(), 0);
    assert.ok(cross.item() > 0);
    [self, cross, ...a.values(), ...b.values()].forEach((t) => t.dispose());
  });

  it("MobileNet pre-ReLU6 features, clamped to [0, 6], equal the backbone's own layer outputs", () => {
    const layers = ['conv_0', 'conv_3', 'conv_7', 'conv_13'];
    tidy(() =>
      noGrad(() => {
        const x = imageTensor(landscapeContent(64, 64));
        const pre = mobilenet.features(x, layers);
        const own = mobilenet.net.features(x, layers);
        let below = 0;
        for (const n of layers) {
          const diff = pre.get(n)!.clamp(0, 6).sub(own.get(n)!).abs().max().item();
          assert.ok(diff < 1e-4, `${n}: ${diff}`);
          below += pre.get(n)!.lt(0).sum().item();
        }
        assert.ok(below > 0, 'pre-activation maps have negative values');
      }),
    );
  });

  it('VGG-19 loads a torchvision-layout state dict written by Python torch (.pth) and safetensors; features match PyTorch within 1e-4', async function () {
    this.timeout(300_000);
    needs(this, 'python-torch');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-vgg-'));
    try {
      const r = spawnSync(PYTHON, [path.join(HELPERS, 'vgg19_ref.py'), dir], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const net = loadVgg19(path.join(dir, 'vgg19.pth'));
      const load = (f: string) => loadTorchStateDictBytes(fs.readFileSync(path.join(dir, f)), f);
      const input = [...load('input.pt').values()][0];
      const ref = Object.fromEntries(load('features.pt'));
      const names = Object.keys(ref);
      assert.deepEqual(names.sort(), ['conv1_1', 'conv2_2', 'conv3_1', 'conv4_2', 'conv5_1', 'pool5']);
      const check = (n: Vgg19, what: string) => {
        const acts = noGrad(() => n.features(input, names));
        for (const name of names) {
          const want = ref[name];
          const got = acts.get(name)!;
          assert.deepEqual(got.shape, want.shape, `${what} ${name} shape`);
          const scale = Math.max(1, tidy(() => want.abs().max().item()));
          const diff = tidy(() => got.sub(want).abs().max().item());
          assert.ok(diff <= 1e-4 * scale, `${what} ${name}: max |diff| ${diff} > 1e-4 x ${scale}`);
        }
        for (const t of acts.values()) t.dispose();
      };
      check(net, '.pth');
      // the same weights through safetensors
      const st = path.join(dir, 'vgg19.safetensors');
      const raw = new Map([...net.stateDict()].map(([k, t]) => [k, fromTypedArray('float32', t.shape, t.data())]));
      saveSafetensorsSync(st, raw);
      const net2 = loadVgg19(st);
      check(net2, '.safetensors');
      // and drives styleTransfer in the worker from the .pth path
      const run = await styleTransfer({ content: landscapeContent(32, 32), style: wavesStyle(32), network: 'vgg19', weights: path.join(dir, 'vgg19.pth'), size: 32, iterations: 2 });
      assert.equal(run.network, 'vgg19');
      assert.ok(Number.isFinite(run.finalCosts.total));
      await assert.rejects(Promise.resolve(styleTransfer({ content: landscapeContent(32, 32), style: wavesStyle(32), network: 'vgg19', weights: path.join(dir, 'input.pt'), size: 32, iterations: 1 })), /features\.N/);
      assert.equal(VGG19_LAYERS.find((l) => l.name === 'conv1_1')!.receptiveField, 3);
      assert.equal(VGG19_LAYERS.find((l) => l.name === 'pool5')!.stride, 32);
      net.dispose();
      net2.dispose();
      input.dispose();
      for (const t of Object.values(ref)) t.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('receptive-field tables match the gradient support of a unit (MobileNet, VGG-19, face ResNet)', async function () {
    this.timeout(300_000);
    const face = await FaceRecognitionFeatures.load();
    const vgg = new Vgg19();
    const cases: [FeatureNetwork, string, number][] = [
      [mobilenet, 'conv_3', 64],
      [mobilenet, 'conv_5', 96],
      [vgg, 'conv2_1', 48],
      [vgg, 'conv3_1', 64],
      [face, 'conv32_1', 96],
      [face, 'conv64_down', 160],
    ];
    try {
      for (const [net, name, size] of cases) {
        const l = layerInfo(net, name);
        tidy(() => {
          manualSeed(1);
          const x = randn([1, 3, size, size]).mul(40).add(128).requiresGrad_(true);
          const act = net.features(x, [name]).get(name)!;
          const i = Math.floor(act.shape[2] / 2);
          const j = Math.floor(act.shape[3] / 2);
          const [g] = grad(act.select(2, i).select(2, j).sum(), x);
          const support = g!.abs().sum([0, 1]).gt(0); // H x W
          const rowsHit = values(support.sum(1)).map((v, k) => (v > 0 ? k : -1)).filter((k) => k >= 0);
          const colsHit = values(support.sum(0)).map((v, k) => (v > 0 ? k : -1)).filter((k) => k >= 0);
          const half = (l.receptiveField - 1) / 2;
          const [top, left] = [l.offset + i * l.stride - half, l.offset + j * l.stride - half];
          const what = `${net.name} ${name}: rows ${rowsHit[0]}..${rowsHit[rowsHit.length - 1]}, cols ${colsHit[0]}..${colsHit[colsHit.length - 1]} vs box top ${top} left ${left} size ${l.receptiveField}`;
          assert.ok(rowsHit[0] >= top && rowsHit[rowsHit.length - 1] <= top + l.receptiveField - 1, what);
          assert.ok(colsHit[0] >= left && colsHit[colsHit.length - 1] <= left + l.receptiveField - 1, what);
          // the support spans (nearly) the whole field: the table is not merely an upper bound
          assert.equal(rowsHit[rowsHit.length - 1] - rowsHit[0] + 1, l.receptiveField, what);
          assert.equal(colsHit[colsHit.length - 1] - colsHit[0] + 1, l.receptiveField, what);
        });
      }
    } finally {
      face.dispose();
      vgg.dispose();
    }
  });

  it('topActivatingPatches keeps the running top-k per unit: same as a direct computation, independent of batch size', async function () {
    this.timeout(300_000);
    const images = [wavesStyle(64, 1), stripesStyle(64, 2), mosaicStyle(64, 3), landscapeContent(64, 64), mosaicStyle(64, 9)];
    const units = [0, 3, 7];
    const a = await topActivatingPatches(mobilenet, images, { layer: 'conv_3', units, k: 3, batchSize: 2, inputSize: 64, patchSize: 16, interiorOnly: false });
    const b = await topActivatingPatches(mobilenet, images, { layer: 'conv_3', units, k: 3, batchSize: 5, inputSize: 64, patchSize: 16, interiorOnly: false });
    // direct: each image's maximum per unit, sorted
    const maxima = images.map((im) =>
      tidy(() => {
        const act = noGrad(() => mobilenet.features(imageTensor(im), ['conv_3']).get('conv_3')!);
        return units.map((u) => act.select(1, u).max().item());
      }),
    );
    units.forEach((u, i) => {
      const want = maxima.map((m) => m[i]).sort((x, y) => y - x).slice(0, 3);
      assertClose(a.units[i].patches.map((p) => p.score), want, 1e-5, 1e-5, `unit ${u} scores`);
      assert.deepEqual(a.units[i].patches.map((p) => [p.imageIndex, p.row, p.col]), b.units[i].patches.map((p) => [p.imageIndex, p.row, p.col]));
      for (const p of a.units[i].patches) {
        assert.equal(p.patch.width, 16);
        assert.equal(p.box.size, a.layer.receptiveField);
      }
    });
    // interiorOnly: every box inside the 64 x 64 image
    const c = await topActivatingPatches(mobilenet, images, { layer: 'conv_3', units, k: 3, inputSize: 64, patchSize: 16 });
    for (const u of c.units)
      for (const p of u.patches) assert.ok(p.box.left >= 0 && p.box.top >= 0 && p.box.left + p.box.size <= 64 && p.box.top + p.box.size <= 64, JSON.stringify(p.box));
    await assert.rejects(topActivatingPatches(mobilenet, images, { layer: 'conv_99' }), /layer/);
    await assert.rejects(topActivatingPatches(mobilenet, images, { layer: 'conv_0', units: [32] }), /below 32/);
  });
});

function imageTensor(img: RgbImage): Tensor {
  return tidy(() => tensor(img.data, { shape: [img.height, img.width, 3] }).permute([2, 0, 1]).float().unsqueeze(0));
}

describe('style: styleTransfer', () => {
  const content = landscapeContent(64, 64);
  const style = wavesStyle(64);

  it('a 64x64 run from noise lowers the total cost by at least 90% within 100 iterations', async function () {
    this.timeout(600_000);
    const r = await styleTransfer({ content, style, size: 64, iterations: 100, init: 'noise', seed: 3 });
    const ratio = r.finalCosts.total / r.initialCosts.total;
    assert.ok(ratio <= 0.1, `total cost ${r.initialCosts.total} -> ${r.finalCosts.total} (x${ratio.toFixed(3)})`);
    assert.equal(r.image.width, 64);
    assert.equal(r.image.height, 64);
  });

  it('L-BFGS (lib/optim, one evaluation per iteration) lowers the cost too', async function () {
    this.timeout(300_000);
    const r = await styleTransfer({ content, style, size: 64, iterations: 40, init: 'noise', optimizer: 'lbfgs', seed: 4 });
    const ratio = r.finalCosts.total / r.initialCosts.total;
    assert.ok(ratio < 0.3, `L-BFGS: total cost x${ratio.toFixed(3)}`);
  });

  it('reports progress through the callback and the async iterator; saveEvery images; multi-scale; several weighted styles', async function () {
    this.timeout(300_000);
    const seen: StyleProgress[] = [];
    const run = styleTransfer({ content, style: [style, { image: mosaicStyle(64), weight: 3 }], size: 64, scales: 2, iterations: 6, saveEvery: 3, seed: 1, onProgress: (p) => seen.push(p) });
    const iterated: number[] = [];
    for await (const p of run) iterated.push(p.iteration);
    const r = await run;
    assert.deepEqual(iterated, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(seen.map((p) => p.iteration), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(seen.map((p) => p.width), [32, 32, 32, 64, 64, 64]);
    assert.deepEqual(seen.filter((p) => p.image).map((p) => [p.iteration, p.image!.width]), [[3, 32], [6, 64]]);
    for (const p of seen) for (const k of ['total', 'content', 'style'] as const) assert.ok(Number.isFinite(p.costs[k]) && p.costs[k] >= 0);
    assert.equal(r.iterations, 6);
    assert.ok(seen[5].elapsedMs >= seen[0].elapsedMs);
  });

  it('cancel() stops the run with CancelledError', async function () {
    this.timeout(300_000);
    const run = styleTransfer({ content, style, size: 32, iterations: 1000, onProgress: (p) => p.iteration === 2 && run.cancel() });
    await assert.rejects(Promise.resolve(run), CancelledError);
  });

  it('runs in a worker: event-loop delay p99 < 50 ms during a run', async function () {
    this.timeout(300_000);
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const r = await styleTransfer({ content, style, size: 128, iterations: 20, seed: 2 });
    h.disable();
    const p99 = h.percentile(99) / 1e6;
    assert.equal(r.iterations, 20);
    assert.ok(h.count > 10, `only ${h.count} samples`);
    assert.ok(p99 < 50, `event-loop delay p99 ${p99.toFixed(1)} ms`);
  });

  it('invalid options throw ArgumentErrors naming the option', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ content, style, size: -1 }, /options\.size/],
      [{ content, style, iterations: 0 }, /options\.iterations/],
      [{ content, style, optimizer: 'rmsprop' }, /options\.optimizer/],
      [{ content, style, contentLayer: 'conv4_2' }, /conv_0.*options\.contentLayer/],
      [{ content, style, styleLayers: { conv_1: 1, nope: 1 } }, /options\.styleLayers\.nope/],
      [{ content, style, network: 'vgg19' }, /VGG-19.*options\.weights/],
      [{ content, style, device: 'cuda' }, /options\.device/],
      [{ content, style, alpha: -1 }, /options\.alpha/],
      [{ content }, /options\.style/],
      [{ content, style, style2: style }, /options/],
      [{ content, style: { image: style, weight: 0 } }, /options\.style/],
      [{ content, style, scales: 5, size: 64 }, /options\.scales/],
    ];
    for (const [o, re] of bad)
      assert.throws(
        () => styleTransfer(o as never),
        (e: Error) => e instanceof ArgumentError && re.test(e.message),
        `${JSON.stringify(Object.keys(o))}: ${re}`,
      );
  });
});
