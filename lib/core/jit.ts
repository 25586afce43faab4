// Traced functions: record the ATen calls a TypeScript function makes on
// example inputs once, then replay them in native code on a worker thread.
// This is how inference stays off the event loop: one async native call per
// forward pass instead of hundreds of synchronous op calls.
//
// Like torch.jit.trace, a trace records operators, not control flow: the
// function must not branch on tensor values (shapes are fine, and a new trace is
// made for each new input shape).
import type { ProgramDescription, ProgramHandle, TensorHandle } from '../../binding';
import { TorchError, TorchfaceError, invalid } from './errors';
import { native } from './native';
import { noGrad } from './autograd';
import { tidy } from './memory';
import { Op, Tensor, handleOf } from './tensor';
import { dtypeCode, type DType } from './dtype';
import type { Device } from './device';
import { ThreadChooser, cpuJob, threadMode } from './threads';

export interface TracedFunction {
  /** Runs the traced computation on a worker thread. Inputs must have the traced shapes. */
  (...inputs: Tensor[]): Promise<Tensor[]>;
  /** Number of recorded operator calls and their names (for inspection). */
  info(): { instructions: number; ops: string[] };
  /**
   * The recorded operators with their arguments, for exporters. `named`: tensors
   * (a module's parameters and buffers) to recognise among the captured ones
   * (constOf[i] = index in named, or -1). The returned consts are new tensors.
   */
  describe(named?: Tensor[]): TraceDescription;
  /**
   * Intra-op threads of this program's replays: 'auto' (default) lets the
   * scheduler choose per replay (lib/core/threads.ts: the cores the other running
   * jobs leave, and between 1 and that, what measured faster for this program).
   */
  threads: number | 'auto';
  /** A replay with this call's own thread count (the scheduler's choice otherwise). */
  runWith(options: { threads?: number }, ...inputs: Tensor[]): Promise<Tensor[]>;
  /** The measured replay times (ms) by input shape ('1x3x150x150') and thread count behind 'auto'. */
  threadTimes(): Record<string, Record<number, number>>;
}

/**
 * At most `limit` replays run at once per thread (process or worker): each
 * already uses libtorch's intra-op threads, and libuv's whole pool of them at
 * once made OpenMP threads fight over the cores (48 concurrent embeds were 13x
 * slower than the same 48 one after another). Two at a time measured best on 2
 * cores (scripts/bench/cases/concurrency.ts: whole photos 1.45-1.51x sequential vs
 * 1.04-1.09x with one, crops alike, event-loop p99 20-25 ms). Callers queue
 * here; a replay that has to wait gets copies of its inputs, so it computes on
 * the values they had when it was called, as an immediate one does.
 */
class ReplayQueue {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  limit = 2;
  /** shared: the inputs are read in place (TracedOptions.sharedInputs): a waiting replay holds aliases, not copies. */
  async run<T>(inputs: TensorHandle[], start: (inputs: TensorHandle[]) => Promise<T>, shared = false): Promise<T> {
    if (this.active < this.limit) return this.go(inputs, start);
    const copies = inputs.map((h) => native.call(shared ? ALIAS() : CLONE(), h) as TensorHandle);
    try {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      return await this.go(copies, start, true);
    } finally {
      for (const h of copies) native.dispose(h);
    }
  }
  private async go<T>(inputs: TensorHandle[], start: (inputs: TensorHandle[]) => Promise<T>, slotGiven = false): Promise<T> {
    if (!slotGiven) this.active++;
    try {
      return await start(inputs);
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes on
      else this.active--;
    }
  }
}
const replays = new ReplayQueue();
let cloneOp = -1;
const CLONE = (): number => (cloneOp >= 0 ? cloneOp : (cloneOp = native.op('aten::clone', '')));
let aliasOp = -1;
const ALIAS = (): number => (aliasOp >= 0 ? aliasOp : (aliasOp = native.op('aten::alias', '')));

/** How many traced replays may run at once in this thread (default 2, measured best on 2 cores). */
export function setReplayConcurrency(n: number): void {
  if (!Number.isInteger(n) || n < 1) invalid('n', 'a positive integer', n);
  replays.limit = n;
}

