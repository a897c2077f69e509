/**
 * Phrase tables of the rule-based CheXpert labeler and the one regular expression
 * compiled from them. Private to transforms/.
 *
 * The vocabulary follows the Stanford CheXpert labeler's `phrases/mention`,
 * `phrases/unmention` and its negation / uncertainty patterns, re-expressed as
 * lexical cues (the labeler reads cues off a dependency parse; we have none).
 * Every phrase matches whole words, unlike the labeler's raw substrings, so
 * "tube" is not found in "tuberculosis" nor "plate" in "plate-like".
 *
 * Phrase notation: `(a|b|)` expands to each alternative (the empty one included),
 * a trailing `*` makes the phrase a stem that also matches any letters after it.
 *
 * @module
 */
import type { Observation } from '../records.js';

/** What a mention can count for: an observation, or a finding outside the 14 that still rules out No Finding. */
export type Category = Exclude<Observation, 'noFinding'> | 'otherFinding';

/** How a cue changes the mentions it reaches, in the labeler's order of precedence. */
export type Effect = 'preNegation' | 'negation' | 'uncertainty' | 'stable';

/** How far a cue before a mention reaches: the rest of its clause, or the next few words. */
export type Scope = 'clause' | 'phrase';

/** Every {@link Category}, numbered by position: labels are gathered in an array indexed by it. */
export const CATEGORIES: readonly Category[] = [
  'enlargedCardiomediastinum', 'cardiomegaly', 'lungOpacity', 'lungLesion', 'edema', 'consolidation', 'pneumonia',
  'atelectasis', 'pneumothorax', 'pleuralEffusion', 'pleuralOther', 'fracture', 'supportDevices', 'otherFinding',
];

/** A phrase that mentions one or more categories. */
export interface MentionToken {
  readonly type: 'mention';
  readonly categories: readonly Category[];
  /** {@link categories} as positions in {@link CATEGORIES}. */
  readonly categoryIndexes: readonly number[];
  /** Names a structure (heart, silhouette, contour) rather than a finding: "stable"/"unchanged" make it uncertain. */
  readonly structural: boolean;
  /** Uncertain unless negated, whatever else the sentence says ("vascular congestion"). */
  readonly hedged: boolean;
  /** "heart failure", "chf": also makes cardiomegaly uncertain when not negated. */
  readonly heartFailure: boolean;
  /** Not a mention when it only gives a position ("projects over the heart"). */
  readonly positional: boolean;
}

/** A negation or uncertainty cue. */
export interface CueToken {
  readonly type: 'cue';
  /** Effect on mentions after the cue, or null. */
  readonly pre: Effect | null;
  readonly preScope: Scope;
  /** Effect on the mention the cue follows as its predicate ("X is not seen"), or null. */
  readonly post: Effect | null;
  /** "or", "versus": makes the mentions it joins uncertain. */
  readonly alternative: boolean;
}

/** Something that ends the reach of every cue: a sentence end, "but", "with", "which". */
export interface BoundaryToken {
  readonly type: 'boundary';
}

/** A phrase consumed so that its words count for nothing: unmentions ("pericardial effusion") and neutral phrases ("no change in"). */
export interface IgnoredToken {
  readonly type: 'ignored';
}

/** What a matched phrase is. */
export type Token = MentionToken | CueToken | BoundaryToken | IgnoredToken;

interface MentionFlags {
  structural?: boolean;
  hedged?: boolean;
  heartFailure?: boolean;
  positional?: boolean;
}

const exact = new Map<string, Token>();
/** Stems, longest first, for words a stem phrase matched with a suffix. */
const stems: Array<[string, Token]> = [];

/** Expands `(a|b|)` groups into every combination, with single spaces between words. */
function expand(phrase: string): string[] {
  return combinations(phrase).map((variant) => variant.replace(/ {2,}/g, ' ').trim());
}

function combinations(phrase: string): string[] {
  const open = phrase.indexOf('(');
  if (open < 0) return [phrase];
  const close = phrase.indexOf(')', open);
  const head = phrase.slice(0, open);
  const tails = combinations(phrase.slice(close + 1));
  const out: string[] = [];
  for (const choice of phrase.slice(open + 1, close).split('|')) {
    for (const tail of tails) out.push(head + choice + tail);
  }
  return out;
}

