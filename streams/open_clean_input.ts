/**
 * Tells cleaned-report NDJSON (what `medsyn-clean` writes) from raw reports, from the
 * first line, without losing a byte of a stream that can be read only once.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { CleanReport, Reject } from '../records.js';
import { isCleanReportJson, readCleanNdjson } from './clean_ndjson.js';
import { detectFormat } from './detect_format.js';
import { inputBytes, peekBytes } from './_input_bytes.js';
import { notFound } from './_input_errors.js';
import { decodeUtf8 } from './_report_text.js';

/** Options of {@link openCleanInput}. */
export interface OpenCleanInputOptions {
  /** `clean` reads cleaned-report NDJSON without looking; `auto` looks at the first line; any other format means raw reports. @default 'auto' */
  format?: string;
  /** What `-` reads. @default process.stdin */
  stdin?: NodeJS.ReadableStream;
  /** See `readNdjsonReports`. @default 1_048_576 */
  maxReportBytes?: number;
  /** See `readNdjsonReports`. @default 8 × maxReportBytes */
  maxRecordBytes?: number;
}

/**
 * What {@link openCleanInput} found: cleaned reports to read, or raw reports for
 * `readReports(input, { stdin })` (a stream that was looked at comes back as `-` with
 * its bytes in `stdin`).
 */
export type OpenedInput =
  | { kind: 'clean'; records: AsyncGenerator<CleanReport | Reject> }
  | { kind: 'raw'; input: string; stdin?: NodeJS.ReadableStream };

/** A first line longer than this is not looked at whole: such input is read as raw reports. */
const SNIFF_BYTES = 8 << 20;

/**
 * Opens `input` (a path or `-`) as cleaned reports when it is NDJSON whose first object
 * has a string `prompt` and a `labels` object (see {@link isCleanReportJson}), or when
 * `format` is `clean`; otherwise says it holds raw reports. For `-`, the bytes read to
 * decide are handed back in `stdin`, so `readReports` still sees the whole stream.
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` for a path that does not exist;
 *   `MEDSYN_ERR_READ_FAILED`
 * @example
 * ```ts
 * const opened = await openCleanInput('-');
 * const records = opened.kind === 'clean' ? opened.records : cleanReports(readReports('-', { stdin: opened.stdin }));
 * ```
 */
export async function openCleanInput(input: string, options: OpenCleanInputOptions = {}): Promise<OpenedInput> {
  const format = options.format ?? 'auto';
  if (format !== 'auto' && format !== 'clean') return { kind: 'raw', input };
  const limits = {
    ...(options.maxReportBytes !== undefined ? { maxReportBytes: options.maxReportBytes } : {}),
    ...(options.maxRecordBytes !== undefined ? { maxRecordBytes: options.maxRecordBytes } : {}),
  };
  if (input !== '-') {
    let stats;
    try {
      stats = await stat(input);
    } catch (err) {
      throw notFound(input, err);
    }
    if (format === 'auto' && stats.isDirectory()) return { kind: 'raw', input };
    if (format === 'auto' && stats.isFile() && /\.(zip|csv|txt)$/iu.test(input)) return { kind: 'raw', input };
    if (format === 'clean' || stats.isFile()) {
      if (format === 'clean' || (await firstLineIsClean(input))) {
        return { kind: 'clean', records: readCleanNdjson(inputBytes(createReadStream(input, { highWaterMark: 1 << 20 }), input), { name: input, ...limits }) };
      }
      return { kind: 'raw', input };
    }
  }
  // stdin, or a pipe named by path: look at the first line, then hand every byte on.
  const name = input;
  const source = input === '-' ? (options.stdin ?? process.stdin) : createReadStream(input);
  const { head, chunks } = await peekBytes(inputBytes(source, name), (bytes) => format === 'clean' || enoughToSniff(bytes));
  if (format === 'clean' || looksClean(name, head)) return { kind: 'clean', records: readCleanNdjson(chunks, { name, ...limits }) };
  // A pipe cannot be opened twice: readReports reads what is left of it as stdin.
  return { kind: 'raw', input: '-', stdin: Readable.from(chunks, { objectMode: false }) };
}

/** Whether `bytes` hold a whole first non-blank line (or as much as will be looked at). */
function enoughToSniff(bytes: Uint8Array): boolean {
  if (bytes.byteLength >= SNIFF_BYTES) return true;
  let content = false;
  for (let i = 0; i < bytes.byteLength; i++) {
    const byte = bytes[i]!;
    if (byte === 0x0a && content) return true;
    if (byte !== 0x0a && byte !== 0x0d && byte !== 0x20 && byte !== 0x09) content = true;
  }
  return false;
}

async function firstLineIsClean(file: string): Promise<boolean> {
  const stream = createReadStream(file, { highWaterMark: 64 << 10 });
  const { head, close } = await peekBytes(inputBytes(stream, file), enoughToSniff);
  await close();
  stream.destroy();
  return looksClean(file, head);
}

function looksClean(name: string, head: Uint8Array): boolean {
  if (head.byteLength === 0) return false;
  let format;
  try {
    format = detectFormat(name === '-' ? '-' : 'input', head);
  } catch {
    return false;
  }
  if (format !== 'ndjson') return false;
  // The first non-blank line, whole.
  const text = decodeUtf8(head.subarray(0, Math.min(head.byteLength, SNIFF_BYTES)));
  if (text === undefined) return false;
  const line = text.split('\n').find((candidate) => candidate.trim() !== '');
  if (line === undefined) return false;
  try {
    return isCleanReportJson(JSON.parse(line));
  } catch {
    return false;
  }
}
