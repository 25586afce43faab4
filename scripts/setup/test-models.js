#!/usr/bin/env node
// Fetches the third-party ONNX face model the ONNX tests import (a peer, like
// Python torch): faceplugin-face-recognition-js ships fr_feature.onnx, a 512-d
// MobileFaceNet exported from PyTorch 1.10. Its npm package depends on jest,
// webpack and onnxruntime-web, so rather than a devDependency it is `npm pack`ed
// from the npm registry (the only download, at set-up time) and the one file is
// extracted to .cache/test-models/, checked against its SHA-256.
//   npm run setup:test-models
'use strict';
const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const PACKAGE = 'faceplugin-face-recognition-js@0.0.1';
const FILE = 'package/model/fr_feature.onnx';
const SHA256 = '87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581';
const dest = path.resolve(__dirname, '..', '..', '.cache', 'test-models', 'fr_feature.onnx');

const sha = (f) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
if (fs.existsSync(dest) && sha(dest) === SHA256) {
  console.log(`test-models: ${dest} is present`);
  process.exit(0);
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-test-models-'));
try {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const pack = spawnSync(npm, ['pack', PACKAGE, '--silent'], { cwd: tmp, encoding: 'utf8' });
  if (pack.status !== 0) throw new Error(`npm pack ${PACKAGE} failed: ${pack.stderr.trim()}`);
  const tgz = path.join(tmp, pack.stdout.trim().split('\n').pop());
  const tar = spawnSync('tar', ['xzf', tgz, '-C', tmp, FILE], { encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`extracting ${FILE} failed: ${tar.stderr.trim()}`);
  const got = path.join(tmp, FILE);
  if (sha(got) !== SHA256) throw new Error(`${FILE} of ${PACKAGE} does not have the expected SHA-256`);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(got, dest);
  console.log(`test-models: wrote ${dest} (from ${PACKAGE})`);
} catch (e) {
  console.error(`test-models: ${e.message}`);
  process.exit(1);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
