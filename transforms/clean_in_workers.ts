/**
 * The cleaning stage on worker threads, for throughput: the main thread reads and
 * writes, the workers clean and serialise.
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { setImmediate as immediate } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { ErrorCodes, invalidOption, MedsynError, type ErrorCode } from '../errors.js';
import type { Reject } from '../records.js';
import type { ReportBatch } from '../streams/read_reports.js';
import type { CleanReportsOptions } from './clean_reports.js';
import type { CleanBatchReply, CleanBatchRequest, CleanWorkerData } from './_clean_messages.js';
import { duplicateReject, PromptIndex, rejectedError, resolveOnError } from './_clean_policy.js';
import { cleanBatch } from './_clean_batch.js';
import { createBatchCleaner } from './_clean_setup.js';

/** Options of {@link cleanInWorkers}. */
export interface CleanInWorkersOptions extends Omit<CleanReportsOptions, 'tokenCounter'> {
  /**
   * Worker threads. Each loads its own tokenizer.
   * @default os.availableParallelism()
   */
  workers?: number;
  /** A CLIP tokenizer folder to fit prompts with (see `loadClipTokenizer`). @default undefined (word-count estimate) */
  tokenizer?: string;
  /** The prompt limit in tokens, BOS and EOS included. @default 77, or the tokenizer's */
  maxTokens?: number;
  /** Keep only the records of this partition of the run. @default undefined (all) */
  partition?: { index: number; count: number };
  /**
   * Also clean on the calling thread, a batch at a time, whenever every worker already
   * has its batches in flight: on a small machine one worker and the main thread do more than
   * two workers, which leave the main thread idle and cost an isolate more.
   * @default false
   */
  mainThread?: boolean;
}

/**
 * A worker holds one batch and its results. Bounding its heap keeps the process's
 * memory flat (V8 would otherwise grow each heap lazily towards its default limit);
 * a batch of 4 MiB of text needs well under this.
 */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 };

/**
 * A batch of results from {@link cleanBatchesInWorkers}: `count` results in input order,
 * the clean ones as UTF-8 JSON lines in one buffer, the rejects beside it with their
 * places.
 */
export interface CleanedBatch {
  /** Results in the batch: clean reports and rejects. */
  count: number;
  /** The clean reports' JSON lines, each ending in `\n`, in input order. */
  lines: Uint8Array;
  /** Where result `i`'s line ends in `lines`; a reject has no line, its end is the previous one's. */
  ends: Uint32Array;
  /** The rejects, each with its result index, in order. */
  rejects: Array<{ index: number; reject: Reject }>;
}

/**
 * Cleans what {@link readReportBatches} reads, as {@link cleanReports} cleans it, on
 * `workers` threads, and yields the results in input order, a batch at a time: each
 * clean report already serialised as its JSON line (a string), rejects as objects.
 * Zip batches are inflated on the workers too. At most two batches a worker are in
 * flight (three with `mainThread`, plus 16 the main thread cleaned ahead), so memory
 * stays flat. Dedupe and `onError` are applied in input order, as
 * in {@link cleanReports}. ({@link cleanBatchesInWorkers} gives the same results as
 * bytes, ready to write.)
 *
 * @throws {MedsynError} what a worker cannot start with (`MEDSYN_ERR_BAD_TOKENIZER`),
 *   a damaged zip entry (`MEDSYN_ERR_CORRUPT_ZIP`), `MEDSYN_ERR_REJECTED` under
 *   `onError: 'fail'`, `MEDSYN_ERR_WORKER_FAILED`
 * @example
 * ```ts
 * for await (const batch of cleanInWorkers(readReportBatches('mimic-cxr-reports.zip'), { workers: 2 })) {
 *   for (const item of batch) if (typeof item === 'string') process.stdout.write(`${item}\n`);
 * }
 * ```
 */
