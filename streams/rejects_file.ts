/**
 * The `--rejects FILE` sink: rejects as NDJSON, written under a temporary name and
 * renamed when the run ends.
 *
 * @module
 */
import { createWriteStream, renameSync, rmSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { basename, dirname, join } from 'node:path';
import { ErrorCodes, MedsynError } from '../errors.js';
import type { Reject } from '../records.js';

/** What a rejects file holds: any record with a reason code (a report's {@link Reject}, a sample's reject). */
export interface RejectRecord {
  reason: string;
}

/**
 * An NDJSON file of rejects, one record a line. Lines are whole; the file
 * appears under its final name only at {@link RejectsFile.close}, so a reader
 * never sees a file that is still being written.
 *
 * @example
 * ```ts
 * const rejects = new RejectsFile('rejects.ndjson');
 * await rejects.write({ id: 's1', source: 'a.csv:2', reason: 'too_short', message: 'one word' });
 * await rejects.close();
 * ```
 */
export class RejectsFile<R extends RejectRecord = Reject> {
  readonly path: string;
  readonly #temporary: string;
  readonly #stream: WriteStream;
  #error: Error | undefined;
  /** Rejects written so far. */
  count = 0;

  /** Opens `path` for writing (under a temporary name beside it). */
  constructor(path: string) {
    this.path = path;
    this.#temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    this.#stream = createWriteStream(this.#temporary);
    this.#stream.on('error', (err) => {
      this.#error = err;
    });
  }

  /**
   * Appends one reject, waiting when the file is behind.
   *
   * @throws {MedsynError} `MEDSYN_ERR_WRITE_FAILED` when the file cannot be written
   */
  async write(reject: R): Promise<void> {
    this.#check();
    this.count++;
    if (!this.#stream.write(`${JSON.stringify(reject)}\n`)) {
      await Promise.race([once(this.#stream, 'drain'), once(this.#stream, 'close')]).catch(() => undefined);
      this.#check();
    }
  }

  /**
   * Flushes the file and gives it its final name.
   *
   * @throws {MedsynError} `MEDSYN_ERR_WRITE_FAILED` when the flush or the rename fails
   */
  async close(): Promise<void> {
    this.#check();
    this.#stream.end();
    await Promise.race([once(this.#stream, 'finish'), once(this.#stream, 'close')]).catch(() => undefined);
    this.#check();
    try {
      renameSync(this.#temporary, this.path);
    } catch (err) {
      throw this.#failure(err as Error);
    }
  }

  /** Removes the temporary file without giving it a final name. */
  discard(): void {
    this.#stream.destroy();
    rmSync(this.#temporary, { force: true });
  }

  #check(): void {
    if (this.#error) {
      const failure = this.#failure(this.#error);
      this.discard();
      throw failure;
    }
  }

  #failure(err: Error): MedsynError {
    return new MedsynError(ErrorCodes.WRITE_FAILED, `Cannot write rejects file ${this.path}: ${err.message}`, { file: this.path, cause: err });
  }
}
