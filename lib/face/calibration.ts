// Operating points that mean something: a distance threshold is chosen for a
// false-accept rate measured on labelled data, and every distance comes back
// with the false-accept rate it stands for (the share of impostor pairs, i.e.
// different people, that are at least this close). The tables are measured per
// input kind, since greyscale crops give other distances than colour photos.
//
// Open-set identification: a probe is compared with K enrolled people, so the
// chance that a stranger matches somebody is 1 - (1 - far)^K; the gallery turns
// its target false-accept rate into the per-comparison one for its size.
import { invalid } from '../core/errors';

/** What a distance means, measured on genuine (same person) and impostor (different people) pairs. */
export interface OperatingPoints {
  /** What it was measured on, e.g. "LFW view 1 DevTrain identities + CelebA (half the identities)". */
  source: string;
  /** 'colour' photos, or 'greyscale' ones. */
  kind: InputKind;
  /** The distance the tables are in (the model's metric). */
  metric: string;
  genuinePairs: number;
  impostorPairs: number;
  /** The threshold that maximises accuracy on balanced genuine/impostor pairs. */
  bestAccuracy: { threshold: number; accuracy: number };
  /** Thresholds for false-accept rates, and the genuine accept rate (TAR) there. */
  atFar: { far: number; threshold: number; tar: number }[];
  /** [distance, far]: the share of impostor pairs at distance <= d, d increasing (knots of a log-spaced grid). */
  impostorCdf: [number, number][];
  /** [distance, tar]: the share of genuine pairs at distance <= d. */
  genuineCdf: [number, number][];
}

export type InputKind = 'colour' | 'greyscale';
/** A model's calibration: operating points per input kind (at least 'colour'). */
export type Calibration = Partial<Record<InputKind, OperatingPoints>> & { colour: OperatingPoints };

/** The false-accept rates every calibration reports. */
export const STANDARD_FARS = [1e-2, 1e-3, 1e-4];

/** Distances of genuine and impostor pairs -> operating points (the impostor CDF on a log grid). */
export function operatingPoints(genuine: ArrayLike<number>, impostor: ArrayLike<number>, meta: { source: string; kind: InputKind; metric: string }): OperatingPoints {
  if (genuine.length < 2 || impostor.length < 2) invalid('pairs', 'at least 2 genuine and 2 impostor distances', `${genuine.length} and ${impostor.length}`);
  const g = Float64Array.from(genuine).sort();
  const im = Float64Array.from(impostor).sort();
  for (const v of [g[0], g[g.length - 1], im[0], im[im.length - 1]]) if (!Number.isFinite(v)) invalid('pairs', 'finite distances', v);
  const below = (sorted: Float64Array, d: number) => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] <= d) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  // Impostor CDF knots: far = 10^(-k/8) down to one pair in the sample.
  const cdf: [number, number][] = [];
  const minFar = 1 / im.length;
  for (let k = Math.floor(-8 * Math.log10(minFar)); k >= 0; k--) {
    const far = Math.max(minFar, 10 ** (-k / 8));
    const d = im[Math.min(im.length - 1, Math.ceil(far * im.length) - 1)];
    const exact = below(im, d) / im.length;
    if (!cdf.length || d > cdf[cdf.length - 1][0]) cdf.push([d, exact]);
  }
  const gcdf: [number, number][] = [];
  for (let k = 0; k <= 40; k++) {
    const d = g[Math.min(g.length - 1, Math.round((k / 40) * (g.length - 1)))];
    if (!gcdf.length || d > gcdf[gcdf.length - 1][0]) gcdf.push([d, below(g, d) / g.length]);
  }
  // Best accuracy on balanced classes: maximise (TAR + TRR) / 2 over the candidate thresholds.
  let best = { threshold: im[0], accuracy: 0 };
  const candidates = Float64Array.from([...g, ...im]).sort();
  for (let i = 0; i < candidates.length; i += Math.max(1, Math.floor(candidates.length / 20000))) {
    const d = candidates[i];
    const acc = (below(g, d) / g.length + 1 - below(im, d) / im.length) / 2;
    if (acc > best.accuracy) best = { threshold: d, accuracy: acc };
  }
  const op: OperatingPoints = { ...meta, genuinePairs: g.length, impostorPairs: im.length, bestAccuracy: best, atFar: [], impostorCdf: cdf, genuineCdf: gcdf };
  op.atFar = STANDARD_FARS.filter((f) => f >= minFar).map((far) => {
    const threshold = thresholdForFar(op, far);
    return { far, threshold, tar: below(g, threshold) / g.length };
  });
  return op;
}

