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

/** A cleaned batch, one result a record read, in order. */
export interface CleanBatchReply {
  batch: number;
  /** The clean report as a JSON line, or the reject. Plain strings cost the least to pass between threads. */
  results?: Array<string | Reject>;
  /** With dedupe: the prompt digest and the id of each clean result, at its index. */
  digests?: Array<string | undefined>;
  ids?: Array<string | undefined>;
  error?: { message: string; code?: ErrorCode };
}
