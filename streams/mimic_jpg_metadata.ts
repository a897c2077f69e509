/**
 * The MIMIC-CXR-JPG image metadata (`mimic-cxr-2.0.0-metadata.csv`, or its `.csv.gz`):
 * which images each study has, and their view.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { ErrorCodes, MedsynError } from '../errors.js';
import { csvRecords } from './_csv_records.js';
import { inputBytes } from './_input_bytes.js';
import { inputName, notFound } from './_input_errors.js';

/** One image of a study. */
export interface StudyImage {
  dicomId: string;
  /** The patient, `p` and 8 digits. */
  subjectId: string;
  /** `ViewPosition`: PA, AP, LATERAL, LL, … (empty where the metadata has none). */
  view: string;
}

/** Options of {@link readStudyImages}. */
export interface StudyImagesOptions {
  /** Keep only images of these views (`ViewPosition`, any case), e.g. `['PA', 'AP']`. @default undefined (all) */
  views?: readonly string[];
}

const COLUMNS = ['dicom_id', 'subject_id', 'study_id', 'ViewPosition'] as const;

/**
 * Reads the metadata CSV into a map from study key (`s` and the study's digits) to its
 * images, in the file's order, keeping only `views` when given. About 377k rows: the
 * map takes some 60 MB, read once at start.
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND`, `MEDSYN_ERR_MISSING_COLUMN` naming the
 *   columns it needs, `MEDSYN_ERR_BAD_CSV`, `MEDSYN_ERR_READ_FAILED`
 * @example
 * ```ts
 * const studies = await readStudyImages('mimic-cxr-2.0.0-metadata.csv.gz', { views: ['PA', 'AP'] });
 * studies.get('s50414267'); // [{ dicomId: '02aa804e-…', subjectId: 'p10000032', view: 'PA' }]
 * ```
 */
export async function readStudyImages(file: string, options: StudyImagesOptions = {}): Promise<Map<string, StudyImage[]>> {
  const views = options.views?.map((view) => view.toUpperCase());
  let source: NodeJS.ReadableStream;
  try {
    const stream = createReadStream(file);
    await new Promise<void>((resolve, reject) => stream.once('open', () => resolve()).once('error', reject));
    if (/\.gz$/iu.test(file)) {
      const gunzip = createGunzip();
      stream.once('error', (err) => gunzip.destroy(err));
      source = stream.pipe(gunzip);
    } else {
      source = stream;
    }
  } catch (err) {
    throw notFound(file, err);
  }
  const studies = new Map<string, StudyImage[]>();
  for await (const record of csvRecords(inputBytes(source as AsyncIterable<Uint8Array>, file), { name: file, maxRecordBytes: 1 << 20 })) {
    if (record.kind === 'header') {
      const missing = COLUMNS.filter((column) => !record.fields.includes(column));
      if (missing.length > 0) {
        throw new MedsynError(
          ErrorCodes.MISSING_COLUMN,
          `Cannot read ${inputName(file)}: it has no column ${missing.join(', ')} (is it mimic-cxr-2.0.0-metadata.csv from MIMIC-CXR-JPG?)`,
          { file },
        );
      }
      continue;
    }
    if (record.kind !== 'row') continue;
    const row = record.row;
    const view = (row['ViewPosition'] ?? '').trim();
    if (views && !views.includes(view.toUpperCase())) continue;
    const study = `s${(row['study_id'] ?? '').trim().replace(/^s/iu, '')}`;
    const subject = `p${(row['subject_id'] ?? '').trim().replace(/^p/iu, '')}`;
    const image: StudyImage = { dicomId: (row['dicom_id'] ?? '').trim(), subjectId: subject, view };
    const list = studies.get(study);
    if (list) list.push(image);
    else studies.set(study, [image]);
  }
  return studies;
}
