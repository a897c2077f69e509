/**
 * Reads the official MIMIC-CXR reports archive, `mimic-cxr-reports.zip`.
 *
 * @module
 */

import { open, type FileHandle } from 'node:fs/promises';
import { ErrorCodes, MedsynError } from '../errors.js';
import type { Reject, Report } from '../records.js';
import { inflateBatch, type StoredEntryData } from './_inflate_batch.js';
import { centralDirectoryEntries, readAt, type FileEntry } from './_zip_directory.js';
import { inputName, notFound } from './_input_errors.js';
import { parseArchivePath, type ReportPathIds } from './_report_path.js';
import {
  byteLimit,
  DEFAULT_MAX_REPORT_BYTES,
  rejectOf,
  reportFromBytes,
  tooLong,
  type ReportPlace,
} from './_report_text.js';

/** Options of {@link readZipReports}. */
export interface ZipReportsOptions {
  /**
   * How the archive is named in each report's `source` (`NAME:files/p10/…`) and in
   * messages: e.g. `-` when the archive was spooled from stdin.
   * @default the `file` argument
   */
  name?: string;
  /**
   * An entry whose uncompressed (or compressed) size is over this is rejected as
   * `too_long` without being inflated.
   * @default 1_048_576
   */
  maxReportBytes?: number;
}

// Reading the data of many entries with one read and one zlib stream is what makes the
// archive fast (see _inflate_batch.ts); these bound what one batch holds in memory. A
// batch of 256 MIMIC-CXR reports is about 75 kB read and 120 kB of text: twice 128 cost
// the main thread of `medsyn-clean` half the messages and writes, for ~4% less wall time.
const BATCH_ENTRIES = 256;
const BATCH_READ_BYTES = 1 << 20;
const BATCH_OUTPUT_BYTES = 4 << 20;
const LOCAL_HEADER_BYTES = 30;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;
// The local name and extra field usually match the central ones; this much more is read
// along, and an entry whose local header is longer still gets a read of its own.
const LOCAL_SLACK_BYTES = 256;

/**
 * Reads every report of a zip archive laid out as `files/pNN/pNNNNNNNN/sNNNNNNNN.txt`,
 * in archive order. The central directory is read a chunk at a time (see `_zip_directory.ts`); the entries'
 * data is then read in batches of consecutive entries (one file read and one zlib call
 * per batch, see `_inflate_batch.ts`), so memory holds one chunk of the directory and
 * one batch, never the archive or its whole index.
 *
 * Each report: `id` the study (`s50414267`), `subjectId` the patient (`p10000032`),
 * `source` `NAME:files/p10/p10000032/s50414267.txt`, `text` the file's text, strict
 * UTF-8, without a BOM. Directory entries are skipped. An entry outside `files/`, with
 * `..`, an absolute name or any other name off the layout, encrypted, or compressed
 * with other than deflate is a `bad_entry` reject and is never read; one too large is
 * `too_long`; one that is not UTF-8 is `not_utf8`.
 *
 * @param file path of the archive (a regular file: it is read at random offsets)
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` when `file` cannot be opened;
 *   `MEDSYN_ERR_CORRUPT_ZIP` naming the archive when it is not a zip, is truncated, or an
 *   entry's data is damaged (bad local header, does not inflate, CRC mismatch);
 *   `MEDSYN_ERR_READ_FAILED` when reading fails; `MEDSYN_ERR_INVALID_OPTION`
 * @example
 * ```ts
 * for await (const item of readZipReports('mimic-cxr-reports.zip')) {
 *   if (!isReject(item)) console.log(item.id, item.subjectId, item.text.length);
 * }
 * ```
 */
export async function* readZipReports(
  file: string,
  options: ZipReportsOptions = {},
): AsyncGenerator<Report | Reject> {
  for await (const batch of readZipBatches(file, options)) yield* decodeZipBatch(batch);
}

/**
 * A batch of consecutive archive entries as stored: the rejects made without reading
 * (bad names, too large, encrypted) and the compressed data of the rest, in one
 * `ArrayBuffer` that can be transferred to a worker thread. {@link decodeZipBatch}
 * turns it into reports.
 */
