// Entry point of the style-transfer worker thread: runs one StyleJob and
// reports over the parent port. The native addon is context-aware, so libtorch
// runs here while the embedding service's event loop stays free.
import { parentPort, workerData } from 'node:worker_threads';
import { setNumThreads } from '../core/threads';
import { runStyleJob, type StyleJob, type StyleProgress } from './engine';

const { job, cancel } = workerData as { job: StyleJob; cancel: SharedArrayBuffer };
const flag = new Int32Array(cancel);
if (job.threads) setNumThreads(job.threads);

runStyleJob(job, {
  progress: (p: StyleProgress) => parentPort!.postMessage({ type: 'progress', progress: p }),
  cancelled: () => Atomics.load(flag, 0) !== 0,
}).then(
  (result) => parentPort!.postMessage({ type: 'done', result }, [result.image.data.buffer as ArrayBuffer]),
  (e: Error) => parentPort!.postMessage({ type: 'error', error: { name: e.name, message: e.message, stack: e.stack, parameter: (e as { parameter?: string }).parameter } }),
);
