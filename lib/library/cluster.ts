// Grouping face descriptors into people (the photo library's "People", issue #20).
//
// Three algorithms over the same Euclidean distances:
// - 'chinese-whispers' (dlib's chinese_whispers, the default): a graph with an
//   edge between two faces closer than `threshold` (among each face's
//   `neighbours` nearest), then every face repeatedly takes the label most of its
//   neighbours carry, in a seeded random order, until nothing changes;
// - 'dbscan': faces with at least `minNeighbours` others within `threshold` are
//   core faces; clusters are the connected core faces plus the faces they reach;
// - 'agglomerative': average linkage (exact, dense distances, nearest-neighbour
//   chain), merged while the average distance is at most `threshold`.
// The nearest neighbours are found with libtorch matrix products in blocks
// (d^2 = ||q||^2 - 2 q.x + ||x||^2, then topk), replayed on a worker thread so
// that the event loop stays free; the graph algorithms run in JS and yield to the
// event loop between passes. The default was chosen by measurement
// (scripts/cluster-eval.ts, docs/photo-library.md).
import { z } from 'zod';
import { ArgumentError, invalid, parseOptions } from '../core/errors';
import { trace } from '../core/jit';
import { callOp, topk } from '../ops';
import { Device, Tensor, dispose, tensor } from '../core';
import { seededRandom as rng } from '../util/random';

export const CLUSTER_ALGORITHMS = ['chinese-whispers', 'dbscan', 'agglomerative'] as const;
export type ClusterAlgorithm = (typeof CLUSTER_ALGORITHMS)[number];

/**
 * Default edge threshold (Euclidean distance) for face-api's descriptors made
 * with tta 'flip' (what the photo library stores): the calibrated distance at a
 * per-comparison false-accept rate of 1e-3 rounded (0.539, lib/face/calibration),
 * then checked on labelled photos (docs/photo-library.md). Libraries with a
 * calibrated model choose it from the calibration (see FaceGallery.cluster()).
 */
export const DEFAULT_CLUSTER_THRESHOLD = 0.54;
/** The per-comparison false-accept rate whose calibrated distance is the clustering threshold of a calibrated model. */
export const DEFAULT_CLUSTER_FAR = 1e-3;
/** Largest input for 'agglomerative' (it keeps the n x n distances in memory: 4 n^2 bytes). */
export const MAX_AGGLOMERATIVE = 8192;

const clusterOptions = z
  .object({
    algorithm: z.enum(CLUSTER_ALGORITHMS).default('chinese-whispers'),
    /** Two faces closer than this (Euclidean) may be the same person. */
    threshold: z.number().positive().finite().default(DEFAULT_CLUSTER_THRESHOLD),
    /** Neighbours per face in the graph (chinese-whispers, dbscan). */
    neighbours: z.number().int().min(1).max(1024).default(32),
    /** Passes of chinese-whispers at most (it stops earlier when no label changes). */
    iterations: z.number().int().min(1).max(10000).default(100),
    /** dbscan: neighbours within threshold (not counting the face) to be a core face. */
    minNeighbours: z.number().int().min(1).max(1024).default(2),
    /** Smaller groups are returned as unclustered. */
    minClusterSize: z.number().int().min(1).default(2),
    /** Seed of the visiting order (chinese-whispers): same input and seed, same result. */
    seed: z.number().int().default(1),
    /**
     * chinese-whispers only: faces whose group is already known (named people,
     * clusters fixed by hand). fixed[i] >= 0 keeps face i in group fixed[i]
     * (its label never changes; other faces may join it); -1 leaves it free.
     */
    fixed: z.union([z.instanceof(Int32Array), z.array(z.number().int().min(-1))]).optional(),
    /** Faces to leave out (poor quality): excluded[i] true leaves face i unclustered. */
    excluded: z.array(z.boolean()).optional(),
    device: z.string().default('cpu'),
  })
  .strict();

export type ClusterOptions = z.input<typeof clusterOptions>;

