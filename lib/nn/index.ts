// torchface.nn: modules, layers and initialisation, named as in torch.nn.
export * from './module';
export * from './layers';
