/**
 * The cleaning stage on worker threads, for throughput: the main thread reads and
 * writes, the workers clean and serialise.
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ErrorCodes, invalidOption, MedsynError, type ErrorCode } from '../errors.js';
import type { Reject } from '../records.js';
import type { ReportBatch } from '../streams/read_reports.js';
import type { CleanReportsOptions } from './clean_reports.js';
import type { CleanBatchReply, CleanBatchRequest, CleanWorkerData } from './_clean_messages.js';
import { duplicateReject, PromptIndex, rejectedError, resolveOnError } from './_clean_policy.js';

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
}

/**
 * A worker holds one batch and its results. Bounding its heap keeps the process's
 * memory flat (V8 would otherwise grow each heap lazily towards its default limit);
 * a batch of 4 MiB of text needs well under this.
 */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 };

/**
 * Cleans what {@link readReportBatches} reads, as {@link cleanReports} cleans it, on
 * `workers` threads, and yields the results in input order, a batch at a time: each
 * clean report already serialised as its JSON line (a string), rejects as objects.
 * Zip batches are inflated on the workers too. At most two batches a worker are in
 * flight, so memory stays flat. Dedupe and `onError` are applied in input order, as
 * in {@link cleanReports}.
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
  const pool = await startWorkers(workerCount, data);
  const iterator = batches[Symbol.asyncIterator]();
  const pending: Array<Promise<CleanBatchReply>> = [];
  let exhausted = false;
  let batchNumber = 0;

  try {
    for (;;) {
      while (!exhausted && pending.length < pool.length * 2) {
        const next = await iterator.next();
        if (next.done) exhausted = true;
        else {
          const reply = pool[batchNumber % pool.length]!.clean(batchNumber++, next.value);
          // A crashed worker rejects its batches at once; they are awaited in order, later.
          reply.catch(() => undefined);
          pending.push(reply);
        }
      }
      const reply = await pending.shift();
      if (reply === undefined) return;
      if (reply.error) throw workerError(reply.error);
      const items = reply.results!;
      if (index && reply.digests && reply.ids) {
        for (let i = 0; i < items.length; i++) {
          const line = items[i]!;
          if (typeof line !== 'string') continue;
          const first = index.firstHolder(reply.digests[i]!, reply.ids[i]!);
          // Duplicates are rare: only then is the line parsed back, for its source.
          if (first !== undefined) items[i] = duplicateReject(reply.ids[i]!, (JSON.parse(line) as { source: string }).source, first);
        }
      }
      if (onError === 'fail') {
        const stop = items.findIndex((item) => typeof item !== 'string');
        if (stop !== -1) {
          // What came before the reject still goes out, as it does when cleaning in one thread.
          if (stop > 0) yield items.slice(0, stop);
          throw rejectedError(items[stop] as Reject);
        }
      }
      yield items;
    }
  } finally {
    await iterator.return?.();
    await Promise.all(pool.map((worker) => worker.stop()));
  }
}

interface PoolWorker {
  clean(batch: number, input: ReportBatch): Promise<CleanBatchReply>;
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
          clean(batch, input) {
            return new Promise((resolveBatch, rejectBatch) => {
              waiting.set(batch, { resolve: resolveBatch, reject: rejectBatch });
              if ('zip' in input) {
                // The stored bytes move to the worker without a copy.
                worker.postMessage({ batch, zip: input.zip } satisfies CleanBatchRequest, [input.zip.data]);
              } else {
                worker.postMessage({ batch, items: input.items } satisfies CleanBatchRequest);
              }
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