function add(phrases: readonly string[], token: Token): void {
  for (const phrase of phrases) {
    for (const variant of expand(phrase)) {
      if (variant.endsWith('*')) {
        const stem = variant.slice(0, -1);
        const at = stems.findIndex(([known]) => known === stem);
        if (at < 0) stems.push([stem, token]);
        else stems[at] = [stem, merge(stems[at]![1], token, variant)];
      } else {
        const known = exact.get(variant);
        exact.set(variant, known === undefined ? token : merge(known, token, variant));
      }
    }
  }
}

/** A word listed as a cue twice (once for before a mention, once for after) gets both roles. */
function merge(known: Token, token: Token, phrase: string): Token {
  if (known === token) return known;
  if (known.type !== 'cue' || token.type !== 'cue' || (known.pre !== null && token.pre !== null) || (known.post !== null && token.post !== null)) {
    // A table mistake, caught when the module loads.
    throw new Error(`CheXpert phrase "${phrase}" is listed twice with different meanings`);
  }
  return {
    type: 'cue',
    pre: known.pre ?? token.pre,
    preScope: known.pre !== null ? known.preScope : token.preScope,
    post: known.post ?? token.post,
    alternative: known.alternative || token.alternative,
  };
}

function mention(categories: readonly Category[], phrases: readonly string[], flags: MentionFlags = {}): void {
  add(phrases, {
    type: 'mention',
    categories,
    categoryIndexes: categories.map((category) => CATEGORIES.indexOf(category)),
    structural: flags.structural ?? false,
    hedged: flags.hedged ?? false,
    heartFailure: flags.heartFailure ?? false,
    positional: flags.positional ?? false,
  });
}

function cue(phrases: readonly string[], spec: { pre?: Effect; preScope?: Scope; post?: Effect; alternative?: boolean }): void {
  add(phrases, {
    type: 'cue',
    pre: spec.pre ?? null,
    preScope: spec.preScope ?? 'clause',
    post: spec.post ?? null,
    alternative: spec.alternative ?? false,
  });
}

const BOUNDARY: BoundaryToken = { type: 'boundary' };
const IGNORED: IgnoredToken = { type: 'ignored' };

// ---------------------------------------------------------------------------
// Mentions. Where one phrase holds two observations ("nodular opacity") it is one
// entry with both, since the combined expression finds each stretch of text once.

// "positional": the labeler's unmentions "over the heart", "in the superior mediastinum".
mention(['enlargedCardiomediastinum'], [
  'cardiomediastin*', 'mediastinum', 'mediastinal silhouette', '(cardio|)pericardial silhouette',
], { structural: true, positional: true });
mention(['enlargedCardiomediastinum'], [
  'mediastinal (contour|contours|configuration|width|shadow|structures|outline)', 'contour', 'contours',
], { structural: true });
mention(['enlargedCardiomediastinum'], [
  'mediastinal (widening|enlargement)',
  '(widened|widening of the|enlarged) mediastinum',
]);
mention(['cardiomegaly'], ['heart', 'cardiac (silhouette|shadow)'], { structural: true, positional: true });
mention(['cardiomegaly'], ['heart size', 'size of the heart', 'cardiac size'], { structural: true });
mention(['cardiomegaly', 'enlargedCardiomediastinum'], ['(cardiac|heart) (contour|contours)'], { structural: true });
mention(['cardiomegaly'], ['cardiomegaly', 'cardiac enlargement', 'enlarged heart', 'enlargement of the (heart|cardiac silhouette)']);

