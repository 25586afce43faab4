// Face recognition 1:K: a durable gallery of enrolled people. FaceGallery
// (sqlite/gallery.ts) keeps its records in a SQLite file and searches an in-memory
// tensor index; PgVectorGallery (pgvector/gallery.ts) keeps both in PostgreSQL + pgvector. The
// public behaviour (validation, embedding, thresholds, the verification head,
// export/import, typed errors) lives here in GalleryBase, once; the two differ
// only in their GalleryBackend.
import * as path from 'path';
import { z } from 'zod';
import { ArgumentError, ModelMismatchError, FileFormatError, NoFaceError, TorchfaceError, describe, invalid, parseOptions } from '../core/errors';
import { InputKind, OperatingPoints, farAt, perComparisonFar, thresholdForFar } from '../face/calibration';
import { FaceQuality, FaceQualityError, QUALITY_DEFAULTS, QualityLimits, qualityProblems } from '../face/quality';
import { ImageInput } from '../image';
import { writeFileAtomic } from '../io/atomic';
import * as fs from 'fs';
import { encodeExport, parseExport } from './export-format';

// Errors ---------------------------------------------------------------------------

/** enroll() of an id that is already enrolled, without `{ append: true }`. */
export class DuplicateIdError extends TorchfaceError {
  override readonly code: string = 'ERR_DUPLICATE_ID';
  constructor(readonly id: string) {
    super(`person '${id}' is already enrolled (pass { append: true } to add images to them)`);
  }
}

/** A person id that is not in the gallery. */
export class UnknownIdError extends TorchfaceError {
  override readonly code: string = 'ERR_UNKNOWN_ID';
  constructor(readonly id: string) {
    super(`person '${id}' is not enrolled in this gallery`);
  }
}

// The model, as the gallery sees it ----------------------------------------------------

/**
 * A verification head: the probability that two embeddings show the same
 * person (lib/face/head.ts's VerificationHead has this shape).
 */
export interface GalleryHead {
  predict(pairs: { a: Float32Array; b: Float32Array }[]): Float32Array | number[] | Promise<Float32Array | number[]>;
  /** Decision threshold on the probability (default 0.5). */
  threshold?: number;
}

/**
 * What a gallery needs from a face model. FaceModel satisfies it; tests use
 * small fakes. `name` + `weightsHash` identify the model: a gallery records
 * them and refuses a different model (ModelMismatchError).
 */
export interface FaceModelLike {
  readonly name: string;
  readonly weightsHash: string;
  /** Embedding length. */
  readonly dim: number;
  /** Default Euclidean distance threshold for "same person". */
  readonly threshold?: number;
  readonly device?: string;
  embedBatch(inputs: ImageInput[], options: { detect: boolean }): Promise<Float32Array[]>;
  readonly head?: GalleryHead | null;
  /** Measured operating points (FaceModel): galleries then choose thresholds by false-accept rate. */
  operatingPoints?(kind?: InputKind, tta?: 'none' | 'flip'): OperatingPoints | null;
  /** Descriptors with input kind, face and quality (FaceModel.embedFaces): used to check enrolments. */
  embedFaces?(inputs: ImageInput[], options: { detect: boolean }): Promise<{ descriptor: Float32Array; kind: InputKind; tta?: 'none' | 'flip'; quality: FaceQuality | null }[]>;
}

export interface ModelIdentity {
  name: string;
  hash: string;
  dim: number;
}

/** Euclidean distance threshold used when neither the options nor the model give one (face-api's 0.6). */
export const DEFAULT_THRESHOLD = 0.6;
/** A gallery's default rate of taking a stranger for somebody. */
export const DEFAULT_GALLERY_FAR = 1e-2;
/** Default ambiguity margin (Euclidean distance; measured with scripts/accuracy.ts, docs/accuracy.md). */
export const DEFAULT_AMBIGUITY_MARGIN = 0.02;

