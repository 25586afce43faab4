// Model files of trained (or fine-tuned) face embedders, with the optional
// verification head and calibration stored alongside: one .safetensors file,
// the network's parameters under their own names, the head's under `head.*`,
// and the metadata (architecture + hyper-parameters, threshold, calibration,
// head variant) in the file's JSON metadata.
//
// Architectures: 'torchface-embedding' (EmbeddingNet, trained from scratch),
// 'faceapi-recognition' (face-api's recognition net, fine-tuned: all weights in
// the file) and 'faceapi-pretrained' (face-api's bundled weights; the file only
// holds a head and calibration, or `pretrained` alone means no file at all).
import { FileFormatError, ModelMismatchError } from '../core/errors';
import { LoadedStateDict, ModelMetadata, loadStateDict, saveStateDict } from '../io/state-dict';
import { Tensor, tidy } from '../core';
import { EmbeddingNet, EmbeddingNetOptions } from '../models/embedding-net';
import { HeadMetadata, VerificationHead } from './head';
import * as F from '../ops';
import { FaceRecognitionNet } from '../models/face-recognition-net';
import { TrainableNetwork, recognitionNetwork, scratchNetwork } from './trainable';

export interface FaceModelFile {
  embedder: TrainableNetwork;
  head: VerificationHead | null;
  metadata: ModelMetadata;
  /** The file it came from (null for 'pretrained'). */
  file: string | null;
}

function splitHead(loaded: LoadedStateDict): { net: Map<string, Tensor>; head: Map<string, Tensor> } {
  const net = new Map<string, Tensor>();
  const head = new Map<string, Tensor>();
  for (const [k, t] of loaded.stateDict) (k.startsWith('head.') ? head.set(k.slice(5), t) : net.set(k, t));
  return { net, head };
}

/** Loads a model file, or face-api's pretrained network for 'pretrained'. */
export async function loadTrainedModel(fileOrPretrained: string, options: { normalize?: boolean } = {}): Promise<FaceModelFile> {
  if (fileOrPretrained === 'pretrained') {
    const net = await FaceRecognitionNet.load();
    return { embedder: recognitionNetwork(net, { normalize: options.normalize, pretrained: true }), head: null, metadata: { architecture: 'faceapi-pretrained' }, file: null };
  }
  const loaded = await loadStateDict(fileOrPretrained);
  // A model with NaN or infinite weights (a diverged training run) would answer every
  // comparison with a NaN distance: refuse it at load, naming the tensor.
  for (const [name, t] of loaded.stateDict) {
    if (!/^(float|bfloat)/.test(t.dtype)) continue;
    const bad = tidy(() => F.logicalNot(F.isfinite(t)).sum().item());
    if (bad > 0) throw new FileFormatError(`${fileOrPretrained}: tensor '${name}' has ${bad} NaN or infinite values (a diverged training run?): refusing to load it`);
  }
  const { net: netState, head: headState } = splitHead(loaded);
  const meta = loaded.metadata;
  let embedder: TrainableNetwork;
  try {
    if (meta.architecture === 'torchface-embedding') {
      const net = new EmbeddingNet(meta.hyperParameters as EmbeddingNetOptions);
      net.loadStateDict(netState);
      embedder = scratchNetwork(net);
    } else if (meta.architecture === 'faceapi-recognition' || meta.architecture === 'faceapi-pretrained') {
      const net = meta.architecture === 'faceapi-pretrained' ? await FaceRecognitionNet.load() : new FaceRecognitionNet();
      if (meta.architecture === 'faceapi-recognition') net.loadStateDict(netState, { strict: false });
      const hp = (meta.hyperParameters ?? {}) as { normalize?: boolean };
      embedder = recognitionNetwork(net, { normalize: options.normalize ?? hp.normalize, pretrained: meta.architecture === 'faceapi-pretrained' });
    } else throw new ModelMismatchError(`${fileOrPretrained}: unknown architecture '${String(meta.architecture)}' (expected torchface-embedding, faceapi-recognition or faceapi-pretrained)`);
    const head = meta.head && headState.size ? VerificationHead.fromStateDict(meta.head as HeadMetadata, headState) : null;
    embedder.module.eval();
    return { embedder, head, metadata: meta, file: fileOrPretrained };
  } finally {
    for (const t of loaded.stateDict.values()) t.dispose();
  }
}

/** Writes a model file (atomically): the embedder's weights (none for 'faceapi-pretrained'), the head under head.*, and the metadata. */
export async function saveTrainedModel(file: string, model: Pick<FaceModelFile, 'embedder' | 'head' | 'metadata'>): Promise<void> {
  const sd = new Map<string, Tensor>();
  const arch = (model.metadata.architecture ?? model.embedder.metadata().architecture) as string;
  if (arch !== 'faceapi-pretrained') for (const [k, t] of model.embedder.module.stateDict()) sd.set(k, t);
  if (model.head) for (const [k, t] of model.head.stateDict()) sd.set(`head.${k}`, t);
  const metadata: ModelMetadata = { ...model.embedder.metadata(), ...model.metadata, architecture: arch };
  if (model.head) metadata.head = model.head.metadata();
  else delete metadata.head;
  await saveStateDict(file, sd, metadata);
}
