import t from 'tap';
import { createHash } from 'node:crypto';
import { deriveSeed, MAX_SEED, SeededRandom } from '../../models/seeded_random.js';

t.test('SeededRandom.uint32 gives the published xoshiro128** outputs from the state {1, 2, 3, 4}', async (t) => {
  // The reference sequence of xoshiro128** (Blackman and Vigna), checked here with an independent Python version.
  const random = SeededRandom.fromState(1, 2, 3, 4);
  t.same(
    Array.from({ length: 10 }, () => random.uint32()),
    [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804],
  );
});

t.test('deriveSeed is the documented SHA-256 rule, and each input changes it', async (t) => {
  // Values from Python: int.from_bytes(sha256(b"medsyn-seed-v1\n0\ns50414267\n0\n0").digest()[:8], "big") & (2**53 - 1).
  t.equal(deriveSeed(0, 's50414267', 0, 0), 1902911876079256);
  t.equal(deriveSeed(42, 's50414267', 1, 2), 3307477401884910);
  const digest = createHash('sha256').update('medsyn-seed-v1\n7\nkey\n3\n1').digest();
  t.equal(deriveSeed(7, 'key', 3, 1), Number(digest.readBigUInt64BE(0) & ((1n << 53n) - 1n)));
  const seeds = new Set([deriveSeed(0, 'a', 0, 0), deriveSeed(1, 'a', 0, 0), deriveSeed(0, 'b', 0, 0), deriveSeed(0, 'a', 1, 0), deriveSeed(0, 'a', 0, 1)]);
  t.equal(seeds.size, 5);
  for (const seed of seeds) t.ok(Number.isSafeInteger(seed) && seed >= 0 && seed <= MAX_SEED);
  t.throws(() => deriveSeed(-1, 'a', 0, 0), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'seed' });
  t.throws(() => deriveSeed(0, 'a', 0.5, 0), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'variant' });
  t.throws(() => deriveSeed(0, 'a', 0, 2 ** 53), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'attempt' });
});

t.test('SeededRandom repeats for a seed, differs between seeds, and draws uniform and normal values with the right moments', async (t) => {
  const a = new SeededRandom(123456789012345);
  const b = new SeededRandom(123456789012345);
  const c = new SeededRandom(123456789012346);
  const fromA = Array.from({ length: 100 }, () => a.uint32());
  t.same(fromA, Array.from({ length: 100 }, () => b.uint32()));
  t.not(fromA.join(), Array.from({ length: 100 }, () => c.uint32()).join());

  const random = new SeededRandom(1);
  const n = 200_000;
  let sum = 0;
  let squares = 0;
  let min = 1;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const u = random.uniform();
    sum += u;
    squares += u * u;
    min = Math.min(min, u);
    max = Math.max(max, u);
  }
  t.ok(min >= 0 && max < 1);
  t.ok(Math.abs(sum / n - 0.5) < 0.005, `uniform mean ${sum / n}`);
  t.ok(Math.abs(squares / n - sum ** 2 / n ** 2 - 1 / 12) < 0.002, 'uniform variance 1/12');

  const normals = new SeededRandom(2).fillNormal(new Float64Array(n));
  const mean = normals.reduce((s, x) => s + x, 0) / n;
  const variance = normals.reduce((s, x) => s + (x - mean) ** 2, 0) / n;
  const beyond2 = normals.filter((x) => Math.abs(x) > 2).length / n;
  t.ok(Math.abs(mean) < 0.01, `normal mean ${mean}`);
  t.ok(Math.abs(variance - 1) < 0.02, `normal variance ${variance}`);
  t.ok(Math.abs(beyond2 - 0.0455) < 0.003, `share beyond 2σ ${beyond2}`);
  t.throws(() => new SeededRandom(-3), { code: 'MEDSYN_ERR_INVALID_OPTION' });
  t.throws(() => new SeededRandom(2 ** 53), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});
