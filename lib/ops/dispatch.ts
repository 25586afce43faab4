// The call into ATen every operator goes through: the argument checks shared by the
// operator families (each names the parameter, as ArgumentError does), one
// cached Op per (name, overload), callOp/callPrivateOp for operators without a
// wrapper, and addTensorMethods, by which each family adds its Tensor methods
// (x.mul(w).sum()) without core/tensor.ts importing any of them (tfjs-core's
// chained ops do the same).
import type { NativeArg, TensorHandle } from '../../binding';
import { TorchError, invalid } from '../core/errors';
import { Op, Tensor, handleOf } from '../core/tensor';


export const h = handleOf;
export const isTensor = (v: unknown): v is Tensor => Tensor.isTensor(v);
/** An options argument: undefined gives {}; anything but an object is an ArgumentError (not a TypeError on o.x). */
export function opts<T extends object>(o: T | undefined, parameter = 'options'): T {
  if (o === undefined) return {} as T;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) invalid(parameter, 'an options object', o);
  return o;
}

export function int(v: unknown, parameter: string): number {
  if (!Number.isInteger(v)) invalid(parameter, 'an integer', v);
  return v as number;
}
export function ints(v: unknown, parameter: string): number[] {
  if (typeof v === 'number') return [int(v, parameter)];
  if (!Array.isArray(v)) invalid(parameter, 'an integer or an array of integers', v);
  for (const e of v) int(e, parameter);
  return v as number[];
}
/** Two integers (a single one repeated), for kernels that read an int[2] without checking its length. */
export function int2(v: unknown, parameter: string): number[] {
  const a = ints(v, parameter);
  if (a.length === 1) return [a[0], a[0]];
  if (a.length !== 2) invalid(parameter, 'an integer or 2 integers', v);
  return a;
}
export function num(v: unknown, parameter: string): number {
  if (typeof v !== 'number' || Number.isNaN(v)) invalid(parameter, 'a number', v);
  return v;
}
export function tensors(v: unknown, parameter: string): TensorHandle[] {
  if (!Array.isArray(v)) invalid(parameter, 'an array of tensors', v);
  return v.map((t, i) => h(t, `${parameter}[${i}]`));
}

// Ops are created once; ids are resolved on first use.
// Two-level cache (name, then overload): no string building on the hot path.
const ops = new Map<string, Map<string, Op>>();
export function op(name: string, overload = ''): Op {
  let byOverload = ops.get(name);
  if (!byOverload) ops.set(name, (byOverload = new Map()));
  let o = byOverload.get(overload);
  if (!o) byOverload.set(overload, (o = new Op(name, overload)));
  return o;
}

/**
 * Calls any ATen operator by schema name, for what has no wrapper yet:
 * callOp('aten::erf', '', x). Arguments are checked against the operator's
 * schema (a Tensor where an int is expected, or the reverse, is an
 * ArgumentError: tensor handles are numbers, so the addon could not tell).
 * Private operators (`aten::_...`) are refused: some crash libtorch 1.13 on
 * inputs it does not check; callPrivateOp is the explicit opt-in.
 */
export function callOp(name: string, overload: string, ...args: CallArg[]): unknown {
  if (typeof name !== 'string') invalid('name', "an operator name such as 'aten::erf'", name);
  if (isPrivate(name)) invalid('name', `a public operator (${name} is private to libtorch: callPrivateOp() opts in)`, name);
  return callChecked(name, overload, args);
}

/**
 * callOp for libtorch's private (`_`-prefixed) operators. They skip checks the
 * public ones make; the inputs known to crash libtorch 1.13 itself are refused here.
 */
export function callPrivateOp(name: string, overload: string, ...args: CallArg[]): unknown {
  if (typeof name !== 'string') invalid('name', "an operator name such as 'aten::_softmax'", name);
  KNOWN_CRASHERS[name]?.(args);
  return callChecked(name, overload, args);
}

/** An argument of callOp: tensors (alone or in lists) where the schema has Tensor, plain values elsewhere. */
export type CallArg = Tensor | NativeArg | (Tensor | null)[];

const isPrivate = (name: string): boolean => /^[a-z_]+::_/.test(name) || name.startsWith('_');