export interface ZipBatch {
  /** How the archive is named in messages. */
  name: string;
  maxReportBytes: number;
  /** The rejects made without reading, each with its index among the batch's records in archive order. */
  rejects: Array<{ index: number; reject: Reject }>;
  /**
   * The names of the entries to read, in archive order, joined by `\n` (no name of the
   * layout holds one). Names and numbers rather than an object per entry: a batch
   * crosses to a worker thread, and objects cost far more to copy.
   */
  entryNames: string;
  /**
   * {@link ZIP_BATCH_FIELDS} numbers per entry to read: its local header offset, method,
   * CRC-32, uncompressed size, and where its stored bytes start and end in `data`.
   */
  numbers: Float64Array;
  /**
   * The stored bytes of every entry to read: usually the stretch of the archive that
   * holds them (local headers included, as read), else the entries' bytes packed.
   */
  data: ArrayBuffer;
}

/** Numbers per entry in {@link ZipBatch.numbers}. */
export const ZIP_BATCH_FIELDS = 6;

/**
 * Reads the archive as {@link ZipBatch}es of at most 256 entries, 1 MiB read and
 * 4 MiB inflated: what {@link readZipReports} does, but leaving the inflating and
 * decoding to {@link decodeZipBatch}, which may run on another thread.
 *
 * @throws {MedsynError} as {@link readZipReports}, except the damage found when inflating
 * @example
 * ```ts
 * for await (const batch of readZipBatches('mimic-cxr-reports.zip')) console.log(decodeZipBatch(batch).length);
 * ```
 */
export async function* readZipBatches(file: string, options: ZipReportsOptions = {}): AsyncGenerator<ZipBatch> {
  const maxReportBytes = byteLimit('maxReportBytes', options.maxReportBytes, DEFAULT_MAX_REPORT_BYTES);
  const name = options.name ?? file;
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw notFound(file, err);
  }
  try {
    const fileSize = (await handle.stat()).size;
    const entries = new EntryCursor(centralDirectoryEntries(handle, fileSize, name));
    while (!(await entries.done())) yield await readBatch(handle, fileSize, entries, { name, maxReportBytes });
  } finally {
    await handle.close();
  }
}

/**
 * Inflates and decodes a {@link ZipBatch}: reports and rejects in archive order.
 *
 * @throws {MedsynError} `MEDSYN_ERR_CORRUPT_ZIP` when an entry's data is damaged
 *   (does not inflate, CRC or size mismatch)
 */
export function decodeZipBatch(batch: ZipBatch): Array<Report | Reject> {
  const records: Array<Report | Reject> = [];
  forEachZipRecord(batch, (record) => records.push(record));
  return records;
}

/**
 * Inflates a {@link ZipBatch} and hands each report or reject to `visit` in archive
 * order, decoding each entry's text only when its turn comes: what a caller is done
 * with by then need not outlive the batch.
 *
 * Inflating writes over the local headers in `batch.data` (never over the entries' bytes,
 * so a batch can be decoded again).
 *
 * @throws {MedsynError} `MEDSYN_ERR_CORRUPT_ZIP` at a damaged entry (the entries before
 *   it have been visited)
 * @example
 * ```ts
 * forEachZipRecord(batch, (record) => console.log(isReject(record) ? record.reason : record.id));
 * ```
 */
export function forEachZipRecord(batch: ZipBatch, visit: (record: Report | Reject) => void): void {
  const names = batch.entryNames === '' ? [] : batch.entryNames.split('\n');
  const numbers = batch.numbers;
  const stored: StoredEntryData[] = new Array(names.length);
  for (let k = 0, at = 0; k < names.length; k++, at += ZIP_BATCH_FIELDS) {
    stored[k] = {
      data: new Uint8Array(batch.data, numbers[at + 4], numbers[at + 5] - numbers[at + 4]),
      method: numbers[at + 1],
      crc: numbers[at + 2],
      size: numbers[at + 3],
    };
  }
  const inflated = inflateBatch(stored);
  const rejects = batch.rejects;
  const total = names.length + rejects.length;
  for (let index = 0, k = 0, r = 0; index < total; index++) {
    if (r < rejects.length && rejects[r].index === index) {
      visit(rejects[r++].reject);
      continue;
    }
    const entryName = names[k];
    const bytes = inflated[k];
    const offset = numbers[k * ZIP_BATCH_FIELDS];
    k++;
    if (bytes instanceof Error) throw damaged(batch.name, { name: entryName, offset }, bytes.message);
    // The name passed this check when the batch was read; the ids are not worth a copy between threads.
    const ids = parseArchivePath(entryName);
    if ('problem' in ids) throw damaged(batch.name, { name: entryName, offset }, `its name ${ids.problem}`);
    visit(reportFromBytes(bytes, placeOf(batch.name, entryName, ids), batch.maxReportBytes));
  }
}

