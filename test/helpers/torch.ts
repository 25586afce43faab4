// Runs the PyTorch reference (/usr/bin/python3 with torch) for parity tests.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor, loadStateDict, saveStateDictSync } from '../../lib';

export const PYTHON = process.env.TORCHFACE_TEST_PYTHON ?? '/usr/bin/python3';
export const HELPERS = path.resolve(__dirname, '..', '..', '..', 'test', 'helpers');

let available: string | null | undefined;
/** null when Python with torch is usable, else the reason it is not. */
export function torchUnavailable(): string | null {
  if (available === undefined) {
    const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    available = r.status === 0 ? null : `${PYTHON} has no torch (${(r.stderr || String(r.error)).trim().split('\n').pop()}): skipping the PyTorch parity part`;
  }
  return available;
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function runPython(args: string[], options: { cwd?: string } = {}): string {
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', cwd: options.cwd, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${PYTHON} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

/** Writes tensors + a JSON spec, runs torch_parity.py MODE, returns its output tensors. */
export async function torchParity(mode: 'layers' | 'optim' | 'clip', spec: unknown, tensors: Map<string, Tensor>): Promise<Map<string, Tensor>> {
  const dir = tmpDir('torchface-parity-');
  try {
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
    saveStateDictSync(path.join(dir, 'in.safetensors'), tensors, {}, { fsync: false });
    runPython([path.join(HELPERS, 'torch_parity.py'), mode, path.join(dir, 'spec.json'), path.join(dir, 'in.safetensors'), path.join(dir, 'out.safetensors')]);
    return (await loadStateDict(path.join(dir, 'out.safetensors'))).stateDict;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Largest |a - b| / max(1, |b|)... as a relative error: max |a-b| / max(|b|max, tiny). */
export function relError(a: Tensor, b: Tensor): number {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shapes differ: [${a.shape}] vs [${b.shape}]`);
  const x = a.data() as Float32Array;
  const y = b.data() as Float32Array;
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    num = Math.max(num, Math.abs(Number(x[i]) - Number(y[i])));
    den = Math.max(den, Math.abs(Number(y[i])));
  }
  return den === 0 ? num : num / den;
}
