/**
 * The counting half of the dataset report: totals, label distribution, score
 * histograms and reject counts, added sample by sample in constant memory.
 *
 * @module
 */
import { QUALITY_SCORE_RANGES } from './quality_tally.js';
import { OBSERVATIONS, type Observation } from '../records.js';

/** Most distinct values a {@link BoundedCounter} names; the rest are counted under {@link OTHER}. */
const MAX_DISTINCT = 64;

/** The bucket of values past a counter's limit. */
export const OTHER = '(other)';

/**
 * Counts string values, naming at most `limit` of them: a dataset with a
 * thousand models still makes a report of bounded size.
 */
export class BoundedCounter {
  readonly #counts = new Map<string, number>();
  readonly #limit: number;

  constructor(limit = MAX_DISTINCT) {
    this.#limit = limit;
  }

  add(value: string, count = 1): void {
    const name = this.#counts.has(value) || this.#counts.size < this.#limit ? value : OTHER;
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + count);
  }

  /** The counts, largest first (ties by name). */
  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0)));
  }
}

/** The fixed range of one score's histogram. */
export interface ScoreRange {
  low: number;
  high: number;
  /** Bins on a `log1p` scale. */
  log?: boolean;
}

/**
 * The scores of a sample's `quality` verdict the report draws, with fixed bin
 * ranges: bins must be known before the first value for a one-pass histogram.
 * The ranges are those of the quality stage's summary (`QUALITY_SCORE_RANGES`).
 */
export const REPORT_SCORES = QUALITY_SCORE_RANGES satisfies Record<string, ScoreRange>;

/** A score the report draws. */
export type ReportScore = keyof typeof REPORT_SCORES;

/** The most bins a score histogram is drawn with. */
export const HISTOGRAM_BINS = 24;

/** Fixed bins counted per score: the drawn bins are groups of them over the range the values occupy. */
const FINE_BINS = HISTOGRAM_BINS * 20;

/** One score's histogram as JSON. */
export interface ScoreHistogram {
  count: number;
  min: number;
  max: number;
  mean: number;
  /** The range the bins cover: the part of the score's fixed range that the values occupy (values outside the fixed range go to its end bins). */
  low: number;
  high: number;
  log: boolean;
  /** Counts of at most {@link HISTOGRAM_BINS} equal bins over [low, high] (equal in `log1p` with `log`). */
  bins: number[];
}

/**
 * A histogram of {@link FINE_BINS} fixed bins over a score's range, with exact
 * count, min, max and mean; summarised as at most {@link HISTOGRAM_BINS} bins
 * over the occupied part of the range, so that a score that stays in a corner of
 * its range (noise of a clean generator) still gets a readable chart.
 */
class Histogram {
  readonly #range: Required<ScoreRange>;
  readonly #bins = new Float64Array(FINE_BINS);
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = -Infinity;

  constructor(range: ScoreRange) {
    this.#range = { log: false, ...range };
  }

