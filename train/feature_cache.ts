/**
 * An on-disk cache of frozen-encoder outputs, so that later epochs cost only
 * the heads. One file per encoder, `<dir>/<encoder hash>.features`, named by
 * the SHA-256 of the encoder's model file and recording it in its header: a
 * cache made by another encoder is never read. The file is compact and
 * self-indexing — a 48-byte header, then records
 * `[u16 key length][key, UTF-8][16-byte input digest][size × float32 LE]` — and
 * the key → offset index is rebuilt by one scan when the file is opened.
 * Each record also carries a digest of the encoder's input (the image bytes or
 * the caption), so a key whose content changed is a miss, never a stale hit.
 * A record cut short by a crash is dropped when the file is next opened.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';

const MAGIC = 'MEDSYNFC';
const VERSION = 1;
const HEADER_BYTES = 48;
const DIGEST_BYTES = 16;

/** Options of {@link FeatureCache.open}. */
export interface FeatureCacheOptions {
  /** The SHA-256 (64 hex digits) of the encoder's model file; it names the cache file. */
  encoderHash: string;
  /** Values per feature vector. */
  size: number;
}

/**
 * The 16-byte digest of an encoder input (image bytes or caption) that a
 * cached record must match.
 *
 * @example
 * ```ts
 * const digest = inputDigest(sample.parts.png);
 * ```
 */
export function inputDigest(input: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(input).digest().subarray(0, DIGEST_BYTES));
}

/**
 * The SHA-256 of a file as 64 hex digits: the encoder hash of a model file.
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` when the file cannot be read
 * @example
 * ```ts
 * const encoderHash = sha256File('model/onnx/vision_model.onnx');
 * ```
 */
