/**
 * Writes records as NDJSON to a stream, with backpressure.
 *
 * @module
 */
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCodes, MedsynError } from '../errors.js';

/** Options of {@link writeNdjson} and {@link writeLines}. */
export interface WriteNdjsonOptions {
  /**
   * Lines are gathered into chunks of about this many characters before a write,
   * so a million small records do not cost a million writes.
   * @default 65536
   */
  chunkSize?: number;
  /**
   * End `output` when the records end. Leave stdout open with `false` when more
   * is written after.
   * @default true
   */
  end?: boolean;
  /** Names the output in error messages. @default 'output' */
  name?: string;
}

/**
 * Serialises each record with `JSON.stringify` on its own line and writes them to
 * `output`, waiting whenever `output` is full. Resolves to the number of records.
 *
 * @throws {MedsynError} `MEDSYN_ERR_WRITE_FAILED` when `output` fails (full disk,
 * permissions); a closed pipe (`EPIPE`) is rethrown as it is, for the CLI to end quietly
 * @example
 * ```ts
 * await writeNdjson(cleanReports(readReports('reports.csv')), process.stdout, { end: false });
 * ```
 */
export async function writeNdjson(records: AsyncIterable<unknown> | Iterable<unknown>, output: Writable, options: WriteNdjsonOptions = {}): Promise<number> {
  async function* lines(): AsyncGenerator<string> {
    for await (const record of records) yield JSON.stringify(record);
  }
  return writeLines(lines(), output, options);
}

/**
 * Writes already-serialised lines (each without its newline) to `output`, in chunks,
 * with backpressure. Resolves to the number of lines. Errors as {@link writeNdjson}.
 *
 * @example
 * ```ts
 * await writeLines(['{"id":"s1"}', '{"id":"s2"}'], process.stdout, { end: false });
 * ```
 */
export async function writeLines(lines: AsyncIterable<string> | Iterable<string>, output: Writable, options: WriteNdjsonOptions = {}): Promise<number> {
  const chunkSize = options.chunkSize ?? 65536;
  let count = 0;
  async function* chunks(): AsyncGenerator<string> {
    let chunk = '';
    for await (const line of lines) {
      chunk += `${line}\n`;
      count++;
      if (chunk.length >= chunkSize) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk !== '') yield chunk;
  }
  await writeOutput(chunks(), output, options);
  return count;
}

/**
 * Writes chunks (bytes or strings) to `output` with backpressure: the next chunk is
 * pulled only when `output` has room.
 *
 * @throws {MedsynError} `MEDSYN_ERR_WRITE_FAILED` when `output` fails; a closed pipe
 * (`EPIPE`) and a `MedsynError` from `chunks` are rethrown as they are
 * @example
 * ```ts
 * await writeOutput(encodeSamples(samples), process.stdout, { end: false, name: 'stdout' });
 * ```
 */
export async function writeOutput(
  chunks: AsyncIterable<Uint8Array | string>,
  output: Writable,
  options: Pick<WriteNdjsonOptions, 'end' | 'name'> = {},
): Promise<void> {
  try {
    await pipeline(Readable.from(chunks, { objectMode: false }), output, { end: options.end ?? true });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EPIPE' || err instanceof MedsynError || code === undefined) throw err;
    throw new MedsynError(ErrorCodes.WRITE_FAILED, `Cannot write ${options.name ?? 'output'}: ${(err as Error).message}`, { cause: err });
  }
}