/** Inputs of private operators that crash libtorch 1.13 (found by fuzzing): refused before the call. */
const KNOWN_CRASHERS: Record<string, (args: unknown[]) => void> = {
  'aten::_local_scalar_dense': ([self]) => {
    if (isTensor(self) && self.numel !== 1) invalid('self', 'a tensor with exactly one element', `shape [${self.shape}]`);
  },
  'aten::_reshape_alias': ([self, size, stride]) => {
    // A view must stay inside its tensor's elements (libtorch does not check: reading past them crashes).
    if (!isTensor(self) || !Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length) return;
    let extent = 1;
    for (let i = 0; i < size.length; i++) {
      const n = Number(size[i]);
      const st = Number(stride[i]);
      if (n === 0) return;
      if (st < 0) invalid('stride', 'non-negative strides', stride);
      extent += (n - 1) * st;
    }
    if (extent > self.numel) invalid('size', `a view within the tensor's ${self.numel} elements`, `one spanning ${extent}`);
  },
  'aten::_sparse_coo_tensor_unsafe': () => {
    invalid('name', 'a checked constructor (aten::sparse_coo_tensor validates indices; the unsafe one crashes on bad ones)', 'aten::_sparse_coo_tensor_unsafe');
  },
};

function callChecked(name: string, overload: string, args: CallArg[]): unknown {
  if (typeof overload !== 'string') invalid('overload', "an overload name ('' for the default)", overload);
  const o = op(name, overload);
  let schema: ReturnType<Op['arguments']>;
  try {
    schema = o.arguments();
  } catch (e) {
    throw new TorchError(overload ? `${name}.${overload}` : name, (e as Error).message);
  }
  if (args.length > schema.length) invalid('args', `at most ${schema.length} arguments for ${name}${overload ? '.' + overload : ''}`, args);
  return o.any(...args.map((a, i) => toNativeArg(a, schema[i].type, `${name} argument '${schema[i].name}'`)));
}

/** One argument converted by its schema type; the wrong kind is an ArgumentError naming the argument. */
function toNativeArg(v: unknown, type: string, parameter: string): NativeArg {
  const optional = type.endsWith('?');
  const base = optional ? type.slice(0, -1) : type;
  if (v === undefined || (v === null && optional)) return v as null | undefined;
  const list = /^(.*)\[\d*\]$/.exec(base);
  const elem = list ? list[1] : base;
  const one = (x: unknown, where: string): NativeArg => {
    const t = elem.replace(/\?$/, '');
    if (t === 'Tensor') {
      if (x === null && elem.endsWith('?')) return null;
      return h(x, where);
    }
    if (isTensor(x)) invalid(where, `${/^(int|SymInt)$/.test(t) ? 'an integer' : `a ${t}`}, not a Tensor (the schema says ${type})`, x);
    if (/^(int|SymInt|ScalarType|Layout|MemoryFormat)$/.test(t)) {
      if (typeof x === 'boolean') return x;
      if (!Number.isInteger(x)) invalid(where, 'an integer', x);
    } else if (/^(float|SymFloat)$/.test(t)) {
      if (typeof x !== 'number') invalid(where, 'a number', x);
    } else if (t === 'Scalar') {
      if (typeof x !== 'number' && typeof x !== 'boolean') invalid(where, 'a number', x);
    } else if (t === 'bool') {
      if (typeof x !== 'boolean') invalid(where, 'a boolean', x);
    } else if (t === 'str' || t === 'Device') {
      if (typeof x !== 'string') invalid(where, 'a string', x);
    }
    return x as NativeArg;
  };
  if (!list) return one(v, parameter);
  // "int[2] stride" also takes a single int (or [int]), as in PyTorch: repeated to the schema's
  // length here, because some kernels read all N without checking (mkldnn_reorder_conv2d_weight
  // given [0] as its padding died of SIGFPE). An empty list stays: some schemas mean "default" by it.
  const n = Number(/\[(\d+)\]$/.exec(base)?.[1] ?? 0);
  if (!Array.isArray(v)) {
    if (!/^(int|SymInt)$/.test(elem)) invalid(parameter, `an array (the schema says ${type})`, v);
    return n > 1 ? Array.from({ length: n }, () => one(v, parameter)) : one(v, parameter);
  }
  if (n > 1 && v.length === 1) return Array.from({ length: n }, () => one(v[0], `${parameter}[0]`));
  if (n > 1 && v.length !== 0 && v.length !== n) invalid(parameter, `${n} integers (the schema says ${type})`, v);
  return v.map((x, i) => one(x, `${parameter}[${i}]`));
}


/** Adds operator methods to Tensor.prototype: non-enumerable, like class methods. */
export function addTensorMethods(methods: object): void {
  for (const [name, value] of Object.entries(methods)) {
    Object.defineProperty(Tensor.prototype, name, { value, writable: true, configurable: true, enumerable: false });
  }
}
