/**
 * Reads a folder laid out like the MIMIC-CXR reports archive.
 *
 * @module
 */

import { readdirSync, statSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Reject, Report } from '../records.js';
import { emptyInput, notFound, readFailed } from './_input_errors.js';
import { readReportFile } from './_report_file.js';
import { GROUP_NAME, LAYOUT, STUDY_FILE_NAME, SUBJECT_NAME } from './_report_path.js';
import { byteLimit, DEFAULT_MAX_REPORT_BYTES, rejectOf } from './_report_text.js';

/** Options of {@link readDirReports}. */
export interface DirReportsOptions {
  /** A report file over this many bytes is rejected as `too_long` without being read. @default 1_048_576 */
  maxReportBytes?: number;
}

// Files are read synchronously (see _report_file.ts); the event loop gets a turn after this many.
const FILES_PER_TURN = 256;

interface Child {
  name: string;
  path: string;
  kind: 'dir' | 'file' | 'other';
}

/**
 * Reads every report of a folder laid out as `DIR/files/pNN/pNNNNNNNN/sNNNNNNNN.txt`
 * or `DIR/pNN/pNNNNNNNN/sNNNNNNNN.txt` (an extracted archive, or its `files/`), walking
 * it lazily in sorted order: one folder's names are listed at a time (they must be, to
 * sort them), never the whole tree. Files are read with synchronous calls in batches,
 * with a turn of the event loop between batches: ten times faster than a thread-pool
 * round trip per call for files of a few kilobytes.
 *
 * Each report: `id` the study (`s50414267`), `subjectId` the patient folder
 * (`p10000032`), `source` the file's path (`DIR/files/p10/p10000032/s50414267.txt`),
 * `text` strict UTF-8 without a BOM. Anything else in the tree (a stray file, a folder
 * off the layout, with everything in it) is one `bad_entry` reject; a file over
 * `maxReportBytes` is `too_long`, one that is not UTF-8 `not_utf8`.
 *
 * @param dir the folder
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` when `dir` cannot be opened,
 *   `MEDSYN_ERR_EMPTY_INPUT` when it has nothing in it, `MEDSYN_ERR_READ_FAILED` when a
 *   folder or file in it cannot be read, `MEDSYN_ERR_INVALID_OPTION`
 * @example
 * ```ts
 * for await (const item of readDirReports('mimic-cxr-reports')) {
 *   if (!isReject(item)) console.log(item.source);
 * }
 * ```
 */
export async function* readDirReports(dir: string, options: DirReportsOptions = {}): AsyncGenerator<Report | Reject> {
  const maxReportBytes = byteLimit('maxReportBytes', options.maxReportBytes, DEFAULT_MAX_REPORT_BYTES);
  let top: Child[];
  try {
    top = sortedChildren(dir);
  } catch (err) {
    throw notFound(dir, err);
  }
  if (top.length === 0) throw emptyInput(dir);
  const walk = { maxReportBytes, filesRead: 0 };
  for (const child of top) {
    if (child.kind === 'dir' && child.name === 'files') {
      for (const group of listed(child.path)) yield* readGroup(group, walk);
    } else if (child.kind === 'dir' && GROUP_NAME.test(child.name)) {
      yield* readGroup(child, walk);
    } else {
      yield offLayout(child, `it is neither files/ nor a pNN group folder (expected DIR/${LAYOUT})`);
    }
  }
}

async function* readGroup(group: Child, walk: { maxReportBytes: number; filesRead: number }): AsyncGenerator<Report | Reject> {
  if (group.kind !== 'dir' || !GROUP_NAME.test(group.name)) {
    yield offLayout(group, `it is not a pNN group folder (expected ${LAYOUT})`);
    return;
  }
  for (const subject of listed(group.path)) {
    if (subject.kind !== 'dir' || !SUBJECT_NAME.test(subject.name)) {
      yield offLayout(subject, `it is not a pNNNNNNNN patient folder (expected ${LAYOUT})`);
      continue;
    }
    for (const study of listed(subject.path)) {
      const match = STUDY_FILE_NAME.exec(study.name);
      if (study.kind !== 'file' || match === null) {
        yield offLayout(study, `it is not an sNNNNNNNN.txt report (expected ${LAYOUT})`);
        continue;
      }
      if (++walk.filesRead % FILES_PER_TURN === 0) await nextTurn();
      yield readReportFile(study.path, { id: match[1], subjectId: subject.name, source: study.path }, walk.maxReportBytes);
    }
  }
}

function offLayout(child: Child, why: string): Reject {
  return rejectOf({ source: child.path }, 'bad_entry', `Skipped ${child.kind === 'dir' ? 'folder' : 'file'} ${child.path}: ${why}`);
}

function listed(path: string): Child[] {
  try {
    return sortedChildren(path);
  } catch (err) {
    throw readFailed(path, err);
  }
}

/** The children of one folder, sorted by name (ids are fixed-width, so this is id order). */
function sortedChildren(path: string): Child[] {
  const children = readdirSync(path, { withFileTypes: true }).map((entry) => {
    const child = join(path, entry.name);
    return { name: entry.name, path: child, kind: kindOf(entry, child) };
  });
  return children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function kindOf(entry: Dirent, path: string): Child['kind'] {
  if (entry.isDirectory()) return 'dir';
  if (entry.isFile()) return 'file';
  if (!entry.isSymbolicLink()) return 'other';
  try {
    const target = statSync(path);
    return target.isDirectory() ? 'dir' : target.isFile() ? 'file' : 'other';
  } catch {
    return 'other';
  }
}
