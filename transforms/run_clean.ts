/**
 * `medsyn-clean` as one library call: read, clean, write NDJSON and rejects.
 *
 * @module
 */
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { Writable } from 'node:stream';
import { invalidOption } from '../errors.js';
import { loadClipTokenizer, type TokenCounter } from '../models/clip_tokenizer.js';
import { isReject, type Reject, type RejectReason } from '../records.js';
import { readReportBatches, readReports, type ReadReportsOptions } from '../streams/read_reports.js';
import { keepPartition } from '../streams/partition.js';
import { writeLines, writeOutput } from '../streams/ndjson_writer.js';
import { RejectsFile } from '../streams/rejects_file.js';
import { cleanBatchesInWorkers, sliceBatch } from './clean_in_workers.js';
import { cleanReports, type CleanReportsOptions } from './clean_reports.js';
import { wordCountApproximation } from './fit_prompt.js';

/** Options of {@link runClean}. */
export interface RunCleanOptions extends ReadReportsOptions, Omit<CleanReportsOptions, 'tokenCounter'> {
  /** A CLIP tokenizer folder to fit prompts with exactly. @default undefined (word-count estimate) */
  tokenizer?: string;
  /** The prompt limit in tokens, BOS and EOS included. @default 77, or the tokenizer's */
  maxTokens?: number;
  /**
   * Worker threads that clean while the main thread reads and writes; 0 cleans in this
   * thread only. Reading a file or a folder, the main thread also cleans whenever every
   * worker is busy. The output is the same either way.
   * @default one a core, less one for the main thread when `input` is a file or a folder; 0 on a single core
   */
  workers?: number;
  /** Write rejects as NDJSON to this file. Without it rejects are only counted. @default undefined */
  rejects?: string;
  /** Stop after this many reports read (rejects included). @default Infinity */
  limit?: number;
  /** End `output` when done (false for stdout when more follows). @default true */
  endOutput?: boolean;
  /**
   * Keep only the records whose key hashes to this partition (see `partitionOf`); the
   * others belong to other processes of the run and are not counted. @default undefined (all)
   */
  partition?: { index: number; count: number };
  /**
   * Stops reading when aborted (a signal): what was read is written, the output ends
   * on a whole line, and the summary says `interrupted`. @default undefined
   */
  signal?: AbortSignal;
  /** Called with the summary so far after each record (each batch with workers). @default undefined */
  onProgress?: (summary: CleanSummary) => void;
}

/** What a cleaning run did. */
export interface CleanSummary {
  /** Records read or made by the reader: reports and reader rejects. */
  read: number;
  /** Clean reports written. */
  cleaned: number;
  /** Rejects by reason. */
  rejected: Partial<Record<RejectReason, number>>;
  /** Total rejects. */
  rejectedTotal: number;
  /** Wall-clock seconds. */
  seconds: number;
  /** True when `signal` stopped the reading before the input ended. */
  interrupted?: boolean;
}

/**
 * Reads reports from `input` (a path or `-`), cleans them and writes one
 * {@link CleanReport} a line to `output`; rejects go to `options.rejects`.
 *
 * @throws {MedsynError} file-level failures of reading (`MEDSYN_ERR_NOT_FOUND`,
 * `MEDSYN_ERR_BAD_CSV`, …), `MEDSYN_ERR_BAD_TOKENIZER`, `MEDSYN_ERR_REJECTED` under
 * `onError: 'fail'`, `MEDSYN_ERR_WRITE_FAILED`
 * @example
 * ```ts
 * const summary = await runClean('mimic-cxr-reports.zip', process.stdout, { rejects: 'rejects.ndjson', endOutput: false });
 * console.error(formatCleanSummary(summary));
 * ```
 */
