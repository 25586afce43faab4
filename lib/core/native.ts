// The one place that loads the native addon. Everything else imports from here.
import * as path from 'path';
import type { Binding } from '../../binding';
import { packageRoot } from '../util/paths';
import { TorchfaceError } from './errors';

/** The native addon is missing or was built against another Node or libtorch. */
export class NativeAddonError extends TorchfaceError {
  override readonly code: string = 'ERR_NATIVE_ADDON';
}

function load(): Binding {
  const candidates = [path.join(packageRoot, 'build', 'Release', 'torchface.node'), path.join(packageRoot, 'build', 'Debug', 'torchface.node')];
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
  throw new NativeAddonError(
    `torchface: the native addon could not be loaded (${(lastError as Error)?.message}). ` +
      'Run `npm install` (or `npm run build:native`) in the torchface package to build it against libtorch.',
  );
}

// A spread copy: the addon's exports object holds its ~40 functions in dictionary mode (slow
// property loads, measured at ~0.05 µs of a 1 µs op); a spread object literal gets fast properties.
export const native: Binding = { ...load() };

// The thread mode 'auto' unless OMP_NUM_THREADS says otherwise: eager ops on this thread
// at one thread, replays choosing their own (lib/core/threads.ts, AUTO_EAGER_THREADS says why).
if (!process.env.OMP_NUM_THREADS) native.setNumThreads(1);