export async function* cleanInWorkers(batches: AsyncIterable<ReportBatch>, options: CleanInWorkersOptions = {}): AsyncGenerator<Array<string | Reject>> {
  const decoder = new TextDecoder();
  for await (const batch of cleanBatchesInWorkers(batches, options)) {
    const items: Array<string | Reject> = new Array(batch.count);
    for (const { index, reject } of batch.rejects) items[index] = reject;
    let start = 0;
    for (let i = 0; i < batch.count; i++) {
      const end = batch.ends[i]!;
      // JSON escapes every newline in a value, so each line ends at the first `\n` after its start.
      if (items[i] === undefined) items[i] = decoder.decode(batch.lines.subarray(start, end - 1));
      start = end;
    }
    yield items;
  }
}

/**
 * {@link cleanInWorkers} with the results as they come from the workers: the clean
 * reports of a batch as one buffer of UTF-8 JSON lines, which can be written as it is,
 * and the rejects beside it (see {@link CleanedBatch}). This is what `medsyn-clean`
 * writes from: no line is ever a string on the main thread.
 *
 * @throws {MedsynError} as {@link cleanInWorkers}
 * @example
 * ```ts
 * for await (const batch of cleanBatchesInWorkers(readReportBatches('mimic-cxr-reports.zip'))) {
 *   process.stdout.write(batch.lines);
 * }
 * ```
 */
export async function* cleanBatchesInWorkers(batches: AsyncIterable<ReportBatch>, options: CleanInWorkersOptions = {}): AsyncGenerator<CleanedBatch> {
  const workerCount = options.workers ?? availableParallelism();
  if (!Number.isInteger(workerCount) || workerCount < 1) invalidOption('workers', `must be an integer ≥ 1, got ${workerCount}`);
  const onError = resolveOnError(options.onError);
  const index = options.dedupe ? new PromptIndex() : undefined;

  const data: CleanWorkerData = {
    clean: {
      ...(options.minWords !== undefined ? { minWords: options.minWords } : {}),
      ...(options.dropCommunication !== undefined ? { dropCommunication: options.dropCommunication } : {}),
      ...(options.keepText !== undefined ? { keepText: options.keepText } : {}),
    },
    dedupe: index !== undefined,
    ...(options.tokenizer !== undefined ? { tokenizer: options.tokenizer } : {}),
    ...(options.maxTokens !== undefined ? { maxTokens: options.maxTokens } : {}),
    ...(options.partition !== undefined ? { partition: options.partition } : {}),
  };
  // With `mainThread` (a file or a folder), the workers start while the first batches are
  // read and cleaned here: a batch sent before a worker is ready waits in its queue, and
  // whether they all started is known by the end at the latest.
  const pool = Array.from({ length: workerCount }, () => startWorker(data));
  const started = Promise.all(pool.map((worker) => worker.ready));
  started.catch(() => undefined);
  // The main thread's cleaner is made only once a batch needs it: most runs never do.
  let local: ((request: CleanBatchRequest) => CleanBatchReply) | undefined;
  const cleanHere = async (request: CleanBatchRequest): Promise<CleanBatchReply> => {
    if (local === undefined) {
      const clean = await createBatchCleaner(data);
      local = (batch) => cleanBatch(batch, clean, data).reply;
    }
    return local(request);
  };
  const iterator = batches[Symbol.asyncIterator]();
  const pending: Array<{ reply: Promise<CleanBatchReply>; settled: boolean }> = [];
  // With the main thread cleaning too, a third batch keeps a worker busy while the main thread is.
  const perWorker = options.mainThread ? 3 : 2;
  const mostPending = pool.length * perWorker + (options.mainThread ? MAIN_THREAD_AHEAD : 0);
  let exhausted = false;
  let batchNumber = 0;
  let turn = 0;

  try {
    // Reading a pipe may wait on its producer for long: a worker that cannot start is told first.
    if (!options.mainThread) await started;
    for (;;) {
      while (!exhausted && pending.length < mostPending) {
        const worker = idleWorker(pool, perWorker, turn++);
        // With every worker busy, the main thread cleans a batch itself rather than wait for the oldest.
        if (worker === undefined && !(options.mainThread && pending.length > 0 && !pending[0]!.settled)) break;
        const next = await iterator.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        // The read may have taken long enough for a worker to finish.
        const ready = worker ?? idleWorker(pool, perWorker, turn);
        const input = next.value;
        const entry = { reply: undefined as unknown as Promise<CleanBatchReply>, settled: false };
        if (ready !== undefined) {
          entry.reply = ready.clean(batchNumber++, input);
          // A crashed worker rejects its batches at once; they are awaited in order, later.
          entry.reply.then(
            () => (entry.settled = true),
            () => (entry.settled = true),
          );
        } else {
          entry.reply = cleanHere('zip' in input ? { batch: batchNumber++, zip: input.zip } : { batch: batchNumber++, items: input.items });
          // A cleaner that cannot start (a bad tokenizer) fails here too; that is thrown in order, later.
          entry.reply.catch(() => undefined);
          entry.settled = true;
          pending.push(entry);
          // Cleaning held the thread: let the workers' replies in before choosing again.
          await immediate();
          continue;
        }
        pending.push(entry);
      }
      const head = pending.shift();
      if (head === undefined) {
        await started;
        return;
      }
      const reply = await head.reply;
      if (reply.error) throw workerError(reply.error);
      let batch: CleanedBatch = { count: reply.count!, lines: reply.lines!, ends: reply.ends!, rejects: reply.rejects! };
      if (index && reply.digests && reply.ids) batch = dropDuplicates(batch, index, reply.digests, reply.ids);
      if (onError === 'fail' && batch.rejects.length > 0) {
        const { index: stop, reject } = batch.rejects[0]!;
        // What came before the reject still goes out, as it does when cleaning in one thread.
        if (stop > 0) yield sliceBatch(batch, stop);
        throw rejectedError(reject);
      }
      yield batch;
    }
  } finally {
    await iterator.return?.();
    await Promise.all(pool.map((worker) => worker.stop()));
  }
}

