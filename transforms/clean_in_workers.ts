/**
 * The cleaning stage on worker threads, for throughput: the main thread reads and
 * writes, the workers clean and serialise.
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ErrorCodes, invalidOption, MedsynError, type ErrorCode } from '../errors.js';
import { isReject, type Reject, type Report } from '../records.js';
import type { CleanReportsOptions } from './clean_reports.js';
import type { CleanBatchReply, CleanWorkerData } from './_clean_messages.js';
import { duplicateReject, PromptIndex, rejectedError, resolveOnError } from './_clean_policy.js';

/** Options of {@link cleanInWorkers}. */
export interface CleanInWorkersOptions extends Omit<CleanReportsOptions, 'tokenCounter'> {
  /**
   * Worker threads. Each loads its own tokenizer.
   * @default os.availableParallelism()
   */
  workers?: number;
  /**
   * Reports sent to a worker at a time, at most; a batch also closes at 4 MiB of text,
   * which bounds what a worker holds.
   * @default 256
   */
  batchSize?: number;
  /** A CLIP tokenizer folder to fit prompts with (see `loadClipTokenizer`). @default undefined (word-count estimate) */
  tokenizer?: string;
  /** The prompt limit in tokens, BOS and EOS included. @default 77, or the tokenizer's */
  maxTokens?: number;
}

/** A cleaned report as one NDJSON line (without the newline), with what the caller needs to count it. */
export interface CleanLine {
  id: string;
  source: string;
  /** `JSON.stringify` of the {@link CleanReport}. */
  line: string;
}

/** A batch closes at this much report text (UTF-16 code units), so no worker holds much more. */
const BATCH_CHARS = 4 << 20;

/**
 * A worker holds one batch and its results. Bounding its heap keeps the process's
 * memory flat (V8 would otherwise grow each heap lazily towards its default limit);
 * a batch of 4 MiB of text needs well under this.
 */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 96, maxYoungGenerationSizeMb: 8 };

interface PendingBatch {
  /** Reader rejects stay here; `undefined` marks a report sent to the worker, in order. */
  slots: Array<Reject | undefined>;
  reply: Promise<CleanBatchReply>;
}

/**
 * Cleans `items` as {@link cleanReports} does, on `workers` threads, and yields the
 * results in input order: each clean report already serialised as a {@link CleanLine},
 * rejects as objects. At most two batches a worker are in flight, so memory stays
 * flat. Dedupe and `onError` are applied in input order, as in {@link cleanReports}.
 *
 * @throws {MedsynError} what a worker cannot start with (`MEDSYN_ERR_BAD_TOKENIZER`),
 *   `MEDSYN_ERR_REJECTED` under `onError: 'fail'`
 * @example
 * ```ts
 * for await (const item of cleanInWorkers(readReports('mimic-cxr-reports.zip'), { workers: 2 })) {
 *   if (!isReject(item)) process.stdout.write(`${item.line}\n`);
 * }
 * ```
 */
