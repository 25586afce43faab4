// Child process for the SIGKILL durability test: enrolls people into a gallery
// file as fast as it can and prints each id once enroll() has returned.
import { FaceGallery } from '../../lib';
import { PixelFaceModel } from '../../lib/testing/pixel-face-model';

async function main(): Promise<void> {
  const g = await FaceGallery.open(process.argv[2], { model: new PixelFaceModel() });
  for (let i = 0; ; i++) {
    const v = new Float32Array(128);
    for (let j = 0; j < 128; j++) v[j] = Math.sin(i * 0.37 + j);
    const id = `person-${i}`;
    await g.enrollEmbeddings(id, [v, v.map((x) => -x)], { metadata: { i } });
    process.stdout.write(id + '\n');
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
