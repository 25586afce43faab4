// The gallery's id table (lib/gallery/id-table.ts) against a Map, as a model:
// random adds, lookups and deletes, with non-ASCII ids, ids longer than 127 bytes
// (a two-byte length prefix), enough deletes to compact the arena, and enough
// ids to grow the hash table several times.
import { strict as assert } from 'assert';
import { IdTable } from '../../lib/gallery/id-table';

describe('gallery: IdTable (ids interned in typed arrays)', () => {
  it('agrees with a Map through adds, lookups, deletes, number reuse, rehashes and compaction', () => {
    let s = 12345;
    const rand = (n: number) => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s % n;
    };
    const makeId = (i: number) => {
      switch (i % 5) {
        case 0: return `person-${i}`;
        case 1: return `Zoë ${i} 山田`;
        case 2: return `${'x'.repeat(130 + (i % 50))}${i}`; // over 127 bytes
        case 3: return `😀${i}`;
        default: return String(i);
      }
    };
    const table = new IdTable();
    const model = new Map<string, number>();
    const numbers = new Set<number>();
    for (let step = 0; step < 60000; step++) {
      const i = rand(20000);
      const id = makeId(i);
      const op = rand(10);
      if (op < 6) {
        if (model.has(id)) continue;
        const num = table.add(id);
        assert.ok(!numbers.has(num), `number ${num} given twice`);
        numbers.add(num);
        model.set(id, num);
      } else if (op < 9) {
        assert.equal(table.get(id), model.get(id) ?? -1, `get(${id})`);
      } else if (model.has(id)) {
        const num = model.get(id)!;
        table.delete(num);
        numbers.delete(num);
        model.delete(id);
        assert.equal(table.get(id), -1);
      }
    }
    assert.equal(table.size, model.size);
    for (const [id, num] of model) {
      assert.equal(table.get(id), num);
      assert.equal(table.idOf(num), id);
    }
    assert.deepEqual(table.numbers(), [...numbers].sort((a, b) => a - b));
    // Numbers are dense: freed ones are reused before new ones are made.
    assert.ok(Math.max(...numbers) < model.size + 1000, `numbers up to ${Math.max(...numbers)} for ${model.size} ids`);
    // Everything deleted: the arena is compacted, lookups still answer -1, and adding works again.
    for (const num of table.numbers()) table.delete(num);
    assert.equal(table.size, 0);
    assert.equal(table.get(makeId(1)), -1);
    const bytes = table.bytes;
    assert.equal(table.idOf(table.add('again')), 'again');
    assert.ok(bytes < 2_000_000, `${bytes} bytes held after deleting everything`);
  });

  it('refuses ids with a lone surrogate (UTF-8 would make two of them the same bytes)', () => {
    const table = new IdTable();
    table.add('a\ud83d\ude00'); // a well-formed pair (an emoji) is fine
    assert.throws(() => table.add('x\ud800'), /lone surrogates/);
    assert.equal(table.get('x\ud800'), -1);
    assert.equal(table.get('x\udbff'), -1);
    assert.equal(table.get('a\ud83d\ude00'), 0);
  });

  it('holds a million short ids in under 24 bytes each', () => {
    const table = new IdTable();
    for (let i = 0; i < 1_000_000; i++) table.add(`p${i}`);
    assert.equal(table.get('p777777'), 777777);
    assert.equal(table.idOf(123456), 'p123456');
    assert.ok(table.bytes / 1e6 < 24, `${table.bytes / 1e6} bytes per id`);
  });
});
