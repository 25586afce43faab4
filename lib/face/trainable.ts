// What the trainer (lib/face/train) and model files (model-file.ts) need of a
// network: TrainableNetwork wraps an embedding network with its input size,
// embedding size, the parameters to optimise and the metadata that rebuilds it.
// scratchNetwork() adapts an EmbeddingNet trained from scratch; recognitionNetwork()
// face-api's pretrained recognition net for fine-tuning.
import { ArgumentError } from '../core/errors';
import { Tensor, tidy } from '../core';
import type { Module } from '../nn';
import * as F from '../ops';
import type { EmbeddingNet } from '../models/embedding-net';
import { FaceRecognitionNet, RECOGNITION_BLOCKS, RECOGNITION_INPUT_SIZE } from '../models/face-recognition-net';

/** A network being trained: maps N x 3 x S x S (0..255) to N x D embeddings. */
export interface TrainableNetwork {
  module: Module;
  inputSize: number;
  embeddingDim: number;
  /** Forward pass (train or eval mode is set on `module` by the trainer). */
  embed(x: Tensor): Tensor;
  /** Parameters to optimise (fine-tuning may freeze some). */
  trainableParameters(): Tensor[];
  /** Metadata stored in the model file to rebuild it. */
  metadata(): Record<string, unknown>;
}

/** An EmbeddingNet trained from scratch, as a TrainableNetwork. */
export function scratchNetwork(net: EmbeddingNet): TrainableNetwork {
  return {
    module: net,
    inputSize: net.inputSize,
    embeddingDim: net.embeddingDim,
    embed: (x) => net.forward(x),
    trainableParameters: () => net.parameters().filter((p) => p.requiresGrad),
    metadata: () => ({ architecture: 'torchface-embedding', hyperParameters: net.config() }),
  };
}

/**
 * face-api's recognition network as a TrainableNetwork (150 px input). With
 * `freeze` = n, the stem and the first n residual blocks (of 11) keep their
 * weights: fine-tuning then only adapts the later layers. Embeddings are L2
 * normalised unless `normalize: false` (face-api itself compares raw descriptors).
 */
export function recognitionNetwork(net: FaceRecognitionNet, options: { freeze?: number; normalize?: boolean; pretrained?: boolean } = {}): TrainableNetwork {
  const freeze = options.freeze ?? 0;
  if (!Number.isInteger(freeze) || freeze < 0 || freeze > RECOGNITION_BLOCKS.length) throw new ArgumentError('freeze', `an integer in [0, ${RECOGNITION_BLOCKS.length}]`, freeze);
  const frozen = new Set<string>(['conv32_down', ...RECOGNITION_BLOCKS.slice(0, freeze).map((b) => b[0])]);
  const normalize = options.normalize ?? true;
  if (freeze > 0) for (const [name, p] of net.namedParameters()) if (frozen.has(name.split('.')[0])) p.requiresGrad_(false);
  return {
    module: net,
    inputSize: RECOGNITION_INPUT_SIZE,
    embeddingDim: 128,
    embed: (x) => (normalize ? tidy(() => F.normalize(net.forward(x), 2, 1)) : net.forward(x)),
    trainableParameters: () => net.parameters().filter((p) => p.requiresGrad),
    metadata: () => ({ architecture: options.pretrained ? 'faceapi-pretrained' : 'faceapi-recognition', hyperParameters: { inputSize: RECOGNITION_INPUT_SIZE, embeddingDim: 128, normalize, freeze } }),
  };
}