export async function runClean(input: string, output: Writable, options: RunCleanOptions = {}): Promise<CleanSummary> {
  const limit = options.limit ?? Infinity;
  if (!(limit === Infinity || (Number.isInteger(limit) && limit > 0))) invalidOption('limit', `must be a positive integer, got ${limit}`);
  const cores = availableParallelism();
  // The main thread cleans too only where reading never waits on a producer (a file or a
  // folder): on stdin or a pipe it would hold results back while it waits for more input.
  const seekable = input !== '-' && (await stat(input).then((stats) => stats.isFile() || stats.isDirectory(), () => false));
  const workers = options.workers ?? (cores > 1 ? (seekable ? cores - 1 : cores) : 0);
  if (!Number.isInteger(workers) || workers < 0) invalidOption('workers', `must be an integer ≥ 0, got ${workers}`);

  const started = performance.now();
  const summary: CleanSummary = { read: 0, cleaned: 0, rejected: {}, rejectedTotal: 0, seconds: 0 };

  const rejectsFile = options.rejects === undefined ? undefined : new RejectsFile(options.rejects);
  async function countReject(reject: Reject): Promise<void> {
    summary.rejectedTotal++;
    summary.rejected[reject.reason] = (summary.rejected[reject.reason] ?? 0) + 1;
    if (rejectsFile) await rejectsFile.write(reject);
  }

  const stopped = (): boolean => {
    if (options.signal?.aborted) summary.interrupted = true;
    return summary.interrupted === true;
  };
  const progress = (): void => {
    if (!options.onProgress) return;
    summary.seconds = (performance.now() - started) / 1000;
    options.onProgress(summary);
  };

  // Every record read gives one item, a line or a reject, in input order; the limit counts them.
  async function* inProcess(): AsyncGenerator<string> {
    let tokenCounter: TokenCounter = wordCountApproximation(options.maxTokens ?? 77);
    if (options.tokenizer !== undefined) {
      const tokenizer = await loadClipTokenizer(options.tokenizer);
      tokenCounter = options.maxTokens === undefined ? tokenizer : { ...tokenizer, maxTokens: options.maxTokens };
    }
    const read = readReports(input, options);
    const records = options.partition ? keepPartition(read, options.partition) : read;
    for await (const item of cleanReports(records, { ...options, tokenCounter })) {
      if (stopped()) return;
      summary.read++;
      if (isReject(item)) await countReject(item);
      else {
        summary.cleaned++;
        yield JSON.stringify(item);
      }
      progress();
      if (summary.read >= limit) return;
    }
  }

  // A batch at a time: the lines of a batch go out as one chunk, the bytes the worker made.
  async function* onWorkers(): AsyncGenerator<Uint8Array> {
    for await (const cleaned of cleanBatchesInWorkers(readReportBatches(input, options), { ...options, workers, mainThread: seekable })) {
      if (stopped()) return;
      const batch = summary.read + cleaned.count > limit ? sliceBatch(cleaned, limit - summary.read) : cleaned;
      summary.read += batch.count;
      summary.cleaned += batch.count - batch.rejects.length;
      for (const { reject } of batch.rejects) await countReject(reject);
      if (batch.lines.byteLength > 0) yield batch.lines;
      progress();
      if (summary.read >= limit) return;
    }
  }

  try {
    const writing = { end: options.endOutput ?? true, name: 'stdout' };
    await (workers === 0 ? writeLines(inProcess(), output, writing) : writeOutput(onWorkers(), output, writing));
  } catch (err) {
    // Rejects are whole lines and describe exactly what was read before the failure, so a file
    // that holds some is kept; a run that failed before any reject leaves no file at all.
    if (rejectsFile && rejectsFile.count === 0) rejectsFile.discard();
    else await rejectsFile?.close().catch(() => rejectsFile.discard());
    throw err;
  }
  await rejectsFile?.close();
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}

/**
 * One line for stderr: counts, rejects by reason, rate.
 *
 * @example
 * ```ts
 * formatCleanSummary(summary); // '23 cleaned, 3 rejected (no_section 2, too_short 1) of 26 read in 0.05 s (520 reports/s)'
 * ```
 */
export function formatCleanSummary(summary: CleanSummary): string {
  const reasons = Object.entries(summary.rejected)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ');
  const rate = summary.seconds > 0 ? Math.round(summary.read / summary.seconds) : 0;
  return `${summary.interrupted ? 'interrupted: ' : ''}${summary.cleaned} cleaned, ${summary.rejectedTotal} rejected${reasons ? ` (${reasons})` : ''} of ${summary.read} read in ${summary.seconds.toFixed(2)} s (${rate} reports/s)`;
}
