/**
 * Reads what a complete shard holds without reading its payloads: one
 * positioned read per header, so resuming over many large shards is quick.
 * Only for shards medsyn wrote (ustar files and PAX `path` records). Private to
 * `streams/`.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { ErrorCodes, MedsynError } from '../errors.js';
import { BLOCK, padding, parseHeader, paxPath, splitEntryName } from './_tar_format.js';

/** The keys of a shard, in order, and its size. */
export interface ScannedShard {
  keys: string[];
  bytes: number;
}

/**
 * Lists the sample keys of a shard medsyn wrote, checking every header and the
 * end-of-archive marker at the very end of the file.
 *
 * @throws {MedsynError} `MEDSYN_ERR_CORRUPT_TAR` naming the shard and the byte
 */
export async function scanShard(path: string, hint: string): Promise<ScannedShard> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const block = Buffer.alloc(BLOCK);
    const keys: string[] = [];
    let position = 0;
    const corrupt = (detail: string, offset: number): MedsynError =>
      new MedsynError(ErrorCodes.CORRUPT_TAR, `Cannot read shard ${path}: ${detail} at byte ${offset} (${hint})`, { file: path, offset });
    const readBlock = async (at: number): Promise<Buffer> => {
      const { bytesRead } = await handle.read(block, 0, BLOCK, at);
      if (bytesRead !== BLOCK) throw corrupt('truncated', at + bytesRead);
      return block;
    };
    for (;;) {
      const headerAt = position;
      let header = parseHeader(await readBlock(position));
      if (header === null) {
        const second = parseHeader(await readBlock(position + BLOCK));
        if (second !== null || position + 2 * BLOCK !== size) throw corrupt('unexpected data after the end-of-archive marker', position);
        return { keys, bytes: size };
      }
      if (header === undefined) throw corrupt('bad header', position);
      let name = header.name;
      if (header.typeflag === 'x') {
        const body = Buffer.alloc(header.size);
        const { bytesRead } = await handle.read(body, 0, header.size, position + BLOCK);
        if (bytesRead !== header.size) throw corrupt('truncated PAX header', position);
        name = paxPath(body) ?? name;
        position += BLOCK + header.size + padding(header.size);
        header = parseHeader(await readBlock(position));
        if (!header) throw corrupt('bad header after a PAX header', position);
      }
      if (header.typeflag !== '0') throw corrupt(`entry of type ${JSON.stringify(header.typeflag)}`, position);
      const split = splitEntryName(name);
      if (!split) throw corrupt(`entry ${JSON.stringify(name)} without key or extension`, headerAt);
      if (keys[keys.length - 1] !== split.key) keys.push(split.key);
      position += BLOCK + header.size + padding(header.size);
      if (position + 2 * BLOCK > size) throw corrupt('truncated', size);
    }
  } finally {
    await handle.close();
  }
}

/** SHA-256 of a file, lower-case hex. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