mention(['lungOpacity'], [
  'opaci*', 'decreased translucency', 'increased (density|densities)',
  '(airspace|air space|air-space) (disease|process)',
  'infiltrat*',
  'interstitial (marking|markings|pattern|lung|abnormality|abnormalities|process|disease|thickening)',
  'reticular (pattern|marking|markings)', 'reticulation',
  'parenchymal (scar|scars|scarring)', '(peribronchial|bronchial|peribronchial wall|bronchial wall|wall) thickening',
  'scar', 'scars', 'scarring',
]);
mention(['lungLesion', 'lungOpacity'], ['nodular (opacity|opacities|opacification)']);
mention(['lungLesion'], [
  'mass', 'masses', 'nodule', 'nodules', 'micronodule', 'micronodules', 'nodular (density|densities)', 'lump',
  'cavitary (lesion|lesions)', 'carcinoma', 'neoplasm', 'tumor', 'tumors', 'tumour', 'tumours',
]);

mention(['edema'], ['edema', 'oedema']);
mention(['edema'], ['heart failure', 'chf'], { heartFailure: true });
// The labeler reads these as uncertain signs of edema whatever surrounds them.
mention(['edema'], ['(vascular|pulmonary) congestion', 'indistinctness', 'vascular prominence'], { hedged: true });

mention(['consolidation'], ['consolidat*']);
mention(['pneumonia'], ['pneumonia', 'pneumonias', 'bronchopneumonia', 'infection', 'infections', 'infectious', 'infectious process']);
mention(['atelectasis'], ['atelecta*', 'collapse', 'collapsed', 'plate atelecta*']);
mention(['pneumothorax'], ['pneumothorax', 'pneumothoraces', 'hydropneumothorax']);
mention(['pleuralEffusion'], ['effusion', 'effusions', 'pleural fluid']);
mention(['pleuralOther'], [
  'pleural thickening', 'fibrosis', 'fibrothorax',
  '(pleural|pleural parenchymal|pleural-parenchymal|pleuroparenchymal|pleuro-parenchymal|pleuropericardial|pleuro-pericardial) scar*',
]);
mention(['fracture'], ['fractur*']);
mention(['supportDevices'], [
  'pacer', 'pacers', 'pacemaker', 'pacemakers', 'line', 'lines', 'picc', 'piccs', 'tube', 'tubes', 'ett', 'ngt', 'ogt',
  'valve', 'valves', 'catheter', 'catheters', 'hardware', 'arthroplast*', 'marker', 'markers', 'icd', 'aicd',
  'device', 'devices', 'drain', 'drains', 'plate', 'plates', 'screw', 'screws', 'cannula', 'apparatus', 'coil', 'coils',
  'equipment', 'mediport', 'port', 'port-a-cath', 'portacath', 'stent', 'stents', 'wire', 'wires', 'clip', 'clips',
  'heart valve', 'heart valves',
]);
// The labeler lists "defib" both as a device and as a finding that rules out No Finding.
mention(['supportDevices', 'otherFinding'], ['defib*']);

// Findings outside the 14 (the labeler's phrases/mention/no_finding.txt): each one,
// when not negated, means the report is not "No Finding".
mention(['otherFinding'], [
  'emphysema', 'emphysematous', 'blunt*', 'density', 'densities', 'elevation', 'eventration', 'scoliosis',
  'degenera*', 'calcifi*', 'hyperinflat*', 'hyperexpan*', 'bronchospasm', 'asthma', 'hernia', 'hernias', 'herniation',
  'copd', 'plaque', 'plaques', 'osteophyt*', 'aortic disease', 'bronchiolitis', '(airway|airways) disease',
  'thickening', 'cephalization', 'aspiration', 'bulla', 'bullae', 'bullous', 'contusion', 'contusions', 'atheroscl*',
  'osteopenia', 'metasta*', 'granuloma', 'granulomas', 'granulomatous', 'pneumomediastinum', 'pneumoperitoneum',
  'osteodystrophy', 'cuffing', 'irregular lucency', 'inflam*', 'fissure', 'fissures', 'hypertension', 'prominen*',
  'kyphosis', 'kyphotic', 'bullet', 'bullets', 'reticula*', 'thoracentesis', 'bronchitis', 'volume loss',
  'deformity', 'deformities', 'hemorrhage', 'hematoma', 'radiopaque', 'aerophagia', 'arthropathy', 'tracheostomy',
  // The labeler's unmention of "calcified nodule" leaves it a calcification.
  'calcified (nodule|nodules|granuloma|granulomas|lymph node|lymph nodes)',
]);

