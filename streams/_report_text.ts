/**
 * Turning the bytes or the text of one report into a {@link Report} or a {@link Reject},
 * the same way for every reader: the size limit, strict UTF-8, the BOM.
 *
 * @module
 */

import { invalidOption } from '../errors.js';
import type { Reject, RejectReason, Report, Sections } from '../records.js';

/** The default of every reader's `maxReportBytes`: 1 MiB, far above any real radiology report. */
export const DEFAULT_MAX_REPORT_BYTES = 1_048_576;

/**
 * How many times `maxReportBytes` one CSV record or NDJSON line may take before a reader
 * stops buffering it: room for JSON escapes and for sections next to the text.
 */
export const RECORD_BYTES_PER_REPORT_BYTE = 8;

/** Where a report came from, and who it is: everything of a {@link Report} but its text. */
export interface ReportPlace {
  id: string;
  subjectId?: string;
  source: string;
}

// `ignoreBOM: false` (the default) is what removes a leading BOM; `fatal` makes bad bytes throw.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Validates a `maxReportBytes`-like option: a positive integer of at most 2 GiB.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` naming `option`
 */
export function byteLimit(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > 2 ** 31) {
    invalidOption(option, `must be an integer from 1 to 2147483648, got ${String(value)}`);
  }
  return value;
}

/** A {@link Reject} with `id` only where it is known. */
export function rejectOf(place: { id?: string; source: string }, reason: RejectReason, message: string): Reject {
  return place.id === undefined || place.id === ''
    ? { source: place.source, reason, message }
    : { id: place.id, source: place.source, reason, message };
}

/** The `too_long` reject of a report of `bytes` bytes. */
export function tooLong(place: { id?: string; source: string }, bytes: number, maxReportBytes: number): Reject {
  const who = place.id ? ` ${place.id}` : '';
  return rejectOf(
    place,
    'too_long',
    `Skipped report${who}: ${bytes} bytes is over maxReportBytes ${maxReportBytes} (raise maxReportBytes to keep it)`,
  );
}

/** A {@link Report} with `subjectId` and `sections` only where they are known. */
export function reportOf(place: ReportPlace, text: string, sections?: Sections): Report {
  const { id, subjectId, source } = place;
  const report: Report = subjectId === undefined ? { id, source, text } : { id, subjectId, source, text };
  if (sections !== undefined) report.sections = sections;
  return report;
}

/**
 * The report in `bytes` (one whole file or archive entry): checked against
 * `maxReportBytes`, decoded as strict UTF-8, its BOM removed.
 */
export function reportFromBytes(bytes: Uint8Array, place: ReportPlace, maxReportBytes: number): Report | Reject {
  if (bytes.byteLength > maxReportBytes) return tooLong(place, bytes.byteLength, maxReportBytes);
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return notUtf8(place, bytes);
  }
  return reportOf(place, text);
}

/** Decodes one whole piece of bytes as strict UTF-8 without its BOM, or `undefined` when it is not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** The `not_utf8` reject of `bytes`, naming the first offending byte. */
export function notUtf8(place: { id?: string; source: string }, bytes: Uint8Array): Reject {
  const at = firstInvalidUtf8(bytes);
  const who = place.id ? ` ${place.id}` : '';
  return rejectOf(
    place,
    'not_utf8',
    `Skipped report${who}: byte ${at} is not valid UTF-8 (0x${(bytes[at] ?? 0).toString(16).padStart(2, '0')}; ` +
      `is it Latin-1 or Windows-1252? convert it with iconv -f cp1252 -t utf-8)`,
  );
}

/** The offset of the first byte that breaks UTF-8 in `bytes` (its length when there is none). Only for messages. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    let need: number;
    let min: number;
    if (b < 0x80) {
      i += 1;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return i;
    }
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return i;
}
