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
    // A clean report's line takes about 1.7 times its text (sections, caption and prompt
    // repeat it): room for twice the text is seldom outgrown.
    const out = new LineBuffer(request.zip ? 2 * textBytes(request.zip) : 1 << 16);
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

/** The uncompressed size of a zip batch's entries. */
function textBytes(batch: ZipBatch): number {
  let bytes = 0;
  for (let at = 3; at < batch.numbers.length; at += ZIP_BATCH_FIELDS) bytes += batch.numbers[at]!;
  return bytes;
}

const utf8 = new TextEncoder();

/**
 * Lines written as UTF-8, each followed by `\n`, into a buffer of their own (so it can
 * be transferred), grown by doubling. `TextEncoder.encodeInto` writes a line about four
 * times as fast as `Buffer.write` (same bytes: a JSON line is well-formed UTF-16).
 */
class LineBuffer {
  #bytes: Uint8Array;
  length = 0;

  constructor(capacity: number) {
    this.#bytes = ownBytes(Math.max(1024, capacity));
  }

  writeLine(line: string): void {
    const room = this.#bytes.byteLength - this.length;
    // A UTF-16 code unit takes at most 3 bytes; only near the end is the exact size needed.
    if (room < 3 * line.length + 1) {
      const needed = Buffer.byteLength(line) + 1;
      if (room < needed) {
        const grown = ownBytes(Math.max(2 * this.#bytes.byteLength, this.length + needed));
        grown.set(this.#bytes.subarray(0, this.length));
        this.#bytes = grown;
      }
    }
    this.length += utf8.encodeInto(line, this.length === 0 ? this.#bytes : this.#bytes.subarray(this.length)).written;
    this.#bytes[this.length++] = 0x0a;
  }

  /** What was written; the buffer under it is this writer's own. */
  bytes(): Uint8Array {
    return this.#bytes.subarray(0, this.length);
  }
}

/** `size` bytes, not zeroed, on an `ArrayBuffer` of their own. */
function ownBytes(size: number): Uint8Array {
  const buffer = Buffer.allocUnsafeSlow(size);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, size);
}

/** An error as a message can carry it: a MedsynError keeps its code, anything else its stack. */
export function serializeError(err: unknown): NonNullable<CleanBatchReply['error']> {
  if (err instanceof MedsynError) return { message: err.message, code: err.code };
  return { message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
}
