/**
 * fast-csv's parser driven from an async generator, with every outcome in one ordered
 * channel: the header, each row, each row with the wrong number of fields, and the error
 * that ends the file.
 *
 * Why not `for await (const row of parse())`: fast-csv reports a short or long row
 * through a separate `data-invalid` event while good rows wait in the stream's buffer,
 * so the two channels lose their order; and a parse error destroys the stream, which
 * drops the rows still buffered before it. Here the parser's `_transform`/`_flush` are
 * called directly, one input piece at a time, as the consumer pulls; what the parser
 * pushes or emits is collected in order and yielded before the next piece is parsed.
 *
 * @module
 */

import { CsvParserStream, ParserOptions, type ParserRow, type ParserRowMap } from 'fast-csv';
import { ErrorCodes, MedsynError } from '../errors.js';
import { inputName } from './_input_errors.js';

/** One outcome of parsing, with the 1-based line the record starts on. */
export type CsvRecord =
  | { kind: 'header'; fields: string[]; line: number }
  | { kind: 'row'; row: ParserRowMap<string>; line: number }
  | { kind: 'invalid'; fields: string[]; line: number };

// fast-csv re-scans an unfinished record from its start with every piece it is given.
// Once a record is this long, pieces are gathered until they are at least as long as it
// is, so that a record of n bytes costs O(n), not O(n²) (a 5 MB field in 64 KiB pieces: 9 s → 1 s).
const GATHER_FROM_BYTES = 256 * 1024;

class CollectingParser extends CsvParserStream<ParserRow, ParserRow> {
  readonly collected: Array<
    { kind: 'header'; fields: string[] } | { kind: 'row'; row: ParserRowMap<string> } | { kind: 'invalid'; fields: string[] }
  > = [];

  constructor() {
    super(new ParserOptions({ headers: true, strictColumnHandling: true }));
    this.on('headers', (fields: string[]) => this.collected.push({ kind: 'header', fields }));
    this.on('data-invalid', (fields: string[]) => this.collected.push({ kind: 'invalid', fields }));
  }

  override push(chunk: unknown): boolean {
    if (chunk !== null) this.collected.push({ kind: 'row', row: chunk as ParserRowMap<string> });
    return true;
  }

  parsePiece(piece: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this._transform(piece, 'buffer', (err) => (err ? reject(err) : resolve())));
  }

  finish(): Promise<void> {
    return new Promise((resolve, reject) => this._flush((err) => (err ? reject(err) : resolve())));
  }
}

/**
 * The records of a CSV byte stream, header first, in order. Blank lines are skipped
 * (they still count as lines). fast-csv removes a UTF-8 BOM and decodes the bytes;
 * invalid UTF-8 becomes U+FFFD, which callers look for.
 *
 * @param options.name the input's name, for messages
 * @param options.maxRecordBytes the longest a record may be before the file is given up
 * @throws {MedsynError} `MEDSYN_ERR_BAD_CSV` naming the file and line for an unbalanced
 *   quote, text after a closing quote, duplicate column names or a record over
 *   `maxRecordBytes`
 */
export async function* csvRecords(
  chunks: AsyncIterable<Uint8Array | string>,
  options: { name: string; maxRecordBytes: number },
): AsyncGenerator<CsvRecord> {
  const { name, maxRecordBytes } = options;
  const parser = new CollectingParser();
  // The line the next record starts on, and the bytes given to the parser since a record last came out.
  let line = 1;
  let pending = 0;
  let gathered: Buffer[] = [];
  let gatheredBytes = 0;

  function* drain(): Generator<CsvRecord> {
    const records = parser.collected.splice(0);
    if (records.length > 0) pending = 0;
    for (const record of records) {
      const at = line;
      const fields = record.kind === 'row' ? Object.values(record.row) : record.fields;
      line += 1 + countNewlines(fields);
      // fast-csv gives a blank line as a row with no fields.
      if (record.kind === 'invalid' && record.fields.length === 0) continue;
      yield { ...record, line: at };
    }
  }

  for await (const chunk of chunks) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    gathered.push(bytes);
    gatheredBytes += bytes.byteLength;
    if (pending >= GATHER_FROM_BYTES && gatheredBytes < pending) continue;
    const piece = gathered.length === 1 ? gathered[0] : Buffer.concat(gathered, gatheredBytes);
    gathered = [];
    gatheredBytes = 0;
    pending += piece.byteLength;
    try {
      await parser.parsePiece(piece);
    } catch (err) {
      yield* drain();
      throw badCsv(name, line, err);
    }
    yield* drain();
    if (pending > maxRecordBytes) {
      throw new MedsynError(
        ErrorCodes.BAD_CSV,
        `Cannot read ${inputName(name)}: the record starting at line ${line} runs over ${maxRecordBytes} bytes ` +
          '(an unbalanced quote? if records are really this long, raise maxReportBytes)',
        { file: name, line },
      );
    }
  }
  try {
    if (gatheredBytes > 0) await parser.parsePiece(Buffer.concat(gathered, gatheredBytes));
    await parser.finish();
  } catch (err) {
    yield* drain();
    throw badCsv(name, line, err);
  }
  yield* drain();
}

function countNewlines(fields: readonly unknown[]): number {
  let count = 0;
  for (const field of fields) {
    if (typeof field !== 'string') continue;
    for (let at = field.indexOf('\n'); at !== -1; at = field.indexOf('\n', at + 1)) count += 1;
  }
  return count;
}

/**
 * fast-csv's messages quote the rest of the input, which is patient text: only their kind
 * is kept, and the original error is not attached as `cause`.
 */
function badCsv(name: string, line: number, err: unknown): MedsynError {
  const message = err instanceof Error ? err.message : String(err);
  let detail: string;
  if (message.startsWith('Parse Error: missing closing')) {
    detail = `the record starting at line ${line} has an unbalanced quote (a field opened with " is never closed)`;
  } else if (message.startsWith('Parse Error: expected')) {
    detail = `text follows a closing quote at or after line ${line} (a quote inside a field must be doubled: "")`;
  } else if (message.startsWith('Duplicate headers found')) {
    detail = `the header names a column twice: ${message.slice('Duplicate headers found '.length, 200)}`;
  } else {
    detail = `at or after line ${line}: ${message.split(' at ')[0].slice(0, 200)}`;
  }
  return new MedsynError(ErrorCodes.BAD_CSV, `Cannot read ${inputName(name)}: ${detail}`, { file: name, line });
}
