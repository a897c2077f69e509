/**
 * Exact near-duplicate search over 64-bit perceptual hashes: every hash stored so far
 * within a Hamming distance of a query, fast and compact at hundreds of thousands
 * of hashes.
 *
 * @module
 */
import { invalidOption } from '../errors.js';

/** Options of {@link DuplicateIndex}. */
export interface DuplicateIndexOptions {
  /**
   * The largest Hamming distance a query will ask for, an integer 0 … 64. Queries
   * use it when they name no distance, and refuse a larger one.
   * @default 6
   */
  maxDistance?: number;
}

/** A stored hash that matched a query. */
export interface DuplicateMatch {
  /** The key the hash was stored with. */
  key: string;
  /** Hamming distance from the query, 0 … 64. */
  distance: number;
}

/** The 64 bits are cut into this many blocks of {@link BLOCK_BITS} bits, each with its own tables. */
const BLOCKS = 4;
const BLOCK_BITS = 16;
const BUCKETS = 1 << BLOCK_BITS;
const MAX_HASH = (1n << 64n) - 1n;
const INITIAL_CAPACITY = 1024;
/** The sorted part is rebuilt when the chained part outgrows this, or a quarter of the sorted part. */
const MIN_TAIL = 4096;

/**
 * All 16-bit masks ordered by the number of bits set: the masks of weight w are
 * `MASKS[MASKS_UP_TO[w] … MASKS_UP_TO[w + 1] − 1]`. XOR-ing a block value with them
 * enumerates the values at distance w from it.
 */
const { MASKS, MASKS_UP_TO } = (() => {
  const byWeight: number[][] = Array.from({ length: BLOCK_BITS + 1 }, () => []);
  for (let mask = 0; mask < BUCKETS; mask++) byWeight[popcount32(mask)]!.push(mask);
  const upTo = new Int32Array(BLOCK_BITS + 2);
  for (let weight = 0; weight <= BLOCK_BITS; weight++) upTo[weight + 1] = upTo[weight]! + byWeight[weight]!.length;
  return { MASKS: Uint16Array.from(byWeight.flat()), MASKS_UP_TO: upTo };
})();

/** One block's buckets over the sorted part: bucket v is positions `start[v] … start[v + 1] − 1`. */
interface SortedBlock {
  start: Int32Array;
  /** Entry ids, ascending within a bucket. */
  ids: Int32Array;
  /** The entries' hashes, high and low half interleaved, in the same order: a bucket is read front to back. */
  hashes: Int32Array;
}

/**
 * A set of `(hash, key)` pairs searchable by Hamming distance, exactly: a query finds
 * every stored hash within the distance, never a false negative, never a false match.
 *
 * Search (multi-index hashing, Norouzi, Punjani & Fleet, "Fast exact search in
 * Hamming space with multi-index hashing", TPAMI 2014): the 64 bits are four 16-bit
 * blocks. For a query within distance `d = 4r + a` (0 ≤ a < 4), some block of a
 * match is within `r` of the query's block among the last `a + 1` blocks, or within
 * `r − 1` among the others (if every block differed more, the total would exceed
 * `d`). So for `d = 6` a query looks up the exact value of block 0 and the 17 values
 * within 1 bit in blocks 1–3 — 52 buckets — and checks each entry found with the full
 * distance. Block 0 holds the DC term and the lowest frequencies, the bits that vary
 * least between images of one kind (all chest X-rays), so its crowded buckets are
 * the ones looked up once rather than 17 times. The plans for `d = 0, 1, 2, …` nest,
 * so {@link DuplicateIndex.nearest} looks up the buckets of the plan for 0 first,
 * then what the plan for 1 adds, and so on, and stops as soon as the best match found
 * is no farther than the plan covered: where hashes crowd, a close match ends the
 * search early.
 *
 * Layout: every hash is two 32-bit halves in typed arrays that grow by doubling, every
 * key one slot of an array — no BigInt, Map or array per entry. The buckets come in
 * two parts. The older entries are sorted by each block's value (a counting sort per
 * block, with copies of the hashes alongside), so a bucket is read front to back —
 * crowded buckets, which images of one kind make, cost sequential reads, not a chase
 * through memory. The entries added since the last sort are chained per bucket
 * (a head per bucket value, a link per entry and block); when they outnumber a
 * quarter of the sorted ones (and 4096), everything is sorted again — O(n) now and
 * then, amortised to a constant per add (at 250 000 hashes, about one add in 50 000
 * re-sorts, some 20 ms).
 *
 * A query reads each stored entry at most once per block, so even hashes that all
 * crowd into a few buckets cost at most four times a linear scan; where the buckets
 * to look up would cost more than a scan (a small index, a large distance), the query
 * scans instead. Memory: 2 MiB of bucket tables, then about 100 bytes a hash with an
 * 11-character key — 25.5 MiB at 250 000 (see {@link DuplicateIndex.memoryBytes}).
 *
 * Ties — several stored hashes at the same distance — go to the one added first.
 *
 * @example
 * ```ts
 * const index = new DuplicateIndex({ maxDistance: 6 });
 * for (const { key, pixels } of images) {
 *   const hash = perceptualHash({ pixels, width: 512, height: 512 });
 *   const near = index.nearest(hash);
 *   if (near) console.log(`${key} nearly duplicates ${near.key} (distance ${near.distance})`);
 *   else index.add(hash, key);
 * }
 * ```
 */
