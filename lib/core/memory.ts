// Memory management for tensors: tidy() scopes, keep(), dispose() of whole
// structures, and libtorch's allocator counters. Each tensor joins the innermost
// scope when it is made (core/tensor.ts keeps the scope stack and the finalizer
// that is the safety net for tensors nobody disposed).
import { ArgumentError } from './errors';
import { native } from './native';
import { Tensor, scopes } from './tensor';

/**
 * Runs fn and disposes every tensor created inside it except those it returns
 * (in an array, object or Map as well). fn must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  scopes.push(new Set());
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) throw new ArgumentError('tidy(fn)', 'a synchronous function', 'a function returning a Promise');
  } finally {
    const scope = scopes.pop()!;
    const kept = new Set<Tensor>();
    // eslint-disable-next-line no-unsafe-finally
    collectTensors(result!, kept);
    const parent = scopes[scopes.length - 1];
    for (const t of scope) {
      if (kept.has(t)) parent?.add(t);
      else t.dispose();
    }
  }
  return result;
}

/** Keeps a tensor alive past the enclosing tidy() scopes. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collectTensors(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 8 || v === null || typeof v !== 'object') return;
  if (Tensor.isTensor(v)) out.add(v);
  else if (Array.isArray(v)) for (const e of v) collectTensors(e, out, depth + 1);
  else if (v instanceof Map) for (const e of v.values()) collectTensors(e, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const e of Object.values(v)) collectTensors(e, out, depth + 1);
}

/** Disposes tensors (and tensors inside arrays / plain objects). */
export function dispose(...values: unknown[]): void {
  const found = new Set<Tensor>();
  for (const v of values) collectTensors(v, found);
  for (const t of found) t.dispose();
}

/**
 * Live tensor handles, and the bytes of the memory they hold: each storage once,
 * however many handles share it (views, in-place results, `.grad` read twice),
 * at its size when first wrapped.
 */
export function memory(): { tensors: number; bytes: number; peakBytes: number } {
  return native.memory();
}

/**
 * Returns freed memory to the operating system. torchface keeps freed heap
 * memory for reuse (faster repeated work); a service calls this when a burst of
 * large requests is over, so that RSS falls back (the HTTP service does it itself).
 */
export function releaseMemory(): boolean {
  return native.releaseMemory();
}
