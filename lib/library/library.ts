// The photo library of a FaceGallery (issue #20): index a folder, cluster the
// faces into people, name a cluster (it becomes an enrolled person), merge,
// split and remove clusters. FaceGallery (lib/gallery/gallery.ts) exposes these
// as gallery.index(), gallery.cluster(), gallery.name(), ...
//
// What stays where: a face placed by hand (its cluster named, merged, split or
// a face moved) is pinned; clustering keeps pinned faces in their cluster (they
// are fixed labels of chinese whispers) and lets other faces join them, so new
// photos of a named person join that person. Unnamed clusters keep their id
// across runs when they keep most of their faces. A named person's enrolled
// embeddings (what identify() searches) are the pinned faces of their cluster.
import { z } from 'zod';
import { ArgumentError, TorchfaceError, invalid, parseOptions } from '../core/errors';
import { FaceQuality, QualityLimits, qualityProblems } from '../face/quality';
import { CLUSTER_ALGORITHMS, ClusterAlgorithm, clusterFaces } from './cluster';
import { IndexOptions, IndexSummary, PhotoFaceModel, indexPhotos } from './indexer';
import { FaceRecord, LibraryStore, PhotoRow } from './store';

/** A cluster id that is not in the library. */
export class UnknownClusterError extends TorchfaceError {
  override readonly code: string = 'ERR_UNKNOWN_CLUSTER';
  constructor(readonly cluster: number) {
    super(`cluster ${cluster} is not in this library`);
  }
}
/** A face id that is not in the library. */
export class UnknownFaceError extends TorchfaceError {
  override readonly code: string = 'ERR_UNKNOWN_FACE';
  constructor(readonly face: number) {
    super(`face ${face} is not in this library`);
  }
}

/** What the library needs from its gallery. */
export interface LibraryHost {
  /** Makes `id` an enrolled person whose embeddings are exactly `vectors` (creating the person when needed). */
  setPersonEmbeddings(id: string, vectors: Float32Array[]): Promise<void>;
  /** Removes an enrolled person (false when not enrolled). */
  removePerson(id: string): Promise<boolean>;
  /** An enrolled person's embeddings, or null when not enrolled. */
  personEmbeddings(id: string): Promise<Float32Array[] | null>;
  /** Checks a person id (throws an ArgumentError for a bad one). */
  checkId(id: unknown, parameter: string): string;
  /** The face model (required to index). */
  faceModel(): PhotoFaceModel;
  /** The default clustering threshold: the model's calibrated distance, or DEFAULT_CLUSTER_THRESHOLD. */
  clusterThreshold(): number;
  readonly qualityLimits: QualityLimits;
}

/** Most enrolled embeddings a named person gets from their cluster (the best-quality pinned faces). */
export const MAX_PERSON_EMBEDDINGS = 64;

/**
 * Quality limits for clustering: a face is placed only when it passes these
 * (lib/face/quality.ts measures them). Much looser than enrolment's
 * (QUALITY_DEFAULTS): measured on 536 faces of 30 held-out people
 * (docs/photo-library.md), enrolment's limits kept 67 faces out for no gain in
 * precision (pairwise F1 0.869 against 0.968 with no limits), so clustering
 * keeps out only faces under 16 px, weak detections (score < 0.3, the
 * detector's fallback stages), nearly featureless crops (sharpness < 1) and
 * heads turned past profile (|yaw| > 1).
 */
export const CLUSTER_QUALITY: QualityLimits = { minSize: 16, minScore: 0.3, minSharpness: 1, maxYaw: 1 };

const libraryClusterOptions = z
  .object({
    algorithm: z.enum(CLUSTER_ALGORITHMS).default('chinese-whispers'),
    threshold: z.number().positive().finite().optional(),
    neighbours: z.number().int().min(1).max(1024).optional(),
    iterations: z.number().int().min(1).max(10000).optional(),
    minClusterSize: z.number().int().min(1).optional(),
    minNeighbours: z.number().int().min(1).optional(),
    seed: z.number().int().optional(),
    /** Quality limits for a face to be placed (default CLUSTER_QUALITY). */
    quality: z.object({ minSize: z.number().min(0), minScore: z.number().min(0).max(1), minSharpness: z.number().min(0), maxYaw: z.number().positive() }).partial().strict().optional(),
    /** Forget every placement made by hand (pins) and cluster from scratch; names stay on no cluster. Default false. */
    reset: z.boolean().default(false),
  })
  .strict();
export type LibraryClusterOptions = z.input<typeof libraryClusterOptions>;