// Unmentions: phrases whose words must not count as the mention they contain.
add([
  'pericardial (effusion|effusions)', 'heart (border|borders)', 'mass effect',
  'plate-like', 'platelike', 'plate like',
  '(kerley|kerley b|septal|skin|skin fold|azygoesophageal|paratracheal|paraspinal|pleural|visceral pleural|fissural|mach) (line|lines)',
  // Consumed whole so that "with" inside them does not end the clause.
  'consistent with', 'associated with', 'in keeping with',
], IGNORED);

// ---------------------------------------------------------------------------
// Cues.

// Pre-negation uncertainty: matched before negation, so "cannot exclude" is uncertain.
cue(['(cannot|can not|can\'t|could not|difficult to|hard to) (entirely |completely |definitely |totally |fully |)(exclude|rule out)', 'no new'], { pre: 'preNegation' });
cue([
  '(cannot|can not|can\'t|could not|may not|not) be (entirely |completely |definitely |totally |fully |)(excluded|ruled out)',
  'not (entirely |completely |definitely |)(excluded|ruled out)', '(difficult|hard) to (exclude|rule out)',
], { post: 'preNegation' });

// Neutral: "no change in X" says X is there; the "no" belongs to "change".
add([
  '(no|without) (significant |substantial |appreciable |definite |major |relevant |other |)(interval |)(change|changes|increase|decrease|improvement|worsening|progression|difference)',
], IGNORED);

cue([
  'no', 'without', 'free of', 'negative for', 'clear of', 'rather than', 'absence of', 'lack of', 'neither', 'nor',
  '(interval |)(resolution|removal|disappearance|drainage) of', 'history of', 'exclude', 'excludes', 'to exclude',
  'rule out', 'ruled out', 'to rule out',
], { pre: 'negation' });
cue(['normal', 'unremarkable', 'within normal limits'], { pre: 'negation', preScope: 'phrase', post: 'negation' });
cue(['(at the |at |)(upper|top|high) (limit|limits) of normal', 'normal in size'], { post: 'negation' });
cue(['(upper|top|high)(-| )normal', 'normal size', 'normal-sized', 'normal sized'], { pre: 'negation', preScope: 'phrase', post: 'negation' });
cue(['resolved', 'cleared'], { pre: 'negation', preScope: 'phrase', post: 'negation' });
cue(['not'], { pre: 'negation', preScope: 'phrase' });
cue([
  '(not|no longer) (seen|identified|visualized|visible|present|evident|demonstrated|detected|noted|observed|apparent|appreciable)',
  'not (significantly |appreciably |substantially |)enlarged',
  'removed', 'absent', 'excluded', 'ruled out',
], { post: 'negation' });

cue([
  'may', 'might', 'could', 'would', 'possible', 'possibly', 'probable', 'probably', 'presumably', 'presumed', 'questionable',
  'question of', 'suspect', 'suspected', 'suspicious', 'suspicion', 'concern', 'concerning', 'worrisome', 'suggest',
  'suggests', 'suggested', 'suggesting', 'suggestive', 'suggestion', 'consider', 'considered', 'favor', 'favored',
  'favoring', 'favour', 'favoured', 'differential', 'maybe', 'borderline', 'less likely', 'equivocal', 'uncertain',
  'compatible with', 'secondary to', 'obscured', 'obscuring', 'obscuration', 'correlate', 'clinical correlation',
  '(limiting|limits|limited) (assessment|evaluation) of', 'unlikely',
], { pre: 'uncertainty' });
cue([
  'possible', 'suspected', 'questionable', 'probable', 'borderline', 'obscured', 'a consideration', 'in question',
  'less likely', 'unlikely',
  'not (well|clearly) (seen|visualized|evaluated|assessed|demonstrated)', 'not appreciated',
  '(poorly|incompletely) (seen|visualized|evaluated|assessed)', '(may|might|could|can) (also |)be (present|seen)',
  '(difficult|hard) to (assess|evaluate|see|visualize)', '(cannot|can not|could not) be (assessed|evaluated)', 'not (assessed|evaluated)',
], { post: 'uncertainty' });
// The labeler's cue for the heart and silhouette only: "stable cardiomediastinal silhouette" says nothing of its size.
cue(['stable', 'unchanged'], { pre: 'stable', preScope: 'phrase', post: 'stable' });
cue(['not changed', 'similar to (the |)prior', 'similar'], { post: 'stable' });
cue(['or', 'versus', 'vs', 'vs.'], { alternative: true });