/** The directory's entries one at a time, with a look at the next before taking it. */
class EntryCursor {
  readonly #chunks: AsyncIterator<FileEntry[]>;
  #chunk: FileEntry[] = [];
  #at = 0;
  #finished = false;

  constructor(chunks: AsyncIterable<FileEntry[]>) {
    this.#chunks = chunks[Symbol.asyncIterator]();
  }

  /** Whether every entry was taken; reads the next directory chunk when this one is used up. */
  async done(): Promise<boolean> {
    while (this.#at === this.#chunk.length && !this.#finished) {
      const next = await this.#chunks.next();
      if (next.done) this.#finished = true;
      else {
        this.#chunk = next.value;
        this.#at = 0;
      }
    }
    return this.#at === this.#chunk.length;
  }

  /** The next entry of the chunk at hand, or undefined at its end (call {@link done} to move on). */
  peek(): FileEntry | undefined {
    return this.#chunk[this.#at];
  }

  take(): void {
    this.#at++;
  }
}

/** Where a report of the archive comes from, as its records and rejects say it. */
function placeOf(name: string, entryName: string, ids: ReportPathIds): ReportPlace {
  return { id: ids.id, subjectId: ids.subjectId, source: `${name}:${entryName}` };
}

/** Reads the stored data of the next batch of entries. */
async function readBatch(
  handle: FileHandle,
  fileSize: number,
  entries: EntryCursor,
  options: { name: string; maxReportBytes: number },
): Promise<ZipBatch> {
  const { name, maxReportBytes } = options;
  // The rejects with their index in archive order; `taken` counts every entry.
  const rejects: Array<{ index: number; reject: Reject }> = [];
  const skip = (reject: Reject): void => void rejects.push({ index: taken, reject });
  const wanted: FileEntry[] = [];
  let start = 0;
  let end = 0;
  let output = 0;
  let taken = 0;
  for (; taken < BATCH_ENTRIES; taken++) {
    const entry = entries.peek();
    if (entry === undefined) break;
    const ids = parseArchivePath(entry.name);
    if ('problem' in ids) {
      skip(rejectOf({ source: `${name}:${entry.name}` }, 'bad_entry', `Skipped archive entry ${entry.name}: it ${ids.problem}`));
      entries.take();
      continue;
    }
    const biggest = Math.max(entry.size, entry.compressedSize);
    if (biggest > maxReportBytes) {
      skip(tooLong(placeOf(name, entry.name, ids), biggest, maxReportBytes));
      entries.take();
      continue;
    }
    if ((entry.flags & 1) !== 0) {
      skip(rejectOf(placeOf(name, entry.name, ids), 'bad_entry', `Skipped archive entry ${entry.name}: it is encrypted (decrypt the archive first)`));
      entries.take();
      continue;
    }
    if (entry.method !== 0 && entry.method !== 8) {
      skip(
        rejectOf(
          placeOf(name, entry.name, ids),
          'bad_entry',
          `Skipped archive entry ${entry.name}: it uses compression method ${entry.method}; ` +
            'medsyn reads stored and deflated entries (re-zip the archive with deflate)',
        ),
      );
      entries.take();
      continue;
    }
    const entryEnd = entry.offset + LOCAL_HEADER_BYTES + LOCAL_SLACK_BYTES + entry.name.length + entry.compressedSize;
    if (wanted.length > 0) {
      const outOfOrder = entry.offset < start;
      const tooMuch = entryEnd - start > BATCH_READ_BYTES || output + entry.size > BATCH_OUTPUT_BYTES;
      if (outOfOrder || tooMuch) break;
    } else {
      start = entry.offset;
    }
    entries.take();
    end = Math.max(end, entryEnd);
    output += entry.size;
    wanted.push(entry);
  }

  const numbers = new Float64Array(wanted.length * ZIP_BATCH_FIELDS);
  const names: string[] = new Array(wanted.length);
  let data = new ArrayBuffer(0);
  if (wanted.length > 0) {
    // One read of the stretch that holds the batch, into a buffer of its own: it goes to a
    // worker as it is, local headers and all, and `numbers` say where each entry's bytes are.
    const window = Buffer.allocUnsafeSlow(Math.max(0, Math.min(end, fileSize) - start));
    const got = await readAt(handle, window, start, name);
    let whole = true;
    for (let k = 0, at = 0; k < wanted.length; k++, at += ZIP_BATCH_FIELDS) {
      const entry = wanted[k];
      const dataStart = dataStartInWindow(window, got, start, entry, name);
      names[k] = entry.name;
      numbers[at] = entry.offset;
      numbers[at + 1] = entry.method;
      numbers[at + 2] = entry.crc;
      numbers[at + 3] = entry.size;
      numbers[at + 4] = dataStart;
      numbers[at + 5] = dataStart + entry.compressedSize;
      if (dataStart < 0 || dataStart + entry.compressedSize > got) whole = false;
    }
    data = window.buffer;
    // An entry whose local header is longer than the slack runs past the read: pack the batch.
    if (!whole) data = await packBatch(handle, window.subarray(0, got), wanted, numbers, name);
  }
  return { name, maxReportBytes, rejects, entryNames: names.join('\n'), numbers, data };
}