export interface ClusterResult {
  /** Per face: its cluster's index in `clusters`, or -1 (unclustered). */
  labels: Int32Array;
  /** Faces (indices) of each cluster, largest first (ties: by first face). */
  clusters: number[][];
  /** Per cluster: the `fixed` group it holds, or null. */
  fixed: (number | null)[];
  /** Faces in no cluster (excluded, or in a group smaller than minClusterSize). */
  unclustered: number[];
  algorithm: ClusterAlgorithm;
  threshold: number;
  /** Wall time: neighbour search and grouping, in milliseconds. */
  ms: { neighbours: number; grouping: number };
}

/** The k nearest other rows of each row (Euclidean), closest first. */
export interface NeighbourGraph {
  n: number;
  k: number;
  /** n x k row indices (-1 where a row has fewer than k others). */
  index: Int32Array;
  /** n x k distances (Infinity where index is -1). */
  distance: Float32Array;
}

function flatten(descriptors: readonly Float32Array[] | Float32Array, dim?: number): { flat: Float32Array; n: number; dim: number } {
  if (descriptors instanceof Float32Array) {
    if (!dim) invalid('dim', 'the descriptor length with a flat Float32Array', dim);
    if (descriptors.length % dim !== 0) invalid('descriptors', `a multiple of ${dim} values`, descriptors.length);
    return { flat: descriptors, n: descriptors.length / dim, dim };
  }
  if (!Array.isArray(descriptors)) invalid('descriptors', 'an array of Float32Array descriptors', descriptors);
  const n = descriptors.length;
  const d = n ? descriptors[0]?.length : (dim ?? 1);
  const flat = new Float32Array(n * d);
  descriptors.forEach((v, i) => {
    if (!(v instanceof Float32Array) || v.length !== d) invalid(`descriptors[${i}]`, `a Float32Array of length ${d}`, v);
    flat.set(v, i * d);
  });
  for (let i = 0; i < flat.length; i++) if (!Number.isFinite(flat[i])) invalid(`descriptors[${Math.floor(i / d)}]`, 'finite values', flat[i]);
  return { flat, n, dim: d };
}

const yieldLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The k nearest neighbours of every row among all rows (itself left out), by
 * blocks of queries: one addmm + topk per block, traced once and replayed on a
 * libtorch worker thread. Temporary memory: block x n floats (<= 64 MiB).
 */
export async function nearestNeighbours(descriptors: readonly Float32Array[] | Float32Array, k: number, options: { dim?: number; device?: string; block?: number } = {}): Promise<NeighbourGraph> {
  const { flat, n, dim } = flatten(descriptors, options.dim);
  if (!Number.isInteger(k) || k < 1) invalid('k', 'a positive integer', k);
  const device = (options.device ?? 'cpu') as Device;
  const kk = Math.min(k, Math.max(0, n - 1));
  const index = new Int32Array(n * k).fill(-1);
  const distance = new Float32Array(n * k).fill(Infinity);
  if (n < 2) return { n, k, index, distance };
  const want = Math.min(kk + 1, n);
  const block = Math.max(1, Math.min(n, options.block ?? Math.min(Math.floor((16 << 20) / n), 4096)));
  const sqn = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += flat[i * dim + j] * flat[i * dim + j];
    sqn[i] = s;
  }
  const X = tensor(flat, { shape: [n, dim], device });
  const Xt = X.transpose(0, 1).contiguous();
  const sq = tensor(sqn, { shape: [1, n], device });
  const example = tensor(flat.subarray(0, block * dim), { shape: [block, dim], device });
  let program;
  try {
    program = trace(
      (q: Tensor, xt: Tensor, s: Tensor) => {
        const d2 = callOp('aten::addmm', '', s, q, xt, 1, -2) as Tensor;
        const r = topk(d2, want, 1, false, true);
        return [r.values, r.indices];
      },
      [example, Xt, sq],
    );
  } finally {
    example.dispose();
  }
  try {
    for (let start = 0; start < n; start += block) {
      // The last block overlaps the one before, so that every block has the traced shape.
      const s0 = Math.min(start, n - block);
      const q = tensor(flat.subarray(s0 * dim, (s0 + block) * dim), { shape: [block, dim], device });
      let out: Tensor[];
      try {
        out = await program(q, Xt, sq);
      } finally {
        q.dispose();
      }
      const vals = (out[0].device === 'cpu' ? out[0] : out[0].to('cpu')).data() as Float32Array;
      const idxs = (out[1].device === 'cpu' ? out[1] : out[1].to('cpu')).data() as BigInt64Array;
      dispose(...out);
      for (let r = start - s0; r < block; r++) {
        const i = s0 + r;
        let c = 0;
        for (let t = 0; t < want && c < kk; t++) {
          const j = Number(idxs[r * want + t]);
          if (j === i) continue;
          index[i * k + c] = j;
          distance[i * k + c] = Math.sqrt(Math.max(0, vals[r * want + t] + sqn[i]));
          c++;
        }
      }
    }
  } finally {
    dispose(X, Xt, sq);
  }
  return { n, k, index, distance };
}

