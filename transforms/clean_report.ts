/**
 * Cleans one report: sections, caption, prompt, labels.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import type { TokenCounter } from '../models/clip_tokenizer.js';
import type { CleanReport, Reject, Report, Sections } from '../records.js';
import { labelReport } from './chexpert_labels.js';
import { extractSections, type ExtractedSections } from './extract_sections.js';
import { fitPrompt, wordCountApproximation } from './fit_prompt.js';
import { normalizeSection } from './normalize_section.js';

/** Options of {@link cleanReport}. */
export interface CleanReportOptions {
  /**
   * Counts prompt tokens; a CLIP tokenizer from `loadClipTokenizer` measures them
   * exactly.
   * @default wordCountApproximation() (77 tokens, estimated)
   */
  tokenCounter?: TokenCounter;
  /**
   * A caption with fewer words is rejected as `too_short`.
   * @default 2
   */
  minWords?: number;
  /**
   * Drop sentences that only record communication of results.
   * @default true
   */
  dropCommunication?: boolean;
  /**
   * Keep the raw report text in the output record.
   * @default false
   */
  keepText?: boolean;
}

type ResolvedCleanReportOptions = Required<CleanReportOptions>;

function resolveCleanReportOptions(options: CleanReportOptions = {}): ResolvedCleanReportOptions {
  const minWords = options.minWords ?? 2;
  if (!Number.isInteger(minWords) || minWords < 0) invalidOption('minWords', `must be an integer ≥ 0, got ${minWords}`);
  return {
    tokenCounter: options.tokenCounter ?? wordCountApproximation(),
    minWords,
    dropCommunication: options.dropCommunication ?? true,
    keepText: options.keepText ?? false,
  };
}

const PRE_SECTIONED_ORDER = ['impression', 'findings', 'lastParagraph', 'comparison'] as const;

/**
 * Turns a {@link Report} into a {@link CleanReport}, or a {@link Reject} saying why
 * not (`empty`, `no_section`, `too_short`). The final text is chosen as the
 * official MIMIC-CXR tool chooses it (impression, else findings, else last
 * paragraph, else comparison); the caption is that text normalised; the prompt
 * is the caption fitted to the token limit at sentence boundaries; the labels
 * come from the caption.
 *
 * @example
 * ```ts
 * const clean = cleanReport({ id: 's1', source: 'a.txt', text: 'R\n IMPRESSION: Small left effusion.\n' });
 * // clean.caption: 'Small left effusion.', clean.labels.pleuralEffusion: 1
 * ```
 */
export function cleanReport(report: Report, options: CleanReportOptions = {}): CleanReport | Reject {
  return createCleaner(options)(report);
}

/**
 * Checks `options` once and returns {@link cleanReport} bound to them, for
 * cleaning many reports.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` naming the option
 * @example
 * ```ts
 * const clean = createCleaner({ minWords: 3 });
 * for (const report of reports) console.log(clean(report));
 * ```
 */
export function createCleaner(options: CleanReportOptions = {}): (report: Report) => CleanReport | Reject {
  const resolved = resolveCleanReportOptions(options);
  return (report) => cleanResolved(report, resolved);
}

function rejectOf(report: Report, reason: Reject['reason'], message: string): Reject {
  return { id: report.id, source: report.source, reason, message };
}

function cleanResolved(report: Report, resolved: ResolvedCleanReportOptions): CleanReport | Reject {

  if (!NOT_BLANK.test(report.text) && !hasText(report.sections)) return rejectOf(report, 'empty', 'the report has no text');
  const { sections, sectionUsed, finalText } = report.sections ? chooseGivenSection(report.sections) : extractSections(report.id, report.text);
  if (!NOT_BLANK.test(finalText)) {
    return rejectOf(report, 'no_section', 'no impression, findings, last paragraph or comparison section with text');
  }
  const caption = normalizeSection(finalText, { dropCommunication: resolved.dropCommunication });
  if (caption === '') return rejectOf(report, 'no_section', `the ${sectionUsed} section holds only placeholders or communication notes`);
  const words = resolved.minWords > 1 ? countWords(caption, resolved.minWords) : 1;
  if (words < resolved.minWords) return rejectOf(report, 'too_short', `the caption "${caption}" has ${words} word(s), fewer than ${resolved.minWords}`);

  const { prompt } = fitPrompt(caption, resolved.tokenCounter);
  const { labels, attributes } = labelReport(caption);
  // One literal, fields in reading order: who, where from, then what was made. A field left
  // undefined is left out of the JSON; an object spread here cost as much as the labelling.
  return {
    id: report.id,
    subjectId: report.subjectId,
    source: report.source,
    text: resolved.keepText ? report.text : undefined,
    sections,
    sectionUsed,
    prompt,
    caption,
    labels,
    attributes,
  };
}

/** Any character that is not white space. */
const NOT_BLANK = /\S/;

/** The words of a normalised caption (single spaces between), counted up to `enough`. */
function countWords(caption: string, enough: number): number {
  let words = 1;
  for (let at = caption.indexOf(' '); at !== -1 && words < enough; at = caption.indexOf(' ', at + 1)) words++;
  return words;
}

function hasText(sections: Sections | undefined): boolean {
  return sections !== undefined && Object.values(sections).some((text) => typeof text === 'string' && text.trim() !== '');
}

/** The official choice applied to sections the input already gave (the official sectioned CSV). */
function chooseGivenSection(sections: Sections): ExtractedSections {
  for (const key of PRE_SECTIONED_ORDER) {
    const text = sections[key];
    if (text !== undefined && text.trim() !== '') return { sections, sectionUsed: key, finalText: text.trim() };
  }
  return { sections, sectionUsed: 'impression', finalText: '' };
}
