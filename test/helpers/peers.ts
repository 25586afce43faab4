// The one place that finds what some tests compare against or run on ("peers"):
// Python with torch (PyTorch parity), a real PostgreSQL server with pgvector,
// the shared face data, a GPU, Gloo in the addon (distributed training) and a
// system Chromium (the web page's browser test).
// And the one skip rule: a test that needs a
// missing peer is skipped with a line naming the peer and how to get it, and a
// summary at the end of the run counts the skips per peer. With
// TORCHFACE_REQUIRE_PEERS=1 (as CI sets it) a missing peer fails the test
// instead; a comma list (`python-torch,postgres`) requires just those.
//
// Loaded by mocha before the tests (.mocharc.json "require"), so its root hook
// prints the summary.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { facesDir, packageRoot } from '../../lib/util/paths';

/** The Python the parity tests run: TORCHFACE_PYTHON, else the system Python. */
export const PYTHON = process.env.TORCHFACE_PYTHON || '/usr/bin/python3';
/** Folder of the Python reference scripts (the sources, not dist/). */
export const HELPERS = path.join(packageRoot, 'test', 'helpers');
/** The compiled helpers (child-process entry points), beside this file in dist/. */
export const DIST_HELPERS = __dirname;

export type Peer = 'python-torch' | 'postgres' | 'face-data' | 'cuda' | 'gloo' | 'onednn' | 'onnx-face-model' | 'chromium';

/** The browser the web page's test drives (playwright-core, never a downloaded one): TORCHFACE_CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.TORCHFACE_CHROMIUM || '/usr/bin/chromium';

const HOW: Record<Peer, string> = {
  'python-torch': `apt-get install python3-torch (or TORCHFACE_PYTHON=/path/to/python with torch)`,
  postgres: 'DATABASE_URL=postgres://... of a PostgreSQL server with pgvector (.ci/run sets one up)',
  'face-data': 'the shared face data at ../shared/data/faces (or TORCHFACE_FACES_DIR)',
  cuda: 'a GPU and a CUDA build of libtorch (scripts/gpu-check)',
  'onnx-face-model': 'npm run setup:test-models (npm packs faceplugin-face-recognition-js from the registry, keeps its fr_feature.onnx in .cache/test-models)',
  gloo: 'Gloo in the addon: apt-get install libgloo-dev, then npm run build:native (npm install does it as root on Debian)',
  onednn: 'oneDNN convolutions in the addon: apt-get install libdnnl-dev, then npm run build:native (npm install does it as root on Debian; not with a CUDA libtorch)',
  chromium: 'apt-get install chromium (or TORCHFACE_CHROMIUM=/path/to/chromium); .ci/run installs it',
};

const probed = new Map<Peer, string | null>();

/** null when the peer is usable, else why it is not. Probed once per process. */
export function peerMissing(peer: Peer): string | null {
  if (!probed.has(peer)) probed.set(peer, probe(peer));
  return probed.get(peer)!;
}

function probe(peer: Peer): string | null {
  switch (peer) {
    case 'python-torch': {
      const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8', timeout: 120_000 });
      if (r.status === 0) return null;
      const why = (r.error?.message ?? r.stderr ?? '').trim().split('\n').pop();
      return `"${PYTHON} -c 'import torch'" failed (${why})`;
    }
    case 'postgres':
      return process.env.DATABASE_URL ? null : 'DATABASE_URL is not set';
    case 'face-data': {
      const dir = facesDir();
      return dir && fs.existsSync(dir) ? null : 'no face data folder';
    }
    case 'chromium': {
      if (!fs.existsSync(CHROMIUM)) return `no browser at ${CHROMIUM}`;
      try {
        require.resolve('playwright-core');
      } catch {
        return 'playwright-core is not installed (npm install)';
      }
      const r = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8', timeout: 60_000 });
      return r.status === 0 ? null : `"${CHROMIUM} --version" failed (${(r.error?.message ?? r.stderr ?? '').trim().split('\n').pop()})`;
    }
    case 'cuda': {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { cuda } = require('../../lib') as typeof import('../../lib');
      return cuda.isAvailable() ? null : 'CUDA is not available in this build or machine';
    }
    case 'onnx-face-model':
      return fs.existsSync(onnxFaceModelPath()) ? null : `${onnxFaceModelPath()} is absent`;
    case 'gloo': {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { distributed } = require('../../lib') as typeof import('../../lib');
      return distributed.isAvailable('gloo') ? null : 'the addon was built without Gloo (gloo/context.h was not found)';
    }
    case 'onednn': {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { onednnBlock } = require('../../lib') as typeof import('../../lib');
      return onednnBlock() ? null : 'the addon was built without oneDNN convolutions (dnnl.hpp was not found, or a CUDA libtorch)';
    }
  }
}