/** The identity of a model: `{ name, hash, dim }` (accepts `identity`, `weightsHash` or `hash`). */
export function modelIdentity(model: unknown): ModelIdentity {
  const m = model as Record<string, unknown> & { identity?: Record<string, unknown> };
  if (!m || typeof m !== 'object' || typeof m.embedBatch !== 'function') invalid('options.model', 'a face model (with embedBatch, name, weightsHash and dim)', model);
  const id = m.identity && typeof m.identity === 'object' ? m.identity : m;
  const name = id.name ?? m.name;
  const hash = id.weightsHash ?? id.hash ?? m.weightsHash ?? m.hash;
  const dim = m.dim ?? id.dim;
  if (typeof name !== 'string' || !name) invalid('options.model.name', 'a non-empty string', name);
  if (typeof hash !== 'string' || !hash) invalid('options.model.weightsHash', 'a non-empty string (hash of the weights)', hash);
  if (!Number.isInteger(dim) || (dim as number) <= 0) invalid('options.model.dim', 'a positive integer', dim);
  return { name, hash, dim: dim as number };
}

function sameModel(a: ModelIdentity, b: ModelIdentity): boolean {
  return a.name === b.name && a.hash === b.hash && a.dim === b.dim;
}
function showModel(m: ModelIdentity): string {
  return `${m.name} (weights ${m.hash.slice(0, 16)}, ${m.dim}-d)`;
}

// Records and results --------------------------------------------------------------

export interface Person {
  id: string;
  metadata: Record<string, unknown>;
  /** Number of embeddings (enrolled images). */
  embeddings: number;
  createdAt: string;
  updatedAt: string;
}

export interface Candidate {
  id: string;
  /** Euclidean distance to the person's closest enrolled embedding. */
  distance: number;
}

export interface IdentifyResult {
  /** The recognised person, or null ("not recognized"). */
  id: string | null;
  /**
   * Why: 'match' (id is set), 'no-match' (nobody close enough), 'ambiguous' (the
   * best two people are too close to tell apart), 'no-face' (no face in the photo).
   */
  reason: 'match' | 'no-match' | 'ambiguous' | 'no-face';
  /** Distance to the closest person (Infinity for an empty gallery). */
  distance: number;
  /** The distance threshold used for this gallery's size (see falseAcceptRate). */
  threshold: number;
  /** Estimated false-accept rate of one comparison at `distance` (calibrated models). */
  far?: number;
  /** The whole gallery's target rate that a stranger is taken for somebody (calibrated models). */
  falseAcceptRate?: number;
  candidates: Candidate[];
  /** The verification head's probability for the best candidate, when the model has a head. */
  probability?: number;
}

export interface GalleryVerifyResult {
  id: string;
  same: boolean;
  distance: number;
  threshold: number;
  /** Estimated false-accept rate of one comparison at `distance` (calibrated models; compare() only). */
  far?: number;
  probability?: number;
}

export interface GalleryJson {
  format: 'torchface-gallery';
  version: 1;
  model: ModelIdentity | null;
  people: { id: string; metadata: Record<string, unknown>; createdAt?: string; embeddings: number[][] }[];
}

/** What a backend stores per person when importing / enrolling. */
export interface PersonData {
  id: string;
  metadata: Record<string, unknown>;
  createdAt?: string;
  embeddings: Float32Array[];
}

/** The storage + search half of a gallery. */
export interface GalleryBackend {
  readModel(): Promise<ModelIdentity | null>;
  writeModel(m: ModelIdentity): Promise<void>;
  /** Adds embeddings; creates the person unless they exist. Atomic. Throws DuplicateIdError when they exist and !append. */
  enroll(id: string, metadata: Record<string, unknown> | undefined, vectors: Float32Array[], append: boolean): Promise<void>;
  /** Inserts many people in one transaction; replace: clear first. Throws DuplicateIdError (nothing written) on a clash unless append. */
  importPeople(people: PersonData[], replace: boolean, append: boolean): Promise<void>;
  remove(id: string): Promise<boolean>;
  list(): Promise<Person[]>;
  get(id: string): Promise<Person | null>;
  embeddingsOf(id: string): Promise<Float32Array[] | null>;
  all(): Promise<PersonData[]>;
  search(queries: Float32Array[], k: number): Promise<Candidate[][]>;
  counts(): Promise<{ people: number; embeddings: number }>;
  close(): Promise<void>;
}

// Options ----------------------------------------------------------------------------

/**
 * Longest person id, in UTF-16 code units (a character outside the BMP, such
 * as an emoji, counts 2). The HTTP service routes ids up to this length.
 */
