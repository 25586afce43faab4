// The photo library end to end on a temporary folder: indexing (recursive,
// formats, EXIF orientation, incremental skip by size + mtime and by hash,
// changed and deleted files, a corrupt file reported and skipped), clustering
// (people found, poor faces unclustered), naming (an enrolled person that new
// photos join and identify() finds), rename, merge, split, move and remove,
// the CLI commands, and real faces with the pretrained model (face-data).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { FaceGallery, FaceModel, UnknownClusterError, ArgumentError, FileAccessError } from '../../lib';
import { PixelFaceModel } from '../../lib/testing/pixel-face-model';
import { facesDir } from '../../lib/util/paths';
import { main } from '../../cli/torchface';
import { needs } from '../helpers/peers';
import { blank, photo, photoPixels } from '../helpers/photos';

async function capture(fn: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const wo = process.stdout.write.bind(process.stdout);
  const we = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string | Uint8Array) => (out.push(String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => (err.push(String(c)), true)) as typeof process.stderr.write;
  try {
    const code = await fn();
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = wo;
    process.stderr.write = we;
  }
}

/** A folder: 4 photos each of people a, b, c (b in a subfolder, mixed formats), a tiny photo, a blank one, a corrupt one and a text file. */
async function makeFolder(dir: string): Promise<void> {
  fs.mkdirSync(path.join(dir, 'sub', 'deeper'), { recursive: true });
  for (let i = 0; i < 4; i++) {
    fs.writeFileSync(path.join(dir, `a${i}.jpg`), await photo('a', 10 + i));
    fs.writeFileSync(path.join(dir, 'sub', `b${i}.${i % 2 ? 'png' : 'webp'}`), await photo('b', 20 + i, i % 2 ? 'png' : 'webp'));
    fs.writeFileSync(path.join(dir, 'sub', 'deeper', `c${i}.JPEG`), await photo('c', 30 + i));
  }
  fs.writeFileSync(path.join(dir, 'tiny.png'), await photo('d', 1, 'png', 12, 14)); // a face too small to place (CLUSTER_QUALITY.minSize 16)
  fs.writeFileSync(path.join(dir, 'blank.png'), await blank()); // no face
  fs.writeFileSync(path.join(dir, 'broken.jpg'), Buffer.concat([(await photo('a', 99)).subarray(0, 200)])); // truncated
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a photo');
  fs.mkdirSync(path.join(dir, '.thumbnails'));
  fs.writeFileSync(path.join(dir, '.thumbnails', 'x.jpg'), await photo('a', 5)); // hidden: skipped
}

