// The person ids of an EmbeddingIndex, interned in typed arrays: each id's UTF-8
// bytes (length-prefixed) in one arena, and an open-addressing hash table
// (linear probing) from the bytes to a small integer, the person number.
//
// Why not a Map<string, number> and an array of the strings: with one
// embedding per person (the worst case of a gallery), the map, the strings and
// the array cost ~130 bytes per person (1M people grew V8's heap by 61 MB,
// measured with --expose-gc), a quarter of a 128-d float32 row on top of it;
// here it is ~20 bytes (arena ~1 + id length, offset 4, hash slot 4-8), and
// the memory is countable (bytes).
//
// Numbers are dense and reused after delete(), so per-person data can live in
// typed arrays indexed by them. The arena is compacted when half of it is dead.

import { invalid } from '../core/errors';

const FREE = 0xffffffff;
/** A lone surrogate: UTF-8 would write U+FFFD for it, making two different ids the same bytes. */
const LONE_SURROGATE = /\p{Cs}/u;
const EMPTY = -1;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** FNV-1a over bytes[from, to). */
function hashBytes(bytes: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

/** [from, to) of the id bytes of the arena entry at `at` (a LEB128 length, then the bytes). */
function entryAt(a: Uint8Array, at: number): [number, number] {
  let p = at;
  let len = 0;
  for (let shift = 0; ; shift += 7) {
    const b = a[p++];
    len += (b & 127) * 2 ** shift;
    if (b < 128) break;
  }
  return [p, p + len];
}

export class IdTable {
  /** Length-prefixed (LEB128) UTF-8 ids. */
  private arena = new Uint8Array(1024);
  private arenaUsed = 0;
  private arenaDead = 0;
  /** Per number: the arena offset of its id, or FREE. */
  private offset = new Uint32Array(0);
  private next = 0;
  private free: number[] = [];
  /** Hash slots: a number or EMPTY; the capacity a power of two, at most three quarters full. */
  private slots = new Int32Array(1024).fill(EMPTY);
  private count = 0;
  /** The id being looked up, encoded (grown as needed). */
  private scratch = new Uint8Array(256);

  /** Number of ids. */
  get size(): number {
    return this.count;
  }

  /** Bytes held by the typed arrays (the table's whole memory but the free list). */
  get bytes(): number {
    return this.arena.byteLength + this.offset.byteLength + this.slots.byteLength + this.scratch.byteLength;
  }

  /** The number of an id, or -1. */
  get(id: string): number {
    const n = this.encode(id);
    if (n < 0) return -1; // never added: add() refuses such ids
    const mask = this.slots.length - 1;
    for (let i = hashBytes(this.scratch, 0, n) & mask; ; i = (i + 1) & mask) {
      const num = this.slots[i];
      if (num === EMPTY) return -1;
      if (this.equals(num, n)) return num;
    }
  }

  /** Adds an id that is not in the table; returns its number (a freed one if any). */
  add(id: string): number {
    if ((this.count + 1) * 4 > this.slots.length * 3) this.rehash(this.slots.length * 2);
    const n = this.encode(id);
    if (n < 0) invalid('id', 'a well-formed string (no lone surrogates)', id);
    const num = this.free.length ? this.free.pop()! : this.next++;
    if (num >= this.offset.length) {
      const grown = new Uint32Array(Math.max(1024, Math.ceil(this.offset.length * 1.5)));
      grown.set(this.offset);
      this.offset = grown;
    }
    this.offset[num] = this.append(this.scratch, n);
    const mask = this.slots.length - 1;
    let i = hashBytes(this.scratch, 0, n) & mask;
    while (this.slots[i] !== EMPTY) i = (i + 1) & mask;
    this.slots[i] = num;
    this.count++;
    return num;
  }

  /** The id of a live number. */
  idOf(num: number): string {
    const [from, to] = this.span(num);
    const a = this.arena;
    let ascii = true;
    for (let i = from; i < to; i++) if (a[i] > 127) ascii = false;
    // Short ASCII ids (the usual ones) without TextDecoder's call overhead.
    return ascii && to - from <= 64 ? String.fromCharCode.apply(null, a.subarray(from, to) as unknown as number[]) : decoder.decode(a.subarray(from, to));
  }

  /** Removes a live number's id; the number is reused by a later add(). */
  delete(num: number): void {
    const [from, to] = this.span(num);
    const mask = this.slots.length - 1;
    let i = hashBytes(this.arena, from, to) & mask;
    while (this.slots[i] !== num) i = (i + 1) & mask;
    // Backward-shift deletion: later entries of the probe run move into the hole (no tombstones).
    for (let j = (i + 1) & mask; this.slots[j] !== EMPTY; j = (j + 1) & mask) {
      const [f, t] = this.span(this.slots[j]);
      const home = hashBytes(this.arena, f, t) & mask;
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!between) {
        this.slots[i] = this.slots[j];
        i = j;
      }
    }
    this.slots[i] = EMPTY;
    this.arenaDead += to - this.offset[num];
    this.offset[num] = FREE;
    this.free.push(num);
    this.count--;
    if (this.arenaDead > 65536 && this.arenaDead * 2 > this.arenaUsed) this.compact();
  }

  /** The live numbers, ascending. */
  numbers(): number[] {
    const out: number[] = [];
    for (let num = 0; num < this.next; num++) if (this.offset[num] !== FREE) out.push(num);
    return out;
  }

  clear(): void {
    this.arena = new Uint8Array(1024);
    this.arenaUsed = this.arenaDead = this.next = this.count = 0;
    this.offset = new Uint32Array(0);
    this.free = [];
    this.slots = new Int32Array(1024).fill(EMPTY);
  }

  /** The id into this.scratch as UTF-8; returns its byte length, or -1 for a string with a lone surrogate. */
  private encode(id: string): number {
    if (this.scratch.length < id.length * 3) this.scratch = new Uint8Array(id.length * 3);
    const s = this.scratch;
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      if (c > 127) return LONE_SURROGATE.test(id) ? -1 : encoder.encodeInto(id, s).written;
      s[i] = c;
    }
    return id.length;
  }

  /** [from, to) of a number's id bytes in the arena. */
  private span(num: number): [number, number] {
    return entryAt(this.arena, this.offset[num]);
  }

  private equals(num: number, n: number): boolean {
    const [from, to] = this.span(num);
    if (to - from !== n) return false;
    const a = this.arena;
    const s = this.scratch;
    for (let i = 0; i < n; i++) if (a[from + i] !== s[i]) return false;
    return true;
  }

  /** Appends a length-prefixed id; returns its offset. */
  private append(bytes: Uint8Array, n: number): number {
    if (this.arenaUsed + n + 5 > this.arena.length) {
      const grown = new Uint8Array(Math.max(this.arena.length * 1.5, this.arenaUsed + n + 5) | 0);
      grown.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = grown;
    }
    if (this.arenaUsed + n + 5 > FREE) throw new RangeError('IdTable: more than 4 GB of ids');
    const at = this.arenaUsed;
    let p = at;
    for (let len = n; ; len = Math.floor(len / 128)) {
      this.arena[p++] = len >= 128 ? (len & 127) | 128 : len;
      if (len < 128) break;
    }
    this.arena.set(bytes.subarray(0, n), p);
    this.arenaUsed = p + n;
    return at;
  }

  private rehash(capacity: number): void {
    const slots = new Int32Array(capacity).fill(EMPTY);
    const mask = capacity - 1;
    for (let num = 0; num < this.next; num++) {
      if (this.offset[num] === FREE) continue;
      const [from, to] = this.span(num);
      let i = hashBytes(this.arena, from, to) & mask;
      while (slots[i] !== EMPTY) i = (i + 1) & mask;
      slots[i] = num;
    }
    this.slots = slots;
  }

  /** Rewrites the arena without the deleted ids (numbers and hash slots are unchanged). */
  private compact(): void {
    const old = this.arena;
    const oldOffset = this.offset.slice(0, this.next);
    this.arena = new Uint8Array(Math.max(1024, Math.ceil((this.arenaUsed - this.arenaDead) * 1.25)));
    this.arenaUsed = this.arenaDead = 0;
    for (let num = 0; num < this.next; num++) {
      const at = oldOffset[num];
      if (at === FREE) continue;
      const [from, to] = entryAt(old, at);
      this.offset[num] = this.append(old.subarray(from, to), to - from);
    }
  }
}
