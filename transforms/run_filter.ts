/**
 * `medsyn-filter` as one library call: a sample tar stream in, the samples that pass
 * the quality checks out, the rest to a rejects file.
 *
 * @module
 */
import type { Writable } from 'node:stream';
import sharp from 'sharp';
import { invalidOption } from '../errors.js';
import { writeOutput } from '../streams/ndjson_writer.js';
import { RejectsFile } from '../streams/rejects_file.js';
import type { Sample } from '../streams/sample.js';
import { decodeSamples } from '../streams/tar_decoder.js';
import { encodeSamples } from '../streams/tar_encoder.js';
import type { GrayImage } from './image_stats.js';
import { QualityFilter, type AlignmentScorer, type QualityThresholds, type QualityVerdict } from './quality_filter.js';
import { formatQualitySummary, QualityTally, type QualitySummary } from './quality_tally.js';
import { loadClipAlignment } from '../models/clip_alignment.js';

/** The image parts medsyn-filter reads, in the order it looks for them. */
const IMAGE_PARTS = ['png', 'jpg', 'jpeg', 'webp'] as const;

/** Options of {@link runFilter}. */
export interface RunFilterOptions extends QualityThresholds {
  /** Scores image–caption alignment (the caption is the sample's `txt`). @default undefined */
  alignment?: AlignmentScorer;
  /** A CLIP-style model folder to load as `alignment` (released at the end). @default undefined */
  alignModel?: string;
  /** Write rejected samples as NDJSON (id, source, offset, reason, reasons, quality, message). @default undefined */
  rejects?: string;
  /** Images decoded at once (sharp, on the thread pool). @default 8 */
  concurrency?: number;
  /** tar entries' modification time, seconds since 1970. @default 0 */
  mtime?: number;
  /** End `output` when done (false for stdout). @default true */
  endOutput?: boolean;
  /** Called after every sample with the summary so far. @default undefined */
  onProgress?: (summary: FilterSummary) => void;
  /**
   * Stops taking samples when aborted (a signal): those decided are written, the tar
   * stream is ended, and the summary says `interrupted`. @default undefined
   */
  signal?: AbortSignal;
}

/** What a filtering run did. */
export interface FilterSummary {
  read: number;
  kept: number;
  /** Rejected samples by reason: `quality_failed`, `bad_image`, `bad_json`. */
  rejected: Partial<Record<FilterRejectReason, number>>;
  rejectedTotal: number;
  quality: QualitySummary;
  seconds: number;
  /** True when `signal` stopped the run before the input ended. */
  interrupted?: boolean;
}

/** Why medsyn-filter dropped a sample. */
export type FilterRejectReason = 'quality_failed' | 'bad_image' | 'bad_json';

/** One line of `--rejects`. */
export interface FilterReject {
  id: string;
  source: string;
  offset?: number;
  reason: FilterRejectReason;
  /** The failed checks, for `quality_failed`. */
  reasons?: string[];
  quality?: QualityVerdict;
  message: string;
}

interface Decoded {
  sample: Sample;
  image?: GrayImage;
  depth?: string;
  error?: string;
}

/**
 * Reads samples from `input` (a WebDataset tar stream), scores each image, and writes the
 * samples that pass to `output` with the verdict in their JSON (`quality`, replacing any
 * earlier one); the others go to `options.rejects`. Duplicates are searched among the
 * samples kept so far, in input order. A sample whose image is missing or cannot be
 * decoded is rejected as `bad_image`, one whose `.json` is not a JSON object as `bad_json`.
 *
 * @throws {MedsynError} the tar decoder's errors (`MEDSYN_ERR_CORRUPT_TAR`, …),
 *   `MEDSYN_ERR_INVALID_OPTION`, `MEDSYN_ERR_WRITE_FAILED`
 * @example
 * ```ts
 * const summary = await runFilter(process.stdin, process.stdout, { minContrast: 20, rejects: 'rejects.ndjson', endOutput: false });
 * ```
 */