/**
 * How many batches the main thread may clean ahead of the oldest one still on a worker.
 * Enough that it seldom waits for a worker (at 4 it sat idle ~5% of a 230k-report zip
 * run); each holds a batch's lines, ~200 kB for 256 MIMIC-CXR reports.
 */
const MAIN_THREAD_AHEAD = 16;

/** A worker with fewer than `most` batches in flight, the least busy first, taking turns among equals; undefined when all are full. */
function idleWorker(pool: readonly PoolWorker[], most: number, turn: number): PoolWorker | undefined {
  let best: PoolWorker | undefined;
  for (let k = 0; k < pool.length; k++) {
    const worker = pool[(turn + k) % pool.length]!;
    if (worker.inFlight < most && (best === undefined || worker.inFlight < best.inFlight)) best = worker;
  }
  return best;
}

/**
 * The first `count` results of `batch`.
 *
 * @example
 * ```ts
 * const head = sliceBatch(batch, 10); // head.count === 10
 * ```
 */
export function sliceBatch(batch: CleanedBatch, count: number): CleanedBatch {
  if (count >= batch.count) return batch;
  const end = count === 0 ? 0 : batch.ends[count - 1]!;
  return {
    count,
    lines: batch.lines.subarray(0, end),
    ends: batch.ends.subarray(0, count),
    rejects: batch.rejects.filter((item) => item.index < count),
  };
}

