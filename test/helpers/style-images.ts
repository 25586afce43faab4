// Generates the freely licensed pictures used by docs/style-transfer.md and the
// style-transfer tests: procedural style images (waves, stripes, stained-glass
// mosaic) and a rendered landscape as content image. Deterministic (seeded).
//
//   node dist/scripts/make-style-images.js [outDir=docs/images] [size=256]
import * as path from 'path';
import type { RgbImage } from '../../lib/image';
import { savePng } from '../../lib/image';

type Rgb = [number, number, number];

import { seededRandom as prng } from '../../lib/util/random';
export { prng };

function image(w: number, h: number, f: (x: number, y: number) => Rgb): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const c = f(x, y);
      const i = (y * w + x) * 3;
      data[i] = Math.max(0, Math.min(255, Math.round(c[0])));
      data[i + 1] = Math.max(0, Math.min(255, Math.round(c[1])));
      data[i + 2] = Math.max(0, Math.min(255, Math.round(c[2])));
    }
  return { data, width: w, height: h, channels: 3 };
}

const mix = (a: Rgb, b: Rgb, t: number): Rgb => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];

/** Hokusai-like waves: bands of blues and foam displaced by layered sines, with brush-stroke grain. */
export function wavesStyle(size = 256, seed = 1): RgbImage {
  const r = prng(seed);
  const grain = Array.from({ length: size * size }, () => r());
  const palette: Rgb[] = [[18, 40, 92], [34, 82, 150], [70, 130, 190], [150, 195, 225], [240, 240, 228]];
  return image(size, size, (x, y) => {
    const u = x / size;
    const v = y / size;
    const d = v * 9 + 0.9 * Math.sin(u * 14 + v * 5) + 0.45 * Math.sin(u * 37 - v * 11) + 0.2 * Math.sin(u * 90 + v * 40);
    const band = ((d % 1) + 1) % 1;
    const idx = Math.floor(band * palette.length);
    const stroke = 0.75 + 0.5 * grain[y * size + ((x + Math.floor(y / 3)) % size)];
    const c = mix(palette[idx], palette[Math.min(palette.length - 1, idx + 1)], Math.pow(band * palette.length - idx, 3));
    return [c[0] * stroke, c[1] * stroke, c[2] * stroke];
  });
}

/** Bold diagonal stripes in warm colours with a dark outline. */
export function stripesStyle(size = 256, seed = 2): RgbImage {
  const r = prng(seed);
  const palette: Rgb[] = [[230, 80, 40], [250, 190, 50], [40, 40, 40], [200, 40, 90], [250, 240, 210]];
  const widths = Array.from({ length: 64 }, () => 6 + r() * 14);
  return image(size, size, (x, y) => {
    let t = x + y * 0.6 + 6 * Math.sin(y / 17);
    let k = 0;
    while (t > widths[k % widths.length]) t -= widths[k++ % widths.length];
    if (t < 1.5) return [20, 20, 20];
    return palette[k % palette.length];
  });
}

/** Stained glass: Voronoi cells of saturated colours with dark lead lines. */
export function mosaicStyle(size = 256, seed = 3, cells = 90): RgbImage {
  const r = prng(seed);
  const pts = Array.from({ length: cells }, () => [r() * size, r() * size]);
  const colours: Rgb[] = pts.map(() => {
    const h = r() * 6;
    const i = Math.floor(h);
    const f = h - i;
    const q = 1 - f;
    const table: Rgb[] = [[1, f, 0], [q, 1, 0], [0, 1, f], [0, q, 1], [f, 0, 1], [1, 0, q]];
    const c = table[i % 6];
    const s = 150 + r() * 100;
    return [c[0] * s + 30, c[1] * s + 30, c[2] * s + 30];
  });
  return image(size, size, (x, y) => {
    let b1 = Infinity;
    let b2 = Infinity;
    let bi = 0;
    for (let i = 0; i < pts.length; i++) {
      const d = Math.hypot(x - pts[i][0], y - pts[i][1]);
      if (d < b1) {
        b2 = b1;
        b1 = d;
        bi = i;
      } else if (d < b2) b2 = d;
    }
    if (b2 - b1 < 2.2) return [25, 22, 20];
    const shade = 0.85 + 0.15 * Math.sin((x + y) / 9);
    const c = colours[bi];
    return [c[0] * shade, c[1] * shade, c[2] * shade];
  });
}

