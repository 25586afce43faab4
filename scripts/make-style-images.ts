// Writes the synthetic style and content images (test/helpers/style-images.ts) to a folder.
import * as path from 'path';
import { packageRoot } from '../lib/util/paths';
import { makeImageSet, makeStyleImages } from '../test/helpers/style-images';

// node dist/scripts/make-style-images.js [outDir=docs/images] [size=256]
// node dist/scripts/make-style-images.js --set DIR [n=12] [size=224]
if (require.main === module) {
  if (process.argv[2] === '--set') {
    makeImageSet(process.argv[3] ?? 'style-image-set', Number(process.argv[4] ?? 12), Number(process.argv[5] ?? 224)).then((f) => console.log(`${f.length} images in ${process.argv[3] ?? 'style-image-set'}`));
  } else {
    const outDir = process.argv[2] ?? path.join(packageRoot, 'docs', 'images');
    const size = Number(process.argv[3] ?? 256);
    makeStyleImages(outDir, size).then((files) => console.log(files.join('\n')));
  }
}
