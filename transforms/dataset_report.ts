/**
 * The dataset report of `medsyn report`: one streaming pass over a dataset's
 * shards gives totals, rejects by reason, the label distribution, quality score
 * histograms and a sample of thumbnails, written as one self-contained HTML page.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { ErrorCodes, invalidOption, MedsynError } from '../errors.js';
import { MANIFEST_FILE, PARTITION_MANIFEST, parseShardManifest, type ShardManifest } from '../streams/shard_manifest.js';
import { listShards, readShards } from '../streams/shard_reader.js';
import { VERSION } from '../version.js';
import { formatBytes, renderReportHtml } from './_report_html.js';
import { DatasetTally, sampleMetadata, type DatasetTotals } from './_report_tally.js';
import { ThumbnailReservoir, type Thumbnail } from './_report_thumbnails.js';

/** Options of {@link summarizeDataset} and {@link writeDatasetReport}. */
export interface DatasetReportOptions {
  /** NDJSON files of rejects (`--rejects` of medsyn-clean, medsyn-gen, medsyn-filter, medsyn-shard), counted by reason. @default [] */
  rejects?: readonly string[];
  /** Thumbnails of the uniform sample in the grid; 0 for no grid. @default 48 */
  thumbnails?: number;
  /** The longer side of a thumbnail, in pixels. @default 96 */
  thumbnailSize?: number;
  /** Seeds the choice of thumbnails. @default 0 */
  seed?: number;
  /** A shard that cannot be read: `fail`, or `skip` it and count it as a reject (`unreadable_shard`). @default 'fail' */
  onError?: 'skip' | 'fail';
  /** The page's title. @default 'medsyn dataset report' */
  title?: string;
  /** Called with the counts so far, after every sample (throttle it yourself). @default undefined */
  onProgress?: (progress: { samples: number; shards: number }) => void;
}

/** Where the samples came from. */
export interface ShardTotals {
  /** Shards the sources name. */
  listed: number;
  /** Shards read to the end. */
  read: number;
  /** Shards skipped under `onError: 'skip'`. */
  skipped: number;
  /** Bytes of the local shard files (remote shards are not counted). */
  bytes: number;
  /** Manifests found beside the shards (`manifest.json`, or the partitions' `manifest-pIIII.json`). */
  manifests: number;
  /** The first few errors of skipped shards. */
  errors: string[];
}

/** What {@link summarizeDataset} found: {@link DatasetTotals} plus where it came from. */
export interface DatasetSummary extends DatasetTotals {
  format: 'medsyn-report/1';
  medsyn: string;
  title: string;
  sources: string[];
  rejectFiles: string[];
  shards: ShardTotals;
  /** Cards of the thumbnail grid (see {@link Thumbnail}); not part of the JSON written by `--stats`. */
  thumbnails: Thumbnail[];
  seconds: number;
}

const MAX_ERRORS = 10;

/**
 * Reads every sample of `sources` once (files, folders, brace patterns, shard
 * lists, URLs, as {@link readShards} takes them) and counts what the report
 * shows, in constant memory; rejects come from the manifests and
 * `<shard>_stats.json` beside local shards and from the `rejects` files.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for bad options; the shard
 * reader's errors (`MEDSYN_ERR_NOT_FOUND`, `MEDSYN_ERR_CORRUPT_TAR`, …) unless
 * `onError: 'skip'`; `MEDSYN_ERR_NOT_FOUND` / `MEDSYN_ERR_READ_FAILED` for a
 * rejects file that is missing or holds a line that is not a reject
 * @example
 * ```ts
 * const summary = await summarizeDataset('out/', { rejects: ['gen-rejects.ndjson'] });
 * console.log(summary.samples, summary.labels.cardiomegaly.positive);
 * ```
 */
