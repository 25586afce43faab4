// FaceGallery: the embedded gallery. Records in one SQLite file (store.ts), the
// search in an in-memory tensor index (../embedding-index.ts) kept in step with
// the file, also when another process writes to it. Everything a gallery does
// beyond storage is GalleryBase's (../gallery.ts); PgVectorGallery (../pgvector/)
// is the same gallery on PostgreSQL.
import { invalid } from '../../core/errors';
import type { Box } from '../../face/detect';
import { thresholdForFar } from '../../face/calibration';
import { ImageInput, loadImage } from '../../image';
import type { IndexOptions, IndexSummary, PhotoFaceModel } from '../../library/indexer';
import { ClusterSummary, ClusterView, LibraryClusterOptions, LibraryClusters, PhotoLibrary } from '../../library/library';
import type { FaceRecord, PhotoRow } from '../../library/store';
import { DEFAULT_CLUSTER_FAR, DEFAULT_CLUSTER_THRESHOLD } from '../../library/cluster';
import { EmbeddingIndex, INDEX_STORAGES, type IndexStorage } from '../embedding-index';
import type { AnnIndex } from '../ann-index';
import { ApproximateSearch, type GalleryHnswOptions } from './approximate';
import { Candidate, DuplicateIdError, FaceModelLike, GalleryBackend, GalleryBase, GalleryOptions, IdentifyOptions, IdentifyResult, ModelIdentity, Person, PersonData, checkId } from '../gallery';
import { PersonRow, SqliteStore, StoredModel } from './store';

/** How FaceGallery searches: the exact in-memory index, or an approximate graph (search: 'hnsw'). */
export interface SearchMode {
  search: 'exact' | 'hnsw';
  hnsw?: GalleryHnswOptions;
}

class SqliteBackend implements GalleryBackend {
  index: EmbeddingIndex | null = null;
  /** search: 'hnsw': the graph, opened once the embeddings' dimension is known. */
  approx: ApproximateSearch | null = null;
  /** The file's data_version when the index was last in step with it. */
  private seenVersion: number;
  constructor(
    readonly store: SqliteStore,
    readonly device: string,
    readonly storage: IndexStorage = 'float32',
    readonly mode: SearchMode = { search: 'exact' },
  ) {
    this.seenVersion = store.dataVersion();
  }

  private get hnsw(): boolean {
    return this.mode.search === 'hnsw';
  }

  /** The embeddings' dimension: the graph's once open, else the stored model's. */
  private storedDim(): number | undefined {
    return this.approx?.index.dim ?? this.store.readModel()?.dim;
  }

  /** search: 'hnsw': the graph for dim-dimensional rows (loaded or built on first use). */
  private async graph(dim: number): Promise<ApproximateSearch> {
    this.approx ??= await ApproximateSearch.open(this.store, this.store.path, dim, this.mode.hnsw);
    await this.approx.refresh();
    return this.approx;
  }

  /**
   * Brings the index in step with the file when another connection (another
   * FaceGallery handle, another process: `torchface remove` while `serve`
   * runs) has committed since we last looked: SQLite's data_version changes
   * then, and only then (not for this connection's own commits). The index is
   * reloaded from the file; a search on an unchanged file costs one PRAGMA.
   */
  refresh(): void {
    const v = this.store.dataVersion();
    if (v === this.seenVersion) return;
    this.seenVersion = v;
    if (this.hnsw) return; // the graph checks the file's change counter itself (ApproximateSearch.refresh)
    const dim = this.index?.dim ?? this.store.readModel()?.dim;
    this.index?.dispose();
    this.index = null;
    if (dim) this.load(dim);
  }

  private ensureIndex(dim: number): EmbeddingIndex {
    if (!this.index) this.index = new EmbeddingIndex(dim, this.device as 'cpu', this.storage);
    return this.index;
  }