export class DuplicateIndex {
  /** The largest distance a query may ask for, and the default one. */
  readonly maxDistance: number;
  #size = 0;
  #high = new Uint32Array(0);
  #low = new Uint32Array(0);
  readonly #keys: string[] = [];
  #keyBytes = 0;
  /** Entries `0 … #sortedSize − 1` are in the sorted blocks; the rest are chained. */
  #sortedSize = 0;
  #sorted: SortedBlock[] = [];
  /** `#tailHeads[b·65536 + v]`: the newest chained entry whose block `b` is `v`, or −1. */
  readonly #tailHeads = new Int32Array(BLOCKS * BUCKETS).fill(-1);
  /** `#tailNext[(id − #sortedSize)·4 + b]`: the chained entry before `id` in its bucket of block `b`, or −1. */
  #tailNext = new Int32Array(0);

  /**
   * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` (option `maxDistance`) unless it is an integer 0 … 64
   * @example
   * ```ts
   * const index = new DuplicateIndex({ maxDistance: 4 });
   * ```
   */
  constructor(options: DuplicateIndexOptions = {}) {
    const maxDistance = options.maxDistance ?? 6;
    checkDistance(maxDistance, 64);
    this.maxDistance = maxDistance;
  }

  /**
   * The number of hashes stored.
   *
   * @example
   * ```ts
   * new DuplicateIndex().size; // 0
   * ```
   */
  get size(): number {
    return this.#size;
  }

