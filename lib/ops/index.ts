// Tensor operators with PyTorch's semantics and names (camelCase). Each is a
// thin call into an ATen operator through the dispatcher (dispatch.ts); TypeScript
// checks the argument kinds, libtorch checks shapes and broadcasting and its
// messages are passed on in a TorchError. One file per family; each also adds
// its operators to Tensor.prototype as methods, so importing this module gives
// tensors all their methods.
export { callOp, callPrivateOp } from './dispatch';
export type { CallArg } from './dispatch';
export * from './arith';
export * from './reduce';
export * from './shape';
export * from './conv';
export * from './pool';
export * from './norm';
export * from './loss';
