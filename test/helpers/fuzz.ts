// A seeded fuzzer of the public tensor API: random functions of lib/core/tensor.ts
// and lib/ops/, random Tensor methods and random ATen operators through
// callOp, called with random arguments: valid tensors of random shapes and
// dtypes, disposed tensors, numbers incl. NaN and infinities, strings, bad
// devices ('cuda' without a GPU), arrays, options objects, undefined, null and
// foreign objects. Every call must either return or throw an Error; what it
// throws is tallied by class, and non-torchface errors are collected with the
// call that caused them.
//
// Run alone to reproduce: node dist/test/helpers/fuzz.js <seed> <calls>
import * as tf from '../../lib';
import { Tensor, TorchfaceError } from '../../lib';
import { rng } from './util';

export interface FuzzReport {
  seed: number;
  calls: number;
  returned: number;
  thrown: Record<string, number>;
  /** Calls that threw something other than a TorchfaceError (first few of each kind). */
  foreign: { call: string; error: string }[];
  /** Calls that threw a value that is not an Error at all. */
  nonErrors: string[];
  ms: number;
}

// The functions under test: everything exported by lib/core/tensor.ts and lib/ops/
// except memory scopes (tidy/keep/dispose would make the run test itself),
// thread settings, internal wrappers and classes.
const EXCLUDE = new Set(['tidy', 'keep', 'dispose', 'setNumThreads', 'wrap', 'wrapResult', 'handleOf', 'Op', 'Tensor', 'describe', 'noGrad', 'trace', 'traced']);
const DTYPES = ['float32', 'float64', 'float16', 'bfloat16', 'int32', 'int64', 'uint8', 'bool', 'int8', 'int16'] as const;
// ATen operators for callOp: a mix of common ones and ones with unusual argument kinds.
const ATEN: [string, string][] = [
  ['aten::add', 'Tensor'],
  ['aten::add', 'Scalar'],
  ['aten::mul', 'Tensor'],
  ['aten::erf', ''],
  ['aten::to', 'device'],
  ['aten::to', 'dtype'],
  ['aten::index', 'Tensor'],
  ['aten::cat', ''],
  ['aten::conv2d', ''],
  ['aten::conv2d', 'padding'],
  ['aten::upsample_bilinear2d', 'vec'],
  ['aten::max_pool2d_with_indices', ''],
  ['aten::native_batch_norm', ''],
  ['aten::sum', 'dim_IntList'],
  ['aten::empty', 'memory_format'],
  ['aten::einsum', ''],
  ['aten::split_with_sizes', ''],
  ['aten::linalg_vector_norm', ''],
  ['aten::nonexistent_op', ''],
  ['aten::add', 'NoSuchOverload'],
];

function ops(): [string, (...a: unknown[]) => unknown][] {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const names = new Set(['tensor', 'factories', 'memory', 'autograd'].flatMap((m) => Object.keys(require(`../../lib/core/${m}`))).concat(Object.keys(require('../../lib/ops'))));
  const out: [string, (...a: unknown[]) => unknown][] = [];
  for (const name of [...names].sort()) {
    const f = (tf as unknown as Record<string, unknown>)[name];
    if (typeof f !== 'function' || EXCLUDE.has(name) || /^class\s/.test(Function.prototype.toString.call(f))) continue;
    out.push([name, f as (...a: unknown[]) => unknown]);
  }
  return out;
}

function methods(): string[] {
  return Object.getOwnPropertyNames(Tensor.prototype)
    .filter((n) => n !== 'constructor' && n !== 'dispose')
    .sort();
}

