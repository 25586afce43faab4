// torchface: tensors and autograd over libtorch, nn modules and optimizers,
// and face verification, recognition, training and style transfer on top.
//
// The public API, curated: what README and docs/ show, grouped by folder. Internal
// helpers (the addon, tensor handles, the thread scheduler, bench helpers) are not
// exported here; the modules under lib/ are the place to reach them in tests.
// Names: a *Net or *Network is an nn.Module (a network); a *Model is the whole
// pipeline around one (detection, alignment, preprocessing, thresholds).
import { native } from './core/native';
import { packageVersion } from './util/paths';

// ---------------------------------------------------------------- tensors (lib/core, lib/ops)
export { Tensor } from './core/tensor';
export type { DType, TypedArray, NestedArray } from './core/dtype';
export { DTYPES, ELEMENT_SIZE, isFloatingDType } from './core/dtype';
export type { Device } from './core/device';
export { checkDevice } from './core/device';
export * from './core/factories';
export { tidy, keep, dispose, memory, releaseMemory } from './core/memory';
export { noGrad, isGradEnabled, grad } from './core/autograd';
export { trace, traced, setReplayConcurrency } from './core/jit';
export type { TracedFunction, TraceDescription } from './core/jit';
export { setNumThreads, getNumThreads, threadMode } from './core/threads';
// Every operator as a function (the same ops are Tensor methods: x.mul(w).sum()).
export * from './ops';

// ---------------------------------------------------------------- errors (all TorchfaceErrors with a stable `code`)
export { TorchfaceError, TorchError, ArgumentError, DisposedError, ImageError, NoFaceError, ModelMismatchError, FileFormatError, FileAccessError, MissingPackageError } from './core/errors';
export { NativeAddonError } from './core/native';
export { SafetensorsError } from './io/safetensors';
export type { SafetensorsErrorCode } from './io/safetensors';

// ---------------------------------------------------------------- torch.nn, torch.optim, torch.distributed
export * as nn from './nn';
export * as optim from './optim';
export * as distributed from './distributed';
export { saveOptimizer, loadOptimizer } from './optim/serialization';

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

// ---------------------------------------------------------------- model files and imported models (lib/io)
export { saveStateDict, saveStateDictSync, loadStateDict, loadPytorchStateDict, loadTfjsWeights, tensorToRaw, rawToTensor } from './io/state-dict';
export type { ModelMetadata, LoadedStateDict } from './io/state-dict';
export type { StateDict } from './nn/module';
export { loadOnnx, OnnxModule, UnsupportedOperatorError, ONNX_SUPPORTED_OPS } from './io/onnx';
export type { OnnxModelInfo } from './io/onnx';
export { saveOnnx, exportOnnx } from './io/onnx-export';
export type { SaveOnnxOptions } from './io/onnx-export';
export { loadTfjsGraphModel, TfjsGraphModule, UnsupportedTfjsOpError } from './io/tfjs-graph';

// ---------------------------------------------------------------- networks (lib/models)
export { ResNet, BasicBlock, resnet18, resnet34 } from './models/resnet';
export type { ResNetOptions } from './models/resnet';
export { MobileNetV1, MOBILENET_V1_LAYERS, MOBILENET_V1_LAYER_NAMES } from './models/mobilenet-v1';
export type { LayerGeometry } from './models/mobilenet-v1';
export { FaceRecognitionNet, RECOGNITION_INPUT_SIZE, DESCRIPTOR_SIZE } from './models/face-recognition-net';
export { EmbeddingNet, EMBEDDING_ARCHITECTURES } from './models/embedding-net';
export type { EmbeddingArchitecture, EmbeddingNetOptions } from './models/embedding-net';

