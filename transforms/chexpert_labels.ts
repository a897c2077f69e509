/**
 * The rule-based CheXpert labeler: 14 observation labels, and side and size of
 * effusion, pneumothorax, consolidation and opacity, from one report's impression.
 *
 * @module
 */
import { ATTRIBUTED_OBSERVATIONS, OBSERVATIONS } from '../records.js';
import type { Attributes, LabelValue, Labels } from '../records.js';
import { emptyTally, tallyMention, tallyResult, type AttributeTally } from './_chexpert_attributes.js';
import { CATEGORIES, TOKEN_PATTERN, tokenOf, type MentionToken, type Token } from './_chexpert_phrases.js';

/** The labels of one report and the side and size of its attributed findings. */
export interface LabelResult {
  labels: Labels;
  attributes: Attributes;
}

/**
 * A cue's reach ends at a comma or "and" that opens a new assertion
 * ("No pneumothorax, small left effusion"), while a plain list goes on
 * ("No consolidation, effusion, or pneumothorax").
 */
const NEW_ASSERTION =
  /(?:,|\band)\s*(?:small|moderate|large|mild|mildly|severe|minimal|trace|tiny|stable|unchanged|persistent|persisting|new|newly|increased|increasing|decreased|decreasing|improved|improving|worsened|worsening|enlarged|enlarging|possible|possibly|probable|probably|likely|suspected|questionable|presumed|may|might|could|there|the|this|these|otherwise|again|also|residual|known|slight|slightly|interval)\b/;
/** What may separate a phrase-scope cue ("normal", "stable") from its mention: a few words. */
const PHRASE_GAP = /^[\s,]*(?:[a-z-]+[\s,]+){0,4}$/;
const VERB = String.raw`(?:is|are|was|were|has|have|had|be|been|being|appears?|remains?|seems?|looks?)`;
/**
 * What may separate a mention from a cue that is its predicate: another
 * coordinated noun ("and hila"), up to four words that are not verbs ("on the
 * left"), then verbs and adverbs ("has since", "is again").
 */
const PREDICATE_GAP = new RegExp(
  String.raw`^\s*(?:(?:,\s*)?(?:and|or)\s+)?(?:(?!${VERB}\b)[a-z-]+\s+){0,4}` +
    String.raw`(?:(?:${VERB}|now|again|also|still|otherwise|overall|almost|since|at|the|in|to)\s+|[a-z]+ly\s+)*$`,
);
/** What may separate two coordinated mentions ("heart, mediastinum and hilar contours"). */
const COORDINATION_GAP = /^\s*(?:,\s*)?(?:(?:and|or)\s+)?(?:[a-z-]+\s+){0,2}$/;
/** "or early pneumonia": an alternative word a few modifiers before the mention. */
const ALTERNATIVE_BEFORE_GAP = /^\s+(?:[a-z-]+\s+){0,3}$/;
/** "atelectasis or": the alternative word right after the mention. */
const ALTERNATIVE_AFTER_GAP = /^\s*,?\s*$/;
/** "projects over the heart": a position, not a statement about the heart. */
const POSITION_BEFORE =
  /(?:over|overlying|overlies|overlie|projecting over|projects over|project over|in|within|into|at|behind|through|along)\s+the\s+(?:(?:left|right|superior|inferior|upper|lower|mid)\s+)?$/;
/** A size stated in the clause outranks "stable" ("stable enlarged cardiac silhouette" is enlarged). */
const SIZE_STATED = /\b(?:enlarge\w*|large|widen\w*|prominen\w*|cardiomegaly)\b/;

/**
 * How far, in characters, a cue may stand from its mention. Real clauses are far
 * shorter; the bound keeps hostile input (a megabyte without a full stop) linear
 * and the gap expressions' backtracking small.
 */
const MAX_REACH = 300;

/** The phrases found in one report, in text order, with where each starts and ends. */
interface Scan {
  report: string;
  tokens: Token[];
  starts: number[];
  ends: number[];
}

