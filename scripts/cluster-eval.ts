// Measures the photo library (issue #20, docs/photo-library.md): photos of
// held-out identities (CelebA identities not used for calibration, LFW DevTest
// identities) mixed in one folder (symbolic links in a temporary folder), then
// `indexPhotos` + `cluster()` at the defaults, and every algorithm over a few
// thresholds on the same descriptors. Prints pairwise precision / recall / F1,
// clusters vs people, indexing speed, and the time to cluster 10k and 100k
// generated descriptors.
//
//   npm run build:ts && node dist/scripts/cluster-eval.js [--celeba 20] [--lfw 10] [--per 30] [--json out.json] [--skip-index-of DIR]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FaceGallery, FaceModel, clusterFaces, pairwiseScores, CLUSTER_ALGORITHMS, CLUSTER_QUALITY, PhotoLibrary, QUALITY_DEFAULTS, qualityProblems } from '../lib';
import type { ClusterAlgorithm, QualityLimits } from '../lib';
import { readLfwPairs } from '../lib/face/metrics';
import { facesDir } from '../lib/util/paths';
import { ProgressBar } from '../lib/util/progress';
import { seededRandom as rng } from '../lib/util/random';

const args = process.argv.slice(2);
const arg = (k: string, d: string) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);


/** n generated descriptors: people of `per` faces around random unit centres (within-person distance ~0.45), 128-d. */
function generated(n: number, per: number): { flat: Float32Array; truth: number[] } {
  const r = rng(11);
  const g = () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  const dim = 128;
  const flat = new Float32Array(n * dim);
  const truth: number[] = [];
  const sigma = 0.45 / Math.sqrt(2 * dim);
  let c = new Float32Array(dim);
  for (let i = 0; i < n; i++) {
    if (i % per === 0) {
      c = Float32Array.from({ length: dim }, g);
      const norm = Math.hypot(...c);
      c = c.map((x) => x / norm);
    }
    for (let j = 0; j < dim; j++) flat[i * dim + j] = c[j] + sigma * g();
    truth.push(Math.floor(i / per));
  }
  return { flat, truth };
}

