/**
 * Labels from a CSV in the layout of MIMIC-CXR-JPG's `mimic-cxr-2.0.0-chexpert.csv`:
 * `subject_id,study_id,<the 14 CheXpert observations by their CheXpert names>`,
 * values `1.0` / `0.0` / `-1.0` / blank.
 *
 * @module
 */
import { createReadStream, existsSync } from 'node:fs';
import { parse } from 'fast-csv';
import { ErrorCodes, MedsynError } from '../errors.js';
import { OBSERVATIONS, OBSERVATION_NAMES, type LabelValue, type Labels } from '../records.js';

/**
 * The study id as medsyn keys it: `s` and the digits (`50414267`, `s50414267` and
 * `50414267.0` all give `s50414267`), or undefined when there are no digits.
 *
 * @example
 * ```ts
 * studyKey('50414267'); // 's50414267'
 * ```
 */
export function studyKey(id: unknown): string | undefined {
  const match = /^s?(\d+)(\.0+)?$/.exec(String(id ?? '').trim());
  return match ? `s${match[1]}` : undefined;
}

/**
 * Reads the label CSV into a map from study key (`s50414267`) to labels (blank cells are absent).
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` for a missing file, `MEDSYN_ERR_MISSING_COLUMN` without
 *   `study_id` or any observation column, `MEDSYN_ERR_BAD_CSV` for a value other than 1, 0, -1 or blank
 * @example
 * ```ts
 * const labels = await readChexpertLabelCsv('mimic-cxr-2.0.0-chexpert.csv');
 * labels.get('s50414267')?.pleuralEffusion; // 1
 * ```
 */
export async function readChexpertLabelCsv(path: string): Promise<Map<string, Labels>> {
  const out = new Map<string, Labels>();
  if (!existsSync(path)) throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot read labels ${path}: no such file`, { file: path });
  const source = createReadStream(path);
  const rows = source.pipe(parse({ headers: true, trim: true }));
  // pipe() does not forward a read error to the parser: end the parse with it.
  source.on('error', (err) => rows.destroy(err));
  let line = 1;
  try {
    for await (const row of rows as AsyncIterable<Record<string, string>>) {
      line++;
      if (line === 2) {
        if (!('study_id' in row)) throw new MedsynError(ErrorCodes.MISSING_COLUMN, `Cannot read labels ${path}: no study_id column (the layout of mimic-cxr-2.0.0-chexpert.csv)`, { file: path });
        if (!OBSERVATIONS.some((observation) => OBSERVATION_NAMES[observation] in row)) {
          throw new MedsynError(ErrorCodes.MISSING_COLUMN, `Cannot read labels ${path}: no CheXpert observation column (e.g. "Pleural Effusion")`, { file: path });
        }
      }
      const key = studyKey(row['study_id']);
      if (!key) throw new MedsynError(ErrorCodes.BAD_CSV, `Cannot read labels ${path}: line ${line} has study_id ${JSON.stringify(row['study_id'])}`, { file: path, line });
      const labels: Labels = {};
      for (const observation of OBSERVATIONS) {
        const cell = row[OBSERVATION_NAMES[observation]];
        if (cell === undefined || cell === '') continue;
        const value = Number(cell);
        if (value !== 1 && value !== 0 && value !== -1) {
          throw new MedsynError(ErrorCodes.BAD_CSV, `Cannot read labels ${path}: line ${line}, ${OBSERVATION_NAMES[observation]} is ${JSON.stringify(cell)} (1.0, 0.0, -1.0 or blank)`, { file: path, line });
        }
        labels[observation] = value as LabelValue;
      }
      out.set(key, labels);
    }
  } catch (err) {
    if (err instanceof MedsynError) throw err;
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? ErrorCodes.NOT_FOUND : ErrorCodes.BAD_CSV;
    throw new MedsynError(code, `Cannot read labels ${path}: ${(err as Error).message}`, { file: path, cause: err });
  }
  return out;
}
