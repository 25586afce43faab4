// lib/core: what every other folder builds on — the addon, errors, dtypes and
// devices, the Tensor class with its factories, memory scopes and autograd, traced
// programs (jit) and the thread policy. Modules outside core import from here.
export * from './errors';
export * from './dtype';
export * from './device';
export * from './tensor';
export * from './factories';
export * from './memory';
export * from './autograd';
export * from './jit';
export * from './threads';
export { native } from './native';
