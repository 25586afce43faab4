// Process groups and collectives over libtorch's c10d, with torch.distributed's
// names and semantics:
//
//   await initProcessGroup({ backend: 'gloo', initMethod: 'tcp://10.0.0.1:29500', rank, worldSize })
//   await allReduce(grad, { op: 'mean' })      // in place, waited for off the event loop
//   await broadcast(t, { src: 0 }); await allGather(list, t); await barrier()
//   destroyProcessGroup()
//
// Without options, initProcessGroup reads what torchrun (and `npm run train --
// --nproc N`) sets: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
//
// The ranks meet in a store (a TCPStore hosted by rank 0, or a FileStore on a
// shared path). Each rank marks itself joined there and keeps a heartbeat key
// fresh from a native thread, so that when a collective fails or a rank never
// joins, the survivors can say which rank is gone rather than just "connection
// closed by peer" (DistributedError.ranks).
import { z } from 'zod';
import type { DistStoreSpec, ProcessGroupHandle, TensorHandle } from '../../binding';
import { TorchfaceError, invalid, parseOptions } from '../core/errors';
import { native } from '../core/native';
import { Op, Tensor, handleOf, isFloatingDType } from '../core';

const DIV_ = new Op('aten::div_', 'Scalar');

/** A collective failed or a rank is missing; `ranks` names the ranks found gone (empty when unknown). */
export class DistributedError extends TorchfaceError {
  override readonly code: string = 'ERR_DISTRIBUTED';
  constructor(
    message: string,
    readonly ranks: number[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'mean' | 'product' | 'max' | 'min';

/** torch.distributed's default: 30 minutes (a rank may validate or checkpoint while the others wait). */
export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;
const HEARTBEAT_MS = 500;

const initSchema = z
  .object({
    backend: z.enum(['gloo', 'nccl']).default('gloo'),
    /** 'env://' (default: MASTER_ADDR / MASTER_PORT), 'tcp://HOST:PORT' or 'file:///path' (a path every rank can reach). */
    initMethod: z.string().min(1).default('env://'),
    rank: z.number().int().nonnegative().optional(),
    worldSize: z.number().int().positive().optional(),
    /** How long to wait for the other ranks, at init and in every collective (default 30 min, as torch.distributed). */
    timeoutMs: z.number().int().positive().default(DEFAULT_TIMEOUT_MS),
    /** Name of the group in its store (several groups can share one). */
    groupName: z.string().min(1).default('default'),
  })
  .strict();
export type InitProcessGroupOptions = z.input<typeof initSchema>;

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) invalid(`environment variable ${name}`, 'a non-negative integer', v);
  return n;
}

interface Rendezvous {
  spec: DistStoreSpec;
  isServer: boolean;
  rank: number;
  worldSize: number;
  where: string;
}

function rendezvous(o: z.output<typeof initSchema>): Rendezvous {
  const rank = o.rank ?? envInt('RANK');
  const worldSize = o.worldSize ?? envInt('WORLD_SIZE');
  if (rank === undefined) invalid('options.rank', 'a rank (or the environment variable RANK, as torchrun sets)', undefined);
  if (worldSize === undefined) invalid('options.worldSize', 'a world size (or the environment variable WORLD_SIZE)', undefined);
  if (rank >= worldSize) invalid('options.rank', `a rank below worldSize ${worldSize}`, rank);
  const base = { timeoutMs: o.timeoutMs, prefix: `torchface/${o.groupName}/`, worldSize };
  let m: RegExpMatchArray | null;
  if (o.initMethod === 'env://') {
    const host = process.env.MASTER_ADDR;
    const port = envInt('MASTER_PORT');
    if (!host) invalid('environment variable MASTER_ADDR', "rank 0's address for initMethod 'env://'", host);
    if (port === undefined || port < 1 || port > 65535) invalid('environment variable MASTER_PORT', 'a port 1-65535', process.env.MASTER_PORT);
    return { spec: { ...base, store: 'tcp', host, port, path: '' }, isServer: rank === 0, rank, worldSize, where: `tcp://${host}:${port}` };
  }
  if ((m = o.initMethod.match(/^tcp:\/\/\[?([^\]]+?)\]?:(\d+)$/))) {
    const port = Number(m[2]);
    if (port < 1 || port > 65535) invalid('options.initMethod', 'tcp://HOST:PORT with a port 1-65535', o.initMethod);
    return { spec: { ...base, store: 'tcp', host: m[1], port, path: '' }, isServer: rank === 0, rank, worldSize, where: o.initMethod };
  }
  if ((m = o.initMethod.match(/^file:\/\/(\/.+)$/))) return { spec: { ...base, store: 'file', host: '', port: 0, path: m[1] }, isServer: false, rank, worldSize, where: o.initMethod };
  invalid('options.initMethod', "'env://', 'tcp://HOST:PORT' or 'file:///absolute/path'", o.initMethod);
}