  /** Loads every stored embedding into the index (search: 'hnsw': opens the graph). */
  async open(dim: number): Promise<void> {
    if (this.hnsw) await this.graph(dim);
    else if (!this.index) this.load(dim);
  }

  /** Loads every stored embedding into the exact index. */
  load(dim: number): void {
    const index = this.ensureIndex(dim);
    index.reserve(this.store.counts().embeddings);
    const CHUNK = 8192;
    let ids: string[] = [];
    let keys: number[] = [];
    let flat = new Float32Array(CHUNK * dim);
    for (const r of this.store.iterateEmbeddings(dim)) {
      flat.set(r.vector, ids.length * dim);
      ids.push(r.id);
      keys.push(r.key);
      if (ids.length === CHUNK) {
        index.addRows(ids, flat, keys);
        ids = [];
        keys = [];
        flat = new Float32Array(CHUNK * dim);
      }
    }
    index.addRows(ids, flat.subarray(0, ids.length * dim), keys);
  }

  async readModel(): Promise<ModelIdentity | null> {
    return this.store.readModel();
  }
  async writeModel(m: ModelIdentity): Promise<void> {
    this.store.writeModel(m as StoredModel);
    await this.open(m.dim);
  }

  async enroll(id: string, metadata: Record<string, unknown> | undefined, vectors: Float32Array[], append: boolean): Promise<void> {
    if (this.hnsw) {
      const g = await this.graph(vectors[0].length);
      const keys = g.track(() => {
        if (!append && this.store.has(id)) throw new DuplicateIdError(id);
        return this.store.insert(id, metadata, vectors, new Date().toISOString());
      });
      try {
        await g.add(keys, vectors);
      } catch (e) {
        g.track(() => this.store.removeEmbeddings(id, keys));
        throw e;
      }
      return;
    }
    const index = this.ensureIndex(vectors[0].length);
    const now = new Date().toISOString();
    const keys = this.store.transaction(() => {
      if (!append && this.store.has(id)) throw new DuplicateIdError(id);
      return this.store.insert(id, metadata, vectors, now);
    });
    try {
      index.add(id, vectors, keys);
    } catch (e) {
      // Keep store and index in step: undo the committed rows.
      this.store.transaction(() => {
        this.store.removeEmbeddings(id, keys);
      });
      throw e;
    }
  }

  async importPeople(people: PersonData[], replace: boolean, append: boolean): Promise<void> {
    const seen = new Set<string>();
    for (const p of people) {
      if (seen.has(p.id) && !append) throw new DuplicateIdError(p.id);
      seen.add(p.id);
    }
    const g = this.hnsw ? await this.graph(this.store.readModel()?.dim ?? people.find((p) => p.embeddings.length)?.embeddings[0].length ?? 1) : null;
    const added = (g ? g.track.bind(g) : this.store.transaction.bind(this.store))(() => {
      if (replace) this.store.clear();
      const out: { id: string; vectors: Float32Array[]; keys: number[] }[] = [];
      for (const p of people) {
        if (!append && this.store.has(p.id)) throw new DuplicateIdError(p.id);
        const now = new Date().toISOString();
        out.push({ id: p.id, vectors: p.embeddings, keys: this.store.insert(p.id, p.metadata, p.embeddings, p.createdAt ?? now) });
      }
      return out;
    });
    if (g) {
      if (replace) await g.rebuild();
      else for (const a of added) if (a.vectors.length) await g.add(a.keys, a.vectors);
      return;
    }
    if (replace) {
      this.index?.dispose();
      this.index = null;
      this.load(this.store.readModel()?.dim ?? people[0]?.embeddings[0]?.length ?? 1);
      return;
    }
    const dim = people.find((p) => p.embeddings.length)?.embeddings[0].length;
    if (dim === undefined) return;
    const index = this.ensureIndex(dim);
    for (const a of added) index.add(a.id, a.vectors, a.keys);
  }

