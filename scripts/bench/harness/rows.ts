// The harness's rows: goals, ratios, the spread over rounds and the arithmetic
// floor (the time a case would take at this machine's matmul throughput).
import { getNumThreads } from '../../../lib';
import { Summary, summarize } from './common';

export type Goal = { op: '<=' | '>=' | '<'; value: number; on: 'ratio' | 'torchface'; text: string } | null;

export interface Row {
  area: string;
  case: string;
  torchface: number | null;
  /** spread of torchface's measurements */
  spread: Summary | null;
  peer: number | null;
  peerName: string;
  peerSpread: Summary | null;
  unit: string;
  /** torchface / peer */
  ratio: number | null;
  goal: Goal;
  met: boolean | null;
  /** the arithmetic floor for this case, when known: time at this machine's matmul throughput */
  floor?: { value: number; unit: string; fraction: number; text: string };
  note?: string;
  error?: string;
}

/** A row as an area module returns it. */
export interface RawRow {
  case: string;
  torchface: number;
  peer: number | null;
  unit: string;
  ratio: number | null;
  goal: unknown;
  [k: string]: unknown;
}

export const ratioGoal = (op: '<=' | '>=', value: number, text?: string): Goal => ({ op, value, on: 'ratio', text: text ?? `${op} ${value}` });

function check(goal: Goal, torchface: number | null, ratio: number | null): boolean | null {
  if (!goal) return null;
  const v = goal.on === 'ratio' ? ratio : torchface;
  if (v === null || !Number.isFinite(v)) return null;
  return goal.op === '<=' ? v <= goal.value : goal.op === '>=' ? v >= goal.value : v < goal.value;
}

export function makeRow(area: string, r: Partial<Row> & { case: string; torchface: number | null; peer: number | null; unit: string }): Row {
  const ratio = r.ratio !== undefined ? r.ratio : r.torchface !== null && r.peer ? r.torchface / r.peer : null;
  const goal = r.goal ?? null;
  return { area, spread: null, peerName: 'PyTorch', peerSpread: null, ...r, ratio, goal, met: check(goal, r.torchface, ratio) };
}

export const errorRow = (area: string, e: unknown): Row => ({
  area,
  case: `${area}: ERROR`,
  torchface: null,
  spread: null,
  peer: null,
  peerName: '-',
  peerSpread: null,
  unit: '-',
  ratio: null,
  goal: null,
  met: null,
  error: (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300),
});

/** min..max of each row's value over rounds (for modules that only report medians). */
export function mergeRounds(rounds: RawRow[][]): { row: RawRow; spread: Summary | null; peerSpread: Summary | null }[] {
  const first = rounds[0] ?? [];
  return first.map((row, i) => {
    const same = rounds.map((rs) => rs.find((r) => r.case === row.case) ?? rs[i]).filter(Boolean);
    const t = same.map((r) => r.torchface).filter((v) => typeof v === 'number');
    const p = same.map((r) => r.peer).filter((v): v is number => typeof v === 'number');
    const ts = summarize(t);
    const ps = p.length ? summarize(p) : null;
    return { row: { ...row, torchface: ts.median, peer: ps ? ps.median : null }, spread: rounds.length > 1 ? ts : null, peerSpread: rounds.length > 1 ? ps : null };
  });
}

/** GFLOP/s of a 1024x1024 float32 matmul, by thread count: set by the matmul area, which always runs first. */
export const floorGflops = new Map<number, number>();

export function floorFor(flops: number, threads: number, unitScale: number, unit: string, measured: number | null): Row['floor'] | undefined {
  const g = floorGflops.get(threads) ?? floorGflops.get(getNumThreads());
  if (!g) return undefined;
  const value = (flops / (g * 1e9)) * unitScale;
  const fraction = measured ? value / measured : NaN;
  return { value, unit, fraction, text: `${fmt(value)} ${unit} (${Number.isFinite(fraction) ? (fraction * 100).toFixed(0) : '-'}%)` };
}

export const threadsOf = (label: string, fallback: number) => {
  const m = /(\d+) threads?/.exec(label);
  return m ? Number(m[1]) : fallback;
};

export function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  return a >= 1000 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : a >= 0.01 ? v.toFixed(3) : v.toPrecision(2);
}
