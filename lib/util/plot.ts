// A tiny raster plotter (no dependencies): lines on a white canvas with axes
// and a grid, for the training report PNG — left panel the training loss per
// step (raw in light blue, moving average in dark blue), right panel the
// validation ROC curves of each epoch (light to dark red; chance diagonal grey).
import type { RgbImage } from '../image';
import type { RocPoint } from '../face/metrics';

type Rgb = [number, number, number];

export class Canvas {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8Array(width * height * 3).fill(255);
  }
  set(x: number, y: number, c: Rgb): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    this.data[i] = c[0];
    this.data[i + 1] = c[1];
    this.data[i + 2] = c[2];
  }
  /** A line of the given thickness (square brush). */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1): void {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    const r = (thickness - 1) / 2;
    for (let i = 0; i <= n; i++) {
      const x = x0 + ((x1 - x0) * i) / n;
      const y = y0 + ((y1 - y0) * i) / n;
      for (let dx = -Math.floor(r); dx <= Math.ceil(r); dx++) for (let dy = -Math.floor(r); dy <= Math.ceil(r); dy++) this.set(x + dx, y + dy, c);
    }
  }
  image(): RgbImage {
    return { data: this.data, width: this.width, height: this.height, channels: 3 };
  }
}

interface Panel {
  x: number;
  y: number;
  w: number;
  h: number;
}

function axes(c: Canvas, p: Panel, ticks = 5): void {
  const grid: Rgb = [225, 225, 225];
  for (let i = 1; i < ticks; i++) {
    const gx = p.x + (p.w * i) / ticks;
    const gy = p.y + (p.h * i) / ticks;
    c.line(gx, p.y, gx, p.y + p.h, grid);
    c.line(p.x, gy, p.x + p.w, gy, grid);
  }
  const black: Rgb = [0, 0, 0];
  c.line(p.x, p.y + p.h, p.x + p.w, p.y + p.h, black, 2); // x axis
  c.line(p.x, p.y, p.x, p.y + p.h, black, 2); // y axis
  for (let i = 0; i <= ticks; i++) {
    const gx = p.x + (p.w * i) / ticks;
    const gy = p.y + (p.h * i) / ticks;
    c.line(gx, p.y + p.h, gx, p.y + p.h + 5, black);
    c.line(p.x - 5, gy, p.x, gy, black);
  }
}

function polyline(c: Canvas, p: Panel, xs: number[], ys: number[], xr: [number, number], yr: [number, number], color: Rgb, thickness: number): void {
  const px = (x: number) => p.x + ((x - xr[0]) / (xr[1] - xr[0] || 1)) * p.w;
  const py = (y: number) => p.y + p.h - ((y - yr[0]) / (yr[1] - yr[0] || 1)) * p.h;
  for (let i = 1; i < xs.length; i++) c.line(px(xs[i - 1]), py(ys[i - 1]), px(xs[i]), py(ys[i]), color, thickness);
}

/** The training report: loss per step (left; y from 0 to the largest loss) and ROC curves per epoch (right; both axes 0..1). */
export function renderTrainingPlot(stepLoss: number[], rocs: (RocPoint[] | null)[], options: { width?: number; height?: number } = {}): RgbImage {
  const W = options.width ?? 960;
  const H = options.height ?? 420;
  const c = new Canvas(W, H);
  const m = 40;
  const left: Panel = { x: m, y: m / 2, w: W / 2 - 1.5 * m, h: H - 1.5 * m };
  const right: Panel = { x: W / 2 + m / 2, y: m / 2, w: W / 2 - 1.5 * m, h: H - 1.5 * m };
  axes(c, left);
  axes(c, right);
  if (stepLoss.length > 1) {
    const xs = stepLoss.map((_, i) => i);
    const maxLoss = Math.max(...stepLoss.filter(Number.isFinite), 1e-6);
    polyline(c, left, xs, stepLoss, [0, stepLoss.length - 1], [0, maxLoss], [160, 190, 240], 1);
    const win = Math.max(1, Math.round(stepLoss.length / 30));
    const smooth = stepLoss.map((_, i) => {
      const s = stepLoss.slice(Math.max(0, i - win + 1), i + 1);
      return s.reduce((a, b) => a + b, 0) / s.length;
    });
    polyline(c, left, xs, smooth, [0, stepLoss.length - 1], [0, maxLoss], [20, 60, 170], 2);
  }
  c.line(right.x, right.y + right.h, right.x + right.w, right.y, [170, 170, 170]); // chance
  const valid = rocs.map((r, i) => [r, i] as const).filter(([r]) => r && r.length > 1);
  valid.forEach(([roc, i], k) => {
    const t = valid.length === 1 ? 1 : k / (valid.length - 1);
    const color: Rgb = [Math.round(250 - 70 * t), Math.round(200 - 190 * t), Math.round(200 - 190 * t)];
    void i;
    polyline(
      c,
      right,
      roc!.map((p) => p.far),
      roc!.map((p) => p.tar),
      [0, 1],
      [0, 1],
      color,
      k === valid.length - 1 ? 3 : 1,
    );
  });
  return c.image();
}