export const MAX_ID_LENGTH = 256;
/**
 * Characters an id may not hold: control characters (C0, DEL, C1), lone
 * surrogates, and invisible characters that make two ids look alike or
 * reorder how an id is displayed: the bidi controls (U+061C, U+200E/F,
 * U+202A-U+202E, U+2066-U+2069), zero-width space U+200B, word joiner and
 * invisible operators U+2060-U+2064, line/paragraph separators U+2028/9,
 * BOM U+FEFF and the interlinear annotation characters U+FFF9-U+FFFB.
 * (Zero-width (non-)joiners U+200C/D stay allowed: scripts and emoji need them.)
 */
const ID_FORBIDDEN = /[\p{Cc}\p{Cs}\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]/u;
export function checkId(id: unknown, parameter = 'id'): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH || ID_FORBIDDEN.test(id) || id.trim() !== id) {
    invalid(parameter, `a person id: 1 to ${MAX_ID_LENGTH} characters, no control, bidi or invisible formatting characters, no surrounding spaces`, id);
  }
  return id;
}

/** Deepest nesting of metadata (objects and arrays): deeper JSON is refused before it is stored. */
export const MAX_METADATA_DEPTH = 32;
/** Is every object / array in v at most `limit` levels deep? Iterative (no recursion on hostile input). */
export function jsonDepthWithin(v: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (d > limit) return false;
    for (const c of Object.values(x)) if (c !== null && typeof c === 'object') stack.push([c, d + 1]);
  }
  return true;
}

// The depth first (JSON.stringify recurses: 4,200 levels overflowed the stack, a RangeError).
const metadataSchema = z.record(z.unknown()).superRefine((m, ctx) => {
  if (!jsonDepthWithin(m, MAX_METADATA_DEPTH)) ctx.addIssue({ code: 'custom', message: `Expected metadata at most ${MAX_METADATA_DEPTH} levels deep` });
  else if (JSON.stringify(m).length > 65536) ctx.addIssue({ code: 'custom', message: 'Expected metadata of at most 64 KiB as JSON' });
});
const enrollOptions = z
  .object({
    metadata: metadataSchema.optional(),
    append: z.boolean().default(false),
    detect: z.boolean().default(true),
    /** Enrol even a face that fails the quality checks (tiny, blurred, turned, weakly detected). */
    force: z.boolean().default(false),
  })
  .strict();
const falseAcceptRate = z.number().gt(0).lt(1);
const identifyOptions = z
  .object({
    k: z.number().int().min(1).max(1000).default(5),
    threshold: z.number().positive().optional(),
    /** Target rate, for the whole gallery, that a stranger is identified as somebody (calibrated models). */
    falseAcceptRate: falseAcceptRate.optional(),
    detect: z.boolean().default(true),
    /** For identifyEmbeddings: the kind of photo the embeddings came from (default 'colour'). */
    kind: z.enum(['colour', 'greyscale']).optional(),
    /** For identifyEmbeddings: the test-time augmentation they were made with (default: the model's photo pipeline's). */
    tta: z.enum(['none', 'flip']).optional(),
  })
  .strict();
const verifyOptions = z.object({ threshold: z.number().positive().optional(), detect: z.boolean().default(true) }).strict();
const importOptions = z.object({ replace: z.boolean().default(false), append: z.boolean().default(false), force: z.boolean().default(false) }).strict();
export const galleryOptions = z
  .object({
    model: z.unknown().optional(),
    threshold: z.number().positive().optional(),
    falseAcceptRate: falseAcceptRate.default(DEFAULT_GALLERY_FAR),
    ambiguityMargin: z.number().min(0).default(DEFAULT_AMBIGUITY_MARGIN),
    quality: z.object({ minSize: z.number().min(0), minScore: z.number().min(0).max(1), minSharpness: z.number().min(0), maxYaw: z.number().positive() }).partial().strict().optional(),
    /** Use the model's verification head (when it has one) to confirm identify/verify matches. Default true. */
    useHead: z.boolean().default(true),
    head: z.unknown().optional(),
    indexStorage: z.enum(['float32', 'bfloat16']).optional(),
  })
  .passthrough();

