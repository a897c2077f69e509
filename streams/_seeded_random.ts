/**
 * A small seeded pseudo-random generator (mulberry32) for reproducible shuffles.
 * Not for anything secret. Private to `streams/`.
 *
 * @module
 */

/**
 * A generator of floats in [0, 1) determined by `seeds` (e.g. the global seed,
 * the epoch, a partition index): the same seeds give the same sequence.
 */
export function seededRandom(...seeds: number[]): () => number {
  let state = 0x9e3779b9;
  for (const seed of seeds) {
    // Mix the whole (possibly negative or large) integer in, 32 bits at a time.
    const value = Math.trunc(seed);
    state = mix(state ^ (value >>> 0));
    state = mix(state ^ Math.floor(value / 2 ** 32));
  }
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Shuffles `items` in place (Fisher-Yates) with `random`; returns them. */
export function shuffleInPlace<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = items[i];
    items[i] = items[j];
    items[j] = swap;
  }
  return items;
}

function mix(value: number): number {
  let h = value | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}