/** Symmetric adjacency (CSR) of the graph's edges at distance <= threshold. */
function adjacency(g: NeighbourGraph, threshold: number, excluded: boolean[] | undefined): { start: Int32Array; to: Int32Array } {
  const { n, k, index, distance } = g;
  const lists: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) {
    if (excluded?.[i]) continue;
    for (let t = 0; t < k; t++) {
      const j = index[i * k + t];
      if (j < 0 || distance[i * k + t] > threshold) break;
      if (excluded?.[j]) continue;
      lists[i].push(j);
      lists[j].push(i);
    }
  }
  const start = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    // each edge may be listed from both ends: dedupe
    const u = [...new Set(lists[i])].sort((a, b) => a - b);
    lists[i] = u;
    start[i + 1] = start[i] + u.length;
  }
  const to = new Int32Array(start[n]);
  for (let i = 0; i < n; i++) to.set(lists[i], start[i]);
  return { start, to };
}


/** Chinese whispers (dlib): labels of the faces; fixed faces keep theirs. */
async function chineseWhispers(adj: { start: Int32Array; to: Int32Array }, n: number, iterations: number, seed: number, fixed: Int32Array | null): Promise<Int32Array> {
  // Free faces start with their own label (n + i); fixed groups with theirs (their group number).
  const label = new Int32Array(n);
  for (let i = 0; i < n; i++) label[i] = fixed && fixed[i] >= 0 ? fixed[i] : n + i;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const random = rng(seed);
  const counts = new Map<number, number>();
  for (let it = 0; it < iterations; it++) {
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    let changed = 0;
    for (const i of order) {
      if (fixed && fixed[i] >= 0) continue;
      const a = adj.start[i];
      const b = adj.start[i + 1];
      if (a === b) continue;
      counts.clear();
      let best = label[i];
      let bestCount = 0;
      for (let e = a; e < b; e++) {
        const l = label[adj.to[e]];
        const c = (counts.get(l) ?? 0) + 1;
        counts.set(l, c);
        // ties: the smaller label, so that the result does not depend on the edge order
        if (c > bestCount || (c === bestCount && l < best)) {
          best = l;
          bestCount = c;
        }
      }
      if (best !== label[i]) {
        label[i] = best;
        changed++;
      }
    }
    if (changed === 0) break;
    if (it % 4 === 3) await yieldLoop();
  }
  return label;
}

/** DBSCAN on the neighbour graph (eps = threshold): labels, -1 for noise. */
function dbscan(adj: { start: Int32Array; to: Int32Array }, n: number, minNeighbours: number): Int32Array {
  const label = new Int32Array(n).fill(-1);
  const core = (i: number) => adj.start[i + 1] - adj.start[i] >= minNeighbours;
  let next = 0;
  for (let i = 0; i < n; i++) {
    if (label[i] !== -1 || !core(i)) continue;
    const c = next++;
    label[i] = c;
    const stack = [i];
    while (stack.length) {
      const u = stack.pop()!;
      if (!core(u)) continue; // border faces join but do not extend the cluster
      for (let e = adj.start[u]; e < adj.start[u + 1]; e++) {
        const v = adj.to[e];
        if (label[v] === -1) {
          label[v] = c;
          stack.push(v);
        }
      }
    }
  }
  return label;
}