export type EnrollOptions = z.input<typeof enrollOptions>;
export type IdentifyOptions = z.input<typeof identifyOptions>;
export type VerifyOptions = z.input<typeof verifyOptions>;
export type ImportOptions = z.input<typeof importOptions>;
export interface GalleryOptions {
  /** The face model (required to enroll / identify / verify images; optional to list, remove, export). */
  model?: FaceModelLike;
  /** Euclidean distance threshold, fixed; default: chosen from falseAcceptRate (calibrated models), else the model's threshold, else 0.6. */
  threshold?: number;
  /**
   * Open-set identification: the target rate at which a stranger is taken for
   * one of the K enrolled people. Turned into the per-comparison rate
   * 1 - (1 - rate)^(1/K) for the gallery's current size, then into a distance
   * with the model's calibration. Default 1e-2.
   */
  falseAcceptRate?: number;
  /** "ambiguous" when the best two people are closer than this in distance (measured: docs/accuracy.md). */
  ambiguityMargin?: number;
  /** Enrolment quality limits (lib/face/quality.ts QUALITY_DEFAULTS). */
  quality?: Partial<QualityLimits>;
  useHead?: boolean;
  /** A verification head to use instead of model.head. */
  head?: GalleryHead;
  /**
   * FaceGallery's in-memory index: 'float32' (default) or 'bfloat16', half the
   * memory, candidates re-ranked exactly (recall and distances measured in README).
   */
  indexStorage?: 'float32' | 'bfloat16';
}

function asInputs(inputs: ImageInput | ImageInput[], parameter: string): ImageInput[] {
  const list = Array.isArray(inputs) ? inputs : [inputs];
  if (list.length === 0) invalid(parameter, 'at least one image', inputs);
  if (list.length > 1000) invalid(parameter, 'at most 1000 images per call', `${list.length} images`);
  return list;
}

function headOf(model: FaceModelLike | undefined, explicit: unknown): GalleryHead | null {
  const h = (explicit ?? model?.head ?? null) as Record<string, unknown> | null;
  if (!h) return null;
  if (typeof h.predict === 'function') return h as unknown as GalleryHead;
  if (explicit !== undefined) invalid('options.head', 'a verification head with predict([{ a, b }])', explicit);
  return null; // a model head of another shape: not used
}

// The gallery ------------------------------------------------------------------------

export abstract class GalleryBase {
  protected model: FaceModelLike | undefined;
  protected identity: ModelIdentity | null = null;
  protected head: GalleryHead | null = null;
  protected thresholdOverride: number | undefined;
  protected falseAcceptRate = DEFAULT_GALLERY_FAR;
  protected ambiguityMargin = DEFAULT_AMBIGUITY_MARGIN;
  protected qualityLimits: QualityLimits = QUALITY_DEFAULTS;
  protected closed = false;

  protected constructor(protected backend: GalleryBackend) {}

  /** Checks / records the model identity. */
  protected async init(options: GalleryOptions): Promise<void> {
    const o = parseOptions(galleryOptions, options);
    this.thresholdOverride = o.threshold;
    this.falseAcceptRate = o.falseAcceptRate;
    this.ambiguityMargin = o.ambiguityMargin;
    this.qualityLimits = { ...QUALITY_DEFAULTS, ...(o.quality ?? {}) };
    const model = o.model as FaceModelLike | undefined;
    const stored = await this.backend.readModel();
    if (model !== undefined) {
      const mine = modelIdentity(model);
      if (stored && !sameModel(stored, mine)) {
        throw new ModelMismatchError(`this gallery was enrolled with ${showModel(stored)}; it cannot be used with ${showModel(mine)}: embeddings of different models are not comparable (re-enroll into a new gallery)`);
      }
      if (!stored) await this.backend.writeModel(mine);
      this.model = model;
      this.identity = mine;
    } else {
      this.identity = stored;
    }
    this.head = o.useHead ? headOf(model, o.head) : null;
  }

  /** Model identity recorded with the gallery (null for a new gallery opened without a model). */
  get modelIdentity(): ModelIdentity | null {
    return this.identity;
  }
  /** Embedding length, once known. */
  get dim(): number | null {
    return this.identity?.dim ?? null;
  }
  /** Default Euclidean distance threshold. */
  get threshold(): number {
    if (this.thresholdOverride !== undefined) return this.thresholdOverride;
    const t = this.model?.threshold;
    if (t === undefined) return DEFAULT_THRESHOLD;
    // Gallery distances are Euclidean; convert a model threshold given in another metric
    // (cosine assumes unit-length embeddings, as face models produce).
    const metric = (this.model as { metric?: string }).metric;
    if (metric === 'squared') return Math.sqrt(t);
    if (metric === 'cosine') return Math.sqrt(2 * t);
    return t;
  }

