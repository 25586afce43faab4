// One "service" of several sharing a PostgreSQL gallery, for the scale-out
// tests (test/e2e/gallery-pgvector-scale.test.ts). argv: TABLE MODE ...
//   enroll FROM TO [append]  enrolls person-i for i in [FROM, TO) and prints
//                            `ok person-i` (or `dup person-i`) once the call returned
//   identify                 reads `person-i` lines on stdin and answers
//                            `person-i <identified id or null>` for each
import * as readline from 'readline';
import { DuplicateIdError, PgVectorGallery } from '../../lib';
import { seededRandom } from '../../lib/util/random';

/** A unit vector per person: independent directions, so distinct people are ~1.4 apart. */
export function vectorFor(i: number, dim = 128): Float32Array {
  const r = seededRandom(1000 + i);
  const v = Float32Array.from({ length: dim }, () => r() - 0.5);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

async function main(): Promise<void> {
  const [table, mode, ...rest] = process.argv.slice(2);
  const g = await PgVectorGallery.open(process.env.DATABASE_URL!, { table });
  if (mode === 'enroll') {
    const [from, to] = rest.map(Number);
    const append = rest[2] === 'append';
    for (let i = from; i < to; i++) {
      const id = `person-${i}`;
      try {
        await g.enrollEmbeddings(id, vectorFor(i), { append, metadata: { pid: process.pid } });
        process.stdout.write(`ok ${id}\n`);
      } catch (e) {
        if (!(e instanceof DuplicateIdError)) throw e;
        process.stdout.write(`dup ${id}\n`);
      }
    }
  } else if (mode === 'identify') {
    process.stdout.write('ready\n');
    for await (const line of readline.createInterface({ input: process.stdin })) {
      const i = Number(line.split('-')[1]);
      const [r] = await g.identifyEmbeddings([vectorFor(i)], { k: 1 });
      process.stdout.write(`${line} ${r.id}\n`);
    }
  } else throw new Error(`unknown mode ${mode}`);
  await g.close();
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
