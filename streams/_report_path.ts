/**
 * The MIMIC-CXR reports layout, `files/pNN/pNNNNNNNN/sNNNNNNNN.txt`, shared by the zip
 * and folder readers: group folder (first two digits of the patient), patient, study.
 *
 * @module
 */

/** A group folder, `p10`. */
export const GROUP_NAME = /^p\d{2}$/;
/** A patient folder, `p10000032`: the subject id. */
export const SUBJECT_NAME = /^p\d{8}$/;
/** A report file, `s50414267.txt`: the study id and `.txt`. */
export const STUDY_FILE_NAME = /^(s\d{8})\.txt$/;

/** What the layout says about one report's path. */
export interface ReportPathIds {
  id: string;
  subjectId: string;
}

const ARCHIVE_PATH = /^files\/p\d{2}\/(p\d{8})\/(s\d{8})\.txt$/;

/** The layout the readers expect, for messages. */
export const LAYOUT = 'files/pNN/pNNNNNNNN/sNNNNNNNN.txt';

/**
 * The study and subject ids of an archive entry name, or why the name is not a report
 * of the layout. Names that climb out (`..`), absolute names and backslashes are
 * refused before anything else: such an entry is never read.
 */
export function parseArchivePath(name: string): ReportPathIds | { problem: string } {
  const match = ARCHIVE_PATH.exec(name);
  if (match !== null) return { id: match[2], subjectId: match[1] };
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return { problem: 'has an absolute path' };
  if (name.includes('\\')) return { problem: 'has a backslash in its name' };
  if (name.split('/').includes('..')) return { problem: "climbs out of the archive with '..'" };
  if (!name.startsWith('files/')) return { problem: 'is outside files/' };
  return { problem: `does not match ${LAYOUT}` };
}
