/**
 * Per-image seeds and the random number generator every backend draws from, specified
 * here so that the same input and `--seed` give the same images on any machine, in any
 * batch size, partition or restart.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { invalidOption } from '../errors.js';

/** The largest seed {@link deriveSeed} returns: seeds are 53-bit, so JSON and JavaScript numbers hold them exactly. */
export const MAX_SEED = 2 ** 53 - 1;

/**
 * The seed of one image, derived from the run's seed, the report key, the variant and
 * the attempt:
 *
 *     seed = low 53 bits of the first 8 bytes (big-endian) of
 *            SHA-256("medsyn-seed-v1\n" + runSeed + "\n" + key + "\n" + variant + "\n" + attempt)
 *
 * with the numbers written in decimal and the key in UTF-8. Nothing else goes in, so an
 * image does not depend on which batch, partition or run it was made in.
 *
 * @param runSeed `--seed`, an integer in [0, 2^53)
 * @param key the report's sample key (the study id after `sanitizeKey`)
 * @param variant 0 … `--images-per-report` − 1
 * @param attempt 0 for the first try, then 1, 2, … for regenerations
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a seed, variant or attempt that is not a non-negative safe integer
 * @example
 * ```ts
 * deriveSeed(0, 's50414267', 0, 0); // the same number on every machine
 * ```
 */
export function deriveSeed(runSeed: number, key: string, variant: number, attempt: number): number {
  for (const [name, value] of [['seed', runSeed], ['variant', variant], ['attempt', attempt]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) invalidOption(name, `must be an integer in [0, 2^53), got ${value}`);
  }
  const digest = createHash('sha256').update(`medsyn-seed-v1\n${runSeed}\n${key}\n${variant}\n${attempt}`, 'utf8').digest();
  const high = digest.readUInt32BE(0) & 0x1fffff;
  return high * 2 ** 32 + digest.readUInt32BE(4);
}

/**
 * xoshiro128** (Blackman and Vigna), seeded from a 53-bit seed through SplitMix32, with
 * uniform and normal draws defined on top of it:
 *
 * - the state is four SplitMix32 outputs, the SplitMix32 state starting at
 *   `(seed mod 2^32) XOR (floor(seed / 2^32) × 0x9E3779B9)` (32-bit arithmetic);
 * - {@link uint32} is the next xoshiro128** output;
 * - {@link uniform} is `(a >>> 5) × 2^26 + (b >>> 6)` over 2^53 for two consecutive
 *   outputs `a`, `b`: a double in [0, 1) with 53 random bits;
 * - {@link normal} is Box–Muller: `u1 = 1 − uniform()`, `u2 = uniform()`,
 *   `sqrt(−2 ln u1) × cos(2π u2)`, and the matching `sin` value is returned by the next call.
 *
 * The generator is small and fast (no BigInt), and its streams for different seeds are
 * independent for all practical purposes.
 *
 * @example
 * ```ts
 * const random = new SeededRandom(deriveSeed(0, 's1', 0, 0));
 * const latent = Float32Array.from({ length: 4 * 64 * 64 }, () => random.normal());
 * ```
 */
export class SeededRandom {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  #spare = NaN;

  /**
   * @param seed an integer in [0, 2^53)
   * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for any other seed
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) invalidOption('seed', `must be an integer in [0, 2^53), got ${seed}`);
    let state = ((seed % 2 ** 32) ^ Math.imul(Math.floor(seed / 2 ** 32), 0x9e3779b9)) >>> 0;
    const splitMix = (): number => {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s0 = splitMix();
    this.#s1 = splitMix();
    this.#s2 = splitMix();
    this.#s3 = splitMix();
    // xoshiro must not start from all zeros.
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /**
   * A generator started from a given xoshiro128** state instead of a seed (for checks
   * against the published reference outputs).
   */
  static fromState(s0: number, s1: number, s2: number, s3: number): SeededRandom {
    const random = new SeededRandom(0);
    random.#s0 = s0 | 0;
    random.#s1 = s1 | 0;
    random.#s2 = s2 | 0;
    random.#s3 = s3 | 0;
    return random;
  }

  /** The next 32 random bits, as an integer in [0, 2^32). */
  uint32(): number {
    const s1 = this.#s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A double in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.uint32() >>> 5;
    const b = this.uint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** A double in [min, max). */
  range(min: number, max: number): number {
    return min + (max - min) * this.uniform();
  }

  /** A standard normal draw (mean 0, variance 1), by Box–Muller. */
  normal(): number {
    if (!Number.isNaN(this.#spare)) {
      const spare = this.#spare;
      this.#spare = NaN;
      return spare;
    }
    const radius = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.#spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** Fills `target` with standard normal draws, in order, and returns it. */
  fillNormal<T extends Float32Array | Float64Array>(target: T): T {
    for (let i = 0; i < target.length; i++) target[i] = this.normal();
    return target;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