/** A rendered landscape: sky, sun, three mountain ridges, pine trees, a lake with reflections. */
export function landscapeContent(width = 256, height = 192, seed = 4): RgbImage {
  const r = prng(seed);
  const horizon = Math.round(height * 0.68);
  const ridge = (x: number, base: number, amp: number, ph: number) =>
    base - amp * (0.55 * Math.sin(x / 23 + ph) + 0.3 * Math.sin(x / 9.7 + 2 * ph) + 0.15 * Math.sin(x / 4.1 + 3 * ph));
  const trees = Array.from({ length: 14 }, () => ({ x: r() * width, h: 18 + r() * 22, w: 7 + r() * 6 }));
  const scene = (x: number, y: number): Rgb => {
    if (y < ridge(x, height * 0.45, 26, 0.3)) {
      const sky = mix([70, 120, 200], [250, 200, 150], y / horizon);
      const d = Math.hypot(x - width * 0.72, y - height * 0.22);
      if (d < 16) return [255, 235, 160];
      return mix(sky, [255, 230, 170], Math.max(0, 1 - d / 60) * 0.5);
    }
    if (y < ridge(x, height * 0.56, 20, 1.7)) return mix([110, 110, 150], [140, 130, 160], (y - height * 0.35) / 40);
    for (const t of trees) {
      const top = horizon - t.h;
      if (y >= top && y < horizon && Math.abs(x - t.x) < ((y - top) / t.h) * t.w) return [30, 70 + (y - top), 40];
    }
    if (y < horizon) return mix([60, 110, 60], [90, 140, 70], (x / width) * 0.5 + 0.2);
    return [0, 0, 0];
  };
  return image(width, height, (x, y) => {
    if (y < horizon) return scene(x, y);
    // lake: a rippled mirror of the scene above the horizon, tinted blue
    const ry = 2 * horizon - y - 1 + 2 * Math.sin(x / 5 + y / 2);
    const m = scene(x + 1.5 * Math.sin(y / 3), Math.max(0, Math.min(horizon - 1, ry)));
    return mix(m, [40, 80, 140], 0.35 + (0.25 * (y - horizon)) / (height - horizon));
  });
}

export async function makeStyleImages(outDir: string, size = 256): Promise<string[]> {
  const files: [string, RgbImage][] = [
    ['style-waves.png', wavesStyle(size)],
    ['style-stripes.png', stripesStyle(size)],
    ['style-mosaic.png', mosaicStyle(size)],
    ['content-landscape.png', landscapeContent(size, Math.round((size * 3) / 4))],
  ];
  const out: string[] = [];
  for (const [name, img] of files) {
    const p = path.join(outDir, name);
    await savePng(p, img);
    out.push(p);
  }
  return out;
}

/** A varied set of generated images (for `npm run visualize -- --images DIR`): every generator with n different seeds. */
export async function makeImageSet(outDir: string, n = 12, size = 224): Promise<string[]> {
  const fs = await import('fs');
  fs.mkdirSync(outDir, { recursive: true });
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    const seed = 100 + k;
    const imgs: [string, RgbImage][] = [
      [`waves-${k}.png`, wavesStyle(size, seed)],
      [`stripes-${k}.png`, stripesStyle(size, seed)],
      [`mosaic-${k}.png`, mosaicStyle(size, seed, 20 + 15 * k)],
      [`landscape-${k}.png`, landscapeContent(size, size, seed)],
    ];
    for (const [name, img] of imgs) {
      const p = path.join(outDir, name);
      await savePng(p, img);
      out.push(p);
    }
  }
  return out;
}
