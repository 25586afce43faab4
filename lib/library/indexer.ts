// Indexing a folder of photos: walk it (recursively; JPEG, PNG, WebP), decode
// each new or changed photo with its EXIF orientation applied, find every face
// and store box, landmarks, quality and descriptor (lib/library/store.ts).
// Incremental: a file whose size and mtime are unchanged is skipped without
// being read; one whose content hash is unchanged only gets its size and mtime
// updated; photos that left the folder are removed (with their faces). A file
// that cannot be read or decoded is reported and skipped, never fatal.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { z } from 'zod';
import { FileAccessError, ImageError, invalid, parseOptions } from '../core/errors';
import type { Box, Point } from '../face/detect';
import type { FaceQuality } from '../face/quality';
import { decodeShrunk, type RgbImage } from '../image';
import { FaceInsert, LibraryStore } from './store';

/** What the indexer needs from a face model: every face in a photo (FaceModel.faces, PixelFaceModel.faces). */
export interface PhotoFaceModel {
  faces(input: RgbImage): Promise<{ box: Box; score: number; landmarks: Point[]; descriptor: Float32Array; quality?: FaceQuality | null }[]>;
}

/** File name endings indexed (case-insensitive). */
export const PHOTO_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'];

export interface IndexProgress {
  done: number;
  total: number;
  file: string;
  faces: number;
}

const indexOptions = z
  .object({
    /** Photos decoded and searched at once (decoding overlaps detection). Default 2. */
    concurrency: z.number().int().min(1).max(64).default(2),
    /** Photos are shrunk to at most this on their longest side before detection (boxes are stored in full-size pixels). Default 1600. */
    maxSide: z.number().int().min(64).default(1600),
    /** Photos with more pixels are reported and skipped. Default 100 megapixels. */
    maxPixels: z.number().int().positive().default(100_000_000),
    /** Called after each photo that had to be read. */
    onProgress: z.function().optional(),
    /** Remove photos of this folder that are no longer there (default true). */
    prune: z.boolean().default(true),
  })
  .strict();
export type IndexOptions = Omit<z.input<typeof indexOptions>, 'onProgress'> & { onProgress?: (p: IndexProgress) => void };

export interface IndexSummary {
  /** The folder, as an absolute path. */
  root: string;
  /** Photo files found. */
  files: number;
  /** New photos indexed. */
  added: number;
  /** Changed photos indexed again. */
  updated: number;
  /** Unchanged photos skipped (size + mtime, or the same content hash). */
  unchanged: number;
  /** Photos removed because their file is gone. */
  removed: number;
  /** Files that could not be indexed, and why. */
  failed: { file: string; error: string }[];
  /** Faces found in the photos indexed by this run. */
  faces: number;
  /** Faces in the library after the run. */
  totalFaces: number;
  seconds: number;
  /** Faces found per second of this run (0 when nothing was read). */
  facesPerSecond: number;
  /** Photos read per second of this run. */
  photosPerSecond: number;
}

