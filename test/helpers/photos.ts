// Generated "photos" for the photo library tests: each "person" is a grey
// pattern, each photo of them the pattern with a little seeded noise, so that
// the weight-free PixelEmbedder (whole image = one face) groups them like
// faces. Encoded as JPEG, PNG or WebP.
import sharp from 'sharp';

export type Pattern = 'a' | 'b' | 'c' | 'd';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function value(p: Pattern, x: number, y: number, w: number, h: number): number {
  const u = x / w;
  const v = y / h;
  switch (p) {
    case 'a':
      return 40 + 180 * u;
    case 'b':
      return 40 + 180 * v;
    case 'c':
      return (Math.floor(u * 4) + Math.floor(v * 8)) % 2 ? 210 : 50;
    case 'd':
      return 128 + 90 * Math.sin(6 * Math.PI * Math.hypot(u - 0.5, v - 0.5));
  }
}

/** Raw RGB pixels of a photo of `p` (noise seeded by `seed`). */
export function photoPixels(p: Pattern, seed: number, width = 80, height = 96): Buffer {
  const r = rng(seed);
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const g = Math.max(0, Math.min(255, Math.round(value(p, x, y, width, height) + (r() - 0.5) * 16)));
      data.set([g, g, g], (y * width + x) * 3);
    }
  return data;
}

/** An encoded photo of `p`. */
export async function photo(p: Pattern, seed: number, format: 'jpeg' | 'png' | 'webp' = 'jpeg', width = 80, height = 96): Promise<Buffer> {
  const s = sharp(photoPixels(p, seed, width, height), { raw: { width, height, channels: 3 } });
  return (format === 'jpeg' ? s.jpeg({ quality: 95 }) : format === 'png' ? s.png() : s.webp({ quality: 95 })).toBuffer();
}

/** A uniform grey image: PixelEmbedder finds no face in it. */
export async function blank(width = 64, height = 64): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toBuffer();
}
