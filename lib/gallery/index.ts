export { FaceGallery, GalleryBase, DuplicateIdError, UnknownIdError, DEFAULT_THRESHOLD, modelIdentity, euclidean } from './gallery';
export type { Embedder, GalleryHead, ModelIdentity, Person, Candidate, IdentifyResult, GalleryVerifyResult, GalleryJson, GalleryOptions, EnrollOptions, IdentifyOptions, VerifyOptions, ImportOptions } from './gallery';
export { DatabaseError, PgVectorGallery, pgPoolClient, pgliteClient } from './store-pgvector';
export type { SqlClient, PGliteLike, PgVectorGalleryOptions } from './store-pgvector';
export { EmbeddingIndex } from './index-search';
export { PixelEmbedder } from './pixel-embedder';
export { createServer } from './server';
export type { ServerOptions } from './server';
