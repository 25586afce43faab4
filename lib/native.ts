// The one place that loads the native addon. Everything else imports from here.
import * as os from 'os';
import * as path from 'path';
import type { Binding } from '../binding';

function load(): Binding {
  const root = path.resolve(__dirname, '..', '..');
  const candidates = [path.join(root, 'build', 'Release', 'torchface.node'), path.join(root, 'build', 'Debug', 'torchface.node')];
  let lastError: unknown;
  for (const file of candidates) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      return require(file) as Binding;
    } catch (e) {
      lastError = e;
      if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') break;
    }
  }
  throw new Error(
    `torchface: the native addon could not be loaded (${(lastError as Error)?.message}). ` +
      'Run `npm install` (or `npm run build:native`) in the torchface package to build it against libtorch.',
  );
}

export const native: Binding = load();

// libtorch's default follows OMP_NUM_THREADS and may be 1 here; like PyTorch
// on a normal machine, use every available core unless the user said otherwise.
if (!process.env.OMP_NUM_THREADS) native.setNumThreads(os.availableParallelism());
