/**
 * Splits a byte stream into lines: the one place where medsyn's line-based readers handle
 * chunk boundaries.
 *
 * @module
 */

import { invalidOption } from '../errors.js';

/** Options of {@link splitLines}. */
export interface SplitLinesOptions {
  /**
   * The most bytes of one line that are kept. A longer line is yielded once with
   * `truncated: true` and its first `maxLineBytes` bytes; the rest is skipped up to the
   * next newline, so one runaway line never takes more memory than this.
   * @default 16_777_216
   */
  maxLineBytes?: number;
}

/** One line of {@link splitLines}. */
export interface Line {
  /** 1-based line number. */
  number: number;
  /** The bytes of the line without its `\n` or `\r\n`; only the first `maxLineBytes` when `truncated`. */
  bytes: Uint8Array;
  /** The length of the whole line in bytes, also when `truncated`. */
  byteLength: number;
  /** Whether the line was longer than `maxLineBytes`. */
  truncated: boolean;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Yields the lines of a byte stream, whatever the chunk boundaries: a line may span any
 * number of chunks, `\r\n` and `\n` both end a line, and a last line without a newline
 * is yielded too. A blank line is yielded as an empty line (callers decide what it
 * means); the empty string after a final newline is not a line. A lone `\r` is not a line
 * end. `bytes` may be a view into an input chunk.
 *
 * @param chunks the bytes, e.g. a `fs.ReadStream` or `process.stdin`; strings are taken as UTF-8
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a bad `maxLineBytes`
 * @example
 * ```ts
 * for await (const line of splitLines(createReadStream('reports.ndjson'))) {
 *   console.log(line.number, new TextDecoder().decode(line.bytes));
 * }
 * ```
 */
export async function* splitLines(
  chunks: AsyncIterable<Uint8Array | string>,
  options: SplitLinesOptions = {},
): AsyncGenerator<Line> {
  const maxLineBytes = options.maxLineBytes ?? 16_777_216;
  if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
    invalidOption('maxLineBytes', `must be a positive integer, got ${String(options.maxLineBytes)}`);
  }
  let number = 0;
  // The unfinished line: kept parts, their length, the whole length seen so far, and
  // whether its last byte so far is a `\r`.
  let parts: Uint8Array[] = [];
  let kept = 0;
  let seen = 0;
  let lastCr = false;

  const take = (piece: Uint8Array): void => {
    if (piece.byteLength === 0) return;
    seen += piece.byteLength;
    lastCr = piece[piece.byteLength - 1] === CR;
    if (kept >= maxLineBytes) return;
    const room = maxLineBytes - kept;
    const part = piece.byteLength > room ? piece.subarray(0, room) : piece;
    parts.push(part);
    kept += part.byteLength;
  };
  const finish = (): Line => {
    // The `\r` of a `\r\n` may sit at the end of an earlier chunk: it is dropped here, once.
    const byteLength = lastCr ? seen - 1 : seen;
    let bytes = parts.length === 1 ? parts[0] : concat(parts, kept);
    if (bytes.byteLength > byteLength) bytes = bytes.subarray(0, byteLength);
    parts = [];
    kept = 0;
    seen = 0;
    lastCr = false;
    number += 1;
    return { number, bytes, byteLength, truncated: byteLength > maxLineBytes };
  };

  for await (const chunk of chunks) {
    // Buffer's indexOf is memchr; a plain Uint8Array's is a loop.
    const bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk, 'utf8')
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    while (start < bytes.byteLength) {
      const end = bytes.indexOf(LF, start);
      if (end === -1) {
        take(bytes.subarray(start));
        break;
      }
      take(bytes.subarray(start, end));
      yield finish();
      start = end + 1;
    }
  }
  if (seen > 0) yield finish();
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}
