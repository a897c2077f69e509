/** Helpers for feeding stream readers in odd-sized pieces and collecting what they yield. */
import { Readable } from 'node:stream';

/** A Readable that gives `bytes` in chunks of `size` bytes, like a slow pipe. */
export function chunked(bytes: Uint8Array | string, size: number): Readable {
  const all = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes);
  function* pieces(): Generator<Buffer> {
    for (let at = 0; at < all.byteLength; at += size) yield all.subarray(at, at + size);
  }
  // Object mode, so each piece arrives on its own instead of being joined in the buffer.
  return Readable.from(pieces());
}

/** Everything an async iterable yields, in order. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
