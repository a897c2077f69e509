/**
 * Reads reports from CSV: the official MIMIC-CXR sectioned CSV, or any CSV with an id
 * column and a report text column.
 *
 * @module
 */

import { ErrorCodes, invalidOption, MedsynError } from '../errors.js';
import type { Reject, Report, Sections } from '../records.js';
import { csvRecords } from './_csv_records.js';
import { inputName } from './_input_errors.js';
import {
  byteLimit,
  DEFAULT_MAX_REPORT_BYTES,
  RECORD_BYTES_PER_REPORT_BYTE,
  rejectOf,
  reportOf,
  tooLong,
} from './_report_text.js';

/** Options of {@link readCsvReports}. */
export interface CsvReportsOptions {
  /** How the input is named in `source` (`NAME:LINE`) and in messages; `-` is shown as stdin. @default '-' */
  name?: string;
  /**
   * Generic CSV: the column with the study id. Giving `idColumn` or `textColumn` also
   * turns off the recognition of the official sectioned CSV.
   * @default 'id'
   */
  idColumn?: string;
  /** Generic CSV: the column with the whole report text. @default 'text' */
  textColumn?: string;
  /** A report text over this many UTF-8 bytes is rejected as `too_long`. @default 1_048_576 */
  maxReportBytes?: number;
  /**
   * A record still unfinished after this many bytes ends the file with
   * `MEDSYN_ERR_BAD_CSV` (usually an unbalanced quote), so a broken file never fills memory.
   * @default 8 × maxReportBytes
   */
  maxRecordBytes?: number;
}

/** The header `create_section_files.py` of MIT-LCP/mimic-cxr writes, exactly. */
const SECTIONED_HEADER = ['study', 'impression', 'findings', 'last_paragraph', 'comparison'] as const;
/** The sectioned CSV's columns in the order their text is joined, with the {@link Sections} key of each. */
const SECTIONED_COLUMNS = [
  ['impression', 'impression'],
  ['findings', 'findings'],
  ['last_paragraph', 'lastParagraph'],
  ['comparison', 'comparison'],
] as const;

/**
 * Reads reports from a CSV byte stream (fast-csv, first line the header; quoted
 * multi-line fields, a UTF-8 BOM and CRLF line ends all work).
 *
 * - The official sectioned CSV, recognised by its header exactly
 *   `study,impression,findings,last_paragraph,comparison` (unless `idColumn` or
 *   `textColumn` is given): `id` the study, `sections` the non-empty cells (as
 *   `impression`, `findings`, `lastParagraph`, `comparison`), `text` those sections
 *   joined with a blank line in that order.
 * - Any other CSV: `id` from `idColumn`, `text` (a whole report, raw) from `textColumn`.
 *
 * `source` is `NAME:LINE`, LINE being the 1-based line of the file on which the record
 * starts (the header is line 1; a quoted field with line breaks makes its record span
 * several lines, and blank lines count). A record with the wrong number of fields is a
 * `bad_row` reject, an empty id `missing_id`, a text over `maxReportBytes` `too_long`.
 * fast-csv decodes the bytes itself and turns invalid UTF-8 into U+FFFD, so an id or
 * text holding U+FFFD is rejected as `not_utf8` (a U+FFFD written on purpose is too).
 *
 * @param chunks the CSV bytes, e.g. a `fs.ReadStream` or `process.stdin`
 * @throws {MedsynError} `MEDSYN_ERR_MISSING_COLUMN` naming the column and the columns
 *   found; `MEDSYN_ERR_BAD_CSV` naming the file and line for broken structure (an
 *   unbalanced quote, text after a closing quote, a record over `maxRecordBytes`,
 *   duplicate column names), after every record before it was yielded;
 *   `MEDSYN_ERR_EMPTY_INPUT` when there is no header; `MEDSYN_ERR_INVALID_OPTION`
 * @example
 * ```ts
 * const rows = readCsvReports(createReadStream('notes.csv'), { name: 'notes.csv', idColumn: 'study_id', textColumn: 'report' });
 * for await (const item of rows) if (!isReject(item)) console.log(item.id, item.source); // s50414267 notes.csv:2
 * ```
 */
