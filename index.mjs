// ESM entry: re-exports the CommonJS build, so `import` and `require` share one
// addon instance and one set of live-tensor counters.
export * from './dist/lib/index.js';
import cjs from './dist/lib/index.js';
export default cjs;
