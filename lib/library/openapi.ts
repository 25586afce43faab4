// The service's OpenAPI 3.1 description, served at /docs/openapi.json: every
// route of lib/gallery/server.ts and lib/library/routes.ts, with the API key
// scheme (header x-api-key) and the error shape every failure shares.
export function openApiDocument(): Record<string, unknown> {
  const json = (schema: Record<string, unknown>) => ({ content: { 'application/json': { schema } } });
  const ok = (description: string, schema: Record<string, unknown> = { type: 'object' }) => ({ description, ...json(schema) });
  const errors = {
    '400': { $ref: '#/components/responses/Error' },
    '401': { $ref: '#/components/responses/Error' },
    '404': { $ref: '#/components/responses/Error' },
  };
  const id = (what: string) => ({ name: 'id', in: 'path', required: true, description: what, schema: { type: 'integer', minimum: 1 } });
  const image = {
    content: {
      'multipart/form-data': { schema: { type: 'object', properties: { image: { type: 'string', format: 'binary' } } } },
      'application/json': { schema: { type: 'object', properties: { image: { type: 'string', description: 'base64 (or a data: URL)' } } } },
    },
  };
  const cluster = { type: 'object', properties: { id: { type: 'integer' }, name: { type: ['string', 'null'] }, faces: { type: 'integer' } } };
  const face = {
    type: 'object',
    properties: {
      id: { type: 'integer' },
      photoId: { type: 'integer' },
      file: { type: 'string' },
      box: { $ref: '#/components/schemas/Box' },
      score: { type: 'number' },
      quality: { type: ['object', 'null'] },
      cluster: { type: ['integer', 'null'] },
      name: { type: ['string', 'null'] },
      pinned: { type: 'boolean' },
      ignored: { type: 'boolean' },
    },
  };
  const identify = {
    type: 'object',
    properties: {
      id: { type: ['string', 'null'] },
      reason: { enum: ['match', 'no-match', 'ambiguous', 'no-face'] },
      distance: { type: ['number', 'null'] },
      threshold: { type: 'number' },
      far: { type: 'number', description: 'estimated false-accept rate of one comparison at this distance' },
      falseAcceptRate: { type: 'number' },
      candidates: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, distance: { type: 'number' } } } },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'torchface service',
      version: '1',
      description:
        'Face verification, recognition and a photo library (people found by clustering faces). Every route but /health, the web page (/ui/) and this description needs the API key in the x-api-key header when the server has one. Errors are { error: { code, message } }.',
    },
    security: [{ apiKey: [] }],
    components: {
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } },
      schemas: {
        Box: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' }, width: { type: 'number' }, height: { type: 'number' } } },
        Error: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } },
      },
      responses: { Error: { description: 'An error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } },
    },
    paths: {
      '/health': { get: { summary: 'Liveness; counts, model and load figures with the key', security: [], responses: { '200': ok('Health') } } },
      '/people': { get: { summary: 'Enrolled people', responses: { '200': ok('People'), ...errors } } },
      '/people/{id}': {
        get: { summary: 'One enrolled person', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': ok('Person'), ...errors } },
        delete: { summary: 'Remove a person', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': ok('Removed'), ...errors } },
      },
      '/enroll': { post: { summary: 'Enrol a person from photos (fields id, metadata, append, force, detect)', requestBody: image, responses: { '201': ok('Person'), ...errors, '409': { $ref: '#/components/responses/Error' }, '422': { $ref: '#/components/responses/Error' } } } },
      '/identify': { post: { summary: "Who is this photo's largest face?", requestBody: image, responses: { '200': ok('Result', identify), ...errors } } },
      '/verify': {
        post: {
          summary: 'Two photos (image + image2, or two files): same person? With distance, threshold and far (estimated false-accept rate); or one photo and an id',
          requestBody: image,
          responses: { '200': ok('Result', { type: 'object', properties: { same: { type: 'boolean' }, distance: { type: 'number' }, threshold: { type: 'number' }, far: { type: 'number' } } }), ...errors },
        },
      },
      '/library': { get: { summary: 'Counts of photos, faces, clusters', responses: { '200': ok('Counts'), ...errors } } },
      '/library/cluster': {
        post: {
          summary: 'Cluster the faces again (named and hand-placed faces stay)',
          requestBody: json({ type: 'object', properties: { algorithm: { enum: ['chinese-whispers', 'dbscan', 'agglomerative'] }, threshold: { type: 'number' }, reset: { type: 'boolean' } } }),
          responses: { '200': ok('Summary'), ...errors },
        },
      },
      '/library/clusters': { get: { summary: 'People: named and unnamed clusters (a sample of face ids each) and the unclustered count', responses: { '200': ok('Clusters'), ...errors } } },
      '/library/clusters/{id}': {
        get: { summary: 'A cluster with its faces', parameters: [id('cluster id')], responses: { '200': ok('Cluster', { type: 'object', properties: { id: { type: 'integer' }, name: { type: ['string', 'null'] }, faces: { type: 'array', items: face } } }), ...errors } },
        delete: { summary: 'Remove a cluster: its faces are not clustered again; a named cluster\'s person leaves the gallery', parameters: [id('cluster id')], responses: { '200': ok('Removed'), ...errors } },
      },
      '/library/clusters/{id}/name': {
        post: { summary: 'Name (or rename) a cluster: it becomes an enrolled person; an existing name merges into that person', parameters: [id('cluster id')], requestBody: json({ type: 'object', required: ['name'], properties: { name: { type: 'string' } } }), responses: { '200': ok('Cluster', cluster), ...errors } },
        delete: { summary: "Remove a cluster's name (the person leaves the gallery)", parameters: [id('cluster id')], responses: { '200': ok('Cluster', cluster), ...errors } },
      },
      '/library/clusters/{id}/merge': { post: { summary: 'Merge clusters into this one', parameters: [id('cluster id')], requestBody: json({ type: 'object', required: ['from'], properties: { from: { type: 'array', items: { type: 'integer' } } } }), responses: { '200': ok('Cluster', cluster), ...errors } } },
      '/library/clusters/{id}/split': { post: { summary: 'Move faces of this cluster into a new cluster', parameters: [id('cluster id')], requestBody: json({ type: 'object', required: ['faces'], properties: { faces: { type: 'array', items: { type: 'integer' } } } }), responses: { '201': ok('The new cluster', cluster), ...errors } } },
      '/library/photos': {
        get: {
          summary: 'Photos (by path), optionally those with a face in a cluster',
          parameters: [
            { name: 'cluster', in: 'query', schema: { type: 'integer' } },
            { name: 'offset', in: 'query', schema: { type: 'integer' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 1000 } },
          ],
          responses: { '200': ok('Photos'), ...errors },
        },
      },
      '/library/photos/{id}': { get: { summary: 'A photo with its faces (boxes in pixels of the photo as displayed, names)', parameters: [id('photo id')], responses: { '200': ok('Photo'), ...errors } } },
      '/library/photos/{id}/image': { get: { summary: 'The photo as JPEG (EXIF orientation applied)', parameters: [id('photo id'), { name: 'size', in: 'query', schema: { type: 'integer' } }], responses: { '200': { description: 'JPEG', content: { 'image/jpeg': {} } }, ...errors } } },
      '/library/faces/{id}': { get: { summary: 'A face with landmarks and quality', parameters: [id('face id')], responses: { '200': ok('Face', face), ...errors } } },
      '/library/faces/{id}/thumbnail': { get: { summary: 'A square JPEG of the face', parameters: [id('face id'), { name: 'size', in: 'query', schema: { type: 'integer' } }], responses: { '200': { description: 'JPEG', content: { 'image/jpeg': {} } }, ...errors } } },
      '/library/faces/{id}/move': { post: { summary: 'Move a face into a cluster, or (cluster null) out of the people for good', parameters: [id('face id')], requestBody: json({ type: 'object', properties: { cluster: { type: ['integer', 'null'] } } }), responses: { '200': ok('Face', face), ...errors } } },
      '/library/identify': {
        post: {
          summary: 'Every face of an uploaded photo, identified (boxes and names)',
          requestBody: image,
          responses: { '200': ok('Faces', { type: 'object', properties: { width: { type: 'integer' }, height: { type: 'integer' }, faces: { type: 'array', items: { allOf: [identify, { type: 'object', properties: { box: { $ref: '#/components/schemas/Box' }, score: { type: 'number' } } }] } } } }), ...errors },
        },
      },
      '/ui/': { get: { summary: 'The web page (no key needed: it holds no data; it asks for the key)', security: [], responses: { '200': { description: 'HTML', content: { 'text/html': {} } } } } },
      '/docs/openapi.json': { get: { summary: 'This description', security: [], responses: { '200': ok('OpenAPI') } } },
    },
  };
}
