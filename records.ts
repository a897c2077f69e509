/**
 * The records that flow between medsyn's stages, as ARCHITECTURE.md names them.
 * Between CLIs they travel as NDJSON, one record a line, with exactly these fields.
 *
 * @module
 */

/** The 14 CheXpert observations, as keys of {@link Labels}, in the CheXpert order. */
export const OBSERVATIONS = [
  'noFinding',
  'enlargedCardiomediastinum',
  'cardiomegaly',
  'lungOpacity',
  'lungLesion',
  'edema',
  'consolidation',
  'pneumonia',
  'atelectasis',
  'pneumothorax',
  'pleuralEffusion',
  'pleuralOther',
  'fracture',
  'supportDevices',
] as const;

/** One of the 14 CheXpert observations. */
export type Observation = (typeof OBSERVATIONS)[number];

/** The names the CheXpert labeler and the CheXpert/MIMIC-CXR label CSVs use. */
export const OBSERVATION_NAMES: Readonly<Record<Observation, string>> = {
  noFinding: 'No Finding',
  enlargedCardiomediastinum: 'Enlarged Cardiomediastinum',
  cardiomegaly: 'Cardiomegaly',
  lungOpacity: 'Lung Opacity',
  lungLesion: 'Lung Lesion',
  edema: 'Edema',
  consolidation: 'Consolidation',
  pneumonia: 'Pneumonia',
  atelectasis: 'Atelectasis',
  pneumothorax: 'Pneumothorax',
  pleuralEffusion: 'Pleural Effusion',
  pleuralOther: 'Pleural Other',
  fracture: 'Fracture',
  supportDevices: 'Support Devices',
};

/** 1 positive, 0 negative, -1 uncertain. An observation not mentioned is absent from {@link Labels}. */
export type LabelValue = 1 | 0 | -1;

/** CheXpert labels of one report: only the observations the text mentions are present. */
export type Labels = Partial<Record<Observation, LabelValue>>;

/** The observations whose side and size are extracted when the text states them. */
export const ATTRIBUTED_OBSERVATIONS = ['pleuralEffusion', 'pneumothorax', 'consolidation', 'lungOpacity'] as const;

/** One of {@link ATTRIBUTED_OBSERVATIONS}. */
export type AttributedObservation = (typeof ATTRIBUTED_OBSERVATIONS)[number];

/** Side and size of a finding, each present only where the text states it. */
export interface FindingAttributes {
  laterality?: 'left' | 'right' | 'bilateral';
  size?: 'small' | 'moderate' | 'large';
}

/** Side and size per positive or uncertain finding of {@link ATTRIBUTED_OBSERVATIONS}. */
export type Attributes = Partial<Record<AttributedObservation, FindingAttributes>>;

/**
 * The sections of a report that medsyn keeps, named as the official MIMIC-CXR
 * section parser names them (`last_paragraph` becomes `lastParagraph`).
 * A section the report does not have is absent.
 */
export interface Sections {
  impression?: string;
  findings?: string;
  comparison?: string;
  indication?: string;
  lastParagraph?: string;
}

/** One report as a reader yields it. */
export interface Report {
  /** Study id, e.g. `s50414267`. */
  id: string;
  /** Patient id, e.g. `p10000032`, where the input says it. */
  subjectId?: string;
  /** Where the report came from: `file`, `file:entry` or `file:line`. */
  source: string;
  /** The raw report text (for the official sectioned CSV: its sections joined). */
  text: string;
  /** Sections the input already gave (the official sectioned CSV); the cleaner then does not re-section. */
  sections?: Sections;
}

/** A {@link Report} after cleaning: sections, the generator prompt, the training caption, labels. */
export interface CleanReport extends Omit<Report, 'text' | 'sections'> {
  /** The raw report, kept only on request (`keepText`, `--keep-text`): it doubles the output and nothing downstream reads it. */
  text?: string;
  sections: Sections;
  /** Which section the prompt and caption come from, as the official parser chooses it. */
  sectionUsed: 'impression' | 'findings' | 'lastParagraph' | 'comparison' | 'custom';
  /** The text the image generator is conditioned on, fitted to its token limit. */
  prompt: string;
  /** The text the trainer pairs with the image: the whole cleaned section. */
  caption: string;
  labels: Labels;
  attributes: Attributes;
}

/** Why a record was rejected. Stable strings: scripts count them. */
export type RejectReason =
  | 'empty'
  | 'no_section'
  | 'too_short'
  | 'too_long'
  | 'duplicate'
  | 'bad_row'
  | 'bad_json'
  | 'bad_entry'
  | 'missing_id'
  | 'not_utf8'
  | 'no_prompt'
  | 'missing_image'
  | 'bad_image'
  | 'generation_failed'
  | 'quality_failed';

/** A record that did not make it through a stage, and why. Written as NDJSON to `--rejects`. */
export interface Reject {
  /** The record's id where it was known. */
  id?: string;
  /** Where the record came from, as in {@link Report.source}. */
  source: string;
  reason: RejectReason;
  /** A human-readable detail. */
  message: string;
}

/**
 * Tells a {@link Reject} from a record in a stream that carries both.
 *
 * @example
 * ```ts
 * for await (const item of readReports('reports.csv')) if (!isReject(item)) console.log(item.id);
 * ```
 */
export function isReject(item: object): item is Reject {
  return 'reason' in item;
}