/** One curve of a chart: points in data units. */
export interface ChartSeries {
  name: string;
  points: [number, number][];
  color: string;
  /** Marked points with a label (operating points). */
  marks?: { at: [number, number]; label: string }[];
  dashed?: boolean;
}

/**
 * A line chart as SVG (axes, grid, legend, labelled marks), for reports that
 * people look at: ROC / DET curves and open-set trade-offs. Log axes where asked.
 * Turn it into a PNG with sharp: `sharp(Buffer.from(svg)).png().toFile(file)`.
 */
export function svgLineChart(o: { title: string; xLabel: string; yLabel: string; series: ChartSeries[]; xLog?: boolean; yLog?: boolean; xRange?: [number, number]; yRange?: [number, number]; width?: number; height?: number; legend?: 'top-right' | 'bottom-left' }): string {
  const W = o.width ?? 640;
  const H = o.height ?? 440;
  const m = { l: 70, r: 20, t: 40, b: 56 };
  const all = o.series.flatMap((s) => s.points);
  const tx = (v: number) => (o.xLog ? Math.log10(Math.max(v, 1e-12)) : v);
  const ty = (v: number) => (o.yLog ? Math.log10(Math.max(v, 1e-12)) : v);
  const [x0, x1] = o.xRange ? o.xRange.map(tx) : [Math.min(...all.map((p) => tx(p[0]))), Math.max(...all.map((p) => tx(p[0])))];
  const [y0, y1] = o.yRange ? o.yRange.map(ty) : [Math.min(...all.map((p) => ty(p[1]))), Math.max(...all.map((p) => ty(p[1])))];
  const px = (v: number) => m.l + ((tx(v) - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const py = (v: number) => H - m.b - ((ty(v) - y0) / (y1 - y0 || 1)) * (H - m.t - m.b);
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const ticks = (lo: number, hi: number, log: boolean | undefined) => {
    if (log) {
      const out: number[] = [];
      for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) out.push(10 ** e);
      return out;
    }
    const step = 10 ** Math.floor(Math.log10((hi - lo) / 4 || 1));
    const s = (hi - lo) / step > 8 ? step * 2 : step;
    const out: number[] = [];
    for (let v = Math.ceil(lo / s) * s; v <= hi + 1e-12; v += s) out.push(+v.toPrecision(6));
    return out;
  };
  const fmt = (v: number) => (Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(0) : String(+v.toPrecision(3)));
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`);
  for (const v of ticks(x0, x1, o.xLog)) parts.push(`<line x1="${px(v)}" y1="${m.t}" x2="${px(v)}" y2="${H - m.b}" stroke="#e4e4e4"/><text x="${px(v)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(v)}</text>`);
  for (const v of ticks(y0, y1, o.yLog)) parts.push(`<line x1="${m.l}" y1="${py(v)}" x2="${W - m.r}" y2="${py(v)}" stroke="#e4e4e4"/><text x="${m.l - 6}" y="${py(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#444"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 14}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  parts.push(`<clipPath id="plot"><rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}"/></clipPath>`);
  o.series.forEach((s, i) => {
    const d = s.points.map((p, k) => `${k ? 'L' : 'M'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2" clip-path="url(#plot)"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    for (const mk of s.marks ?? []) {
      // Labels near the right edge go to the left of their mark.
      const right = px(mk.at[0]) > m.l + 0.7 * (W - m.l - m.r);
      parts.push(`<circle cx="${px(mk.at[0])}" cy="${py(mk.at[1])}" r="4.5" fill="${s.color}"/><text x="${px(mk.at[0]) + (right ? -8 : 8)}" y="${py(mk.at[1]) - 7}" fill="${s.color}" text-anchor="${right ? 'end' : 'start'}">${esc(mk.label)}</text>`);
    }
    const lx = o.legend === 'bottom-left' ? m.l + 12 : W - m.r - 230;
    const ly = o.legend === 'bottom-left' ? H - m.b - 12 - (o.series.length - 1 - i) * 18 : m.t + 16 + i * 18;
    parts.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/><text x="${lx + 30}" y="${ly}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