export async function runFilter(input: AsyncIterable<Uint8Array>, output: Writable, options: RunFilterOptions = {}): Promise<FilterSummary> {
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) invalidOption('concurrency', `must be a positive integer, got ${concurrency}`);
  const filter = new QualityFilter(options);
  const loaded = options.alignModel !== undefined ? await loadClipAlignment(options.alignModel) : undefined;
  const alignment = options.alignment ?? loaded;
  const tally = new QualityTally();
  const started = performance.now();
  const summary: FilterSummary = { read: 0, kept: 0, rejected: {}, rejectedTotal: 0, quality: tally.summary(), seconds: 0 };
  const rejectsFile = options.rejects === undefined ? undefined : new RejectsFile<FilterReject>(options.rejects);

  async function reject(record: FilterReject): Promise<void> {
    summary.rejectedTotal++;
    summary.rejected[record.reason] = (summary.rejected[record.reason] ?? 0) + 1;
    if (rejectsFile) await rejectsFile.write(record);
  }

  // Decoding runs ahead on the thread pool, `concurrency` samples at a time; decisions are taken in order.
  async function* decoded(): AsyncGenerator<Decoded> {
    const window: Array<Promise<Decoded>> = [];
    for await (const sample of decodeSamples(input)) {
      window.push(decode(sample));
      if (window.length >= concurrency) yield await window.shift()!;
    }
    while (window.length > 0) yield await window.shift()!;
  }

  const progress = (): void => {
    if (!options.onProgress) return;
    summary.seconds = (performance.now() - started) / 1000;
    options.onProgress(summary);
  };

  async function* kept(): AsyncGenerator<Sample> {
    for await (const { sample, image, depth, error } of decoded()) {
      if (options.signal?.aborted) {
        summary.interrupted = true;
        return;
      }
      summary.read++;
      const place = { id: sample.key, source: sample.url ?? '-', ...(sample.offset !== undefined ? { offset: sample.offset } : {}) };
      if (image === undefined) {
        await reject({ ...place, reason: 'bad_image', message: error ?? 'no image' });
        progress();
        continue;
      }
      // Parsed once: it names the sample's report and receives the verdict.
      const json = parseJson(sample.parts.json);
      if (sample.parts.json !== undefined && json === undefined) {
        // Its verdict could not be recorded without losing what the JSON holds.
        await reject({ ...place, reason: 'bad_json', message: `sample ${sample.key} has a .json part that is not a JSON object` });
        progress();
        continue;
      }
      const caption = sample.parts.txt ? Buffer.from(sample.parts.txt).toString('utf8') : '';
      const similarity = alignment ? (await alignment.score([image], [caption]))[0] : undefined;
      const scores = filter.score(image, similarity);
      if (depth !== undefined && depth !== 'uchar') scores.reasons.push('wrong_depth');
      const report = reportKey(json, sample.key);
      const verdict = filter.decide(scores, sample.key, report);
      tally.add(verdict);
      if (!verdict.passed) {
        await reject({ ...place, reason: 'quality_failed', reasons: verdict.reasons, quality: verdict, message: `Failed the quality checks: ${verdict.reasons.join(', ')}` });
        progress();
        continue;
      }
      filter.keep(scores, sample.key, report);
      summary.kept++;
      progress();
      yield { key: sample.key, parts: { ...sample.parts, json: withQuality(json, sample.key, verdict) } };
    }
  }

  try {
    await writeOutput(encodeSamples(kept(), { mtime: options.mtime ?? 0 }), output, { end: options.endOutput ?? true, name: 'stdout' });
  } catch (err) {
    if (rejectsFile && rejectsFile.count === 0) rejectsFile.discard();
    else await rejectsFile?.close().catch(() => rejectsFile.discard());
    throw err;
  } finally {
    await loaded?.release();
  }
  await rejectsFile?.close();
  summary.quality = tally.summary();
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}

async function decode(sample: Sample): Promise<Decoded> {
  const part = IMAGE_PARTS.find((name) => sample.parts[name] !== undefined);
  if (part === undefined) return { sample, error: `sample ${sample.key} has no image (${IMAGE_PARTS.map((name) => `.${name}`).join(', ')})` };
  try {
    const input = sharp(sample.parts[part]!);
    const { depth } = await input.metadata();
    const { data, info } = await input.toColourspace('b-w').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { sample, image: { pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height }, ...(depth !== undefined ? { depth } : {}) };
  } catch (err) {
    return { sample, error: `cannot decode ${sample.key}.${part}: ${(err as Error).message}` };
  }
}

/** The report a sample belongs to: its JSON's `id` when it names a variant, else its key. */
function reportKey(json: Record<string, unknown> | undefined, key: string): string {
  return json && typeof json.id === 'string' && typeof json.variant === 'number' ? json.id : key;
}

function parseJson(bytes: Uint8Array | undefined): Record<string, unknown> | undefined {
  if (bytes === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The sample's JSON with `quality` set; a sample without JSON gets one with its key. */
function withQuality(json: Record<string, unknown> | undefined, key: string, verdict: QualityVerdict): Uint8Array {
  return Buffer.from(JSON.stringify({ ...(json ?? { key }), quality: verdict }), 'utf8');
}

/**
 * Lines for stderr: counts and rejects by reason, then the quality summary (failed
 * checks, score distributions).
 *
 * @example
 * ```ts
 * console.error(formatFilterSummary(summary));
 * ```
 */
export function formatFilterSummary(summary: FilterSummary): string {
  const reasons = Object.entries(summary.rejected)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ');
  const rate = summary.seconds > 0 ? summary.read / summary.seconds : 0;
  return [
    `${summary.interrupted ? 'interrupted: ' : ''}${summary.kept} kept, ${summary.rejectedTotal} rejected${reasons ? ` (${reasons})` : ''} of ${summary.read} read in ${summary.seconds.toFixed(2)} s (${rate.toFixed(1)} samples/s)`,
    formatQualitySummary(summary.quality),
  ].join('\n');
}