export interface ClusterView {
  id: number;
  /** The enrolled person's id, or null for an unnamed cluster. */
  name: string | null;
  faces: FaceRecord[];
}

export interface LibraryClusters {
  clusters: ClusterView[];
  unclustered: FaceRecord[];
}

export interface ClusterSummary {
  clusters: number;
  named: number;
  faces: number;
  clustered: number;
  unclustered: number;
  /** Faces left out for their quality. */
  poor: number;
  algorithm: ClusterAlgorithm;
  threshold: number;
  ms: { neighbours: number; grouping: number; total: number };
}

function checkNumber(v: unknown, parameter: string): number {
  if (!Number.isInteger(v) || (v as number) < 1) invalid(parameter, 'a positive integer id', v);
  return v as number;
}

export class PhotoLibrary {
  readonly store: LibraryStore;
  constructor(
    db: ConstructorParameters<typeof LibraryStore>[0],
    private readonly host: LibraryHost,
  ) {
    this.store = new LibraryStore(db);
  }

  /** Indexes a folder of photos (lib/library/indexer.ts). */
  async index(dir: string, options: IndexOptions = {}): Promise<IndexSummary> {
    return indexPhotos(this.store, this.host.faceModel(), dir, options);
  }

  /** Whether a face is good enough to place (its quality passes the limits; faces without a measured quality pass). */
  static placeable(q: FaceQuality | null, limits: QualityLimits): boolean {
    return !q || qualityProblems(q, limits).length === 0;
  }

  /** Groups the faces into clusters (see the module comment); returns what changed in numbers. */
  async cluster(options: LibraryClusterOptions = {}): Promise<ClusterSummary> {
    const o = parseOptions(libraryClusterOptions, options);
    const t0 = performance.now();
    const limits = { ...CLUSTER_QUALITY, ...(o.quality ?? {}) };
    if (o.reset) this.store.transaction(() => this.store.db.exec('UPDATE faces SET pinned = 0'));
    const faces = this.store.clusteringInput();
    const clusters = new Map(this.store.clusterList().map((c) => [c.id, c]));
    // Fixed groups: the clusters holding pinned faces (named or not).
    const groupOf = new Map<number, number>();
    const groupCluster: number[] = [];
    const fixed = new Int32Array(faces.length).fill(-1);
    // A face placed by hand stays where it was put, whatever its quality.
    const excluded = faces.map((f) => f.ignored || (!(f.pinned && f.cluster !== null) && !PhotoLibrary.placeable(f.quality, limits)));
    faces.forEach((f, i) => {
      if (!f.pinned || f.cluster === null || excluded[i]) return;
      let g = groupOf.get(f.cluster);
      if (g === undefined) {
        g = groupCluster.length;
        groupOf.set(f.cluster, g);
        groupCluster.push(f.cluster);
      }
      fixed[i] = g;
    });
    const threshold = o.threshold ?? this.host.clusterThreshold();
    const r = await clusterFaces(
      faces.map((f) => f.descriptor),
      {
        algorithm: groupCluster.length ? 'chinese-whispers' : o.algorithm,
        threshold,
        neighbours: o.neighbours,
        iterations: o.iterations,
        minClusterSize: o.minClusterSize,
        minNeighbours: o.minNeighbours,
        seed: o.seed,
        excluded,
        ...(groupCluster.length ? { fixed } : {}),
      },
    );
    // Cluster ids: fixed groups keep theirs; others take the id of the previous unnamed,
    // unpinned cluster they share most faces with (largest clusters choose first).
    const assigned = new Map<number, number>(); // result cluster index -> cluster id
    const taken = new Set<number>(groupCluster);
    r.fixed.forEach((g, ci) => {
      if (g !== null) assigned.set(ci, groupCluster[g]);
    });
    r.clusters.forEach((members, ci) => {
      if (assigned.has(ci)) return;
      const votes = new Map<number, number>();
      for (const i of members) {
        const c = faces[i].cluster;
        if (c !== null && !taken.has(c) && clusters.get(c)?.name === null) votes.set(c, (votes.get(c) ?? 0) + 1);
      }
      let best: number | null = null;
      let bestVotes = 0;
      for (const [c, v] of votes) if (v > bestVotes || (v === bestVotes && best !== null && c < best)) [best, bestVotes] = [c, v];
      if (best !== null && bestVotes * 2 > members.length) {
        assigned.set(ci, best);
        taken.add(best);
      }
    });
    this.store.transaction(() => {
      r.clusters.forEach((members, ci) => {
        let id = assigned.get(ci);
        if (id === undefined) {
          id = this.store.newCluster();
          assigned.set(ci, id);
        }
        for (const i of members) if (!faces[i].pinned || faces[i].cluster !== id) this.store.assign(faces[i].id, id, faces[i].pinned && faces[i].cluster === id);
      });
      for (const i of r.unclustered) {
        const f = faces[i];
        if (f.ignored) continue;
        if (f.pinned && fixed[i] >= 0) continue; // a lone pinned face stays
        if (f.cluster !== null) this.store.assign(f.id, null, false);
      }
      this.store.deleteEmptyClusters();
    });
    const counts = this.store.counts();
    return {
      clusters: r.clusters.length,
      named: counts.named,
      faces: faces.length,
      clustered: faces.length - r.unclustered.length,
      unclustered: r.unclustered.length,
      poor: excluded.filter((x, i) => x && !faces[i].ignored).length,
      algorithm: r.algorithm,
      threshold,
      ms: { ...r.ms, total: Math.round(performance.now() - t0) },
    };
  }