/** Options of trace(). */
export interface TraceOptions {
  /**
   * The callers never change an input while its replay runs (lib/'s own temporaries, decoded
   * photos): replays read the inputs in place instead of copying them first on the calling
   * thread (a 1920x1280 photo took ~2 ms of the event loop for each face aligned from it). A
   * change is still caught: the replay is then refused, as when the weights change. Off by
   * default: a replay computes on the values its inputs had when it was called.
   */
  sharedInputs?: boolean;
}

/** Records fn applied to example inputs (without autograd) and returns an async replay. */
export function trace(fn: (...inputs: Tensor[]) => Tensor | Tensor[], exampleInputs: Tensor[], options: TraceOptions = {}): TracedFunction {
  const shared = !!options?.sharedInputs;
  const handles = exampleInputs.map((t, i) => handleOf(t, `exampleInputs[${i}]`));
  let program: ProgramHandle | undefined;
  try {
    native.traceBegin(handles);
  } catch (e) {
    // e.g. trace() called from inside a traced function: one trace at a time
    throw new TorchfaceError(`trace: ${(e as Error).message}`);
  }
  let outputs: Tensor[] = [];
  try {
    // tidy: the intermediates of the example run are not needed (the trace holds its own references).
    const r = noGrad(() => tidy(() => fn(...exampleInputs)));
    outputs = Array.isArray(r) ? r : [r];
    program = native.traceEnd(outputs.map((t, i) => handleOf(t, `outputs[${i}]`)));
  } finally {
    if (!program) native.traceEnd(null);
    for (const t of outputs) if (Tensor.isTensor(t) && !exampleInputs.includes(t)) t.dispose();
  }
  const p = program!;
  const arity = exampleInputs.length;
  // One chooser per input shape: a program traced at batch 1 also replays larger batches (FaceModel), and the best count follows the work.
  const choosers = new Map<string, ThreadChooser>();
  const replay = async (hs: TensorHandle[], shapeKey: string, forced?: number, versions?: number[]): Promise<TensorHandle[]> => {
    let chooser = choosers.get(shapeKey);
    if (!chooser) {
      if (choosers.size >= 64) choosers.delete(choosers.keys().next().value as string);
      choosers.set(shapeKey, (chooser = new ThreadChooser()));
    }
    const job = cpuJob();
    const threads = forced ?? (f.threads === 'auto' ? chooser.pick(job.share) : f.threads);
    const t0 = performance.now();
    try {
      const out = await native.programRun(p, hs, threads, shared, versions);
      const alone = job.end();
      if (process.env.TORCHFACE_DEBUG_THREADS) console.error(`torchface: replay ${shapeKey} threads ${threads} share ${job.share} ${(performance.now() - t0).toFixed(1)} ms alone ${alone}`);
      if (alone && forced === undefined && f.threads === 'auto' && threadMode() === 'auto') chooser.record(threads, performance.now() - t0);
      return out;
    } finally {
      job.end();
    }
  };
  const runWith = async (options: { threads?: number }, inputs: Tensor[]): Promise<Tensor[]> => {
    if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1)) invalid('options.threads', 'a positive integer', options.threads);
    if (inputs.length !== arity) invalid('inputs', `${arity} tensor(s), as traced`, inputs);
    const handles = inputs.map((t, i) => handleOf(t, `inputs[${i}]`));
    let result;
    try {
      // Batch sizes by power-of-two class: the dynamic batcher (FaceModel) makes many
      // sizes, and a chooser per exact size would spend most replays warming up.
      const shapeKey = inputs.map((t) => t.shape.map((n, d) => (d === 0 && n > 1 ? `${2 ** Math.ceil(Math.log2(n))}b` : n)).join('x')).join(';');
      // Shared inputs: their versions now, so that a change while the replay waits is caught too.
      const versions = shared ? handles.map((h) => native.tensorVersion(h)) : undefined;
      result = await replays.run(handles, (hs) => replay(hs, shapeKey, options.threads, versions), shared);
    } catch (e) {
      if (e instanceof TorchfaceError) throw e;
      // The worker reports "aten::conv2d: <libtorch's message>" for the failing instruction.
      const message = (e as Error).message;
      throw new TorchError(/^(aten::[\w.]+): /.exec(message)?.[1] ?? 'program', message);
    }
    return result.map((h) => new Tensor(h));
  };
  const describe = (named: Tensor[] = []): TraceDescription => {
    const d = native.programDescribe(p, named.map((t, i) => handleOf(t, `named[${i}]`)));
    return { ...d, consts: d.consts.map((h) => new Tensor(h)) };
  };
  const run = (...inputs: Tensor[]) => runWith({}, inputs);
  const f: TracedFunction = Object.assign(run, { runWith: (options: { threads?: number }, ...inputs: Tensor[]) => runWith(options, inputs), info: () => native.programInfo(p), describe, threads: 'auto' as number | 'auto', threadTimes: () => Object.fromEntries([...choosers].map(([k, c]) => [k, c.measured()])) });
  return f;
}