export function runFuzz(seed: number, calls: number): FuzzReport {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const fnList = ops();
  const methodList = methods();
  const report: FuzzReport = { seed, calls: 0, returned: 0, thrown: {}, foreign: [], nonErrors: [], ms: 0 };
  const foreignKinds = new Map<string, number>();
  tf.manualSeed(seed);

  // Sizes stay small: the fuzzer is after conversion and validation paths, not allocation.
  const shape = (): number[] => Array.from({ length: int(0, 4) }, () => int(0, 4));
  const freshTensor = (): Tensor => {
    const dtype = pick(DTYPES);
    const s = shape();
    try {
      const t = r() < 0.5 ? tf.randn(s, { dtype: r() < 0.7 ? 'float32' : 'float64' }) : tf.zeros(s, { dtype });
      return dtype === 'float32' || dtype === 'float64' ? t : t.to(dtype);
    } catch {
      return tf.ones([2, 3]);
    }
  };
  const disposed = (): Tensor => {
    const t = tf.ones([2]);
    t.dispose();
    return t;
  };
  const NUMBERS = [-3, -1, 0, 1, 2, 3, 4, 0.5, -2.5, NaN, Infinity, -Infinity, -0, 1e20, 2 ** 53, 1e-9];
  const STRINGS = ['cpu', 'cuda', 'cuda:0', 'cuda:1', 'float32', 'int64', 'mean', 'same', 'bilinear', '', 'garbage', '💥', 'constant', 'reflect'];
  const FOREIGN = (): unknown =>
    pick([
      () => Buffer.from([1, 2, 3]),
      () => new Date(0),
      () => new Map(),
      () => () => 1,
      () => Symbol('s'),
      () => 10n,
      () => Object.create(Tensor.prototype),
      () => ({ handle: {} }),
      () => new Proxy({}, {}),
      () => Promise.resolve(1),
      () => new Float32Array([1, 2]),
      () => new Uint16Array([1, 2]),
      () => new ArrayBuffer(8),
      () => ({ __proto__: null }),
      () => [[1, 2], [3]],
      () => ({ toString: () => 'x', valueOf: () => 2 }),
    ])();
  const optionsObject = (): unknown => {
    const o: Record<string, unknown> = {};
    if (r() < 0.5) o.dtype = r() < 0.7 ? pick(DTYPES) : pick(['float8', 5, null, 'cuda']);
    if (r() < 0.4) o.device = pick(['cpu', 'cuda', 'cuda:1', 'tpu', 0, 'cpu:0']);
    if (r() < 0.3) o.requiresGrad = pick([true, false, 'yes']);
    if (r() < 0.3) o.shape = pick([[2, 2], [-1], [1.5], 'x', [4]]);
    for (const k of ['stride', 'padding', 'dilation', 'groups', 'size', 'scaleFactor', 'mode', 'reduction', 'weight', 'training', 'eps', 'keepdim'])
      if (r() < 0.08) o[k] = arg(1);
    return o;
  };
  const arg = (depth = 0): unknown => {
    const u = r();
    if (u < 0.4) return freshTensor();
    if (u < 0.47) return disposed();
    if (u < 0.62) return pick(NUMBERS);
    if (u < 0.67) return pick([true, false]);
    if (u < 0.74) return pick(STRINGS);
    if (u < 0.82) return depth > 1 ? [] : Array.from({ length: int(0, 4) }, () => (r() < 0.7 ? int(-2, 4) : arg(depth + 1)));
    if (u < 0.88) return depth > 1 ? {} : optionsObject();
    if (u < 0.92) return pick([undefined, null]);
    return FOREIGN();
  };

  const t0 = Date.now();
  const describeArg = (a: unknown): string => {
    if (a instanceof Tensor) {
      try {
        return a.isDisposed ? 'Tensor(disposed)' : `Tensor(${a.dtype}[${a.shape}])`;
      } catch {
        return 'Tensor(?)';
      }
    }
    if (typeof a === 'symbol' || typeof a === 'bigint' || typeof a === 'function') return typeof a;
    try {
      return JSON.stringify(a) ?? String(a);
    } catch {
      return Object.prototype.toString.call(a);
    }
  };
  for (let i = 0; i < calls; i++) {
    const args = Array.from({ length: int(0, 5) }, () => arg());
    let label: string;
    let call: () => unknown;
    let self: Tensor | undefined;
    const kind = r();
    if (kind < 0.55) {
      const [name, f] = pick(fnList);
      label = name;
      call = () => f(...args);
    } else if (kind < 0.9) {
      const name = pick(methodList);
      const target = (self = r() < 0.9 ? freshTensor() : disposed());
      label = `Tensor.${name}`;
      call = () => {
        const d = Object.getOwnPropertyDescriptor(Tensor.prototype, name)!;
        if (d.get && (args.length === 0 || !d.set)) return d.get.call(target);
        if (d.set) return d.set.call(target, args[0]);
        return (d.value as (...a: unknown[]) => unknown).apply(target, args);
      };
    } else {
      const [name, overload] = pick(ATEN);
      label = `callOp(${name}.${overload})`;
      call = () => tf.callOp(name, overload, ...(args as Tensor[]));
    }
    report.calls++;
    try {
      const out = call();
      report.returned++;
      if (out instanceof Promise) out.catch(() => undefined);
      tf.dispose(out);
    } catch (e) {
      if (!(e instanceof Error)) {
        if (report.nonErrors.length < 20) report.nonErrors.push(`${label}: threw ${String(e)}`);
        continue;
      }
      const cls = e.constructor.name;
      report.thrown[cls] = (report.thrown[cls] ?? 0) + 1;
      if (!(e instanceof TorchfaceError)) {
        const key = `${label}:${cls}:${e.message.slice(0, 40)}`;
        const n = foreignKinds.get(key) ?? 0;
        foreignKinds.set(key, n + 1);
        if (n === 0 && report.foreign.length < 50) report.foreign.push({ call: `${label}(${args.map(describeArg).join(', ')})`, error: `${cls}: ${e.message}` });
      }
    } finally {
      tf.dispose(args, self);
    }
  }
  report.ms = Date.now() - t0;
  return report;
}

if (require.main === module) {
  const seed = Number(process.argv[2] ?? 1);
  const calls = Number(process.argv[3] ?? 10000);
  process.stdout.write(JSON.stringify(runFuzz(seed, calls), null, 1) + '\n');
}