export function sha256File(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot hash ${path}: ${(cause as Error).message}`, { file: path, cause });
  }
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.alloc(1 << 20);
    for (let read; (read = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, read));
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/**
 * A feature cache file for one encoder. Owns a file descriptor: call
 * {@link close} when done.
 *
 * @example
 * ```ts
 * const cache = FeatureCache.open('cache/', { encoderHash, size: 512 });
 * let features = cache.get(sample.key, digest);
 * if (!features) cache.put(sample.key, digest, (features = await encode(sample)));
 * cache.close();
 * ```
 */
export class FeatureCache {
  /** The cache file. */
  readonly file: string;
  /** Values per feature vector. */
  readonly size: number;
  /** The encoder hash the file belongs to. */
  readonly encoderHash: string;
  /** Lookups answered from the file. */
  hits = 0;
  /** Lookups that found nothing usable. */
  misses = 0;
  readonly #fd: number;
  readonly #index = new Map<string, number>();
  #end: number;

  private constructor(file: string, fd: number, encoderHash: string, size: number, end: number) {
    this.file = file;
    this.#fd = fd;
    this.encoderHash = encoderHash;
    this.size = size;
    this.#end = end;
  }

  /**
   * Opens (or creates) the cache file of `options.encoderHash` in `dir`.
   *
   * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a hash that is not 64 hex digits or a bad size;
   *   `MEDSYN_ERR_BAD_CACHE` for a file whose header is not a medsyn feature cache of this encoder and size
   *   (delete it to rebuild); `MEDSYN_ERR_WRITE_FAILED` when the folder or file cannot be made
   */
  static open(dir: string, options: FeatureCacheOptions): FeatureCache {
    const { encoderHash, size } = options;
    if (typeof encoderHash !== 'string' || !/^[0-9a-f]{64}$/.test(encoderHash)) invalidOption('encoderHash', `must be a SHA-256 in 64 lower-case hex digits, got ${String(encoderHash)}`);
    if (!Number.isSafeInteger(size) || size < 1) invalidOption('size', `must be a whole number ≥ 1, got ${String(size)}`);
    const file = join(dir, `${encoderHash}.features`);
    let fd: number;
    try {
      mkdirSync(dir, { recursive: true });
      fd = openSync(file, existsSync(file) ? 'r+' : 'w+');
    } catch (cause) {
      throw new MedsynError(ErrorCodes.WRITE_FAILED, `Cannot open feature cache ${file}: ${(cause as Error).message}`, { file, cause });
    }
    try {
      const length = fstatSync(fd).size;
      const header = Buffer.alloc(HEADER_BYTES);
      header.write(MAGIC, 0, 'latin1');
      header.writeUInt32LE(VERSION, 8);
      header.writeUInt32LE(size, 12);
      Buffer.from(encoderHash, 'hex').copy(header, 16);
      if (length === 0) {
        writeSync(fd, header, 0, HEADER_BYTES, 0);
        return new FeatureCache(file, fd, encoderHash, size, HEADER_BYTES);
      }
      const found = Buffer.alloc(HEADER_BYTES);
      const read = readSync(fd, found, 0, HEADER_BYTES, 0);
      if (read < HEADER_BYTES || found.toString('latin1', 0, 8) !== MAGIC || found.readUInt32LE(8) !== VERSION) {
        throw new MedsynError(ErrorCodes.BAD_CACHE, `Cannot use feature cache ${file}: it is not a medsyn feature cache (version ${VERSION}) (delete it to rebuild)`, { file });
      }
      if (!found.subarray(16).equals(header.subarray(16))) {
        throw new MedsynError(ErrorCodes.BAD_CACHE, `Cannot use feature cache ${file}: it was made by encoder ${found.subarray(16).toString('hex')}, not ${encoderHash} (delete it to rebuild)`, { file });
      }
      if (found.readUInt32LE(12) !== size) {
        throw new MedsynError(ErrorCodes.BAD_CACHE, `Cannot use feature cache ${file}: it holds vectors of ${found.readUInt32LE(12)} values, the encoder writes ${size} (delete it to rebuild)`, { file });
      }
      const cache = new FeatureCache(file, fd, encoderHash, size, HEADER_BYTES);
      cache.#scan(length);
      return cache;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Keys with a record. */
  get count(): number {
    return this.#index.size;
  }

  /** Whether `key` has a record (whatever its digest). */
  has(key: string): boolean {
    return this.#index.has(key);
  }

  /**
   * The cached features of `key`, or undefined when there is none or its input digest differs.
   *
   * @throws {MedsynError} `MEDSYN_ERR_READ_FAILED` when the file cannot be read
   */
  get(key: string, digest: Uint8Array): Float32Array | undefined {
    const offset = this.#index.get(key);
    if (offset === undefined) {
      this.misses++;
      return undefined;
    }
    const buffer = Buffer.alloc(DIGEST_BYTES + 4 * this.size);
    const read = this.#read(buffer, offset);
    if (read < buffer.length || !buffer.subarray(0, DIGEST_BYTES).equals(digest)) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    const features = new Float32Array(this.size);
    for (let i = 0; i < this.size; i++) features[i] = buffer.readFloatLE(DIGEST_BYTES + 4 * i);
    return features;
  }

  /**
   * Appends the features of `key` (a later record of a key replaces the earlier one).
   *
   * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a mis-sized vector, a bad digest or a key over 65535 bytes;
   *   `MEDSYN_ERR_WRITE_FAILED` when the file cannot be written
   */
  put(key: string, digest: Uint8Array, features: ArrayLike<number>): void {
    if (features.length !== this.size) invalidOption('features', `got ${features.length} values for key ${key}, the cache holds ${this.size}`);
    if (digest.length !== DIGEST_BYTES) invalidOption('digest', `must be ${DIGEST_BYTES} bytes (inputDigest), got ${digest.length}`);
    const keyBytes = Buffer.from(key, 'utf8');
    if (keyBytes.length > 0xffff) invalidOption('key', `is ${keyBytes.length} bytes, at most 65535`);
    const record = Buffer.alloc(2 + keyBytes.length + DIGEST_BYTES + 4 * this.size);
    record.writeUInt16LE(keyBytes.length, 0);
    keyBytes.copy(record, 2);
    record.set(digest, 2 + keyBytes.length);
    const at = 2 + keyBytes.length + DIGEST_BYTES;
    for (let i = 0; i < this.size; i++) record.writeFloatLE(features[i]!, at + 4 * i);
    try {
      writeSync(this.#fd, record, 0, record.length, this.#end);
    } catch (cause) {
      throw new MedsynError(ErrorCodes.WRITE_FAILED, `Cannot write feature cache ${this.file}: ${(cause as Error).message}`, { file: this.file, cause });
    }
    this.#index.set(key, this.#end + 2 + keyBytes.length);
    this.#end += record.length;
  }

  /** Closes the file. */
  close(): void {
    closeSync(this.#fd);
  }

  #read(buffer: Buffer, position: number): number {
    try {
      return readSync(this.#fd, buffer, 0, buffer.length, position);
    } catch (cause) {
      throw new MedsynError(ErrorCodes.READ_FAILED, `Cannot read feature cache ${this.file}: ${(cause as Error).message}`, { file: this.file, cause });
    }
  }

  /** Builds the index from the records; cuts off a record a crash left incomplete. */
  #scan(length: number): void {
    const body = DIGEST_BYTES + 4 * this.size;
    const chunk = Buffer.alloc(Math.max(1 << 20, 2 + 0xffff + body));
    let position = HEADER_BYTES;
    let filled = 0;
    let chunkStart = position;
    while (position < length) {
      // Keep the chunk holding [position, position + longest record).
      if (position + 2 > chunkStart + filled || position + 2 + chunk.readUInt16LE(position - chunkStart) + body > chunkStart + filled) {
        chunkStart = position;
        filled = this.#read(chunk, position);
        if (filled < 2) break;
      }
      const keyLength = chunk.readUInt16LE(position - chunkStart);
      const recordEnd = position + 2 + keyLength + body;
      if (recordEnd > length || recordEnd > chunkStart + filled) break;
      const key = chunk.toString('utf8', position - chunkStart + 2, position - chunkStart + 2 + keyLength);
      this.#index.set(key, position + 2 + keyLength);
      position = recordEnd;
    }
    if (position < length) ftruncateSync(this.#fd, position);
    this.#end = position;
  }
}
