export { FaceGallery } from './sqlite/gallery';
export type { FaceGalleryOptions } from './sqlite/gallery';
export { AnnIndex, AnnIndexError } from './ann-index';
export type { AnnOptions, AnnCandidates } from './ann-index';
export type { GalleryHnswOptions } from './sqlite/approximate';
export { GalleryBase, DuplicateIdError, UnknownIdError, DEFAULT_THRESHOLD, modelIdentity, euclidean } from './gallery';
export type { FaceModelLike, GalleryHead, ModelIdentity, Person, Candidate, IdentifyResult, GalleryVerifyResult, GalleryJson, GalleryOptions, EnrollOptions, IdentifyOptions, VerifyOptions, ImportOptions } from './gallery';
export { DatabaseError, PgVectorGallery, pgPoolClient, pgliteClient } from './pgvector/gallery';
export type { SqlClient, PGliteLike, PgVectorGalleryOptions } from './pgvector/gallery';
export { EmbeddingIndex, INDEX_STORAGES } from './embedding-index';
export type { IndexStorage } from './embedding-index';
export type { ServerOptions } from './server';

/**
 * The HTTP service (lib/gallery/server.ts). Loaded on first use, so that a
 * program that only embeds or compares faces does not load Fastify.
 */
export function createServer(options: import('./server').ServerOptions): ReturnType<typeof import('./server').createServer> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (require('./server') as typeof import('./server')).createServer(options);
}
