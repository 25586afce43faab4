// Exchanges tensors with the PyTorch reference (torch_parity.py, run by the
// Python that ./peers finds) and compares the results.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor, loadStateDict, saveStateDictSync } from '../../lib';
import { HELPERS, runPython } from './peers';

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
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