  #scale(x: number): number {
    return this.#range.log ? Math.log1p(Math.max(x, 0)) : x;
  }

  /** The value at fine-bin edge `i` (0 … FINE_BINS). */
  #edge(i: number): number {
    const low = this.#scale(this.#range.low);
    const position = low + (i / FINE_BINS) * (this.#scale(this.#range.high) - low);
    return this.#range.log ? Math.expm1(position) : position;
  }

  add(value: number): void {
    if (!Number.isFinite(value)) return;
    this.#count++;
    this.#sum += value;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
    const low = this.#scale(this.#range.low);
    const position = (this.#scale(value) - low) / (this.#scale(this.#range.high) - low);
    const bin = Math.min(FINE_BINS - 1, Math.max(0, Math.floor(position * FINE_BINS)));
    this.#bins[bin]!++;
  }

  summary(): ScoreHistogram | undefined {
    if (this.#count === 0) return undefined;
    let first = this.#bins.findIndex((count) => count > 0);
    const last = FINE_BINS - 1 - [...this.#bins].reverse().findIndex((count) => count > 0);
    const group = Math.ceil((last - first + 1) / HISTOGRAM_BINS);
    const drawn = Math.ceil((last - first + 1) / group);
    first = Math.min(first, FINE_BINS - drawn * group);
    const bins = Array.from({ length: drawn }, (_, i) => this.#bins.subarray(first + i * group, first + (i + 1) * group).reduce((a, b) => a + b, 0));
    return {
      count: this.#count,
      min: this.#min,
      max: this.#max,
      mean: this.#sum / this.#count,
      low: this.#edge(first),
      high: this.#edge(first + drawn * group),
      log: this.#range.log,
      bins,
    };
  }
}

/** Positive, negative, uncertain and absent counts of one observation. */
export interface LabelCounts {
  positive: number;
  negative: number;
  uncertain: number;
  /** Samples whose report does not mention it (or that have no labels at all). */
  absent: number;
}

/** Rejects by reason, summed over every place they were counted. */
export interface RejectCounts {
  total: number;
  byReason: Record<string, number>;
  /** The checks failed by `quality_failed` rejects that list them (an image may fail several). */
  qualityReasons: Record<string, number>;
  /** Where they were counted: a rejects file, a manifest, shard stats, the read. */
  bySource: { source: string; total: number }[];
}

/** What {@link DatasetTally} counts. */
export interface DatasetTotals {
  samples: number;
  /** Runs of consecutive samples with one report id: the reports, as generators write variants together. */
  reports: number;
  /** Samples per report (`'1'`, `'2'`, …). */
  imagesPerReport: Record<string, number>;
  /** Bytes of the sample parts (images, captions, JSON). */
  sampleBytes: number;
  /** Bytes of the images alone. */
  imageBytes: number;
  /** Image formats (`png`, `jpg`, `webp`; `none` for a sample without an image). */
  formats: Record<string, number>;
  /** Image sizes as `WIDTHxHEIGHT`, from the JSON. */
  sizes: Record<string, number>;
  backends: Record<string, number>;
  models: Record<string, number>;
  /** The medsyn versions that made the samples. */
  versions: Record<string, number>;
  /** The attempt that was kept (`'1'` for the first). */
  attempts: Record<string, number>;
  /** Samples whose JSON is missing or not an object. */
  withoutMetadata: number;
  /** Samples whose JSON has a quality verdict. */
  withQuality: number;
  /** Samples whose verdict did not pass (a filter run with rejects kept, a report over unfiltered shards). */
  qualityFailed: number;
  labels: Record<Observation, LabelCounts>;
  scores: Partial<Record<ReportScore, ScoreHistogram>>;
  rejects: RejectCounts;
}

/** The image extensions a sample may carry, in the order they are looked for. */
export const IMAGE_PARTS = ['png', 'jpg', 'jpeg', 'webp'] as const;

/** The parsed JSON part of a sample, or `undefined` when it is missing or not an object. */
export function sampleMetadata(json: Uint8Array | undefined): Record<string, unknown> | undefined {
  if (!json) return undefined;
  try {
    const value = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8')) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The label of one observation in a sample's JSON, if it is one of 1, 0, -1. */
export function labelOf(metadata: Record<string, unknown> | undefined, observation: Observation): 1 | 0 | -1 | undefined {
  const labels = metadata?.['labels'];
  if (!labels || typeof labels !== 'object') return undefined;
  const value = (labels as Record<string, unknown>)[observation];
  return value === 1 || value === 0 || value === -1 ? value : undefined;
}

/**
 * Counts samples and rejects for the dataset report in constant memory:
 * counters of bounded size, fixed-bin histograms, and the id of the last
 * sample (to count reports).
 *
 * @example
 * ```ts
 * const tally = new DatasetTally();
 * for await (const sample of readShards('out/')) tally.add(sample.parts, sampleMetadata(sample.parts.json));
 * tally.addReject('quality_failed', 'rejects.ndjson', ['blurry']);
 * console.log(tally.totals().labels.cardiomegaly.positive);
 * ```
 */
export class DatasetTally {
  #samples = 0;
  #reports = 0;
  #lastId: string | undefined;
  #run = 0;
  readonly #imagesPerReport = new BoundedCounter(32);
  #sampleBytes = 0;
  #imageBytes = 0;
  readonly #formats = new BoundedCounter();
  readonly #sizes = new BoundedCounter();
  readonly #backends = new BoundedCounter();
  readonly #models = new BoundedCounter();
  readonly #versions = new BoundedCounter();
  readonly #attempts = new BoundedCounter(32);
  #withoutMetadata = 0;
  #withQuality = 0;
  #qualityFailed = 0;
  readonly #labels = Object.fromEntries(OBSERVATIONS.map((o) => [o, { positive: 0, negative: 0, uncertain: 0, absent: 0 }])) as Record<Observation, LabelCounts>;
  readonly #scores = Object.fromEntries(Object.entries(REPORT_SCORES).map(([name, range]) => [name, new Histogram(range)])) as Record<ReportScore, Histogram>;
  #rejectTotal = 0;
  readonly #rejectReasons = new BoundedCounter();
  readonly #qualityReasons = new BoundedCounter();
  readonly #rejectSources = new BoundedCounter();

  /** Samples counted so far. */
  get samples(): number {
    return this.#samples;
  }

  /** Counts one sample: its parts and its parsed JSON (`undefined` when it has none). */
  add(parts: Record<string, Uint8Array>, metadata: Record<string, unknown> | undefined): void {
    this.#samples++;
    for (const bytes of Object.values(parts)) this.#sampleBytes += bytes.byteLength;
    const format = IMAGE_PARTS.find((extension) => parts[extension] !== undefined);
    this.#formats.add(format === 'jpeg' ? 'jpg' : (format ?? 'none'));
    if (format) this.#imageBytes += parts[format]!.byteLength;

    const id = typeof metadata?.['id'] === 'string' ? metadata['id'] : undefined;
    if (id === undefined || id !== this.#lastId) {
      this.#closeRun();
      this.#reports++;
      this.#lastId = id;
    }
    this.#run++;

    if (!metadata) {
      this.#withoutMetadata++;
      for (const observation of OBSERVATIONS) this.#labels[observation].absent++;
      return;
    }
    const text = (name: string): string | undefined => (typeof metadata[name] === 'string' ? (metadata[name] as string) : undefined);
    const backend = text('backend');
    if (backend !== undefined) this.#backends.add(backend);
    const model = text('model');
    if (model !== undefined) this.#models.add(model);
    const version = text('medsyn');
    if (version !== undefined) this.#versions.add(version);
    const { width, height, attempt } = metadata;
    if (typeof width === 'number' && typeof height === 'number') this.#sizes.add(`${width}x${height}`);
    if (typeof attempt === 'number' && Number.isInteger(attempt) && attempt >= 0) this.#attempts.add(String(attempt + 1));

    for (const observation of OBSERVATIONS) {
      const value = labelOf(metadata, observation);
      const counts = this.#labels[observation];
      if (value === 1) counts.positive++;
      else if (value === 0) counts.negative++;
      else if (value === -1) counts.uncertain++;
      else counts.absent++;
    }

    const quality = metadata['quality'];
    if (quality && typeof quality === 'object') {
      this.#withQuality++;
      const verdict = quality as Record<string, unknown>;
      if (verdict['passed'] === false) this.#qualityFailed++;
      for (const name of Object.keys(REPORT_SCORES) as ReportScore[]) {
        const value = verdict[name];
        if (typeof value === 'number') this.#scores[name].add(value);
      }
    }
  }

  /**
   * Counts `count` rejects with `reason`, found in `source`; `checks` are the
   * quality checks a `quality_failed` reject failed.
   */
  addReject(reason: string, source: string, checks: readonly string[] = [], count = 1): void {
    if (count <= 0) return;
    this.#rejectTotal += count;
    this.#rejectReasons.add(reason, count);
    this.#rejectSources.add(source, count);
    for (const check of checks) this.#qualityReasons.add(check, count);
  }

  /** The counts so far. */
  totals(): DatasetTotals {
    const imagesPerReport = this.#imagesPerReport.toJSON();
    // The run in progress counts too, without closing it: totals() may be called mid-stream.
    if (this.#run > 0) imagesPerReport[String(this.#run)] = (imagesPerReport[String(this.#run)] ?? 0) + 1;
    const scores: DatasetTotals['scores'] = {};
    for (const name of Object.keys(REPORT_SCORES) as ReportScore[]) {
      const summary = this.#scores[name].summary();
      if (summary) scores[name] = summary;
    }
    return {
      samples: this.#samples,
      reports: this.#reports,
      imagesPerReport: Object.fromEntries(Object.entries(imagesPerReport).sort(([a], [b]) => Number(a) - Number(b))),
      sampleBytes: this.#sampleBytes,
      imageBytes: this.#imageBytes,
      formats: this.#formats.toJSON(),
      sizes: this.#sizes.toJSON(),
      backends: this.#backends.toJSON(),
      models: this.#models.toJSON(),
      versions: this.#versions.toJSON(),
      attempts: Object.fromEntries(Object.entries(this.#attempts.toJSON()).sort(([a], [b]) => Number(a) - Number(b))),
      withoutMetadata: this.#withoutMetadata,
      withQuality: this.#withQuality,
      qualityFailed: this.#qualityFailed,
      labels: structuredClone(this.#labels),
      scores,
      rejects: {
        total: this.#rejectTotal,
        byReason: this.#rejectReasons.toJSON(),
        qualityReasons: this.#qualityReasons.toJSON(),
        bySource: Object.entries(this.#rejectSources.toJSON()).map(([source, total]) => ({ source, total })),
      },
    };
  }

  #closeRun(): void {
    if (this.#run > 0) this.#imagesPerReport.add(String(this.#run));
    this.#run = 0;
  }
}
