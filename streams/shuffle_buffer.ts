/**
 * A seeded shuffle buffer for sample streams, as webdataset's `shuffle(n)`.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import { seededRandom } from './_seeded_random.js';

/** Options of {@link shuffleBuffer}. */
export interface ShuffleBufferOptions {
  /** How many items the buffer holds; 0 or 1 passes items through in order. @default 1000 */
  size?: number;
  /** The seed: the same seed and input give the same order. @default 0 */
  seed?: number;
}

/**
 * Yields `items` in a pseudo-random order using a buffer of `size` items: once
 * the buffer is full, each new item replaces a randomly chosen one, which is
 * yielded; at the end the rest come out in random order. An item moves at most
 * about `size` places from where it came in, so memory stays at `size` items
 * however long the stream.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a negative or fractional `size`
 * @example
 * ```ts
 * for await (const sample of shuffleBuffer(readShards('out/'), { size: 5000, seed: 42 })) train(sample);
 * ```
 */
export async function* shuffleBuffer<T>(items: AsyncIterable<T> | Iterable<T>, options: ShuffleBufferOptions = {}): AsyncGenerator<T> {
  const size = options.size ?? 1000;
  if (!Number.isSafeInteger(size) || size < 0) invalidOption('size', `must be a whole number ≥ 0, got ${String(options.size)}`);
  const seed = options.seed ?? 0;
  if (!Number.isFinite(seed)) invalidOption('seed', `must be a number, got ${String(options.seed)}`);
  if (size <= 1) {
    yield* items;
    return;
  }
  const random = seededRandom(seed);
  const buffer: T[] = [];
  for await (const item of items) {
    if (buffer.length < size) {
      buffer.push(item);
      continue;
    }
    const pick = Math.floor(random() * size);
    const out = buffer[pick];
    buffer[pick] = item;
    yield out;
  }
  while (buffer.length > 0) {
    const pick = Math.floor(random() * buffer.length);
    const out = buffer[pick];
    buffer[pick] = buffer[buffer.length - 1];
    buffer.pop();
    yield out;
  }
}
