// The gallery export format (GalleryBase.export / import, `torchface` files):
// JSON (`{ format: 'torchface-gallery', version: 1, model, people }`) or
// safetensors (embeddings float32 [N, dim], person int32 [N], the people and the
// model in the metadata). One reader accepts either.
import { z } from 'zod';
import { FileFormatError } from '../core/errors';
import { decodeSafetensors, encodeSafetensors, fromTypedArray, packMetadata, toTypedArray, unpackMetadata } from '../io/safetensors';
import type { GalleryJson, ModelIdentity, PersonData } from './gallery';

/** The people of a gallery in one of the export formats. */
export function encodeExport(identity: ModelIdentity | null, people: PersonData[], format: 'json' | 'safetensors'): GalleryJson | Uint8Array {
  if (format === 'json') {
    return {
      format: 'torchface-gallery',
      version: 1,
      model: identity,
      people: people.map((p) => ({ id: p.id, metadata: p.metadata, createdAt: p.createdAt, embeddings: p.embeddings.map((e) => Array.from(e)) })),
    };
  }
  const dim = identity?.dim ?? 0;
  const n = people.reduce((s, p) => s + p.embeddings.length, 0);
  const flat = new Float32Array(n * dim);
  const owner = new Int32Array(n);
  let r = 0;
  people.forEach((p, i) => {
    for (const e of p.embeddings) {
      flat.set(e, r * dim);
      owner[r++] = i;
    }
  });
  return encodeSafetensors(
    { embeddings: fromTypedArray('float32', [n, dim], flat), person: fromTypedArray('int32', [n], owner) },
    packMetadata({ format: 'torchface-gallery', version: 1, model: identity, people: people.map((p) => ({ id: p.id, metadata: p.metadata, createdAt: p.createdAt })) }),
  );
}

const jsonExport = z.object({
  format: z.literal('torchface-gallery'),
  version: z.literal(1),
  model: z.object({ name: z.string(), hash: z.string(), dim: z.number().int().positive() }).nullable(),
  people: z.array(z.object({ id: z.string(), metadata: z.record(z.unknown()).default({}), createdAt: z.string().optional(), embeddings: z.array(z.array(z.number())) })),
});

/** The model and people of an export (GalleryJson, its JSON text, or safetensors bytes); FileFormatError when it is none. */
export function parseExport(data: GalleryJson | string | Uint8Array): { model: ModelIdentity | null; people: PersonData[] } {
  if (data instanceof Uint8Array && data[0] !== 0x7b) {
    let dec;
    try {
      dec = decodeSafetensors(data);
    } catch (e) {
      throw new FileFormatError(`not a gallery export: ${(e as Error).message}`);
    }
    const meta = unpackMetadata(dec.metadata ?? {});
    const embT = dec.tensors.get('embeddings');
    const ownT = dec.tensors.get('person');
    if (meta.format !== 'torchface-gallery' || !embT || !ownT || embT.dtype !== 'float32' || ownT.dtype !== 'int32' || embT.shape.length !== 2) {
      throw new FileFormatError('not a torchface gallery export (expected tensors embeddings float32 [N, dim] and person int32 [N] and format metadata)');
    }
    const list = meta.people as { id: string; metadata?: Record<string, unknown>; createdAt?: string }[];
    if (!Array.isArray(list)) throw new FileFormatError('gallery export: people metadata missing');
    const [n, dim] = embT.shape;
    const flat = toTypedArray(embT as typeof embT & { dtype: 'float32' });
    const own = toTypedArray(ownT as typeof ownT & { dtype: 'int32' });
    if (own.length !== n) throw new FileFormatError('gallery export: person has a different length than embeddings');
    const people: PersonData[] = list.map((p) => ({ id: p.id, metadata: p.metadata ?? {}, createdAt: p.createdAt, embeddings: [] }));
    for (let r = 0; r < n; r++) {
      const p = people[own[r]];
      if (!p) throw new FileFormatError(`gallery export: row ${r} belongs to person ${own[r]}, which is not listed`);
      p.embeddings.push(flat.slice(r * dim, (r + 1) * dim));
    }
    return { model: (meta.model as ModelIdentity | null) ?? null, people };
  }
  let obj: unknown = data;
  if (typeof data === 'string' || data instanceof Uint8Array) {
    try {
      obj = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
    } catch (e) {
      throw new FileFormatError(`not a gallery export: ${(e as Error).message}`);
    }
  }
  const r = jsonExport.safeParse(obj);
  if (!r.success) throw new FileFormatError(`not a torchface gallery export: ${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`);
  return {
    model: r.data.model,
    people: r.data.people.map((p) => ({ id: p.id, metadata: p.metadata, createdAt: p.createdAt, embeddings: p.embeddings.map((e) => Float32Array.from(e)) })),
  };
}