/** Turns the clean results whose prompt an earlier result had into `duplicate` rejects. */
function dropDuplicates(batch: CleanedBatch, index: PromptIndex, digests: ReadonlyArray<string | undefined>, ids: ReadonlyArray<string | undefined>): CleanedBatch {
  const duplicates = new Map<number, Reject>();
  let start = 0;
  for (let i = 0; i < batch.count; i++) {
    const end = batch.ends[i]!;
    const digest = digests[i];
    if (digest !== undefined) {
      const first = index.firstHolder(digest, ids[i]!);
      if (first !== undefined) {
        // Duplicates are rare: only then is the line parsed back, for its source.
        const line = new TextDecoder().decode(batch.lines.subarray(start, end - 1));
        duplicates.set(i, duplicateReject(ids[i]!, (JSON.parse(line) as { source: string }).source, first));
      }
    }
    start = end;
  }
  if (duplicates.size === 0) return batch;
  // Rebuild the lines without the duplicates, and the rejects in order with them.
  const kept: Uint8Array[] = [];
  const ends = new Uint32Array(batch.count);
  let length = 0;
  start = 0;
  for (let i = 0; i < batch.count; i++) {
    const end = batch.ends[i]!;
    if (!duplicates.has(i) && end > start) {
      kept.push(batch.lines.subarray(start, end));
      length += end - start;
    }
    ends[i] = length;
    start = end;
  }
  const rejects = [...batch.rejects, ...[...duplicates].map(([at, reject]) => ({ index: at, reject }))].sort((a, b) => a.index - b.index);
  return { count: batch.count, lines: Buffer.concat(kept, length), ends, rejects };
}

interface PoolWorker {
  /** Batches sent and not yet answered. */
  readonly inFlight: number;
  /** Settles when the worker has its cleaner (a batch sent before waits in its queue); rejects with what it cannot start with. */
  readonly ready: Promise<void>;
  clean(batch: number, input: ReportBatch): Promise<CleanBatchReply>;
  stop(): Promise<void>;
}

function startWorker(data: CleanWorkerData): PoolWorker {
  const worker = new Worker(new URL('./_clean_worker.js', import.meta.url), { workerData: data, resourceLimits: WORKER_LIMITS });
  const waiting = new Map<number, { resolve: (reply: CleanBatchReply) => void; reject: (err: Error) => void }>();
  let stopping = false;
  let failure: Error | undefined;
  let markReady: () => void = () => undefined;
  let markFailed: (err: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    markFailed = reject;
  });
  // Awaited by the caller, maybe only at the end: never an unhandled rejection meanwhile.
  ready.catch(() => undefined);
  const fail = (err: Error): void => {
    failure ??= err;
    markFailed(err);
    for (const { reject } of waiting.values()) reject(err);
    waiting.clear();
  };
  worker.on('message', (message: CleanBatchReply & { ready?: boolean; startError?: { message: string; code?: ErrorCode } }) => {
    if (message.ready) markReady();
    else if (message.startError) {
      stopping = true;
      void worker.terminate();
      fail(workerError(message.startError));
    } else {
      const entry = waiting.get(message.batch);
      waiting.delete(message.batch);
      entry?.resolve(message);
    }
  });
  worker.on('error', (err) => fail(new MedsynError(ErrorCodes.WORKER_FAILED, `A cleaning worker failed: ${err.message}`, { cause: err })));
  worker.on('exit', (code) => {
    if (!stopping) fail(new MedsynError(ErrorCodes.WORKER_FAILED, `A cleaning worker exited with code ${code} (out of memory?)`));
  });
  return {
    get inFlight() {
      return waiting.size;
    },
    ready,
    clean(batch, input) {
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise((resolveBatch, rejectBatch) => {
        waiting.set(batch, { resolve: resolveBatch, reject: rejectBatch });
        if ('zip' in input) {
          // The stored bytes move to the worker without a copy.
          worker.postMessage({ batch, zip: input.zip } satisfies CleanBatchRequest, [input.zip.data, input.zip.numbers.buffer as ArrayBuffer]);
        } else {
          worker.postMessage({ batch, items: input.items } satisfies CleanBatchRequest);
        }
      });
    },
    async stop() {
      stopping = true;
      await worker.terminate();
    },
  };
}

function workerError(error: { message: string; code?: ErrorCode }): MedsynError {
  return new MedsynError(error.code ?? ErrorCodes.WORKER_FAILED, error.message);
}
