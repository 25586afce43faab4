// Exact types of what the native addon (build/Release/torchface.node) exports.
// Only lib/native.ts loads the addon; everything else goes through lib/.

/** An opaque handle naming a native at::Tensor (a number: slot index and generation). */
export type TensorHandle = number & { readonly __tensorHandle: unique symbol };
/** An opaque handle around a recorded program (see traceBegin/traceEnd). */
export interface ProgramHandle {
  readonly __programHandle: unique symbol;
}

/** An opaque handle around a c10d process group with its store (see distInit). */
export interface ProcessGroupHandle {
  readonly __processGroupHandle: unique symbol;
}
/** An opaque handle around a c10d::Reducer (see distReducer). */
export interface ReducerHandle {
  readonly __reducerHandle: unique symbol;
}
/** Where the ranks meet: a TCPStore (rank 0 hosts it) or a FileStore on a shared path. */
export interface DistStoreSpec {
  store: 'tcp' | 'file';
  host: string;
  port: number;
  path: string;
  timeoutMs: number;
  /** Keys of this group live under this prefix (several groups can share one store). */
  prefix: string;
  worldSize: number;
}

/** One recorded argument: a computed tensor (slot), a captured tensor (const), a tensor list, or a plain value. */
export interface RecordedArgument {
  name: string;
  slot?: number;
  const?: number;
  list?: { slot?: number; const?: number; value?: null }[];
  value?: NativeResult;
}
export interface ProgramDescription {
  inputs: number;
  code: { op: string; args: RecordedArgument[]; outs: number[] }[];
  outputs: RecordedArgument[];
  consts: TensorHandle[];
  constOf: number[];
}

/** A value an ATen operator returns, converted: tensors become handles, tuples and lists arrays. */
export type NativeResult = TensorHandle | null | number | boolean | string | NativeResult[];
/** A value an ATen operator accepts (the schema decides how it is converted). */
export type NativeArg = TensorHandle | null | undefined | number | boolean | string | NativeArg[];

export interface Binding {
  /** Copies the bytes of `view` into a new CPU tensor of the given shape and ScalarType code. */
  fromBuffer(view: ArrayBufferView, shape: number[], dtype: number): TensorHandle;
  /** A contiguous CPU copy of the tensor's elements. */
  toBuffer(t: TensorHandle): ArrayBuffer;
  /** [shape, ScalarType code, device string, requiresGrad] */
  meta(t: TensorHandle): [number[], number, string, boolean];
  /** Releases the tensor's memory now (idempotent; the handle becomes unusable). */
  dispose(t: TensorHandle): void;
  isDisposed(t: TensorHandle): boolean;
  /** Live tensor handles and the bytes they account for. */
  memory(): { tensors: number; bytes: number; peakBytes: number };

  setRequiresGrad(t: TensorHandle, value: boolean): void;
  grad(t: TensorHandle): TensorHandle | null;
  setGrad(t: TensorHandle, grad: TensorHandle | null): void;
  gradFn(t: TensorHandle): string | null;
  isLeaf(t: TensorHandle): boolean;
  retainGrad(t: TensorHandle): void;
  backward(outputs: TensorHandle[], grads: (TensorHandle | null)[], retainGraph: boolean, createGraph: boolean): void;
  autogradGrad(
    outputs: TensorHandle[],
    inputs: TensorHandle[],
    gradOutputs: (TensorHandle | null)[],
    retainGraph: boolean | null,
    createGraph: boolean,
    allowUnused: boolean,
  ): (TensorHandle | null)[];
  /** Sets the calling thread's grad mode; returns the previous one. */
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;

  manualSeed(seed: number): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(): void;
  versions(): { libtorch: string; parallel: string };
  /** Returns freed heap memory to the kernel (glibc malloc_trim); true when some was released. */
  releaseMemory(): boolean;