/** A set of processes that run collectives together (torch.distributed's ProcessGroup). */
export class ProcessGroup {
  private destroyed = false;
  constructor(
    private readonly h: ProcessGroupHandle,
    readonly backend: Backend,
    readonly rank: number,
    readonly worldSize: number,
    private readonly rdv: Rendezvous,
  ) {}

  /** The native handle (for lib/distributed only). */
  get handle(): ProcessGroupHandle {
    if (this.destroyed) throw new DistributedError('the process group was destroyed (destroyProcessGroup)');
    return this.h;
  }

  // Collectives work in place on the tensors' storage; the addon refuses a
  // non-contiguous view (its result would be lost in a copy).
  async allReduce(tensor: Tensor, options: { op?: ReduceOp } = {}): Promise<void> {
    const op = options.op ?? 'sum';
    if (!['sum', 'mean', 'product', 'max', 'min'].includes(op)) invalid('options.op', "'sum', 'mean', 'product', 'max' or 'min'", op);
    if (op === 'mean' && !isFloatingDType(tensor.dtype)) invalid('tensor', "a floating-point tensor for op 'mean' (use 'sum' for integers)", tensor.dtype);
    await this.run('allReduce', () => native.distCollective(this.handle, 'allreduce', [handleOf(tensor)], [], op === 'mean' ? 'sum' : op, 0, false));
    // Gloo has no AVG: sum, then divide, as torch.distributed does for gloo.
    if (op === 'mean') native.dispose(DIV_.call(handleOf(tensor), this.worldSize) as TensorHandle);
  }

  async broadcast(tensor: Tensor, options: { src?: number } = {}): Promise<void> {
    const src = this.checkRank(options.src ?? 0, 'options.src');
    await this.run('broadcast', () => native.distCollective(this.handle, 'broadcast', [handleOf(tensor)], [], '', src, false));
  }

  /** tensorList[i] receives rank i's `tensor` (same shape and dtype everywhere). */
  async allGather(tensorList: Tensor[], tensor: Tensor): Promise<void> {
    if (!Array.isArray(tensorList) || tensorList.length !== this.worldSize) invalid('tensorList', `an array of worldSize = ${this.worldSize} tensors`, tensorList);
    const shape = tensor.shape.join(',');
    tensorList.forEach((t, i) => {
      if (!Tensor.isTensor(t) || t.shape.join(',') !== shape || t.dtype !== tensor.dtype) invalid(`tensorList[${i}]`, `a ${tensor.dtype} tensor of shape [${shape}]`, t);
    });
    await this.run('allGather', () => native.distCollective(this.handle, 'allgather', [handleOf(tensor)], tensorList.map((t) => handleOf(t)), '', 0, false));
  }

  async barrier(): Promise<void> {
    await this.run('barrier', () => native.distCollective(this.handle, 'barrier', [], [], '', 0, false));
  }

  /** Broadcast waited for on the calling thread: for the few small tensors a forward pass syncs (DDP's buffers). */
  broadcastSync(tensors: Tensor[], src = 0): void {
    if (!tensors.length) return;
    this.runSync('broadcast', () => native.distCollective(this.handle, 'broadcast', tensors.map((t) => handleOf(t)), [], '', src, true));
  }

  /** Releases the group; a later collective on it throws. Other ranks see this rank as having left. */
  destroy(): void {
    if (this.destroyed) return;
    try {
      native.distStoreSet(this.h, `torchface/left/${this.rank}`, String(Date.now()));
    } catch {
      // the store's host (rank 0) may be gone already
    }
    native.distDestroy(this.h);
    this.destroyed = true;
  }

