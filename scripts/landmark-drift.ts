// Measures FaceDetector.landmarkStability() (how far the 68 landmarks move when
// the box moves: ~0 on a face, 1 on a blank image) on images without a face and
// on real faces, for each detection stage. The figures behind
// FALLBACK_DEFAULTS.maxLandmarkDrift. Usage: node dist/scripts/landmark-drift.js [LFW people, default 40]
import * as fs from 'fs';
import * as path from 'path';
import { RgbImage, loadImage, setNumThreads } from '../lib';
import type { Box } from '../lib/models/face-landmark-68';
import { FALLBACK_DEFAULTS, FaceDetector } from '../lib/face/detect';
import { ImageTensor } from '../lib/image/image-tensor';
import { facesDir } from '../lib/util/paths';

async function main(): Promise<void> {
  setNumThreads(1);
  const det = await FaceDetector.load();
  const rel = (r: { x: number; y: number; width: number; height: number }, img: RgbImage): Box => ({ x: r.x * img.width, y: r.y * img.height, width: r.width * img.width, height: r.height * img.height });
  const measure = async (img: RgbImage, label: string) => {
    const it = new ImageTensor(img, 'cpu');
    const largest = (fs: { box: Box }[]) => fs.reduce<{ box: Box } | null>((m, f) => (!m || f.box.width * f.box.height > m.box.width * m.box.height ? f : m), null);
    const stages: [string, { box: Box } | null][] = [
      ['ssd', largest(await det.ssdBoxes(it, { minConfidence: 0.5 }))],
      ['ssd-low', largest(await det.ssdBoxes(it, { minConfidence: FALLBACK_DEFAULTS.lowConfidence }))],
      ['tiny', largest(await det.tinyBoxes(it, { minConfidence: FALLBACK_DEFAULTS.tinyConfidence, inputSize: FALLBACK_DEFAULTS.tinyInputSize }))],
      ['center', { box: rel(FALLBACK_DEFAULTS.centerBox, img) }],
      ['tight', { box: rel(FALLBACK_DEFAULTS.tightBox, img) }],
    ];
    const row: Record<string, string | number> = { image: label };
    for (const [stage, f] of stages) if (f) row[stage] = +(await det.landmarkStability(it, f.box)).toFixed(3);
    it.dispose();
    console.log(JSON.stringify(row));
  };
  const raw = (size: number, fill: () => number): RgbImage => ({ data: Uint8Array.from({ length: size * size * 3 }, fill), width: size, height: size, channels: 3 });
  let s = 1;
  const noise = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 255;
  for (const [name, fill] of [['black', () => 0], ['white', () => 255], ['grey', () => 128], ['noise', noise]] as const) for (const size of [150, 250]) await measure(raw(size, fill), `${name} ${size}px`);
  const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'test', 'fixtures', 'faceapi-descriptors.json'), 'utf8')) as { inputs: { shape: number[]; rgbBase64: string }[] };
  for (const [i, e] of fixture.inputs.entries()) await measure({ data: new Uint8Array(Buffer.from(e.rgbBase64, 'base64')), width: e.shape[1], height: e.shape[0], channels: 3 }, `face-api fixture crop ${i}`);
  const dir = facesDir();
  if (!dir) return console.log('(no ../shared/data/faces: LFW and AT&T rows skipped)');
  const lfw = path.join(dir, 'lfw-view1');
  const people = fs.readdirSync(lfw).filter((d) => fs.statSync(path.join(lfw, d)).isDirectory()).slice(0, Number(process.argv[2] ?? 40));
  for (const p of people) await measure(await loadImage(path.join(lfw, p, fs.readdirSync(path.join(lfw, p))[0])), `LFW ${p}`);
  for (let i = 1; i <= 10; i++) await measure(await loadImage(path.join(dir, 'att', `s${i}`, '1.png')), `AT&T s${i}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