/**
 * The estimated false-accept rate at a distance: the share of impostor pairs at
 * least this close. Interpolated between the table's knots (linearly in
 * log10(far)), 0 at distance 0, 1 beyond the last knot; non-decreasing in d.
 */
export function farAt(op: Pick<OperatingPoints, 'impostorCdf'>, distance: number): number {
  const cdf = op.impostorCdf;
  if (!(distance > 0)) return 0;
  const [d0, f0] = cdf[0];
  if (distance <= d0) return f0 * (distance / d0);
  for (let i = 1; i < cdf.length; i++) {
    const [d1, f1] = cdf[i];
    if (distance <= d1) {
      const [da, fa] = cdf[i - 1];
      const t = (distance - da) / (d1 - da);
      return 10 ** (Math.log10(fa) + t * (Math.log10(f1) - Math.log10(fa)));
    }
  }
  return 1;
}

/** The largest distance whose estimated false-accept rate is at most `far` (the inverse of farAt). */
export function thresholdForFar(op: Pick<OperatingPoints, 'impostorCdf'>, far: number): number {
  if (!(far >= 0 && far <= 1)) invalid('far', 'a false-accept rate in [0, 1]', far);
  const cdf = op.impostorCdf;
  const [d0, f0] = cdf[0];
  if (far <= f0) return d0 * (far / f0);
  for (let i = 1; i < cdf.length; i++) {
    const [d1, f1] = cdf[i];
    if (far <= f1) {
      const [da, fa] = cdf[i - 1];
      const t = (Math.log10(far) - Math.log10(fa)) / (Math.log10(f1) - Math.log10(fa));
      return da + t * (d1 - da);
    }
  }
  return cdf[cdf.length - 1][0];
}

/**
 * The per-comparison false-accept rate that keeps a gallery of K people at
 * `galleryFar` for a stranger: 1 - (1 - galleryFar)^(1/K).
 */
export function perComparisonFar(galleryFar: number, people: number): number {
  if (!(galleryFar >= 0 && galleryFar <= 1)) invalid('falseAcceptRate', 'a rate in [0, 1]', galleryFar);
  const k = Math.max(1, people);
  return -Math.expm1(Math.log1p(-galleryFar) / k);
}

/** Checks the shape of a calibration read from a model file or JSON. */
export function checkCalibration(c: unknown, where = 'calibration'): Calibration {
  const ok = (op: unknown): op is OperatingPoints => {
    const o = op as OperatingPoints;
    return !!o && Array.isArray(o.impostorCdf) && o.impostorCdf.length > 0 && o.impostorCdf.every((k, i) => Array.isArray(k) && k.length === 2 && k[0] > 0 && k[1] > 0 && k[1] <= 1 && (i === 0 || (k[0] > o.impostorCdf[i - 1][0] && k[1] >= o.impostorCdf[i - 1][1])));
  };
  const cal = c as Calibration;
  if (!cal || typeof cal !== 'object' || !ok(cal.colour)) invalid(where, 'operating points with an increasing impostorCdf for at least the colour kind', c);
  if (cal.greyscale !== undefined && !ok(cal.greyscale)) invalid(`${where}.greyscale`, 'operating points with an increasing impostorCdf', cal.greyscale);
  return cal;
}
