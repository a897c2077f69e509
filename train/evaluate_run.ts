/**
 * Evaluation of a trained run (`medsyn-eval`): zero-shot classification of the
 * 14 CheXpert observations from a positive and a negative prompt each,
 * image→text and text→image retrieval, and a linear probe on the frozen image
 * embeddings; written as `metrics.json` and a self-contained `report.html`.
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';
import { OBSERVATIONS, OBSERVATION_NAMES, type Labels, type Observation } from '../records.js';
import { readShards } from '../streams/shard_reader.js';
import { VERSION } from '../version.js';
import { pairOf, PairFeatures } from './_pair_features.js';
import { loadCheckpoint } from './checkpoint.js';
import { readChexpertLabelCsv, studyKey } from './chexpert_label_csv.js';
import { HeadEmbedder } from './contrastive_heads.js';
import { inHeldOutSplit, runCheckpoints, type RunConfig, type TrainLogEntry } from './contrastive_trainer.js';
import type { FloatArray } from './dtype.js';
import { loadFrozenEncoders } from './frozen_encoders.js';
import { linearProbe } from './linear_probe.js';
import { renderEvalReport } from './_eval_report.js';
import { macroAuroc, retrievalMetrics, similarityMatrix, type RetrievalMetrics } from './retrieval_metrics.js';
import type { SessionOptions } from './session.js';

/** A positive and a negative prompt. */
export interface PromptPair {
  positive: string;
  negative: string;
}

/**
 * The default zero-shot prompts: "<Observation>." against "No <observation>.", except
 * where reports say it otherwise: "No acute cardiopulmonary process." for No Finding,
 * "Support devices in place." for Support Devices, and "Pulmonary edema." against
 * "No pulmonary edema." for Edema (the phrase radiology reports use, so a text tower
 * trained on reports has seen it; with the bundled fixture towers the bare "Edema."
 * scored 0.77 where "Pulmonary edema." scored 0.98–0.99 on the same runs).
 */
export const DEFAULT_PROMPTS: Readonly<Record<Observation, PromptPair>> = Object.fromEntries(
  OBSERVATIONS.map((observation) => {
    const name = OBSERVATION_NAMES[observation];
    if (observation === 'noFinding') return [observation, { positive: 'No acute cardiopulmonary process.', negative: 'Acute cardiopulmonary process.' }];
    if (observation === 'supportDevices') return [observation, { positive: 'Support devices in place.', negative: 'No support devices.' }];
    if (observation === 'edema') return [observation, { positive: 'Pulmonary edema.', negative: 'No pulmonary edema.' }];
    return [observation, { positive: `${name[0]}${name.slice(1).toLowerCase()}.`, negative: `No ${name.toLowerCase()}.` }];
  }),
) as Record<Observation, PromptPair>;

/** Options of {@link evaluateRun}. */
export interface EvaluateRunOptions extends SessionOptions {
  /** A CSV of labels in the layout of `mimic-cxr-2.0.0-chexpert.csv`, matched by study id. @default the samples' JSON `labels` */
  labels?: string;
  /** Prompts replacing the defaults, per observation. @default {@link DEFAULT_PROMPTS} */
  prompts?: Partial<Record<Observation, PromptPair>>;
  /** `val`: only the keys of the run's validation split; `all`: every sample. @default 'all' */
  split?: 'val' | 'all';
  /** Samples used at most (the first ones read). @default 5000 */
  limit?: number;
  /** Samples retrieval is computed over (the first ones). @default 1000 */
  retrievalSize?: number;
  /** Train the linear probe. @default true */
  probe?: boolean;
  /** Share of keys that are the probe's test rows, by key hash. @default 0.3 */
  probeTestFraction?: number;
  /** Where metrics.json and report.html go. @default the run folder */
  out?: string;
  /** Write report.html. @default true */
  report?: boolean;
  /** Called after each batch of samples is embedded, and at each skipped one: for progress. @default none */
  onProgress?: (progress: { samples: number; skipped: number }) => void;
}

