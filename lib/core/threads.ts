// libtorch's intra-op threads, and the policy that chooses them for each traced
// replay (lib/core/jit.ts). A module of its own so that a style worker thread can set
// threads without loading the whole package (index.ts).
//
// Why a policy: libgomp (libtorch's OpenMP) spins between parallel regions only
// while the OpenMP threads of all OS threads' pools fit in the cores; past that its
// idle threads sleep at once and every op pays a wake-up. Replays used to run on any
// libuv worker, each growing a pool, beside the main thread's pool of all cores:
// every 2-thread replay was then slower than a 1-thread one (a batch-1 descriptor
// 7-8 ms vs 4.5-5 ms, 2.5-3.5 ms once fixed). Now replays of several threads run in
// turn on one dedicated thread (native/program.cc, WideReplayThread), 1-thread
// replays run side by side on libuv's workers, and eager ops on the calling thread
// use one thread under 'auto' (AUTO_EAGER_THREADS). By default ('auto') each replay
// gets the cores left by the others running (replays and image decodes), and, where
// that leaves a choice, ThreadChooser measures which count is faster for that
// program, as cudnn.benchmark does for algorithms.
import * as os from 'os';
import { invalid } from './errors';
import { native } from './native';

const cores = os.availableParallelism();
/** null: 'auto' (the policy decides per replay); a number: every replay uses it (setNumThreads or OMP_NUM_THREADS). */
let fixed: number | null = process.env.OMP_NUM_THREADS ? native.getNumThreads() : null;
/** CPU work running now beside libtorch's: replays and image decodes/resizes on sharp's threads. */
let busy = 0;

/**
 * Number of threads libtorch uses for intra-op parallelism: eager ops on this
 * thread and every traced replay (face models, detectors) from now on. Default:
 * 'auto': one thread for eager ops on this thread (see AUTO_EAGER_THREADS), and for
 * replays the policy above. `'auto'` restores the default.
 */
export function setNumThreads(n: number | 'auto'): void {
  if (n === 'auto') {
    fixed = null;
    native.setNumThreads(AUTO_EAGER_THREADS);
    return;
  }
  if (!Number.isInteger(n) || n < 1) invalid('n', "a positive integer or 'auto'", n);
  fixed = n;
  native.setNumThreads(n);
}

/**
 * Eager ops on the calling thread under 'auto': one thread. libgomp spins between
 * parallel regions only while the OpenMP threads of every OS thread's pool fit in the
 * cores; a main-thread pool of all cores beside the replays' made each 2-thread replay
 * sleep and wake at every op (a batch-1 descriptor 7.2-7.5 ms instead of 3.2-3.7 ms,
 * CPU/wall 1.1; scripts/bench/cases/threads.ts). Eager-heavy work (training)
 * asks for all cores: useAllCoresForEager(), or setNumThreads(n).
 */
export const AUTO_EAGER_THREADS = 1;

/** Under 'auto', eager ops on this thread use all cores from now on (training loops); replays keep their policy. */
export function useAllCoresForEager(): void {
  if (fixed === null) native.setNumThreads(cores);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Whether replays choose their threads ('auto') or use a fixed count. */
export function threadMode(): 'auto' | number {
  return fixed ?? 'auto';
}

/** Counts CPU work outside libtorch (sharp's decoding) while fn runs, so that replays leave it a core. */
export async function sharingCpu<T>(fn: () => Promise<T>): Promise<T> {
  const job = cpuJob();
  try {
    return await fn();
  } finally {
    job.end();
  }
}

let starts = 0;
/**
 * Registers CPU work starting now: `share` is the threads it may use (all cores
 * less one per job already running, at least 1); `end()` says whether it ran
 * alone (nothing else running when it started, nothing started since).
 */
export function cpuJob(): { share: number; end(): boolean } {
  // Under steady concurrency (most recent jobs overlapped another: a busy service) every job
  // gets one thread, even one that happens to start alone: others are about to start, and a
  // 2-thread replay beside a 1-thread one puts three OpenMP threads on two cores.
  const share = overlapped > 0.5 ? 1 : Math.max(1, cores - busy);
  const alone = busy === 0;
  busy++;
  const mark = ++starts;
  let done = false;
  let ranAlone = false;
  return {
    share,
    end: () => {
      if (!done) {
        busy--;
        ranAlone = alone && starts === mark;
        overlapped = 0.9 * overlapped + (ranAlone ? 0 : 0.1);
      }
      done = true;
      return ranAlone;
    },
  };
}
/** Moving share of recent jobs that overlapped another (0..1). */
let overlapped = 0;

/**
 * The thread count of one program's replays (at one input shape), chosen by
 * measurement between 1 and the share it is given. One thread first: a warm-up
 * run (the first run at a count pays oneDNN's primitive creation) and 3 timed
 * ones; then the share: a warm-up and one timed run, and two more only if that
 * one was faster (so a count that loses costs two runs, not four). Then the
 * count with the lower median of its last 5 runs is used. Now and then the other is timed again, so that the
 * choice follows the machine's load: after 16 replays, then, each time the other
 * is still slower, twice as many (up to 1024), so that re-checking a count that
 * is 4x slower on a busy machine costs little. Only replays that ran alone are
 * timed: with other work running, a time says nothing about the count.
 */
export class ThreadChooser {
  private readonly samples = new Map<number, number[]>();
  private sinceCheck = 0;
  private interval = 16;
  /** A re-check in flight: the count being timed again and the current best it is timed against. */
  private checking: { threads: number; best: number } | null = null;

  /** The count for the next replay, given its share (cpuJob().share). */
  pick(share: number): number {
    if (fixed !== null) return fixed;
    if (share <= 1) return 1;
    // The share first (since replays of several threads run on one dedicated thread they
    // scale: native/program.cc, WideReplayThread), then 1 thread as the alternative.
    const nS = this.samples.get(share)?.length ?? -1;
    const n1 = this.samples.get(1)?.length ?? -1;
    if (nS < 3) return share;
    // The alternative: a warm-up and one timed run; two more only if that one was faster.
    if (n1 < 1 || (n1 < 3 && this.median(1) < this.median(share))) return 1;
    const best = this.median(share) <= this.median(1) ? share : 1;
    if (++this.sinceCheck < this.interval) return best;
    this.sinceCheck = 0;
    this.checking = { threads: best === 1 ? share : 1, best };
    return this.checking.threads;
  }

  /** Records a replay's time at `threads` (call only for replays that ran alone). */
  record(threads: number, ms: number): void {
    const s = this.samples.get(threads);
    if (!s) {
      this.samples.set(threads, []); // the warm-up run is not kept
      return;
    }
    s.push(ms);
    if (s.length > 5) s.shift();
    if (this.checking?.threads === threads) {
      // Still slower than the best: wait twice as long before the next re-check; else start over.
      this.interval = ms > this.median(this.checking.best) ? Math.min(1024, this.interval * 2) : 16;
      this.checking = null;
    }
  }

  private median(threads: number): number {
    const s = [...(this.samples.get(threads) ?? [])].sort((a, b) => a - b);
    return s.length ? s[s.length >> 1] : Number.POSITIVE_INFINITY;
  }

  /** The medians (ms per replay) by thread count, for inspection and tests. */
  measured(): Record<number, number> {
    return Object.fromEntries([...this.samples.keys()].filter((t) => this.samples.get(t)!.length).map((t) => [t, this.median(t)]));
  }
}
