/**
 * Reading one report file whole, for the folder and `.txt` readers.
 *
 * The calls are synchronous on purpose: a report is a few kilobytes, and four thread-pool
 * round trips per file (open, stat, read, close) made a folder of reports ten times
 * slower to read than the same reports in a zip. Callers yield to the event loop
 * between batches of files.
 *
 * @module
 */

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Reject, Report } from '../records.js';
import { notFound, readFailed } from './_input_errors.js';
import { reportFromBytes, tooLong, type ReportPlace } from './_report_text.js';

/**
 * The report in the file at `path`: a file over `maxReportBytes` is a `too_long` reject
 * and is not read; otherwise it is decoded as strict UTF-8 without its BOM.
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` when the file cannot be opened,
 *   `MEDSYN_ERR_READ_FAILED` when reading it fails
 */
export function readReportFile(path: string, place: ReportPlace, maxReportBytes: number): Report | Reject {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw notFound(path, err);
  }
  try {
    const { size } = fstatSync(fd);
    if (size > maxReportBytes) return tooLong(place, size, maxReportBytes);
    // One byte more than the size: a file that grew since the stat is still caught.
    const buffer = Buffer.allocUnsafe(Math.min(size, maxReportBytes) + 1);
    let got = 0;
    while (got < buffer.byteLength) {
      const bytesRead = readSync(fd, buffer, got, buffer.byteLength - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return reportFromBytes(buffer.subarray(0, got), place, maxReportBytes);
  } catch (err) {
    throw readFailed(path, err);
  } finally {
    closeSync(fd);
  }
}