/** One observation's results. */
export interface ObservationMetrics {
  name: string;
  positives: number;
  negatives: number;
  zeroShotAuroc: number | null;
  probeAuroc: number | null;
  prompts: PromptPair;
}

/** What `metrics.json` holds. */
export interface EvalMetrics {
  format: 'medsyn-eval/1';
  medsyn: string;
  run: string;
  checkpoint: string;
  step: number;
  data: string[];
  split: 'val' | 'all';
  samples: number;
  labelled: number;
  labelSource: string;
  zeroShot: { macroAuroc: number | null; counted: string[] };
  probe: { macroAuroc: number | null; counted: string[]; trainCount: number; testCount: number } | null;
  retrieval: RetrievalMetrics;
  observations: Record<string, ObservationMetrics>;
  skipped: Record<string, number>;
}

/** The run's settings. @throws {MedsynError} `MEDSYN_ERR_BAD_RUN` when `config.json` is missing or not a run's */
export function readRunConfig(run: string): RunConfig {
  const path = join(run, 'config.json');
  if (!existsSync(path)) throw new MedsynError(ErrorCodes.BAD_RUN, `Cannot evaluate ${run}: no config.json (is it a medsyn-train run folder?)`, { file: path });
  const config = JSON.parse(readFileSync(path, 'utf8')) as RunConfig;
  if (config.format !== 'medsyn-train-run/1') throw new MedsynError(ErrorCodes.BAD_RUN, `Cannot evaluate ${run}: config.json is not a medsyn-train run's (format ${JSON.stringify(config.format)})`, { file: path });
  return config;
}

/**
 * Evaluates the last checkpoint of the run folder `run` on the samples of `sources`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_RUN` for a folder without config or checkpoint, or towers whose hashes differ
 *   from the run's; `MEDSYN_ERR_EMPTY_INPUT` when no sample is usable; the reader's, encoders' and engine's errors
 * @example
 * ```ts
 * const metrics = await evaluateRun('run1', 'test-shards/', { labels: 'mimic-cxr-2.0.0-chexpert.csv' });
 * metrics.zeroShot.macroAuroc;
 * ```
 */
