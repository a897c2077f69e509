/**
 * The cleaning stage: reports in, clean reports and rejects out.
 *
 * @module
 */
import { isReject, type CleanReport, type Reject, type Report } from '../records.js';
import { createCleaner, type CleanReportOptions } from './clean_report.js';
import { duplicateReject, PromptIndex, promptDigest, rejectedError, resolveOnError } from './_clean_policy.js';

/** Options of {@link cleanReports}. */
export interface CleanReportsOptions extends CleanReportOptions {
  /**
   * Reject a report whose prompt is exactly the prompt of an earlier one (`duplicate`).
   * Keeps a 128-bit hash and the id of every kept prompt (about 150 bytes a report).
   * @default false
   */
  dedupe?: boolean;
  /**
   * What a reject does: `skip` passes it on (to be written to the rejects file)
   * and goes on; `fail` throws `MEDSYN_ERR_REJECTED` at the first one.
   * @default 'skip'
   */
  onError?: 'skip' | 'fail';
}

/**
 * Cleans every report of `items`, passing on the rejects a reader already made
 * and adding its own. Pull-based: it cleans a report only when the consumer asks
 * for the next item, so memory stays flat.
 *
 * @throws {MedsynError} `MEDSYN_ERR_REJECTED` at the first reject when `onError` is `fail`
 * @example
 * ```ts
 * for await (const item of cleanReports(readReports('reports.zip'), { dedupe: true })) {
 *   if (!isReject(item)) console.log(item.prompt);
 * }
 * ```
 */
export async function* cleanReports(
  items: AsyncIterable<Report | Reject> | Iterable<Report | Reject>,
  options: CleanReportsOptions = {},
): AsyncGenerator<CleanReport | Reject> {
  const onError = resolveOnError(options.onError);
  const clean = createCleaner(options);
  const index = options.dedupe ? new PromptIndex() : undefined;

  for await (const item of items) {
    let result = isReject(item) ? item : clean(item);
    if (index && !isReject(result)) {
      const first = index.firstHolder(promptDigest(result.prompt), result.id);
      if (first !== undefined) result = duplicateReject(result.id, result.source, first);
    }
    if (onError === 'fail' && isReject(result)) throw rejectedError(result);
    yield result;
  }
}
