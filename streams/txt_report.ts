/**
 * Reads one report from one `.txt` file.
 *
 * @module
 */

import { basename, dirname, extname } from 'node:path';
import type { Reject, Report } from '../records.js';
import { readReportFile } from './_report_file.js';
import { SUBJECT_NAME } from './_report_path.js';
import { byteLimit, DEFAULT_MAX_REPORT_BYTES } from './_report_text.js';

/** Options of {@link readTxtReport}. */
export interface TxtReportOptions {
  /** A file over this many bytes is rejected as `too_long` without being read. @default 1_048_576 */
  maxReportBytes?: number;
}

/**
 * Yields the one report in a text file: `id` the file name without its extension
 * (`s50414267.txt` → `s50414267`), `subjectId` the parent folder's name when it is a
 * patient id (`p10000032`), `source` the path, `text` strict UTF-8 without a BOM. A file
 * over `maxReportBytes` is a `too_long` reject, one that is not UTF-8 a `not_utf8` reject.
 *
 * @param file path of the report
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` when `file` cannot be opened,
 *   `MEDSYN_ERR_READ_FAILED`, `MEDSYN_ERR_INVALID_OPTION`
 * @example
 * ```ts
 * for await (const item of readTxtReport('files/p10/p10000032/s50414267.txt')) console.log(item);
 * // { id: 's50414267', subjectId: 'p10000032', source: 'files/p10/p10000032/s50414267.txt', text: '...' }
 * ```
 */
export async function* readTxtReport(file: string, options: TxtReportOptions = {}): AsyncGenerator<Report | Reject> {
  const maxReportBytes = byteLimit('maxReportBytes', options.maxReportBytes, DEFAULT_MAX_REPORT_BYTES);
  const id = basename(file, extname(file));
  const parent = basename(dirname(file));
  const subjectId = SUBJECT_NAME.test(parent) ? parent : undefined;
  yield readReportFile(file, subjectId === undefined ? { id, source: file } : { id, subjectId, source: file }, maxReportBytes);
}
