/**
 * The one entry point for reading reports, whatever the input: the official zip, a
 * folder, a `.txt` file, CSV or NDJSON, from a path or stdin.
 *
 * @module
 */

import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ErrorCodes, invalidOption, MedsynError } from '../errors.js';
import type { Reject, Report } from '../records.js';
import { inputBytes, peekBytes } from './_input_bytes.js';
import { emptyInput, inputName, notFound, readFailed } from './_input_errors.js';
import { byteLimit, DEFAULT_MAX_REPORT_BYTES, RECORD_BYTES_PER_REPORT_BYTE } from './_report_text.js';
import { readCsvReports } from './csv_reports.js';
import { DETECT_BYTES, detectFormat, REPORT_FORMATS, type ReportFormat } from './detect_format.js';
import { readDirReports } from './dir_reports.js';
import { readNdjsonReports } from './ndjson_reports.js';
import { readTxtReport } from './txt_report.js';
import { readZipBatches, readZipReports, type ZipBatch, type ZipReportsOptions } from './zip_reports.js';

/** Options of {@link readReports}. */
export interface ReadReportsOptions {
  /**
   * The input format; `auto` tells it from the name (`.zip`, `.csv`, `.ndjson`/`.jsonl`,
   * `.txt`, a folder), else from the first bytes (see {@link detectFormat}).
   * @default 'auto'
   */
  format?: 'auto' | ReportFormat;
  /**
   * Generic CSV: the column with the study id. Giving `idColumn` or `textColumn` turns off
   * the recognition of the official sectioned CSV.
   * @default 'id'
   */
  idColumn?: string;
  /** Generic CSV: the column with the whole report text. @default 'text' */
  textColumn?: string;
  /** What `-` reads. @default process.stdin */
  stdin?: NodeJS.ReadableStream;
  /** A report over this many bytes is rejected as `too_long`. @default 1_048_576 */
  maxReportBytes?: number;
  /**
   * CSV and NDJSON: the most bytes one record (a CSV record, an NDJSON line) may take
   * before the reader stops buffering it (NDJSON: `too_long` reject; CSV: `MEDSYN_ERR_BAD_CSV`).
   * @default 8 × maxReportBytes
   */
  maxRecordBytes?: number;
  /**
   * Where a zip read from stdin (or a pipe) is spooled while it is read: a zip's
   * directory is at its end, so it needs a file. The spool is deleted when reading ends,
   * also on error or an early stop.
   * @default os.tmpdir()
   */
  tmpDir?: string;
}

/**
 * A batch of what {@link readReportBatches} reads: records, or a zip batch still to be
 * inflated and decoded with `decodeZipBatch` (on whichever thread the caller likes).
 */
export type ReportBatch = { items: Array<Report | Reject> } | { zip: ZipBatch };

/** How a reading yields what it read: records one by one, or batches. */
interface Output<T> {
  zip(file: string, options: ZipReportsOptions): AsyncIterable<T>;
  records(records: AsyncIterable<Report | Reject>): AsyncIterable<T>;
}

const RECORDS: Output<Report | Reject> = { zip: readZipReports, records: (records) => records };

/** Records go in batches of at most this many, and of at most 4 Mi characters of text; a zip comes in its own batches. */
const BATCH_RECORDS = 256;
const BATCH_CHARS = 4 << 20;

const BATCHES: Output<ReportBatch> = {
  async *zip(file, options) {
    for await (const zip of readZipBatches(file, options)) yield { zip };
  },
  async *records(records) {
    let items: Array<Report | Reject> = [];
    let chars = 0;
    for await (const record of records) {
      items.push(record);
      if ('text' in record) chars += record.text.length;
      if (items.length === BATCH_RECORDS || chars >= BATCH_CHARS) {
        yield { items };
        items = [];
        chars = 0;
      }
    }
    if (items.length > 0) yield { items };
  },
};

type Resolved = Required<Pick<ReadReportsOptions, 'format' | 'maxReportBytes' | 'maxRecordBytes' | 'tmpDir'>> &
  Pick<ReadReportsOptions, 'idColumn' | 'textColumn' | 'stdin'>;

// File streams give the CSV and NDJSON readers large pieces: fewer rounds, fewer fast-csv re-scans.
const FILE_CHUNK_BYTES = 1 << 20;

