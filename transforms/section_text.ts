/**
 * Section splitting that behaves like the official MIMIC-CXR section parser
 * (MIT-LCP/mimic-cxr `txt/section_parser.py`, function `section_text`).
 *
 * @module
 */

/** The sections of one report in text order, as the official parser returns them. */
export interface SectionedText {
  /** The text of each section, untrimmed, as sliced from the report. */
  sections: string[];
  /** The normalised name of each section (`preamble`, `impression`, `last_paragraph`, …). */
  names: string[];
  /** The offset in the report where each section's text starts. */
  offsets: number[];
}

/**
 * A heading is a newline, one space, then capitals, spaces or `()/,-`, a colon and
 * one white-space character: MIMIC-CXR report lines start with a space.
 */
const HEADING = /\n ([A-Z ()/,-]+):\s/g;

/**
 * Splits a report into sections at its all-capitals headings, exactly as the
 * official parser does, including its quirks: after a heading the search for the
 * next one resumes past the first newline of the section; empty `impression` and
 * `findings` sections are dropped; a report with neither gets a `last_paragraph`
 * section split from its last section at the first `"\n \n"`.
 *
 * Line ends must already be `\n` (the official tool reads files in Python's
 * universal-newline mode; {@link sectionText} does the same conversion).
 *
 * @example
 * ```ts
 * const { names } = sectionText('FINAL REPORT\n IMPRESSION:  No acute process.\n');
 * // names: ['preamble', 'impression']
 * ```
 */
export function sectionText(report: string): SectionedText {
  const text = universalNewlines(report);
  const sections: string[] = [];
  const rawNames: string[] = [];
  const offsets: number[] = [];

  // The module's expression, reset here: the loop is synchronous, so no call sees another's state.
  const re = HEADING;
  re.lastIndex = 0;
  let match = re.exec(text);
  if (match) {
    // The preamble ends where the heading's name starts, after the "\n ".
    sections.push(text.slice(0, match.index + 2));
    rawNames.push('preamble');
    offsets.push(0);
    while (match) {
      const name = match[1]!.toLowerCase();
      const start = match.index + match[0].length;
      // The official parser resumes its search after the first newline of the section
      // "to avoid some bad parses"; `find` returning -1 means "resume at the start".
      const newline = text.indexOf('\n', start);
      re.lastIndex = newline === -1 ? start : newline;
      match = re.exec(text);
      const end = match ? match.index : text.length;
      sections.push(text.slice(start, end));
      rawNames.push(name);
      offsets.push(start);
    }
  } else {
    sections.push(text);
    rawNames.push('full report');
    offsets.push(0);
  }

  const names = normalizeSectionNames(rawNames);

  for (let i = names.length - 1; i >= 0; i--) {
    if ((names[i] === 'impression' || names[i] === 'findings') && pyStrip(sections[i]!) === '') {
      sections.splice(i, 1);
      names.splice(i, 1);
      offsets.splice(i, 1);
    }
  }

  if (!names.includes('impression') && !names.includes('findings')) {
    const last = sections[sections.length - 1]!;
    const split = last.indexOf('\n \n');
    if (split !== -1) {
      sections[sections.length - 1] = last.slice(0, split);
      sections.push(last.slice(split + 3));
      names.push('last_paragraph');
      offsets.push(offsets[offsets.length - 1]! + split);
    }
  }
  return { sections, names, offsets };
}

/**
 * Python's `str.strip()` with no argument: removes white space at both ends.
 * JavaScript's `trim()` also removes U+FEFF, which Python keeps; the difference
 * matters only for byte-exact agreement, so it is kept.
 */