const SUPPORT_DEVICES = CATEGORIES.indexOf('supportDevices');
const CARDIOMEGALY = CATEGORIES.indexOf('cardiomegaly');
/** Each of {@link OBSERVATIONS} as its position in CATEGORIES (-1 for noFinding, which is not one). */
const OBSERVATION_CATEGORIES: readonly number[] = OBSERVATIONS.map((observation) => (observation === 'noFinding' ? -1 : CATEGORIES.indexOf(observation)));
/** Each of {@link ATTRIBUTED_OBSERVATIONS} as its position in CATEGORIES. */
const ATTRIBUTED_CATEGORIES: readonly number[] = ATTRIBUTED_OBSERVATIONS.map((observation) => CATEGORIES.indexOf(observation));

const NEGATIVE = 1;
const UNCERTAIN = 2;
const POSITIVE = 4;

/**
 * Labels one report with the 14 CheXpert observations, in the manner of the
 * Stanford CheXpert labeler (mention extraction, then pre-negation uncertainty,
 * negation and post-negation uncertainty rules, then aggregation), with lexical
 * scope rules in place of its dependency parse.
 *
 * Text: one report's impression (or findings), ideally as the cleaner leaves it;
 * case, line breaks and repeated white space do not matter. "and/or" and "a/b"
 * read as "or", as the labeler reads them.
 *
 * Mentions: each observation's phrases as whole words ("effusion", "heart size",
 * "opaci…"), minus the labeler's unmentions ("pericardial effusion", "calcified
 * nodule", "projects over the heart"); findings outside the 14 ("emphysema",
 * "granuloma", "scoliosis") are found too, since they rule out No Finding.
 *
 * Scope, within a clause (a clause ends at `. ; : ! ?` and at "but", "however",
 * "though", "with", "which", "except", "status post", "and the", …):
 * - a clause cue before the mention ("no", "without", "free of", "negative for",
 *   "rather than", "resolution of", "may", "possible", "suspicious for",
 *   "concerning for", "suggestive of", "cannot exclude", "no new") reaches every
 *   mention after it in the clause, through lists ("No consolidation, effusion or
 *   pneumothorax"), until a comma or "and" opens a new assertion ("No
 *   pneumothorax, small left effusion");
 * - a phrase cue ("normal", "unremarkable", "stable", "resolved", "not") reaches
 *   only the next four words ("normal heart size", "stable cardiomediastinal
 *   silhouette");
 * - a cue after the mention counts when it is the mention's predicate, with at
 *   most a coordinated noun, four other words and verbs between ("pneumothorax
 *   is not seen", "heart size is normal", "effusion on the left has resolved",
 *   "pneumonia cannot be excluded", "the heart and mediastinum are normal");
 * - "or", "versus", "vs" make the two mentions right beside them uncertain
 *   ("atelectasis versus pneumonia", "atelectasis or early pneumonia"), unless
 *   negated ("no effusion or pneumothorax"); past a comma or "and" they join
 *   other mentions ("opacity, atelectasis versus pneumonia" keeps the opacity 1).
 *
 * Precedence, per mention, as the labeler's: pre-negation uncertainty ("cannot
 * exclude", "not excluded", "no new") is uncertain (-1); else negation is 0; else
 * post-negation uncertainty is -1 — as are "vascular congestion", "pulmonary
 * congestion", "indistinctness", "vascular prominence", and the heart, silhouette
 * and contours when only called "stable"/"unchanged"/"similar" (no size given) —
 * else 1. "Likely" is not a hedge, as in the labeler: "likely atelectasis" is 1.
 *
 * Aggregation per observation, as the labeler's: -1 if mentions are both 0 and -1
 * (whatever else), else 1 if any is 1, else -1 if any is -1, else 0; unmentioned
 * observations are absent. "heart failure"/"chf" not negated also
 * make cardiomegaly -1. `noFinding` is 1 when no mention other than a support
 * device is 1 or -1 (findings outside the 14 included), else absent.
 *
 * Attributes: for pleural effusion, pneumothorax, consolidation and lung opacity
 * labelled 1 or -1, the side and size stated by the mentions that carry that label,
 * in the modifiers before them ("small left", "moderate-to-large right", "right and
 * left", "bibasilar") or a place right after ("on the left", "in both lungs",
 * "bilaterally", ", left greater than right"). Left and right together are
 * bilateral; of several sizes the larger wins; "tiny", "trace", "minimal" are small.
 *
 * Pure and deterministic; keys come in {@link OBSERVATIONS} order. Text with
 * no phrase at all (also the empty string) is No Finding, as in the labeler.
 * A cue reaches at most 300 characters, which keeps hostile input linear.
 *
 * @param text the impression of one report
 * @returns the labels and attributes; never throws
 * @example
 * ```ts
 * labelReport('Small left pleural effusion with adjacent atelectasis. No pneumothorax.');
 * // { labels: { atelectasis: 1, pneumothorax: 0, pleuralEffusion: 1 },
 * //   attributes: { pleuralEffusion: { laterality: 'left', size: 'small' } } }
 * ```
 */