describe('photo library', function () {
  this.timeout(120000);
  let dir: string;
  let photos: string;
  let gallery: FaceGallery;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-library-'));
    photos = path.join(dir, 'photos');
    fs.mkdirSync(photos);
    await makeFolder(photos);
    gallery = await FaceGallery.open(path.join(dir, 'lib.db'), { model: new PixelFaceModel() });
  });
  after(async () => {
    await gallery?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('indexes a folder recursively, skipping hidden files and other types, reporting the corrupt file', async () => {
    const progress: number[] = [];
    const s = await gallery.indexPhotos(photos, { onProgress: (p) => progress.push(p.done) });
    assert.equal(s.files, 15); // 12 + tiny + blank + broken
    assert.equal(s.added, 14);
    assert.equal(s.failed.length, 1);
    assert.match(s.failed[0].file, /broken\.jpg$/);
    assert.match(s.failed[0].error, /decode/);
    assert.equal(s.faces, 13); // the blank photo has none
    assert.equal(s.totalFaces, 13);
    assert.equal(progress.length, 15);
    assert.ok(s.facesPerSecond > 0);
    const p = (await gallery.photos()).map((x) => path.relative(photos, x.path));
    assert.ok(p.includes(path.join('sub', 'deeper', 'c0.JPEG')));
    assert.ok(!p.some((x) => x.startsWith('.thumbnails')));
  });

  it('is incremental: unchanged files skipped, a touched file re-hashed, a changed one re-indexed, a deleted one removed', async () => {
    const again = await gallery.indexPhotos(photos);
    assert.equal(again.added + again.updated, 0);
    assert.equal(again.unchanged, 14);
    assert.equal(again.failed.length, 1); // still broken, still reported
    // Same content, new mtime: hashed, not decoded.
    const a0 = path.join(photos, 'a0.jpg');
    const t = new Date(Date.now() + 60_000);
    fs.utimesSync(a0, t, t);
    const touched = await gallery.indexPhotos(photos);
    assert.equal(touched.updated, 0);
    assert.equal(touched.unchanged, 14);
    assert.equal(touched.faces, 0);
    const row = gallery.library.store.photoByPath(a0)!;
    assert.equal(row.mtimeMs, fs.statSync(a0).mtimeMs);
    // New content: indexed again (its old face replaced).
    const before = gallery.library.store.facesOfPhoto(row.id)[0].id;
    fs.writeFileSync(a0, await photo('a', 77));
    const changed = await gallery.indexPhotos(photos);
    assert.equal(changed.updated, 1);
    const row2 = gallery.library.store.photoByPath(a0)!;
    assert.notEqual(gallery.library.store.facesOfPhoto(row2.id)[0].id, before);
    // Deleted: removed with its faces.
    fs.unlinkSync(path.join(photos, 'blank.png'));
    const gone = await gallery.indexPhotos(photos);
    assert.equal(gone.removed, 1);
    assert.equal(gallery.library.store.photoByPath(path.join(photos, 'blank.png')), null);
    assert.equal(gone.totalFaces, 13);
  });

  it('applies the EXIF orientation: boxes are in the photo as displayed', async () => {
    const sub = path.join(dir, 'exif');
    fs.mkdirSync(sub);
    // 80 x 96 pixels stored, orientation 6 (rotate 90 degrees clockwise to display): 96 x 80 displayed.
    const bytes = await sharp(photoPixels('a', 3), { raw: { width: 80, height: 96, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    fs.writeFileSync(path.join(sub, 'rotated.jpg'), bytes);
    const g = await FaceGallery.open(':memory:', { model: new PixelFaceModel() });
    try {
      await g.indexPhotos(sub);
      const [p] = await g.photos();
      assert.deepEqual([p.width, p.height], [96, 80]);
      const [f] = g.library.store.facesOfPhoto(p.id);
      assert.deepEqual(f.box, { x: 0, y: 0, width: 96, height: 80 });
    } finally {
      await g.close();
    }
  });

  it('clusters the faces into people; the face too small to place stays unclustered', async () => {
    const r = await gallery.cluster();
    assert.equal(r.clusters.length, 3);
    assert.deepEqual(
      r.clusters.map((c) => c.faces.map((f) => path.basename(f.file)[0]).join('')).sort(),
      ['aaaa', 'bbbb', 'cccc'],
    );
    assert.deepEqual(
      r.unclustered.map((f) => path.basename(f.file)),
      ['tiny.png'],
    );
    assert.equal(r.summary.poor, 1);
    assert.equal(r.summary.algorithm, 'chinese-whispers');
    // Clustering again keeps the ids.
    const ids = r.clusters.map((c) => c.id).sort();
    const again = await gallery.cluster();
    assert.deepEqual(again.clusters.map((c) => c.id).sort(), ids);
  });

  const clusterOf = async (letter: string) => (await gallery.clusters()).clusters.find((c) => c.faces.some((f) => path.basename(f.file).startsWith(letter)))!;

  it('name(): the cluster becomes an enrolled person; identify() finds them; new photos join them', async () => {
    const a = await clusterOf('a');
    const named = await gallery.name(a.id, 'Ada');
    assert.equal(named.name, 'Ada');
    assert.ok(named.faces.every((f) => f.pinned && f.name === 'Ada'));
    const person = await gallery.get('Ada');
    assert.equal(person?.embeddings, 4);
    const who = await gallery.identify(await photo('a', 500), { detect: false });
    assert.equal(who.id, 'Ada');
    // Two new photos of Ada, indexed and clustered: they join her cluster.
    fs.writeFileSync(path.join(photos, 'new-a1.jpg'), await photo('a', 501));
    fs.writeFileSync(path.join(photos, 'new-a2.png'), await photo('a', 502, 'png'));
    await gallery.indexPhotos(photos);
    const r = await gallery.cluster();
    const ada = r.clusters.find((c) => c.name === 'Ada')!;
    assert.equal(ada.id, a.id);
    assert.equal(ada.faces.length, 6);
    assert.equal(ada.faces.filter((f) => !f.pinned).length, 2);
    // The photo view shows the name.
    const p = gallery.library.store.photoByPath(path.join(photos, 'new-a1.jpg'))!;
    assert.equal(gallery.library.photo(p.id)!.faceList[0].name, 'Ada');
    // Naming with a bad id is an ArgumentError; an unknown cluster an UnknownClusterError.
    await assert.rejects(gallery.name(a.id, ' Ada'), ArgumentError);
    await assert.rejects(gallery.name(999, 'Bob'), UnknownClusterError);
  });

  it('renaming renames the person; naming another cluster with a taken name merges them', async () => {
    const a = await clusterOf('a');
    await gallery.name(a.id, 'Ada Lovelace');
    assert.equal(await gallery.get('Ada'), null);
    // Naming (again) confirms every face of the cluster: the two that joined on their own too.
    assert.equal((await gallery.get('Ada Lovelace'))?.embeddings, 6);
    const b = await clusterOf('b');
    const merged = await gallery.name(b.id, 'Ada Lovelace');
    assert.equal(merged.id, a.id);
    assert.equal(merged.faces.length, 10);
    assert.equal((await gallery.get('Ada Lovelace'))?.embeddings, 10);
    assert.equal(gallery.library.store.cluster(b.id), null);
  });

  it('split() moves faces into a new cluster that clustering keeps; the person keeps the rest', async () => {
    const ada = await clusterOf('a');
    const bFaces = ada.faces.filter((f) => path.basename(f.file).startsWith('b')).map((f) => f.id);
    const split = await gallery.split(ada.id, bFaces);
    assert.equal(split.faces.length, 4);
    assert.equal(split.name, null);
    assert.equal((await gallery.get('Ada Lovelace'))?.embeddings, 6);
    const r = await gallery.cluster();
    assert.equal(r.clusters.length, 3);
    assert.equal(r.clusters.find((c) => c.id === split.id)?.faces.length, 4);
    await assert.rejects(gallery.split(ada.id, [bFaces[0]]), ArgumentError); // not in Ada's cluster any more
  });

  it('merge() of an unnamed cluster into a named one, and removeCluster(): faces never clustered again', async () => {
    const b = await clusterOf('b');
    const c = await clusterOf('c');
    await gallery.name(c.id, 'Cy');
    const m = await gallery.merge(b.id, c.id); // the unnamed target takes the name
    assert.equal(m.name, 'Cy');
    assert.equal(m.faces.length, 8);
    assert.equal((await gallery.get('Cy'))?.embeddings, 8);
    await gallery.removeCluster(m.id);
    assert.equal(await gallery.get('Cy'), null);
    const r = await gallery.cluster();
    assert.equal(r.clusters.length, 1); // only Ada's
    assert.ok(!r.unclustered.some((f) => /^[bc]/.test(path.basename(f.file)))); // removed faces are ignored, not unclustered
    await assert.rejects(gallery.removeCluster(m.id), UnknownClusterError);
  });

  it('moveFace(): into a cluster (pinned) or out for good', async () => {
    const tiny = (await gallery.clusters()).unclustered.find((f) => path.basename(f.file) === 'tiny.png')!;
    const ada = await clusterOf('a');
    const moved = await gallery.library.moveFace(tiny.id, ada.id);
    assert.equal(moved.cluster, ada.id);
    assert.ok(moved.pinned);
    // Placed by hand, it stays although it is too small to be placed by clustering.
    const again = await gallery.cluster();
    assert.ok(again.clusters.find((c) => c.id === ada.id)!.faces.some((f) => f.id === tiny.id));
    const out = await gallery.library.moveFace(tiny.id, null);
    assert.equal(out.cluster, null);
    assert.ok(out.ignored);
  });

  it('a missing folder is a FileAccessError; a model without faces() cannot index', async () => {
    await assert.rejects(gallery.indexPhotos(path.join(dir, 'nope')), FileAccessError);
    const plain = await FaceGallery.open(':memory:', { model: { name: 'x', weightsHash: 'y', dim: 2, embedBatch: async () => [] } });
    try {
      await assert.rejects(plain.indexPhotos(photos), ArgumentError);
    } finally {
      await plain.close();
    }
  });

  it('CLI: torchface index and cluster (--json, --html), name and merge', async () => {
    const db = path.join(dir, 'cli.db');
    // --model pixels is a test hook of the CLI, not offered to users without it.
    const hook = process.env.TORCHFACE_TEST_MODEL;
    process.env.TORCHFACE_TEST_MODEL = 'pixels';
    try {
      let r = await capture(() => main(['index', photos, '--gallery', db, '--model', 'pixels', '--json']));
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout);
      assert.equal(s.added, 15);
      assert.match(r.stderr, /skipped .*broken\.jpg/);
      const html = path.join(dir, 'report.html');
      r = await capture(() => main(['cluster', photos, '--gallery', db, '--model', 'pixels', '--json', '--html', html]));
      assert.equal(r.code, 0, r.stderr);
      const c = JSON.parse(r.stdout);
      assert.equal(c.clusters.length, 3);
      assert.deepEqual(Object.keys(c.clusters[0].faces[0]).sort(), ['box', 'file', 'id', 'score']);
      assert.deepEqual(
        c.unclustered.map((f: { file: string }) => path.basename(f.file)),
        ['tiny.png'],
      );
      const page = fs.readFileSync(html, 'utf8');
      assert.equal((page.match(/<tr>/g) ?? []).length, 3);
      assert.equal((page.match(/src="data:image\/jpeg;base64,/g) ?? []).length, 14 + 1); // 14 faces clustered, 1 not
      assert.ok(!/src="(?!data:)/.test(page)); // self-contained
      r = await capture(() => main(['name', '--gallery', db, '--cluster', String(c.clusters[0].id), '--id', 'Zed', '--json']));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).name, 'Zed');
      r = await capture(() => main(['merge', '--gallery', db, '--cluster', String(c.clusters[0].id), '--from', String(c.clusters[1].id)]));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\(Zed\) has 10 faces/);
      // Text output, in memory (no --gallery).
      r = await capture(() => main(['cluster', photos, '--model', 'pixels']));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /3 people, 14 faces clustered, 1 unclustered/);
      r = await capture(() => main(['cluster', photos, '--model', 'pixels', '--algorithm', 'kmeans']));
      assert.equal(r.code, 2);
    } finally {
      if (hook === undefined) delete process.env.TORCHFACE_TEST_MODEL;
      else process.env.TORCHFACE_TEST_MODEL = hook;
    }
    // Without the hook, users are offered the face model only.
    const r = await capture(() => main(['cluster', photos, '--model', 'pixels']));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--model expects faceapi/);
  });
});

describe('photo library with real faces', function () {
  this.timeout(600000);
  before(function () {
    needs(this, 'face-data');
  });

  it('finds, describes and groups the faces of two people (pretrained model)', async () => {
    const root = path.join(facesDir()!, 'celeba299');
    const ids = fs.readdirSync(root).sort().slice(1, 5).filter((_, i) => i % 2 === 0); // two held-out identities
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchface-library-faces-'));
    const model = await FaceModel.pretrained();
    const g = await FaceGallery.open(':memory:', { model });
    try {
      for (const id of ids) for (const f of fs.readdirSync(path.join(root, id)).sort().slice(0, 4)) fs.symlinkSync(path.join(root, id, f), path.join(dir, `${id}-${f}`));
      const s = await g.indexPhotos(dir);
      assert.equal(s.added, 8);
      assert.equal(s.failed.length, 0);
      assert.ok(s.faces >= 8, `${s.faces} faces`);
      const f = g.library.store.allFaces()[0];
      assert.equal(f.landmarks.length, 68);
      assert.ok(f.quality && f.quality.sharpness > 0 && f.quality.size > 20);
      assert.ok(f.box.width > 20 && f.box.x >= 0);
      const r = await g.cluster();
      // The largest face of each photo: grouped by person, no cluster mixing the two.
      for (const c of r.clusters) assert.equal(new Set(c.faces.map((x) => path.basename(x.file).split('-')[0])).size, 1, JSON.stringify(c.faces.map((x) => x.file)));
      assert.ok(r.clusters.length >= 2 && r.clusters.length <= 4, `${r.clusters.length} clusters`);
      assert.ok(g.clusterThreshold > 0.5 && g.clusterThreshold < 0.6, String(g.clusterThreshold));
      // Named, the person is found in a photo of them that was not indexed.
      const c = r.clusters[0];
      const who = path.basename(c.faces[0].file).split('-')[0];
      await g.name(c.id, 'first');
      const extra = fs.readdirSync(path.join(root, who)).sort()[5];
      const found = await g.identifyFaces(path.join(root, who, extra));
      assert.ok(found.faces.some((x) => x.id === 'first'), JSON.stringify(found.faces.map((x) => [x.id, x.distance])));
      assert.ok(found.faces.every((x) => x.box.width > 0 && x.far !== undefined));
    } finally {
      await g.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
