// Detects and aligns the largest face of every image of an identity-folder data
// set once (face-api SSD + 68 landmarks + similarity alignment) and caches the
// crops as PNGs in the same layout, for training with `--detect`.
//   node dist/scripts/align-dataset.js --data DIR --out DIR [--size 96] [--max-per-identity N]
import { z } from 'zod';
import { parseOptions } from '../lib/core/errors';
import { prepareAlignedDataset, scanIdentities } from '../lib/face/train/dataset';
import { alignLargestFace } from '../lib/face/align';
import { ProgressBar } from '../lib/util/progress';
import { parseArgs } from './cli';

const schema = z
  .object({
    data: z.string(),
    out: z.string(),
    size: z.coerce.number().int().min(32).max(512).default(96),
    'max-per-identity': z.coerce.number().int().positive().optional(),
    help: z.boolean().optional(),
  })
  .strict();

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    console.log('Usage: node dist/scripts/align-dataset.js --data DIR --out DIR [--size 96] [--max-per-identity N]');
    return;
  }
  const o = parseOptions(schema, args, 'args');
  const ids = scanIdentities(o.data, { maxPerIdentity: o['max-per-identity'] });
  const total = ids.reduce((n, i) => n + i.files.length, 0);
  const bar = new ProgressBar({ total, label: 'align' });
  const r = await prepareAlignedDataset(ids, o.out, async (f) => (await alignLargestFace(f, { size: o.size })).aligned, { onProgress: () => bar.tick(1) });
  bar.done();
  console.log(JSON.stringify({ identities: r.identities.length, aligned: r.aligned, cached: r.cached, failed: r.failed.length }));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