  /** Id of the ATen operator `name.overload` (overload '' for the default); throws if absent. */
  op(name: string, overload: string): number;
  /** The operator's schema, e.g. "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor". */
  schema(id: number): string;
  /** Calls an operator with positional arguments in schema order; omitted trailing ones take defaults. */
  call(id: number, ...args: NativeArg[]): NativeResult;
  /** add (0, with alpha), sub (1, with alpha), mul (2), div (3) of two tensors, unboxed; undefined while a trace records (use call then). */
  binary(kind: 0 | 1 | 2 | 3, a: TensorHandle, b: TensorHandle, alpha: number): TensorHandle | undefined;
  /** aten::conv1d / conv2d / conv3d (nd 1-3) with numeric padding, unboxed; undefined while a trace records (use call then). */
  conv(nd: 1 | 2 | 3, input: TensorHandle, weight: TensorHandle, bias: TensorHandle | null, stride: number[], padding: number[], dilation: number[], groups: number): TensorHandle | undefined;

  /** Starts recording the operators applied to `inputs` (one trace at a time). */
  traceBegin(inputs: TensorHandle[]): void;
  /** Ends the recording; returns a program computing `outputs`, or undefined when outputs is null (abort). */
  traceEnd(outputs: TensorHandle[] | null): ProgramHandle | undefined;
  programInfo(p: ProgramHandle): { instructions: number; inputs: number; outputs: number; ops: string[] };
  /** The recorded program as data (for exporters); `consts` are new handles (dispose them), constOf[i] the index in `named` of consts[i] or -1. */
  programDescribe(p: ProgramHandle, named: TensorHandle[]): ProgramDescription;
  /** Replays a program on a worker thread with autograd off. */
  /**
   * threads: the intra-op (OpenMP) threads of this replay's worker; 0 or absent: libtorch's setting.
   * shareInputs: read the inputs in place instead of copying them first; a change from `versions`
   * (their tensorVersion when the replay was asked for; default: when it starts) rejects.
   */
  programRun(p: ProgramHandle, inputs: TensorHandle[], threads?: number, shareInputs?: boolean, versions?: number[]): Promise<TensorHandle[]>;
  /** A tensor's version counter (moves on every in-place change). */
  tensorVersion(t: TensorHandle): number;

  // Distributed (native/distributed.cc, libtorch's c10d). Without Gloo at build time every entry but distAvailable throws.
  /** Which c10d backends this build has. */
  distAvailable(): { gloo: boolean; nccl: boolean };
  /** Opens the store, marks this rank joined, waits for all ranks (timeoutMs), builds the process group; a heartbeat thread writes torchface/heartbeat/<rank>. */
  distInit(o: DistStoreSpec & { backend: 'gloo' | 'nccl'; isServer: boolean; rank: number; heartbeatMs: number }): Promise<ProcessGroupHandle>;
  /** A collective, waited for on a worker thread (or on the calling thread with wait = true, then it returns undefined). */
  distCollective(
    g: ProcessGroupHandle,
    kind: 'allreduce' | 'broadcast' | 'allgather' | 'barrier',
    tensors: TensorHandle[],
    outputs: TensorHandle[],
    op: 'sum' | 'product' | 'max' | 'min' | '',
    root: number,
    wait: boolean,
  ): Promise<void> | undefined;
  /** A key of the group's store, or null when absent (never waits). */
  distStoreGet(g: ProcessGroupHandle, key: string): string | null;
  distStoreSet(g: ProcessGroupHandle, key: string, value: string): void;
  /** Reads keys through a fresh store client (diagnosing an init that timed out). */
  distStoreProbe(spec: DistStoreSpec, keys: string[]): Promise<(string | null)[]>;
  /** Stops the heartbeat and releases the process group (idempotent). */
  distDestroy(g: ProcessGroupHandle): void;
  /** A c10d::Reducer over params (gradient buckets of bucketBytes after a 1 MiB first one); returns the bucket count. */
  distReducer(g: ProcessGroupHandle, params: TensorHandle[], bucketBytes: number, findUnusedParameters: boolean): { handle: ReducerHandle; buckets: number };
  /** null: before forward; the forward's output tensors: after it (the next backward all-reduces the gradients). */
  reducerPrepare(r: ReducerHandle, outputs: TensorHandle[] | null): void;
  /** Removes the reducer's autograd hooks. */
  reducerRelease(r: ReducerHandle): void;
}

declare const binding: Binding;
export default binding;
