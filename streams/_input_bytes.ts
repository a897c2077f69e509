/**
 * Byte streams as the readers take them: errors named after the input, and a look at
 * the first bytes that loses none of them.
 *
 * @module
 */

import { readFailed } from './_input_errors.js';

/** The chunks of `source` as bytes (strings as UTF-8); a read error becomes `MEDSYN_ERR_READ_FAILED` naming `name`. */
export async function* inputBytes(source: AsyncIterable<Uint8Array | string>, name: string): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of source) yield typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
  } catch (err) {
    throw readFailed(name, err);
  }
}

/** The first bytes of a stream, and the whole stream, those bytes included. */
export interface PeekedBytes {
  /** The chunks read so far, joined; empty only when the stream is. */
  head: Uint8Array;
  /** Every chunk of the stream from the start: the peeked ones, then the rest. */
  chunks: AsyncGenerator<Uint8Array>;
  /** Lets go of the stream (as an early stop of `for await` would), whether or not `chunks` was read. */
  close(): Promise<void>;
}

/**
 * Reads chunks of `source` until `enough(head)` says the bytes so far are enough, or the
 * stream ends, and hands back a stream that yields them again before the rest: a stream
 * that can be read only once (stdin, a pipe) loses nothing to format detection. Reading
 * stops as soon as the answer is known, so a slow producer is not waited on.
 */
export async function peekBytes(
  source: AsyncIterable<Uint8Array>,
  enough: (head: Uint8Array) => boolean,
): Promise<PeekedBytes> {
  const iterator = source[Symbol.asyncIterator]();
  const taken: Uint8Array[] = [];
  let head: Uint8Array = new Uint8Array(0);
  let ended = false;
  let started = false;
  while (!enough(head)) {
    const next = await iterator.next();
    if (next.done === true) {
      ended = true;
      break;
    }
    taken.push(next.value);
    head = taken.length === 1 ? next.value : Buffer.concat(taken);
  }
  async function* rest(): AsyncGenerator<Uint8Array> {
    started = true;
    try {
      yield* taken.splice(0);
      while (!ended) {
        const next = await iterator.next();
        if (next.done === true) {
          ended = true;
          return;
        }
        yield next.value;
      }
    } finally {
      if (!ended) await iterator.return?.();
    }
  }
  const chunks = rest();
  const close = async (): Promise<void> => {
    // A generator that never started cannot run its `finally`: let go of the source here.
    if (started) await chunks.return(undefined);
    else if (!ended) {
      ended = true;
      await iterator.return?.();
    }
  };
  return { head, chunks, close };
}
