import t, { type Test } from 'tap';
import { SeededRandom } from '../../models/seeded_random.js';
import { DuplicateIndex, type DuplicateMatch } from '../../transforms/duplicate_index.js';
import { hammingDistance } from '../../transforms/perceptual_hash.js';

function randomHash(random: SeededRandom): bigint {
  return (BigInt(random.uint32()) << 32n) | BigInt(random.uint32());
}

function flipBits(hash: bigint, count: number, random: SeededRandom): bigint {
  let flipped = hash;
  const used = new Set<number>();
  while (used.size < count) {
    const bit = random.uint32() % 64;
    if (used.has(bit)) continue;
    used.add(bit);
    flipped ^= 1n << BigInt(bit);
  }
  return flipped;
}

/** Every stored entry within `maxDistance` of `query`, nearest first, then in the order added: a linear scan. */
function bruteForce(stored: Array<[bigint, string]>, query: bigint, maxDistance: number): DuplicateMatch[] {
  const matches: Array<DuplicateMatch & { id: number }> = [];
  for (const [id, [hash, key]] of stored.entries()) {
    const distance = hammingDistance(hash, query);
    if (distance <= maxDistance) matches.push({ key, distance, id });
  }
  return matches.sort((a, b) => a.distance - b.distance || a.id - b.id).map(({ key, distance }) => ({ key, distance }));
}

function build(stored: Array<[bigint, string]>, maxDistance: number): DuplicateIndex {
  const index = new DuplicateIndex({ maxDistance });
  for (const [hash, key] of stored) index.add(hash, key);
  return index;
}

/** Compares within() and nearest() with the brute force for each query at each distance; one assertion per distance. */
function checkExact(t: Test, index: DuplicateIndex, stored: Array<[bigint, string]>, queries: bigint[], distances: number[]): void {
  // One scan a query at the largest distance; the smaller distances are its prefixes.
  const largest = Math.max(...distances);
  const scanned = queries.map((query) => bruteForce(stored, query, largest));
  for (const distance of distances) {
    let mismatches = 0;
    let matches = 0;
    for (const [q, query] of queries.entries()) {
      const expected = scanned[q]!.filter((match) => match.distance <= distance);
      const got = index.within(query, distance);
      matches += expected.length;
      if (JSON.stringify(got) !== JSON.stringify(expected)) mismatches++;
      if (JSON.stringify(index.nearest(query, distance)) !== JSON.stringify(expected[0])) mismatches++;
    }
    t.equal(mismatches, 0, `distance ${distance}: ${queries.length} queries, ${matches} matches, all as the brute force finds them`);
  }
}

t.test('DuplicateIndex finds exactly what a brute force finds, on random hashes', async (t) => {
  const random = new SeededRandom(1);
  const stored: Array<[bigint, string]> = Array.from({ length: 20000 }, (_, i) => [randomHash(random), `k${i}`]);
  const index = build(stored, 12);
  t.equal(index.size, 20000);
  // Stored hashes with 0 … 12 bits flipped, and fresh ones.
  const queries = Array.from({ length: 120 }, (_, i) => (i % 4 === 3 ? randomHash(random) : flipBits(stored[random.uint32() % stored.length]![0], i % 13, random)));
  checkExact(t, index, stored, queries, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12]);
});

t.test('DuplicateIndex is exact on clustered hashes with many bits fixed and exact copies', async (t) => {
  // Like pHashes of one kind of picture: 24 bits the same in every hash, a few dozen
  // clusters of near-copies, some stored several times.
  const random = new SeededRandom(2);
  const fixedMask = 0xff00_ff00_0f0f_0f00n;
  const fixedBits = randomHash(random) & fixedMask;
  const centres = Array.from({ length: 40 }, () => (randomHash(random) & ~fixedMask) | fixedBits);
  const stored: Array<[bigint, string]> = [];
  for (let i = 0; i < 8000; i++) {
    const centre = centres[i % centres.length]!;
    const member = i % 7 === 0 ? centre : flipBits(centre, random.uint32() % 7, random) & (~fixedMask | fixedBits);
    stored.push([(member & ~fixedMask) | fixedBits, `c${i % centres.length}-${i}`]);
  }
  const index = build(stored, 8);
  const queries = Array.from({ length: 40 }, (_, i) => flipBits(centres[i % centres.length]!, i % 5, random));
  checkExact(t, index, stored, queries, [0, 2, 4, 6, 8]);
});

t.test('DuplicateIndex is exact when it scans: a small index, a large distance', async (t) => {
  const random = new SeededRandom(3);
  const small: Array<[bigint, string]> = Array.from({ length: 40 }, (_, i) => [randomHash(random), `s${i}`]);
  checkExact(t, build(small, 6), small, small.slice(0, 10).map(([hash]) => flipBits(hash, 3, random)), [0, 3, 6]);
  const large: Array<[bigint, string]> = Array.from({ length: 3000 }, (_, i) => [randomHash(random), `l${i}`]);
  const queries = Array.from({ length: 20 }, () => randomHash(random));
  checkExact(t, build(large, 40), large, queries, [24, 28, 40]);
});