  /**
   * Stores `hash` under `key`. The same hash or key may be added again: each add is
   * an entry of its own.
   *
   * @param hash an unsigned 64-bit hash, as {@link perceptualHash} returns
   * @param key what a query returns for this entry (a sample key)
   * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` (option `hash` or `key`) for a hash outside 0 … 2^64 − 1 or a key that is not a string
   * @example
   * ```ts
   * index.add(0x8f3c_0000_1234_ffffn, 's50414267_0');
   * ```
   */
  add(hash: bigint, key: string): void {
    checkHash(hash);
    if (typeof key !== 'string') invalidOption('key', `must be a string, got ${typeof key}`);
    const id = this.#size;
    if (id === this.#high.length) {
      const capacity = Math.max(INITIAL_CAPACITY, id * 2);
      this.#high = grown(this.#high, capacity);
      this.#low = grown(this.#low, capacity);
    }
    const high = Number(hash >> 32n);
    const low = Number(hash & 0xffffffffn);
    this.#high[id] = high;
    this.#low[id] = low;
    this.#keys.push(key);
    this.#keyBytes += stringBytes(key);
    this.#size = id + 1;

    const chained = id - this.#sortedSize;
    if (chained >= Math.max(MIN_TAIL, this.#sortedSize / 4)) {
      this.#sortAll();
      return;
    }
    if ((chained + 1) * BLOCKS > this.#tailNext.length) this.#tailNext = grown(this.#tailNext, Math.max(INITIAL_CAPACITY, this.#tailNext.length * 2));
    const heads = this.#tailHeads;
    const next = this.#tailNext;
    const values = blockValues(high, low);
    for (let block = 0; block < BLOCKS; block++) {
      const head = block * BUCKETS + values[block]!;
      next[chained * BLOCKS + block] = heads[head]!;
      heads[head] = id;
    }
  }

  /**
   * The stored hash closest to `hash` within `maxDistance`; on a tie the one added
   * first. `undefined` when none is that close.
   *
   * @param maxDistance an integer 0 … {@link DuplicateIndex.maxDistance}
   * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` (option `maxDistance` or `hash`)
   * @example
   * ```ts
   * index.nearest(hash, 4); // { key: 's50414267_0', distance: 2 } or undefined
   * ```
   */
  nearest(hash: bigint, maxDistance: number = this.maxDistance): DuplicateMatch | undefined {
    let bestId = -1;
    let bestDistance = Infinity;
    this.#search(
      hash,
      maxDistance,
      (id, distance) => {
        if (distance < bestDistance || (distance === bestDistance && id < bestId)) {
          bestId = id;
          bestDistance = distance;
        }
      },
      // Every entry within `step` has been seen: one at `bestDistance` ≤ step cannot be beaten, nor its ties.
      (step) => bestDistance <= step,
    );
    return bestId < 0 ? undefined : { key: this.#keys[bestId]!, distance: bestDistance };
  }

  /**
   * Every stored hash within `maxDistance` of `hash`, nearest first, and in the order
   * added among equals.
   *
   * @param maxDistance an integer 0 … {@link DuplicateIndex.maxDistance}
   * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` (option `maxDistance` or `hash`)
   * @example
   * ```ts
   * for (const { key, distance } of index.within(hash, 6)) console.log(key, distance);
   * ```
   */
  within(hash: bigint, maxDistance: number = this.maxDistance): DuplicateMatch[] {
    // distance·2^32 + id sorts by distance, then order added; an entry found through several blocks is kept once.
    const found: number[] = [];
    this.#search(hash, maxDistance, (id, distance) => found.push(distance * 2 ** 32 + id));
    found.sort((a, b) => a - b);
    const matches: DuplicateMatch[] = [];
    let previous = -1;
    for (const code of found) {
      if (code === previous) continue;
      previous = code;
      matches.push({ key: this.#keys[code % 2 ** 32]!, distance: Math.floor(code / 2 ** 32) });
    }
    return matches;
  }

  /**
   * An estimate of the heap this index holds, in bytes: its typed arrays (exact),
   * the key array (8 bytes a slot) and the key strings (V8's sequential-string
   * layout: a 16-byte header, then one byte a character for Latin-1 keys, two for
   * others, rounded up to 8). Keys shared with the caller are counted as if owned.
   * While an add re-sorts, the old sorted copies live on until collected: the peak
   * is about 48 bytes a hash higher.
   *
   * @example
   * ```ts
   * console.log(`${(index.memoryBytes() / 2 ** 20).toFixed(1)} MiB for ${index.size} hashes`);
   * ```
   */
  memoryBytes(): number {
    let arrays = this.#high.byteLength + this.#low.byteLength + this.#tailHeads.byteLength + this.#tailNext.byteLength;
    for (const block of this.#sorted) arrays += block.start.byteLength + block.ids.byteLength + block.hashes.byteLength;
    return arrays + this.#keys.length * 8 + this.#keyBytes + 256;
  }

  /**
   * Calls `onMatch` for each stored entry within `maxDistance` of `hash` (an entry may
   * come more than once). The buckets are looked up in steps: step `k` looks up
   * block `3 − k mod 4` at exactly `⌊k / 4⌋` bits from the query's, and steps 0 … k
   * together are the plan for distance `k` (see the class comment) — the plans nest.
   * So after step `k` every entry within `k` has been seen, and `settled(k)` may end
   * the search there.
   */
  #search(hash: bigint, maxDistance: number, onMatch: (id: number, distance: number) => void, settled?: (step: number) => boolean): void {
    checkHash(hash);
    checkDistance(maxDistance, this.maxDistance);
    const size = this.#size;
    if (size === 0) return;
    // Signed, as the sorted copies hold them; XOR and popcount do not care.
    const high = Number(BigInt.asIntN(32, hash >> 32n));
    const low = Number(BigInt.asIntN(32, hash));
    const storedHigh = this.#high;
    const storedLow = this.#low;

    let probes = 0;
    for (let step = 0; step <= maxDistance; step++) probes += maskCount(Math.floor(step / BLOCKS));
    // A probe costs about what checking an entry does, and each bucket holds about size / 65536 entries.
    if (probes * (1 + size / BUCKETS) * 2 >= size) {
      for (let id = 0; id < size; id++) {
        const distance = popcount32(high ^ storedHigh[id]!) + popcount32(low ^ storedLow[id]!);
        if (distance <= maxDistance) onMatch(id, distance);
      }
      return;
    }

    const sortedSize = this.#sortedSize;
    const heads = this.#tailHeads;
    const next = this.#tailNext;
    const values = blockValues(high, low);
    for (let step = 0; step <= maxDistance; step++) {
      const block = BLOCKS - 1 - (step % BLOCKS);
      const weight = Math.floor(step / BLOCKS);
      const value = values[block]!;
      const sorted = this.#sorted[block];
      const base = block * BUCKETS;
      for (let m = MASKS_UP_TO[weight]!, end = MASKS_UP_TO[weight + 1]!; m < end; m++) {
        const bucket = value ^ MASKS[m]!;
        if (sorted) {
          const { ids, hashes } = sorted;
          for (let at = sorted.start[bucket]!, last = sorted.start[bucket + 1]!; at < last; at++) {
            const distance = popcount32(high ^ hashes[2 * at]!) + popcount32(low ^ hashes[2 * at + 1]!);
            if (distance <= maxDistance) onMatch(ids[at]!, distance);
          }
        }
        for (let id = heads[base + bucket]!; id >= 0; id = next[(id - sortedSize) * BLOCKS + block]!) {
          const distance = popcount32(high ^ storedHigh[id]!) + popcount32(low ^ storedLow[id]!);
          if (distance <= maxDistance) onMatch(id, distance);
        }
      }
      if (settled?.(step)) return;
    }
  }

  /** Moves every entry into the sorted part: per block, a counting sort by block value (stable, so ids ascend in a bucket). */
  #sortAll(): void {
    const size = this.#size;
    const storedHigh = this.#high;
    const storedLow = this.#low;
    const sorted: SortedBlock[] = [];
    for (let block = 0; block < BLOCKS; block++) {
      const shift = block % 2 === 0 ? 16 : 0;
      const halves = block < 2 ? storedHigh : storedLow;
      const start = new Int32Array(BUCKETS + 1);
      for (let id = 0; id < size; id++) start[((halves[id]! >>> shift) & 0xffff) + 1]!++;
      for (let v = 0; v < BUCKETS; v++) start[v + 1]! += start[v]!;
      const fill = start.slice(0, BUCKETS);
      const ids = new Int32Array(size);
      const hashes = new Int32Array(2 * size);
      for (let id = 0; id < size; id++) {
        const at = fill[(halves[id]! >>> shift) & 0xffff]!++;
        ids[at] = id;
        hashes[2 * at] = storedHigh[id]!;
        hashes[2 * at + 1] = storedLow[id]!;
      }
      sorted.push({ start, ids, hashes });
    }
    this.#sorted = sorted;
    this.#sortedSize = size;
    this.#tailHeads.fill(-1);
  }
}

/** The four 16-bit blocks of a hash given as halves (signed or not). */
function blockValues(high: number, low: number): number[] {
  return [(high >>> 16) & 0xffff, high & 0xffff, (low >>> 16) & 0xffff, low & 0xffff];
}

/** A copy of `array` in a larger one. */
function grown<T extends Uint32Array | Int32Array>(array: T, length: number): T {
  const larger = new (array.constructor as new (length: number) => T)(length);
  larger.set(array);
  return larger;
}

/** How many 16-bit masks have exactly `weight` bits set. */
function maskCount(weight: number): number {
  return weight > BLOCK_BITS ? 0 : MASKS_UP_TO[weight + 1]! - MASKS_UP_TO[weight]!;
}

function checkDistance(distance: number, largest: number): void {
  if (!Number.isInteger(distance) || distance < 0 || distance > largest) {
    const hint = largest < 64 ? ` (the index was made with maxDistance ${largest}; make it with a larger one to ask for more)` : '';
    invalidOption('maxDistance', `must be an integer 0 … ${largest}, got ${String(distance)}${hint}`);
  }
}

function checkHash(hash: bigint): void {
  if (typeof hash !== 'bigint' || hash < 0n || hash > MAX_HASH) invalidOption('hash', `must be a bigint in 0 … 2^64 − 1, got ${String(hash)}`);
}

/** V8's footprint of a sequential string: header, then 1 byte a character for Latin-1, 2 otherwise, 8-byte aligned. */
function stringBytes(text: string): number {
  // eslint-disable-next-line no-control-regex
  const perCharacter = /^[\u0000-\u00ff]*$/u.test(text) ? 1 : 2;
  return 16 + Math.ceil((text.length * perCharacter) / 8) * 8;
}

/** Set bits of a 32-bit integer (SWAR). */
function popcount32(value: number): number {
  let v = value - ((value >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
