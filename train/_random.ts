/**
 * Seeded random numbers for parameter initialisation and tests: the same seed
 * and name give the same numbers on every machine and in any creation order.
 * Private to `train/`.
 *
 * @module
 */
import { createHash } from 'node:crypto';

/** A source of uniform floats in [0, 1) and standard normal draws. */
export interface RandomSource {
  /** A uniform float in [0, 1). */
  uniform(): number;
  /** A standard normal draw (Box–Muller). */
  normal(): number;
}

/** A generator determined by `seed` and `name` (xoshiro128** seeded from SHA-256). */
export function randomSource(seed: number, name = ''): RandomSource {
  const digest = createHash('sha256').update(`medsyn-train-v1\n${seed}\n${name}`, 'utf8').digest();
  let a = digest.readUInt32LE(0) | 1;
  let b = digest.readUInt32LE(4);
  let c = digest.readUInt32LE(8);
  let d = digest.readUInt32LE(12);
  const next = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  let spare: number | undefined;
  const uniform = (): number => (next() * 2 ** 21 + (next() >>> 11)) / 2 ** 53;
  return {
    uniform,
    normal(): number {
      if (spare !== undefined) {
        const value = spare;
        spare = undefined;
        return value;
      }
      let u = 0;
      while (u === 0) u = uniform();
      const v = uniform();
      const radius = Math.sqrt(-2 * Math.log(u));
      spare = radius * Math.sin(2 * Math.PI * v);
      return radius * Math.cos(2 * Math.PI * v);
    },
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
