// torchface.optim: optimizers, learning-rate schedulers and gradient clipping,
// named and behaving as torch.optim.
export * from './optimizer';
export * from './sgd';
export * from './adam';
export * from './lbfgs';
export * from './lr-scheduler';
export * from './clip';
export * from './serialization';
