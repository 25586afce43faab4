// The photo library's tables, in the gallery's SQLite file beside `people` and
// `embeddings` (lib/gallery/sqlite/store.ts): every photo indexed (path, size,
// mtime, content hash), every face found in it (box, landmarks, quality,
// descriptor) and the clusters (people, named or not) the faces are grouped in.
// A named cluster points at an enrolled person; deleting the person unnames it.
import type Database from 'better-sqlite3';
import { FileFormatError } from '../core/errors';
import type { Box, Point } from '../face/detect';
import type { FaceQuality } from '../face/quality';

export interface PhotoRow {
  id: number;
  path: string;
  size: number;
  mtimeMs: number;
  hash: string;
  width: number;
  height: number;
  indexedAt: string;
  faces: number;
}

/** A face as the library stores it. Boxes and landmarks are in pixels of the photo as displayed (EXIF orientation applied). */
export interface FaceRecord {
  id: number;
  photoId: number;
  file: string;
  box: Box;
  score: number;
  landmarks: Point[];
  quality: FaceQuality | null;
  /** The cluster (person) the face is in, or null (unclustered). */
  cluster: number | null;
  /** The cluster's name (an enrolled person's id), or null. */
  name: string | null;
  /** Placed by hand (name, merge, split): clustering keeps it where it is. */
  pinned: boolean;
  /** Removed by hand from the people: never clustered again. */
  ignored: boolean;
}

export interface FaceInsert {
  box: Box;
  score: number;
  landmarks: Point[];
  quality: FaceQuality | null;
  descriptor: Float32Array;
}

const LIBRARY_SCHEMA = '1';