  /**
   * Explains a failed collective: which ranks left (destroyProcessGroup) or
   * stopped beating. Waits about three heartbeats to tell a dead rank from a
   * slow one. Resolves to a DistributedError (never throws).
   */
  async diagnose(what: string, cause: unknown): Promise<DistributedError> {
    const message = cause instanceof Error ? cause.message : String(cause);
    const others = [...Array(this.worldSize).keys()].filter((r) => r !== this.rank);
    const read = () => others.map((r) => ({ r, beat: this.storeGet(`torchface/heartbeat/${r}`), left: this.storeGet(`torchface/left/${r}`) }));
    let first: ReturnType<typeof read>;
    try {
      first = read();
    } catch {
      const gone = this.rank === 0 ? [] : [0];
      return new DistributedError(
        `rank ${this.rank}: ${what} failed and the store at ${this.rdv.where} is unreachable: rank 0, which hosts it, is gone (${message})`,
        gone,
        { cause },
      );
    }
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS + 200));
    let second: ReturnType<typeof read>;
    try {
      second = read();
    } catch {
      return new DistributedError(`rank ${this.rank}: ${what} failed; rank 0 (the store's host at ${this.rdv.where}) went away meanwhile (${message})`, [0], { cause });
    }
    const left = second.filter((s) => s.left !== null).map((s) => s.r);
    const silent = second.filter((s, i) => s.left === null && s.beat === first[i].beat).map((s) => s.r);
    const gone = [...left, ...silent].sort((a, b) => a - b);
    const parts = [];
    if (silent.length) parts.push(`rank${silent.length > 1 ? 's' : ''} ${silent.join(', ')} stopped answering (no heartbeat for ${3 * HEARTBEAT_MS + 200} ms: the process died or hangs)`);
    if (left.length) parts.push(`rank${left.length > 1 ? 's' : ''} ${left.join(', ')} left the group`);
    const why = parts.length ? parts.join('; ') : 'every rank is still alive, so a rank did not join the collective in time (timeoutMs) or called a different one';
    return new DistributedError(`rank ${this.rank}: ${what} failed: ${why} (${message})`, gone, { cause });
  }

  private storeGet(key: string): string | null {
    return native.distStoreGet(this.h, key);
  }

  private checkRank(r: number, parameter: string): number {
    if (!Number.isInteger(r) || r < 0 || r >= this.worldSize) invalid(parameter, `a rank 0..${this.worldSize - 1}`, r);
    return r;
  }

  private async run(what: string, fn: () => Promise<void> | undefined): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (e instanceof TorchfaceError) throw e;
      throw await this.diagnose(what, e);
    }
  }

  private runSync(what: string, fn: () => unknown): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof TorchfaceError) throw e;
      // Synchronous callers (a forward pass) cannot wait for diagnose(); they may call it themselves.
      throw new DistributedError(`rank ${this.rank}: ${what} failed (${(e as Error).message})`, [], { cause: e });
    }
  }
}


let defaultGroup: ProcessGroup | null = null;

/**
 * Joins the default process group (torch.distributed.init_process_group).
 * Resolves once every rank has joined; rejects with a DistributedError naming
 * the ranks that did not join within timeoutMs.
 */
export async function initProcessGroup(options: InitProcessGroupOptions = {}): Promise<ProcessGroup> {
  if (defaultGroup) throw new DistributedError('the default process group is already initialized (destroyProcessGroup() first)');
  const group = await newGroup(options);
  defaultGroup = group;
  return group;
}

/** A process group that is not the default one (e.g. a second run sharing a store under another groupName). */
export async function newGroup(options: InitProcessGroupOptions = {}): Promise<ProcessGroup> {
  const o = parseOptions(initSchema, options);
  const available = native.distAvailable();
  if (!available[o.backend])
    throw new DistributedError(
      o.backend === 'gloo'
        ? 'this build of torchface has no Gloo: install libgloo-dev (Debian) and rebuild with `npm run build:native`'
        : "this build of torchface has no NCCL (it needs a CUDA libtorch and NCCL's headers when the addon is built); use backend 'gloo'",
    );
  const rdv = rendezvous(o);
  try {
    const h = await native.distInit({ ...rdv.spec, backend: o.backend, isServer: rdv.isServer, rank: rdv.rank, heartbeatMs: HEARTBEAT_MS });
    return new ProcessGroup(h, o.backend, rdv.rank, rdv.worldSize, rdv);
  } catch (e) {
    if (e instanceof TorchfaceError) throw e;
    throw await explainInitFailure(rdv, e);
  }
}

