/**
 * The tar format as medsyn writes it: pure functions over 512-byte blocks, no
 * stream code. Headers are byte for byte what tar-stream's `pack()` writes for a
 * regular file with the same fields (plain ustar; a PAX `path` record only for a
 * name longer than 100 bytes), so shards read as tar-stream output everywhere.
 *
 * Private to `streams/`.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import { MAX_KEY_LENGTH, type Sample, type SampleRejectReason } from './sample.js';

/** Size of a tar block. */
export const BLOCK = 512;
/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE: Uint8Array = new Uint8Array(2 * BLOCK);
/** Mode, uid and gid of every entry medsyn writes (tar-stream's defaults). */
const FILE_MODE = 0o644;
/** Payloads at least this big are passed to the writer by reference; smaller pieces are packed together. */
const BY_REFERENCE = 32 * 1024;
/** The largest mtime an 11-digit octal field holds. */
export const MAX_MTIME = 0o77777777777;

const ZEROS = new Uint8Array(BLOCK);
const KEY_PATTERN = /^[A-Za-z0-9_-]+$/u;
const PART_PATTERN = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/u;

/** Validates an `mtime` option once: whole seconds that fit the header field. */
export function resolveMtime(mtime: number | undefined): number {
  const value = mtime ?? 0;
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_MTIME) {
    invalidOption('mtime', `must be a whole number of seconds from 0 to ${MAX_MTIME}, got ${String(mtime)}`);
  }
  return value;
}

/** Bytes of padding after `size` bytes of data, to the next block boundary. */
export function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** What is wrong with a sample medsyn is asked to write, or `undefined` when nothing is. */
export function sampleProblem(sample: Sample): { reason: SampleRejectReason; message: string } | undefined {
  if (typeof sample.key !== 'string' || !KEY_PATTERN.test(sample.key) || sample.key.length > MAX_KEY_LENGTH) {
    return {
      reason: 'bad_key',
      message: `key ${JSON.stringify(sample.key)} is not 1 to ${MAX_KEY_LENGTH} ASCII letters, digits, _ or -`,
    };
  }
  const names = Object.keys(sample.parts ?? {});
  if (names.length === 0) return { reason: 'empty_sample', message: `sample ${sample.key} has no parts` };
  for (const name of names) {
    if (!PART_PATTERN.test(name)) {
      return {
        reason: 'bad_entry',
        message: `part name ${JSON.stringify(name)} of sample ${sample.key} is not dot-separated ASCII letters, digits, _ or -`,
      };
    }
    const bytes = sample.parts[name];
    if (!(bytes instanceof Uint8Array)) {
      return { reason: 'bad_entry', message: `part ${name} of sample ${sample.key} is not bytes (Uint8Array)` };
    }
  }
  return undefined;
}

/**
 * Splits an entry name into key and extension by webdataset's rule: the key is
 * the path up to the first dot of the base name, the extension is the rest.
 * `undefined` when the base name has no key or no extension (`README`, `.hidden`, `a.`).
 */
export function splitEntryName(name: string): { key: string; extension: string } | undefined {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === name.length - 1) return undefined;
  return { key: name.slice(0, dot), extension: name.slice(dot + 1) };
}

/** The encoded tar entries of one sample: the chunks to write in order and their total length. */
export interface EncodedSample {
  chunks: Uint8Array[];
  size: number;
}

/**
 * Encodes one sample as adjacent regular-file entries, extensions in sorted
 * order. Headers, small parts and padding are packed into shared buffers; parts
 * of {@link BY_REFERENCE} bytes or more are passed through without a copy.
 * The sample must be valid ({@link sampleProblem}).
 */
export function encodeSampleEntries(sample: Sample, mtime: number): EncodedSample {
  const chunks: Uint8Array[] = [];
  let pending: Uint8Array[] = [];
  let pendingSize = 0;
  let size = 0;
  const add = (bytes: Uint8Array): void => {
    pending.push(bytes);
    pendingSize += bytes.byteLength;
  };
  const flush = (): void => {
    if (pendingSize === 0) return;
    chunks.push(pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingSize));
    size += pendingSize;
    pending = [];
    pendingSize = 0;
  };
  for (const extension of Object.keys(sample.parts).sort()) {
    const bytes = sample.parts[extension];
    for (const header of encodeFileHeaders(`${sample.key}.${extension}`, bytes.byteLength, mtime)) add(header);
    if (bytes.byteLength >= BY_REFERENCE) {
      flush();
      chunks.push(bytes);
      size += bytes.byteLength;
    } else if (bytes.byteLength > 0) {
      add(bytes);
    }
    const pad = padding(bytes.byteLength);
    if (pad > 0) add(ZEROS.subarray(0, pad));
  }
  flush();
  return { chunks, size };
}

/**
 * The header blocks of one regular file: one ustar block, or, for a name longer
 * than 100 bytes, a PAX header, its `path` record and the ustar block.
 */
