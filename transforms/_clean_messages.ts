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
}

/** A batch to clean: records, or a zip batch to inflate and decode first. */
export interface CleanBatchRequest {
  batch: number;
  items?: Array<Report | Reject>;
  zip?: ZipBatch;
}

/** One result a record: a reject, or the clean report as a JSON line. */
export type CleanResult = { reject: Reject } | { id: string; source: string; line: string; digest?: string };

/** A cleaned batch, one result a record read, in order. */
export interface CleanBatchReply {
  batch: number;
  results?: CleanResult[];
  error?: { message: string; code?: ErrorCode };
}