// Boundaries: the reach of every cue ends here. "with" starts a phrase the cue does not govern
// ("possible pneumonia with small effusion").
add([
  'but', 'however', 'although', 'though', 'whereas', 'while', 'with', 'which', 'except', 'aside from', 'apart from',
  'status post', 'after', 'following', 'since', 'because', 'given', 'in the setting of', 'and (the|there)',
], BOUNDARY);

stems.sort((a, b) => b[0].length - a[0].length);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

interface TrieNode {
  readonly children: Map<string, TrieNode>;
  /** A phrase ends here. */
  word: boolean;
  /** A stem ends here: any letters may follow. */
  stem: boolean;
}

/**
 * The phrases as one prefix tree, written as a regular expression. A flat
 * alternation of ~900 phrases makes the engine try each one at every word; the
 * tree tries one branch per letter, about three times faster. At each branch the
 * longer phrases come first and the word-end check stands once after the tree, so
 * backtracking finds the longest phrase that ends at a word end ("pleural
 * thickening" over "pleural", "calcified nodule" over "calcifi…"). A space in a
 * phrase matches any run of white space, so raw text needs no collapsing first.
 */
function trieSource(phrases: Iterable<string>, stemmed: Iterable<string>): string {
  const root: TrieNode = { children: new Map(), word: false, stem: false };
  const insert = (phrase: string): TrieNode => {
    let node = root;
    for (const char of phrase) {
      let child = node.children.get(char);
      if (child === undefined) node.children.set(char, (child = { children: new Map(), word: false, stem: false }));
      node = child;
    }
    return node;
  };
  for (const phrase of phrases) insert(phrase).word = true;
  for (const stem of stemmed) insert(stem).stem = true;
  const write = (node: TrieNode): string => {
    const branches = [...node.children.keys()].sort().map((char) => (char === ' ' ? '\\s+' : escapeRegExp(char)) + write(node.children.get(char)!));
    if (node.stem) branches.push('[a-z]*');
    else if (node.word) branches.push('');
    return branches.length === 1 ? branches[0]! : `(?:${branches.join('|')})`;
  };
  return `${write(root)}(?![a-z])`;
}

/**
 * Every phrase, cue and boundary in one expression; sentence ends and `;`/`:` are
 * boundaries too. Matched against lower-cased text; `lastIndex` is reset by the caller.
 *
 * V8 stops optimising an expression whose source passes 20 KiB, and then runs this
 * one five times slower: the tests hold the source under 19,000 characters.
 */
export const TOKEN_PATTERN: RegExp = new RegExp(`[.!?;:](?=\\s|$)|\\b${trieSource(exact.keys(), stems.map(([stem]) => stem))}`, 'g');

/** What a match of {@link TOKEN_PATTERN} is. */
export function tokenOf(text: string): Token {
  // Phrases start with a letter; anything else is a sentence or clause mark, the commonest token.
  if (text.charCodeAt(0) < 97) return BOUNDARY;
  const known = exact.get(text);
  if (known !== undefined) return known;
  for (const [stem, token] of stems) if (text.startsWith(stem) && isLetters(text, stem.length)) return token;
  // Left: a phrase written across a line break or with repeated spaces.
  const spaced = text.replace(/\s+/g, ' ');
  return spaced === text ? BOUNDARY : tokenOf(spaced);
}

/** Whether `text` holds only the letters a-z from `from` on, as a stem's suffix does. */
function isLetters(text: string, from: number): boolean {
  for (let i = from; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 97 || code > 122) return false;
  }
  return true;
}