/** Every photo file under dir (sorted), following symbolic links once; hidden folders and files are skipped. */
export async function walkPhotos(dir: string): Promise<{ files: string[]; errors: { file: string; error: string }[] }> {
  const files: string[] = [];
  const errors: { file: string; error: string }[] = [];
  const seen = new Set<string>();
  const visit = async (d: string): Promise<void> => {
    let real: string;
    try {
      real = await fs.promises.realpath(d);
    } catch (e) {
      errors.push({ file: d, error: (e as NodeJS.ErrnoException).code ?? String(e) });
      return;
    }
    if (seen.has(real)) return; // a link loop
    seen.add(real);
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(d, { withFileTypes: true });
    } catch (e) {
      errors.push({ file: d, error: `cannot read the folder: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        try {
          const st = await fs.promises.stat(p);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch {
          errors.push({ file: p, error: 'a broken symbolic link' });
          continue;
        }
      }
      if (isDir) await visit(p);
      else if (isFile && PHOTO_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) files.push(p);
    }
  };
  await visit(dir);
  return { files, errors };
}

/** Decodes a photo to RGB with its EXIF orientation applied, shrunk to maxSide; `scale` maps back to full-size pixels. */
export async function decodePhoto(bytes: Buffer, o: { maxSide: number; maxPixels: number }): Promise<{ image: RgbImage; width: number; height: number; scale: number }> {
  const meta = await sharp(bytes, { limitInputPixels: o.maxPixels }).metadata();
  // Orientations 5-8 swap width and height.
  const swap = (meta.orientation ?? 1) >= 5;
  const width = (swap ? meta.height : meta.width) ?? 0;
  const height = (swap ? meta.width : meta.height) ?? 0;
  const shrunk = await decodeShrunk(bytes, o);
  return { image: { ...shrunk, channels: 3 } as RgbImage, width, height, scale: width > 0 ? width / shrunk.width : 1 };
}

function scaled(b: Box, s: number): Box {
  return { x: b.x * s, y: b.y * s, width: b.width * s, height: b.height * s };
}

/** Indexes dir into the store (see the module comment). */
export async function indexPhotos(store: LibraryStore, model: PhotoFaceModel, dir: string, options: IndexOptions = {}): Promise<IndexSummary> {
  const o = parseOptions(indexOptions, options);
  if (typeof dir !== 'string' || !dir) invalid('dir', 'a folder of photos', dir);
  if (!model || typeof (model as { faces?: unknown }).faces !== 'function') invalid('model', 'a face model with faces(image) (FaceModel)', model);
  const root = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(root);
  } catch (e) {
    throw new FileAccessError(root, `cannot index '${root}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
  if (!st.isDirectory()) throw new FileAccessError(root, `cannot index '${root}': not a folder`);
  const t0 = performance.now();
  const { files, errors } = await walkPhotos(root);
  const summary: IndexSummary = { root, files: files.length, added: 0, updated: 0, unchanged: 0, removed: 0, failed: [...errors], faces: 0, totalFaces: 0, seconds: 0, facesPerSecond: 0, photosPerSecond: 0 };
  // The files that must be read (new, or size / mtime changed).
  const todo: { file: string; size: number; mtimeMs: number; existing: number | null; oldHash: string | null }[] = [];
  for (const file of files) {
    let s: fs.Stats;
    try {
      s = await fs.promises.stat(file);
    } catch (e) {
      summary.failed.push({ file, error: (e as NodeJS.ErrnoException).code ?? String(e) });
      continue;
    }
    const row = store.photoByPath(file);
    if (row && row.size === s.size && row.mtimeMs === s.mtimeMs) summary.unchanged++;
    else todo.push({ file, size: s.size, mtimeMs: s.mtimeMs, existing: row?.id ?? null, oldHash: row?.hash ?? null });
  }
  let done = 0;
  let read = 0;
  const tRead = performance.now();
  const work = async (item: (typeof todo)[number]): Promise<void> => {
    let faces = 0;
    try {
      let bytes: Buffer;
      try {
        bytes = await fs.promises.readFile(item.file);
      } catch (e) {
        throw new FileAccessError(item.file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
      }
      const hash = crypto.createHash('sha256').update(bytes).digest('hex');
      if (item.existing !== null && hash === item.oldHash) {
        store.touchPhoto(item.existing, item.size, item.mtimeMs);
        summary.unchanged++;
        return;
      }
      read++;
      let decoded;
      try {
        decoded = await decodePhoto(bytes, o);
      } catch (e) {
        throw new ImageError(`cannot decode: ${(e as Error).message}`, { cause: e });
      }
      const found = await model.faces(decoded.image);
      const s = decoded.scale;
      const rows: FaceInsert[] = found.map((f) => ({
        box: scaled(f.box, s),
        score: f.score,
        landmarks: f.landmarks.map((p) => ({ x: p.x * s, y: p.y * s })),
        quality: f.quality ? { ...f.quality, size: f.quality.size * s } : null,
        descriptor: f.descriptor,
      }));
      faces = rows.length;
      store.transaction(() => store.putPhoto({ path: item.file, size: item.size, mtimeMs: item.mtimeMs, hash, width: decoded.width, height: decoded.height }, rows));
      summary.faces += faces;
      if (item.existing !== null) summary.updated++;
      else summary.added++;
    } catch (e) {
      summary.failed.push({ file: item.file, error: (e as Error).message });
      // A photo that changed into something unreadable leaves the library.
      if (item.existing !== null) store.transaction(() => store.removePhoto(item.existing!));
    } finally {
      done++;
      o.onProgress?.({ done, total: todo.length, file: item.file, faces });
    }
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency, todo.length) }, async () => {
      while (next < todo.length) await work(todo[next++]);
    }),
  );
  const readSeconds = (performance.now() - tRead) / 1000;
  if (o.prune) {
    const present = new Set(files);
    const gone = store.photoPathsUnder(root).filter((p) => !present.has(p.path));
    if (gone.length) store.transaction(() => gone.forEach((p) => store.removePhoto(p.id)));
    summary.removed = gone.length;
  }
  summary.totalFaces = store.counts().faces;
  summary.seconds = (performance.now() - t0) / 1000;
  summary.facesPerSecond = read && readSeconds > 0 ? summary.faces / readSeconds : 0;
  summary.photosPerSecond = read && readSeconds > 0 ? read / readSeconds : 0;
  return summary;
}