async function explainInitFailure(rdv: Rendezvous, cause: unknown): Promise<DistributedError> {
  const message = (cause as Error)?.message ?? String(cause);
  // Set by the addon when the wait for all ranks timed out.
  const missingRanks = (cause as { missingRanks?: number[] })?.missingRanks;
  if (missingRanks?.length) return notJoined(rdv, missingRanks, cause);
  const keys = [...Array(rdv.worldSize).keys()].map((r) => `torchface/joined/${r}`);
  let joined: (string | null)[] | null = null;
  try {
    joined = await native.distStoreProbe({ ...rdv.spec, timeoutMs: Math.min(rdv.spec.timeoutMs, 2000) }, keys);
  } catch {
    // the store itself is unreachable
  }
  if (!joined) return new DistributedError(`rank ${rdv.rank}: could not reach the store at ${rdv.where} (is rank 0 running, and the address right?): ${message}`, rdv.rank === 0 ? [] : [0], { cause });
  const missing = joined.map((v, r) => (v === null ? r : -1)).filter((r) => r >= 0);
  if (missing.length) return notJoined(rdv, missing, cause);
  return new DistributedError(`rank ${rdv.rank}: every rank joined at ${rdv.where} but the process group could not connect them: ${message}`, [], { cause });
}

function notJoined(rdv: Rendezvous, missing: number[], cause: unknown): DistributedError {
  return new DistributedError(
    `rank ${rdv.rank}: rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${rdv.worldSize} did not join at ${rdv.where} within ${rdv.spec.timeoutMs} ms`,
    missing,
    { cause },
  );
}

function group(g?: ProcessGroup): ProcessGroup {
  const out = g ?? defaultGroup;
  if (!out) throw new DistributedError('no process group: call initProcessGroup() first');
  return out;
}

export function isInitialized(): boolean {
  return defaultGroup !== null;
}
/** Which backends this build of the addon has. */
export function isAvailable(backend: Backend = 'gloo'): boolean {
  return native.distAvailable()[backend];
}
export function getRank(g?: ProcessGroup): number {
  return group(g).rank;
}
export function getWorldSize(g?: ProcessGroup): number {
  return group(g).worldSize;
}
/** This process's rank on its machine (torchrun's LOCAL_RANK; 0 when unset): the GPU to use is cuda:LOCAL_RANK. */
export function getLocalRank(): number {
  return envInt('LOCAL_RANK') ?? 0;
}
export function getBackend(g?: ProcessGroup): Backend {
  return group(g).backend;
}
/** The default group, for code that takes an optional group. */
export function defaultProcessGroup(): ProcessGroup {
  return group();
}

/** Reduces `tensor` across ranks in place (every rank gets the result). */
export function allReduce(tensor: Tensor, options: { op?: ReduceOp; group?: ProcessGroup } = {}): Promise<void> {
  return group(options.group).allReduce(tensor, options);
}
/** Copies rank `src`'s tensor into every rank's `tensor`. */
export function broadcast(tensor: Tensor, options: { src?: number; group?: ProcessGroup } = {}): Promise<void> {
  return group(options.group).broadcast(tensor, options);
}
/** tensorList[i] <- rank i's tensor. */
export function allGather(tensorList: Tensor[], tensor: Tensor, options: { group?: ProcessGroup } = {}): Promise<void> {
  return group(options.group).allGather(tensorList, tensor);
}
export function barrier(options: { group?: ProcessGroup } = {}): Promise<void> {
  return group(options.group).barrier();
}
/** Leaves the default group (or `g`). */
export function destroyProcessGroup(g?: ProcessGroup): void {
  const target = g ?? defaultGroup;
  if (!target) return;
  target.destroy();
  if (target === defaultGroup) defaultGroup = null;
}
