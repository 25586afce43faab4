// Distributed training over loopback: real processes, libtorch's Gloo.
// Each rank is test/helpers/dist-worker.ts, started with torchrun's variables.
import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import sharp from 'sharp';
import * as T from '../../lib';
import { loadStateDict } from '../../lib/io/state-dict';
import { needs } from '../helpers/peers';
import { DIST_HELPERS } from '../helpers/peers';
import { packageRoot } from '../../lib/util/paths';

const { distributed: dist } = T;
const WORKER = path.join(DIST_HELPERS, 'dist-worker.js');

interface RankOutput {
  rank: number;
  [k: string]: unknown;
}

/** Runs the worker as `world` ranks; resolves to each rank's JSON line (and exit code). */
async function runRanks(world: number, args: string[], env: NodeJS.ProcessEnv = {}, ranks = [...Array(world).keys()]): Promise<{ out: RankOutput | null; code: number | null; signal: string | null; stderr: string }[]> {
  const port = await dist.freePort();
  return Promise.all(
    ranks.map(
      (rank) =>
        new Promise<{ out: RankOutput | null; code: number | null; signal: string | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [WORKER, ...args], {
            env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), OMP_NUM_THREADS: '1', ...env },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (d) => (stdout += d));
          child.stderr.on('data', (d) => (stderr += d));
          child.on('close', (code, signal) => {
            const line = stdout.trim().split('\n').filter(Boolean).pop();
            resolve({ out: line ? (JSON.parse(line) as RankOutput) : null, code, signal, stderr });
          });
        }),
    ),
  );
}