  /** Makes id a person whose embeddings are exactly `vectors` (metadata kept), store and index together. */
  async replacePerson(id: string, vectors: Float32Array[]): Promise<void> {
    const now = new Date().toISOString();
    const dim = vectors[0]?.length ?? this.storedDim();
    if (this.hnsw && dim) {
      const g = await this.graph(dim);
      let old: number[] = [];
      const keys = g.track(() => {
        old = this.store.keysOf(id);
        this.store.removeEmbeddingsOf(id);
        return this.store.insert(id, undefined, vectors, now);
      });
      await g.remove(old);
      if (keys.length) await g.add(keys, vectors);
      return;
    }
    const keys = this.store.transaction(() => {
      this.store.removeEmbeddingsOf(id);
      return this.store.insert(id, undefined, vectors, now);
    });
    this.index?.remove(id);
    if (vectors.length) this.ensureIndex(vectors[0].length).add(id, vectors, keys);
  }

  async remove(id: string): Promise<boolean> {
    const dim = this.hnsw ? this.storedDim() : undefined;
    if (this.hnsw && dim) {
      const g = await this.graph(dim);
      let keys: number[] = [];
      const gone = g.track(() => {
        keys = this.store.keysOf(id);
        return this.store.remove(id);
      });
      await g.remove(keys);
      return gone;
    }
    const gone = this.store.transaction(() => this.store.remove(id));
    if (gone) this.index?.remove(id);
    return gone;
  }
  async list(): Promise<Person[]> {
    return this.store.list();
  }
  async get(id: string): Promise<Person | null> {
    return this.store.get(id);
  }
  async embeddingsOf(id: string): Promise<Float32Array[] | null> {
    if (this.hnsw) {
      const dim = this.storedDim();
      if (!this.store.has(id)) return null;
      return dim ? this.store.embeddingsOf(id, dim) : [];
    }
    this.refresh();
    if (this.index?.has(id)) return this.index.embeddingsOf(id);
    return this.store.has(id) ? [] : null;
  }
  async all(): Promise<PersonData[]> {
    const dim = this.store.readModel()?.dim;
    const people = new Map<string, PersonData>();
    for (const p of this.store.list()) people.set(p.id, { id: p.id, metadata: p.metadata, createdAt: p.createdAt, embeddings: [] });
    if (dim) for (const r of this.store.iterateEmbeddings(dim)) people.get(r.id)?.embeddings.push(r.vector);
    return [...people.values()];
  }
  async search(queries: Float32Array[], k: number): Promise<Candidate[][]> {
    if (this.hnsw) {
      const dim = this.storedDim();
      return dim ? (await this.graph(dim)).search(queries, k) : queries.map(() => []);
    }
    this.refresh();
    if (!this.index) return queries.map(() => []);
    return (await this.index.search(queries, k)).map((r) => r.map(({ id, distance }) => ({ id, distance })));
  }
  async counts(): Promise<{ people: number; embeddings: number }> {
    return this.store.counts();
  }
  async close(): Promise<void> {
    this.index?.dispose();
    this.index = null;
    try {
      await this.approx?.close();
    } finally {
      this.approx = null;
      this.store.close();
    }
  }
}

/**
 * The embedded gallery: a SQLite file (WAL, one transaction per write) plus
 * an in-memory tensor index on the model's device, kept in step, also with
 * other handles and processes writing the same file (the index is reloaded
 * before a search when SQLite's data_version says another connection committed).
 */
export class FaceGallery extends GalleryBase {
  private constructor(
    private readonly sqlite: SqliteBackend,
    readonly path: string,
  ) {
    super(sqlite);
  }