  protected requireModel(what: string): FaceModelLike {
    this.checkOpen();
    if (!this.model) throw new ArgumentError('options.model', `a face model to ${what} (FaceGallery.open(path, { model }))`, undefined);
    return this.model;
  }
  protected checkOpen(): void {
    if (this.closed) throw new TorchfaceError('the gallery is closed');
  }

  protected checkVectors(vectors: Float32Array[], parameter: string): Float32Array[] {
    const dim = this.identity?.dim;
    vectors.forEach((v, i) => {
      if (!(v instanceof Float32Array)) invalid(`${parameter}[${i}]`, 'a Float32Array', v);
      if (dim !== undefined && v.length !== dim) throw new ModelMismatchError(`${parameter}[${i}] has ${v.length} values; this gallery holds ${dim}-d embeddings of ${this.identity ? showModel(this.identity) : 'its model'}`);
      for (let j = 0; j < v.length; j++) if (!Number.isFinite(v[j])) invalid(`${parameter}[${i}]`, 'finite values', v[j]);
    });
    return vectors;
  }

  protected async embed(inputs: ImageInput[], detect: boolean, parameter: string): Promise<Float32Array[]> {
    return (await this.embedDetailed(inputs, detect, parameter)).map((e) => e.descriptor);
  }

  /** Descriptors with their input kind and face quality, when the model reports them (FaceModel does). */
  protected async embedDetailed(inputs: ImageInput[], detect: boolean, parameter: string): Promise<{ descriptor: Float32Array; kind: InputKind; tta?: 'none' | 'flip'; quality: FaceQuality | null }[]> {
    const model = this.requireModel('embed images');
    const out = model.embedFaces ? await model.embedFaces(inputs, { detect }) : (await model.embedBatch(inputs, { detect })).map((descriptor) => ({ descriptor, kind: 'colour' as InputKind, quality: null }));
    if (!Array.isArray(out) || out.length !== inputs.length) throw new TorchfaceError(`the model returned ${describe(out)} for ${inputs.length} images`);
    this.checkVectors(
      out.map((e) => e.descriptor),
      parameter,
    );
    return out;
  }

  /**
   * The distance threshold for one identification: a fixed one when given, else
   * (calibrated models) the distance whose per-comparison false-accept rate keeps
   * the whole gallery of K people at the target rate, else the model's threshold.
   */
  protected async openSetThreshold(explicit: number | undefined, rate: number | undefined, kind: InputKind, tta?: 'none' | 'flip'): Promise<{ threshold: number; op: OperatingPoints | null; rate?: number }> {
    const op = this.model?.operatingPoints?.(kind, tta) ?? null;
    if (explicit !== undefined) return { threshold: explicit, op };
    if (this.thresholdOverride !== undefined || !op) return { threshold: this.threshold, op };
    const target = rate ?? this.falseAcceptRate;
    const { people } = await this.backend.counts();
    return { threshold: thresholdForFar(op, perComparisonFar(target, people)), op, rate: target };
  }

  /**
   * Enrolls a person from one or more photos (one is enough). By default each
   * photo's largest face is detected and aligned (`detect: false` for face
   * crops). An id that is already enrolled is a DuplicateIdError unless
   * `append: true`, which adds the images to that person (and replaces the
   * metadata when given). Nothing is written when any image fails
   * (NoFaceError, ImageError). Returns the person.
   */
  async enroll(id: string, inputs: ImageInput | ImageInput[], options: EnrollOptions = {}): Promise<Person & { quality?: (FaceQuality | null)[] }> {
    checkId(id);
    const o = parseOptions(enrollOptions, options);
    const list = asInputs(inputs, 'inputs');
    this.requireModel('enroll images');
    // Fail fast on a duplicate before paying for the embeddings (checked again atomically on write).
    if (!o.append && (await this.backend.get(id))) throw new DuplicateIdError(id);
    const found = await this.embedDetailed(list, o.detect, 'embeddings');
    // A poor face enrolled once spoils every later answer for this person: refuse it (force overrides).
    if (!o.force)
      found.forEach((f, i) => {
        const problems = f.quality ? qualityProblems(f.quality, this.qualityLimits) : [];
        if (problems.length) throw new FaceQualityError(problems, f.quality!, list.length > 1 ? `the face in image ${i + 1}` : 'the face');
      });
    await this.backend.enroll(
      id,
      o.metadata,
      found.map((f) => f.descriptor),
      o.append,
    );
    const person = (await this.backend.get(id))!;
    return found.some((f) => f.quality) ? { ...person, quality: found.map((f) => f.quality) } : person;
  }

