/**
 * A zip central directory read as a stream of entries, a chunk at a time: memory holds
 * one chunk of the directory, never the whole index (the official MIMIC-CXR archive has
 * about 227k entries). Classic and ZIP64 end records. Private to streams/.
 */
import type { FileHandle } from 'node:fs/promises';
import { ErrorCodes, MedsynError } from '../errors.js';
import { inputName, readFailed } from './_input_errors.js';

/** What is kept of a central directory entry: a few numbers and the name. */
export interface FileEntry {
  name: string;
  /** Offset of the local header. */
  offset: number;
  compressedSize: number;
  size: number;
  crc: number;
  method: number;
  flags: number;
}

const END_SIGNATURE = 0x06054b50;
const END_BYTES = 22;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_LOCATOR_BYTES = 20;
const ZIP64_END_SIGNATURE = 0x06064b50;
const ENTRY_SIGNATURE = 0x02014b50;
const ENTRY_BYTES = 46;
const MAX_COMMENT = 0xffff;
const CHUNK_BYTES = 1 << 20;
const utf8 = new TextDecoder('utf-8');

/**
 * Where the central directory is and how many entries it has, from the end record
 * (and the ZIP64 end record when the counts overflow).
 *
 * @throws {MedsynError} `MEDSYN_ERR_CORRUPT_ZIP` when there is no end record or the
 *   directory lies outside the file
 */
export async function findCentralDirectory(handle: FileHandle, fileSize: number, name: string): Promise<{ offset: number; size: number; count: number }> {
  const tailBytes = Math.min(fileSize, END_BYTES + MAX_COMMENT + ZIP64_LOCATOR_BYTES);
  const tail = Buffer.allocUnsafe(tailBytes);
  await readFully(handle, tail, fileSize - tailBytes, name);
  let end = -1;
  for (let at = tailBytes - END_BYTES; at >= 0; at--) {
    if (tail.readUInt32LE(at) === END_SIGNATURE && at + END_BYTES + tail.readUInt16LE(at + 20) <= tailBytes) {
      end = at;
      break;
    }
  }
  if (end === -1) throw corrupt(name, 'no end-of-central-directory record');
  let count = tail.readUInt16LE(end + 10);
  let size = tail.readUInt32LE(end + 12);
  let offset = tail.readUInt32LE(end + 16);
  const locator = end - ZIP64_LOCATOR_BYTES;
  if (locator >= 0 && tail.readUInt32LE(locator) === ZIP64_LOCATOR_SIGNATURE) {
    const recordAt = Number(tail.readBigUInt64LE(locator + 8));
    const record = Buffer.allocUnsafe(56);
    if (recordAt + 56 > fileSize) throw corrupt(name, 'its ZIP64 end record lies past the end of the file');
    await readFully(handle, record, recordAt, name);
    if (record.readUInt32LE(0) !== ZIP64_END_SIGNATURE) throw corrupt(name, 'its ZIP64 end record is missing');
    count = Number(record.readBigUInt64LE(32));
    size = Number(record.readBigUInt64LE(40));
    offset = Number(record.readBigUInt64LE(48));
  }
  if (offset + size > fileSize) throw corrupt(name, `its central directory (${size} bytes at ${offset}) runs past the end of the file (${fileSize} bytes)`);
  return { offset, size, count };
}

/**
 * The entries of the central directory in directory order, directory entries
 * skipped, read in 1 MiB chunks.
 *
 * @throws {MedsynError} `MEDSYN_ERR_CORRUPT_ZIP` when an entry header is malformed
 */
