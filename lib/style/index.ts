// torchface.style: neural style transfer and "what are deep ConvNets learning" visualisations.
export * from './costs';
export * from './features';
export * from './transfer';
export * from './visualize';
export * from './face-features';
