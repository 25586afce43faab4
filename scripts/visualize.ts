// npm run visualize -- [--model mobilenet|vgg19|face] [--weights FILE] --layer L[,L2,...] [--units 0-8]
//   --images DIR [--out DIR] [--k 9] [--input-size 224] [--patch-size 48] [--batch-size 8] [--limit N] [--jpeg]
// For each unit, the k image patches (its receptive field in input coordinates)
// that activate it most over the images in DIR; one grid PNG per layer
// (OUT/<model>-<layer>.png), like Zeiler & Fergus's layer 1..5 figures.
import * as fs from 'fs';
import * as path from 'path';
import { ArgumentError, TorchfaceError } from '../lib/core/errors';
import { savePng } from '../lib/image';
import { FaceRecognitionFeatures, FeatureNetwork, loadFeatureNetwork, patchesGrid, topActivatingPatches } from '../lib/style';
import sharp from 'sharp';
import { parseArgs } from './cli';

const USAGE = `usage: npm run visualize -- --layer LAYER[,LAYER...] --images DIR [--model mobilenet|vgg19|face] [--weights FILE]
  [--units 0-8 | 0,5,9] [--out DIR (default visualize)] [--k 9] [--input-size 224] [--patch-size 48] [--batch-size 8] [--limit N] [--jpeg]
  layers: mobilenet conv_0 ... conv_13; vgg19 conv1_1 ... conv5_4, pool1 ... pool5 (needs --weights);
          face conv32_down, pool, conv32_1 ... conv256_down_out (face-api's recognition ResNet; feed it face crops)`;

export function parseUnits(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new ArgumentError('--units', "a list like '0-8' or '0,3,7'", spec);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new ArgumentError('--units', 'ranges low-high', part);
    for (let u = a; u <= b; u++) out.push(u);
  }
  return out;
}

function listImages(dir: string, limit: number): string[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new ArgumentError('--images', 'a folder of images', dir);
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(png|jpe?g|webp|gif|tiff?|pgm|bmp)$/i.test(e.name)) files.push(p);
    }
  };
  walk(dir);
  if (files.length === 0) throw new ArgumentError('--images', 'a folder containing images (png, jpg, webp, ...)', dir);
  return files.slice(0, limit);
}

async function loadModel(name: string, weights: string | undefined): Promise<FeatureNetwork> {
  if (name === 'mobilenet' || name === 'vgg19') return loadFeatureNetwork(name, { weights });
  if (name === 'face') return FaceRecognitionFeatures.load();
  throw new ArgumentError('--model', 'mobilenet, vgg19 or face', name);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.help) return void console.log(USAGE);
  const str = (k: string) => (typeof a[k] === 'string' ? (a[k] as string) : undefined);
  const int = (k: string, d: number) => {
    const v = str(k);
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new ArgumentError(`--${k}`, 'a positive integer', v);
    return n;
  };
  const model = str('model') ?? 'mobilenet';
  const layers = (str('layer') ?? '').split(',').filter(Boolean);
  if (layers.length === 0) throw new ArgumentError('--layer', 'one or more layer names (comma-separated)', a.layer);
  const images = listImages(str('images') ?? '', int('limit', 10000));
  const outDir = str('out') ?? 'visualize';
  const units = parseUnits(str('units') ?? '0-8');
  const net = await loadModel(model, str('weights'));
  fs.mkdirSync(outDir, { recursive: true });
  try {
    for (const layer of layers) {
      const t0 = Date.now();
      const r = await topActivatingPatches(net, images, { layer, units, k: int('k', 9), inputSize: int('input-size', 224), patchSize: int('patch-size', 48), batchSize: int('batch-size', 8) });
      const grid = patchesGrid(r);
      const file = path.join(outDir, `${model}-${layer}.${a.jpeg ? 'jpg' : 'png'}`);
      if (a.jpeg) await sharp(Buffer.from(grid.data), { raw: { width: grid.width, height: grid.height, channels: 3 } }).jpeg({ quality: 85 }).toFile(file);
      else await savePng(file, grid);
      const best = r.units.map((u) => `${u.unit}:${u.patches[0]?.score.toFixed(2) ?? '-'}`).join(' ');
      console.log(`${file}: ${layer} (receptive field ${r.layer.receptiveField}px, stride ${r.layer.stride}), ${images.length} images in ${((Date.now() - t0) / 1000).toFixed(1)} s; best scores ${best}`);
    }
  } finally {
    net.dispose();
  }
}

if (require.main === module) {
  main().catch((e) => {
    if (e instanceof ArgumentError || e instanceof TorchfaceError) console.error(`visualize: ${e.message}\n\n${USAGE}`);
    else console.error(e);
    process.exit(1);
  });
}
