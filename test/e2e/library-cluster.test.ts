// clusterFaces on synthetic descriptors: well-separated people are recovered
// exactly by every algorithm, lone faces stay unclustered, results are
// deterministic, fixed groups keep their faces and attract their look-alikes,
// the neighbour search matches brute force, and the pairwise scores are right.
import { strict as assert } from 'assert';
import { clusterFaces, nearestNeighbours, pairwiseScores, CLUSTER_ALGORITHMS, ArgumentError } from '../../lib';
import { seededRandom as rng } from '../../lib/util/random';

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}
function unit(v: Float32Array): Float32Array {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

/** `people` people with `per` faces each (spread `sigma` per dimension around a random unit centre), then `noise` lone faces. */
export function synthetic(people: number, per: number, noise: number, sigma = 0.02, dim = 128, seed = 7): { descriptors: Float32Array[]; truth: (number | null)[] } {
  const r = rng(seed);
  const descriptors: Float32Array[] = [];
  const truth: (number | null)[] = [];
  for (let p = 0; p < people; p++) {
    const c = unit(Float32Array.from({ length: dim }, () => gaussian(r)));
    for (let i = 0; i < per; i++) {
      descriptors.push(c.map((x) => x + sigma * gaussian(r)));
      truth.push(p);
    }
  }
  for (let i = 0; i < noise; i++) {
    descriptors.push(unit(Float32Array.from({ length: dim }, () => gaussian(r))));
    truth.push(null);
  }
  return { descriptors, truth };
}

function asGroups(clusters: number[][]): string[] {
  return clusters.map((c) => [...c].sort((a, b) => a - b).join(',')).sort();
}

describe('clusterFaces', function () {
  this.timeout(120000);
  // 12 people x 15 faces (within-person distance ~0.32, between people ~1.4) and 20 lone faces.
  const { descriptors, truth } = synthetic(12, 15, 20);

  for (const algorithm of CLUSTER_ALGORITHMS) {
    it(`${algorithm}: recovers well-separated people exactly, lone faces unclustered`, async () => {
      const r = await clusterFaces(descriptors, { algorithm, threshold: 0.6 });
      assert.equal(r.clusters.length, 12, `${r.clusters.length} clusters`);
      const expected = Array.from({ length: 12 }, (_, p) => Array.from({ length: 15 }, (_, i) => p * 15 + i));
      assert.deepEqual(asGroups(r.clusters), asGroups(expected));
      assert.deepEqual(r.unclustered, Array.from({ length: 20 }, (_, i) => 180 + i));
      for (const i of r.unclustered) assert.equal(r.labels[i], -1);
      const s = pairwiseScores(r.labels, truth.map((t, i) => t ?? `lone${i}`));
      assert.equal(s.f1, 1);
    });
  }

  it('is deterministic for the same input and seed, and orders clusters largest first', async () => {
    const { descriptors: d } = synthetic(5, 10, 0, 0.05, 64, 3);
    d.push(...synthetic(1, 25, 0, 0.05, 64, 99).descriptors);
    const a = await clusterFaces(d, { threshold: 0.6 });
    const b = await clusterFaces(d, { threshold: 0.6 });
    assert.deepEqual(Array.from(a.labels), Array.from(b.labels));
    assert.equal(a.clusters[0].length, 25);
    for (let i = 1; i < a.clusters.length; i++) assert.ok(a.clusters[i - 1].length >= a.clusters[i].length);
  });

  it('a threshold too small for the spread leaves everything unclustered; one too large merges people', async () => {
    const tight = await clusterFaces(descriptors, { threshold: 0.05 });
    assert.equal(tight.clusters.length, 0);
    assert.equal(tight.unclustered.length, descriptors.length);
    const loose = await clusterFaces(descriptors.slice(0, 180), { algorithm: 'dbscan', threshold: 1.9 });
    assert.equal(loose.clusters.length, 1);
  });

  it('excluded faces stay unclustered and minClusterSize drops small groups', async () => {
    const excluded = descriptors.map((_, i) => i % 15 === 0 && i < 180);
    const r = await clusterFaces(descriptors, { threshold: 0.6, excluded });
    for (let i = 0; i < 180; i += 15) assert.equal(r.labels[i], -1);
    assert.equal(r.clusters.length, 12);
    const big = await clusterFaces(descriptors, { threshold: 0.6, minClusterSize: 16 });
    assert.equal(big.clusters.length, 0);
  });

  it('fixed groups keep their faces and their look-alikes join them (chinese-whispers)', async () => {
    const fixed = new Int32Array(descriptors.length).fill(-1);
    fixed[0] = 0; // one face of person 0 named
    fixed[15] = 1; // person 1: one face fixed into group 1 ...
    fixed[30] = 1; // ... and one face of person 2 forced into the same group by hand
    const r = await clusterFaces(descriptors, { threshold: 0.6, fixed });
    const g0 = r.fixed.indexOf(0);
    const g1 = r.fixed.indexOf(1);
    assert.ok(g0 >= 0 && g1 >= 0);
    assert.deepEqual(r.clusters[g0].sort((a, b) => a - b), Array.from({ length: 15 }, (_, i) => i));
    assert.ok(r.clusters[g1].includes(15) && r.clusters[g1].includes(30));
    assert.equal(r.labels[30], g1);
    await assert.rejects(clusterFaces(descriptors, { algorithm: 'dbscan', fixed }), ArgumentError);
  });

  it('nearestNeighbours matches brute force (several blocks)', async () => {
    const { descriptors: d } = synthetic(30, 20, 100, 0.05, 32, 5);
    const g = await nearestNeighbours(d, 5, { block: 64 }); // 700 rows: 11 blocks, the last overlapping
    for (const i of [0, 1, 17, 250, d.length - 1]) {
      const brute = d
        .map((v, j) => ({ j, dist: j === i ? Infinity : Math.hypot(...v.map((x, t) => x - d[i][t])) }))
        .sort((a, b) => a.dist - b.dist)
        .slice(0, 5);
      for (let t = 0; t < 5; t++) assert.ok(Math.abs(g.distance[i * 5 + t] - brute[t].dist) < 1e-3, `row ${i} #${t}: ${g.distance[i * 5 + t]} vs ${brute[t].dist}`);
    }
    const small = await nearestNeighbours([d[0], d[1]], 4);
    assert.deepEqual(Array.from(small.index), [1, -1, -1, -1, 0, -1, -1, -1]);
  });

  it('rejects bad input with ArgumentError', async () => {
    await assert.rejects(clusterFaces([new Float32Array(4), new Float32Array(3)]), ArgumentError);
    await assert.rejects(clusterFaces([new Float32Array([NaN, 0])]), ArgumentError);
    await assert.rejects(clusterFaces(descriptors, { algorithm: 'kmeans' as never }), ArgumentError);
    await assert.rejects(clusterFaces(descriptors, { threshold: -1 }), ArgumentError);
    const empty = await clusterFaces([]);
    assert.deepEqual(empty.clusters, []);
  });

  it('pairwiseScores: precision, recall and F1 over pairs', () => {
    // truth: a a a b b; predicted: {0,1} {2,3} {4 alone}
    const s = pairwiseScores([0, 0, 1, 1, -1], ['a', 'a', 'a', 'b', 'b']);
    // predicted pairs: (0,1) (2,3): 2, of which (0,1) is true; true pairs: 3 (a) + 1 (b) = 4
    assert.equal(s.precision, 0.5);
    assert.equal(s.recall, 0.25);
    assert.ok(Math.abs(s.f1 - 1 / 3) < 1e-12);
  });
});