/**
 * Reads reports from `input`, a path or `-` for stdin, in whichever format it is, and
 * yields each {@link Report} or, for a record that cannot be a report, a {@link Reject}
 * with its reason; nothing is dropped silently. Memory stays flat: everything is read as
 * the consumer pulls. See `readZipReports`, {@link readDirReports},
 * {@link readTxtReport}, {@link readCsvReports} and {@link readNdjsonReports} for what
 * each format gives (ids, `source`, rejects). A zip on stdin is spooled to a temporary
 * file in `tmpDir`, which is deleted afterwards.
 *
 * @param input a path (file or folder) or `-` for `options.stdin`
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` naming a path that does not exist or
 *   cannot be opened; `MEDSYN_ERR_EMPTY_INPUT` for an empty file or stdin;
 *   `MEDSYN_ERR_UNKNOWN_FORMAT` for input none of the readers takes;
 *   `MEDSYN_ERR_CORRUPT_ZIP`, `MEDSYN_ERR_BAD_CSV`, `MEDSYN_ERR_MISSING_COLUMN` from the
 *   readers; `MEDSYN_ERR_READ_FAILED`, `MEDSYN_ERR_WRITE_FAILED` (the spool);
 *   `MEDSYN_ERR_INVALID_OPTION` (checked at the first pull)
 * @example
 * ```ts
 * for await (const item of readReports('mimic-cxr-reports.zip')) {
 *   if (isReject(item)) console.error(item.source, item.reason);
 *   else console.log(item.id, item.text.length);
 * }
 * ```
 */
export function readReports(input: string, options: ReadReportsOptions = {}): AsyncGenerator<Report | Reject> {
  return readInput(input, options, RECORDS);
}

/**
 * Reads `input` as {@link readReports} does, in batches: up to 256 records at a time,
 * and a zip archive in its stored batches, left for the caller to inflate and decode
 * (`decodeZipBatch`), so that work can go to worker threads.
 *
 * @throws {MedsynError} as {@link readReports}
 * @example
 * ```ts
 * for await (const batch of readReportBatches('mimic-cxr-reports.zip')) {
 *   const records = 'zip' in batch ? decodeZipBatch(batch.zip) : batch.items;
 * }
 * ```
 */
export function readReportBatches(input: string, options: ReadReportsOptions = {}): AsyncGenerator<ReportBatch> {
  return readInput(input, options, BATCHES);
}

async function* readInput<T>(input: string, options: ReadReportsOptions, output: Output<T>): AsyncGenerator<T> {
  const resolved = resolveOptions(options);
  if (typeof input !== 'string' || input === '') invalidOption('input', `must be a path or -, got ${JSON.stringify(input)}`);
  if (input === '-') {
    const stdin = resolved.stdin ?? process.stdin;
    yield* readStream('-', stdin, resolved, output);
    return;
  }
  let stats;
  try {
    stats = await stat(input);
  } catch (err) {
    throw notFound(input, err);
  }
  const { format } = resolved;
  if (stats.isDirectory()) {
    if (format !== 'auto' && format !== 'dir') {
      invalidOption('format', `${input} is a folder, which only format dir reads, not ${format}`);
    }
    yield* output.records(readDirReports(input, { maxReportBytes: resolved.maxReportBytes }));
    return;
  }
  if (!stats.isFile()) {
    // A FIFO or a device (`<(zcat reports.csv.gz)`, /dev/stdin): it can be read only once.
    yield* readStream(input, createReadStream(input, { highWaterMark: FILE_CHUNK_BYTES }), resolved, output);
    return;
  }
  if (stats.size === 0) throw emptyInput(input);
  const detected = format === 'auto' ? detectFormat(input, await firstBytes(input)) : format;
  switch (detected) {
    case 'zip':
      yield* output.zip(input, { maxReportBytes: resolved.maxReportBytes });
      return;
    case 'txt':
      yield* output.records(readTxtReport(input, { maxReportBytes: resolved.maxReportBytes }));
      return;
    case 'csv':
    case 'ndjson':
      yield* output.records(readText(input, detected, inputBytes(createReadStream(input, { highWaterMark: FILE_CHUNK_BYTES }), input), resolved));
      return;
    case 'dir':
      invalidOption('format', `format dir reads a folder, and ${input} is not one`);
  }
}

