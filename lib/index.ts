// torchface: tensors and autograd over libtorch, nn modules and optimizers,
// and face verification, recognition, training and style transfer on top.
import { native } from './core/native';
import { packageVersion } from './util/paths';
import { checkDevice } from './core';

export * from './core';
// ops.ts also adds the operator methods to Tensor.prototype (x.add(y), x.sum()).
export * from './ops';
export * from './core/errors';
export { trace, traced, setReplayConcurrency } from './core/jit';
export type { TracedFunction } from './core/jit';
export * as nn from './nn';
export * as optim from './optim';
export * as distributed from './distributed';
export { ResNet, BasicBlock, resnet18, resnet34 } from './models/resnet';
export type { ResNetOptions } from './models/resnet';

export { setNumThreads, getNumThreads, threadMode } from './core/threads';

export const cuda = {
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
  synchronize: (): void => native.cudaSynchronize(),
};

/** Versions of torchface and of the libtorch it was built against. */
export function versions(): { torchface: string; libtorch: string } {
  return { torchface: packageVersion(), libtorch: native.versions().libtorch };
}

/** Text of libtorch's parallel configuration (threads, OpenMP, oneDNN). */
export function parallelInfo(): string {
  return native.versions().parallel;
}

export { checkDevice };
export { FaceDetector, looksLikeFaceCrop, FALLBACK_DEFAULTS } from './face/detect';
export type { DetectedFace, DetectOptions, DetectionStage, DetectorModel, Box, Point } from './face/detect';
export { MobileNetV1, MOBILENET_V1_LAYERS, MOBILENET_V1_LAYER_NAMES } from './models/mobilenet-v1';
export type { LayerGeometry } from './models/mobilenet-v1';
export { alignFace, DLIB_TEMPLATE } from './face/align';
export type { AlignMethod, AlignOptions } from './face/align';
// Triplet training, verification head, calibration and metrics (issue #4).
export { tripletLoss, mineTriplets, pairwiseSquaredDistances, MINING_STRATEGIES } from './face/triplet';
export type { TripletLossOptions, MiningOptions, MiningResult, MiningStrategy, MinedTriplets, TripletReduction } from './face/triplet';
export { detectFaces, alignLargestFace, alignAllFaces, embedLargestFace, facesWithDescriptors, sharedDetector } from './face/pipeline';
export type { AlignedFace } from './face/pipeline';
export { rocCurve, auc, equalErrorRate, thresholdAtFar, accuracyAt, bestAccuracyThreshold, kFoldAccuracy, calibrate, thinRoc, parseLfwPairs, readLfwPairs, lfwImagePath } from './face/metrics';
export type { ScoredPair, RocPoint, FoldResult, Calibration, CalibrateOptions, LfwPair } from './face/metrics';
export { VerificationHead, trainVerificationHead } from './face/head';
export type { HeadVariant, HeadMetadata, TrainHeadOptions, TrainHeadResult, HeadSetMetrics } from './face/head';

export {
  saveStateDict,
  saveStateDictSync,
  loadStateDict,
  loadPytorchStateDict,
  loadTfjsWeights,
  saveOptimizer,
  loadOptimizer,
  tensorToRaw,
  rawToTensor,
} from './io/state-dict';
export type { ModelMetadata, LoadedStateDict } from './io/state-dict';
export { loadTfjsGraphModel, TfjsGraphModule, UnsupportedTfjsOpError } from './io/tfjs-graph';
export * from './gallery';
export { loadOnnx, OnnxModule, UnsupportedOperatorError, ONNX_SUPPORTED_OPS } from './io/onnx';
export type { OnnxModelInfo } from './io/onnx';
export { saveOnnx, exportOnnx } from './io/onnx-export';
export type { SaveOnnxOptions } from './io/onnx-export';
// The photo library: index a folder, cluster faces into people (issue #20).
export { clusterFaces, nearestNeighbours, pairwiseScores, CLUSTER_ALGORITHMS, DEFAULT_CLUSTER_THRESHOLD, DEFAULT_CLUSTER_FAR } from './library/cluster';
export type { ClusterAlgorithm, ClusterOptions, ClusterResult, NeighbourGraph } from './library/cluster';
export { PhotoLibrary, UnknownClusterError, UnknownFaceError, CLUSTER_QUALITY } from './library/library';
export type { LibraryClusters, LibraryClusterOptions, ClusterView, ClusterSummary } from './library/library';
export { walkPhotos, PHOTO_EXTENSIONS } from './library/indexer';
export type { IndexOptions, IndexSummary, IndexProgress, PhotoFaceModel } from './library/indexer';
export type { FaceRecord, PhotoRow } from './library/store';
export { trainFaceModel, trainFaceModelIter, learningRateAt, checkpointPaths, embedFiles, validatePairs, makeValidationPairs, scratchEmbedder } from './face/train/loop';
export type { TrainFaceModelOptions, TrainEvent, TrainResult, EpochRecord, ValidationMetrics, TrainableEmbedder } from './face/train/loop';
export { scanIdentities, splitByIdentity, PKSampler, loadFaceImage, imagesToBatch, prefetchBatches, prepareAlignedDataset, LFW_FACE_REGION } from './face/train/dataset';
export type { Identity, BatchSpec, AugmentOptions } from './face/train/dataset';
export { EmbeddingNet, EMBEDDING_ARCHITECTURES } from './models/embedding-net';
export type { EmbeddingArchitecture, EmbeddingNetOptions } from './models/embedding-net';
export { renderTrainingPlot } from './util/plot';
// Face embeddings and verification (issue #8).
export { FaceModel, embeddingDistance, DISTANCE_METRICS } from './face/model';
export type { EmbeddedFace } from './face/model';
export type { FaceModelInfo } from './face/model';
export { NETWORKS, NETWORK_NAMES } from './face/networks';
export type { NetworkName, NetworkInfo } from './face/networks';
// Operating points (false-accept rates per distance), open-set rates, enrolment quality.
export { farAt, thresholdForFar, perComparisonFar, operatingPoints, STANDARD_FARS } from './face/calibration';
export type { OperatingPoints, InputKind, Calibration as ModelCalibration } from './face/calibration';
export { FaceQualityError, QUALITY_DEFAULTS, assessFace, qualityProblems } from './face/quality';
export type { FaceQuality, QualityLimits } from './face/quality';
export type { FaceModelSpec, EmbeddingModule, EmbedOptions, EmbedBatchOptions, PretrainedOptions, VerifyResult, DistanceMetric, FaceOrEmbedding, InputPreprocessing } from './face/model';
export { FaceRecognitionNet, FusedFaceRecognitionNet, RECOGNITION_INPUT_SIZE, DESCRIPTOR_SIZE, recognitionMacs } from './models/face-recognition-net';
export * as style from './style';
export { loadImage, imageToTensor, tensorToImage, encodePng, savePng, resizeImage, imageGrid, DEFAULT_MAX_PIXELS } from './image';
export type { ImageInput, RawImage, RgbImage, DecodeOptions } from './image';
