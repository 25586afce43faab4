// Optimizer files: an optimizer's state (moments, momentum buffers, step counts,
// L-BFGS history) and hyper-parameters in a .safetensors file, written atomically,
// as torch.save(optimizer.state_dict()) does for PyTorch.
import { FileFormatError } from '../core/errors';
import { Tensor, dispose } from '../core';
import type { WriteFileAtomicOptions } from '../io/atomic';
import { readFileChecked } from '../io/atomic';
import { saveSafetensors } from '../io/safetensors';
import { buildMetadata, decodeFile, parseJson, rawsOf } from '../io/state-dict';
import type { Optimizer, OptimizerStateDict, ParamState } from './optimizer';

interface OptimizerLayout {
  paramGroups: OptimizerStateDict['paramGroups'];
  /** Per parameter index: number / number[] / null values, and the lengths of tensor lists. */
  scalars: Record<string, Record<string, unknown>>;
  lists: Record<string, Record<string, number>>;
  extra?: unknown;
}

/**
 * Saves an optimizer's state (moments, momentum buffers, step counts, L-BFGS
 * history) and hyper-parameters, atomically, as .safetensors; `extra` (e.g.
 * `{ epoch, scheduler: scheduler.stateDict() }`) is stored as JSON.
 */
export async function saveOptimizer(file: string, optimizer: Optimizer, extra?: unknown, options?: WriteFileAtomicOptions): Promise<void> {
  const sd = optimizer.stateDict();
  try {
    const tensors = new Map<string, Tensor>();
    const layout: OptimizerLayout = { paramGroups: sd.paramGroups, scalars: {}, lists: {}, extra };
    for (const [idx, st] of sd.state) {
      for (const [k, v] of Object.entries(st)) {
        if (v instanceof Tensor) tensors.set(`state.${idx}.${k}`, v);
        else if (Array.isArray(v) && v.length && v[0] instanceof Tensor) {
          (v as Tensor[]).forEach((t, j) => tensors.set(`state.${idx}.${k}.${j}`, t));
          (layout.lists[idx] ??= {})[k] = v.length;
        } else (layout.scalars[idx] ??= {})[k] = v;
      }
    }
    for (const [idx] of sd.state) layout.scalars[idx] ??= {};
    await saveSafetensors(file, rawsOf(tensors), buildMetadata({ optimizer: optimizer.constructor.name }, { 'torchface.optimizer': JSON.stringify(layout) }), options);
  } finally {
    dispose([...sd.state.values()]);
  }
}

/** Restores an optimizer saved with saveOptimizer; returns the `extra` value saved with it. */
export async function loadOptimizer(file: string, optimizer: Optimizer): Promise<unknown> {
  const bytes = await readFileChecked(file);
  const { tensors, fileMetadata } = decodeFile(bytes, file);
  try {
    const layout = parseJson(fileMetadata['torchface.optimizer'], file, 'torchface.optimizer') as OptimizerLayout | undefined;
    if (!layout) throw new FileFormatError(`${file}: not an optimizer file (no torchface.optimizer metadata)`);
    const state = new Map<number, ParamState>();
    for (const [idx, scalars] of Object.entries(layout.scalars)) {
      const st: ParamState = { ...(scalars as ParamState) };
      for (const [name, t] of tensors) {
        const prefix = `state.${idx}.`;
        if (!name.startsWith(prefix)) continue;
        const key = name.slice(prefix.length);
        if (!key.includes('.')) st[key] = t;
      }
      for (const [key, n] of Object.entries(layout.lists[idx] ?? {})) {
        st[key] = Array.from({ length: n }, (_, j) => {
          const t = tensors.get(`state.${idx}.${key}.${j}`);
          if (!t) throw new FileFormatError(`${file}: optimizer state tensor state.${idx}.${key}.${j} is missing`);
          return t;
        });
      }
      state.set(Number(idx), st);
    }
    optimizer.loadStateDict({ state, paramGroups: layout.paramGroups });
    return layout.extra;
  } finally {
    dispose([...tensors.values()]);
  }
}