/**
 * Where `entry`'s stored bytes start in `window` (the `got` bytes read from `windowStart`),
 * or -1 when its local header is not all in it.
 */
function dataStartInWindow(window: Buffer, got: number, windowStart: number, entry: FileEntry, name: string): number {
  const at = entry.offset - windowStart;
  if (at + LOCAL_HEADER_BYTES > got) return -1;
  if ((window[at] | (window[at + 1] << 8) | (window[at + 2] << 16) | (window[at + 3] << 24)) >>> 0 !== LOCAL_HEADER_SIGNATURE) {
    throw damaged(name, entry, `there is no local header at byte ${entry.offset}`);
  }
  return at + LOCAL_HEADER_BYTES + (window[at + 26] | (window[at + 27] << 8)) + (window[at + 28] | (window[at + 29] << 8));
}

/**
 * The stored bytes of every entry of a batch packed in one buffer, those that lie in
 * `window` taken from it, the others read on their own; `numbers` updated to match.
 */
async function packBatch(handle: FileHandle, window: Buffer, wanted: FileEntry[], numbers: Float64Array, name: string): Promise<ArrayBuffer> {
  const pieces: Uint8Array[] = [];
  let packed = 0;
  for (let k = 0, at = 0; k < wanted.length; k++, at += ZIP_BATCH_FIELDS) {
    const inWindow = numbers[at + 4] >= 0 && numbers[at + 5] <= window.byteLength;
    const piece = inWindow ? window.subarray(numbers[at + 4], numbers[at + 5]) : await readEntryData(handle, wanted[k], name);
    pieces.push(piece);
    numbers[at + 4] = packed;
    numbers[at + 5] = packed + piece.byteLength;
    packed += piece.byteLength;
  }
  const bytes = new Uint8Array(packed);
  for (let k = 0; k < pieces.length; k++) bytes.set(pieces[k], numbers[k * ZIP_BATCH_FIELDS + 4]);
  return bytes.buffer;
}

/** The stored bytes of `entry`, read on their own. */
async function readEntryData(handle: FileHandle, entry: FileEntry, name: string): Promise<Uint8Array> {
  const header = Buffer.allocUnsafe(LOCAL_HEADER_BYTES);
  if ((await readAt(handle, header, entry.offset, name)) < LOCAL_HEADER_BYTES) {
    throw damaged(name, entry, `its local header at byte ${entry.offset} is past the end of the file`);
  }
  const data = Buffer.allocUnsafe(entry.compressedSize);
  if ((await readAt(handle, data, entry.offset + localHeaderLength(header, entry, name), name)) < entry.compressedSize) {
    throw damaged(name, entry, 'its data runs past the end of the file');
  }
  return data;
}

/** The length of the local header at the start of `bytes`, name and extra field included. */
function localHeaderLength(bytes: Buffer, entry: FileEntry, name: string): number {
  if (bytes.readUInt32LE(0) !== LOCAL_HEADER_SIGNATURE) {
    throw damaged(name, entry, `there is no local header at byte ${entry.offset}`);
  }
  return LOCAL_HEADER_BYTES + bytes.readUInt16LE(26) + bytes.readUInt16LE(28);
}

function damaged(name: string, entry: { name: string; offset: number }, detail: string): MedsynError {
  return new MedsynError(
    ErrorCodes.CORRUPT_ZIP,
    `Cannot read ${inputName(name)}: entry ${entry.name} is damaged: ${detail} (is the download complete? compare the archive's checksum with the published one)`,
    { file: name, offset: entry.offset },
  );
}