  /** Enrolls precomputed embeddings (same rules as enroll). */
  async enrollEmbeddings(id: string, embeddings: Float32Array | Float32Array[], options: Omit<EnrollOptions, 'detect'> = {}): Promise<Person> {
    this.checkOpen();
    checkId(id);
    const o = parseOptions(enrollOptions, options);
    const vectors = this.checkVectors(Array.isArray(embeddings) ? embeddings : [embeddings], 'embeddings');
    if (vectors.length === 0) invalid('embeddings', 'at least one embedding', embeddings);
    if (!this.identity) {
      // A gallery without a model learns its dimension from the first embeddings.
      this.identity = { name: 'embeddings', hash: 'none', dim: vectors[0].length };
      this.checkVectors(vectors, 'embeddings');
      await this.backend.writeModel(this.identity);
    }
    await this.backend.enroll(id, o.metadata, vectors, o.append);
    return (await this.backend.get(id))!;
  }

  /**
   * Who is this? The k closest people (each by their closest embedding). `id`
   * is null ("not recognized") when the best distance is above the threshold,
   * or when the verification head says the faces differ.
   */
  async identify(input: ImageInput, options: IdentifyOptions = {}): Promise<IdentifyResult> {
    return (await this.identifyBatch(asInputs(input, 'input').slice(0, 1), options))[0];
  }

  /**
   * identify() for several images, searched together (one matrix product). A photo
   * without a face answers `{ id: null, reason: 'no-face' }`.
   */
  async identifyBatch(inputs: ImageInput[], options: IdentifyOptions = {}): Promise<IdentifyResult[]> {
    const o = parseOptions(identifyOptions, options);
    const list = asInputs(inputs, 'inputs');
    // One batch; when some photo has no face, each photo on its own to tell which.
    type Embedded = Awaited<ReturnType<GalleryBase['embedDetailed']>>[number];
    const embedded: (Embedded | null)[] = await this.embedDetailed(list, o.detect, 'queries').catch((e) =>
      e instanceof NoFaceError ? Promise.all(list.map((input) => this.embedDetailed([input], o.detect, 'query').then((r) => r[0], (e2) => (e2 instanceof NoFaceError ? null : Promise.reject(e2))))) : Promise.reject(e),
    );
    // Photos of each kind and test-time augmentation are decided with their own table.
    const groups = new Map<string, Embedded[]>();
    for (const e of embedded) if (e) groups.set(`${e.kind}/${e.tta}`, [...(groups.get(`${e.kind}/${e.tta}`) ?? []), e]);
    const results = new Map<Embedded, IdentifyResult>();
    for (const group of groups.values()) {
      const rs = await this.decide(
        group.map((f) => f.descriptor),
        o.k,
        o.threshold,
        o.falseAcceptRate,
        group[0].kind,
        group[0].tta,
      );
      group.forEach((f, i) => results.set(f, rs[i]));
    }
    let noFace: IdentifyResult | undefined;
    if (embedded.includes(null)) {
      const { threshold, rate } = await this.openSetThreshold(o.threshold, o.falseAcceptRate, 'colour');
      noFace = { id: null, reason: 'no-face', distance: Infinity, threshold, ...(rate !== undefined ? { falseAcceptRate: rate } : {}), candidates: [] };
    }
    return embedded.map((e) => (e ? results.get(e)! : { ...noFace!, candidates: [] }));
  }

  /** identify() for precomputed embeddings. */
  async identifyEmbeddings(queries: Float32Array[], options: Omit<IdentifyOptions, 'detect'> = {}): Promise<IdentifyResult[]> {
    this.checkOpen();
    const o = parseOptions(identifyOptions, options);
    return this.decide(this.checkVectors(queries, 'queries'), o.k, o.threshold, o.falseAcceptRate, o.kind ?? 'colour', o.tta);
  }