export function pyStrip(text: string): string {
  // A loop, not /\s+$/: a trailing-space regex retries from every position and costs O(n²) on long sections.
  let start = 0;
  let end = text.length;
  while (start < end && isPySpace(text.charCodeAt(start))) start++;
  while (end > start && isPySpace(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/** Python's `str.isspace()` for one UTF-16 code unit: JavaScript's `\s` without U+FEFF, plus U+001C–U+001F and U+0085. */
function isPySpace(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d) || (code >= 0x1c && code <= 0x1f);
  if (code < 0x85) return false;
  return (
    code === 0x85 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000
  );
}

/** CRLF and lone CR become LF, as Python's universal-newline reading does. */
export function universalNewlines(text: string): string {
  return text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
}

/** Heading spellings and synonyms the official parser maps to a canonical name. */
const FREQUENT_SECTIONS: ReadonlyMap<string, string> = new Map([
  ['preamble', 'preamble'],
  ['impression', 'impression'],
  ['comparison', 'comparison'],
  ['indication', 'indication'],
  ['findings', 'findings'],
  ['examination', 'examination'],
  ['technique', 'technique'],
  ['history', 'history'],
  ['comparisons', 'comparison'],
  ['clinical history', 'history'],
  ['reason for examination', 'indication'],
  ['notification', 'notification'],
  ['reason for exam', 'indication'],
  ['clinical information', 'history'],
  ['exam', 'examination'],
  ['clinical indication', 'indication'],
  ['conclusion', 'impression'],
  ['chest, two views', 'findings'],
  ['recommendation(s)', 'recommendations'],
  ['type of examination', 'examination'],
  ['reference exam', 'comparison'],
  ['patient history', 'history'],
  ['addendum', 'addendum'],
  ['comparison exam', 'comparison'],
  ['date', 'date'],
  ['comment', 'comment'],
  ['findings and impression', 'impression'],
  ['wet read', 'wet read'],
  ['comparison film', 'comparison'],
  ['recommendations', 'recommendations'],
  ['findings/impression', 'impression'],
  ['pfi', 'history'],
  ['recommendation', 'recommendations'],
  ['wetread', 'wet read'],
  // The official table maps this misspelling of "indication" to impression; kept as it is.
  ['ndication', 'impression'],
  ['impresson', 'impression'],
  ['imprression', 'impression'],
  ['imoression', 'impression'],
  ['impressoin', 'impression'],
  ['imprssion', 'impression'],
  ['impresion', 'impression'],
  ['imperssion', 'impression'],
  ['mpression', 'impression'],
  ['impession', 'impression'],
  ['findings/ impression', 'impression'],
  ['finding', 'findings'],
  ['findins', 'findings'],
  ['findindgs', 'findings'],
  ['findgings', 'findings'],
  ['findngs', 'findings'],
  ['findnings', 'findings'],
  ['finidngs', 'findings'],
  ['idication', 'indication'],
  ['reference findings', 'findings'],
  ['comparision', 'comparison'],
  ['comparsion', 'comparison'],
  ['comparrison', 'comparison'],
  ['comparisions', 'comparison'],
]);

/** A name containing one of these, in this order, becomes that name. */
const MAIN_SECTIONS = ['impression', 'findings', 'history', 'comparison', 'addendum'] as const;

/** Headings that describe the whole study (views, body part) are findings. */
const FINDINGS_LIKE =
  /(chest|portable|pa and lateral|lateral and pa|ap and lateral|lateral and ap|frontal and|two views|frontal view|pa view|ap view|one view|lateral view|bone window|frontal upright|frontal semi-upright|ribs|pa and lat)/;

/**
 * Maps raw heading names to the official parser's canonical names: lower-case and
 * strip, then the table of frequent spellings, then "contains a main section name",
 * then "looks like a view description" → `findings`; anything else stays as it is.
 *
 * @example
 * ```ts
 * normalizeSectionNames(['CONCLUSION', 'PA AND LATERAL VIEWS OF THE CHEST']); // ['impression', 'findings']
 * ```
 */
export function normalizeSectionNames(names: readonly string[]): string[] {
  return names.map((raw) => {
    const name = pyStrip(raw.toLowerCase());
    const frequent = FREQUENT_SECTIONS.get(name);
    if (frequent !== undefined) return frequent;
    const main = MAIN_SECTIONS.find((candidate) => name.includes(candidate));
    if (main !== undefined) return main;
    return FINDINGS_LIKE.test(name) ? 'findings' : name;
  });
}
