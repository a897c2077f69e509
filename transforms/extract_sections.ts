/**
 * The choice of sections and of the final text that the official MIMIC-CXR tool
 * `create_section_files.py` makes for each report.
 *
 * @module
 */
import type { CleanReport, Sections } from '../records.js';
import { CUSTOM_RANGES, CUSTOM_SECTION_NAMES } from './_mimic_custom_rules.js';
import { pyStrip, sectionText, universalNewlines } from './section_text.js';

/** What {@link extractSections} finds in one report. */
export interface ExtractedSections {
  /** The last section of each kind medsyn keeps, stripped; empty ones absent. */
  sections: Sections;
  /** Where `finalText` comes from. */
  sectionUsed: CleanReport['sectionUsed'];
  /** The text the official tool writes for the study (stripped); `''` when it finds none. */
  finalText: string;
}

/** Official section names, in the official order of preference for the final text. */
const PREFERENCE = [
  ['impression', 'impression'],
  ['findings', 'findings'],
  ['last_paragraph', 'lastParagraph'],
  ['comparison', 'comparison'],
] as const;

/** The sections a {@link CleanReport} keeps: the preferred ones first, then the indication. */
const KEPT = [...PREFERENCE, ['indication', 'indication']] as const;

/**
 * Sections a report and chooses its final text as the official tool does: the
 * per-study corrections first, then the *last* section named impression, else
 * findings, else last paragraph, else comparison. `finalText` is `''` when none
 * exists (the official tool then writes an empty row).
 *
 * @param id the study id (`s50414267`); it selects the official per-study corrections
 * @param text the raw report
 * @example
 * ```ts
 * const { finalText } = extractSections('s1', ' FINDINGS: Clear lungs.\n \n IMPRESSION: Normal chest.\n');
 * // finalText: 'Normal chest.'
 * ```
 */
export function extractSections(id: string, text: string): ExtractedSections {
  const { sections: texts, names } = sectionText(text);
  // The last section of each kept kind, stripped; undefined where the report has none.
  const found: Array<string | undefined> = new Array(KEPT.length);
  for (let k = 0; k < KEPT.length; k++) {
    const index = names.lastIndexOf(KEPT[k]![0]);
    found[k] = index === -1 ? undefined : pyStrip(texts[index]!);
  }
  const sections: Sections = {};
  for (let k = 0; k < KEPT.length; k++) if (found[k]) sections[KEPT[k]![1]] = found[k];

  const range = CUSTOM_RANGES.get(id);
  if (range !== undefined) {
    // Python slices by code point, after universal-newline conversion, and does not strip here.
    const finalText = Array.from(universalNewlines(text)).slice(range[0], range[1]).join('');
    return { sections, sectionUsed: 'custom', finalText };
  }
  const customName = CUSTOM_SECTION_NAMES.get(id);
  const customIndex = customName === undefined ? -1 : names.lastIndexOf(customName);
  if (customIndex !== -1) return { sections, sectionUsed: 'custom', finalText: pyStrip(texts[customIndex]!) };

  for (let k = 0; k < PREFERENCE.length; k++) {
    const section = found[k];
    if (section !== undefined) return { sections, sectionUsed: PREFERENCE[k]![1], finalText: section };
  }
  return { sections, sectionUsed: 'impression', finalText: '' };
}