async function main(): Promise<void> {
  const faces = facesDir();
  if (!faces) throw new Error('no face data (../shared/data/faces or TORCHFACE_FACES_DIR)');
  const nCeleba = Number(arg('--celeba', '20'));
  const nLfw = Number(arg('--lfw', '10'));
  const per = Number(arg('--per', '30'));
  const out: Record<string, unknown> = { command: `node dist/scripts/cluster-eval.js ${args.join(' ')}`.trim(), load: os.loadavg(), cpus: os.cpus().length, started: new Date().toISOString() };

  // The photos: CelebA identities at odd positions (calibration used the even ones), LFW DevTest identities.
  const celebaRoot = path.join(faces, 'celeba299');
  const celebaIds = fs.readdirSync(celebaRoot).sort().filter((_, i) => i % 2 === 1);
  const lfwRoot = path.join(faces, 'lfw-view1');
  const devTest = [...new Set(readLfwPairs(path.join(lfwRoot, 'pairsDevTest.txt')).flatMap((p) => [p.nameA, p.nameB]))].sort();
  const pick = (root: string, ids: string[], n: number, min: number) => {
    const chosen: { id: string; files: string[] }[] = [];
    // Every k-th identity with at least `min` photos, for a spread of the set.
    const ok = ids.filter((id) => fs.readdirSync(path.join(root, id)).length >= min);
    const step = Math.max(1, Math.floor(ok.length / Math.max(1, n)));
    for (let i = 0; i < ok.length && chosen.length < n; i += step) chosen.push({ id: ok[i], files: fs.readdirSync(path.join(root, ok[i])).sort().slice(0, per).map((f) => path.join(root, ok[i], f)) });
    return chosen;
  };
  const people = [...pick(celebaRoot, celebaIds, nCeleba, 10).map((p) => ({ ...p, id: `celeba/${p.id}` })), ...pick(lfwRoot, devTest, nLfw, 4).map((p) => ({ ...p, id: `lfw/${p.id}` }))];
  // --work DIR keeps the folder and library between runs (indexing is then incremental: nothing to do).
  const work = arg('--work', '');
  const tmp = work || fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-cluster-eval-'));
  const photos = path.join(tmp, 'photos');
  fs.rmSync(photos, { recursive: true, force: true });
  fs.mkdirSync(photos, { recursive: true });
  const truthOfFile = new Map<string, string>();
  let k = 0;
  for (const p of people)
    for (const f of p.files) {
      // One flat folder, names that do not give the person away.
      const link = path.join(photos, `photo-${String(k++).padStart(5, '0')}${path.extname(f).toLowerCase()}`);
      fs.symlinkSync(f, link);
      truthOfFile.set(link, p.id);
    }
  console.log(`${people.length} people (${people.filter((p) => p.id.startsWith('celeba')).length} CelebA, ${people.filter((p) => p.id.startsWith('lfw')).length} LFW DevTest), ${k} photos in ${photos}`);
  out.people = people.length;
  out.photos = k;

  const model = await FaceModel.pretrained();
  const gallery = await FaceGallery.open(path.join(tmp, 'library.db'), { model });
  const bar = new ProgressBar({ total: k, label: 'index' });
  const summary = await gallery.indexPhotos(photos, { onProgress: (p) => bar.update(p.done, { faces: p.faces }) });
  bar.done();
  console.log(`indexed ${summary.added} photos, ${summary.faces} faces in ${summary.seconds.toFixed(1)} s: ${summary.facesPerSecond.toFixed(2)} faces/s, ${summary.photosPerSecond.toFixed(2)} photos/s; failed ${summary.failed.length}`);
  out.index = { ...summary, failed: summary.failed.length };
  const again = await gallery.indexPhotos(photos);
  console.log(`second run: ${again.unchanged} unchanged, ${again.added} added, in ${again.seconds.toFixed(2)} s`);
  out.reindexSeconds = again.seconds;

  // Truth: the largest face of each photo is the photo's person; other faces are unlabelled.
  const all = gallery.library.store.allFaces();
  const largest = new Map<number, { id: number; area: number }>();
  for (const f of all) {
    const a = f.box.width * f.box.height;
    const cur = largest.get(f.photoId);
    if (!cur || a > cur.area) largest.set(f.photoId, { id: f.id, area: a });
  }
  const labelledFace = new Set([...largest.values()].map((x) => x.id));
  const photoWithoutFace = k - largest.size;
  const truth = all.map((f) => (labelledFace.has(f.id) ? truthOfFile.get(f.file)! : null));
  console.log(`${all.length} faces, ${labelledFace.size} labelled (largest face of each photo), ${photoWithoutFace} photos without a face`);
  out.faces = all.length;
  out.photosWithoutFace = photoWithoutFace;

  const score = (labels: ArrayLike<number>, clusterCount: number) => {
    const s = pairwiseScores(labels, truth);
    const lab = [...labelledFace];
    const clustered = all.filter((f, i) => labelledFace.has(f.id) && labels[i] >= 0).length;
    // Clusters holding a labelled face.
    const withLabelled = new Set(all.map((f, i) => (labelledFace.has(f.id) && labels[i] >= 0 ? labels[i] : -1)).filter((x) => x >= 0)).size;
    return { precision: s.precision, recall: s.recall, f1: s.f1, clusters: clusterCount, clustersWithLabelled: withLabelled, people: people.length, labelledClustered: clustered / lab.length };
  };

  // The defaults: gallery.cluster().
  const t0 = performance.now();
  const def = await gallery.cluster();
  const tDefault = performance.now() - t0;
  const idOfCluster = new Map(def.clusters.map((c, i) => [c.id, i]));
  const defLabels = all.map((f) => {
    const c = def.clusters.find((cc) => cc.faces.some((x) => x.id === f.id));
    return c ? idOfCluster.get(c.id)! : -1;
  });
  const headline = score(defLabels, def.clusters.length);
  console.log(`\ndefaults (${def.summary.algorithm}, threshold ${def.summary.threshold.toFixed(4)}): precision ${headline.precision.toFixed(4)} recall ${headline.recall.toFixed(4)} F1 ${headline.f1.toFixed(4)}; ${headline.clusters} clusters (${headline.clustersWithLabelled} with a labelled face) for ${people.length} people; ${(100 * headline.labelledClustered).toFixed(1)}% of labelled faces clustered; ${def.summary.poor} faces too poor to place; ${tDefault.toFixed(0)} ms`);
  out.defaults = { ...headline, algorithm: def.summary.algorithm, threshold: def.summary.threshold, poor: def.summary.poor, ms: tDefault };

  // Every algorithm over thresholds, on the same descriptors and quality rule.
  const descriptors = gallery.library.store.clusteringInput();
  const excluded = descriptors.map((f) => f.ignored || !PhotoLibrary.placeable(f.quality, CLUSTER_QUALITY));
  const rows: Record<string, unknown>[] = [];
  console.log('\nalgorithm          threshold  precision  recall   F1      clusters  ms');
  for (const algorithm of CLUSTER_ALGORITHMS as readonly ClusterAlgorithm[]) {
    for (const threshold of [0.45, 0.5, 0.54, 0.58, 0.62]) {
      const r = await clusterFaces(
        descriptors.map((d) => d.descriptor),
        { algorithm, threshold, excluded },
      );
      const s = score(r.labels, r.clusters.length);
      rows.push({ algorithm, threshold, ...s, ms: r.ms });
      console.log(`${algorithm.padEnd(18)} ${threshold.toFixed(2).padStart(9)}  ${s.precision.toFixed(4).padStart(9)}  ${s.recall.toFixed(4)}  ${s.f1.toFixed(4)}  ${String(s.clusters).padStart(8)}  ${r.ms.neighbours + r.ms.grouping}`);
    }
  }
  // Without the quality rule (every face placed), at the default threshold.
  const noQ = await clusterFaces(
    descriptors.map((d) => d.descriptor),
    { threshold: def.summary.threshold },
  );
  const sNoQ = score(noQ.labels, noQ.clusters.length);
  console.log(`chinese-whispers without the quality rule at ${def.summary.threshold.toFixed(4)}: precision ${sNoQ.precision.toFixed(4)} recall ${sNoQ.recall.toFixed(4)} F1 ${sNoQ.f1.toFixed(4)}, ${sNoQ.clusters} clusters`);
  // Which quality limits keep what out, and what each rule gives at the default threshold.
  const reasons = new Map<string, number>();
  for (const d of descriptors) for (const p of d.quality ? qualityProblems(d.quality, CLUSTER_QUALITY) : []) reasons.set(p.replace(/[\d.]+/g, '#').replace(/\(.*$/, '').trim(), (reasons.get(p.replace(/[\d.]+/g, '#').replace(/\(.*$/, '').trim()) ?? 0) + 1);
  console.log(`faces kept out by CLUSTER_QUALITY: ${[...reasons].map(([k, v]) => `${v} x ${k}`).join('; ') || 'none'}`);
  const rules: [string, QualityLimits | null][] = [
    ['none', null],
    ['CLUSTER_QUALITY', CLUSTER_QUALITY],
    ['enrolment (QUALITY_DEFAULTS)', QUALITY_DEFAULTS],
    ['enrolment, no yaw limit', { ...QUALITY_DEFAULTS, maxYaw: Infinity }],
    ['size 32, yaw 0.5', { ...QUALITY_DEFAULTS, minSize: 32, maxYaw: 0.5 }],
    ['size 24, sharpness 6, yaw 0.6', { ...QUALITY_DEFAULTS, minSize: 24, minSharpness: 6, maxYaw: 0.6 }],
    ['size 20, sharpness 4, yaw 0.7', { ...QUALITY_DEFAULTS, minSize: 20, minSharpness: 4, maxYaw: 0.7 }],
  ];
  const ruleRows: Record<string, unknown>[] = [];
  for (const [name, limits] of rules) {
    const ex = descriptors.map((f) => f.ignored || (limits !== null && !PhotoLibrary.placeable(f.quality, limits)));
    const r = await clusterFaces(
      descriptors.map((d) => d.descriptor),
      { threshold: def.summary.threshold, excluded: ex },
    );
    const s = score(r.labels, r.clusters.length);
    // Precision and recall among the faces the rule lets in.
    const inTruth = truth.map((t, i) => (ex[i] ? null : t));
    const kept = pairwiseScores(r.labels, inTruth);
    ruleRows.push({ rule: name, excluded: ex.filter(Boolean).length, ...s, keptPrecision: kept.precision, keptRecall: kept.recall, keptF1: kept.f1 });
    console.log(`quality rule ${name.padEnd(28)}: ${String(ex.filter(Boolean).length).padStart(4)} faces out; F1 ${s.f1.toFixed(4)} (P ${s.precision.toFixed(4)} R ${s.recall.toFixed(4)}), among the faces let in F1 ${kept.f1.toFixed(4)} (P ${kept.precision.toFixed(4)} R ${kept.recall.toFixed(4)}), ${r.clusters.length} clusters`);
  }
  out.qualityRules = ruleRows;
  out.sweep = rows;
  out.noQuality = sNoQ;
  await gallery.close();

  // Speed on generated descriptors.
  const speed: Record<string, unknown>[] = [];
  const sizes = args.includes('--no-speed') ? [] : [10_000, 100_000];
  console.log('\ngenerated descriptors (people of 20 faces, within-person distance ~0.45):');
  for (const n of sizes) {
    const { flat, truth: t } = generated(n, 20);
    for (const algorithm of ['chinese-whispers', 'dbscan'] as const) {
      const a = performance.now();
      const r = await clusterFaces(flat, { dim: 128, algorithm, threshold: 0.54 });
      const ms = performance.now() - a;
      const s = pairwiseScores(r.labels, t);
      speed.push({ n, algorithm, ms, neighboursMs: r.ms.neighbours, groupingMs: r.ms.grouping, f1: s.f1, clusters: r.clusters.length, people: n / 20 });
      console.log(`  ${n} faces, ${algorithm}: ${(ms / 1000).toFixed(2)} s (neighbours ${(r.ms.neighbours / 1000).toFixed(2)} s, grouping ${(r.ms.grouping / 1000).toFixed(2)} s), ${r.clusters.length} clusters for ${n / 20} people, F1 ${s.f1.toFixed(4)}`);
    }
  }
  if (sizes.length) {
    const n = 8000;
    const { flat, truth: t } = generated(n, 20);
    const a = performance.now();
    const r = await clusterFaces(flat, { dim: 128, algorithm: 'agglomerative', threshold: 0.54 });
    const ms = performance.now() - a;
    speed.push({ n, algorithm: 'agglomerative', ms, f1: pairwiseScores(r.labels, t).f1, clusters: r.clusters.length });
    console.log(`  ${n} faces, agglomerative: ${(ms / 1000).toFixed(2)} s (its limit is 8192 faces)`);
  }
  out.speed = speed;
  out.loadAfter = os.loadavg();
  console.log(`\nload average before ${(out.load as number[]).map((x) => x.toFixed(2)).join(' ')}, after ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} CPUs)`);
  const json = arg('--json', '');
  if (json) fs.writeFileSync(json, JSON.stringify(out, null, 2));
  if (!work) fs.rmSync(tmp, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
