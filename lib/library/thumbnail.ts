// Face thumbnails: a square JPEG of a face cut from its photo (EXIF orientation applied).
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { FileAccessError, ImageError } from '../core/errors';
import type { FaceRecord } from './store';

export async function fileBytes(file: string): Promise<Buffer> {
  try {
    return await fs.promises.readFile(file);
  } catch (e) {
    throw new FileAccessError(file, `the photo '${path.basename(file)}' can no longer be read (${(e as NodeJS.ErrnoException).code ?? e}); index the folder again`, { cause: e });
  }
}

/** A square JPEG of a face (its box grown by a third, clamped to the photo). */
export async function faceThumbnail(f: Pick<FaceRecord, 'box' | 'file'>, photo: { width: number; height: number }, size: number, bytes?: Buffer): Promise<Buffer> {
  const side = Math.max(f.box.width, f.box.height) * 1.35;
  const cx = f.box.x + f.box.width / 2;
  const cy = f.box.y + f.box.height / 2;
  const left = Math.max(0, Math.round(cx - side / 2));
  const top = Math.max(0, Math.round(cy - side / 2));
  const width = Math.max(1, Math.min(photo.width - left, Math.round(side)));
  const height = Math.max(1, Math.min(photo.height - top, Math.round(side)));
  const input = bytes ?? (await fileBytes(f.file));
  try {
    return await sharp(input, { failOn: 'none' }).rotate().extract({ left, top, width, height }).resize(size, size, { fit: 'cover' }).jpeg({ quality: 85 }).toBuffer();
  } catch (e) {
    throw new ImageError(`cannot cut the face out of '${path.basename(f.file)}' (changed since it was indexed? index the folder again): ${(e as Error).message}`);
  }
}