export async function* readCsvReports(
  chunks: AsyncIterable<Uint8Array | string>,
  options: CsvReportsOptions = {},
): AsyncGenerator<Report | Reject> {
  const name = options.name ?? '-';
  const maxReportBytes = byteLimit('maxReportBytes', options.maxReportBytes, DEFAULT_MAX_REPORT_BYTES);
  const maxRecordBytes = byteLimit(
    'maxRecordBytes',
    options.maxRecordBytes,
    Math.min(2 ** 31, maxReportBytes * RECORD_BYTES_PER_REPORT_BYTE),
  );
  for (const option of ['idColumn', 'textColumn'] as const) {
    const value = options[option];
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      invalidOption(option, `must be a non-empty column name, got ${JSON.stringify(value)}`);
    }
  }
  const idColumn = options.idColumn ?? 'id';
  const textColumn = options.textColumn ?? 'text';
  const columnsGiven = options.idColumn !== undefined || options.textColumn !== undefined;

  let sectioned: boolean | undefined;
  let columns = 0;
  for await (const record of csvRecords(chunks, { name, maxRecordBytes })) {
    const source = `${name}:${record.line}`;
    if (record.kind === 'header') {
      sectioned = !columnsGiven && isSectionedHeader(record.fields);
      columns = record.fields.length;
      if (!sectioned) {
        for (const column of [idColumn, textColumn]) {
          if (!record.fields.includes(column)) throw missingColumn(name, column, record.fields, columnsGiven);
        }
      }
      continue;
    }
    if (record.kind === 'invalid') {
      yield rejectOf(
        { source },
        'bad_row',
        `Skipped row at ${source}: it has ${record.fields.length} fields where the header has ${columns} ` +
          '(a stray comma, or a field with a comma or a line break that is not quoted?)',
      );
      continue;
    }
    const row = record.row;
    const id = (sectioned ? row.study : row[idColumn]).trim();
    let text: string;
    let sections: Sections | undefined;
    if (sectioned) {
      sections = {};
      const parts: string[] = [];
      for (const [column, key] of SECTIONED_COLUMNS) {
        const value = row[column];
        if (value.trim() === '') continue;
        sections[key] = value;
        parts.push(value);
      }
      text = parts.join('\n\n');
    } else {
      text = row[textColumn];
    }
    if (id === '') {
      yield rejectOf({ source }, 'missing_id', `Skipped row at ${source}: its ${sectioned ? 'study' : idColumn} is empty`);
      continue;
    }
    if (id.includes('\uFFFD') || text.includes('\uFFFD')) {
      yield rejectOf(
        { id, source },
        'not_utf8',
        `Skipped report ${id} at ${source}: it has bytes that are not valid UTF-8 ` +
          '(is the file Latin-1 or Windows-1252? convert it with iconv -f cp1252 -t utf-8)',
      );
      continue;
    }
    // A UTF-16 length over the limit is over it in UTF-8 too; only near it are bytes counted.
    if (text.length > maxReportBytes || (text.length * 3 > maxReportBytes && Buffer.byteLength(text) > maxReportBytes)) {
      yield tooLong({ id, source }, Buffer.byteLength(text), maxReportBytes);
      continue;
    }
    yield reportOf({ id, source }, text, sections);
  }
  if (sectioned === undefined) {
    throw new MedsynError(ErrorCodes.EMPTY_INPUT, `Cannot read reports from ${inputName(name)}: it has no CSV header`, { file: name });
  }
}

function isSectionedHeader(fields: readonly string[]): boolean {
  return fields.length === SECTIONED_HEADER.length && SECTIONED_HEADER.every((column, i) => fields[i] === column);
}

function missingColumn(name: string, column: string, found: readonly string[], columnsGiven: boolean): MedsynError {
  const hint =
    found.length === 0
      ? 'is the header on the first line?'
      : columnsGiven
        ? 'check --id-column and --text-column'
        : `name the columns with --id-column and --text-column; the official sectioned CSV has the header ${SECTIONED_HEADER.join(',')}`;
  return new MedsynError(
    ErrorCodes.MISSING_COLUMN,
    `Cannot read reports from ${inputName(name)}: it has no column ${JSON.stringify(column)} ` +
      `(found ${found.map((f) => JSON.stringify(f)).join(', ') || 'none'}; ${hint})`,
    { file: name, option: column },
  );
}