export async function* cleanInWorkers(
  items: AsyncIterable<Report | Reject> | Iterable<Report | Reject>,
  options: CleanInWorkersOptions = {},
): AsyncGenerator<CleanLine | Reject> {
  const workerCount = options.workers ?? availableParallelism();
  if (!Number.isInteger(workerCount) || workerCount < 1) invalidOption('workers', `must be an integer ≥ 1, got ${workerCount}`);
  const batchSize = options.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) invalidOption('batchSize', `must be an integer ≥ 1, got ${batchSize}`);
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
  };
  const pool = await startWorkers(workerCount, data);
  const pending: PendingBatch[] = [];
  const iterator = (Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]()) as
    | AsyncIterator<Report | Reject>
    | Iterator<Report | Reject>;
  let exhausted = false;
  let batchNumber = 0;

  async function readBatch(): Promise<void> {
    const slots: Array<Reject | undefined> = [];
    const reports: Report[] = [];
    let chars = 0;
    while (reports.length < batchSize && chars < BATCH_CHARS) {
      const next = await iterator.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      if (isReject(next.value)) slots.push(next.value);
      else {
        slots.push(undefined);
        reports.push(next.value);
        chars += next.value.text.length;
      }
    }
    if (slots.length === 0) return;
    const worker = pool[batchNumber % pool.length]!;
    pending.push({ slots, reply: reports.length === 0 ? Promise.resolve({ batch: batchNumber, results: [] }) : worker.clean(batchNumber, reports) });
    batchNumber++;
  }

  try {
    for (;;) {
      while (!exhausted && pending.length < pool.length * 2) await readBatch();
      const batch = pending.shift();
      if (batch === undefined) return;
      const reply = await batch.reply;
      if (reply.error) throw workerError(reply.error);
      const results = reply.results!;
      let next = 0;
      for (const slot of batch.slots) {
        const result = slot ?? results[next++]!;
        let item: CleanLine | Reject;
        if ('reject' in result) item = result.reject;
        else if ('reason' in result) item = result;
        else {
          const first = index && result.digest !== undefined ? index.firstHolder(result.digest, result.id) : undefined;
          item = first === undefined ? { id: result.id, source: result.source, line: result.line } : duplicateReject(result.id, result.source, first);
        }
        if (onError === 'fail' && isReject(item)) throw rejectedError(item);
        yield item;
      }
    }
  } finally {
    await Promise.all(pool.map((worker) => worker.stop()));
  }
}

interface PoolWorker {
  clean(batch: number, reports: Report[]): Promise<CleanBatchReply>;
  stop(): Promise<void>;
}

async function startWorkers(count: number, data: CleanWorkerData): Promise<PoolWorker[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, () => startWorker(data)));
  const failure = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  const workers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  if (failure) {
    await Promise.all(workers.map((worker) => worker.stop()));
    throw failure.reason;
  }
  return workers;
}

function startWorker(data: CleanWorkerData): Promise<PoolWorker> {
  const worker = new Worker(new URL('./_clean_worker.js', import.meta.url), { workerData: data, resourceLimits: WORKER_LIMITS });
  const waiting = new Map<number, { resolve: (reply: CleanBatchReply) => void; reject: (err: Error) => void }>();
  let stopping = false;
  const failAll = (err: Error): void => {
    for (const { reject } of waiting.values()) reject(err);
    waiting.clear();
  };
  return new Promise((resolve, reject) => {
    worker.on('message', (message: CleanBatchReply & { ready?: boolean; startError?: { message: string; code?: ErrorCode } }) => {
      if (message.ready) {
        resolve({
          clean(batch, reports) {
            return new Promise((resolveBatch, rejectBatch) => {
              waiting.set(batch, { resolve: resolveBatch, reject: rejectBatch });
              worker.postMessage({ batch, reports });
            });
          },
          async stop() {
            stopping = true;
            await worker.terminate();
          },
        });
      } else if (message.startError) {
        stopping = true;
        void worker.terminate();
        reject(workerError(message.startError));
      } else {
        const entry = waiting.get(message.batch);
        waiting.delete(message.batch);
        entry?.resolve(message);
      }
    });
    worker.on('error', (err) => {
      const failure = new MedsynError(ErrorCodes.WORKER_FAILED, `A cleaning worker failed: ${err.message}`, { cause: err });
      reject(failure);
      failAll(failure);
    });
    worker.on('exit', (code) => {
      if (stopping) return;
      const failure = new MedsynError(ErrorCodes.WORKER_FAILED, `A cleaning worker exited with code ${code} (out of memory?)`);
      reject(failure);
      failAll(failure);
    });
  });
}

function workerError(error: { message: string; code?: ErrorCode }): MedsynError {
  return new MedsynError(error.code ?? ErrorCodes.WORKER_FAILED, error.message);
}