  protected async decide(queries: Float32Array[], k: number, explicit?: number, rate?: number, kind: InputKind = 'colour', tta?: 'none' | 'flip'): Promise<IdentifyResult[]> {
    const { threshold, op, rate: target } = await this.openSetThreshold(explicit, rate, kind, tta);
    // One more candidate than asked, to tell the best two people apart.
    const found = await this.backend.search(queries, Math.max(k, 2));
    const out: IdentifyResult[] = [];
    for (let i = 0; i < queries.length; i++) {
      const candidates = found[i].slice(0, k);
      const [best, second] = found[i];
      const r: IdentifyResult = { id: null, reason: 'no-match', distance: best ? best.distance : Infinity, threshold, candidates };
      if (op && best) r.far = farAt(op, best.distance);
      if (target !== undefined) r.falseAcceptRate = target;
      if (best && best.distance <= threshold) {
        if (second && second.distance - best.distance < this.ambiguityMargin) r.reason = 'ambiguous';
        else {
          r.id = best.id;
          r.reason = 'match';
        }
        if (this.head && r.id) {
          const p = await this.headProbability(queries[i], best.id);
          r.probability = p;
          if (p < (this.head.threshold ?? 0.5)) {
            r.id = null;
            r.reason = 'no-match';
          }
        }
      }
      out.push(r);
    }
    return out;
  }

  private async headProbability(q: Float32Array, id: string): Promise<number> {
    const embs = (await this.backend.embeddingsOf(id)) ?? [];
    if (embs.length === 0) return 0;
    const ps = await this.head!.predict(embs.map((b) => ({ a: q, b })));
    return Math.max(...Array.from(ps));
  }

  /** 1:1: is this the claimed person? UnknownIdError when the id is not enrolled. */
  async verify(input: ImageInput, claimedId: string, options: VerifyOptions = {}): Promise<GalleryVerifyResult> {
    checkId(claimedId, 'claimedId');
    const o = parseOptions(verifyOptions, options);
    this.requireModel('verify images');
    const embs = await this.backend.embeddingsOf(claimedId);
    if (!embs) throw new UnknownIdError(claimedId);
    const [q] = await this.embed(asInputs(input, 'input').slice(0, 1), o.detect, 'query');
    return this.verifyAgainst(q, claimedId, embs, o.threshold ?? this.threshold);
  }

  /** verify() for a precomputed embedding. */
  async verifyEmbedding(query: Float32Array, claimedId: string, options: Omit<VerifyOptions, 'detect'> = {}): Promise<GalleryVerifyResult> {
    this.checkOpen();
    checkId(claimedId, 'claimedId');
    const o = parseOptions(verifyOptions, options);
    const [q] = this.checkVectors([query], 'query');
    const embs = await this.backend.embeddingsOf(claimedId);
    if (!embs) throw new UnknownIdError(claimedId);
    return this.verifyAgainst(q, claimedId, embs, o.threshold ?? this.threshold);
  }

  private async verifyAgainst(q: Float32Array, id: string, embs: Float32Array[], threshold: number): Promise<GalleryVerifyResult> {
    let distance = Infinity;
    for (const e of embs) distance = Math.min(distance, euclidean(q, e));
    const r: GalleryVerifyResult = { id, same: distance <= threshold, distance, threshold };
    if (this.head && r.same) {
      r.probability = await this.headProbability(q, id);
      r.same = r.probability >= (this.head.threshold ?? 0.5);
    }
    return r;
  }

  /** 1:1 between two photos (no gallery lookup): same person? Same threshold and head rules as verify(). */
  async compare(a: ImageInput, b: ImageInput, options: VerifyOptions = {}): Promise<Omit<GalleryVerifyResult, 'id'>> {
    const o = parseOptions(verifyOptions, options);
    const [da, db] = await this.embedDetailed([a, b], o.detect, 'images');
    const [ea, eb] = [da.descriptor, db.descriptor];
    const threshold = o.threshold ?? this.threshold;
    const distance = euclidean(ea, eb);
    const r: Omit<GalleryVerifyResult, 'id'> = { same: distance <= threshold, distance, threshold };
    // The estimated false-accept rate of this distance (calibrated models), from the table of the photos' kind.
    const op = this.model?.operatingPoints?.(da.kind === 'greyscale' || db.kind === 'greyscale' ? 'greyscale' : 'colour', da.tta === 'none' && db.tta === 'none' ? 'none' : 'flip');
    if (op) r.far = farAt(op, distance);
    if (this.head && r.same) {
      r.probability = Number((await this.head.predict([{ a: ea, b: eb }]))[0]);
      r.same = r.probability >= (this.head.threshold ?? 0.5);
    }
    return r;
  }