t.test('DuplicateIndex breaks ties by the order hashes were added', async (t) => {
  const index = new DuplicateIndex();
  const hash = 0x0123_4567_89ab_cdefn;
  index.add(hash ^ 0b10n, 'bit1');
  index.add(hash ^ 0b1n, 'bit0');
  index.add(hash ^ 0b100n, 'bit2');
  index.add(hash, 'same-a');
  index.add(hash, 'same-b');
  t.same(index.nearest(hash), { key: 'same-a', distance: 0 }, 'exact copies: the first added');
  t.same(index.nearest(hash ^ 0b111n, 2), { key: 'bit1', distance: 2 }, 'equal distances: the first added');
  t.same(index.nearest(hash ^ 0b101n), { key: 'bit0', distance: 1 }, 'a nearer one added later wins');
  t.same(
    index.within(hash, 1).map(({ key }) => key),
    ['same-a', 'same-b', 'bit1', 'bit0', 'bit2'],
  );
  t.same(index.within(hash, 0), [
    { key: 'same-a', distance: 0 },
    { key: 'same-b', distance: 0 },
  ]);
  t.equal(index.size, 5);
});

t.test('DuplicateIndex: empty, the distance boundary, the extreme hashes', async (t) => {
  const empty = new DuplicateIndex();
  t.equal(empty.size, 0);
  t.equal(empty.maxDistance, 6, 'default maxDistance');
  t.equal(empty.nearest(0n), undefined);
  t.same(empty.within(0n), []);
  t.ok(empty.memoryBytes() > 0);

  const index = new DuplicateIndex({ maxDistance: 6 });
  index.add(0n, 'zero');
  index.add((1n << 64n) - 1n, 'ones');
  t.same(index.nearest(0b111111n), { key: 'zero', distance: 6 }, 'distance 6 is within 6');
  t.equal(index.nearest(0b1111111n), undefined, 'distance 7 is not');
  t.equal(index.nearest(0b111111n, 5), undefined, 'a smaller distance asked');
  t.same(index.nearest(((1n << 64n) - 1n) ^ (1n << 63n) ^ 1n), { key: 'ones', distance: 2 }, 'bits in the high and low halves');
  const exact = new DuplicateIndex({ maxDistance: 0 });
  exact.add(42n, 'answer');
  t.same(exact.nearest(42n), { key: 'answer', distance: 0 });
  t.equal(exact.nearest(43n), undefined);
});

t.test('DuplicateIndex refuses a bad maxDistance, hash or key, naming the option', async (t) => {
  for (const maxDistance of [-1, 1.5, 65, Number.NaN, '6' as unknown as number]) {
    t.throws(() => new DuplicateIndex({ maxDistance }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'maxDistance' }, `maxDistance ${String(maxDistance)}`);
  }
  t.equal(new DuplicateIndex({ maxDistance: 64 }).maxDistance, 64);
  const index = new DuplicateIndex({ maxDistance: 4 });
  index.add(1n, 'one');
  t.throws(() => index.nearest(1n, 5), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'maxDistance' }, 'more than the index was made for');
  t.throws(() => index.within(1n, -1), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'maxDistance' });
  t.throws(() => index.within(1n, 2.5), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'maxDistance' });
  t.throws(() => index.add(-1n, 'negative'), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'hash' });
  t.throws(() => index.add(1n << 64n, 'too wide'), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'hash' });
  t.throws(() => index.add(7 as unknown as bigint, 'number'), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'hash' });
  t.throws(() => index.add(7n, 7 as unknown as string), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'key' });
  t.throws(() => index.nearest('00ff' as unknown as bigint), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'hash' });
  t.equal(index.size, 1, 'refused adds store nothing');
});

t.test('DuplicateIndex.memoryBytes grows with the entries and stays compact', async (t) => {
  const random = new SeededRandom(4);
  const index = new DuplicateIndex();
  const empty = index.memoryBytes();
  for (let i = 0; i < 50000; i++) index.add(randomHash(random), `s5${String(i).padStart(7, '0')}_0`);
  const perEntry = (index.memoryBytes() - empty) / index.size;
  // Hashes 8 bytes (16 while the arrays are half full), sorted copies 4 × 12, chain links 16 for
  // the newer entries, key slot 8, key string 16 + 16.
  t.ok(perEntry > 80 && perEntry < 160, `${perEntry.toFixed(1)} bytes an entry`);
  t.ok(empty >= 4 * 65536 * 4, 'the bucket tables are counted');
});
