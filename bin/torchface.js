#!/usr/bin/env node
// The torchface command: a shim over the compiled CLI (npm run build:ts first).
'use strict';
const { main } = require('../dist/cli/torchface.js');
main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`${(e && e.stack) || e}\n`);
    process.exitCode = 1;
  },
);