  /** Removes a person and their embeddings. UnknownIdError when not enrolled. */
  async remove(id: string): Promise<void> {
    this.checkOpen();
    checkId(id);
    if (!(await this.backend.remove(id))) throw new UnknownIdError(id);
  }

  /** Every enrolled person, by id. */
  async list(): Promise<Person[]> {
    this.checkOpen();
    return this.backend.list();
  }

  /** One person, or null when not enrolled. */
  async get(id: string): Promise<Person | null> {
    this.checkOpen();
    checkId(id);
    return this.backend.get(id);
  }

  async has(id: string): Promise<boolean> {
    return (await this.get(id)) !== null;
  }

  /** Number of people and embeddings. */
  async counts(): Promise<{ people: number; embeddings: number }> {
    this.checkOpen();
    return this.backend.counts();
  }

  /** The enrolled embeddings of one person (copies), or null. */
  async embeddingsOf(id: string): Promise<Float32Array[] | null> {
    this.checkOpen();
    checkId(id);
    return this.backend.embeddingsOf(id);
  }

  /**
   * Everything in the gallery: `{ format: 'json' }` (default) gives a
   * GalleryJson object, `{ format: 'safetensors' }` the bytes of a safetensors
   * file (tensor `embeddings` [N, dim] float32 and `person` int32 [N]; people,
   * metadata and the model identity in the header metadata).
   */
  async export(options?: { format?: 'json' }): Promise<GalleryJson>;
  async export(options: { format: 'safetensors' }): Promise<Uint8Array>;
  async export(options: { format?: 'json' | 'safetensors' } = {}): Promise<GalleryJson | Uint8Array> {
    this.checkOpen();
    const format = options.format ?? 'json';
    if (format !== 'json' && format !== 'safetensors') invalid('options.format', "'json' or 'safetensors'", format);
    return encodeExport(this.identity, await this.backend.all(), format);
  }

  /** Writes export() to a file atomically: `.json` as JSON, anything else as safetensors. */
  async exportFile(file: string): Promise<void> {
    const json = path.extname(file).toLowerCase() === '.json';
    const data = json ? JSON.stringify(await this.export({ format: 'json' })) : await this.export({ format: 'safetensors' });
    await writeFileAtomic(file, data);
  }

  /**
   * Adds the people of an export (GalleryJson, its JSON text, or safetensors
   * bytes) in one transaction. A different model is a ModelMismatchError
   * (unless force); an id already enrolled is a DuplicateIdError unless
   * `append` (add the embeddings) or `replace` (empty the gallery first).
   * Returns the number of people imported.
   */
  async import(data: GalleryJson | string | Uint8Array, options: ImportOptions = {}): Promise<number> {
    this.checkOpen();
    const o = parseOptions(importOptions, options);
    const { model, people } = parseExport(data);
    if (model && this.identity && !sameModel(model, this.identity) && !o.force) {
      throw new ModelMismatchError(`the export was made with ${showModel(model)}; this gallery holds ${showModel(this.identity)}`);
    }
    const dim = this.identity?.dim ?? model?.dim ?? people[0]?.embeddings[0]?.length;
    for (const p of people) {
      checkId(p.id, 'people[].id');
      for (const e of p.embeddings) {
        if (e.length !== dim) throw new ModelMismatchError(`the export holds ${e.length}-d embeddings for '${p.id}'; this gallery holds ${dim}-d embeddings`);
        for (let j = 0; j < e.length; j++) if (!Number.isFinite(e[j])) throw new FileFormatError(`the export holds a non-finite value in '${p.id}'`);
      }
    }
    if (!this.identity && dim !== undefined) {
      this.identity = model ?? { name: 'embeddings', hash: 'none', dim };
      await this.backend.writeModel(this.identity);
    }
    await this.backend.importPeople(people, o.replace, o.append);
    return people.length;
  }

  /** import() from a file written by exportFile() (JSON or safetensors). */
  async importFile(file: string, options: ImportOptions = {}): Promise<number> {
    const bytes = await fs.promises.readFile(file);
    return this.import(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), options);
  }

  /** Closes the store and frees the index. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.backend.close();
  }
}

export function euclidean(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return Math.sqrt(s);
}
