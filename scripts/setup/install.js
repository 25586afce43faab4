#!/usr/bin/env node
// Finds libtorch and builds the native addon with cmake-js (incrementally).
//
// libtorch is looked for, in this order:
//   1. an explicit prefix in LIBTORCH or TORCHFACE_LIBTORCH;
//   2. the CMake prefix of an installed Python `torch` (how the CUDA build is
//      made on a GPU machine);
//   3. Debian's libtorch-dev.
// When none is found and we are root on Debian, libtorch-dev is installed with
// apt. Debian's libtorch also needs OpenBLAS (libopenblas0-openmp), without
// which matmul falls back to reference BLAS, about 10x slower.
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const DEBIAN_TORCH_CMAKE = '/usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake';

function log(msg) {
  process.stderr.write(`torchface: ${msg}\n`);
}

function fail(msg) {
  log(msg);
  process.exit(1);
}

function pythonTorchPrefix() {
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      const out = execFileSync(python, ['-c', 'import torch, os; p = torch.utils.cmake_prefix_path; print(p if os.path.isdir(os.path.join(p, "Torch")) else "")'], {
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 60000,
      })
        .toString()
        .trim();
      if (out) return out;
    } catch {
      /* no torch in this python */
    }
  }
  return null;
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function isDebian() {
  return fs.existsSync('/etc/debian_version');
}

function dpkgInstalled(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function aptInstall(pkgs) {
  log(`installing ${pkgs.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  if (r.status !== 0) fail('apt-get update failed');
  r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
  if (r.status !== 0) fail(`apt-get install ${pkgs.join(' ')} failed`);
}

function findLibtorch() {
  const explicit = process.env.LIBTORCH || process.env.TORCHFACE_LIBTORCH;
  if (explicit) {
    if (!fs.existsSync(explicit)) fail(`LIBTORCH=${explicit} does not exist`);
    // Accept both the libtorch root (with share/cmake/Torch) and a cmake prefix.
    const share = path.join(explicit, 'share', 'cmake');
    return { prefix: fs.existsSync(share) ? share : explicit, source: 'LIBTORCH' };
  }
  const py = pythonTorchPrefix();
  if (py) return { prefix: py, source: 'python torch' };
  if (fs.existsSync(DEBIAN_TORCH_CMAKE)) return { prefix: path.dirname(path.dirname(DEBIAN_TORCH_CMAKE)), source: 'debian' };
  if (isRoot() && isDebian()) {
    aptInstall(['libtorch-dev', 'libopenblas0-openmp', 'libgloo-dev', 'libdnnl-dev']);
    if (fs.existsSync(DEBIAN_TORCH_CMAKE)) return { prefix: path.dirname(path.dirname(DEBIAN_TORCH_CMAKE)), source: 'debian' };
  }
  fail(
    'libtorch was not found. Install it one of these ways and run `npm install` again:\n' +
      '  - on Debian/Ubuntu: sudo apt-get install libtorch-dev libopenblas0-openmp\n' +
      '  - or set LIBTORCH=/path/to/libtorch (the unpacked C++ distribution)\n' +
      '  - or install PyTorch for python3 (its bundled libtorch is used)',
  );
}

// cmake-js would download Node's headers; use the ones installed with Node
// (this machine has no access to nodejs.org).
function nodeHeadersDir() {
  const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..'), '/usr', '/usr/local'];
  for (const dir of candidates) if (dir && fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) return dir;
  fail("Node's C headers were not found (looked for include/node/node_api.h next to node); install nodejs headers or set npm_config_nodedir");
}

function main() {
  if (process.env.TORCHFACE_SKIP_BUILD) return log('TORCHFACE_SKIP_BUILD set: not building the addon');
  const { prefix, source } = findLibtorch();
  if (source === 'debian' && !dpkgInstalled('libopenblas0-openmp')) {
    if (isRoot()) aptInstall(['libopenblas0-openmp']);
    else log('warning: libopenblas0-openmp is not installed; matrix products will be ~10x slower (apt-get install libopenblas0-openmp)');
  }
  // Gloo's headers (libtorch's c10d headers include them) for distributed training.
  if (source === 'debian' && !dpkgInstalled('libgloo-dev')) {
    if (isRoot()) aptInstall(['libgloo-dev']);
    else log('warning: libgloo-dev is not installed; building without distributed training (apt-get install libgloo-dev, then npm run build:native)');
  }
  // oneDNN's headers, for the library Debian's libtorch links: fused convolutions (native/onednn.cc).
  if (source === 'debian' && !dpkgInstalled('libdnnl-dev')) {
    if (isRoot()) aptInstall(['libdnnl-dev']);
    else log('warning: libdnnl-dev is not installed; convolutions go through aten only, slower (apt-get install libdnnl-dev, then npm run build:native)');
  }
  log(`building the addon against libtorch from ${source} (${prefix})`);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, 'compile', '--directory', root, `--CDCMAKE_PREFIX_PATH=${prefix}`, '--parallel', String(Math.max(1, require('os').cpus().length))];
  if (!process.env.TORCHFACE_VERBOSE) args.push('--log-level', 'warn');
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root, env: { ...process.env, npm_config_nodedir: nodeHeadersDir() } });
  if (r.status !== 0) fail('building the native addon failed (see the compiler output above)');
}

main();
