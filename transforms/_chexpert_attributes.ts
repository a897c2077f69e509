/**
 * Side and size of a finding, read from the words around its mentions.
 * Private to transforms/.
 *
 * @module
 */
import type { FindingAttributes } from '../records.js';

type Size = NonNullable<FindingAttributes['size']>;

/** Sides and sizes stated around the mentions of one observation so far. */
export interface AttributeTally {
  left: boolean;
  right: boolean;
  bilateral: boolean;
  /** 0 none, 1 small, 2 moderate, 3 large. */
  sizeRank: number;
}

const SIDES: ReadonlyMap<string, 'left' | 'right' | 'bilateral'> = new Map([
  ['left', 'left'], ['right', 'right'],
  ['bilateral', 'bilateral'], ['bilaterally', 'bilateral'], ['both', 'bilateral'],
  ['bibasilar', 'bilateral'], ['bibasal', 'bilateral'], ['bibasally', 'bilateral'], ['biapical', 'bilateral'],
  // Lobe abbreviations and the lingula name their side.
  ['rll', 'right'], ['rml', 'right'], ['rul', 'right'], ['lll', 'left'], ['lul', 'left'], ['lingula', 'left'], ['lingular', 'left'],
] as const);

const SIZE_RANKS: ReadonlyMap<string, number> = new Map([
  ['tiny', 1], ['trace', 1], ['minimal', 1], ['minute', 1], ['small', 1],
  ['moderate', 2], ['moderately', 2], ['medium', 2],
  ['large', 3], ['massive', 3], ['huge', 3], ['sizable', 3], ['sizeable', 3],
]);

const SIZE_NAMES: readonly (Size | undefined)[] = [undefined, 'small', 'moderate', 'large'];

/** Words that may stand between a side or size word and the finding ("small left apical pneumothorax"). */
const MODIFIERS: ReadonlySet<string> = new Set([
  'sided', 'sized', 'size', 'lower', 'upper', 'middle', 'mid', 'lobe', 'lobar', 'base', 'basilar', 'basal', 'apical',
  'apex', 'apicolateral', 'lateral', 'medial', 'anterior', 'posterior', 'pleural', 'lung', 'retrocardiac', 'perihilar',
  'hilar', 'lingular', 'subpulmonic', 'subpulmonary', 'parenchymal', 'peripheral', 'central', 'zone', 'hemithorax',
  'costophrenic', 'fissural', 'interlobar', 'paramediastinal', 'multifocal', 'focal', 'patchy', 'hazy', 'streaky',
  'linear', 'airspace', 'air', 'space', 'dense', 'confluent', 'ill', 'defined', 'vague', 'faint', 'subtle', 'diffuse',
  'extensive', 'layering', 'loculated', 'residual', 'persistent', 'new', 'stable', 'unchanged', 'increased', 'increasing',
  'decreased', 'decreasing', 'improved', 'improving', 'worsened', 'worsening', 'enlarging', 'known', 'possible',
  'probable', 'likely', 'suspected', 'questionable', 'presumed', 'apparent', 'partial', 'partially', 'complete',
  'tension', 'amount', 'amounts', 'mild', 'mildly', 'minimally', 'slightly', 'slight', 'subsegmental', 'segmental',
  'dependent', 'free', 'flowing', 'developing', 'early', 'underlying', 'adjacent', 'a', 'an', 'lingular',
]);

/** Words of a place named after the finding ("on the left", "in both lower lobes"). */
const PLACE_WORDS: ReadonlySet<string> = new Set([
  ...MODIFIERS, 'the', 'lobes', 'bases', 'lungs', 'apices', 'hemithoraces', 'side', 'sides', 'zones', 'field', 'fields',
  'greater', 'larger', 'more', 'worse', 'than',
]);
/** A second place joined by "and" counts only when it ends with one of these. */
const PLACE_NOUNS: ReadonlySet<string> = new Set([
  'lobe', 'lobes', 'lung', 'lungs', 'base', 'bases', 'apex', 'apices', 'hemithorax', 'hemithoraces', 'side', 'sides',
  'zone', 'zones', 'field', 'fields', 'lingula',
]);
const PREPOSITIONS: ReadonlySet<string> = new Set(['on', 'in', 'at', 'within', 'involving', 'along', 'of', 'over', 'affecting', 'throughout']);
const LEADING_WORDS: ReadonlySet<string> = new Set([
  'is', 'are', 'was', 'were', 'again', 'now', 'also', 'still', 'seen', 'noted', 'present', 'identified', 'persists',
  'persist', 'remains', 'remain', 'layering', 'loculated', 'predominantly', 'mainly', 'mostly', 'primarily',
  'projecting', 'projects', 'located', 'situated',
]);
const GREATER: ReadonlySet<string> = new Set(['greater', 'larger', 'more', 'worse']);

