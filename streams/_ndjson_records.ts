/**
 * The line loop every NDJSON reader shares: limits, UTF-8, JSON, and a reject with its
 * reason for each line that is not a record. Private to streams/.
 */
import type { Reject } from '../records.js';
import { splitLines } from './split_lines.js';
import { byteLimit, decodeUtf8, DEFAULT_MAX_REPORT_BYTES, notUtf8, RECORD_BYTES_PER_REPORT_BYTE, rejectOf } from './_report_text.js';

/** The options every NDJSON reader takes. */
export interface NdjsonRecordsOptions {
  /** How the input is named in `source` (`NAME:LINE`) and in messages. @default '-' */
  name?: string;
  /** A text over this many UTF-8 bytes is rejected as `too_long`. @default 1_048_576 */
  maxReportBytes?: number;
  /** A line over this many bytes is rejected as `too_long` without being held whole. @default 8 × maxReportBytes */
  maxRecordBytes?: number;
}

/** Turns one parsed line into a record or a reject; `lineBytes` lets it skip measuring short texts. */
export type NdjsonRecordOf<T> = (value: unknown, source: string, lineBytes: number, maxReportBytes: number) => T | Reject;

/**
 * Splits `chunks` into lines and hands each parsed line to `recordOf`. Blank lines are
 * skipped; a line that is not UTF-8 is `not_utf8`, one that is not JSON `bad_json`, one
 * over `maxRecordBytes` `too_long` (skipped to the next newline, never held whole).
 */
export async function* readNdjsonRecords<T>(
  chunks: AsyncIterable<Uint8Array | string>,
  options: NdjsonRecordsOptions,
  recordOf: NdjsonRecordOf<T>,
): AsyncGenerator<T | Reject> {
  const name = options.name ?? '-';
  const maxReportBytes = byteLimit('maxReportBytes', options.maxReportBytes, DEFAULT_MAX_REPORT_BYTES);
  const maxRecordBytes = byteLimit(
    'maxRecordBytes',
    options.maxRecordBytes,
    Math.min(2 ** 31, maxReportBytes * RECORD_BYTES_PER_REPORT_BYTE),
  );
  for await (const line of splitLines(chunks, { maxLineBytes: maxRecordBytes })) {
    const source = `${name}:${line.number}`;
    if (line.truncated) {
      yield rejectOf(
        { id: idNear(line.bytes), source },
        'too_long',
        `Skipped line ${source}: it is ${line.byteLength} bytes, over maxRecordBytes ${maxRecordBytes} ` +
          '(raise maxReportBytes or maxRecordBytes to keep it)',
      );
      continue;
    }
    const json = decodeUtf8(line.bytes);
    if (json === undefined) {
      yield notUtf8({ source }, line.bytes);
      continue;
    }
    if (json.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch (err) {
      yield rejectOf({ source }, 'bad_json', `Skipped line ${source}: it is not JSON (${(err as Error).message.slice(0, 120)})`);
      continue;
    }
    yield recordOf(value, source, line.byteLength, maxReportBytes);
  }
}

/** The `"id"` near the start of a line too long to parse, for the reject; undefined when there is none. */
function idNear(start: Uint8Array): string | undefined {
  const head = Buffer.from(start.buffer, start.byteOffset, Math.min(start.byteLength, 4096)).toString('utf8');
  const match = /"id"\s*:\s*("(?:[^"\\]|\\.){1,256}")/.exec(head);
  if (match === null) return undefined;
  try {
    return JSON.parse(match[1]) as string;
  } catch {
    return undefined;
  }
}
