// Calibration and accuracy of the pretrained network on the shared face data,
// from the embeddings that scripts/embed-sets.ts cached (run that first):
// 1. calibrates on identities no evaluation uses (LFW view 1 DevTrain
//    identities + half of the CelebA identities for colour photos, Extended
//    Yale B for greyscale crops) and writes the operating points the package
//    ships (lib/face/calibration/faceapi-recognition-resnet34.json) with --write;
// 2. evaluates on the rest: LFW DevTest 10-fold, TAR at FAR 1e-3, with and
//    without mirror-image averaging; open-set identification with one photo
//    enrolled per person (K = 100 colour, K = 30 AT&T greyscale) through the real
//    FaceGallery defaults, and the whole trade-off as curves (docs/images/).
// Usage: node dist/scripts/accuracy.js [--network faceapi|mobilefacenet | --network NAME --onnx FILE | --fuse a,b] [--write]
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { FaceGallery, FaceModel, Tensor } from '../lib';
import { Module } from '../lib/nn';
import { Calibration, OperatingPoints, operatingPoints, thresholdForFar } from '../lib/face/calibration';
import { seededRandom } from '../lib/util/random';
import { auc, kFoldAccuracy, readLfwPairs, rocCurve } from '../lib/face/metrics';
import { svgLineChart } from '../lib/util/plot';
import type { NetworkName } from '../lib/face/networks';
import { facesDir, packageRoot } from '../lib/util/paths';
import { CACHE, EmbeddedImage } from './embed-sets';

interface Row extends EmbeddedImage {
  i: number;
}
const argv = process.argv.slice(2);
const NETWORK = (argv.includes('--network') ? argv[argv.indexOf('--network') + 1] : 'faceapi') as NetworkName;
let D = 128;

/** Stands in for a network whose embeddings are precomputed (galleries only need its dimension and calibration). */
class Precomputed extends Module {
  constructor(private readonly dim: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.reshape([x.shape[0], -1]).narrow(1, 0, this.dim);
  }
}

const FUSE = argv.includes('--fuse') ? argv[argv.indexOf('--fuse') + 1].split(',') : null;
const ONNX = argv.includes('--onnx') ? argv[argv.indexOf('--onnx') + 1] : null;

type Embeddings = { rows: Row[]; plain: Float32Array; flip: Float32Array; meta: { model: string; weightsHash: string; dim: number; weights?: number[] } };

/**
 * A fusion's embeddings from its members' (--fuse a,b): each member's
 * descriptors scaled by w_i and concatenated, w_i^2 = 1 / (the spread of its
 * squared distances over calibration impostor pairs), normalised to sum 1, so
 * that the squared distance is the mean of the members' z-scores up to a
 * constant (what FaceModel's fusion computes, lib/face/model.ts).
 */
function loadFusion(members: string[]): Embeddings {
  const parts = members.map((m) => load(m));
  const rows = parts[0].rows;
  const calRows = rows.filter((r) => r.split === 'train' && (r.set === 'lfw' || r.set === 'celeba') && r.stage !== 'no-face' && !r.stage.startsWith('error'));
  const spread = parts.map((p) => {
    D = p.meta.dim;
    const e = p.plain.map((v, k) => (v + p.flip[k]) / 2);
    const sq = Array.from(allPairs(e, calRows, 200_000).impostor, (d) => d * d);
    const mean = sq.reduce((a, b) => a + b, 0) / sq.length;
    return Math.sqrt(sq.reduce((a, b) => a + (b - mean) ** 2, 0) / sq.length);
  });
  const inv = spread.map((s) => 1 / s);
  const weights = inv.map((v) => Math.sqrt(v / inv.reduce((a, b) => a + b, 0)));
  const dim = parts.reduce((n, p) => n + p.meta.dim, 0);
  const cat = (key: 'plain' | 'flip') => {
    const out = new Float32Array(rows.length * dim);
    for (let i = 0; i < rows.length; i++) {
      let at = i * dim;
      parts.forEach((p, k) => {
        for (let j = 0; j < p.meta.dim; j++) out[at + j] = weights[k] * p[key][i * p.meta.dim + j];
        at += p.meta.dim;
      });
    }
    return out;
  };
  console.log(`fusion of ${members.join(' + ')}: impostor spread of d^2 ${spread.map((s) => s.toFixed(4)).join(', ')} -> weights ${weights.map((w) => w.toFixed(4)).join(', ')}`);
  return { rows, plain: cat('plain'), flip: cat('flip'), meta: { model: `fusion-${members.join('-')}`, weightsHash: parts.map((p) => p.meta.weightsHash).join('+'), dim, weights } };
}