describe('distributed (c10d over loopback)', function () {
  this.timeout(120_000);
  before(function () {
    needs(this, 'gloo');
  });

  it('all-reduces (sum, mean, product, max, min), broadcasts and all-gathers float32, float64 and int64 tensors across 2 processes', async () => {
    const res = await runRanks(2, ['collectives']);
    for (const r of res) assert.equal(r.code, 0, r.stderr);
    for (const { out } of res) {
      // rank r holds [r + 1, -10 (r + 1), 7]
      for (const dtype of ['float32', 'float64', 'int64']) {
        const d = out![dtype] as Record<string, number[]>;
        assert.deepEqual(d.sum, [3, -30, 14], dtype);
        assert.deepEqual(d.max, [2, -10, 7], dtype);
        assert.deepEqual(d.min, [1, -20, 7], dtype);
        assert.deepEqual(d.product, [2, 200, 49], dtype);
        if (dtype !== 'int64') assert.deepEqual(d.mean, [1.5, -15, 7], dtype);
        assert.deepEqual(d.broadcast, [2, -20, 7], `${dtype}: broadcast from rank 1`);
        assert.deepEqual(d.allGather, [1, -10, 7, 2, -20, 7], dtype);
      }
      assert.equal(out!.bigSum, 3 * 4 * 1024 * 1024, '16 MB all-reduce');
    }
  });

  it('meets through a FileStore too (file:// init method)', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tf-dist-')), 'store');
    const res = await runRanks(2, ['collectives'], { TEST_INIT_METHOD: `file://${file}` });
    for (const r of res) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((res[1].out!.float32 as Record<string, number[]>).sum, [3, -30, 14]);
  });

  it('DistributedDataParallel: 2 ranks x batch B give the weights of 1 process with batch 2B (several buckets, different initial weights made equal)', async () => {
    const [ranks, single] = await Promise.all([runRanks(2, ['ddp', '0.5']), runRanks(1, ['single', '2'], {}, [0])]);
    for (const r of [...ranks, ...single]) assert.equal(r.code, 0, r.stderr);
    const w0 = ranks[0].out!.weights as number[];
    const w1 = ranks[1].out!.weights as number[];
    const ws = single[0].out!.weights as number[];
    assert.ok((ranks[0].out!.buckets as number) >= 2, `buckets ${ranks[0].out!.buckets}`);
    assert.equal(w0.length, ws.length);
    let rankDiff = 0;
    let singleDiff = 0;
    for (let i = 0; i < ws.length; i++) {
      rankDiff = Math.max(rankDiff, Math.abs(w0[i] - w1[i]));
      singleDiff = Math.max(singleDiff, Math.abs(w0[i] - ws[i]));
    }
    assert.equal(rankDiff, 0, 'both ranks hold the same weights');
    assert.ok(singleDiff < 1e-5, `max |w_ddp - w_single| = ${singleDiff}`);
    // And training did change the weights (the comparison is not of two untouched copies).
    const init = await runRanks(1, ['single', '2'], { TEST_STEPS: '0' }, [0]);
    assert.equal(init[0].code, 0, init[0].stderr);
    const w00 = init[0].out!.weights as number[];
    assert.ok(ws.some((v, i) => Math.abs(v - w00[i]) > 1e-3), 'training moved the weights');
  });

  it('a killed rank makes the other fail at once with a DistributedError naming it (either rank)', async () => {
    for (const victim of [1, 0]) {
      const res = await runRanks(2, ['dies', String(victim)]);
      const killed = res[victim];
      const survivor = res[1 - victim];
      assert.equal(killed.signal, 'SIGKILL');
      assert.equal(survivor.code, 0, survivor.stderr);
      const o = survivor.out!;
      assert.equal(o.code, 'ERR_DISTRIBUTED', String(o.error));
      assert.equal(o.name, 'DistributedError');
      assert.deepEqual(o.ranks, [victim], String(o.error));
      assert.match(String(o.error), new RegExp(`rank ${victim}`));
      assert.ok((o.ms as number) < 10_000, `failed after ${o.ms} ms`);
    }
  });

  it('a rank that never joins makes the others fail within the timeout, naming it', async () => {
    const t0 = Date.now();
    const res = await runRanks(3, ['collectives'], { TEST_TIMEOUT_MS: '2000' }, [0, 2]);
    assert.ok(Date.now() - t0 < 30_000);
    for (const r of res) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.out!.code, 'ERR_DISTRIBUTED');
      assert.deepEqual(r.out!.ranks, [1], String(r.out!.initError));
      assert.match(String(r.out!.initError), /rank 1 of 3 did not join .* within 2000 ms/);
    }
    // Rank 0 (the store's host) never starts: the others say they cannot reach it.
    const [lonely] = await runRanks(2, ['collectives'], { TEST_TIMEOUT_MS: '1500' }, [1]);
    assert.equal(lonely.out!.code, 'ERR_DISTRIBUTED');
    assert.deepEqual(lonely.out!.ranks, [0]);
    assert.match(String(lonely.out!.initError), /could not reach the store/);
  });

  it('launch() starts N ranks with torchrun variables and reports the first rank that failed', async () => {
    const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
    let text = '';
    const capture = new Writable({
      write: (c, _e, cb) => {
        text += String(c);
        cb();
      },
    });
    const ok = await dist.launch({ nproc: 2, script: WORKER, args: ['collectives'], stdout: capture, stderr: sink() });
    assert.deepEqual(ok.exits.map((e) => e.code), [0, 0]);
    assert.match(text, /^\{"rank":0,/m, "rank 0's output passes through");
    assert.match(text, /^\[rank 1\] \{"rank":1,/m, "the others' lines are prefixed");
    await assert.rejects(dist.launch({ nproc: 2, script: WORKER, args: ['dies', '1'], stdout: sink(), stderr: sink() }), (e: T.distributed.DistributedError) => {
      assert.equal(e.code, 'ERR_DISTRIBUTED');
      assert.deepEqual(e.ranks, [1]);
      assert.match(e.message, /rank 1 \(pid \d+\) was killed by SIGKILL/);
      return true;
    });
  });
});

const TRAIN = path.join(packageRoot, 'dist', 'scripts', 'train.js');

