// DistributedDataParallel: PyTorch's DDP over libtorch's own c10d::Reducer.
//
//   const ddp = new DistributedDataParallel(net, { bucketMb: 25 });
//   const loss = lossFn(ddp.forward(x), y);   // each rank: its share of the batch
//   loss.backward();                          // gradients averaged across ranks
//   opt.step();                               // so every rank takes the same step
//
// At wrap time rank 0's parameters and buffers are broadcast, so every rank
// starts from the same weights. The Reducer puts the gradients in buckets
// (parameters in reverse order, as gradients arrive last layer first; a 1 MiB
// first bucket, then bucketMb) and all-reduces each bucket from an autograd
// hook as soon as its last gradient is ready, while backward continues with
// earlier layers; backward returns once every bucket is averaged into .grad.
// That communication is waited for inside backward(), which is synchronous
// here like every autograd call of the tensor library.
import { z } from 'zod';
import type { ReducerHandle } from '../../binding';
import { invalid, parseOptions } from '../core/errors';
import { native } from '../core/native';
import { Module } from '../nn';
import { Tensor, isGradEnabled, noGrad } from '../core';
import { DistributedError, ProcessGroup, defaultProcessGroup } from './process-group';

const ddpSchema = z
  .object({
    /** Gradient bucket size in MiB (torch's bucket_cap_mb, default 25). */
    bucketMb: z.number().positive().max(4096).default(25),
    /** Broadcast rank 0's buffers (BatchNorm statistics) before each training forward (default true, as torch). */
    broadcastBuffers: z.boolean().default(true),
    /** Parameters that get no gradient in a step are allowed (default false: every parameter must be used). */
    findUnusedParameters: z.boolean().default(false),
  })
  .strict();
export type DistributedDataParallelOptions = z.input<typeof ddpSchema> & { group?: ProcessGroup };

/** Every tensor in a forward's output (a tensor, or arrays/objects of them). */
function outputTensors(v: unknown, out: Tensor[] = []): Tensor[] {
  if (Tensor.isTensor(v)) out.push(v);
  else if (Array.isArray(v)) for (const e of v) outputTensors(e, out);
  else if (v && typeof v === 'object' && !(v instanceof Module)) for (const e of Object.values(v)) outputTensors(e, out);
  return out;
}

export class DistributedDataParallel<M extends Module = Module> extends Module {
  readonly module: M;
  readonly group: ProcessGroup;
  /** How many gradient buckets the Reducer made. */
  readonly buckets: number;
  private reducer: ReducerHandle | null;
  private readonly options: z.output<typeof ddpSchema>;

  constructor(module: M, options: DistributedDataParallelOptions = {}) {
    super();
    if (!(module instanceof Module)) invalid('module', 'an nn.Module', module);
    const { group, ...rest } = options ?? {};
    this.options = parseOptions(ddpSchema, rest);
    this.group = group ?? defaultProcessGroup();
    this.module = this.registerModule('module', module);
    const params = module.parameters().filter((p) => p.requiresGrad);
    if (!params.length) invalid('module', 'a module with parameters that require grad', module);
    const devices = new Set(params.map((p) => p.device));
    if (devices.size > 1) invalid('module', 'parameters on one device (one device per process, as torch)', [...devices].join(', '));
    // Same weights everywhere before the first step.
    noGrad(() => this.group.broadcastSync([...module.parameters(), ...module.buffers()], 0));
    const r = native.distReducer(this.group.handle, params.map((p) => p.handle), Math.round(this.options.bucketMb * 1024 * 1024), this.options.findUnusedParameters);
    this.reducer = r.handle;
    this.buckets = r.buckets;
  }

  /** Runs the wrapped module's forward; in training with grad on, the next backward averages the gradients. */
  forward(...inputs: unknown[]): unknown {
    return this.forwardWith(() => this.module.forward(...inputs));
  }

  /**
   * Like forward, for code that calls the wrapped module through another
   * function (e.g. an embedder's embed()): `ddp.forwardWith(() => net.embed(x))`.
   */
  forwardWith<T>(fn: () => T): T {
    const reducer = this.reducer;
    if (!reducer) throw new DistributedError('this DistributedDataParallel was released');
    const reduce = this.module.training && isGradEnabled();
    if (reduce) {
      native.reducerPrepare(reducer, null);
      const buffers = this.module.buffers();
      if (this.options.broadcastBuffers && buffers.length) noGrad(() => this.group.broadcastSync(buffers, 0));
    }
    const out = fn();
    if (reduce) native.reducerPrepare(reducer, outputTensors(out).map((t) => t.handle));
    return out;
  }

  /** Removes the Reducer's autograd hooks (the wrapped module is untouched and can be wrapped again). */
  release(): void {
    if (this.reducer) native.reducerRelease(this.reducer);
    this.reducer = null;
  }
}
