// The web page in a real browser: Debian's chromium driven by playwright-core
// (the system browser; nothing is downloaded). Loads the page of a server with
// an API key, gives the key, sees the people, names one, uploads a photo and
// sees the box and the name over it, opens a photo of the library with its
// names, verifies two photos, and saves screenshots as test artifacts
// (TORCHFACE_ARTIFACTS, default dist/test-artifacts/). Skips where the
// chromium peer is missing (test/helpers/peers.ts).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Browser, Page } from 'playwright-core';
import { FaceGallery, createServer } from '../../lib';
import { PixelFaceModel } from '../../lib/testing/pixel-face-model';
import { packageRoot } from '../../lib/util/paths';
import { CHROMIUM, needs } from '../helpers/peers';
import { cartoon } from '../helpers/photos';

// The functions given to waitForFunction run in the page (the tests compile without the DOM types).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const document: any;

export const ARTIFACTS = process.env.TORCHFACE_ARTIFACTS || path.join(packageRoot, 'dist', 'test-artifacts');

describe('photo library web page (chromium)', function () {
  this.timeout(180000);
  let dir: string;
  let gallery: FaceGallery;
  let app: ReturnType<typeof createServer>;
  let base: string;
  let browser: Browser;
  let page: Page;
  const key = 'ui-test-key';
  const errors: string[] = [];

  before(async function () {
    needs(this, 'chromium');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-library-ui-'));
    const photos = path.join(dir, 'photos');
    fs.mkdirSync(photos);
    for (let who = 0; who < 3; who++) for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(photos, `holiday-${who}${i}.jpg`), await cartoon(who, 10 * who + i));
    fs.writeFileSync(path.join(dir, 'upload.jpg'), await cartoon(0, 99));
    fs.writeFileSync(path.join(dir, 'other.jpg'), await cartoon(1, 98));
    gallery = await FaceGallery.open(path.join(dir, 'lib.db'), { model: new PixelFaceModel() });
    await gallery.indexPhotos(photos);
    await gallery.cluster();
    app = createServer({ gallery, apiKey: key });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { chromium } = require('playwright-core') as typeof import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/401/.test(m.text())) errors.push(m.text());
    });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    await gallery?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('asks for the API key, then shows the people', async () => {
    await page.goto(base + '/');
    await page.waitForSelector('#key-dialog[open]');
    await page.fill('#key-input', key);
    await page.click('#key-save');
    await page.waitForFunction(() => document.querySelectorAll('#people .cluster').length === 3);
    // Every card's thumbnails load (fetched with the key, shown through blob: URLs).
    await page.waitForFunction(() => [...document.querySelectorAll('#people .cluster .thumbs img')].every((i: { naturalWidth: number }) => i.naturalWidth > 0));
    assert.match((await page.textContent('#counts')) ?? '', /12 photos · 12 faces · 0 named of 3 people/);
  });

  it('names a cluster in the page; the gallery has the person', async () => {
    const first = page.locator('#people .cluster').first();
    const id = Number(await first.getAttribute('data-id'));
    await first.locator('button.rename').click();
    await first.locator('input.rename-input').fill('Ada');
    await first.locator('input.rename-input').press('Enter');
    await page.waitForFunction((cid) => document.querySelector(`#people .cluster[data-id="${cid}"] .name`)?.textContent === 'Ada', id);
    assert.equal((await gallery.get('Ada'))?.embeddings, 4);
    const named = await gallery.library.cluster1(id);
    assert.equal(named.name, 'Ada');
    await page.screenshot({ path: path.join(ARTIFACTS, 'library-people.png'), fullPage: true });
  });

  it('uploads a photo and shows the box with the name over it', async () => {
    // Upload a new photo of the person named Ada (cartoon 0 is the person of the first cluster? find out).
    const ada = (await gallery.clusters()).clusters.find((c) => c.name === 'Ada')!;
    const who = Number(path.basename(ada.faces[0].file)[8]);
    fs.writeFileSync(path.join(dir, 'upload.jpg'), await cartoon(who, 99));
    await page.click('button[data-view="identify"]');
    await page.setInputFiles('#identify-file', path.join(dir, 'upload.jpg'));
    await page.waitForSelector('#identify-stage .face-box .label');
    assert.equal(await page.textContent('#identify-stage .face-box .label'), 'Ada');
    const box = await page.locator('#identify-stage .face-box').boundingBox();
    const img = await page.locator('#identify-stage img').boundingBox();
    assert.ok(box && img && Math.abs(box.width - img.width) < 6 && Math.abs(box.height - img.height) < 6, JSON.stringify({ box, img }));
    await page.screenshot({ path: path.join(ARTIFACTS, 'library-identify.png'), fullPage: true });
  });

  it('opens a photo of the library with the name drawn over the face', async () => {
    await page.click('button[data-view="photos"]');
    await page.waitForFunction(() => document.querySelectorAll('#photos .photo-card').length === 12);
    const ada = (await gallery.clusters()).clusters.find((c) => c.name === 'Ada')!;
    await page.click(`#photos .photo-card[data-id="${ada.faces[0].photoId}"]`);
    await page.waitForSelector('#photo-stage .face-box .label');
    assert.equal(await page.textContent('#photo-stage .face-box .label'), 'Ada');
  });

  it('verifies two photos side by side with the distance', async () => {
    await page.click('button[data-view="verify"]');
    await page.setInputFiles('#verify-a', path.join(dir, 'upload.jpg'));
    await page.setInputFiles('#verify-b', path.join(dir, 'other.jpg'));
    await page.click('#verify-go');
    await page.waitForFunction(() => /distance/.test(document.querySelector('#verify-result')?.textContent ?? ''));
    assert.match((await page.textContent('#verify-result')) ?? '', /^(Same person|Different people): distance \d\.\d{3} \(threshold/);
  });

  it('merges and removes clusters from the page', async () => {
    await page.click('button[data-view="people"]');
    await page.waitForFunction(() => document.querySelectorAll('#people .cluster').length === 3);
    const cards = page.locator('#people .cluster');
    await cards.nth(0).locator('button.select').click();
    await cards.nth(1).locator('button.select').click();
    await page.click('#merge');
    await page.waitForFunction(() => document.querySelectorAll('#people .cluster').length === 2);
    assert.equal((await gallery.clusters()).clusters.find((c) => c.name === 'Ada')?.faces.length, 8);
    page.once('dialog', (d) => void d.accept());
    await page.locator('#people .cluster').nth(1).locator('button.remove').click();
    await page.waitForFunction(() => document.querySelectorAll('#people .cluster').length === 1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'library-after.png'), fullPage: true });
    assert.deepEqual(errors, []);
  });
});