export function labelReport(text: string): LabelResult {
  const report = prepare(text);
  const scan: Scan = { report, tokens: [], starts: [], ends: [] };
  const { tokens, starts, ends } = scan;
  // A module-level expression: lastIndex is reset here and the loop is synchronous, so no call sees another's state.
  TOKEN_PATTERN.lastIndex = 0;
  for (let match = TOKEN_PATTERN.exec(report); match !== null; match = TOKEN_PATTERN.exec(report)) {
    const token = tokenOf(match[0]);
    if (token.type === 'ignored') continue;
    if (token.type === 'mention' && token.positional && POSITION_BEFORE.test(report.slice(Math.max(0, match.index - 40), match.index))) continue;
    tokens.push(token);
    starts.push(match.index);
    ends.push(match.index + match[0].length);
  }

  // Per category (by position in CATEGORIES), the classes of its mentions OR-ed together; 0 is unmentioned.
  const marks: number[] = CATEGORIES.map(() => 0);
  const values: number[] = tokens.map(() => 0);
  let noFinding = true;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.type !== 'mention') continue;
    const value = classify(scan, i, token);
    values[i] = value;
    for (const index of token.categoryIndexes) {
      marks[index]! |= value;
      if (value !== NEGATIVE && index !== SUPPORT_DEVICES) noFinding = false;
    }
    if (token.heartFailure && value !== NEGATIVE) marks[CARDIOMEGALY]! |= UNCERTAIN;
  }

  const labels: Labels = {};
  if (noFinding) labels.noFinding = 1;
  for (let k = 0; k < OBSERVATIONS.length; k++) {
    const category = OBSERVATION_CATEGORIES[k]!;
    if (category === -1) continue;
    const mark = marks[category]!;
    if (mark !== 0) labels[OBSERVATIONS[k]!] = labelOf(mark);
  }

  const attributes: Attributes = {};
  for (let a = 0; a < ATTRIBUTED_OBSERVATIONS.length; a++) {
    const category = ATTRIBUTED_CATEGORIES[a]!;
    const mark = marks[category]!;
    const label = mark === 0 ? 0 : labelOf(mark);
    if (label !== 1 && label !== -1) continue;
    const wanted = label === 1 ? POSITIVE : UNCERTAIN;
    let tally: AttributeTally | undefined;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (values[i] !== wanted || token.type !== 'mention' || !token.categoryIndexes.includes(category)) continue;
      tally ??= emptyTally();
      // Modifiers and places are short: 60 characters hold "small-to-moderate left-sided loculated pleural".
      const before = report.slice(Math.max(i > 0 ? ends[i - 1]! : 0, starts[i]! - 60), starts[i]);
      const after = report.slice(ends[i], Math.min(i + 1 < tokens.length ? starts[i + 1]! : report.length, ends[i]! + 60));
      tallyMention(tally, before, after);
    }
    const found = tally === undefined ? undefined : tallyResult(tally);
    if (found !== undefined) attributes[ATTRIBUTED_OBSERVATIONS[a]!] = found;
  }
  return { labels, attributes };
}

