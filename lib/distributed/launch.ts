// A local launcher, like torchrun on one machine: starts N copies of a script
// with RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and
// MASTER_PORT set, gives each an equal share of the cores (OMP_NUM_THREADS, as
// torchrun does: more libtorch threads than cores makes OpenMP spin), passes
// rank 0's output through and prefixes the others' with [rank r]. When a rank
// fails, the others are stopped after `graceMs` (they normally fail on their
// own at once: their next collective finds the peer gone) and the launch
// rejects with a DistributedError naming the first rank that failed.
import { ChildProcess, spawn } from 'child_process';
import * as net from 'net';
import * as os from 'os';
import { invalid } from '../core/errors';
import { DistributedError } from './process-group';

export interface LaunchOptions {
  /** Processes to start (ranks 0..nproc-1). */
  nproc: number;
  /** The Node script each rank runs, and its arguments. */
  script: string;
  args?: string[];
  /** Rank 0's address (default 127.0.0.1) and port (default: a free one). */
  masterAddr?: string;
  masterPort?: number;
  /** OMP_NUM_THREADS per rank (default: the cores divided by nproc, at least 1; an OMP_NUM_THREADS already set wins). */
  threadsPerProcess?: number;
  /** Extra environment for every rank. */
  env?: NodeJS.ProcessEnv;
  /** How long the other ranks may take to end after one failed (default 10 s), then SIGTERM. */
  graceMs?: number;
  /** Where rank 0's output and the others' prefixed lines go (default: this process's stdout/stderr). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export interface RankExit {
  rank: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}
export interface LaunchResult {
  exits: RankExit[];
  masterPort: number;
}

/** A TCP port that was free a moment ago (for MASTER_PORT). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function prefixLines(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (rest + chunk).split(/\r?\n|\r/);
    rest = lines.pop()!;
    for (const l of lines) if (l.length) out.write(`${prefix}${l}\n`);
  });
  stream.on('end', () => {
    if (rest.length) out.write(`${prefix}${rest}\n`);
  });
}

function describeExit(e: RankExit): string {
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

/** Runs `script` as nproc ranks; resolves when all exit with 0. */
export async function launch(options: LaunchOptions): Promise<LaunchResult> {
  const { nproc, script } = options;
  if (!Number.isInteger(nproc) || nproc < 1 || nproc > 1024) invalid('nproc', 'an integer 1..1024', nproc);
  if (typeof script !== 'string' || !script) invalid('script', 'the path of a Node script', script);
  const masterAddr = options.masterAddr ?? '127.0.0.1';
  const masterPort = options.masterPort ?? (await freePort(masterAddr));
  const threads = options.threadsPerProcess ?? Math.max(1, Math.floor(os.availableParallelism() / nproc));
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const graceMs = options.graceMs ?? 10_000;
  const children: ChildProcess[] = [];
  const exits: (RankExit | null)[] = Array(nproc).fill(null);
  let firstFailure: RankExit | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  const stopAll = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
  };
  const onSignal = (signal: NodeJS.Signals) => stopAll(signal);
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    await new Promise<void>((resolve) => {
      let running = nproc;
      for (let rank = 0; rank < nproc; rank++) {
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          ...options.env,
          RANK: String(rank),
          LOCAL_RANK: String(rank),
          WORLD_SIZE: String(nproc),
          LOCAL_WORLD_SIZE: String(nproc),
          MASTER_ADDR: masterAddr,
          MASTER_PORT: String(masterPort),
          OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? options.env?.OMP_NUM_THREADS ?? String(threads),
          TORCHFACE_LAUNCHED: '1',
        };
        const child = spawn(process.execPath, [...process.execArgv, script, ...(options.args ?? [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        if (rank === 0) {
          child.stdout!.pipe(stdout as NodeJS.WritableStream, { end: false });
          child.stderr!.pipe(stderr as NodeJS.WritableStream, { end: false });
        } else {
          prefixLines(child.stdout!, `[rank ${rank}] `, stdout);
          prefixLines(child.stderr!, `[rank ${rank}] `, stderr);
        }
        child.on('error', (e) => stderr.write(`[rank ${rank}] could not start: ${e.message}\n`));
        child.on('close', (code, signal) => {
          const exit: RankExit = { rank, pid: child.pid ?? -1, code, signal };
          exits[rank] = exit;
          if ((code !== 0 || signal) && !firstFailure) {
            firstFailure = exit;
            killTimer = setTimeout(() => stopAll('SIGTERM'), graceMs);
          }
          if (--running === 0) resolve();
        });
      }
    });
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    if (killTimer) clearTimeout(killTimer);
  }
  const all = exits as RankExit[];
  const failed = firstFailure as RankExit | null;
  if (failed) {
    const others = all.filter((e) => e.rank !== failed.rank && (e.code !== 0 || e.signal)).map((e) => `rank ${e.rank} ${describeExit(e)}`);
    throw new DistributedError(
      `rank ${failed.rank} (pid ${failed.pid}) ${describeExit(failed)}${others.length ? `; then ${others.join(', ')}` : ''}`,
      [failed.rank],
    );
  }
  return { exits: all, masterPort };
}
