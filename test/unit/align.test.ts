// Face alignment: face-api's descriptor rect, and the similarity (dlib chip) crop.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { NoFaceError, alignFace, alignLargestFace, detectFaces } from '../../lib';
import { FaceDetector } from '../../lib/face/detect';
import { faceApiDescriptorRect, similarityTransform } from '../../lib/face/align';
import { loadImage, RgbImage } from '../../lib/image';
import { packageRoot } from '../../lib/util/paths';

const root = packageRoot;
const fixture = JSON.parse(fs.readFileSync(path.join(root, 'test', 'fixtures', 'faceapi-detections.json'), 'utf8'));
const demo = (f: string) => path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), f);
const mean = (pts: { x: number; y: number }[], a: number, b: number) => {
  const s = pts.slice(a, b);
  return { x: s.reduce((t, p) => t + p.x, 0) / s.length, y: s.reduce((t, p) => t + p.y, 0) / s.length };
};

/** Rotates an image by `deg` degrees about its centre (nearest neighbour, black fill). */
function rotate(img: RgbImage, deg: number): RgbImage {
  const { width: W, height: H } = img;
  const out = new Uint8Array(W * H * 3);
  const c = Math.cos((deg * Math.PI) / 180);
  const s = Math.sin((deg * Math.PI) / 180);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const dx = x - W / 2;
      const dy = y - H / 2;
      const sx = Math.round(c * dx + s * dy + W / 2);
      const sy = Math.round(-s * dx + c * dy + H / 2);
      if (sx >= 0 && sx < W && sy >= 0 && sy < H) for (let k = 0; k < 3; k++) out[(y * W + x) * 3 + k] = img.data[(sy * W + sx) * 3 + k];
    }
  return { data: out, width: W, height: H, channels: 3 };
}

describe('face alignment', function () {
  this.timeout(300000);
  let detector: FaceDetector;
  before(async () => {
    detector = await FaceDetector.load();
  });

  it("'box' reproduces face-api's dlibAlignedRect from its landmarks", () => {
    for (const entry of fixture.images)
      for (const f of entry.faces) {
        const r = faceApiDescriptorRect(f.landmarks.map(([x, y]: number[]) => ({ x, y })));
        for (const k of ['x', 'y', 'width', 'height'] as const) assert.ok(Math.abs(r[k] - f.dlibAlignedRect[k]) <= 1e-6, `${entry.file} ${k}: ${r[k]} vs ${f.dlibAlignedRect[k]}`);
      }
  });

  it('similarityTransform recovers a known rotation + scale + shift', () => {
    const src = [{ x: 1, y: 2 }, { x: 5, y: -1 }, { x: -3, y: 4 }];
    const [a, b] = [1.5 * Math.cos(0.3), 1.5 * Math.sin(0.3)];
    const dst = src.map((p) => ({ x: a * p.x - b * p.y + 7, y: b * p.x + a * p.y - 2 }));
    const t = similarityTransform(src, dst);
    assert.ok(Math.abs(t.a - a) < 1e-9 && Math.abs(t.b - b) < 1e-9 && Math.abs(t.tx - 7) < 1e-9 && Math.abs(t.ty + 2) < 1e-9);
  });

  it("'similarity' levels the eyes of a rotated face and puts them where the template says", async () => {
    const img = await loadImage(demo('demo/sample3.jpg'));
    // a tilted face: crop around the first (upright) face and rotate by 20 degrees
    const [face] = await detector.detect(img);
    const cx = Math.round(face.box.x + face.box.width / 2);
    const cy = Math.round(face.box.y + face.box.height / 2);
    const side = Math.round(Math.max(face.box.width, face.box.height) * 1.6);
    const crop = new Uint8Array(side * side * 3);
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++) {
        const sx = Math.min(img.width - 1, Math.max(0, cx - side / 2 + x));
        const sy = Math.min(img.height - 1, Math.max(0, cy - side / 2 + y));
        for (let k = 0; k < 3; k++) crop[(y * side + x) * 3 + k] = img.data[(sy * img.width + sx) * 3 + k];
      }
    const tilted = rotate({ data: crop, width: side, height: side, channels: 3 }, 20);
    const found = await detector.detectLargest(tilted);
    assert.ok(found, 'face not found in the tilted crop');
    const angle = (pts: { x: number; y: number }[]) => {
      const l = mean(pts, 36, 42);
      const r = mean(pts, 42, 48);
      return (Math.atan2(r.y - l.y, r.x - l.x) * 180) / Math.PI;
    };
    const before = angle(found!.landmarks);
    assert.ok(Math.abs(before) > 12, `input eyes tilted by ${before.toFixed(1)} deg`);
    for (const method of ['similarity', 'box'] as const) {
      const chip = await alignFace(tilted, found!.landmarks, { method, size: 150 });
      assert.strictEqual(chip.width, 150);
      assert.strictEqual(chip.height, 150);
      const again = await detector.detectLargest(chip, { assumeCrop: true });
      assert.ok(again, `no face in the ${method} chip`);
      const after = angle(again!.landmarks);
      if (method === 'similarity') {
        assert.ok(Math.abs(after) < 4, `similarity chip: eyes tilted by ${after.toFixed(1)} deg (input ${before.toFixed(1)})`);
        // inner eye corners land near dlib's template positions (x 0.334 / 0.646, y 0.229, padding 0.25)
        const ex = (p: number) => ((0.25 + p) / 1.5) * 150;
        assert.ok(Math.abs(again!.landmarks[39].x - ex(0.334)) < 6 && Math.abs(again!.landmarks[42].x - ex(0.646)) < 6, 'eye corners x');
        assert.ok(Math.abs(again!.landmarks[39].y - ex(0.229)) < 6, `eye corner y ${again!.landmarks[39].y} vs ${ex(0.229)}`);
      } else {
        assert.ok(Math.abs(after - before) < 5, `box crop keeps the tilt (${after.toFixed(1)} vs ${before.toFixed(1)})`);
      }
    }
  });

  it('rejects bad landmarks', async () => {
    const img = { data: new Uint8Array(30 * 30 * 3), width: 30, height: 30, channels: 3 as const };
    await assert.rejects(alignFace(img, [{ x: 1, y: 2 }]), /68 points/);
    await assert.rejects(alignFace(img, new Array(68).fill({ x: 3, y: 3 }), { method: 'similarity' }), /distinct points/);
  });

  it('pipeline: detectFaces, alignLargestFace (NoFaceError, centred fallback only for crops)', async () => {
    const faces = await detectFaces(demo('demo/sample4.jpg'));
    assert.strictEqual(faces.length, 4);
    const largest = await alignLargestFace(demo('demo/sample4.jpg'));
    const maxArea = Math.max(...faces.map((f) => f.box.width * f.box.height));
    assert.strictEqual(largest.box.width * largest.box.height, maxArea);
    assert.strictEqual(largest.stage, 'ssd');
    assert.strictEqual(largest.aligned.width, 150);
    const grey = (w: number, h: number) => ({ data: new Uint8Array(w * h * 3).fill(128), width: w, height: h, channels: 3 as const });
    await assert.rejects(alignLargestFace(grey(800, 500)), NoFaceError);
    await assert.rejects(alignLargestFace(grey(250, 250), { fallback: false }), NoFaceError);
    // A crop-sized picture without a face is not a face: the centred fallback needs landmark evidence.
    await assert.rejects(alignLargestFace(grey(250, 250)), NoFaceError);
  });
});
