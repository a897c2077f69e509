/**
 * `medsyn-gen` as one library call: read (and clean) reports, generate, write a sample
 * tar stream and the rejects.
 *
 * @module
 */
import type { Writable } from 'node:stream';
import { invalidOption } from '../errors.js';
import { createGenerator, type CreateGeneratorOptions } from '../models/create_generator.js';
import { loadClipTokenizer, type TokenCounter } from '../models/clip_tokenizer.js';
import type { Generator } from '../models/generator.js';
import { isReject, type CleanReport, type Reject, type RejectReason } from '../records.js';
import { writeOutput } from '../streams/ndjson_writer.js';
import { openCleanInput } from '../streams/open_clean_input.js';
import { readReports, type ReadReportsOptions } from '../streams/read_reports.js';
import { keepPartition } from '../streams/partition.js';
import { RejectsFile } from '../streams/rejects_file.js';
import type { Sample } from '../streams/sample.js';
import { encodeSamples } from '../streams/tar_encoder.js';
import { cleanReports, type CleanReportsOptions } from './clean_reports.js';
import { wordCountApproximation } from './fit_prompt.js';
import { generateSamples, type GenerateSamplesOptions } from './generate_samples.js';
import { QualityFilter, type AlignmentScorer, type QualityThresholds } from './quality_filter.js';
import { loadClipAlignment } from '../models/clip_alignment.js';
import { QualityTally, type QualitySummary } from './quality_tally.js';

/** Options of {@link runGenerate}. */
export interface RunGenerateOptions
  extends Omit<ReadReportsOptions, 'format'>,
    Omit<CleanReportsOptions, 'tokenCounter' | 'onError'>,
    Omit<GenerateSamplesOptions, 'onBatch' | 'onVerdict' | 'qualityFilter' | 'alignment'>,
    CreateGeneratorOptions {
  /**
   * The input format: `clean` for cleaned-report NDJSON (as `medsyn-clean` writes it), a
   * raw format of `readReports`, or `auto`: cleaned NDJSON when its first line is a cleaned
   * report, else whatever `readReports` detects.
   * @default 'auto'
   */
  format?: 'auto' | 'clean' | NonNullable<ReadReportsOptions['format']>;
  /** A CLIP tokenizer folder to fit prompts of raw reports with. @default undefined (word-count estimate) */
  tokenizer?: string;
  /** The prompt limit in tokens, BOS and EOS included. @default 77, or the tokenizer's */
  maxTokens?: number;
  /**
   * Quality checks with these thresholds (regenerating failures up to `retries` times),
   * or `false` for none.
   * @default {} (the default thresholds)
   */
  checks?: QualityThresholds | false;
  /**
   * A CLIP-style model folder (ONNX image and text encoders, as @huggingface/transformers
   * loads CLIP) to score image–caption alignment with, thresholded by `checks.minAlignment`.
   * @default undefined (no alignment score)
   */
  alignModel?: string;
  /** A running backend to use instead of starting `backend` (it is not closed). @default undefined */
  generator?: Generator;
  /** Write rejects as NDJSON to this file. Without it rejects are only counted. @default undefined */
  rejects?: string;
  /** Stop after this many input records (rejects included). @default Infinity */
  limit?: number;
  /** tar entries' modification time, seconds since 1970. @default 0 */
  mtime?: number;
  /** End `output` when done (false for stdout). @default true */
  endOutput?: boolean;
  /**
   * Keep only the reports whose key hashes to this partition (see `partitionOf`); the
   * others belong to other processes of the run and are not counted. @default undefined (all)
   */
  partition?: { index: number; count: number };
  /**
   * Stops reading input when aborted (a signal): the batches already read are finished
   * and written, the tar stream is ended, and the summary says `interrupted`.
   * @default undefined
   */
  signal?: AbortSignal;
  /** Called after every batch with the summary so far. @default undefined */
  onProgress?: (summary: GenerateSummary) => void;
}

/** What a generation run did. */
export interface GenerateSummary {
  /** Input records read: reports and reader rejects. */
  read: number;
  /** Samples written. */
  samples: number;
  /** Rejects by reason (cleaning, generation), and their total. */
  rejected: Partial<Record<RejectReason, number>>;
  rejectedTotal: number;
  /** Images the generator was asked for, and its wall time in seconds. */
  generated: number;
  generatorSeconds: number;
  /** Wall-clock seconds of the whole run. */
  seconds: number;
  backend: string;
  model: string;
  /** What the quality checks found, when they ran. */
  quality?: QualitySummary;
  /** True when `signal` stopped the reading before the input ended. */
  interrupted?: boolean;
}

/**
 * Reads `input` (a path or `-`), cleans raw reports (cleaned-report NDJSON is used as it
 * is), generates with the chosen backend and writes the samples to `output` as a
 * WebDataset tar stream; rejects go to `options.rejects`.
 *
 * @throws {MedsynError} the readers' file-level errors, `MEDSYN_ERR_BAD_TOKENIZER`,
 *   the backend's start errors, `MEDSYN_ERR_GENERATION_FAILED` under `onError: 'fail'`,
 *   `MEDSYN_ERR_WRITE_FAILED`
 * @example
 * ```ts
 * const summary = await runGenerate('reports.csv', process.stdout, { batchSize: 16, endOutput: false });
 * console.error(formatGenerateSummary(summary));
 * ```
 */
