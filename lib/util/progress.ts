// A small terminal progress bar for long work (training, style transfer,
// benchmarks). Draws in place on a TTY; on a pipe or in CI it prints a plain
// line at most every `intervalMs`, so logs stay readable.
export interface ProgressBarOptions {
  total: number;
  label?: string;
  width?: number;
  stream?: NodeJS.WriteStream;
  intervalMs?: number;
}

export class ProgressBar {
  private current = 0;
  private readonly start = Date.now();
  private lastDraw = 0;
  private fields: Record<string, string | number> = {};
  constructor(private readonly o: ProgressBarOptions) {}

  /** Advances by `n` and updates the displayed fields (e.g. { loss: 0.12 }). */
  tick(n = 1, fields: Record<string, string | number> = {}): void {
    this.current = Math.min(this.o.total, this.current + n);
    Object.assign(this.fields, fields);
    this.draw(this.current >= this.o.total);
  }
  update(current: number, fields: Record<string, string | number> = {}): void {
    this.current = Math.min(this.o.total, current);
    Object.assign(this.fields, fields);
    this.draw(this.current >= this.o.total);
  }
  /** Finishes the bar with a newline. */
  done(fields: Record<string, string | number> = {}): void {
    Object.assign(this.fields, fields);
    this.draw(true);
    if (this.stream.isTTY) this.stream.write('\n');
  }

  private get stream(): NodeJS.WriteStream {
    return this.o.stream ?? process.stderr;
  }

  private draw(force: boolean): void {
    const now = Date.now();
    const tty = !!this.stream.isTTY;
    const interval = this.o.intervalMs ?? (tty ? 100 : 5000);
    if (!force && now - this.lastDraw < interval) return;
    this.lastDraw = now;
    const frac = this.o.total > 0 ? this.current / this.o.total : 1;
    const elapsed = (now - this.start) / 1000;
    const rate = elapsed > 0 ? this.current / elapsed : 0;
    const eta = rate > 0 ? (this.o.total - this.current) / rate : 0;
    const fields = Object.entries(this.fields)
      .map(([k, v]) => `${k} ${typeof v === 'number' ? formatNumber(v) : v}`)
      .join('  ');
    const width = this.o.width ?? 24;
    const filled = Math.round(frac * width);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    const line = `${this.o.label ? this.o.label + ' ' : ''}${bar} ${this.current}/${this.o.total} ${(frac * 100).toFixed(0)}%  ${formatDuration(elapsed)}<${formatDuration(eta)}  ${fields}`;
    if (tty) this.stream.write(`\r\x1b[2K${line}`);
    else this.stream.write(line + '\n');
  }
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toFixed(4);
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