/** The third-party ONNX face model of the import tests (scripts/setup/test-models.js). */
export function onnxFaceModelPath(): string {
  return path.join(process.env.TORCHFACE_TEST_MODELS || path.join(packageRoot, '.cache', 'test-models'), 'fr_feature.onnx');
}

/** Whether TORCHFACE_REQUIRE_PEERS asks for this peer (CUDA is never required: CI has no GPU). */
export function peerRequired(peer: Peer): boolean {
  const v = (process.env.TORCHFACE_REQUIRE_PEERS ?? '').trim();
  if (!v || v === '0') return false;
  if (v === '1') return peer !== 'cuda';
  return v.split(',').map((s) => s.trim()).includes(peer);
}

const skipped = new Map<Peer, { reason: string; count: number }>();
const announced = new Set<string>();

/**
 * The skip rule. In a `before` hook or a test: skips it (and says which peer is
 * missing and how to get it) when the peer is missing, or throws when the peer
 * is required. Returns normally when the peer is there.
 */
export function needs(ctx: Mocha.Context, peer: Peer): void {
  const why = peerMissing(peer);
  if (!why) return;
  if (peerRequired(peer)) throw new Error(`TORCHFACE_REQUIRE_PEERS: peer ${peer} is missing: ${why}. Get it: ${HOW[peer]}`);
  const s = skipped.get(peer) ?? { reason: why, count: 0 };
  // In a before/beforeEach hook the skip covers the hook's suite; in a test, that test.
  const inHook = (ctx.test as { type?: string } | undefined)?.type === 'hook';
  s.count += inHook ? Math.max(1, countTests(ctx.test?.parent)) : 1;
  skipped.set(peer, s);
  // One line per suite and peer (mocha lists each skipped test as pending anyway).
  const suite = (inHook ? ctx.test?.parent : ctx.currentTest?.parent)?.fullTitle() ?? '';
  if (!announced.has(`${peer}\0${suite}`)) {
    announced.add(`${peer}\0${suite}`);
    console.log(`      (skipped, needs ${peer}: ${why})`);
  }
  ctx.skip();
}

function countTests(suite: Mocha.Suite | undefined): number {
  if (!suite) return 0;
  return suite.tests.length + suite.suites.reduce((n, s) => n + countTests(s), 0);
}

/** Runs a Python script file with arguments (PYTHON); returns stdout, throws with stderr on failure. */
export function runPython(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 64 << 20, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${PYTHON} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return r.stdout;
}

/** Mocha root hook (this file is loaded with --require): the skip summary after the run. */
export const mochaHooks = {
  afterAll(): void {
    if (!skipped.size) return;
    console.log('\n  Skipped for missing peers (the rest of the suite ran):');
    for (const [peer, s] of skipped) console.log(`    ${peer}: ~${s.count} test(s) skipped: ${s.reason}. Get it: ${HOW[peer]}`);
  },
};

/**
 * `needs` for a result that a `before` hook computed with the peer: skips or
 * fails as `needs` does when the peer is missing; with the peer present, a
 * missing result is an error (never a silent pass).
 */
export function reference<T>(ctx: Mocha.Context, peer: Peer, value: T | undefined): T {
  needs(ctx, peer);
  if (value === undefined) throw new Error(`the ${peer} reference produced no result although ${peer} is available`);
  return value;
}