/** Lower case and the labeler's reading of slashes; white space may stay as it is, as every pattern allows any run of it. */
function prepare(text: string): string {
  let report = text.toLowerCase();
  if (report.includes('/')) {
    report = report
      .replace(/\band\/or\b/g, 'or')
      .replace(/\bs\/p\b/g, 'status post')
      .replace(/([a-z])\/(?=[a-z])/g, '$1 or ');
  }
  return report;
}

/**
 * The aggregate of a category's mentions, as the labeler's `dict_to_vec`: negative and
 * uncertain together are uncertain, even beside a positive; otherwise positive wins,
 * then uncertain, then negative.
 */
function labelOf(mark: number): LabelValue {
  if (mark & NEGATIVE && mark & UNCERTAIN) return -1;
  if (mark & POSITIVE) return 1;
  if (mark & UNCERTAIN) return -1;
  return 0;
}

/** NEGATIVE, UNCERTAIN or POSITIVE for the mention at token `i`. */
function classify(scan: Scan, i: number, mention: MentionToken): number {
  const { report, tokens, starts, ends } = scan;
  let preNegation = false;
  let negation = false;
  let uncertainty = mention.hedged;
  let stable = false;

  // Cues before the mention, nearest first, back to the start of the clause.
  for (let j = i - 1; j >= 0; j--) {
    const token = tokens[j]!;
    if (token.type === 'boundary' || starts[i]! - ends[j]! > MAX_REACH) break;
    if (token.type !== 'cue') continue;
    const gap = report.slice(ends[j], starts[i]);
    if (NEW_ASSERTION.test(gap)) break;
    if (token.alternative && j === i - 1 && ALTERNATIVE_BEFORE_GAP.test(gap)) uncertainty = true;
    if (token.pre === null || (token.preScope === 'phrase' && !PHRASE_GAP.test(gap))) continue;
    if (token.pre === 'preNegation') preNegation = true;
    else if (token.pre === 'negation') negation = true;
    else if (token.pre === 'uncertainty') uncertainty = true;
    else stable = true;
  }

  // Cues after the mention: across coordinated mentions to the first predicate.
  // An "or" counts only right after the mention: past a comma or "and" it joins others
  // ("opacity, atelectasis versus pneumonia"; "effusions and atelectasis or consolidation").
  let from = ends[i]!;
  let adjacent = true;
  for (let k = i + 1; k < tokens.length; k++) {
    const token = tokens[k]!;
    if (token.type === 'boundary' || starts[k]! - ends[i]! > MAX_REACH) break;
    const gap = report.slice(from, starts[k]);
    if (token.type === 'mention') {
      if (!COORDINATION_GAP.test(gap)) break;
      adjacent = false;
    } else if (token.type === 'cue') {
      if (token.alternative) {
        if (adjacent && ALTERNATIVE_AFTER_GAP.test(gap)) uncertainty = true;
      } else {
        if (token.post !== null && PREDICATE_GAP.test(gap)) {
          if (token.post === 'preNegation') preNegation = true;
          else if (token.post === 'negation') negation = true;
          else if (token.post === 'uncertainty') uncertainty = true;
          else stable = true;
        }
        break;
      }
    }
    from = ends[k]!;
  }

  if (preNegation) return UNCERTAIN;
  if (negation) return NEGATIVE;
  if (uncertainty) return UNCERTAIN;
  if (stable && mention.structural && !SIZE_STATED.test(clauseOf(scan, i))) return UNCERTAIN;
  return POSITIVE;
}

/** The text of the clause that holds token `i`, at most {@link MAX_REACH} characters either side. */
function clauseOf(scan: Scan, i: number): string {
  const { report, tokens, starts, ends } = scan;
  let first = i;
  while (first > 0 && tokens[first - 1]!.type !== 'boundary' && starts[i]! - starts[first - 1]! <= MAX_REACH) first--;
  let last = i;
  while (last + 1 < tokens.length && tokens[last + 1]!.type !== 'boundary' && ends[last + 1]! - ends[i]! <= MAX_REACH) last++;
  return report.slice(starts[first], ends[last]);
}
