/**
 * Which report reader an input needs, from its name and its first bytes.
 *
 * @module
 */

import { ErrorCodes, MedsynError } from '../errors.js';

/** The input formats medsyn reads reports from. */
export type ReportFormat = 'zip' | 'dir' | 'txt' | 'csv' | 'ndjson';

/** Every {@link ReportFormat}, for validating options and flags. */
export const REPORT_FORMATS: readonly ReportFormat[] = ['zip', 'dir', 'txt', 'csv', 'ndjson'];

/** How many first bytes {@link detectFormat} may need: past a BOM and leading white space. */
export const DETECT_BYTES = 4096;

const BY_EXTENSION: Readonly<Record<string, ReportFormat>> = {
  '.zip': 'zip',
  '.csv': 'csv',
  '.ndjson': 'ndjson',
  '.jsonl': 'ndjson',
  '.txt': 'txt',
};

// Compressed and binary files that are often handed over by mistake, with what to do.
const BINARY_MAGIC: ReadonlyArray<{ magic: number[]; what: string; hint: string }> = [
  { magic: [0x1f, 0x8b], what: 'gzip-compressed', hint: 'gunzip it first, or pipe it: gzip -dc FILE | medsyn ...' },
  { magic: [0x42, 0x5a, 0x68], what: 'bzip2-compressed', hint: 'bunzip2 it first' },
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], what: 'xz-compressed', hint: 'unxz it first' },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], what: 'zstd-compressed', hint: 'unzstd it first' },
  { magic: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], what: 'a 7-Zip archive', hint: 'extract it, or re-pack it as .zip' },
];

/**
 * Tells which reader `name` needs: by its extension (`.zip`, `.csv`, `.ndjson`/`.jsonl`,
 * `.txt`, any case), else by its first bytes: `PK\x03\x04` (or the empty-archive
 * `PK\x05\x06`) is a zip, `{` after an optional BOM and white space is NDJSON, other
 * text is CSV. A folder is `dir`, which the caller knows from `stat`, not from here.
 *
 * @param name the path as given, or `-` for stdin (it has no extension)
 * @param firstBytes the first bytes of the input, up to {@link DETECT_BYTES}; may be fewer
 * @throws {MedsynError} `MEDSYN_ERR_UNKNOWN_FORMAT` for binary input that is none of these
 *   (gzip, bzip2, xz, zstd, 7z, NUL bytes) or a JSON array
 * @example
 * ```ts
 * detectFormat('reports.csv', new Uint8Array()); // 'csv'
 * detectFormat('-', new TextEncoder().encode('{"id":"s1","text":"..."}\n')); // 'ndjson'
 * ```
 */
export function detectFormat(name: string, firstBytes: Uint8Array): ReportFormat {
  const dot = name.lastIndexOf('.');
  const slash = Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\'));
  if (dot > slash + 1) {
    const format = BY_EXTENSION[name.slice(dot).toLowerCase()];
    if (format !== undefined) return format;
  }
  const bytes = firstBytes;
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04]) || startsWith(bytes, [0x50, 0x4b, 0x05, 0x06])) return 'zip';
  for (const { magic, what, hint } of BINARY_MAGIC) {
    if (startsWith(bytes, magic)) throw unknown(name, `it is ${what}`, hint);
  }
  if (bytes.includes(0)) throw unknown(name, 'it has NUL bytes, so it is not text', 'is it the right file?');
  let at = startsWith(bytes, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (at < bytes.length && isSpace(bytes[at])) at += 1;
  if (bytes[at] === 0x7b) return 'ndjson';
  if (bytes[at] === 0x5b) {
    throw unknown(name, 'it looks like a JSON array', "convert it to NDJSON, one object a line: jq -c '.[]' FILE");
  }
  return 'csv';
}

function unknown(name: string, detail: string, hint: string): MedsynError {
  const what = name === '-' ? 'stdin' : name;
  return new MedsynError(
    ErrorCodes.UNKNOWN_FORMAT,
    `Cannot tell the format of ${what}: ${detail} (${hint}; or name the format with --format zip|dir|txt|csv|ndjson)`,
    { file: name },
  );
}

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  if (bytes.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic[i]) return false;
  return true;
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}
