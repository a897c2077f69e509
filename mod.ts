/**
 * medsyn's library API: every stage as a function over async iterables, the
 * readers and sinks, the records and the errors.
 *
 * @example
 * ```ts
 * import { readReports, cleanReports, isReject } from 'medsyn';
 * for await (const item of cleanReports(readReports('mimic-cxr-reports.zip'))) {
 *   if (!isReject(item)) console.log(item.id, item.prompt, item.labels);
 * }
 * ```
 *
 * @module
 */
export * from './errors.js';
export * from './records.js';
export { VERSION } from './version.js';

export { readReports, type ReadReportsOptions } from './streams/read_reports.js';
export { writeNdjson, type WriteNdjsonOptions } from './streams/ndjson_writer.js';
export { RejectsFile } from './streams/rejects_file.js';

export { sectionText, normalizeSectionNames, type SectionedText } from './transforms/section_text.js';
export { extractSections, type ExtractedSections } from './transforms/extract_sections.js';
export { normalizeSection, isCommunication, type NormalizeSectionOptions } from './transforms/normalize_section.js';
export { fitPrompt, wordCountApproximation, type FittedPrompt } from './transforms/fit_prompt.js';
export { labelReport, type LabelResult } from './transforms/chexpert_labels.js';
export { cleanReport, createCleaner, type CleanReportOptions } from './transforms/clean_report.js';
export { cleanReports, type CleanReportsOptions } from './transforms/clean_reports.js';
export { runClean, formatCleanSummary, type RunCleanOptions, type CleanSummary } from './transforms/run_clean.js';

export { loadClipTokenizer, clipTokenizerDefinition, type ClipTokenizer, type TokenCounter } from './models/clip_tokenizer.js';
