// libtorch's intra-op thread count. A module of its own so that a style worker
// thread can set it without loading the whole package (index.ts).
import { invalid } from './errors';
import { native } from './native';

/** Number of threads libtorch uses for intra-op parallelism. Default: all available cores. */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) invalid('n', 'a positive integer', n);
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}
