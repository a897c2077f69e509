/**
 * Sentence splitting for radiology prose, shared by the cleaner and the prompt fitter.
 * Private to transforms/.
 */

/** Words that end with a period without ending a sentence (lower case, without the period). */
const ABBREVIATIONS = new Set([
  'dr', 'drs', 'mr', 'mrs', 'ms', 'prof', 'vs', 'e.g', 'i.e', 'eg', 'ie', 'approx', 'appt', 'st',
  'fig', 'figs', 'ref', 'cf', 'al', 'etc', 'pt', 'pts', 'hx', 'dx', 'sx', 'tx', 'rx', 'apprx', 'incl', 'resp', 'b.i.d', 'q.d',
]);

/**
 * A sentence ends at `.`, `!` or `?` (with closing quotes or brackets) followed by
 * white space and a capital letter, a digit or an opening bracket; or at the end.
 */
const BOUNDARY = /([.!?]["')\]]*)\s+(?=["'(\[]?[A-Z0-9_])/g;

/**
 * Splits one line of prose into sentences, each trimmed, none empty. Periods after
 * known abbreviations ("Dr.", "vs.", "e.g.") and single-letter initials do not end
 * a sentence; decimals ("1.5 cm") never do, since a boundary needs white space.
 *
 * @example
 * ```ts
 * splitSentences('Small effusion. No pneumothorax.'); // ['Small effusion.', 'No pneumothorax.']
 * ```
 */
export function splitSentences(line: string): string[] {
  const sentences: string[] = [];
  let start = 0;
  BOUNDARY.lastIndex = 0;
  for (let match = BOUNDARY.exec(line); match !== null; match = BOUNDARY.exec(line)) {
    const end = match.index + match[1]!.length;
    if (match[1]![0] === '.' && endsWithAbbreviation(line, match.index)) continue;
    const sentence = line.slice(start, end).trim();
    if (sentence) sentences.push(sentence);
    start = match.index + match[0].length;
  }
  const rest = line.slice(start).trim();
  if (rest) sentences.push(rest);
  return sentences;
}

/** Whether the word that ends at `periodIndex` (exclusive) is an abbreviation or an initial. */
function endsWithAbbreviation(line: string, periodIndex: number): boolean {
  // The longest abbreviation is 6 characters ("approx"): look no further back than that, by character code.
  let wordStart = periodIndex;
  while (wordStart > 0 && periodIndex - wordStart <= 8 && !isSpace(line.charCodeAt(wordStart - 1))) wordStart--;
  if (wordStart > 0 && !isSpace(line.charCodeAt(wordStart - 1))) return false;
  const word = line.slice(wordStart, periodIndex).replace(/^["'(\[]+/, '').toLowerCase();
  if (word.length === 1 && word >= 'a' && word <= 'z') return true;
  return ABBREVIATIONS.has(word);
}

function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13) || code === 0xa0;
}