/** A small identity-folder data set of generated 40 px images (no face data needed): 10 identities x 6. */
async function syntheticFaces(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-dist-faces-'));
  for (let id = 0; id < 10; id++) {
    fs.mkdirSync(path.join(dir, `id${id}`));
    for (let k = 0; k < 6; k++) {
      const px = Buffer.alloc(40 * 40 * 3);
      for (let i = 0; i < px.length; i++) px[i] = (Math.sin(i * (0.01 + id * 0.013) + k * 0.2) * 100 + 128 + ((i * 7919 + k * 31) % 23)) & 255;
      await sharp(px, { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(path.join(dir, `id${id}`, `${k}.png`));
    }
  }
  return dir;
}

function runNode(args: string[], env: NodeJS.ProcessEnv = {}): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

describe('npm run train -- --nproc 2 (data-parallel triplet training)', function () {
  this.timeout(240_000);
  let data: string;
  const common = ['--architecture', 'resnet-mini', '--input-size', '32', '--batch-p', '2', '--batch-k', '3', '--steps-per-epoch', '3', '--validation-fraction', '0.2', '--no-select'];
  before(async function () {
    needs(this, 'gloo');
    data = await syntheticFaces();
  });

  it('trains with 2 local ranks, only rank 0 writes, and --resume continues the distributed run', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tf-dist-train-')), 'm.safetensors');
    const first = await runNode([TRAIN, '--data', data, '--out', out, '--epochs', '2', '--nproc', '2', ...common]).done;
    assert.equal(first.code, 0, first.stderr);
    const summary = JSON.parse(first.stdout.slice(first.stdout.indexOf('{\n')));
    assert.equal(summary.ranks, 2);
    assert.equal(summary.model, out);
    assert.ok(fs.existsSync(out) && fs.existsSync(out.replace(/\.safetensors$/, '.ckpt.safetensors')));
    assert.doesNotMatch(first.stdout, /\[rank 1\]/, 'rank 1 prints nothing');
    const resumed = await runNode([TRAIN, '--data', data, '--out', out, '--epochs', '3', '--nproc', '2', '--resume', ...common]).done;
    assert.equal(resumed.code, 0, resumed.stderr);
    const meta = (await loadStateDict(out.replace(/\.safetensors$/, '.ckpt.safetensors'))).metadata.checkpoint as { epoch: number };
    assert.equal(meta.epoch, 2, 'the resumed run trained epoch 3 (index 2) only');
    assert.match(resumed.stdout, /epoch 3: loss/);
    assert.doesNotMatch(resumed.stdout, /epoch 1: loss/);
  });

  it('a rank killed mid-run stops rank 0 with an error naming it; the last checkpoint stays valid', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tf-dist-kill-')), 'm.safetensors');
    const ckpt = out.replace(/\.safetensors$/, '.ckpt.safetensors');
    const port = await dist.freePort();
    const env = (rank: number) => ({ RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), OMP_NUM_THREADS: '1', TORCHFACE_LAUNCHED: '1' });
    const r0 = runNode([TRAIN, '--data', data, '--out', out, '--epochs', '500', ...common], env(0));
    const r1 = runNode([TRAIN, '--data', data, '--out', out, '--epochs', '500', ...common], env(1));
    const t0 = Date.now();
    while (!fs.existsSync(ckpt) && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 100));
    assert.ok(fs.existsSync(ckpt), 'a first checkpoint was written');
    r1.child.kill('SIGKILL');
    const killedAt = Date.now();
    const [a, b] = await Promise.all([r0.done, r1.done]);
    assert.equal(b.signal, 'SIGKILL');
    assert.notEqual(a.code, 0);
    assert.ok(Date.now() - killedAt < 30_000, `rank 0 ended ${Date.now() - killedAt} ms after the kill`);
    assert.match(a.stderr, /DistributedError: rank 0: .*rank 1 stopped answering/);
    const loaded = await loadStateDict(ckpt);
    assert.ok(loaded.stateDict.size > 0 && (loaded.metadata.checkpoint as { epoch: number }).epoch >= 0);
  });
});

