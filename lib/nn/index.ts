// torchface.nn: Module, initialisation, and the layers, named as in torch.nn.
export * from './module';
export * from './init';
export type { FactoryOptions } from './options';
export * from './linear';
export * from './conv';
export * from './normalization';
export * from './activation';
export * from './pooling';
export * from './containers';