function load(network = NETWORK as string): Embeddings {
  const index = JSON.parse(fs.readFileSync(path.join(CACHE, 'index.json'), 'utf8')) as { images: EmbeddedImage[] };
  const dir = path.join(CACHE, network);
  if (!fs.existsSync(path.join(dir, 'model.json'))) throw new Error(`no embeddings of '${NETWORK}' in ${dir}: run node dist/scripts/embed-sets.js --networks ${NETWORK}`);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as { model: string; weightsHash: string; dim: number };
  const f32 = (f: string) => new Float32Array(new Uint8Array(fs.readFileSync(path.join(dir, f))).buffer);
  return { rows: index.images.map((r, i) => ({ ...r, i })), plain: f32('plain.f32'), flip: f32('flip.f32'), meta };
}

const euclid = (e: Float32Array, a: number, b: number) => {
  let s = 0;
  for (let k = 0; k < D; k++) {
    const d = e[a * D + k] - e[b * D + k];
    s += d * d;
  }
  return Math.sqrt(s);
};

/** Genuine and impostor distances over all pairs of the rows (impostors subsampled to at most maxImpostors). */
function allPairs(e: Float32Array, rows: Row[], maxImpostors = 4_000_000): { genuine: number[]; impostor: Float32Array } {
  const genuine: number[] = [];
  const n = rows.length;
  const total = (n * (n - 1)) / 2;
  const stride = Math.max(1, Math.ceil(total / maxImpostors));
  const impostor = new Float32Array(Math.ceil(total / stride) + 1);
  let m = 0;
  let c = 0;
  for (let a = 0; a < n; a++)
    for (let b = a + 1; b < n; b++) {
      const same = rows[a].set === rows[b].set && rows[a].identity === rows[b].identity;
      if (same) genuine.push(euclid(e, rows[a].i, rows[b].i));
      else if (c++ % stride === 0) impostor[m++] = euclid(e, rows[a].i, rows[b].i);
    }
  return { genuine, impostor: impostor.subarray(0, m) };
}

function tarAt(genuine: number[], impostor: ArrayLike<number>, far: number): number {
  const op = operatingPoints(genuine, impostor, { source: '', kind: 'colour', metric: 'euclidean' });
  const t = thresholdForFar(op, far);
  return genuine.filter((d) => d <= t).length / genuine.length;
}

