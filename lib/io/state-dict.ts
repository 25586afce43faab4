/**
 * Model files: state dicts (Map<string, Tensor>, PyTorch's dotted names) saved
 * as .safetensors with a JSON metadata block, written atomically; PyTorch
 * .pt/.pth checkpoints and tfjs weight manifests read into state dicts; and
 * optimizer snapshots (so training resumes exactly).
 *
 * The safetensors `__metadata__` of a file written here holds:
 *   format            'pt' (the Hugging Face convention for PyTorch-layout tensors)
 *   torchface.metadata JSON of the caller's metadata (architecture, hyper-parameters, ...)
 *   torchface.versions JSON of { torchface, libtorch }
 * Files from elsewhere load too; their metadata strings are returned as they are.
 */
import { FileFormatError, invalid } from '../core/errors';
import { native } from '../core/native';
import type { StateDict } from '../nn';
import { packageVersion } from '../util/paths';
import { DType, Tensor, dispose, fromBytes, tensor, toBytes, DTYPES } from '../core';
import { WriteFileAtomicOptions, readFileChecked } from './atomic';
import { RawTensor, SafetensorsMetadata, decodeSafetensors, saveSafetensors, saveSafetensorsSync } from './safetensors';
import { readTfjsWeights } from './tfjs';
import { loadTorchStateDictBytesAsync } from './pickle';


/** Versions recorded in every model file. */
export function fileVersions(): { torchface: string; libtorch: string } {
  return { torchface: packageVersion(), libtorch: native.versions().libtorch };
}

/** A tensor as a raw safetensors record (a CPU copy of its bytes; float16/bfloat16 bit-exact). */
export function tensorToRaw(t: Tensor): RawTensor {
  if (!(t instanceof Tensor)) invalid('tensor', 'a Tensor', t);
  return { dtype: t.dtype as RawTensor['dtype'], shape: t.shape, data: toBytes(t) };
}
/** A raw safetensors record as a new CPU tensor (the bytes are copied). */
export function rawToTensor(r: RawTensor): Tensor {
  if (!DTYPES.includes(r.dtype as DType)) invalid('dtype', `one of ${DTYPES.join(', ')}`, r.dtype);
  return fromBytes(r.data, r.shape, r.dtype as DType);
}

export interface ModelMetadata {
  /** e.g. 'resnet18' or a class name. */
  architecture?: string;
  /** Constructor arguments / training settings needed to rebuild the model. */
  hyperParameters?: Record<string, unknown>;
  [key: string]: unknown;
}

function checkStateDict(sd: unknown): Map<string, Tensor> {
  const m = sd instanceof Map ? sd : sd && typeof sd === 'object' ? new Map(Object.entries(sd)) : invalid('stateDict', 'a Map of name to Tensor', sd);
  for (const [k, v] of m) {
    if (typeof k !== 'string' || k === '') invalid('stateDict', 'non-empty string names', k);
    if (!(v instanceof Tensor)) invalid(`stateDict['${k}']`, 'a Tensor', v);
  }
  return m as Map<string, Tensor>;
}

/** @internal */
export function buildMetadata(metadata: ModelMetadata | undefined, extra: Record<string, string> = {}): SafetensorsMetadata {
  if (metadata !== undefined && (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata))) invalid('metadata', 'a plain object', metadata);
  let json: string;
  try {
    json = JSON.stringify(metadata ?? {});
  } catch (e) {
    return invalid('metadata', 'JSON-serialisable values', (e as Error).message);
  }
  return { format: 'pt', 'torchface.metadata': json, 'torchface.versions': JSON.stringify(fileVersions()), ...extra };
}

/** @internal */
export function rawsOf(sd: Map<string, Tensor>): Map<string, RawTensor> {
  const raws = new Map<string, RawTensor>();
  for (const [k, t] of sd) raws.set(k, tensorToRaw(t));
  return raws;
}

/**
 * Saves a state dict (e.g. `model.stateDict()`) as a .safetensors file with
 * metadata, atomically: the previous file stays intact if anything fails.
 */