/** Average-linkage agglomerative clustering cut at `threshold` (nearest-neighbour chain, exact). */
async function agglomerative(flat: Float32Array, n: number, dim: number, threshold: number, excluded: boolean[] | undefined, device: Device): Promise<Int32Array> {
  if (n > MAX_AGGLOMERATIVE) throw new ArgumentError('descriptors', `at most ${MAX_AGGLOMERATIVE} faces for 'agglomerative' (it keeps n x n distances), or algorithm 'chinese-whispers'`, `${n} faces`);
  // Dense distances with one matrix product (n <= 8192: at most 256 MiB).
  const X = tensor(flat, { shape: [n, dim], device });
  const G = X.matmul(X.transpose(0, 1));
  const g = (G.device === 'cpu' ? G : G.to('cpu')).data() as Float32Array;
  const D = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) D[i * n + j] = Math.sqrt(Math.max(0, g[i * n + i] + g[j * n + j] - 2 * g[i * n + j]));
  dispose(X, G);
  const active = new Uint8Array(n);
  const size = new Float64Array(n).fill(1);
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  let remaining = 0;
  for (let i = 0; i < n; i++) if (!excluded?.[i]) {
    active[i] = 1;
    remaining++;
  }
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]];
    return i;
  };
  const chain: number[] = [];
  let steps = 0;
  while (remaining > 1) {
    if (chain.length === 0) {
      let s = 0;
      while (!active[s]) s++;
      chain.push(s);
    }
    const a = chain[chain.length - 1];
    const prev = chain.length > 1 ? chain[chain.length - 2] : -1;
    let b = -1;
    let bd = Infinity;
    for (let c = 0; c < n; c++) {
      if (!active[c] || c === a) continue;
      const d = D[a * n + c];
      if (d < bd || (d === bd && c === prev)) {
        b = c;
        bd = d;
      }
    }
    if (b < 0) break;
    if (b !== prev) {
      chain.push(b);
      if (++steps % 4096 === 0) await yieldLoop();
      continue;
    }
    chain.pop();
    chain.pop();
    if (bd > threshold) {
      // Reciprocal nearest neighbours farther than the threshold: neither merges again (average linkage is reducible).
      active[a] = 0;
      active[b] = 0;
      remaining -= 2;
      continue;
    }
    // Merge b into a (Lance-Williams for average linkage).
    const na = size[a];
    const nb = size[b];
    for (let c = 0; c < n; c++) {
      if (!active[c] || c === a || c === b) continue;
      const d = (na * D[a * n + c] + nb * D[b * n + c]) / (na + nb);
      D[a * n + c] = d;
      D[c * n + a] = d;
    }
    size[a] = na + nb;
    active[b] = 0;
    parent[b] = a;
    remaining--;
  }
  const label = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) if (!excluded?.[i]) label[i] = find(i);
  return label;
}

/**
 * Groups face descriptors into people: `clusterFaces(descriptors)` ->
 * `{ clusters: [[faces of person 1], ...], unclustered, labels }`. Deterministic
 * for the same input and options. See the module comment for the algorithms.
 */
