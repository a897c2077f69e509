/**
 * Reads reports from NDJSON, one JSON object a line.
 *
 * @module
 */

import type { Reject, Report, Sections } from '../records.js';
import { readNdjsonRecords } from './_ndjson_records.js';
import { rejectOf, reportOf, tooLong } from './_report_text.js';

/** Options of {@link readNdjsonReports}. */
export interface NdjsonReportsOptions {
  /** How the input is named in `source` (`NAME:LINE`) and in messages. @default '-' */
  name?: string;
  /** A `text` over this many UTF-8 bytes is rejected as `too_long`. @default 1_048_576 */
  maxReportBytes?: number;
  /**
   * A line over this many bytes is rejected as `too_long` without being held whole:
   * reading skips to the next newline.
   * @default 8 × maxReportBytes
   */
  maxRecordBytes?: number;
}

const SECTION_KEYS: ReadonlyArray<keyof Sections> = ['impression', 'findings', 'comparison', 'indication', 'lastParagraph'];

/**
 * Reads reports from an NDJSON byte stream: one object a line with a string `id` and a
 * string `text`, optionally a string `subjectId` and `sections` (an object of strings,
 * keys as in {@link Sections}; other keys and fields are ignored). `source` is
 * `NAME:LINE` (1-based, blank lines counted). Blank lines are skipped. Each line is
 * decoded on its own as strict UTF-8 (a BOM is removed): a line that is not UTF-8 is a
 * `not_utf8` reject, one that is not JSON `bad_json`, one that is not an object with
 * those fields `bad_row`, an empty `id` `missing_id`, a line over `maxRecordBytes` or a
 * text over `maxReportBytes` `too_long`. The run always goes on with the next line.
 *
 * @param chunks the NDJSON bytes, e.g. a `fs.ReadStream` or `process.stdin`
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION`
 * @example
 * ```ts
 * for await (const item of readNdjsonReports(process.stdin)) if (!isReject(item)) console.log(item.id);
 * ```
 */
export async function* readNdjsonReports(
  chunks: AsyncIterable<Uint8Array | string>,
  options: NdjsonReportsOptions = {},
): AsyncGenerator<Report | Reject> {
  yield* readNdjsonRecords(chunks, options, toReport);
}

function toReport(value: unknown, source: string, lineBytes: number, maxReportBytes: number): Report | Reject {
  const badRow = (detail: string, id?: string): Reject =>
    rejectOf({ id, source }, 'bad_row', `Skipped line ${source}: ${detail} (each line needs {"id": "...", "text": "..."})`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return badRow(`it is ${Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`}, not an object`);
  }
  const record = value as Record<string, unknown>;
  const { id, text, subjectId } = record;
  if (typeof id !== 'string') return badRow(id === undefined ? 'it has no "id"' : '"id" is not a string');
  if (id.trim() === '') return rejectOf({ source }, 'missing_id', `Skipped line ${source}: its "id" is empty`);
  if (typeof text !== 'string') return badRow(text === undefined ? 'it has no "text"' : '"text" is not a string', id);
  if (subjectId !== undefined && typeof subjectId !== 'string') return badRow('"subjectId" is not a string', id);
  let sections: Sections | undefined;
  if (record.sections !== undefined) {
    const given = record.sections;
    if (typeof given !== 'object' || given === null || Array.isArray(given)) return badRow('"sections" is not an object', id);
    sections = {};
    for (const key of SECTION_KEYS) {
      const section = (given as Record<string, unknown>)[key];
      if (section === undefined || section === null) continue;
      if (typeof section !== 'string') return badRow(`"sections.${key}" is not a string`, id);
      if (section !== '') sections[key] = section;
    }
  }
  // The text is never longer in UTF-8 than the line it was escaped on.
  if (lineBytes > maxReportBytes) {
    const bytes = Buffer.byteLength(text);
    if (bytes > maxReportBytes) return tooLong({ id, source }, bytes, maxReportBytes);
  }
  return reportOf(subjectId === undefined ? { id, source } : { id, subjectId, source }, text, sections);
}
