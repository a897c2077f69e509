/**
 * Reads cleaned reports back from the NDJSON `medsyn-clean` writes, so a cleaned file
 * can be generated from without cleaning again.
 *
 * @module
 */
import {
  ATTRIBUTED_OBSERVATIONS,
  OBSERVATIONS,
  type Attributes,
  type CleanReport,
  type Labels,
  type Reject,
  type Sections,
} from '../records.js';
import { readNdjsonRecords, type NdjsonRecordsOptions } from './_ndjson_records.js';
import { rejectOf } from './_report_text.js';

/** Options of {@link readCleanNdjson}. */
export type CleanNdjsonOptions = NdjsonRecordsOptions;

const SECTION_USED: ReadonlyArray<CleanReport['sectionUsed']> = ['impression', 'findings', 'lastParagraph', 'comparison', 'custom'];
const SECTION_KEYS: ReadonlyArray<keyof Sections> = ['impression', 'findings', 'comparison', 'indication', 'lastParagraph'];
const LATERALITIES = ['left', 'right', 'bilateral'];
const SIZES = ['small', 'moderate', 'large'];

/**
 * Whether a parsed NDJSON line is a cleaned report (it has a string `prompt` and a
 * `labels` object) rather than a raw `{id, text}` report: how `medsyn-gen` tells the
 * two apart from the first line.
 *
 * @example
 * ```ts
 * isCleanReportJson(JSON.parse('{"id":"s1","prompt":"No effusion.","labels":{}}')); // true
 * ```
 */
export function isCleanReportJson(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const record = value as Record<string, unknown>;
  return typeof record.prompt === 'string' && typeof record.labels === 'object' && record.labels !== null;
}

/**
 * Reads {@link CleanReport}s from NDJSON, one a line, as `medsyn-clean` writes them, and
 * checks each: `id` a non-empty string, `prompt` a string, `labels` an object of the 14
 * observations with values 1, 0 or -1, and, when present, `caption`, `subjectId`,
 * `source` and the `sections` strings, `sectionUsed`, and `attributes` with known sides
 * and sizes. A missing `caption` is the prompt; a missing `source` is `NAME:LINE`. An
 * empty prompt is a `no_prompt` reject, a line that breaks these rules `bad_row`, and the
 * line-level rejects are those of {@link readNdjsonReports}. Unknown fields are dropped.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION`
 * @example
 * ```ts
 * for await (const item of readCleanNdjson(createReadStream('clean.ndjson'), { name: 'clean.ndjson' })) {
 *   if (!isReject(item)) console.log(item.prompt);
 * }
 * ```
 */
export async function* readCleanNdjson(chunks: AsyncIterable<Uint8Array | string>, options: CleanNdjsonOptions = {}): AsyncGenerator<CleanReport | Reject> {
  yield* readNdjsonRecords(chunks, options, toCleanReport);
}

function toCleanReport(value: unknown, lineSource: string): CleanReport | Reject {
  const badRow = (detail: string, id?: string): Reject =>
    rejectOf({ id, source: lineSource }, 'bad_row', `Skipped line ${lineSource}: ${detail} (each line needs a cleaned report as medsyn-clean writes it)`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return badRow('it is not an object');
  const record = value as Record<string, unknown>;
  const { id, prompt, caption, subjectId, source, sectionUsed } = record;
  if (typeof id !== 'string') return badRow(id === undefined ? 'it has no "id"' : '"id" is not a string');
  if (id.trim() === '') return rejectOf({ source: lineSource }, 'missing_id', `Skipped line ${lineSource}: its "id" is empty`);
  if (typeof prompt !== 'string') return badRow(prompt === undefined ? 'it has no "prompt"' : '"prompt" is not a string', id);
  if (caption !== undefined && typeof caption !== 'string') return badRow('"caption" is not a string', id);
  if (subjectId !== undefined && typeof subjectId !== 'string') return badRow('"subjectId" is not a string', id);
  if (source !== undefined && typeof source !== 'string') return badRow('"source" is not a string', id);
  if (sectionUsed !== undefined && !SECTION_USED.includes(sectionUsed as CleanReport['sectionUsed'])) {
    return badRow(`"sectionUsed" is not one of ${SECTION_USED.join(', ')}`, id);
  }
  const labels = checkLabels(record.labels);
  if (typeof labels === 'string') return badRow(labels, id);
  const attributes = checkAttributes(record.attributes);
  if (typeof attributes === 'string') return badRow(attributes, id);
  const sections: Sections = {};
  if (record.sections !== undefined) {
    const given = record.sections;
    if (typeof given !== 'object' || given === null || Array.isArray(given)) return badRow('"sections" is not an object', id);
    for (const key of SECTION_KEYS) {
      const section = (given as Record<string, unknown>)[key];
      if (section === undefined) continue;
      if (typeof section !== 'string') return badRow(`"sections.${key}" is not a string`, id);
      sections[key] = section;
    }
  }
  const place = { id, source: typeof source === 'string' ? source : lineSource };
  if (prompt.trim() === '') return rejectOf(place, 'no_prompt', `Skipped ${id} (${lineSource}): its prompt is empty`);
  return {
    id,
    ...(typeof subjectId === 'string' ? { subjectId } : {}),
    source: place.source,
    sections,
    sectionUsed: (sectionUsed as CleanReport['sectionUsed'] | undefined) ?? 'custom',
    prompt,
    caption: typeof caption === 'string' ? caption : prompt,
    labels,
    attributes,
  };
}

function checkLabels(value: unknown): Labels | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return '"labels" is not an object';
  const labels: Labels = {};
  for (const [observation, label] of Object.entries(value)) {
    if (!(OBSERVATIONS as readonly string[]).includes(observation)) return `"labels.${observation}" is not one of the 14 observations`;
    if (label !== 1 && label !== 0 && label !== -1) return `"labels.${observation}" is not 1, 0 or -1`;
    labels[observation as keyof Labels] = label;
  }
  return labels;
}

function checkAttributes(value: unknown): Attributes | string {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return '"attributes" is not an object';
  const attributes: Attributes = {};
  for (const [observation, stated] of Object.entries(value)) {
    if (!(ATTRIBUTED_OBSERVATIONS as readonly string[]).includes(observation)) return `"attributes.${observation}" is not an attributed observation`;
    if (typeof stated !== 'object' || stated === null || Array.isArray(stated)) return `"attributes.${observation}" is not an object`;
    const { laterality, size } = stated as Record<string, unknown>;
    if (laterality !== undefined && !LATERALITIES.includes(laterality as string)) return `"attributes.${observation}.laterality" is not left, right or bilateral`;
    if (size !== undefined && !SIZES.includes(size as string)) return `"attributes.${observation}.size" is not small, moderate or large`;
    attributes[observation as keyof Attributes] = {
      ...(laterality !== undefined ? { laterality: laterality as 'left' } : {}),
      ...(size !== undefined ? { size: size as 'small' } : {}),
    };
  }
  return attributes;
}
