/**
 * Turns the text of one report section into one clean line of prose.
 *
 * @module
 */
import { splitSentences } from './_sentences.js';
import { universalNewlines } from './section_text.js';

/** Options of {@link normalizeSection}. */
export interface NormalizeSectionOptions {
  /**
   * Drop sentences that only record the communication of results
   * ("Dr. ___ was paged at ___ to discuss these findings.").
   * @default true
   */
  dropCommunication?: boolean;
}

/** A list marker at the start of a line: `1.`, `2)`, `(3)`, `-`, `*`, `•`. */
const LINE_MARKER = /^(?:\(?\d{1,2}[.)]|[-*\u2022])\s+/;
/** A list number inside a line, after the end of a sentence or a colon. */
const INLINE_NUMBER = /(^|[.!?:;]\s+)\(?\d{1,2}[.)]\s+(?=[A-Za-z_])/g;
/** What every {@link INLINE_NUMBER} holds. */
const LIST_NUMBER_HINT = /\d[.)]/;
/** A run of placeholders joined by date/time words ("___ at ___", "___ through ___"). */
const PLACEHOLDER_RUN = /___(?:\s*(?:,|-|\u2013|at|and|to|through|on)?\s*___)+/g;
/** "compared to ___": the comparison's object is gone, so the phrase goes. */
const COMPARED_TO_PLACEHOLDER = /\b(?:(?:as\s+)?compared|(?:in\s+)?comparison)\s+(?:to|with)\s+(?:the\s+)?___/gi;
/** "worse than on ___": the comparison's object is gone; "worse" alone keeps the meaning. */
const THAN_PLACEHOLDER = /\s*\bthan\s+(?:(?:on|at|from|in|of)\s+)?(?:the\s+)?___/gi;
/** A preposition whose object is a placeholder (a date, time or name): the phrase goes. */
const PREPOSITION_PLACEHOLDER =
  /\b(?:from|on|of|dated|at|since|through|until|by|in|to|obtained|performed|done|with)\s+(?:the\s+)?(?:(?:dr|drs)\.?\s+)?___/gi;
const TITLE_PLACEHOLDER = /\b(?:dr|drs)\.?\s*___/gi;

/** A verb that records telling someone about the results. */
const COMMUNICATION_VERB =
  /\b(?:discuss(?:ed|ion)|communicat(?:ed|ion)|notif(?:ied|ication)|paged?|called|telephoned|phoned|conveyed|relayed|informed|e-?mailed|spoke|spoken|contacted|reported|d\/w)\b/i;
/** Who was told, or when: the second half of a communication sentence. */
const COMMUNICATION_CUE =
  /\b(?:dr|doctor|physician|clinician|provider|nurse|rn|np|team|resident|fellow|attending|surgeon|radiologist|telephone|phone|pager|person|time of)\b|___|\d{1,2}:\d{2}|\b(?:a\.m|p\.m|am|pm)\b/i;
/** Workflow notes that say nothing about the image. */
const WORKFLOW_NOTE = /\bcritical (?:results?|findings?|communications?)\b|\bdashboard\b/i;

/**
 * Normalises one section into a single line: hard line breaks unwrapped, list
 * numbering removed (with a period added where an item had none, so items stay
 * separate sentences), `___` de-identification placeholders removed together with
 * the phrase they leave dangling ("from ___", "compared to ___"), communication-only
 * sentences dropped, white space collapsed. Medical wording is kept as written.
 *
 * @example
 * ```ts
 * normalizeSection('1. Small left effusion\n 2. No pneumothorax.\n Dr. ___ was paged at ___.');
 * // 'Small left effusion. No pneumothorax.'
 * ```
 */
export function normalizeSection(text: string, options: NormalizeSectionOptions = {}): string {
  const dropCommunication = options.dropCommunication ?? true;
  let joined = unwrapLines(universalNewlines(text));
  // A list number needs a digit before a period or a bracket: most sections have none, and skip the scan.
  if (LIST_NUMBER_HINT.test(joined)) joined = joined.replace(INLINE_NUMBER, '$1');
  if (joined.includes('___')) joined = joined.replace(PLACEHOLDER_RUN, '___');
  // Each sentence is a piece of `joined` between white space, so a sentence can match only
  // where the whole does: most sections have no communication verb, and skip the test per sentence.
  const mayCommunicate = dropCommunication && isCommunication(joined);
  const kept: string[] = [];
  for (const sentence of splitSentences(joined)) {
    if (mayCommunicate && isCommunication(sentence)) continue;
    const cleaned = sentence.includes('___') ? removePlaceholders(sentence) : sentence;
    if (/[A-Za-z0-9]/.test(cleaned)) kept.push(cleaned);
  }
  return kept.join(' ');
}

/**
 * Whether a sentence only records that results were communicated: a
 * communication verb together with a recipient or a time, or a workflow note.
 *
 * @example
 * ```ts
 * isCommunication('Findings discussed with Dr. ___ at 10:15 a.m.'); // true
 * isCommunication('Small pleural effusion.'); // false
 * ```
 */
export function isCommunication(sentence: string): boolean {
  return (COMMUNICATION_VERB.test(sentence) && COMMUNICATION_CUE.test(sentence)) || WORKFLOW_NOTE.test(sentence);
}

function unwrapLines(text: string): string {
  const parts: string[] = [];
  let paragraphBreak = false;
  for (const rawLine of text.split('\n')) {
    let line = rawLine.trim();
    if (line === '') {
      paragraphBreak = parts.length > 0;
      continue;
    }
    // Most lines start with a letter: only a possible marker's first character runs the regex.
    const first = line.charCodeAt(0);
    const marker = (first >= 48 && first <= 57) || first === 40 || first === 45 || first === 42 || first === 0x2022 ? LINE_MARKER.exec(line) : null;
    if (marker) line = line.slice(marker[0].length);
    if (parts.length > 0 && (marker || paragraphBreak)) {
      // A list item or a new paragraph starts a new sentence even where the writer left off the period.
      const last = parts[parts.length - 1]!;
      if (!/[.!?:;]$/.test(last)) parts[parts.length - 1] = `${last}.`;
    }
    parts.push(line);
    paragraphBreak = false;
  }
  // One pass collapses the white space inside lines ("process.  The") and is a no-op where there is none.
  return parts.join(' ').replace(/\s{2,}|[\t\v\f\u00a0\u2000-\u200a\u3000]/g, ' ');
}

function removePlaceholders(sentence: string): string {
  const removed = sentence
    .replace(COMPARED_TO_PLACEHOLDER, '')
    .replace(THAN_PLACEHOLDER, '')
    .replace(PREPOSITION_PLACEHOLDER, '')
    .replace(TITLE_PLACEHOLDER, '')
    .replace(/___/g, '')
    .replace(/\(\s*\)/g, '')
    .replace(/\s+([,.;:!?)])/g, '$1')
    .replace(/([,;:])(?:\s*[,;:])+/g, '$1')
    .replace(/[,;:]\s*([.!?])/g, '$1')
    .replace(/^[\s,;:.\-]+/, '')
    .replace(/\s{2,}/g, ' ')
    .trim();
  // Removing a leading phrase ("As compared to ___, the heart ...") leaves a lower-case start.
  return /^[A-Z_]/.test(sentence) ? removed.charAt(0).toUpperCase() + removed.slice(1) : removed;
}