// ---------------------------------------------------------------- faces (lib/face): the model, detection, alignment
export { FaceModel, embeddingDistance, DISTANCE_METRICS } from './face/model';
export type { FaceModelSpec, EmbeddingNetwork, EmbedOptions, EmbedBatchOptions, PretrainedOptions, VerifyResult, DistanceMetric, FaceOrEmbedding, InputPreprocessing, EmbeddedFace, FaceModelInfo } from './face/model';
export { NETWORKS, NETWORK_NAMES } from './face/networks';
export type { NetworkName, NetworkInfo } from './face/networks';
export { detectFaces, looksLikeFaceCrop, FALLBACK_DEFAULTS } from './face/detect';
export type { DetectedFace, DetectOptions, DetectionStage, DetectorModel, Box, Point } from './face/detect';
export { alignFace, alignLargestFace, DLIB_TEMPLATE } from './face/align';
export type { AlignMethod, AlignOptions, AlignedFace } from './face/align';
// Operating points (false-accept rates per distance), open-set rates, enrolment quality.
export { farAt, thresholdForFar, perComparisonFar, operatingPoints, STANDARD_FARS } from './face/calibration';
export type { OperatingPoints, InputKind, Calibration as ModelCalibration } from './face/calibration';
export { FaceQualityError, QUALITY_DEFAULTS, assessFace, qualityProblems } from './face/quality';
export type { FaceQuality, QualityLimits } from './face/quality';
// Verification metrics and LFW's pair lists.
export { rocCurve, auc, equalErrorRate, thresholdAtFar, accuracyAt, bestAccuracyThreshold, kFoldAccuracy, calibrate, thinRoc, parseLfwPairs, readLfwPairs, lfwImagePath } from './face/metrics';
export type { ScoredPair, RocPoint, FoldResult, Calibration, CalibrateOptions, LfwPair } from './face/metrics';
// Verification as binary classification: a logistic head on pairs of embeddings.
export { VerificationHead, trainVerificationHead } from './face/head';
export type { HeadVariant, HeadMetadata, TrainHeadOptions, TrainHeadResult, HeadSetMetrics } from './face/head';

// ---------------------------------------------------------------- training (lib/face/train, triplet loss)
export { tripletLoss, mineTriplets, pairwiseSquaredDistances, MINING_STRATEGIES } from './face/triplet';
export type { TripletLossOptions, MiningOptions, MiningResult, MiningStrategy, MinedTriplets, TripletReduction } from './face/triplet';
export { trainFaceModel, trainFaceModelIter, learningRateAt, warmupCosineSchedule, TrainingDivergedError, checkpointPaths, embedFiles, validatePairs, makeValidationPairs } from './face/train';
export type { TrainFaceModelOptions, TrainEvent, TrainResult, EpochRecord, ValidationMetrics, SelectionRecord, SelectionResult } from './face/train';
export { scanIdentities, splitByIdentity, PKSampler, loadFaceImage, imagesToBatch, prefetchBatches, prepareAlignedDataset, LFW_FACE_REGION } from './face/train/dataset';
export type { Identity, BatchSpec, AugmentOptions } from './face/train/dataset';
export { scratchNetwork, recognitionNetwork } from './face/trainable';
export type { TrainableNetwork } from './face/trainable';
export { renderTrainingPlot } from './util/plot';

// ---------------------------------------------------------------- galleries (1:K), the service, the photo library
export * from './gallery';
export { clusterFaces, nearestNeighbours, pairwiseScores, CLUSTER_ALGORITHMS, DEFAULT_CLUSTER_THRESHOLD, DEFAULT_CLUSTER_FAR } from './library/cluster';
export type { ClusterAlgorithm, ClusterOptions, ClusterResult, NeighbourGraph } from './library/cluster';
export { PhotoLibrary, UnknownClusterError, UnknownFaceError, CLUSTER_QUALITY } from './library/library';
export type { LibraryClusters, LibraryClusterOptions, ClusterView, ClusterSummary } from './library/library';
export { walkPhotos, PHOTO_EXTENSIONS } from './library/indexer';
export type { IndexOptions, IndexSummary, IndexProgress, PhotoFaceModel } from './library/indexer';
export type { FaceRecord, PhotoRow } from './library/store';

// ---------------------------------------------------------------- style transfer, images
export * as style from './style';
export { loadImage, imageToTensor, tensorToImage, encodePng, savePng, resizeImage, imageGrid, DEFAULT_MAX_PIXELS } from './image';
export type { ImageInput, RawImage, RgbImage, DecodeOptions } from './image';

// ---------------------------------------------------------------- renamed in 0.2 (docs/models.md, "Names"); kept one release
import type { EmbeddingNetwork } from './face/model';
import type { TrainableNetwork } from './face/trainable';
import type { FaceModelLike } from './gallery';
/** @deprecated renamed EmbeddingNetwork */
export type EmbeddingModule = EmbeddingNetwork;
/** @deprecated renamed TrainableNetwork */
export type TrainableEmbedder = TrainableNetwork;
/** @deprecated renamed FaceModelLike */
export type Embedder = FaceModelLike;
export { scratchNetwork as scratchEmbedder } from './face/trainable';