export async function saveStateDict(file: string, stateDict: StateDict | Record<string, Tensor>, metadata?: ModelMetadata, options?: WriteFileAtomicOptions): Promise<void> {
  if (typeof file !== 'string' || !file) invalid('file', 'a file path', file);
  await saveSafetensors(file, rawsOf(checkStateDict(stateDict)), buildMetadata(metadata), options);
}
/** Synchronous saveStateDict. */
export function saveStateDictSync(file: string, stateDict: StateDict | Record<string, Tensor>, metadata?: ModelMetadata, options?: WriteFileAtomicOptions): void {
  if (typeof file !== 'string' || !file) invalid('file', 'a file path', file);
  saveSafetensorsSync(file, rawsOf(checkStateDict(stateDict)), buildMetadata(metadata), options);
}

export interface LoadedStateDict {
  stateDict: StateDict;
  /** The metadata given to saveStateDict (empty for files written elsewhere). */
  metadata: ModelMetadata;
  /** Versions that wrote the file, if torchface did. */
  versions?: { torchface: string; libtorch: string };
  /** The file's raw safetensors metadata strings. */
  fileMetadata: SafetensorsMetadata;
}

/** @internal */
export function parseJson(s: string | undefined, file: string, key: string): unknown {
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    throw new FileFormatError(`${file}: metadata '${key}' is not valid JSON`);
  }
}

/** @internal */
export function decodeFile(bytes: Uint8Array, file: string): { tensors: Map<string, Tensor>; fileMetadata: SafetensorsMetadata } {
  const decoded = decodeSafetensors(bytes, { source: file });
  const tensors = new Map<string, Tensor>();
  try {
    for (const [k, r] of decoded.tensors) tensors.set(k, rawToTensor(r));
  } catch (e) {
    dispose([...tensors.values()]);
    throw e;
  }
  return { tensors, fileMetadata: decoded.metadata ?? {} };
}

/** Loads a .safetensors state dict (written here, by Python's safetensors, or any other writer) to CPU tensors. */
export async function loadStateDict(file: string, options: { maxBytes?: number } = {}): Promise<LoadedStateDict> {
  if (typeof file !== 'string' || !file) invalid('file', 'a file path', file);
  const bytes = await readFileChecked(file, { maxBytes: options.maxBytes });
  const { tensors, fileMetadata } = decodeFile(bytes, file);
  const metadata = (parseJson(fileMetadata['torchface.metadata'], file, 'torchface.metadata') ?? {}) as ModelMetadata;
  const versions = parseJson(fileMetadata['torchface.versions'], file, 'torchface.versions') as LoadedStateDict['versions'];
  return { stateDict: tensors, metadata, versions, fileMetadata };
}

/**
 * Loads a PyTorch checkpoint written by `torch.save(model.state_dict(), path)`
 * (.pt / .pth, the zip format of PyTorch >= 1.6). Nested dicts give dotted
 * names ('model.conv1.weight' for `torch.save({'model': sd})`). Pickled code is
 * never run: only tensors, storages and dicts are accepted, anything else
 * (custom classes, `os.system`, ...) is a FileFormatError.
 */
export async function loadPytorchStateDict(file: string, options: { maxBytes?: number } = {}): Promise<StateDict> {
  if (typeof file !== 'string' || !file) invalid('file', 'a file path', file);
  const bytes = await readFileChecked(file, { maxBytes: options.maxBytes });
  return loadTorchStateDictBytesAsync(bytes, file);
}

/** Loads a tfjs weights manifest (with its .bin shards) as tensors by tfjs weight name. */
export async function loadTfjsWeights(manifestPath: string): Promise<StateDict> {
  if (typeof manifestPath !== 'string' || !manifestPath) invalid('manifestPath', 'a file path', manifestPath);
  const weights = await readTfjsWeights(manifestPath);
  const out: StateDict = new Map();
  for (const [name, w] of weights) out.set(name, tensor(w.data, { shape: w.shape }));
  return out;
}
