/**
 * Writes files through a small ring of shared buffers, hashing them with
 * SHA-256 in a worker thread as they go. The main thread only copies bytes into
 * a buffer; the write (libuv's thread pool) and the hash (the worker) of a full
 * buffer run beside it, so decoding, writing and hashing use separate cores.
 * Private to `streams/`.
 *
 * @module
 */
import type { FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';

/**
 * The worker: one running SHA-256 fed slices of the shared buffers in order,
 * reset by each digest. The buffers are sent once, at the start: posting a
 * SharedArrayBuffer costs far more than posting two numbers. Inline, so that it
 * runs from source and compiled alike.
 */
const HASH_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const views = workerData.buffers.map((buffer) => new Uint8Array(buffer));
let hash = createHash('sha256');
parentPort.on('message', (message) => {
  if (message.digest) {
    const hex = hash.digest('hex');
    hash = createHash('sha256');
    parentPort.postMessage({ digest: hex });
    return;
  }
  hash.update(views[message.slot].subarray(0, message.length));
  parentPort.postMessage({ slot: message.slot });
});
`;

interface Slab {
  buffer: SharedArrayBuffer;
  view: Uint8Array;
  /** Operations (write, hash) still using the slab. */
  pending: number;
  /** Resolves when `pending` is back to 0. */
  free: Promise<void>;
  release: () => void;
}

/** Options of {@link HashedFileWriter.create}. */
export interface HashedFileWriterOptions {
  /** Size of each shared buffer, so of each write. @default 8388608 (8 MiB) */
  slabBytes?: number;
  /** Number of shared buffers in the ring. @default 4 */
  slabs?: number;
}

/** A sequence of files, one at a time, each written in full and hashed. Owns a worker thread: {@link close} it. */
export class HashedFileWriter {
  readonly #worker: Worker;
  readonly #slabs: Slab[];
  #slot = 0;
  #fill = 0;
  #handle: FileHandle | undefined;
  #position = 0;
  #error: unknown;
  #digest: ((hex: string) => void) | undefined;
  /** Messages the worker has yet to answer. While there are any, the worker keeps the process alive. */
  #awaited = 0;

  private constructor(options: HashedFileWriterOptions) {
    const slabBytes = options.slabBytes ?? 8 * 1024 * 1024;
    this.#slabs = Array.from({ length: options.slabs ?? 4 }, () => {
      const buffer = new SharedArrayBuffer(slabBytes);
      const slab: Slab = { buffer, view: new Uint8Array(buffer), pending: 0, free: Promise.resolve(), release: () => undefined };
      return slab;
    });
    // No inherited flags: an `--input-type=module` of the parent would make the CommonJS worker code fail.
    this.#worker = new Worker(HASH_WORKER, { eval: true, execArgv: [], workerData: { buffers: this.#slabs.map((slab) => slab.buffer) } });
    this.#worker.unref();
    this.#worker.on('message', (message: { slot?: number; digest?: string }) => {
      this.#answered();
      if (message.digest !== undefined) {
        const resolve = this.#digest;
        this.#digest = undefined;
        resolve?.(message.digest);
      } else if (message.slot !== undefined) {
        this.#done(this.#slabs[message.slot]);
      }
    });
    this.#worker.on('error', (err) => {
      this.#error ??= err;
      this.#awaited = 1;
      this.#answered();
      for (const slab of this.#slabs) while (slab.pending > 0) this.#done(slab);
      this.#digest?.('');
    });
  }

  /** Starts the worker thread. */
  static create(options: HashedFileWriterOptions = {}): HashedFileWriter {
    return new HashedFileWriter(options);
  }

  /** Starts a new file on `handle` at byte 0; the previous file must be sealed or abandoned. */
  begin(handle: FileHandle): void {
    this.#handle = handle;
    this.#position = 0;
    this.#fill = 0;
  }

  /**
   * Appends bytes, copying them into the ring; waits only when every buffer is
   * still being written or hashed. Throws the first write error.
   */
  async append(chunks: readonly Uint8Array[]): Promise<void> {
    for (const chunk of chunks) {
      let offset = 0;
      while (offset < chunk.byteLength) {
        let slab = this.#slabs[this.#slot];
        if (slab.pending > 0) {
          await slab.free;
          this.#check();
          slab = this.#slabs[this.#slot];
        }
        const take = Math.min(slab.view.byteLength - this.#fill, chunk.byteLength - offset);
        slab.view.set(take === chunk.byteLength ? chunk : chunk.subarray(offset, offset + take), this.#fill);
        this.#fill += take;
        offset += take;
        if (this.#fill === slab.view.byteLength) this.#dispatch();
      }
    }
    this.#check();
  }

  /** Writes what is left, waits for every write and hash of the file, and resolves to its SHA-256 (hex). */
  async seal(): Promise<string> {
    if (this.#fill > 0) this.#dispatch();
    await this.#settle();
    this.#check();
    const hex = await this.#requestDigest();
    this.#check();
    this.#handle = undefined;
    return hex;
  }

  /** Drops the current file: waits until nothing more is written to it, and resets the hash. Never throws. */
  async abandon(): Promise<void> {
    this.#fill = 0;
    await this.#settle();
    if (this.#error === undefined && this.#handle !== undefined) {
      await this.#requestDigest();
    }
    this.#handle = undefined;
  }

  /** Stops the worker thread. */
  async close(): Promise<void> {
    await this.#settle();
    await this.#worker.terminate();
  }

  #dispatch(): void {
    const slab = this.#slabs[this.#slot];
    const length = this.#fill;
    const handle = this.#handle;
    if (handle === undefined) throw new Error('HashedFileWriter: append before begin');
    slab.pending = 2;
    slab.free = new Promise((resolve) => {
      slab.release = resolve;
    });
    writeAll(handle, slab.view.subarray(0, length), this.#position).then(
      () => this.#done(slab),
      (err: unknown) => {
        this.#error ??= err;
        this.#done(slab);
      },
    );
    this.#post({ slot: this.#slot, length });
    this.#position += length;
    this.#slot = (this.#slot + 1) % this.#slabs.length;
    this.#fill = 0;
  }

  #requestDigest(): Promise<string> {
    return new Promise<string>((resolve) => {
      this.#digest = resolve;
      this.#post({ digest: true });
    });
  }

  /** Posts to the worker, keeping the process alive until it answers: an unref'd worker lets an idle process exit mid-hash. */
  #post(message: { slot: number; length: number } | { digest: true }): void {
    if (this.#awaited++ === 0) this.#worker.ref();
    this.#worker.postMessage(message);
  }

  #answered(): void {
    if (this.#awaited > 0 && --this.#awaited === 0) this.#worker.unref();
  }

  #done(slab: Slab): void {
    if (slab.pending === 0) return;
    slab.pending--;
    if (slab.pending === 0) slab.release();
  }

  async #settle(): Promise<void> {
    await Promise.all(this.#slabs.map((slab) => slab.free));
  }

  #check(): void {
    if (this.#error !== undefined) throw this.#error;
  }
}

/** Writes all of `bytes` at `position`, going on after a short write. */
async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let offset = 0;
  while (offset < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.byteLength - offset, position + offset);
    if (bytesWritten <= 0) throw Object.assign(new Error('the write made no progress'), { code: 'EIO' });
    offset += bytesWritten;
  }
}
