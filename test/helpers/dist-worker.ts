// One rank of the distributed tests (test/e2e/distributed.test.ts): started with
// RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT by the test or by launch(); prints
// one JSON line with what it computed. argv[2] is the scenario.
import * as T from '../../lib';

const { distributed: dist, nn, optim } = T;

function out(v: unknown): void {
  process.stdout.write(JSON.stringify(v) + '\n');
}

async function collectives(): Promise<void> {
  const rank = dist.getRank();
  const world = dist.getWorldSize();
  const res: Record<string, unknown> = { rank };
  for (const dtype of ['float32', 'float64', 'int64'] as const) {
    const make = () => T.tensor([rank + 1, -(rank + 1) * 10, 7], { dtype });
    const r: Record<string, number[]> = {};
    for (const op of ['sum', 'max', 'min', 'product'] as const) {
      const t = make();
      await dist.allReduce(t, { op });
      r[op] = Array.from(t.data(), Number);
    }
    if (dtype !== 'int64') {
      const t = make();
      await dist.allReduce(t, { op: 'mean' });
      r.mean = Array.from(t.data(), Number);
    }
    const b = make();
    await dist.broadcast(b, { src: world - 1 });
    r.broadcast = Array.from(b.data(), Number);
    const list = Array.from({ length: world }, () => T.zeros([3], { dtype }));
    await dist.allGather(list, make());
    r.allGather = list.flatMap((t) => Array.from(t.data(), Number));
    res[dtype] = r;
  }
  // A 16 MB tensor: the bulk path.
  const big = T.full([4 * 1024 * 1024], rank + 1);
  await dist.allReduce(big, { op: 'sum' });
  res.bigSum = big.sum().item();
  await dist.barrier();
  out(res);
}

// A model over 1 MiB, so the Reducer makes several buckets.
function makeModel(): T.nn.Module {
  return new nn.Sequential(new nn.Linear(16, 600), new nn.ReLU(), new nn.Linear(600, 600), new nn.Tanh(), new nn.Linear(600, 4));
}

function data(n: number): { x: T.Tensor; y: T.Tensor } {
  // Deterministic and independent of the RNG state.
  const xs = Float32Array.from({ length: n * 16 }, (_, i) => Math.sin(i * 0.37) + 0.1 * Math.cos(i * 1.3));
  const ys = Float32Array.from({ length: n * 4 }, (_, i) => Math.cos(i * 0.11));
  return { x: T.tensor(xs).reshape([n, 16]), y: T.tensor(ys).reshape([n, 4]) };
}

const STEPS = Number(process.env.TEST_STEPS ?? 6);
const B = 8;

function weights(m: T.nn.Module): number[] {
  return m.parameters().flatMap((p) => Array.from(p.data(), Number));
}

/** Rank r trains on rows r*B..(r+1)*B-1 of the 2B-row batch; prints the final weights. */
async function ddp(bucketMb: number): Promise<void> {
  const rank = dist.getRank();
  const world = dist.getWorldSize();
  T.manualSeed(1000 + rank); // different initial weights: the wrap-time broadcast must make them rank 0's
  const model = makeModel();
  const wrapped = new dist.DistributedDataParallel(model, { bucketMb });
  const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const { x, y } = data(B * world);
  const xs = x.narrow(0, rank * B, B);
  const ys = y.narrow(0, rank * B, B);
  for (let s = 0; s < STEPS; s++) {
    opt.zeroGrad();
    const loss = T.mseLoss(wrapped.forward(xs) as T.Tensor, ys);
    loss.backward();
    opt.step();
  }
  out({ rank, buckets: wrapped.buckets, weights: weights(model) });
}

/** The same training in one process with the whole 2B batch (rank 0's initial weights). */
function single(world: number): void {
  T.manualSeed(1000);
  const model = makeModel();
  const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const { x, y } = data(B * world);
  for (let s = 0; s < STEPS; s++) {
    opt.zeroGrad();
    const loss = T.mseLoss(model.forward(x) as T.Tensor, y);
    loss.backward();
    opt.step();
  }
  out({ rank: -1, weights: weights(model) });
}

/** Rank `victim` is killed (SIGKILL) after the first step; the others must fail with a DistributedError naming it. */
async function dies(victim: number): Promise<void> {
  const rank = dist.getRank();
  const t = T.ones([1000]);
  await dist.allReduce(t);
  if (rank === victim) process.kill(process.pid, 'SIGKILL');
  const started = Date.now();
  try {
    for (let i = 0; i < 1000; i++) await dist.allReduce(t);
    out({ rank, error: null });
  } catch (e) {
    const err = e as T.distributed.DistributedError;
    out({ rank, error: err.message, code: err.code, ranks: err.ranks, name: err.name, ms: Date.now() - started });
  }
}

async function main(): Promise<void> {
  const scenario = process.argv[2];
  if (scenario === 'single') return single(Number(process.argv[3] ?? 2));
  const timeoutMs = Number(process.env.TEST_TIMEOUT_MS ?? 20000);
  try {
    await dist.initProcessGroup({ backend: 'gloo', timeoutMs, ...(process.env.TEST_INIT_METHOD ? { initMethod: process.env.TEST_INIT_METHOD } : {}) });
  } catch (e) {
    const err = e as T.distributed.DistributedError;
    out({ rank: Number(process.env.RANK), initError: err.message, code: err.code, ranks: err.ranks });
    return;
  }
  if (scenario === 'collectives') await collectives();
  else if (scenario === 'ddp') await ddp(Number(process.argv[3] ?? 0.5));
  else if (scenario === 'dies') await dies(Number(process.argv[3] ?? 1));
  dist.destroyProcessGroup();
}

main().catch((e) => {
  process.stderr.write(`rank ${process.env.RANK}: ${(e as Error).stack}\n`);
  process.exit(1);
});