  /** The clusters with their faces (largest first, named first), and the unclustered faces. */
  clusters(): LibraryClusters {
    const all = this.store.allFaces();
    const byCluster = new Map<number, FaceRecord[]>();
    const unclustered: FaceRecord[] = [];
    for (const f of all) {
      if (f.cluster === null) {
        if (!f.ignored) unclustered.push(f);
        continue;
      }
      const list = byCluster.get(f.cluster);
      if (list) list.push(f);
      else byCluster.set(f.cluster, [f]);
    }
    const clusters = this.store.clusterList().map((c) => ({ id: c.id, name: c.name, faces: (byCluster.get(c.id) ?? []).sort((a, b) => Number(b.pinned) - Number(a.pinned) || b.score - a.score || a.id - b.id) }));
    return { clusters, unclustered };
  }

  cluster1(id: number): ClusterView {
    checkNumber(id, 'clusterId');
    const c = this.store.cluster(id);
    if (!c) throw new UnknownClusterError(id);
    return { id, name: c.name, faces: this.store.facesOfCluster(id) };
  }

  /** Re-enrols the cluster's person from its pinned faces (best quality first). */
  private async syncPerson(clusterId: number): Promise<void> {
    const c = this.store.cluster(clusterId);
    if (!c?.name) return;
    const faces = this.store.facesOfCluster(clusterId).filter((f) => f.pinned && !f.ignored);
    faces.sort((a, b) => (b.quality?.sharpness ?? 0) - (a.quality?.sharpness ?? 0) || a.id - b.id);
    const good = faces.filter((f) => PhotoLibrary.placeable(f.quality, this.host.qualityLimits));
    const use = (good.length ? good : faces).slice(0, MAX_PERSON_EMBEDDINGS);
    const vectors = this.store.descriptorsOf(use.map((f) => f.id));
    await this.host.setPersonEmbeddings(c.name, [...this.store.extraOf(c.name), ...use.map((f) => vectors.get(f.id)!)]);
  }

  /**
   * Names a cluster: it becomes the enrolled person `name` (its faces pinned,
   * the person's embeddings its faces). A name another cluster has already
   * merges this cluster into that one; renaming a named cluster renames the
   * person. Returns the (resulting) cluster.
   */
  async name(clusterId: number, name: string): Promise<ClusterView> {
    checkNumber(clusterId, 'clusterId');
    this.host.checkId(name, 'name');
    const c = this.store.cluster(clusterId);
    if (!c) throw new UnknownClusterError(clusterId);
    if (c.name === name) return this.cluster1(clusterId);
    const other = this.store.clusterOfPerson(name);
    if (other !== null && other !== clusterId) {
      await this.merge(other, [clusterId]);
      return this.cluster1(other);
    }
    const old = c.name;
    // The person first (it must exist before the cluster can point at it). A person
    // enrolled before (outside the library) keeps their embeddings beside the cluster's faces.
    const before = await this.host.personEmbeddings(name);
    if (before === null) await this.host.setPersonEmbeddings(name, []);
    this.store.transaction(() => {
      if (before?.length) this.store.addExtra(name, before);
      if (old !== null) this.store.renameExtra(old, name);
      this.store.setClusterName(clusterId, name);
      this.store.pinCluster(clusterId);
    });
    await this.syncPerson(clusterId);
    if (old !== null) await this.host.removePerson(old);
    return this.cluster1(clusterId);
  }

