// The README's picture of the web page (docs/images/photo-library.png): a
// library of drawn "photos" (test/helpers/photos.ts cartoon(): no real faces,
// which may not be committed), indexed with the weight-free PixelFaceModel,
// clustered, two people named, the People view and a photo view captured in
// Debian's chromium (playwright-core; TORCHFACE_CHROMIUM to use another).
//
//   npm run build:ts && node dist/scripts/library-screenshot.js [out.png]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { FaceGallery, createServer } from '../lib';
import { PixelFaceModel } from '../lib/testing/pixel-face-model';
import { packageRoot } from '../lib/util/paths';
import { cartoon } from '../test/helpers/photos';

async function main(): Promise<void> {
  const out = process.argv[2] ?? path.join(packageRoot, 'docs', 'images', 'photo-library.png');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-screenshot-'));
  const photos = path.join(dir, 'Pictures');
  fs.mkdirSync(path.join(photos, '2025'), { recursive: true });
  for (let who = 0; who < 4; who++) for (let i = 0; i < 3 + who; i++) fs.writeFileSync(path.join(photos, '2025', `IMG_${who}${i}.jpg`), await cartoon(who, 7 * who + i));
  const gallery = await FaceGallery.open(path.join(dir, 'library.db'), { model: new PixelFaceModel() });
  await gallery.indexPhotos(photos);
  const r = await gallery.cluster();
  await gallery.name(r.clusters[0].id, 'Grace');
  await gallery.name(r.clusters[2].id, 'Alan');
  const key = 'screenshot';
  const app = createServer({ gallery, apiKey: key });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  const browser = await chromium.launch({ executablePath: process.env.TORCHFACE_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 560 } });
    await page.addInitScript(`localStorage.setItem('torchface.apiKey', ${JSON.stringify(key)})`);
    await page.goto(base + '/ui/');
    await page.waitForFunction(() => {
      const imgs = [...(globalThis as unknown as { document: { querySelectorAll(s: string): { naturalWidth: number }[] } }).document.querySelectorAll('#people .cluster .thumbs img')];
      return imgs.length > 0 && imgs.every((i) => i.naturalWidth > 0);
    });
    const people = await page.screenshot();
    // A photo view with the names drawn over the faces.
    const [p] = await gallery.photos({ cluster: r.clusters[0].id });
    await page.click('button[data-view="photos"]');
    await page.waitForSelector(`#photos .photo-card[data-id="${p.id}"]`);
    await page.click(`#photos .photo-card[data-id="${p.id}"]`);
    await page.waitForSelector('#photo-stage .face-box .label');
    await page.waitForFunction(() => ((globalThis as unknown as { document: { querySelector(s: string): { naturalWidth: number } | null } }).document.querySelector('#photo-stage img')?.naturalWidth ?? 0) > 0);
    const photo = await page.locator('#photo-stage').screenshot();
    // The People view, and the photo view beside it, in one picture.
    const inset = await sharp(photo).resize(300).extend({ top: 34, bottom: 8, left: 8, right: 8, background: '#ffffff' }).toBuffer();
    const caption = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="316" height="30"><text x="8" y="21" font-family="sans-serif" font-size="15" fill="#333">Photos: a photo with its names</text></svg>');
    const img = await sharp(people)
      .extend({ right: 340, background: '#f6f6f4' })
      .composite([
        { input: inset, top: 70, left: 1100 + 12 },
        { input: caption, top: 72, left: 1100 + 12 },
      ])
      .png()
      .toBuffer();
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, img);
    console.log(`wrote ${out}`);
  } finally {
    await browser.close();
    await app.close();
    await gallery.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
