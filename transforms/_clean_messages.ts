/** The messages between {@link cleanInWorkers} and its worker threads. Private to transforms/. */
import type { ErrorCode } from '../errors.js';
import type { Reject, Report } from '../records.js';
import type { ZipBatch } from '../streams/zip_reports.js';
import type { CleanReportOptions } from './clean_report.js';

/** What a worker is started with. */
export interface CleanWorkerData {
  clean: Omit<CleanReportOptions, 'tokenCounter'>;
  tokenizer?: string;
  maxTokens?: number;
  dedupe: boolean;
  /** Keep only the records of this partition (the others are not this run's). */
  partition?: { index: number; count: number };
}

/** A batch to clean: records, or a zip batch to inflate and decode first. */
export interface CleanBatchRequest {
  batch: number;
  items?: Array<Report | Reject>;
  zip?: ZipBatch;
}

/**
 * A cleaned batch, one result a record read, in order. The clean reports travel as
 * one transferred buffer of UTF-8 JSON lines, which the main thread writes as it is:
 * no copy between threads, no per-line string on the main thread.
 */
export interface CleanBatchReply {
  batch: number;
  /** Results in the batch (clean reports and rejects). */
  count?: number;
  /** The clean reports' JSON lines, each ending in `\n`, in order. */
  lines?: Uint8Array;
  /** Where result `i`'s line ends in `lines`; a reject has no line (its end is the previous one). */
  ends?: Uint32Array;
  /** The rejects, each with its result index, in order. */
  rejects?: Array<{ index: number; reject: Reject }>;
  /** With dedupe: the prompt digest and the id of each clean result, at its index. */
  digests?: Array<string | undefined>;
  ids?: Array<string | undefined>;
  error?: { message: string; code?: ErrorCode };
}
