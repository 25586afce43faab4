// Generated "photos" for the photo library tests: each "person" is a grey
// pattern, each photo of them the pattern with a little seeded noise, so that
// the weight-free PixelFaceModel (whole image = one face) groups them like
// faces. Encoded as JPEG, PNG or WebP.
import sharp from 'sharp';
import { seededRandom as rng } from '../../lib/util/random';

export type Pattern = 'a' | 'b' | 'c' | 'd';


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

/** A uniform grey image: PixelFaceModel finds no face in it. */
export async function blank(width = 64, height = 64): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toBuffer();
}

/** The cartoon people of cartoon(): skin, hair and background colours and a hair style each. */
const CARTOONS = [
  { bg: '#cfe3f7', skin: '#f1c27d', hair: '#3b2314', style: 'bob' },
  { bg: '#f7e1cf', skin: '#8d5524', hair: '#111111', style: 'short' },
  { bg: '#dff2d8', skin: '#ffdbac', hair: '#d4a017', style: 'long' },
  { bg: '#eadcf5', skin: '#c68642', hair: '#7a3b12', style: 'bald' },
];

/**
 * A drawn "photo" of cartoon person `who` (0-3), jittered by `seed`: a face-like
 * picture for the web page's screenshot and browser test (PixelFaceModel groups
 * them; it is not a face detector's input). No real faces are used or committed.
 */
export async function cartoon(who: number, seed: number, size = 200): Promise<Buffer> {
  const r = rng(seed * 31 + who);
  const c = CARTOONS[who % CARTOONS.length];
  const j = () => (r() - 0.5) * 4;
  const cx = size / 2 + j();
  const cy = size * 0.55 + j();
  const hair =
    c.style === 'bob'
      ? `<path d="M${cx - 62} ${cy + 20} Q${cx - 70} ${cy - 80} ${cx} ${cy - 78} Q${cx + 70} ${cy - 80} ${cx + 62} ${cy + 20} L${cx + 50} ${cy - 30} L${cx - 50} ${cy - 30} Z" fill="${c.hair}"/>`
      : c.style === 'short'
        ? `<ellipse cx="${cx}" cy="${cy - 52}" rx="52" ry="26" fill="${c.hair}"/>`
        : c.style === 'long'
          ? `<rect x="${cx - 64}" y="${cy - 70}" width="128" height="150" rx="50" fill="${c.hair}"/>`
          : '';
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">
    <rect width="100%" height="100%" fill="${c.bg}"/>
    ${c.style === 'long' ? hair : ''}
    <ellipse cx="${cx}" cy="${cy}" rx="50" ry="62" fill="${c.skin}"/>
    ${c.style !== 'long' ? hair : ''}
    <circle cx="${cx - 18}" cy="${cy - 10}" r="6" fill="#222"/><circle cx="${cx + 18}" cy="${cy - 10}" r="6" fill="#222"/>
    <path d="M${cx - 20} ${cy + 25} Q${cx} ${cy + 40 + j()} ${cx + 20} ${cy + 25}" stroke="#8b2d2d" stroke-width="5" fill="none"/>
    <rect x="${cx - 75}" y="${size - 18}" width="150" height="30" fill="${c.hair}" opacity="0.4"/>
  </svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer();
}
