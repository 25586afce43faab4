// Removes dist/ before a TypeScript build, so that a file moved or deleted in
// the sources does not live on as a stale compiled copy (mocha would run a moved
// test twice, and the structure test would see modules that no longer exist).
'use strict';
const fs = require('fs');
const path = require('path');
fs.rmSync(path.join(__dirname, '..', '..', 'dist'), { recursive: true, force: true });
