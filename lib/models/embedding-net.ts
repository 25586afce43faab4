// A face embedding network trainable from scratch: a small ResNet (from
// lib/models/resnet.ts) whose last linear layer outputs the embedding, which is
// L2-normalised (FaceNet's unit hypersphere). Inputs are N x 3 x S x S images
// with 0..255 values; they are scaled to about [-2, 2] inside forward().
import { invalid } from '../core/errors';
import { Module } from '../nn';
import * as F from '../ops';
import { Tensor, tidy } from '../core';
import { ResNet } from './resnet';

/** The architectures of FaceModel.create() / `npm run train`: ResNet depth, width and stem. */
export const EMBEDDING_ARCHITECTURES = {
  /** 4 BasicBlocks, 16 channels first stage: ~0.2 M parameters, for tests and tiny inputs. */
  'resnet-mini': { depth: [1, 1, 1, 1], width: 16 },
  /** 4 BasicBlocks, 32 channels: ~1.2 M parameters. */
  resnet10: { depth: [1, 1, 1, 1], width: 32 },
  /** torchvision's resnet18 layout at width 32 (~2.8 M parameters). */
  'resnet18-half': { depth: [2, 2, 2, 2], width: 32 },
  /** torchvision's resnet18 (11 M parameters). */
  resnet18: { depth: [2, 2, 2, 2], width: 64 },
} as const;
export type EmbeddingArchitecture = keyof typeof EMBEDDING_ARCHITECTURES;

export interface EmbeddingNetOptions {
  architecture?: EmbeddingArchitecture;
  embeddingDim?: number;
  /** Input side in pixels (32..256; 64-160 is the useful range). */
  inputSize?: number;
  /** 'imagenet' (7x7 stride 2 + max-pool: fast) or 'small' (3x3 stride 1: 16x the compute). Default 'imagenet'. */
  stem?: 'imagenet' | 'small';
  /** L2-normalise the output (default true). */
  normalize?: boolean;
}

export class EmbeddingNet extends Module {
  readonly architecture: EmbeddingArchitecture;
  readonly embeddingDim: number;
  readonly inputSize: number;
  readonly stem: 'imagenet' | 'small';
  readonly normalizeOutput: boolean;
  readonly backbone: ResNet;

  constructor(options: EmbeddingNetOptions = {}) {
    super();
    const architecture = options.architecture ?? 'resnet10';
    const spec = EMBEDDING_ARCHITECTURES[architecture];
    if (!spec) invalid('options.architecture', Object.keys(EMBEDDING_ARCHITECTURES).join(', '), architecture);
    const embeddingDim = options.embeddingDim ?? 128;
    const inputSize = options.inputSize ?? 96;
    if (!Number.isInteger(embeddingDim) || embeddingDim < 2 || embeddingDim > 4096) invalid('options.embeddingDim', 'an integer in [2, 4096]', embeddingDim);
    if (!Number.isInteger(inputSize) || inputSize < 32 || inputSize > 256) invalid('options.inputSize', 'an integer in [32, 256]', inputSize);
    const stem = options.stem ?? 'imagenet';
    this.architecture = architecture;
    this.embeddingDim = embeddingDim;
    this.inputSize = inputSize;
    this.stem = stem;
    this.normalizeOutput = options.normalize ?? true;
    this.backbone = this.registerModule('backbone', new ResNet({ depth: [...spec.depth], width: spec.width, inChannels: 3, inputSize, stem, outFeatures: embeddingDim }));
  }

  /** N x 3 x S x S (0..255) -> N x embeddingDim (unit length unless normalize: false). */
  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[1] !== 3) invalid('x', 'an N x 3 x H x W image batch', x instanceof Tensor ? `shape [${x.shape}]` : x);
    return tidy(() => {
      const scaled = x.sub(127.5).div(64);
      const e = this.backbone.forward(scaled);
      return this.normalizeOutput ? F.normalize(e, 2, 1) : e;
    });
  }

  /** What rebuilds this network (stored in model files). */
  config(): Required<EmbeddingNetOptions> {
    return { architecture: this.architecture, embeddingDim: this.embeddingDim, inputSize: this.inputSize, stem: this.stem, normalize: this.normalizeOutput };
  }

  extraRepr(): string {
    return `architecture=${this.architecture}, embeddingDim=${this.embeddingDim}, inputSize=${this.inputSize}`;
  }
}