  /**
   * Opens (or creates) a gallery file; ':memory:' for a gallery that lives only in this process.
   * search: 'hnsw' searches an approximate graph instead of every row (for
   * millions of people; kept in FILE.hnsw, rebuilt from the file when missing or stale).
   */
  static async open(file: string, options: FaceGalleryOptions = {}): Promise<FaceGallery> {
    if (typeof file !== 'string' || file.length === 0) invalid('path', "a file path or ':memory:'", file);
    const device = String((options.model as { device?: string } | undefined)?.device ?? 'cpu');
    const storage = options.indexStorage ?? 'float32';
    if (!INDEX_STORAGES.includes(storage)) invalid('options.indexStorage', INDEX_STORAGES.map((x) => `'${x}'`).join(' or '), storage);
    const search = options.search ?? 'exact';
    if (search !== 'exact' && search !== 'hnsw') invalid('options.search', "'exact' or 'hnsw'", search);
    if (options.hnsw !== undefined && search !== 'hnsw') invalid('options.hnsw', "no HNSW options unless search is 'hnsw'", options.hnsw);
    const store = new SqliteStore(file);
    const g = new FaceGallery(new SqliteBackend(store, device, storage, { search, hnsw: options.hnsw }), file);
    try {
      await g.init(options);
      const dim = g.identity?.dim;
      if (dim) await g.sqlite.open(dim);
    } catch (e) {
      await g.sqlite.close().catch(() => store.close());
      throw e;
    }
    return g;
  }

  /** The exact in-memory index (for benchmarks and bulk loads); null with search: 'hnsw'. */
  get index(): EmbeddingIndex | null {
    return this.sqlite.index;
  }

  /** search: 'hnsw': the approximate graph (null until the gallery has a model or embeddings). */
  get approximateIndex(): AnnIndex | null {
    return this.sqlite.approx?.index ?? null;
  }

  /** search: 'hnsw': how many times the graph was built from the file since this handle opened it (0: it was loaded). */
  get indexRebuilds(): number {
    return this.sqlite.approx?.rebuilds ?? 0;
  }

  /** search: 'hnsw': how many times the graph caught up with rows other writers added or removed (instead of a rebuild). */
  get indexCatchUps(): number {
    return this.sqlite.approx?.catchUps ?? 0;
  }

  /** search: 'hnsw': writes the graph beside the file now (close() does too), so that a restart loads instead of rebuilding. */
  async saveIndex(): Promise<void> {
    this.checkOpen();
    await this.sqlite.approx?.save();
  }

  // The photo library (lib/library/) --------------------------------------------------

  private lib: PhotoLibrary | null = null;
  /** The photo library kept in this gallery's file (photos, faces, clusters). */
  get library(): PhotoLibrary {
    this.checkOpen();
    if (!this.lib) {
      this.lib = new PhotoLibrary(this.sqlite.store.db, {
        setPersonEmbeddings: async (id, vectors) => {
          if (!this.identity && vectors.length) {
            this.identity = { name: 'embeddings', hash: 'none', dim: vectors[0].length };
            await this.backend.writeModel(this.identity);
          }
          this.checkVectors(vectors, 'embeddings');
          await this.sqlite.replacePerson(id, vectors);
        },
        removePerson: (id) => this.backend.remove(id),
        personEmbeddings: (id) => this.backend.embeddingsOf(id),
        checkId: (id, parameter) => checkId(id, parameter),
        faceModel: () => {
          const m = this.requireModel('index photos') as FaceModelLike & Partial<PhotoFaceModel>;
          if (typeof m.faces !== 'function') invalid('options.model', 'a face model that finds every face in a photo (faces(image), as FaceModel has)', m);
          return m as unknown as PhotoFaceModel;
        },
        clusterThreshold: () => this.clusterThreshold,
        qualityLimits: this.qualityLimits,
      });
    }
    return this.lib;
  }

  /**
   * The distance under which two faces may be the same person when clustering:
   * the model's calibrated distance at DEFAULT_CLUSTER_FAR (photo descriptors,
   * tta 'flip'), else the gallery's threshold for an uncalibrated model, else
   * DEFAULT_CLUSTER_THRESHOLD.
   */
  get clusterThreshold(): number {
    const op = this.model?.operatingPoints?.('colour', 'flip') ?? null;
    if (op) return thresholdForFar(op, DEFAULT_CLUSTER_FAR);
    return this.model ? this.threshold : DEFAULT_CLUSTER_THRESHOLD;
  }