export async function clusterFaces(descriptors: readonly Float32Array[] | Float32Array, options: ClusterOptions & { dim?: number } = {}): Promise<ClusterResult> {
  const { dim: dimOption, ...rest } = options ?? {};
  const o = parseOptions(clusterOptions, rest);
  const { flat, n, dim } = flatten(descriptors, dimOption);
  if (o.excluded && o.excluded.length !== n) invalid('options.excluded', `an array of ${n} booleans`, o.excluded);
  const fixed = o.fixed ? Int32Array.from(o.fixed) : null;
  if (fixed && fixed.length !== n) invalid('options.fixed', `an array of ${n} group numbers (-1 for free faces)`, o.fixed);
  if (fixed && o.algorithm !== 'chinese-whispers') invalid('options.fixed', "algorithm 'chinese-whispers' (only it keeps fixed groups)", o.algorithm);
  const t0 = performance.now();
  let raw: Int32Array;
  let tGraph = t0;
  if (o.algorithm === 'agglomerative') {
    tGraph = performance.now();
    raw = await agglomerative(flat, n, dim, o.threshold, o.excluded, o.device as Device);
  } else {
    const graph = await nearestNeighbours(flat, o.neighbours, { dim, device: o.device });
    tGraph = performance.now();
    const adj = adjacency(graph, o.threshold, o.excluded);
    await yieldLoop();
    raw = o.algorithm === 'dbscan' ? dbscan(adj, n, o.minNeighbours) : await chineseWhispers(adj, n, o.iterations, o.seed, fixed);
  }
  // Groups by raw label; excluded faces never form or join one.
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    if (o.excluded?.[i] || raw[i] < 0) continue;
    const g = groups.get(raw[i]);
    if (g) g.push(i);
    else groups.set(raw[i], [i]);
  }
  const kept: { members: number[]; fixed: number | null }[] = [];
  const unclustered: number[] = [];
  for (const [l, members] of groups) {
    const isFixed = fixed !== null && l < n && members.some((i) => fixed[i] === l);
    if (isFixed || members.length >= o.minClusterSize) kept.push({ members, fixed: isFixed ? l : null });
    else unclustered.push(...members);
  }
  for (let i = 0; i < n; i++) if (o.excluded?.[i] || raw[i] < 0) unclustered.push(i);
  kept.sort((a, b) => b.members.length - a.members.length || a.members[0] - b.members[0]);
  unclustered.sort((a, b) => a - b);
  const labels = new Int32Array(n).fill(-1);
  kept.forEach((c, ci) => c.members.forEach((i) => (labels[i] = ci)));
  const t1 = performance.now();
  return {
    labels,
    clusters: kept.map((c) => c.members),
    fixed: kept.map((c) => c.fixed),
    unclustered,
    algorithm: o.algorithm,
    threshold: o.threshold,
    ms: { neighbours: Math.round(tGraph - t0), grouping: Math.round(t1 - tGraph) },
  };
}

/**
 * Pairwise precision, recall and F1 of a clustering against true labels: over
 * all pairs of faces, a pair is "predicted same" when both are in the same
 * cluster (unclustered faces are singletons), "truly same" when their labels
 * match. Faces with a null label are left out.
 */
export function pairwiseScores(predicted: ArrayLike<number>, truth: ArrayLike<string | number | null>): { precision: number; recall: number; f1: number; truePairs: number; predictedPairs: number } {
  if (predicted.length !== truth.length) invalid('truth', `${predicted.length} labels`, truth.length);
  const pairs = (m: Map<string, number>) => [...m.values()].reduce((s, c) => s + (c * (c - 1)) / 2, 0);
  const byPred = new Map<string, number>();
  const byTrue = new Map<string, number>();
  const byBoth = new Map<string, number>();
  let single = 0;
  for (let i = 0; i < predicted.length; i++) {
    const t = truth[i];
    if (t === null || t === undefined) continue;
    const p = predicted[i] < 0 ? `u${single++}` : `c${predicted[i]}`;
    byPred.set(p, (byPred.get(p) ?? 0) + 1);
    byTrue.set(String(t), (byTrue.get(String(t)) ?? 0) + 1);
    const both = `${p}\0${String(t)}`;
    byBoth.set(both, (byBoth.get(both) ?? 0) + 1);
  }
  const tp = pairs(byBoth);
  const predictedPairs = pairs(byPred);
  const truePairs = pairs(byTrue);
  const precision = predictedPairs ? tp / predictedPairs : 1;
  const recall = truePairs ? tp / truePairs : 1;
  return { precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, truePairs, predictedPairs };
}
