// Training face embedding networks with triplet loss (loop.ts), with its options
// and events, data sets, validation, model selection, checkpoints and report.
export { trainFaceModel, trainFaceModelIter, learningRateAt, warmupCosineSchedule, TrainingDivergedError } from './loop';
export type { TrainFaceModelOptions, TrainOptions, TrainEvent, TrainResult, EpochRecord, ValidationMetrics, SelectionRecord, SelectionResult } from './options';
export { checkpointPaths } from './checkpoint';
export { embedFiles, validatePairs, makeValidationPairs, squaredDistance } from './validation';
export type { FilePair } from './validation';
export { selectionBeats } from './selection';
export * from './dataset';