export async function* centralDirectoryEntries(handle: FileHandle, fileSize: number, name: string): AsyncGenerator<FileEntry[]> {
  const { offset, size, count } = await findCentralDirectory(handle, fileSize, name);
  let position = offset;
  const endOfDirectory = offset + size;
  let carry: Buffer = Buffer.alloc(0);
  let seen = 0;
  while (position < endOfDirectory || carry.byteLength > 0) {
    const want = Math.min(CHUNK_BYTES, endOfDirectory - position);
    const chunkStart = position - carry.byteLength;
    const chunk = Buffer.allocUnsafe(carry.byteLength + want);
    carry.copy(chunk, 0);
    await readFully(handle, chunk.subarray(carry.byteLength), position, name);
    position += want;
    const entries: FileEntry[] = [];
    let at = 0;
    while (at + ENTRY_BYTES <= chunk.byteLength) {
      // The fields are read byte by byte: Buffer's readUInt*LE check their offset each call,
      // which over a directory of 230k entries costs more than the reading.
      if (uint32(chunk, at) !== ENTRY_SIGNATURE) throw corrupt(name, `no central directory entry at byte ${chunkStart + at}`);
      const nameLength = uint16(chunk, at + 28);
      const extraLength = uint16(chunk, at + 30);
      const commentLength = uint16(chunk, at + 32);
      const next = at + ENTRY_BYTES + nameLength + extraLength + commentLength;
      if (next > chunk.byteLength) break;
      seen++;
      const entryName = nameAt(chunk, at + ENTRY_BYTES, at + ENTRY_BYTES + nameLength);
      if (!entryName.endsWith('/')) {
        const entry: FileEntry = {
          name: entryName,
          flags: uint16(chunk, at + 8),
          method: uint16(chunk, at + 10),
          crc: uint32(chunk, at + 16),
          compressedSize: uint32(chunk, at + 20),
          size: uint32(chunk, at + 24),
          offset: uint32(chunk, at + 42),
        };
        if (entry.size === 0xffffffff || entry.compressedSize === 0xffffffff || entry.offset === 0xffffffff) {
          readZip64Extra(chunk.subarray(at + ENTRY_BYTES + nameLength, at + ENTRY_BYTES + nameLength + extraLength), entry);
        }
        entries.push(entry);
      }
      at = next;
    }
    carry = chunk.subarray(at);
    if (position >= endOfDirectory && carry.byteLength > 0) throw corrupt(name, 'its central directory ends inside an entry');
    if (entries.length > 0) yield entries;
  }
  // Some writers let a classic end record's 16-bit count wrap instead of writing ZIP64.
  if (seen % 0x10000 !== count % 0x10000) throw corrupt(name, `its central directory has ${seen} entries where the end record says ${count}`);
}

/** The little-endian 16-bit number at `at` (the caller knows it is in `bytes`). */
function uint16(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8);
}

/** The little-endian 32-bit number at `at` (the caller knows it is in `bytes`). */
function uint32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** An entry name, UTF-8 (an ASCII name, the usual kind, is read as Latin-1: the same string, made faster). */
function nameAt(chunk: Buffer, start: number, end: number): string {
  let high = 0;
  for (let at = start; at < end; at++) high |= chunk[at]!;
  return high < 0x80 ? chunk.toString('latin1', start, end) : utf8.decode(chunk.subarray(start, end));
}

/** Fills in the 64-bit sizes and offset from the ZIP64 extra field, in the order the format gives them. */
function readZip64Extra(extra: Buffer, entry: FileEntry): void {
  for (let at = 0; at + 4 <= extra.byteLength; ) {
    const id = extra.readUInt16LE(at);
    const length = extra.readUInt16LE(at + 2);
    if (id === 0x0001) {
      let field = at + 4;
      const take = (): number => {
        const value = Number(extra.readBigUInt64LE(field));
        field += 8;
        return value;
      };
      if (entry.size === 0xffffffff) entry.size = take();
      if (entry.compressedSize === 0xffffffff) entry.compressedSize = take();
      if (entry.offset === 0xffffffff) entry.offset = take();
      return;
    }
    at += 4 + length;
  }
}

/** Fills `buffer` from `position` as far as the file goes; returns how many bytes were read. */
export async function readAt(handle: FileHandle, buffer: Buffer, position: number, name: string): Promise<number> {
  let got = 0;
  try {
    while (got < buffer.byteLength) {
      const { bytesRead } = await handle.read(buffer, got, buffer.byteLength - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
  } catch (err) {
    throw readFailed(name, err);
  }
  return got;
}

async function readFully(handle: FileHandle, buffer: Buffer, position: number, name: string): Promise<void> {
  const got = await readAt(handle, buffer, position, name);
  if (got < buffer.byteLength) throw corrupt(name, `it ends at byte ${position + got}, inside its central directory`);
}

function corrupt(name: string, detail: string): MedsynError {
  return new MedsynError(
    ErrorCodes.CORRUPT_ZIP,
    `Cannot read ${inputName(name)}: not a readable zip archive (${detail}) (is it a zip, and is the download complete?)`,
    { file: name },
  );
}
