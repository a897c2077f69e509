/** The cleaner a batch-cleaning thread uses, made from its {@link CleanWorkerData}. Private to transforms/. */
import { loadClipTokenizer } from '../models/clip_tokenizer.js';
import type { CleanReport, Reject, Report } from '../records.js';
import type { CleanWorkerData } from './_clean_messages.js';
import { createCleaner } from './clean_report.js';
import { wordCountApproximation } from './fit_prompt.js';

/**
 * The cleaner for `data`: loads the tokenizer when one is named.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_TOKENIZER`, `MEDSYN_ERR_INVALID_OPTION`
 */
export async function createBatchCleaner(data: CleanWorkerData): Promise<(report: Report) => CleanReport | Reject> {
  let tokenCounter = wordCountApproximation(data.maxTokens ?? 77);
  if (data.tokenizer !== undefined) {
    const tokenizer = await loadClipTokenizer(data.tokenizer);
    tokenCounter = data.maxTokens === undefined ? tokenizer : { ...tokenizer, maxTokens: data.maxTokens };
  }
  return createCleaner({ ...data.clean, tokenCounter });
}