export async function runGenerate(input: string, output: Writable, options: RunGenerateOptions = {}): Promise<GenerateSummary> {
  const limit = options.limit ?? Infinity;
  if (!(limit === Infinity || (Number.isInteger(limit) && limit > 0))) invalidOption('limit', `must be a positive integer, got ${limit}`);
  const started = performance.now();

  let tokenCounter: TokenCounter = wordCountApproximation(options.maxTokens ?? 77);
  if (options.tokenizer !== undefined) {
    const tokenizer = await loadClipTokenizer(options.tokenizer);
    tokenCounter = options.maxTokens === undefined ? tokenizer : { ...tokenizer, maxTokens: options.maxTokens };
  }
  const checks = options.checks ?? {};
  const { format, ...rest } = options;
  const opened = await openCleanInput(input, { ...rest, format: format ?? 'auto' });
  // Raw reports are cut to the partition before cleaning: the other partitions' reports cost nothing more.
  const mine = <T extends { id?: string; source: string }>(items: AsyncIterable<T>): AsyncIterable<T> =>
    options.partition ? keepPartition(items, options.partition) : items;
  const records: AsyncIterable<CleanReport | Reject> =
    opened.kind === 'clean'
      ? mine(opened.records)
      : cleanReports(
          mine(
            readReports(opened.input, {
              ...rest,
              ...(format !== undefined && format !== 'clean' ? { format } : {}),
              ...(opened.stdin !== undefined ? { stdin: opened.stdin } : {}),
            }),
          ),
          { ...rest, tokenCounter, onError: 'skip' },
        );

  const alignment: (AlignmentScorer & { release(): Promise<void> }) | undefined =
    options.alignModel !== undefined && checks !== false ? await loadClipAlignment(options.alignModel) : undefined;
  let generator: Generator;
  try {
    generator = options.generator ?? (await createGenerator(options));
  } catch (err) {
    await alignment?.release();
    throw err;
  }
  const summary: GenerateSummary = {
    read: 0,
    samples: 0,
    rejected: {},
    rejectedTotal: 0,
    generated: 0,
    generatorSeconds: 0,
    seconds: 0,
    backend: generator.backend,
    model: generator.model,
  };
  const rejectsFile = options.rejects === undefined ? undefined : new RejectsFile(options.rejects);
  const size = checks === false ? undefined : (checks.size ?? options.size);
  const qualityFilter = checks === false ? undefined : new QualityFilter({ ...checks, ...(size !== undefined ? { size } : {}) });
  const tally = qualityFilter ? new QualityTally() : undefined;

  async function* limited(): AsyncGenerator<CleanReport | Reject> {
    if (summary.read >= limit) return;
    for await (const record of records) {
      if (options.signal?.aborted) {
        summary.interrupted = true;
        return;
      }
      summary.read++;
      yield record;
      if (summary.read >= limit) return;
    }
  }

  async function* samples(): AsyncGenerator<Sample> {
    const stage = generateSamples(limited(), generator, {
      ...options,
      ...(qualityFilter ? { qualityFilter, onVerdict: (verdict) => tally!.add(verdict) } : {}),
      ...(alignment ? { alignment } : {}),
      onBatch(images, milliseconds) {
        summary.generated += images;
        summary.generatorSeconds += milliseconds / 1000;
      },
    });
    let lastBatch = 0;
    for await (const item of stage) {
      if (isReject(item)) {
        summary.rejectedTotal++;
        summary.rejected[item.reason] = (summary.rejected[item.reason] ?? 0) + 1;
        if (rejectsFile) await rejectsFile.write(item);
      } else {
        summary.samples++;
        yield item;
      }
      if (options.onProgress && summary.generated !== lastBatch) {
        lastBatch = summary.generated;
        summary.seconds = (performance.now() - started) / 1000;
        options.onProgress(summary);
      }
    }
  }

  try {
    await writeOutput(encodeSamples(samples(), { mtime: options.mtime ?? 0 }), output, { end: options.endOutput ?? true, name: 'stdout' });
  } catch (err) {
    if (rejectsFile && rejectsFile.count === 0) rejectsFile.discard();
    else await rejectsFile?.close().catch(() => rejectsFile.discard());
    throw err;
  } finally {
    if (options.generator === undefined) await generator.close();
    await alignment?.release();
  }
  await rejectsFile?.close();
  summary.seconds = (performance.now() - started) / 1000;
  if (tally) summary.quality = tally.summary();
  return summary;
}

/**
 * One line for stderr: samples, rejects by reason, rates.
 *
 * @example
 * ```ts
 * formatGenerateSummary(summary); // '24 samples, 2 rejected (no_section 2) of 26 read in 1.20 s (20.0 images/s; phantom medsyn-phantom-1)'
 * ```
 */
export function formatGenerateSummary(summary: GenerateSummary): string {
  const reasons = Object.entries(summary.rejected)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ');
  const rate = summary.seconds > 0 ? summary.samples / summary.seconds : 0;
  return (
    `${summary.interrupted ? 'interrupted: ' : ''}${summary.samples} samples, ${summary.rejectedTotal} rejected${reasons ? ` (${reasons})` : ''} of ${summary.read} read ` +
    `in ${summary.seconds.toFixed(2)} s (${rate.toFixed(1)} images/s; ${summary.backend} ${summary.model})`
  );
}