export async function summarizeDataset(sources: string | readonly string[], options: DatasetReportOptions = {}): Promise<DatasetSummary> {
  const started = performance.now();
  const thumbnails = options.thumbnails ?? 48;
  if (!Number.isSafeInteger(thumbnails) || thumbnails < 0) invalidOption('thumbnails', `must be a whole number ≥ 0, got ${String(options.thumbnails)}`);
  const size = options.thumbnailSize ?? 96;
  if (!Number.isSafeInteger(size) || size < 8 || size > 1024) invalidOption('thumbnailSize', `must be a whole number in 8 … 1024, got ${String(options.thumbnailSize)}`);
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed)) invalidOption('seed', `must be a whole number, got ${String(options.seed)}`);
  const onError = options.onError ?? 'fail';
  if (onError !== 'skip' && onError !== 'fail') invalidOption('onError', `must be 'skip' or 'fail', got ${String(options.onError)}`);
  const rejectFiles = [...(options.rejects ?? [])];

  const tally = new DatasetTally();
  const reservoir = new ThumbnailReservoir({ count: thumbnails, size, seed });
  const shards = await listShards(sources);
  const totals: ShardTotals = { listed: shards.length, read: 0, skipped: 0, bytes: 0, manifests: 0, errors: [] };
  await countBesideShards(shards, tally, totals);
  // Reject files first: a bad one fails the report before the long pass.
  for (const file of rejectFiles) await countRejectsFile(file, tally);

  const reader = readShards(shards, {
    onError,
    onShardError: (error) => {
      if (totals.errors.length < MAX_ERRORS) totals.errors.push(`${error.message} [${error.code}]`);
    },
    onReject: (reject) => tally.addReject(reject.reason, 'shard read'),
  });
  const seen = new Set<string>();
  for (;;) {
    const next = await reader.next();
    if (next.done) {
      totals.read = next.value.shards;
      totals.skipped = next.value.shardsSkipped;
      tally.addReject('unreadable_shard', 'shard read', [], next.value.shardsSkipped);
      break;
    }
    const sample = next.value;
    const metadata = sampleMetadata(sample.parts['json']);
    tally.add(sample.parts, metadata);
    await reservoir.offer(sample, metadata);
    if (options.onProgress) {
      if (sample.url !== undefined) seen.add(sample.url);
      options.onProgress({ samples: tally.samples, shards: seen.size });
    }
  }
  return {
    format: 'medsyn-report/1',
    medsyn: VERSION,
    title: options.title ?? 'medsyn dataset report',
    sources: typeof sources === 'string' ? [sources] : [...sources],
    rejectFiles,
    shards: totals,
    ...tally.totals(),
    thumbnails: reservoir.cards(),
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * Writes the report of `sources` to `out` as one self-contained HTML page (inline
 * CSS, SVG charts, thumbnails as data URIs, a small inline script for the label
 * filter; nothing fetched from the network). The page is written under a
 * temporary name beside `out` and renamed when complete.
 *
 * @throws {MedsynError} as {@link summarizeDataset}; `MEDSYN_ERR_WRITE_FAILED` when `out` cannot be written
 * @example
 * ```ts
 * const summary = await writeDatasetReport('out/', 'report.html', { thumbnails: 64 });
 * console.error(formatReportSummary(summary));
 * ```
 */
export async function writeDatasetReport(sources: string | readonly string[], out: string, options: DatasetReportOptions = {}): Promise<DatasetSummary> {
  const summary = await summarizeDataset(sources, options);
  await writeFileAtomic(out, renderReportHtml(summary));
  return summary;
}

/**
 * The summary as JSON for `--stats`: everything but the thumbnails.
 *
 * @example
 * ```ts
 * writeFileSync('report.json', JSON.stringify(reportStats(summary), null, 2));
 * ```
 */
export function reportStats(summary: DatasetSummary): Omit<DatasetSummary, 'thumbnails'> & { thumbnails: number } {
  return { ...summary, thumbnails: summary.thumbnails.length };
}

/**
 * The one-line summary for stderr.
 *
 * @example
 * ```ts
 * formatReportSummary(summary); // '240 samples (240 reports) in 4 shards, 1.2 MB; 3 rejects (too_short 2, no_section 1); 62 thumbnails in 1.40 s'
 * ```
 */
export function formatReportSummary(summary: DatasetSummary): string {
  const reasons = Object.entries(summary.rejects.byReason)
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ');
  const skipped = summary.shards.skipped > 0 ? ` (${summary.shards.skipped} skipped)` : '';
  return (
    `${summary.samples} samples (${summary.reports} reports) in ${summary.shards.read} shard${summary.shards.read === 1 ? '' : 's'}${skipped}, ${formatBytes(summary.shards.bytes)}; ` +
    `${summary.rejects.total} rejects${reasons ? ` (${reasons})` : ''}; ${summary.thumbnails.length} thumbnails in ${summary.seconds.toFixed(2)} s`
  );
}

/** Sizes of the local shards, rejects of the manifests and `<shard>_stats.json` beside them. */
async function countBesideShards(shards: readonly string[], tally: DatasetTally, totals: ShardTotals): Promise<void> {
  const folders = new Set<string>();
  for (const shard of shards) {
    if (shard === '-' || /^https?:\/\//iu.test(shard)) continue;
    folders.add(dirname(resolve(shard)));
    try {
      totals.bytes += (await stat(shard)).size;
    } catch {
      // A missing shard is reported when it is read, under the onError policy.
    }
    const failed = await statsFailures(shard);
    tally.addReject('failed', `${basename(shard).replace(/\.tar$/u, '')}_stats.json`, [], failed);
  }
  for (const folder of folders) {
    for (const manifest of await manifestsIn(folder)) {
      totals.manifests++;
      for (const [reason, count] of Object.entries(manifest.rejects ?? {})) {
        if (typeof count === 'number') tally.addReject(reason, join(basename(folder), manifest.file), [], count);
      }
    }
  }
}

/** `failed` of `<shard>_stats.json` (img2dataset's layout), 0 when there is none. */
async function statsFailures(shard: string): Promise<number> {
  if (!shard.endsWith('.tar')) return 0;
  try {
    const stats = JSON.parse(await readFile(`${shard.slice(0, -'.tar'.length)}_stats.json`, 'utf8')) as { failed?: unknown };
    return typeof stats.failed === 'number' && Number.isSafeInteger(stats.failed) && stats.failed > 0 ? stats.failed : 0;
  } catch {
    return 0;
  }
}

/** The folder's `manifest.json`, or else the manifests of its partitions. */
async function manifestsIn(folder: string): Promise<(ShardManifest & { file: string })[]> {
  const read = async (file: string): Promise<(ShardManifest & { file: string }) | undefined> => {
    let text: string;
    try {
      text = await readFile(join(folder, file), 'utf8');
    } catch {
      return undefined;
    }
    return { ...parseShardManifest(text, join(folder, file)), file };
  };
  const merged = await read(MANIFEST_FILE);
  if (merged) return [merged];
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return [];
  }
  const partitions = await Promise.all(names.filter((name) => PARTITION_MANIFEST.test(name)).sort().map(read));
  return partitions.filter((manifest) => manifest !== undefined);
}

/** Counts the rejects of one NDJSON file, line by line. */
async function countRejectsFile(file: string, tally: DatasetTally): Promise<void> {
  try {
    await stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MedsynError(code === 'ENOENT' ? ErrorCodes.NOT_FOUND : ErrorCodes.READ_FAILED, `Cannot read rejects file ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, {
      file,
      cause: err,
    });
  }
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === '') continue;
    let record: { reason?: unknown; reasons?: unknown } | null;
    try {
      record = JSON.parse(text) as typeof record;
    } catch {
      record = null;
    }
    if (!record || typeof record !== 'object' || typeof record.reason !== 'string' || record.reason === '') {
      lines.close();
      throw new MedsynError(ErrorCodes.READ_FAILED, `Cannot read rejects file ${file}: line ${line} is not a reject (a JSON object with a "reason"; is it a --rejects file?)`, { file, line });
    }
    const checks = Array.isArray(record.reasons) ? record.reasons.filter((check): check is string => typeof check === 'string') : [];
    tally.addReject(record.reason, basename(file), checks);
  }
}

/** Writes `text` to `path` under a temporary name beside it, then renames it. */
async function writeFileAtomic(path: string, text: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(text, 'utf8');
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true }).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    const detail =
      code === 'ENOSPC' || code === 'EDQUOT' ? `no space left on the device (${code})` : code === 'EISDIR' ? 'it is a folder (name an .html file)' : (err as Error).message;
    throw new MedsynError(ErrorCodes.WRITE_FAILED, `Cannot write ${path}: ${detail}`, { file: path, cause: err });
  }
}