describe('distributed (in one process)', () => {
  it('refuses collectives before initProcessGroup, bad init methods and mean of integers', async () => {
    assert.equal(dist.isInitialized(), false);
    assert.throws(() => dist.getRank(), (e: T.distributed.DistributedError) => e.code === 'ERR_DISTRIBUTED' && /initProcessGroup/.test(e.message));
    assert.throws(() => dist.allReduce(T.ones([2])), /initProcessGroup/);
    await assert.rejects(dist.initProcessGroup({ initMethod: 'udp://x:1', rank: 0, worldSize: 1 }), (e: T.ArgumentError) => e.code === 'ERR_ARGUMENT' && /initMethod/.test(e.message));
    await assert.rejects(dist.initProcessGroup({ initMethod: 'tcp://127.0.0.1:1', rank: 2, worldSize: 2 }), /rank below worldSize 2/);
    const saved = { ...process.env };
    delete process.env.RANK;
    try {
      await assert.rejects(dist.initProcessGroup({ initMethod: 'tcp://127.0.0.1:1', worldSize: 1 }), /environment variable RANK/);
    } finally {
      process.env = saved;
    }
  });

  it('a world of one: collectives are identities; mean of int64 is refused; non-contiguous views are refused', async function () {
    needs(this, 'gloo');
    const port = await dist.freePort();
    const g = await dist.newGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 1, timeoutMs: 5000, groupName: 'solo' });
    try {
      const t = T.tensor([1, 2, 3]);
      await g.allReduce(t, { op: 'mean' });
      assert.deepEqual(Array.from(t.data() as Float32Array), [1, 2, 3]);
      await assert.rejects(g.allReduce(T.tensor([1, 2], { dtype: 'int64' }), { op: 'mean' }), (e: T.ArgumentError) => e.code === 'ERR_ARGUMENT');
      const view = T.arange(6).reshape([2, 3]).transpose(0, 1);
      await assert.rejects(async () => g.allReduce(view), /contiguous/);
      await assert.rejects(g.allGather([T.zeros([3])], T.zeros([2])), /tensorList\[0\]/);
      // Collectives hold no handles once settled.
      const before = T.memory().tensors;
      for (let i = 0; i < 5; i++) {
        await g.allReduce(t, { op: 'mean' });
        await g.broadcast(t);
        await g.barrier();
      }
      assert.equal(T.memory().tensors, before);
    } finally {
      g.destroy();
    }
    await assert.rejects(g.barrier(), /destroyed/);
  });

  it('DistributedSampler: per step the ranks get disjoint identities whose union is the batch of a P * worldSize sampler; new shuffle per epoch', () => {
    const ids = Array.from({ length: 20 }, (_, i) => ({ name: `id${i}`, files: Array.from({ length: 5 }, (_, k) => `id${i}/${k}.jpg`) }));
    const world = 2;
    const single = new T.PKSampler(ids, 4 * world, 3, 7);
    const ranks = [0, 1].map((r) => new dist.DistributedSampler(ids, 4, 3, 7, r, world));
    assert.equal(ranks[0].stepsPerEpoch(), single.stepsPerEpoch());
    for (const epoch of [0, 1]) {
      const whole = single.epoch(epoch);
      const parts = ranks.map((s) => s.epoch(epoch));
      whole.forEach((b, step) => {
        const a = new Set(parts[0][step].labels);
        const c = new Set(parts[1][step].labels);
        assert.equal(a.size, 4);
        assert.equal(c.size, 4);
        assert.ok([...a].every((l) => !c.has(l)), 'disjoint identities');
        assert.deepEqual([...parts[0][step].files, ...parts[1][step].files], b.files);
      });
    }
    assert.notDeepEqual(ranks[0].epoch(0)[0].files, ranks[0].epoch(1)[0].files, 'a new shuffle per epoch');
    assert.throws(() => new dist.DistributedSampler(ids, 4, 3, 7, 2, 2), /rank/);
  });
});
