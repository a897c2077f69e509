/**
 * Inflating many small zip entries at once.
 *
 * `zlib.inflateRawSync` costs about 5 µs per call on a 1 KB report, nearly all of it
 * setting up and tearing down a zlib stream; over the 230k entries of MIMIC-CXR that is
 * the largest cost of reading the archive. A raw deflate stream becomes a gzip member
 * by adding a 10-byte header and an 8-byte trailer (CRC-32 and size, both known from the
 * central directory), and zlib's gunzip reads concatenated members in one call, checking
 * each member's CRC and size natively. So a batch of entries costs one zlib stream.
 * When the batch fails, the entries are inflated one by one to tell which one is bad.
 * Where the entries lie as the archive stores them, the headers and trailers are written
 * over the local headers between them, so not even the data is copied.
 *
 * @module
 */

import { crc32, gunzipSync, inflateRawSync } from 'node:zlib';

/** One zip entry's data as stored, with what the central directory says about it. */
export interface StoredEntryData {
  /** The entry's bytes as stored in the archive. */
  data: Uint8Array;
  /** 0 stored, 8 deflated. */
  method: number;
  /** CRC-32 of the uncompressed bytes. */
  crc: number;
  /** Uncompressed size in bytes. */
  size: number;
}

// Magic, deflate, no flags, no mtime, no extra flags, unknown OS.
const GZIP_HEADER = Uint8Array.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff]);

/**
 * The uncompressed bytes of each entry, in order; an entry that cannot be inflated or
 * fails its CRC or size check is an `Error` at its place (the others are still good).
 * When the entries' data lie in order in one buffer with room between them (as read
 * from the archive, local headers and all), the bytes between them are overwritten
 * (see {@link inflateInPlace}); the entries' own bytes never are.
 */
export function inflateBatch(entries: readonly StoredEntryData[]): Array<Uint8Array | Error> {
  const inPlace = inflateInPlace(entries);
  if (inPlace !== undefined) return inPlace;
  const out: Array<Uint8Array | Error> = new Array(entries.length);
  const deflated: number[] = [];
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    if (entry.method !== 8 || entry.data.byteLength === 0) {
      out[i] = inflateOne(entry);
      continue;
    }
    const trailer = Buffer.allocUnsafe(8);
    trailer.writeUInt32LE(entry.crc >>> 0, 0);
    trailer.writeUInt32LE(entry.size % 2 ** 32, 4);
    parts.push(GZIP_HEADER, entry.data, trailer);
    deflated.push(i);
    total += entry.size;
  }
  if (deflated.length === 0) return out;
  let joined: Buffer | undefined;
  try {
    // The output bound also stops an entry that lies about its size from inflating without end.
    joined = gunzipSync(Buffer.concat(parts), { maxOutputLength: Math.max(1, total) });
  } catch {
    joined = undefined;
  }
  if (joined !== undefined && joined.byteLength === total) {
    let at = 0;
    for (const i of deflated) {
      out[i] = joined.subarray(at, at + entries[i].size);
      at += entries[i].size;
    }
    return out;
  }
  for (const i of deflated) out[i] = inflateOne(entries[i]);
  return out;
}

// A gzip header with an extra field (FLG.FEXTRA) of any length: it fills the gap between
// two entries' data exactly.
const GZIP_EXTRA_HEADER_BYTES = 12;
const GZIP_TRAILER_BYTES = 8;

/**
 * {@link inflateBatch} without copying the entries' data, when they lie in order in one
 * buffer as the archive stores them, with their local headers between them: each gap
 * is overwritten with the previous entry's gzip trailer and the next one's gzip header
 * (its extra field as long as the rest of the gap), which makes the stretch one run of
 * gzip members in place. The entries' own bytes are not touched. Undefined when the
 * entries are not laid out so, or the run does not inflate (the caller then does it
 * the other way, which tells the bad entry).
 */
function inflateInPlace(entries: readonly StoredEntryData[]): Array<Uint8Array | Error> | undefined {
  if (entries.length === 0) return undefined;
  const first = entries[0].data;
  const buffer = first.buffer;
  if (first.byteOffset < GZIP_EXTRA_HEADER_BYTES) return undefined;
  let previousEnd = first.byteOffset - GZIP_EXTRA_HEADER_BYTES - GZIP_TRAILER_BYTES;
  let total = 0;
  for (const entry of entries) {
    const { data } = entry;
    if (entry.method !== 8 || data.byteLength === 0 || data.buffer !== buffer) return undefined;
    const gap = data.byteOffset - previousEnd - GZIP_TRAILER_BYTES - GZIP_EXTRA_HEADER_BYTES;
    if (gap < 0 || gap > 0xffff) return undefined;
    previousEnd = data.byteOffset + data.byteLength;
    total += entry.size;
  }
  if (previousEnd + GZIP_TRAILER_BYTES > buffer.byteLength || total === 0) return undefined;
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  const start = first.byteOffset - GZIP_EXTRA_HEADER_BYTES;
  let at = start;
  for (const entry of entries) {
    const headerEnd = entry.data.byteOffset;
    bytes.set(GZIP_HEADER, at);
    bytes[at + 3] = 0x04; // FEXTRA
    view.setUint16(at + 10, headerEnd - at - GZIP_EXTRA_HEADER_BYTES, true);
    at = headerEnd + entry.data.byteLength;
    view.setUint32(at, entry.crc >>> 0, true);
    view.setUint32(at + 4, entry.size % 2 ** 32, true);
    at += GZIP_TRAILER_BYTES;
  }
  let joined: Buffer;
  try {
    joined = gunzipSync(bytes.subarray(start, at), { maxOutputLength: total });
  } catch {
    return undefined;
  }
  if (joined.byteLength !== total) return undefined;
  const out: Array<Uint8Array | Error> = new Array(entries.length);
  let from = 0;
  for (let i = 0; i < entries.length; i++) {
    out[i] = joined.subarray(from, from + entries[i].size);
    from += entries[i].size;
  }
  return out;
}

/** One entry, stored or deflated, checked against its CRC and size. */
function inflateOne(entry: StoredEntryData): Uint8Array | Error {
  let bytes: Uint8Array;
  // Some writers store an empty file as "deflated" with no data at all.
  if (entry.method === 0 || entry.data.byteLength === 0) {
    bytes = entry.data;
  } else {
    try {
      bytes = inflateRawSync(entry.data, { maxOutputLength: Math.max(1, entry.size) });
    } catch (err) {
      const code = (err as { code?: string }).code;
      return new Error(
        code === 'ERR_BUFFER_TOO_LARGE'
          ? `it inflates to more than the ${entry.size} bytes the archive says`
          : `its data does not inflate (${(err as Error).message})`,
      );
    }
  }
  if (bytes.byteLength !== entry.size) {
    return new Error(`it has ${bytes.byteLength} bytes where the archive says ${entry.size}`);
  }
  if (crc32(bytes) !== entry.crc >>> 0) return new Error('its CRC-32 does not match');
  return bytes;
}