  /**
   * Indexes a folder of photos into the library (recursive; JPEG, PNG, WebP;
   * incremental): every face's box, landmarks, quality and descriptor. Needs a
   * model that finds every face (FaceModel). Bad files are reported in the
   * summary, never thrown.
   */
  async indexPhotos(dir: string, options: IndexOptions = {}): Promise<IndexSummary> {
    return this.library.index(dir, options);
  }

  /**
   * Groups the library's faces into people (chinese whispers at the calibrated
   * threshold by default; see lib/library/cluster.ts) and returns the clusters
   * with their faces and the unclustered faces. Named and hand-placed faces stay
   * where they are, and new faces may join them.
   */
  async cluster(options: LibraryClusterOptions = {}): Promise<LibraryClusters & { summary: ClusterSummary }> {
    const summary = await this.library.cluster(options);
    return { ...this.library.clusters(), summary };
  }

  /** The clusters as they are (without clustering again). */
  async clusters(): Promise<LibraryClusters> {
    return this.library.clusters();
  }

  /** Names a cluster: it becomes the enrolled person `name` (see PhotoLibrary.name). */
  async name(clusterId: number, name: string): Promise<ClusterView> {
    return this.library.name(clusterId, name);
  }

  /** Merges clusters into one (into keeps its id; a name is kept). */
  async merge(into: number, from: number | number[]): Promise<ClusterView> {
    return this.library.merge(into, Array.isArray(from) ? from : [from]);
  }

  /** Moves some faces of a cluster into a new cluster; returns it. */
  async split(clusterId: number, faceIds: number[]): Promise<ClusterView> {
    return this.library.split(clusterId, faceIds);
  }

  /** Removes a cluster (its faces are not clustered again; a named cluster's person leaves the gallery). */
  async removeCluster(clusterId: number): Promise<void> {
    return this.library.removeCluster(clusterId);
  }

  /** The library's photos (by path). */
  async photos(options: { cluster?: number; offset?: number; limit?: number } = {}): Promise<PhotoRow[]> {
    return this.library.photos(options);
  }

  /**
   * Every face in a photo, each identified against the gallery (for the photo
   * view: boxes with names). Needs a model that finds every face (FaceModel).
   */
  async identifyFaces(input: ImageInput, options: Omit<IdentifyOptions, 'detect' | 'kind' | 'tta'> = {}): Promise<{ width: number; height: number; faces: (IdentifyResult & { box: Box; score: number })[] }> {
    const model = this.requireModel('identify photos') as FaceModelLike & Partial<PhotoFaceModel>;
    if (typeof model.faces !== 'function') invalid('options.model', 'a face model that finds every face in a photo (faces(image), as FaceModel has)', model);
    const img = await loadImage(input);
    const found = await model.faces(img);
    const results = found.length ? await this.identifyEmbeddings(found.map((f) => f.descriptor), { ...options, kind: 'colour', tta: 'flip' }) : [];
    return { width: img.width, height: img.height, faces: found.map((f, i) => ({ box: f.box, score: f.score, ...results[i] })) };
  }

  /** One face of the library, or null. */
  async face(id: number): Promise<FaceRecord | null> {
    return this.library.face(id);
  }
}

export interface FaceGalleryOptions extends GalleryOptions {
  /** 'exact' (default): every row, in memory. 'hnsw': an approximate graph (usearch), re-ranked exactly. */
  search?: 'exact' | 'hnsw';
  /** search: 'hnsw': the graph's parameters (lib/gallery/ann-index.ts; defaults chosen by scripts/bench/cases/ann.ts). */
  hnsw?: GalleryHnswOptions;
}

export type { PersonRow };
