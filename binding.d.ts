// Exact types of what the native addon (build/Release/torchface.node) exports.
// Only lib/native.ts loads the addon; everything else goes through lib/.

/** An opaque handle naming a native at::Tensor (a number: slot index and generation). */
export type TensorHandle = number & { readonly __tensorHandle: unique symbol };
/** An opaque handle around a recorded program (see traceBegin/traceEnd). */
export interface ProgramHandle {
  readonly __programHandle: unique symbol;
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

  /** Starts recording the operators applied to `inputs` (one trace at a time). */
  traceBegin(inputs: TensorHandle[]): void;
  /** Ends the recording; returns a program computing `outputs`, or undefined when outputs is null (abort). */
  traceEnd(outputs: TensorHandle[] | null): ProgramHandle | undefined;
  programInfo(p: ProgramHandle): { instructions: number; inputs: number; outputs: number; ops: string[] };
  /** Replays a program on a worker thread with autograd off. */
  programRun(p: ProgramHandle, inputs: TensorHandle[]): Promise<TensorHandle[]>;
}

declare const binding: Binding;
export default binding;
