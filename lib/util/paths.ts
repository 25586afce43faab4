// Well-known locations: the package root and the shared face data sets.
import * as fs from 'fs';
import * as path from 'path';

/** The torchface package root (where package.json is). */
export const packageRoot = path.resolve(__dirname, '..', '..', '..');

/**
 * The folder of real face data sets (att, yaleb, celeba299, lfw-view1):
 * TORCHFACE_FACES_DIR, else ../shared/data/faces beside the checkout.
 * Returns null when it does not exist (tests that need it skip).
 */
export function facesDir(): string | null {
  const dir = process.env.TORCHFACE_FACES_DIR ?? path.resolve(packageRoot, '..', 'shared', 'data', 'faces');
  return fs.existsSync(dir) ? dir : null;
}

/** torchface's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}