async function png(file: string, svg: string): Promise<void> {
  await sharp(Buffer.from(svg)).png().toFile(file);
  console.log(`wrote ${path.relative(packageRoot, file)}`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const write = args.includes('--write');
  const tta = 'flip'; // the photo pipeline's default (FaceModel embedOptions.tta)
  const { rows: allRows, plain, flip, meta } = FUSE ? loadFusion(FUSE) : load();
  D = meta.dim;
  const avg = plain.map((v, k) => (v + flip[k]) / 2);
  const emb = { none: plain, flip: avg };
  const rows = allRows.filter((r) => r.stage !== 'no-face' && !r.stage.startsWith('error'));
  const report: Record<string, unknown> = { model: meta.model, images: allRows.length, usable: rows.length, noFace: allRows.filter((r) => r.stage === 'no-face').map((r) => r.file) };
  const stageCounts: Record<string, number> = {};
  for (const r of allRows) stageCounts[`${r.set}:${r.stage}`] = (stageCounts[`${r.set}:${r.stage}`] ?? 0) + 1;
  report.stages = stageCounts;

  // 1. Calibration sets (identities no evaluation sees).
  const colourCal = rows.filter((r) => r.split === 'train' && (r.set === 'lfw' || r.set === 'celeba') && !r.greyscale);
  const greyCal = rows.filter((r) => r.split === 'train' && r.set === 'yaleb');
  const cal: Record<string, Calibration> = {};
  for (const variant of ['none', 'flip'] as const) {
    const c = allPairs(emb[variant], colourCal);
    const g = allPairs(emb[variant], greyCal);
    cal[variant] = {
      colour: operatingPoints(c.genuine, c.impostor, { source: `LFW view 1 DevTrain identities + half the CelebA subset's identities (${colourCal.length} colour photos, detect + similarity alignment, tta ${variant})`, kind: 'colour', metric: 'euclidean' }),
      greyscale: operatingPoints(g.genuine, g.impostor, { source: `Extended Yale B cropped (${greyCal.length} greyscale crops, ${new Set(greyCal.map((r) => r.identity)).size} people, no detection, tta ${variant})`, kind: 'greyscale', metric: 'euclidean' }),
    };
  }
  const summarize = (op: OperatingPoints) => ({ pairs: `${op.genuinePairs} genuine / ${op.impostorPairs} impostor`, bestAccuracy: op.bestAccuracy, atFar: op.atFar });
  report.calibration = Object.fromEntries(Object.entries(cal).map(([v, c]) => [v, { colour: summarize(c.colour), greyscale: summarize(c.greyscale!) }]));

  // 2. LFW DevTest.
  const dir = facesDir()!;
  const byFile = new Map(allRows.map((r) => [r.file, r]));
  const devTest = readLfwPairs(path.join(dir, 'lfw-view1', 'pairsDevTest.txt'));
  const lfwTest = rows.filter((r) => r.set === 'lfw' && r.split === 'test');
  const lfw: Record<string, unknown> = {};
  for (const variant of ['none', 'flip'] as const) {
    const e = emb[variant];
    const scored = devTest.map((p) => {
      const a = byFile.get(path.relative(dir, p.pathA))!;
      const b = byFile.get(path.relative(dir, p.pathB))!;
      const ok = a.stage !== 'no-face' && b.stage !== 'no-face';
      // A pair with a photo in which no face was found counts as "different" (the answer a user gets).
      return { score: ok ? euclid(e, a.i, b.i) : 10, same: p.same };
    });
    const missing = devTest.filter((p) => [p.pathA, p.pathB].some((f) => byFile.get(path.relative(dir, f))!.stage === 'no-face')).length;
    const k = kFoldAccuracy(scored, { folds: 10 });
    // The pairs wrong at the best single threshold over all 1,000: what the remaining errors are.
    let best = { correct: -1, t: 0 };
    for (const { score: t } of scored) {
      const correct = scored.filter((x) => x.score <= t === x.same).length;
      if (correct > best.correct) best = { correct, t };
    }
    const errors = devTest
      .map((p, i) => ({ p, s: scored[i] }))
      .filter(({ s }) => s.score <= best.t !== s.same)
      .map(({ p, s }) => {
        const stage = (f: string) => byFile.get(path.relative(dir, f))!.stage;
        return `${p.same ? 'same person rejected' : 'strangers accepted'} at ${s.score.toFixed(3)}: ${path.basename(p.pathA)} (${stage(p.pathA)}) ~ ${path.basename(p.pathB)} (${stage(p.pathB)})`;
      });
    const all = allPairs(e, lfwTest);
    lfw[variant] = {
      tenFold: `${(k.mean * 100).toFixed(2)} ± ${(k.std * 100).toFixed(2)}%`,
      errorsAtBestThreshold: { threshold: +best.t.toFixed(4), accuracy: best.correct / scored.length, pairs: errors },
      pairsWithoutFace: missing,
      auc: +auc(rocCurve(scored)).toFixed(4),
      allPairs: `${all.genuine.length} genuine / ${all.impostor.length} impostor pairs among the DevTest identities`,
      tarAtFar1e3: +tarAt(all.genuine, all.impostor, 1e-3).toFixed(4),
      tarAtFar1e4: +tarAt(all.genuine, all.impostor, 1e-4).toFixed(4),
      calibratedFarAt1e3OnTest: +(() => {
        const t = thresholdForFar(cal[variant].colour, 1e-3);
        return all.impostor.filter((d) => d <= t).length / all.impostor.length;
      })().toExponential(2),
    };
  }
  report.lfwDevTest = lfw;

  // Ship both variants' calibrations (photos default to tta 'flip', crops to 'none').
  const chosen = cal.flip;
  if (write) {
    const out = path.join(packageRoot, 'lib', 'face', 'calibration', `${meta.model}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const by = `node dist/scripts/embed-sets.js --networks ${FUSE ? FUSE.join(',') : NETWORK} && node dist/scripts/accuracy.js ${FUSE ? `--fuse ${FUSE.join(',')}` : `--network ${NETWORK}`} --write`;
    // A fusion's file also carries its members' weights (FaceModel.pretrained({ network: 'fusion' }) reads them).
    const fusion = meta.weights ? { fusion: { members: FUSE, weights: meta.weights } } : {};
    fs.writeFileSync(out, JSON.stringify({ model: meta.model, weightsHash: meta.weightsHash, made: new Date().toISOString().slice(0, 10), by, ...fusion, calibrations: cal }, null, 1) + '\n');
    console.log(`wrote ${path.relative(packageRoot, out)}`);
  }

  // 3. Open-set identification through FaceGallery's defaults (the model loads the calibration just written).
  // A fusion or an ONNX network has no bundled calibration: its galleries read distances with the one just computed.
  const model = FUSE || ONNX ? new FaceModel({ name: meta.model, net: new Precomputed(D), inputSize: 112, embeddingDim: D, metric: 'euclidean', threshold: 1, calibration: cal.none, flipCalibration: cal.flip }) : await FaceModel.pretrained({ network: NETWORK as NetworkName });
  const openSet = async (pool: Row[], K: number, kind: 'colour' | 'greyscale', seed: number, variant: 'none' | 'flip', allStrangerPhotos = false) => {
    const e = emb[variant];
    const vec = (r: Row) => e.slice(r.i * D, (r.i + 1) * D);
    const byId = new Map<string, Row[]>();
    for (const r of pool) byId.set(`${r.set}/${r.identity}`, [...(byId.get(`${r.set}/${r.identity}`) ?? []), r]);
    const rnd = seededRandom(seed);
    const withTwo = [...byId.keys()].filter((k) => byId.get(k)!.length >= 2).sort();
    for (let i = withTwo.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [withTwo[i], withTwo[j]] = [withTwo[j], withTwo[i]];
    }
    const enrolled = withTwo.slice(0, K);
    const enrolledSet = new Set(enrolled);
    const probes = enrolled.flatMap((id) => byId.get(id)!.slice(1).map((r) => ({ r, id })));
    const strangers = [...byId.keys()].filter((id) => !enrolledSet.has(id)).flatMap((id) => (allStrangerPhotos ? byId.get(id)! : [byId.get(id)![0]]));
    const run = async (galleryOptions: Record<string, unknown>, identify: Record<string, unknown> = {}) => {
      const g = await FaceGallery.open(':memory:', { model, ...galleryOptions });
      for (const id of enrolled) await g.enrollEmbeddings(id, vec(byId.get(id)![0]));
      const pr = await g.identifyEmbeddings(probes.map((p) => vec(p.r)), { kind, tta: variant, ...identify });
      const sr = await g.identifyEmbeddings(strangers.map(vec), { kind, tta: variant, ...identify });
      await g.close();
      return {
        identified: pr.filter((x, i) => x.id === probes[i].id).length / probes.length,
        wrongPerson: pr.filter((x, i) => x.id !== null && x.id !== probes[i].id).length / probes.length,
        ambiguous: pr.filter((x) => x.reason === 'ambiguous').length / probes.length,
        strangersRejected: sr.filter((x) => x.id === null).length / strangers.length,
        threshold: +pr[0].threshold.toFixed(4),
      };
    };
    const result: Record<string, unknown> = { enrolled: enrolled.length, probes: probes.length, strangers: strangers.length, default: await run({}) };
    result['fixed threshold 0.6 (before)'] = await run({ threshold: 0.6, ambiguityMargin: 0 }); // what galleries did before: no calibration, no ambiguity check
    if (kind === 'greyscale') result['colour table for greyscale'] = await run({}, { kind: 'colour' });
    for (const margin of [0, 0.01, 0.02, 0.04]) {
      result[`margin ${margin}`] = await run({ ambiguityMargin: margin });
      result[`margin ${margin}, fixed 0.6`] = await run({ ambiguityMargin: margin, threshold: 0.6 });
    }
    const curve: { far: number; identified: number; rejected: number }[] = [];
    for (const far of [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]) {
      const r = await run({ falseAcceptRate: far });
      curve.push({ far, identified: r.identified, rejected: r.strangersRejected });
    }
    result.curve = curve;
    return result;
  };
  const colourPool = rows.filter((r) => r.split === 'test' && (r.set === 'lfw' || r.set === 'celeba') && !r.greyscale);
  const att = rows.filter((r) => r.set === 'att');
  // Photos go through the photo pipeline (tta flip); AT&T crops through the crop pipeline (tta none).
  const colourOpen = await openSet(colourPool, 100, 'colour', 1, 'flip');
  const attOpen = await openSet(att, 30, 'greyscale', 2, 'none', true);
  report.openSetColour = colourOpen;
  report.openSetAtt = attOpen;

  // Pictures.
  const images = path.join(packageRoot, 'docs', 'images');
  const tag = FUSE ? `-fusion-${FUSE.join('-')}` : NETWORK === 'faceapi' ? '' : `-${NETWORK}`;
  fs.mkdirSync(images, { recursive: true });
  const tradeoff = (r: Record<string, unknown>) => (r.curve as { far: number; identified: number; rejected: number }[]).map((c) => [c.rejected, c.identified] as [number, number]);
  const def = (r: Record<string, unknown>) => r.default as { identified: number; strangersRejected: number };
  const before = (r: Record<string, unknown>) => r['fixed threshold 0.6 (before)'] as { identified: number; strangersRejected: number };
  await png(
    path.join(images, `accuracy${tag}-open-set.png`),
    svgLineChart({
      title: 'Open-set identification, one photo enrolled per person',
      xLabel: 'strangers rejected',
      yLabel: 'enrolled probes identified (right person)',
      xRange: [0, 1],
      yRange: [0, 1],
      legend: 'bottom-left',
      series: [
        { name: `colour, K = ${colourOpen.enrolled}`, color: '#1f5fbf', points: tradeoff(colourOpen), marks: [
            { at: [def(colourOpen).strangersRejected, def(colourOpen).identified], label: 'default: gallery FAR 1e-2' },
            { at: [before(colourOpen).strangersRejected, before(colourOpen).identified], label: 'before: fixed 0.6' },
          ] },
        { name: `AT&T greyscale, K = ${attOpen.enrolled}`, color: '#c0392b', points: tradeoff(attOpen), marks: [
            { at: [def(attOpen).strangersRejected, def(attOpen).identified], label: 'default (greyscale table)' },
            { at: [before(attOpen).strangersRejected, before(attOpen).identified], label: 'before: fixed 0.6' },
          ] },
      ],
    }),
  );
  // ROC and DET of LFW DevTest identities (all pairs), with the shipped operating points marked.
  const test = allPairs(emb.flip, lfwTest);
  const testOp = operatingPoints(test.genuine, test.impostor, { source: 'LFW DevTest identities', kind: 'colour', metric: 'euclidean' });
  const curvePts = testOp.impostorCdf.map(([d, far]) => [far, testOp.genuineCdf.length ? test.genuine.filter((g) => g <= d).length / test.genuine.length : 0] as [number, number]);
  const marks = chosen.colour.atFar.map((a) => {
    const far = test.impostor.filter((d) => d <= a.threshold).length / test.impostor.length;
    return { at: [Math.max(far, 1e-6), test.genuine.filter((g) => g <= a.threshold).length / test.genuine.length] as [number, number], label: `shipped FAR ${a.far} threshold` };
  });
  await png(path.join(images, `accuracy${tag}-roc.png`), svgLineChart({ title: 'ROC, LFW DevTest identities (all pairs)', xLabel: 'false accept rate', yLabel: 'true accept rate', xLog: true, xRange: [1e-5, 1], yRange: [0.5, 1], legend: 'bottom-left', series: [{ name: `pretrained, tta ${tta}`, color: '#1f5fbf', points: curvePts, marks }] }));
  await png(path.join(images, `accuracy${tag}-det.png`), svgLineChart({ title: 'DET, LFW DevTest identities (all pairs)', xLabel: 'false accept rate', yLabel: 'false reject rate', xLog: true, yLog: true, xRange: [1e-5, 1], yRange: [1e-3, 1], legend: 'bottom-left', series: [{ name: `pretrained, tta ${tta}`, color: '#c0392b', points: curvePts.map(([f, t]) => [f, Math.max(1 - t, 1e-4)]), marks: marks.map((m) => ({ at: [m.at[0], Math.max(1 - m.at[1], 1e-4)], label: m.label })) }] }));
  fs.writeFileSync(path.join(CACHE, '..', `accuracy${tag}.json`), JSON.stringify(report, null, 1));
  console.log(JSON.stringify(report, (k, v) => (k === 'curve' || k === 'noFace' ? undefined : v), 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