export async function evaluateRun(run: string, sources: string | readonly string[], options: EvaluateRunOptions = {}): Promise<EvalMetrics> {
  const runDir = resolve(run);
  const sourceList = typeof sources === 'string' ? [sources] : [...sources];
  const split = options.split ?? 'all';
  if (split !== 'val' && split !== 'all') invalidOption('split', `must be val or all, got ${String(options.split)}`);
  const limit = options.limit ?? 5000;
  const retrievalSize = options.retrievalSize ?? 1000;
  const probeTestFraction = options.probeTestFraction ?? 0.3;
  if (!(probeTestFraction > 0 && probeTestFraction < 1)) invalidOption('probeTestFraction', `must be in (0, 1), got ${String(options.probeTestFraction)}`);
  const sessionOptions: SessionOptions = {};
  for (const key of ['device', 'deviceId', 'intraOpThreads', 'interOpThreads', 'optimization', 'logLevel'] as const) {
    if (options[key] !== undefined) (sessionOptions as Record<string, unknown>)[key] = options[key];
  }
  const config = readRunConfig(runDir);
  const last = runCheckpoints(runDir).at(-1);
  if (!last) throw new MedsynError(ErrorCodes.BAD_RUN, `Cannot evaluate ${run}: it has no checkpoint (ckpt-NNNNNN.safetensors)`, { file: runDir });
  const checkpoint = await loadCheckpoint(last.file);
  const parameters = new Map<string, FloatArray>([...checkpoint.parameters].map(([name, tensor]) => [name, tensor.data]));
  const csvLabels = options.labels ? await readChexpertLabelCsv(options.labels) : undefined;
  const prompts = { ...DEFAULT_PROMPTS, ...(options.prompts ?? {}) };

  // The towers where they were trained from, else the copies in model/.
  const pair = config.encoders.image === config.encoders.text;
  const copies = pair ? { image: join(runDir, 'model', 'encoder'), text: join(runDir, 'model', 'encoder') } : { image: join(runDir, 'model', 'image_encoder'), text: join(runDir, 'model', 'text_encoder') };
  const folders = existsSync(config.encoders.image) && existsSync(config.encoders.text) ? { image: config.encoders.image, text: config.encoders.text } : copies;
  const encoderDir = pair ? folders.image : `${folders.image} and ${folders.text}`;
  const encoders = await loadFrozenEncoders(folders, sessionOptions);
  const features = new PairFeatures(encoders);
  let embedder: HeadEmbedder | undefined;
  try {
    if (encoders.imageHash !== config.encoders.imageHash || encoders.textHash !== config.encoders.textHash) {
      throw new MedsynError(ErrorCodes.BAD_RUN, `Cannot evaluate ${run}: the towers in ${encoderDir} are not the ones it was trained on (their SHA-256 differ from config.json)`, { file: encoderDir });
    }
    embedder = await HeadEmbedder.create(config.heads, parameters, { ...sessionOptions, batch: config.batchSize });

    const keys: string[] = [];
    const captions: string[] = [];
    const labelRows: number[][] = [];
    const thumbnails: string[] = [];
    const imageEmbeds: Float32Array[] = [];
    const textEmbeds: Float32Array[] = [];
    const skipped: Record<string, number> = {};
    let labelled = 0;
    let batch: ReturnType<typeof pairOf>[] = [];
    const flush = async (): Promise<void> => {
      const pairs = batch.filter((pair): pair is Exclude<typeof pair, string> => typeof pair !== 'string');
      batch = [];
      if (pairs.length === 0) return;
      const encoded = await features.encode(pairs);
      imageEmbeds.push(...(await embedder!.embedImages(encoded.image)));
      textEmbeds.push(...(await embedder!.embedTexts(encoded.text)));
      for (const pair of pairs) {
        keys.push(pair.key);
        captions.push(pair.caption);
        let labels: Labels | undefined;
        if (csvLabels) labels = csvLabels.get(studyKey(pair.json['id']) ?? studyKey(pair.key) ?? '');
        else if (pair.json['labels'] && typeof pair.json['labels'] === 'object') labels = pair.json['labels'] as Labels;
        if (labels) labelled++;
        labelRows.push(OBSERVATIONS.map((observation) => labels?.[observation] ?? Number.NaN));
        if (thumbnails.length < retrievalSize) {
          const png = await sharp(pair.image).resize(96, 96, { fit: 'inside' }).png().toBuffer();
          thumbnails.push(`data:image/png;base64,${png.toString('base64')}`);
        }
      }
    };
    const progress = (): void => options.onProgress?.({ samples: keys.length, skipped: Object.values(skipped).reduce((sum, count) => sum + count, 0) });
    for await (const sample of readShards(sourceList)) {
      if (keys.length + batch.length >= limit) break;
      if (split === 'val' && !inHeldOutSplit(sample.key, config.valFraction)) continue;
      const pair = pairOf(sample);
      if (typeof pair === 'string') {
        skipped[pair] = (skipped[pair] ?? 0) + 1;
        progress();
        continue;
      }
      batch.push(pair);
      if (batch.length >= 64) {
        await flush();
        progress();
      }
    }
    await flush();
    progress();
    if (keys.length === 0) throw new MedsynError(ErrorCodes.EMPTY_INPUT, `Cannot evaluate on ${sourceList.join(' ')}: no usable sample${split === 'val' ? ' in the validation split' : ''}`);

    // Zero-shot: score = cos(image, positive prompt) − cos(image, negative prompt).
    const promptTexts = OBSERVATIONS.flatMap((observation) => [prompts[observation].positive, prompts[observation].negative]);
    const promptEmbeds = await embedder.embedTexts(await encoders.embedTexts(promptTexts));
    const dot = (u: ArrayLike<number>, v: ArrayLike<number>): number => {
      let sum = 0;
      for (let k = 0; k < u.length; k++) sum += u[k]! * v[k]!;
      return sum;
    };
    const scores: Record<string, number[]> = {};
    const truth: Record<string, number[]> = {};
    OBSERVATIONS.forEach((observation, o) => {
      scores[observation] = imageEmbeds.map((image) => dot(image, promptEmbeds[2 * o]!) - dot(image, promptEmbeds[2 * o + 1]!));
      truth[observation] = labelRows.map((row) => row[o]!);
    });
    const zeroShot = macroAuroc(scores, truth);

    let probe: EvalMetrics['probe'] = null;
    let probeAurocs: (number | null)[] = OBSERVATIONS.map(() => null);
    if (options.probe !== false && labelled > 0) {
      const train: number[] = [];
      const test: number[] = [];
      keys.forEach((key, i) => (inHeldOutSplit(`probe\n${key}`, probeTestFraction) ? test : train).push(i));
      if (train.length > 0 && test.length > 0) {
        probeAurocs = await linearProbe(imageEmbeds, labelRows, { train, test }, sessionOptions);
        const counted = OBSERVATIONS.filter((_, o) => probeAurocs[o] !== null);
        const sum = OBSERVATIONS.reduce((total, _, o) => total + (probeAurocs[o] ?? 0), 0);
        probe = { macroAuroc: counted.length > 0 ? sum / counted.length : null, counted, trainCount: train.length, testCount: test.length };
      }
    }

    const m = Math.min(keys.length, retrievalSize);
    const similarity = similarityMatrix(imageEmbeds.slice(0, m), textEmbeds.slice(0, m));
    const retrieval = retrievalMetrics(similarity, m);

    const observations: Record<string, ObservationMetrics> = {};
    OBSERVATIONS.forEach((observation, o) => {
      observations[observation] = {
        name: OBSERVATION_NAMES[observation],
        positives: labelRows.filter((row) => row[o] === 1).length,
        negatives: labelRows.filter((row) => row[o] === 0).length,
        zeroShotAuroc: zeroShot.perObservation[observation] ?? null,
        probeAuroc: probeAurocs[o] ?? null,
        prompts: prompts[observation],
      };
    });
    const metrics: EvalMetrics = {
      format: 'medsyn-eval/1',
      medsyn: VERSION,
      run: runDir,
      checkpoint: last.file,
      step: checkpoint.step,
      data: sourceList,
      split,
      samples: keys.length,
      labelled,
      labelSource: options.labels ?? 'sample JSON labels',
      zeroShot: { macroAuroc: zeroShot.macro, counted: zeroShot.counted },
      probe,
      retrieval,
      observations,
      skipped,
    };

    const out = resolve(options.out ?? runDir);
    mkdirSync(out, { recursive: true });
    writeAtomically(join(out, 'metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);
    if (options.report !== false) {
      const logPath = join(runDir, 'log.ndjson');
      const log = existsSync(logPath)
        ? readFileSync(logPath, 'utf8')
            .split('\n')
            .filter((line) => line.trim() !== '')
            .map((line) => JSON.parse(line) as TrainLogEntry)
        : [];
      // A few text queries with their top images.
      const queries = [];
      const seen = new Set<string>();
      for (let q = 0; q < m && queries.length < 4; q++) {
        if (seen.has(captions[q]!)) continue;
        seen.add(captions[q]!);
        const ranked = Array.from({ length: m }, (_, i) => i).sort((a, b) => similarity[b * m + q]! - similarity[a * m + q]!).slice(0, 5);
        queries.push({ caption: captions[q]!, results: ranked.map((i) => ({ thumbnail: thumbnails[i]!, caption: captions[i]!, match: i === q, score: similarity[i * m + q]! })) });
      }
      writeAtomically(join(out, 'report.html'), renderEvalReport(metrics, log, queries));
    }
    return metrics;
  } finally {
    features.close();
    await embedder?.release();
    await encoders.release();
  }
}

function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}