export function encodeFileHeaders(name: string, size: number, mtime: number): Uint8Array[] {
  const nameBytes: Buffer = Buffer.from(name, 'utf8');
  if (nameBytes.byteLength <= 100) return [encodeHeader(nameBytes, size, mtime, '0')];
  // tar-stream names both headers 'PaxHeader'; the PAX record carries the real name.
  const record = Buffer.from(paxRecord('path', name), 'utf8');
  const paxName = Buffer.from('PaxHeader');
  const blocks: Uint8Array[] = [encodeHeader(paxName, record.byteLength, mtime, 'x'), record];
  const pad = padding(record.byteLength);
  if (pad > 0) blocks.push(ZEROS.subarray(0, pad));
  blocks.push(encodeHeader(paxName, size, mtime, '0'));
  return blocks;
}

/** One PAX record, `"<length> <key>=<value>\n"`, its length counting its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const length = Buffer.byteLength(body);
  let digits = String(length).length;
  if (length + digits >= 10 ** digits) digits++;
  return `${length + digits}${body}`;
}

function encodeHeader(name: Buffer, size: number, mtime: number, typeflag: '0' | 'x'): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.set(name, 0);
  block.write(octal(FILE_MODE, 6), 100, 'latin1');
  block.write(octal(0, 6), 108, 'latin1');
  block.write(octal(0, 6), 116, 'latin1');
  if (size.toString(8).length > 11) {
    // base-256, as GNU tar and tar-stream write sizes of 8 GiB and more
    block[124] = 0x80;
    let rest = size;
    for (let i = 11; i > 0; i--) {
      block[124 + i] = rest % 256;
      rest = Math.floor(rest / 256);
    }
  } else {
    block.write(octal(size, 11), 124, 'latin1');
  }
  block.write(octal(mtime, 11), 136, 'latin1');
  block[156] = typeflag.charCodeAt(0);
  block.write('ustar\u000000', 257, 'latin1');
  block.write(octal(0, 6), 329, 'latin1');
  block.write(octal(0, 6), 337, 'latin1');
  block.write(octal(checksum(block), 6), 148, 'latin1');
  return block;
}

function octal(value: number, digits: number): string {
  return `${value.toString(8).padStart(digits, '0')} `;
}

/** The header checksum: the sum of all bytes with the checksum field counted as spaces. */
export function checksum(block: Uint8Array): number {
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += block[i];
  for (let i = 156; i < BLOCK; i++) sum += block[i];
  return sum;
}

/** A header as {@link parseHeader} reads it. */
export interface ParsedHeader {
  name: string;
  size: number;
  /** The typeflag character (`'0'` for a regular file; NUL is returned as `'0'`). */
  typeflag: string;
}

/**
 * Reads one header block: `null` for a zero block (end of archive), `undefined`
 * when the checksum does not match or a number field is not a number.
 */
export function parseHeader(block: Uint8Array): ParsedHeader | null | undefined {
  if (block.every((byte) => byte === 0)) return null;
  const stored = parseNumber(block, 148, 8);
  if (stored === undefined || stored !== checksum(block)) return undefined;
  const size = parseNumber(block, 124, 12);
  if (size === undefined) return undefined;
  let name = cString(block, 0, 100);
  if (Buffer.from(block.subarray(257, 263)).toString('latin1') === 'ustar\u0000' && block[345] !== 0) {
    name = `${cString(block, 345, 155)}/${name}`;
  }
  const flag = block[156];
  return { name, size, typeflag: flag === 0 ? '0' : String.fromCharCode(flag) };
}

/** Reads the `path` record of a PAX header body, if it has one. */
export function paxPath(body: Uint8Array): string | undefined {
  let rest = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let path: string | undefined;
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    const length = Number.parseInt(rest.subarray(0, space).toString('latin1'), 10);
    if (space <= 0 || !(length > space) || length > rest.length) break;
    const record = rest.subarray(space + 1, length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0 && record.slice(0, equals) === 'path') path = record.slice(equals + 1);
    rest = rest.subarray(length);
  }
  return path;
}

function parseNumber(block: Uint8Array, offset: number, length: number): number | undefined {
  const field = block.subarray(offset, offset + length);
  if (field[0] === 0x80) {
    let value = 0;
    for (let i = 1; i < length; i++) value = value * 256 + field[i];
    return Number.isSafeInteger(value) ? value : undefined;
  }
  const text = Buffer.from(field).toString('latin1').replace(/[\u0000 ]+$/u, '').replace(/^ +/u, '');
  if (text === '') return 0;
  return /^[0-7]+$/u.test(text) ? Number.parseInt(text, 8) : undefined;
}

function cString(block: Uint8Array, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return Buffer.from(field.subarray(0, end === -1 ? length : end)).toString('utf8');
}
