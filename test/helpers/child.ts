// Runs a snippet of JavaScript in a fresh `node` process (optionally with
// flags such as --expose-gc), with `tf` bound to this checkout's built
// library, and returns the JSON value the snippet passes to `report(...)`.
// For what a shared mocha process cannot show: garbage collection, a crash,
// memory counts without other tests' tensors around.
import { spawnSync } from 'child_process';
import * as path from 'path';

export const LIB = path.resolve(__dirname, '..', '..', 'lib');

export interface ChildResult<T> {
  value: T;
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** `body` runs inside an async function; call report(value) once. */
export function runChild<T = unknown>(body: string, flags: string[] = [], timeoutMs = 60000): ChildResult<T> {
  const script = `
const tf = require(${JSON.stringify(LIB)});
const report = (v) => process.stdout.write('\\n@@REPORT@@' + JSON.stringify(v) + '\\n');
(async () => {
${body}
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(3); });
`;
  const r = spawnSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, OMP_NUM_THREADS: '1' } });
  const line = r.stdout?.split('\n').find((l) => l.startsWith('@@REPORT@@'));
  return { value: line ? (JSON.parse(line.slice('@@REPORT@@'.length)) as T) : (undefined as T), status: r.status, signal: r.signal, stderr: r.stderr ?? '' };
}