  /** Removes a cluster's name (the person is removed from the gallery); its faces stay together, pinned. */
  async unname(clusterId: number): Promise<ClusterView> {
    const c = this.cluster1(clusterId);
    if (c.name !== null) {
      this.store.transaction(() => this.store.setClusterName(clusterId, null));
      await this.host.removePerson(c.name);
    }
    return this.cluster1(clusterId);
  }

  /** Moves every face of the `from` clusters into `into` (pinned); the emptied clusters (and their names) go. */
  async merge(into: number, from: number[]): Promise<ClusterView> {
    checkNumber(into, 'into');
    if (!Array.isArray(from) || from.length === 0) invalid('from', 'one or more cluster ids', from);
    from.forEach((id, i) => checkNumber(id, `from[${i}]`));
    const target = this.store.cluster(into);
    if (!target) throw new UnknownClusterError(into);
    const sources = from.filter((id) => id !== into).map((id) => {
      const c = this.store.cluster(id);
      if (!c) throw new UnknownClusterError(id);
      return c;
    });
    // A named source into an unnamed target: the target takes the name.
    const named = sources.find((s) => s.name !== null);
    const inherit = target.name === null && named ? named.name : null;
    this.store.transaction(() => {
      for (const s of sources) {
        for (const f of this.store.facesOfCluster(s.id)) this.store.assign(f.id, into, true);
        this.store.deleteCluster(s.id);
      }
      this.store.pinCluster(into);
      if (inherit) this.store.setClusterName(into, inherit);
    });
    for (const s of sources) if (s.name !== null && s.name !== inherit) await this.host.removePerson(s.name);
    await this.syncPerson(into);
    return this.cluster1(into);
  }

  /**
   * Moves faces out of their cluster into a new cluster (pinned, unnamed); the
   * rest of the cluster is pinned too, so that reclustering keeps the split.
   * Returns the new cluster.
   */
  async split(clusterId: number, faceIds: number[]): Promise<ClusterView> {
    const c = this.cluster1(clusterId);
    if (!Array.isArray(faceIds) || faceIds.length === 0) invalid('faces', 'one or more face ids of the cluster', faceIds);
    const inCluster = new Set(c.faces.map((f) => f.id));
    faceIds.forEach((id, i) => {
      checkNumber(id, `faces[${i}]`);
      if (!inCluster.has(id)) throw new ArgumentError(`faces[${i}]`, `a face of cluster ${clusterId}`, id);
    });
    let id = 0;
    this.store.transaction(() => {
      id = this.store.newCluster();
      this.store.pinCluster(clusterId);
      for (const f of faceIds) this.store.assign(f, id, true);
    });
    await this.syncPerson(clusterId);
    return this.cluster1(id);
  }

  /** Moves one face into a cluster (pinned), or out of every cluster (`null`: it stays out, ignored). */
  async moveFace(faceId: number, clusterId: number | null): Promise<FaceRecord> {
    checkNumber(faceId, 'faceId');
    const f = this.store.face(faceId);
    if (!f) throw new UnknownFaceError(faceId);
    if (clusterId !== null) {
      checkNumber(clusterId, 'clusterId');
      if (!this.store.cluster(clusterId)) throw new UnknownClusterError(clusterId);
    }
    this.store.transaction(() => {
      if (clusterId === null) this.store.ignore(faceId);
      else this.store.assign(faceId, clusterId, true);
      this.store.deleteEmptyClusters();
    });
    if (f.cluster !== null) await this.syncPerson(f.cluster);
    if (clusterId !== null) await this.syncPerson(clusterId);
    return this.store.face(faceId)!;
  }

  /**
   * Removes a cluster: its faces leave the people for good (ignored: clustering
   * does not bring them back) and a named cluster's person leaves the gallery.
   */
  async removeCluster(clusterId: number): Promise<void> {
    const c = this.cluster1(clusterId);
    this.store.transaction(() => {
      for (const f of c.faces) this.store.ignore(f.id);
      this.store.deleteCluster(clusterId);
    });
    if (c.name !== null) await this.host.removePerson(c.name);
  }

  photos(options: { cluster?: number; offset?: number; limit?: number } = {}): PhotoRow[] {
    return this.store.photos(options);
  }
  photo(id: number): (PhotoRow & { faceList: FaceRecord[] }) | null {
    checkNumber(id, 'photoId');
    const p = this.store.photo(id);
    return p ? { ...p, faceList: this.store.facesOfPhoto(id) } : null;
  }
  face(id: number): FaceRecord | null {
    checkNumber(id, 'faceId');
    return this.store.face(id);
  }
  counts(): ReturnType<LibraryStore['counts']> {
    return this.store.counts();
  }
}