function blob(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}
function vector(b: Buffer): Float32Array {
  if (b.byteLength % 4 !== 0) throw new FileFormatError(`a face descriptor of ${b.byteLength} bytes`);
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

interface FaceDbRow {
  id: number;
  photo_id: number;
  path: string;
  x: number;
  y: number;
  w: number;
  h: number;
  score: number;
  landmarks: string;
  quality: string | null;
  cluster_id: number | null;
  person_id: string | null;
  pinned: number;
  ignored: number;
}

const FACE_SELECT = `SELECT f.id, f.photo_id, p.path, f.x, f.y, f.w, f.h, f.score, f.landmarks, f.quality, f.cluster_id, c.person_id, f.pinned, f.ignored
  FROM faces f JOIN photos p ON p.id = f.photo_id LEFT JOIN clusters c ON c.id = f.cluster_id`;

function faceOf(r: FaceDbRow): FaceRecord {
  return {
    id: r.id,
    photoId: r.photo_id,
    file: r.path,
    box: { x: r.x, y: r.y, width: r.w, height: r.h },
    score: r.score,
    landmarks: JSON.parse(r.landmarks) as Point[],
    quality: r.quality ? (JSON.parse(r.quality) as FaceQuality) : null,
    cluster: r.cluster_id,
    name: r.person_id,
    pinned: !!r.pinned,
    ignored: !!r.ignored,
  };
}

export class LibraryStore {
  constructor(readonly db: Database.Database) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS photos (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ms REAL NOT NULL,
        hash TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        indexed_at TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS photos_hash ON photos(hash);
      CREATE TABLE IF NOT EXISTS clusters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id TEXT UNIQUE REFERENCES people(id) ON DELETE SET NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS faces (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,
        score REAL NOT NULL,
        landmarks TEXT NOT NULL,
        quality TEXT,
        descriptor BLOB NOT NULL,
        cluster_id INTEGER REFERENCES clusters(id) ON DELETE SET NULL,
        pinned INTEGER NOT NULL DEFAULT 0,
        ignored INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE IF NOT EXISTS person_extra (
        key INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE ON UPDATE CASCADE,
        vector BLOB NOT NULL
      );
      CREATE INDEX IF NOT EXISTS faces_photo ON faces(photo_id);
      CREATE INDEX IF NOT EXISTS faces_cluster ON faces(cluster_id);
      INSERT INTO meta (key, value) VALUES ('library_schema', '${LIBRARY_SCHEMA}') ON CONFLICT(key) DO NOTHING;
    `);
    const v = (db.prepare("SELECT value FROM meta WHERE key = 'library_schema'").get() as { value: string }).value;
    if (v !== LIBRARY_SCHEMA) throw new FileFormatError(`the photo library tables have schema version ${v}; this torchface reads version ${LIBRARY_SCHEMA}`);
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  photoByPath(path: string): PhotoRow | null {
    const r = this.db.prepare(`SELECT id, path, size, mtime_ms AS mtimeMs, hash, width, height, indexed_at AS indexedAt, (SELECT count(*) FROM faces f WHERE f.photo_id = photos.id) AS faces FROM photos WHERE path = ?`).get(path) as PhotoRow | undefined;
    return r ?? null;
  }
  photo(id: number): PhotoRow | null {
    const r = this.db.prepare(`SELECT id, path, size, mtime_ms AS mtimeMs, hash, width, height, indexed_at AS indexedAt, (SELECT count(*) FROM faces f WHERE f.photo_id = photos.id) AS faces FROM photos WHERE id = ?`).get(id) as PhotoRow | undefined;
    return r ?? null;
  }
  photos(options: { cluster?: number; offset?: number; limit?: number } = {}): PhotoRow[] {
    const where = options.cluster !== undefined ? 'WHERE id IN (SELECT photo_id FROM faces WHERE cluster_id = @cluster)' : '';
    return this.db
      .prepare(
        `SELECT id, path, size, mtime_ms AS mtimeMs, hash, width, height, indexed_at AS indexedAt, (SELECT count(*) FROM faces f WHERE f.photo_id = photos.id) AS faces
         FROM photos ${where} ORDER BY path LIMIT @limit OFFSET @offset`,
      )
      .all({ cluster: options.cluster ?? null, limit: options.limit ?? -1, offset: options.offset ?? 0 }) as PhotoRow[];
  }
  photoPathsUnder(root: string): { id: number; path: string }[] {
    const prefix = root.endsWith('/') ? root : root + '/';
    return (this.db.prepare('SELECT id, path FROM photos').all() as { id: number; path: string }[]).filter((p) => p.path.startsWith(prefix));
  }
  touchPhoto(id: number, size: number, mtimeMs: number): void {
    this.db.prepare('UPDATE photos SET size = ?, mtime_ms = ? WHERE id = ?').run(size, mtimeMs, id);
  }
  removePhoto(id: number): void {
    this.db.prepare('DELETE FROM photos WHERE id = ?').run(id);
  }
  /** Inserts (or replaces) a photo and its faces; returns the photo id. Call inside transaction(). */
  putPhoto(p: { path: string; size: number; mtimeMs: number; hash: string; width: number; height: number }, faces: FaceInsert[]): number {
    const old = this.photoByPath(p.path);
    if (old) this.removePhoto(old.id);
    const id = Number(
      this.db.prepare('INSERT INTO photos (path, size, mtime_ms, hash, width, height, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(p.path, p.size, p.mtimeMs, p.hash, p.width, p.height, new Date().toISOString()).lastInsertRowid,
    );
    const ins = this.db.prepare('INSERT INTO faces (photo_id, x, y, w, h, score, landmarks, quality, descriptor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (const f of faces) {
      ins.run(id, f.box.x, f.box.y, f.box.width, f.box.height, f.score, JSON.stringify(f.landmarks.map((q) => ({ x: Math.round(q.x * 10) / 10, y: Math.round(q.y * 10) / 10 }))), f.quality ? JSON.stringify(f.quality) : null, blob(f.descriptor));
    }
    return id;
  }

  face(id: number): FaceRecord | null {
    const r = this.db.prepare(`${FACE_SELECT} WHERE f.id = ?`).get(id) as FaceDbRow | undefined;
    return r ? faceOf(r) : null;
  }
  facesOfPhoto(photoId: number): FaceRecord[] {
    return (this.db.prepare(`${FACE_SELECT} WHERE f.photo_id = ? ORDER BY f.x`).all(photoId) as FaceDbRow[]).map(faceOf);
  }
  facesOfCluster(clusterId: number): FaceRecord[] {
    return (this.db.prepare(`${FACE_SELECT} WHERE f.cluster_id = ? ORDER BY f.pinned DESC, f.score DESC, f.id`).all(clusterId) as FaceDbRow[]).map(faceOf);
  }
  allFaces(): FaceRecord[] {
    return (this.db.prepare(`${FACE_SELECT} ORDER BY f.id`).all() as FaceDbRow[]).map(faceOf);
  }
  /** Every face's id, descriptor, quality and placement (for clustering). */
  clusteringInput(): { id: number; descriptor: Float32Array; quality: FaceQuality | null; cluster: number | null; pinned: boolean; ignored: boolean }[] {
    const rows = this.db.prepare('SELECT id, descriptor, quality, cluster_id, pinned, ignored FROM faces ORDER BY id').all() as { id: number; descriptor: Buffer; quality: string | null; cluster_id: number | null; pinned: number; ignored: number }[];
    return rows.map((r) => ({ id: r.id, descriptor: vector(r.descriptor), quality: r.quality ? (JSON.parse(r.quality) as FaceQuality) : null, cluster: r.cluster_id, pinned: !!r.pinned, ignored: !!r.ignored }));
  }
  descriptorsOf(faceIds: number[]): Map<number, Float32Array> {
    const out = new Map<number, Float32Array>();
    const st = this.db.prepare('SELECT descriptor FROM faces WHERE id = ?');
    for (const id of faceIds) {
      const r = st.get(id) as { descriptor: Buffer } | undefined;
      if (r) out.set(id, vector(r.descriptor));
    }
    return out;
  }

  cluster(id: number): { id: number; name: string | null; createdAt: string } | null {
    const r = this.db.prepare('SELECT id, person_id AS name, created_at AS createdAt FROM clusters WHERE id = ?').get(id) as { id: number; name: string | null; createdAt: string } | undefined;
    return r ?? null;
  }
  clusterOfPerson(personId: string): number | null {
    const r = this.db.prepare('SELECT id FROM clusters WHERE person_id = ?').get(personId) as { id: number } | undefined;
    return r ? r.id : null;
  }
  /** Clusters with their face counts, largest first (named before unnamed at equal size). */
  clusterList(): { id: number; name: string | null; faces: number; createdAt: string }[] {
    return this.db
      .prepare(
        `SELECT c.id, c.person_id AS name, c.created_at AS createdAt, count(f.id) AS faces
         FROM clusters c LEFT JOIN faces f ON f.cluster_id = c.id GROUP BY c.id
         ORDER BY (c.person_id IS NULL), faces DESC, c.id`,
      )
      .all() as { id: number; name: string | null; faces: number; createdAt: string }[];
  }
  newCluster(name: string | null = null): number {
    return Number(this.db.prepare('INSERT INTO clusters (person_id, created_at) VALUES (?, ?)').run(name, new Date().toISOString()).lastInsertRowid);
  }
  setClusterName(id: number, name: string | null): void {
    this.db.prepare('UPDATE clusters SET person_id = ? WHERE id = ?').run(name, id);
  }
  deleteCluster(id: number): void {
    this.db.prepare('DELETE FROM clusters WHERE id = ?').run(id);
  }
  /** Unnamed clusters left without faces. */
  deleteEmptyClusters(): void {
    this.db.exec('DELETE FROM clusters WHERE person_id IS NULL AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.cluster_id = clusters.id)');
  }
  assign(faceId: number, clusterId: number | null, pinned: boolean): void {
    this.db.prepare('UPDATE faces SET cluster_id = ?, pinned = ?, ignored = 0 WHERE id = ?').run(clusterId, pinned ? 1 : 0, faceId);
  }
  ignore(faceId: number): void {
    this.db.prepare('UPDATE faces SET cluster_id = NULL, pinned = 0, ignored = 1 WHERE id = ?').run(faceId);
  }
  pinCluster(clusterId: number): void {
    this.db.prepare('UPDATE faces SET pinned = 1 WHERE cluster_id = ?').run(clusterId);
  }
  /** Embeddings a person had before a cluster was named after them (kept beside the cluster's faces). */
  extraOf(personId: string): Float32Array[] {
    return (this.db.prepare('SELECT vector FROM person_extra WHERE person_id = ? ORDER BY key').all(personId) as { vector: Buffer }[]).map((r) => vector(r.vector));
  }
  addExtra(personId: string, vectors: Float32Array[]): void {
    const ins = this.db.prepare('INSERT INTO person_extra (person_id, vector) VALUES (?, ?)');
    for (const v of vectors) ins.run(personId, blob(v));
  }
  renameExtra(from: string, to: string): void {
    this.db.prepare('UPDATE person_extra SET person_id = ? WHERE person_id = ?').run(to, from);
  }

  counts(): { photos: number; faces: number; clusters: number; named: number; unclustered: number } {
    const one = (sql: string) => (this.db.prepare(sql).get() as { n: number }).n;
    return {
      photos: one('SELECT count(*) AS n FROM photos'),
      faces: one('SELECT count(*) AS n FROM faces'),
      clusters: one('SELECT count(*) AS n FROM clusters'),
      named: one('SELECT count(*) AS n FROM clusters WHERE person_id IS NOT NULL'),
      unclustered: one('SELECT count(*) AS n FROM faces WHERE cluster_id IS NULL'),
    };
  }
}
