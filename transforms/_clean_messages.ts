/** The messages between {@link cleanInWorkers} and its worker threads. Private to transforms/. */
import type { ErrorCode } from '../errors.js';
import type { Reject, Report } from '../records.js';
import type { CleanReportOptions } from './clean_report.js';

/** What a worker is started with. */
export interface CleanWorkerData {
  clean: Omit<CleanReportOptions, 'tokenCounter'>;
  tokenizer?: string;
  maxTokens?: number;
  dedupe: boolean;
}

/** A batch of reports to clean. */
export interface CleanBatchRequest {
  batch: number;
  reports: Report[];
}

/** A cleaned batch, results in the order of the request. */
export interface CleanBatchReply {
  batch: number;
  results?: Array<{ reject: Reject } | { id: string; source: string; line: string; digest?: string }>;
  error?: { message: string; code?: ErrorCode };
}