/** A tally with nothing stated yet. */
export function emptyTally(): AttributeTally {
  return { left: false, right: false, bilateral: false, sizeRank: 0 };
}

/**
 * Adds what the words around one mention state. `before` is the text leading up to
 * the mention (from the previous phrase of interest), `after` the text following it
 * (up to the next one).
 */
export function tallyMention(tally: AttributeTally, before: string, after: string): void {
  readBefore(tally, before);
  readAfter(tally, after);
}

/**
 * The side and size a tally holds, or undefined when neither was stated. Left and
 * right together are bilateral; of several sizes the larger wins ("moderate-to-large"
 * is large), as the worst extent seen is what a reader needs.
 */
export function tallyResult(tally: AttributeTally): FindingAttributes | undefined {
  const attributes: FindingAttributes = {};
  if (tally.bilateral || (tally.left && tally.right)) attributes.laterality = 'bilateral';
  else if (tally.left) attributes.laterality = 'left';
  else if (tally.right) attributes.laterality = 'right';
  const size = SIZE_NAMES[tally.sizeRank];
  if (size !== undefined) attributes.size = size;
  return attributes.laterality === undefined && attributes.size === undefined ? undefined : attributes;
}

function noteSide(tally: AttributeTally, word: string): void {
  const side = SIDES.get(word);
  if (side === 'left') tally.left = true;
  else if (side === 'right') tally.right = true;
  else if (side === 'bilateral') tally.bilateral = true;
}

function isSideOrSize(word: string | undefined): boolean {
  return word !== undefined && (SIDES.has(word) || SIZE_RANKS.has(word));
}

/**
 * Walks back over the modifiers in front of the mention. "and", "or" and "to" count
 * only between two side or size words ("right and left", "moderate to large"), so
 * "pneumothorax on the left and effusion" gives the effusion no side; a comma or a
 * word that is no modifier ends the walk.
 */
function readBefore(tally: AttributeTally, before: string): void {
  const words = before.split(/[\s-]+/);
  for (let i = words.length - 1; i >= 0; i--) {
    const word = words[i]!;
    if (word === '') continue;
    if (word.endsWith(',')) return;
    const rank = SIZE_RANKS.get(word);
    if (rank !== undefined) {
      if (rank > tally.sizeRank) tally.sizeRank = rank;
    } else if (SIDES.has(word)) {
      noteSide(tally, word);
    } else if (word === 'and' || word === 'or' || word === 'to') {
      if (!isSideOrSize(words[i + 1]) || !isSideOrSize(words[i - 1])) return;
    } else if (word === 'of') {
      if (words[i - 1] !== 'amount' && words[i - 1] !== 'amounts') return;
    } else if (!MODIFIERS.has(word)) {
      return;
    }
  }
}

/**
 * Reads a place named right after the mention: "on the left", "in both lungs",
 * "bilaterally", ", left greater than right". A second place joined by "and" counts
 * only when it ends with a place noun ("right upper and left lower lobes"), so the
 * side of a following finding ("consolidation in the right lung and left effusion")
 * is not taken.
 */
function readAfter(tally: AttributeTally, after: string): void {
  const trimmed = after.trimStart();
  if (trimmed.startsWith(',')) {
    // ", left greater than right"
    const rest = trimmed.slice(1).trimStart().split(/\s+/);
    if ((rest[0] === 'left' || rest[0] === 'right') && GREATER.has(rest[1] ?? '')) tally.bilateral = true;
    return;
  }
  const words = trimmed.split(/\s+/);
  let i = 0;
  while (i < words.length && LEADING_WORDS.has(words[i]!)) i++;
  const head = trimPunctuation(words[i]);
  if (head === 'bilaterally' || head === 'bilateral') {
    tally.bilateral = true;
    return;
  }
  if (head === undefined || !PREPOSITIONS.has(head) || head !== words[i]) return;
  let place: string[] = [];
  let places = 0;
  const commit = (): void => {
    if (place.length > 0 && (places === 0 || PLACE_NOUNS.has(place[place.length - 1]!))) {
      for (const word of place) noteSide(tally, word);
      places++;
    }
    place = [];
  };
  for (i++; i < words.length; i++) {
    const raw = words[i]!;
    const word = trimPunctuation(raw)!;
    if (word === 'and') {
      commit();
      continue;
    }
    const parts = word.split('-');
    if (!parts.every((part) => PLACE_WORDS.has(part) || SIDES.has(part))) break;
    place.push(...parts);
    if (word !== raw) break;
  }
  commit();
}

function trimPunctuation(word: string | undefined): string | undefined {
  return word === undefined ? undefined : word.replace(/[,.;:]+$/, '');
}