/** Reads `-` or another stream that can be read only once. */
async function* readStream<T>(name: string, stream: NodeJS.ReadableStream, options: Resolved, output: Output<T>): AsyncGenerator<T> {
  const { head, chunks, close } = await peekBytes(inputBytes(stream, name), enoughToDetect);
  try {
    if (head.byteLength === 0) throw emptyInput(name);
    const format = options.format === 'auto' ? detectFormat(name, head) : options.format;
    if (format === 'zip') {
      yield* spooledZip(name, chunks, options, output);
    } else if (format === 'csv' || format === 'ndjson') {
      yield* output.records(readText(name, format, chunks, options));
    } else {
      invalidOption(
        'format',
        format === 'txt'
          ? `format txt takes the report's id from its file name, and ${inputName(name)} has none (give the .txt path)`
          : `format dir reads a folder, not ${inputName(name)}`,
      );
    }
  } finally {
    await close();
  }
}

function readText(
  name: string,
  format: 'csv' | 'ndjson',
  chunks: AsyncIterable<Uint8Array>,
  options: Resolved,
): AsyncGenerator<Report | Reject> {
  const { maxReportBytes, maxRecordBytes } = options;
  return format === 'csv'
    ? readCsvReports(chunks, { name, idColumn: options.idColumn, textColumn: options.textColumn, maxReportBytes, maxRecordBytes })
    : readNdjsonReports(chunks, { name, maxReportBytes, maxRecordBytes });
}

/** A zip's central directory is at its end: the stream goes to a temporary file first, chunk by chunk. */
async function* spooledZip<T>(name: string, chunks: AsyncIterable<Uint8Array>, options: Resolved, output: Output<T>): AsyncGenerator<T> {
  let dir: string;
  try {
    dir = await mkdtemp(join(options.tmpDir, 'medsyn-zip-'));
  } catch (err) {
    throw spoolFailed(name, options.tmpDir, err);
  }
  try {
    const spool = join(dir, 'input.zip');
    try {
      await pipeline(chunks, createWriteStream(spool));
    } catch (err) {
      throw err instanceof MedsynError ? err : spoolFailed(name, dir, err);
    }
    yield* output.zip(spool, { name, maxReportBytes: options.maxReportBytes });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function spoolFailed(name: string, where: string, cause: unknown): MedsynError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new MedsynError(
    ErrorCodes.WRITE_FAILED,
    `Cannot spool the zip on ${inputName(name)} to ${where}: ${detail} (free some space, or point tmpDir/TMPDIR elsewhere)`,
    { file: where, cause },
  );
}

/** Whether the first bytes say enough for {@link detectFormat}: past a BOM and white space, with room for a magic number. */
function enoughToDetect(head: Uint8Array): boolean {
  if (head.byteLength >= DETECT_BYTES) return true;
  let at = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  while (at < head.byteLength && (head[at] === 0x20 || head[at] === 0x09 || head[at] === 0x0a || head[at] === 0x0d)) at += 1;
  return at < head.byteLength && head.byteLength >= 8;
}

async function firstBytes(file: string): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw notFound(file, err);
  }
  try {
    const buffer = Buffer.alloc(DETECT_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, DETECT_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } catch (err) {
    throw readFailed(file, err);
  } finally {
    await handle.close();
  }
}

function resolveOptions(options: ReadReportsOptions): Resolved {
  const format = options.format ?? 'auto';
  if (format !== 'auto' && !REPORT_FORMATS.includes(format)) {
    invalidOption('format', `must be one of auto, ${REPORT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
  }
  for (const option of ['idColumn', 'textColumn'] as const) {
    const value = options[option];
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      invalidOption(option, `must be a non-empty column name, got ${JSON.stringify(value)}`);
    }
  }
  const stdin = options.stdin;
  if (stdin !== undefined && typeof (stdin as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== 'function') {
    invalidOption('stdin', 'must be a readable stream');
  }
  const tmpDir = options.tmpDir ?? tmpdir();
  if (typeof tmpDir !== 'string' || tmpDir === '') invalidOption('tmpDir', `must be a folder path, got ${JSON.stringify(tmpDir)}`);
  const maxReportBytes = byteLimit('maxReportBytes', options.maxReportBytes, DEFAULT_MAX_REPORT_BYTES);
  const maxRecordBytes = byteLimit('maxRecordBytes', options.maxRecordBytes, Math.min(2 ** 31, RECORD_BYTES_PER_REPORT_BYTE * maxReportBytes));
  return { format, idColumn: options.idColumn, textColumn: options.textColumn, stdin, maxReportBytes, maxRecordBytes, tmpDir };
}
