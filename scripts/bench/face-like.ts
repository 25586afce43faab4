// Millions of generated embeddings shaped like real face embeddings, for the
// approximate index's benchmark (cases/ann.ts): Gaussian with the mean and the
// covariance of real photos' embeddings (fixtures/face-embedding-statistics.json,
// made by scripts/embedding-statistics.ts from LFW with the pretrained network).
// "Another photo of an enrolled person" adds a difference drawn with twice the
// within-person covariance (two photos of one person differ by that much).
// Generated with libtorch (randn, then a matrix product by the Cholesky
// factor), seeded, in chunks.
import * as fs from 'fs';
import * as path from 'path';
import { Tensor, manualSeed, randn, tensor, tidy } from '../../lib';
import { packageRoot } from '../../lib/util/paths';

interface Statistics {
  dim: number;
  mean: number[];
  totalCholesky: string;
  withinCholesky: string;
  photos: number;
  people: number;
  sets: string[];
  model: string;
}

/** Written by scripts/embedding-statistics.ts. */
export const STATISTICS = path.join(packageRoot, 'scripts', 'bench', 'fixtures', 'face-embedding-statistics.json');

function unpackLower(b64: string, n: number): Float32Array {
  const bytes = Buffer.from(b64, 'base64');
  const packed = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out = new Float32Array(n * n);
  let k = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) out[i * n + j] = packed[k++];
  return out;
}

export class FaceLikeEmbeddings {
  readonly dim: number;
  readonly about: string;
  private readonly mean: Tensor;
  /** L^T of each covariance: a row z (standard normal) times L^T has covariance L L^T. */
  private readonly totalT: Tensor;
  private readonly withinT: Tensor;

  constructor(file = STATISTICS) {
    const s = JSON.parse(fs.readFileSync(file, 'utf8')) as Statistics;
    this.dim = s.dim;
    this.about = `Gaussian with the mean and covariance of ${s.photos} ${s.sets.join('+').toUpperCase()} photos' embeddings (${s.model})`;
    this.mean = tensor(Float32Array.from(s.mean));
    this.totalT = tensor(unpackLower(s.totalCholesky, s.dim)).reshape([s.dim, s.dim]).t().contiguous();
    this.withinT = tensor(unpackLower(s.withinCholesky, s.dim)).reshape([s.dim, s.dim]).t().contiguous();
  }

  /** n embeddings of different people (n x dim values), seeded. */
  people(n: number, seed: number): Float32Array {
    manualSeed(seed);
    return tidy(() => randn([n, this.dim]).matmul(this.totalT).add(this.mean).data() as Float32Array);
  }

  /** Another photo of each given person (rows: n x dim values), seeded. */
  anotherPhoto(rows: Float32Array, seed: number): Float32Array {
    manualSeed(seed);
    const n = rows.length / this.dim;
    return tidy(() => randn([n, this.dim]).matmul(this.withinT).mul(Math.SQRT2).add(tensor(rows).reshape([n, this.dim])).data() as Float32Array);
  }

  dispose(): void {
    for (const t of [this.mean, this.totalT, this.withinT]) t.dispose();
  }
}
