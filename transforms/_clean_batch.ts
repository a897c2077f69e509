/**
 * Cleaning one batch the way {@link cleanInWorkers} does it, on whichever thread: a
 * worker, or the main thread when every worker is busy. Private to transforms/.
 */
import { MedsynError } from '../errors.js';
import { isReject, type Reject } from '../records.js';
import { belongsTo } from '../streams/partition.js';
import { forEachZipRecord, ZIP_BATCH_FIELDS, type ZipBatch } from '../streams/zip_reports.js';
import type { CleanReport, Report } from '../records.js';
import type { CleanBatchReply, CleanBatchRequest, CleanWorkerData } from './_clean_messages.js';
import { promptDigest } from './_clean_policy.js';

/** What a batch's cleaning gives: the reply, and the buffers it may move to another thread. */
export interface CleanedReply {
  reply: CleanBatchReply;
  transfer: ArrayBuffer[];
}

/**
 * Inflates (a zip batch), cleans and serialises one batch: the clean reports as one
 * buffer of JSON lines, the rejects with their places. Each report is decoded, cleaned
 * and written out before the next is decoded, so little outlives a report and the
 * young generation's collections have next to nothing to copy. A failure is an
 * `error` reply.
 */
export function cleanBatch(request: CleanBatchRequest, clean: (report: Report) => CleanReport | Reject, data: CleanWorkerData): CleanedReply {
  try {
    const partition = data.partition;
    const out = new LineBuffer(request.zip ? textBytes(request.zip) : 1 << 16);
    const ends: number[] = [];
    const rejects: Array<{ index: number; reject: Reject }> = [];
    const digests: Array<string | undefined> | undefined = data.dedupe ? [] : undefined;
    const ids: Array<string | undefined> | undefined = data.dedupe ? [] : undefined;
    const visit = (record: Report | Reject): void => {
      if (partition && !belongsTo(record, partition)) return;
      const index = ends.length;
      const result = isReject(record) ? record : clean(record);
      if (isReject(result)) rejects.push({ index, reject: result });
      else {
        out.writeLine(JSON.stringify(result));
        if (digests && ids) {
          digests[index] = promptDigest(result.prompt);
          ids[index] = result.id;
        }
      }
      ends.push(out.length);
    };
    if (request.zip) forEachZipRecord(request.zip, visit);
    else for (const record of request.items!) visit(record);
    const lines = out.bytes();
    const lineEnds = Uint32Array.from(ends);
    const reply: CleanBatchReply = { batch: request.batch, count: lineEnds.length, lines, ends: lineEnds, rejects };
    if (digests && ids) {
      // Every place filled, for a clean copy between threads.
      digests.length = ids.length = lineEnds.length;
      Object.assign(reply, { digests: Array.from(digests), ids: Array.from(ids) });
    }
    return { reply, transfer: [lines.buffer as ArrayBuffer, lineEnds.buffer] };
  } catch (err) {
    return { reply: { batch: request.batch, error: serializeError(err) }, transfer: [] };
  }
}

/** The uncompressed size of a zip batch: about what its JSON lines take. */
function textBytes(batch: ZipBatch): number {
  let bytes = 0;
  for (let at = 3; at < batch.numbers.length; at += ZIP_BATCH_FIELDS) bytes += batch.numbers[at]!;
  return bytes;
}

/**
 * Lines written as UTF-8, each followed by `\n`, into a buffer of their own (so it can
 * be transferred), grown by doubling.
 */
class LineBuffer {
  #buffer: Buffer;
  length = 0;

  constructor(capacity: number) {
    this.#buffer = Buffer.allocUnsafeSlow(Math.max(1024, capacity));
  }

  writeLine(line: string): void {
    const room = this.#buffer.byteLength - this.length;
    // A UTF-16 code unit takes at most 3 bytes; only near the end is the exact size needed.
    if (room < 3 * line.length + 1) {
      const needed = Buffer.byteLength(line) + 1;
      if (room < needed) {
        const grown = Buffer.allocUnsafeSlow(Math.max(2 * this.#buffer.byteLength, this.length + needed));
        this.#buffer.copy(grown, 0, 0, this.length);
        this.#buffer = grown;
      }
    }
    this.length += this.#buffer.write(line, this.length);
    this.#buffer[this.length++] = 0x0a;
  }

  /** What was written; the buffer under it is this writer's own. */
  bytes(): Uint8Array {
    return new Uint8Array(this.#buffer.buffer, this.#buffer.byteOffset, this.length);
  }
}

/** An error as a message can carry it: a MedsynError keeps its code, anything else its stack. */
export function serializeError(err: unknown): NonNullable<CleanBatchReply['error']> {
  if (err instanceof MedsynError) return { message: err.message, code: err.code };
  return { message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
}
