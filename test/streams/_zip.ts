/**
 * A tiny zip writer for tests: enough of the format to build good archives and
 * deliberately broken ones (bad names, wrong CRC, odd methods) without any tool.
 */
import { crc32, deflateRawSync } from 'node:zlib';

/** One entry of {@link makeZip}. A name ending in `/` is a directory entry. */
export interface ZipEntrySpec {
  name: string;
  data?: Uint8Array | string;
  /** 0 stored, 8 deflated (the default for files). */
  method?: number;
  /** Overrides the CRC-32 written (to make a damaged entry). */
  crc?: number;
  /** Overrides the uncompressed size written. */
  size?: number;
  /** General purpose flags (1: encrypted). */
  flags?: number;
  /** An extra field written in the local header only. */
  localExtra?: Uint8Array;
  /** Bytes written as the entry's data instead of compressing `data`. */
  rawData?: Uint8Array;
  /** Overrides the local header offset the central directory gives. */
  offset?: number;
}

/** A zip archive of `entries`, in that order, with a central directory and end record. */
export function makeZip(entries: readonly ZipEntrySpec[], comment = ''): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const spec of entries) {
    const name = Buffer.from(spec.name, 'utf8');
    const isDir = spec.name.endsWith('/');
    const raw = typeof spec.data === 'string' ? Buffer.from(spec.data, 'utf8') : Buffer.from(spec.data ?? new Uint8Array(0));
    const method = spec.method ?? (isDir ? 0 : 8);
    const stored = spec.rawData ? Buffer.from(spec.rawData) : method === 8 ? deflateRawSync(raw) : raw;
    const crc = spec.crc ?? crc32(raw);
    const size = spec.size ?? raw.byteLength;
    const extra = Buffer.from(spec.localExtra ?? new Uint8Array(0));
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(spec.flags ?? 0x0800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(stored.byteLength, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.byteLength, 26);
    local.writeUInt16LE(extra.byteLength, 28);
    locals.push(local, name, extra, stored);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(0x031e, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(spec.flags ?? 0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc >>> 0, 16);
    central.writeUInt32LE(stored.byteLength, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.byteLength, 28);
    central.writeUInt16LE(0, 30);
    central.writeUInt16LE(0, 32);
    central.writeUInt16LE(0, 34);
    central.writeUInt16LE(0, 36);
    central.writeUInt32LE(isDir ? 0x41ed0010 : 0x81a40000, 38);
    central.writeUInt32LE(spec.offset ?? offset, 42);
    centrals.push(central, name);
    offset += 30 + name.byteLength + extra.byteLength + stored.byteLength;
  }
  const directory = Buffer.concat(centrals);
  const commentBytes = Buffer.from(comment, 'utf8');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.byteLength, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(commentBytes.byteLength, 20);
  return Buffer.concat([...locals, directory, end, commentBytes]);
}