/** A recorded program as data (see TracedFunction.describe): what exporters read. */
export type TraceDescription = Omit<ProgramDescription, 'consts'> & { consts: Tensor[] };

/** Options of traced(). */
export interface TracedOptions {
  /** Traces kept, the oldest dropped first (default 16). */
  maxCached?: number;
  /**
   * The function never uses the batch size (no reshape to N: every op is per
   * sample), so one trace, made on a batch-1 slice, replays every batch size of
   * the same per-sample shape. Networks whose trace bakes in the batch size (an
   * imported ONNX graph's shape arithmetic) leave this off: one trace per shape.
   */
  anyBatchSize?: boolean;
  /** See TraceOptions.sharedInputs. */
  sharedInputs?: boolean;
}

/** What traced() returns: call it like the function (asynchronously, on a worker thread). */
export interface CachedTrace {
  (...inputs: Tensor[]): Promise<Tensor[]>;
  /** Intra-op threads of every replay, now and of traces made later (see TracedFunction.threads). */
  threads: number | 'auto';
  /** Traces now, on zero inputs of these kinds, so that later calls only replay (tracing runs on the calling thread). */
  prepare(...inputs: { dtype: DType; shape: number[]; device?: Device }[]): void;
}

const NARROW = new Op('aten::narrow');
const ZEROS = new Op('aten::zeros');

/**
 * Caches one trace per input signature (dtype, device, shape; without the batch
 * size for `anyBatchSize`): `const f = traced(forward)`, then `await f(x)` traces
 * on first sight of x's signature and replays afterwards.
 */
export function traced(fn: (...inputs: Tensor[]) => Tensor | Tensor[], options: TracedOptions = {}): CachedTrace {
  const cache = new Map<string, TracedFunction>();
  const maxCached = options.maxCached ?? 16;
  const anyBatchSize = options.anyBatchSize ?? false;
  let threads: number | 'auto' = 'auto';
  const get = (inputs: Tensor[]): TracedFunction => {
    const key = inputs.map((t) => `${t.dtype}@${t.device}[${(anyBatchSize ? t.shape.slice(1) : t.shape).join(',')}]`).join(';');
    let f = cache.get(key);
    if (f) return f;
    if (cache.size >= maxCached) cache.delete(cache.keys().next().value as string);
    // Tracing runs the function once on the calling thread with the inputs (their batch-1 slices for anyBatchSize).
    const examples = anyBatchSize ? inputs.map((t) => (t.shape[0] === 1 ? t : NARROW.t(t.handle, 0, 0, 1))) : inputs;
    try {
      f = trace(fn, examples, { sharedInputs: options.sharedInputs });
    } catch (e) {
      if (e instanceof TorchfaceError) throw e;
      throw new TorchfaceError(`tracing failed: ${(e as Error).message}`);
    } finally {
      examples.forEach((t, i) => t !== inputs[i] && t.dispose());
    }
    f.threads = threads;
    cache.set(key, f);
    return f;
  };
  const run = (async (...inputs: Tensor[]) => get(inputs)(...inputs)) as CachedTrace;
  Object.defineProperty(run, 'threads', {
    get: () => threads,
    set: (t: number | 'auto') => {
      threads = t;
      for (const f of cache.values()) f.threads = t;
    },
  });
  run.prepare = (...kinds) => {
    const inputs = kinds.map((k) => ZEROS.t([1, ...k.shape], dtypeCode(k.dtype), null, k.device ?? 'cpu', null));
    try {
      get(inputs); // trace() runs the function without autograd
    } finally {
      for (const t of inputs) t.dispose();
    }
  };
  return run;
}
