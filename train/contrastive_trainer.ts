/**
 * The streaming contrastive trainer: samples stream from shards (shard order
 * shuffled per epoch, a sample shuffle buffer), a validation split is held out
 * by key hash, frozen towers turn each pair into features (through an optional
 * on-disk cache), and projection heads with a learnable temperature are trained
 * with symmetric InfoNCE, AdamW and a warm-up + cosine schedule — one
 * onnxruntime run per step. Every `evalEvery` steps the validation loss and
 * retrieval R@K are logged; checkpoints resume exactly; the heads are exported
 * as ONNX beside a copy of the towers.
 *
 * Run folder: `config.json` (the settings), `log.ndjson` (one JSON object per
 * step, evaluation and skipped sample), `ckpt-NNNNNN.safetensors`, and `model/`
 * (`image_embedder.onnx`, `text_embedder.onnx`, `image_head.onnx`, `text_head.onnx`, `encoder/` with the towers,
 * `model.json` saying how they chain).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';
import { readShards } from '../streams/shard_reader.js';
import { VERSION } from '../version.js';
import { pairOf, PairFeatures, type Pair, type PairSkipReason } from './_pair_features.js';
import { writeEmbedders, type WrittenEmbedders } from './_embedders.js';
import { adamw } from './adamw.js';
import { buildHeads, contrastiveLoss, exportHeads, HeadEmbedder, hostContrastiveLoss, HEAD_KINDS, type HeadShape } from './contrastive_heads.js';
import type { FloatArray } from './dtype.js';
import { loadFrozenEncoders, type FrozenEncoders, type TowerFolders } from './frozen_encoders.js';
import { Graph } from './graph.js';
import { retrievalMetrics, similarityMatrix, type RetrievalMetrics } from './retrieval_metrics.js';
import { warmupCosine } from './schedule.js';
import type { SessionOptions } from './session.js';
import { trainStep, type TrainStep } from './train_step.js';

/** Options of {@link trainContrastive}. */
export interface ContrastiveTrainerOptions extends SessionOptions {
  /**
   * The frozen towers: a CLIP-style ONNX model folder, an image tower folder and a text tower folder
   * (see {@link loadFrozenEncoders}), or loaded encoders (not released here).
   */
  encoders: string | TowerFolders | FrozenEncoders;
  /** The head kind. @default 'linear' */
  head?: HeadShape['head'];
  /** The shared embedding size. @default 64 */
  embedDim?: number;
  /** The MLP head's hidden width. @default 256 */
  hiddenDim?: number;
  /** Pairs per step (fixed: the last partial batch of an epoch is dropped). @default 32 */
  batchSize?: number;
  /** Passes over the training split. @default 10 */
  epochs?: number;
  /** Optimizer steps in all; overrides `epochs`. @default epochs × ⌊train pairs / batchSize⌋ */
  steps?: number;
  /** The peak learning rate. @default 1e-3 */
  lr?: number;
  /** Steps of linear warm-up. @default a tenth of the steps, at most 500 */
  warmupSteps?: number;
  /** AdamW's decoupled weight decay (matrices only). @default 0.1 */
  weightDecay?: number;
  /** Share of keys held out for validation, by key hash. @default 0.1 */
  valFraction?: number;
  /** Evaluate (validation loss, R@K) every this many steps, and after the last. @default 50 */
  evalEvery?: number;
  /** Write a checkpoint every this many steps, and after the last. @default evalEvery */
  checkpointEvery?: number;
  /** Seed of the heads' initialisation and of the shard and sample shuffles. @default 0 */
  seed?: number;
  /** Samples in the shuffle buffer. @default 1000 */
  shuffleBuffer?: number;
  /** Folder of the feature cache. @default none (encode every time) */
  cache?: string;
  /** Continue from the run's last checkpoint when there is one. @default false */
  resume?: boolean;
  /** Stop after the current step: a checkpoint is written, and `resume` continues. @default none */
  signal?: AbortSignal;
  /** Called with every log entry as it is written. @default none */
  onLog?: (entry: TrainLogEntry) => void;
  /** Called once the plan is known, before the first step: for progress and ETA. @default none */
  onStart?: (plan: { startStep: number; totalSteps: number; trainCount: number; valCount: number }) => void;
}

/** One line of `log.ndjson`. */
export type TrainLogEntry =
  | { event: 'step'; step: number; epoch: number; loss: number; lr: number; logitScale: number; seconds: number }
  | ({ event: 'eval'; step: number; valLoss: number; logitScale: number } & Omit<RetrievalMetrics, 'count'> & { valCount: number })
  | { event: 'skip'; key: string; reason: PairSkipReason; url?: string };

/** What {@link trainContrastive} did. */
export interface TrainSummary {
  /** The run folder. */
  run: string;
  /** Steps done in all (the resumed ones included). */
  steps: number;
  /** Steps this call did. */
  stepsRun: number;
  /** The planned steps. */
  totalSteps: number;
  /** Whether it stopped early on `signal`. */
  stopped: boolean;
  trainCount: number;
  valCount: number;
  /** Samples skipped (no image, no caption, undecodable image), by reason. */
  skipped: Record<string, number>;
  /** The loss of the last step. */
  lastLoss: number;
  /** The last evaluation, if any. */
  lastEval?: Extract<TrainLogEntry, { event: 'eval' }>;
  /** The last checkpoint written. */
  checkpoint?: string;
  /** The exported model folder (only when training finished). */
  model?: string;
  cache: { hits: number; misses: number };
  /** Seconds in all, in the encoders, and in the heads' steps. */
  seconds: { total: number; encoders: number; heads: number };
}

/** The settings recorded in `config.json`; a resume must find the same ones. */
export interface RunConfig {
  format: 'medsyn-train-run/1';
  medsyn: string;
  sources: string[];
  encoders: { image: string; text: string; imageModel: string; textModel: string; imageHash: string; textHash: string };
  heads: HeadShape;
  batchSize: number;
  totalSteps: number;
  stepsPerEpoch: number;
  lr: number;
  warmupSteps: number;
  weightDecay: number;
  valFraction: number;
  evalEvery: number;
  checkpointEvery: number;
  seed: number;
  shuffleBuffer: number;
  trainCount: number;
  valCount: number;
}

/**
 * Whether `key` belongs to the held-out split of `fraction`: the first 4 bytes of
 * SHA-256(`medsyn-split-v1\n<key>`) as a number in [0, 1) below `fraction`.
 * Stable across runs, shards and partitions.
 *
 * @example
 * ```ts
 * const validation = samples.filter((s) => inHeldOutSplit(s.key, 0.1));
 * ```
 */
export function inHeldOutSplit(key: string, fraction: number): boolean {
  const digest = createHash('sha256').update(`medsyn-split-v1\n${key}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32 < fraction;
}

function positiveInteger(name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min) invalidOption(name, `must be a whole number ≥ ${min}, got ${String(value)}`);
  return v;
}

/** The checkpoint files of a run, by step, oldest first. */
export function runCheckpoints(run: string): { step: number; file: string }[] {
  if (!existsSync(run)) return [];
  return readdirSync(run)
    .map((name) => /^ckpt-(\d{6,})\.safetensors$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ step: Number(match[1]), file: join(run, match[0]) }))
    .sort((a, b) => a.step - b.step);
}

/** The name of the checkpoint after `step` steps. */
export function checkpointName(step: number): string {
  return `ckpt-${String(step).padStart(6, '0')}.safetensors`;
}

/**
 * Trains projection heads on frozen towers from the pairs in `sources`
 * (paths, folders, brace patterns, URLs: whatever `readShards` reads), writing
 * the run into the folder `run`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for bad options; `MEDSYN_ERR_EMPTY_INPUT` when there are fewer
 *   training pairs than a batch or no validation pair; `MEDSYN_ERR_BAD_RUN` when `resume` finds a run made with
 *   other settings (or a run exists and `resume` is off); the shard reader's, encoders' and engine's errors
 * @example
 * ```ts
 * const summary = await trainContrastive('out/shard-{000000..000009}.tar', 'run1', { encoders: 'fixtures/clip-tiny', epochs: 5 });
 * summary.lastEval?.imageToText.r1;
 * ```
 */
export async function trainContrastive(sources: string | readonly string[], run: string, options: ContrastiveTrainerOptions): Promise<TrainSummary> {
  const started = performance.now();
  const sourceList = typeof sources === 'string' ? [sources] : [...sources];
  if (sourceList.length === 0) invalidOption('sources', 'name at least one shard, folder or pattern');
  const head = options.head ?? 'linear';
  if (!HEAD_KINDS.includes(head)) invalidOption('head', `must be ${HEAD_KINDS.join(' or ')}, got ${String(head)}`);
  const batchSize = positiveInteger('batchSize', options.batchSize, 32, 2);
  const embedDim = positiveInteger('embedDim', options.embedDim, 64);
  const hiddenDim = positiveInteger('hiddenDim', options.hiddenDim, 256);
  const epochs = positiveInteger('epochs', options.epochs, 10);
  if (options.steps !== undefined) positiveInteger('steps', options.steps, 1);
  const lr = options.lr ?? 1e-3;
  if (!(lr > 0 && Number.isFinite(lr))) invalidOption('lr', `must be a number > 0, got ${String(options.lr)}`);
  const weightDecay = options.weightDecay ?? 0.1;
  if (!(weightDecay >= 0)) invalidOption('weightDecay', `must be ≥ 0, got ${String(options.weightDecay)}`);
  const valFraction = options.valFraction ?? 0.1;
  if (!(valFraction > 0 && valFraction < 1)) invalidOption('valFraction', `must be in (0, 1), got ${String(options.valFraction)}`);
  const evalEvery = positiveInteger('evalEvery', options.evalEvery, 50);
  const checkpointEvery = positiveInteger('checkpointEvery', options.checkpointEvery, evalEvery);
  const seed = positiveInteger('seed', options.seed, 0, 0);
  const shuffleBuffer = positiveInteger('shuffleBuffer', options.shuffleBuffer, 1000, 0);
  const runDir = resolve(run);
  const sessionOptions: SessionOptions = {};
  for (const key of ['device', 'deviceId', 'intraOpThreads', 'interOpThreads', 'optimization', 'logLevel'] as const) {
    if (options[key] !== undefined) (sessionOptions as Record<string, unknown>)[key] = options[key];
  }

  const existing = runCheckpoints(runDir);
  const configPath = join(runDir, 'config.json');
  if (!options.resume && (existing.length > 0 || existsSync(configPath))) {
    throw new MedsynError(ErrorCodes.BAD_RUN, `Cannot train into ${run}: it already holds a run (pass resume to continue it, or choose another folder)`, { file: runDir });
  }
  mkdirSync(runDir, { recursive: true });
  const logPath = join(runDir, 'log.ndjson');
  const skipped: Record<string, number> = {};
  const log = (entry: TrainLogEntry): void => {
    appendFileSync(logPath, `${JSON.stringify(entry)}\n`);
    options.onLog?.(entry);
  };

  const given = options.encoders;
  const owned = typeof given === 'string' || !('embedImages' in given);
  const encoders = owned ? await loadFrozenEncoders(given as string | TowerFolders, sessionOptions) : (given as FrozenEncoders);
  const features = new PairFeatures(encoders, options.cache);
  let step: TrainStep | undefined;
  let headsMs = 0;
  try {
    // Pass 0: count the training pairs, encode the validation pairs once.
    const valPairs: Pair[] = [];
    const valImage: Float32Array[] = [];
    const valText: Float32Array[] = [];
    let trainCount = 0;
    const resumedLog = options.resume && existing.length > 0;
    // Validation features stay in memory (valFraction of the data): every evaluation reuses them.
    const flushVal = async (): Promise<void> => {
      const pending = valPairs.slice(valImage.length);
      if (pending.length === 0) return;
      const encoded = await features.encode(pending);
      valImage.push(...encoded.image);
      valText.push(...encoded.text);
    };
    for await (const sample of readShards(sourceList)) {
      const pair = pairOf(sample);
      if (typeof pair === 'string') {
        skipped[pair] = (skipped[pair] ?? 0) + 1;
        if (!resumedLog) log({ event: 'skip', key: sample.key, reason: pair, ...(sample.url ? { url: sample.url } : {}) });
        continue;
      }
      if (!inHeldOutSplit(pair.key, valFraction)) {
        trainCount++;
        continue;
      }
      valPairs.push(pair);
      if (valPairs.length % 64 === 0) await flushVal();
    }
    await flushVal();
    const stepsPerEpoch = Math.floor(trainCount / batchSize);
    if (stepsPerEpoch === 0) {
      throw new MedsynError(ErrorCodes.EMPTY_INPUT, `Cannot train on ${sourceList.join(' ')}: ${trainCount} training pairs, fewer than one batch of ${batchSize} (lower the batch size or add data)`);
    }
    if (valPairs.length === 0) throw new MedsynError(ErrorCodes.EMPTY_INPUT, `Cannot train on ${sourceList.join(' ')}: no pair falls in the validation split (raise valFraction)`);
    const totalSteps = options.steps ?? epochs * stepsPerEpoch;
    const warmupSteps = options.warmupSteps ?? Math.min(500, Math.floor(totalSteps / 10));
    if (!Number.isSafeInteger(warmupSteps) || warmupSteps < 0 || warmupSteps > totalSteps) invalidOption('warmupSteps', `must be a whole number in [0, ${totalSteps}], got ${String(options.warmupSteps)}`);

    const shape: HeadShape = { head, imageSize: encoders.imageSize, textSize: encoders.textSize, embedDim, hiddenDim };
    const config: RunConfig = {
      format: 'medsyn-train-run/1',
      medsyn: VERSION,
      sources: sourceList,
      encoders: { image: encoders.folders.image, text: encoders.folders.text, imageModel: encoders.imageModel, textModel: encoders.textModel, imageHash: encoders.imageHash, textHash: encoders.textHash },
      heads: shape,
      batchSize,
      totalSteps,
      stepsPerEpoch,
      lr,
      warmupSteps,
      weightDecay,
      valFraction,
      evalEvery,
      checkpointEvery,
      seed,
      shuffleBuffer,
      trainCount,
      valCount: valPairs.length,
    };
    if (existsSync(configPath)) {
      const before = JSON.parse(readFileSync(configPath, 'utf8')) as RunConfig;
      const differing = (Object.keys(config) as (keyof RunConfig)[]).filter((key) => key !== 'medsyn' && JSON.stringify(before[key]) !== JSON.stringify(config[key]));
      if (differing.length > 0) {
        throw new MedsynError(ErrorCodes.BAD_RUN, `Cannot resume ${run}: its ${differing.join(', ')} differ from this call's (resume with the same data and settings, or train into a new folder)`, { file: configPath });
      }
    } else {
      writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
    }

    const graph = new Graph({ name: 'medsyn-contrastive', seed });
    const heads = buildHeads(graph, batchSize, shape);
    const loss = contrastiveLoss(heads);
    step = await trainStep(graph, loss, {
      ...sessionOptions,
      optimizer: adamw({ lr: warmupCosine({ peak: lr, warmupSteps, totalSteps }), weightDecay }),
    });
    let checkpoint: string | undefined;
    if (options.resume && existing.length > 0) {
      checkpoint = existing.at(-1)!.file;
      await step.load(checkpoint);
      // The log continues from the checkpoint: lines of steps after it are replayed.
      const kept = readFileSync(logPath, 'utf8')
        .split('\n')
        .filter((line) => {
          if (line === '') return false;
          const entry = JSON.parse(line) as { step?: number };
          return entry.step === undefined || entry.step <= step!.step;
        });
      writeFileSync(`${logPath}.tmp`, kept.map((line) => `${line}\n`).join(''));
      renameSync(`${logPath}.tmp`, logPath);
    }

    const logitScaleOf = (): number => Math.exp(step!.parameters().get('logit_scale')![0]!);
    let lastEval: Extract<TrainLogEntry, { event: 'eval' }> | undefined;
    const evaluate = async (): Promise<void> => {
      const embedder = await HeadEmbedder.create(shape, step!.parameters(), { ...sessionOptions, batch: batchSize });
      try {
        const images = await embedder.embedImages(valImage);
        const texts = await embedder.embedTexts(valText);
        const metrics = retrievalMetrics(similarityMatrix(images, texts), images.length);
        lastEval = {
          event: 'eval',
          step: step!.step,
          valLoss: hostContrastiveLoss(images, texts, logitScaleOf()),
          logitScale: logitScaleOf(),
          valCount: metrics.count,
          imageToText: metrics.imageToText,
          textToImage: metrics.textToImage,
        };
        log(lastEval);
      } finally {
        await embedder.release();
      }
    };
    const save = async (): Promise<void> => {
      checkpoint = join(runDir, checkpointName(step!.step));
      await step!.save(checkpoint, { config: { run: 'medsyn-train-run/1', heads: shape } });
    };

    const startStep = step.step;
    options.onStart?.({ startStep, totalSteps, trainCount, valCount: valPairs.length });
    let lastLoss = Number.NaN;
    let stopped = false;
    const imageBatch = new Float32Array(batchSize * shape.imageSize);
    const textBatch = new Float32Array(batchSize * shape.textSize);
    training: while (step.step < totalSteps) {
      const epoch = Math.floor(step.step / stepsPerEpoch);
      // Batches of this epoch already done (by a run this one resumes) are skipped without encoding.
      let skipPairs = (step.step % stepsPerEpoch) * batchSize;
      let batch: Pair[] = [];
      let batchesThisEpoch = step.step % stepsPerEpoch;
      for await (const sample of readShards(sourceList, { shuffleShards: true, epoch, seed, shuffleBuffer })) {
        const pair = pairOf(sample);
        if (typeof pair === 'string' || inHeldOutSplit(pair.key, valFraction)) continue;
        if (skipPairs > 0) {
          skipPairs--;
          continue;
        }
        batch.push(pair);
        if (batch.length < batchSize) continue;
        const encoded = await features.encode(batch);
        batch = [];
        encoded.image.forEach((vector, i) => imageBatch.set(vector, i * shape.imageSize));
        encoded.text.forEach((vector, i) => textBatch.set(vector, i * shape.textSize));
        const before = performance.now();
        const result = await step.run({ image_features: imageBatch, text_features: textBatch });
        headsMs += performance.now() - before;
        lastLoss = result.loss;
        batchesThisEpoch++;
        log({ event: 'step', step: result.step, epoch, loss: result.loss, lr: result.learningRate, logitScale: logitScaleOf(), seconds: (performance.now() - started) / 1000 });
        const last = result.step >= totalSteps;
        if (result.step % evalEvery === 0 || last) await evaluate();
        if (result.step % checkpointEvery === 0 || last) await save();
        if (last) break training;
        if (options.signal?.aborted) {
          if (result.step % checkpointEvery !== 0) await save();
          stopped = true;
          break training;
        }
        if (batchesThisEpoch >= stepsPerEpoch) break;
      }
      if (batchesThisEpoch < stepsPerEpoch && Math.floor(step.step / stepsPerEpoch) === epoch) {
        throw new MedsynError(ErrorCodes.EMPTY_INPUT, `Cannot finish epoch ${epoch}: the shards gave fewer training pairs than in the first pass (were they changed during training?)`);
      }
    }

    let model: string | undefined;
    if (!stopped) {
      if (lastEval === undefined || lastEval.step !== step.step) await evaluate();
      if (checkpoint === undefined || !checkpoint.endsWith(checkpointName(step.step))) await save();
      model = exportModel(runDir, encoders, shape, step.parameters(), step.step);
    }
    const cache = features.cacheStats;
    return {
      run: runDir,
      steps: step.step,
      stepsRun: step.step - startStep,
      totalSteps,
      stopped,
      trainCount,
      valCount: valPairs.length,
      skipped,
      lastLoss,
      ...(lastEval ? { lastEval } : {}),
      ...(checkpoint ? { checkpoint } : {}),
      ...(model ? { model } : {}),
      cache,
      seconds: { total: (performance.now() - started) / 1000, encoders: features.encoderMs / 1000, heads: headsMs / 1000 },
    };
  } finally {
    features.close();
    await step?.release();
    if (owned) await encoders.release();
  }
}

/**
 * Writes `run/model/`: `image_embedder.onnx` and `text_embedder.onnx` (tower,
 * pooling and head in one file each), the heads alone as ONNX with the towers
 * beside them (their preprocessing and tokenizer files, and what
 * `medsyn-eval` falls back to), and `model.json`.
 */
function exportModel(runDir: string, encoders: FrozenEncoders, shape: HeadShape, parameters: ReadonlyMap<string, FloatArray>, steps: number): string {
  const modelDir = join(runDir, 'model');
  const staging = `${modelDir}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const metadata = { medsyn_version: VERSION, medsyn_step: String(steps) };
  const { image, text } = exportHeads(shape, parameters, { batch: 1, metadata });
  writeFileSync(join(staging, 'image_head.onnx'), image);
  writeFileSync(join(staging, 'text_head.onnx'), text);
  const pair = encoders.folders.image === encoders.folders.text;
  const towers = pair ? { image: 'encoder', text: 'encoder' } : { image: 'image_encoder', text: 'text_encoder' };
  cpSync(encoders.folders.image, join(staging, towers.image), { recursive: true });
  if (!pair) cpSync(encoders.folders.text, join(staging, towers.text), { recursive: true });
  // The same heads joined with their towers: one file per embedder, for use without medsyn.
  let embedders: WrittenEmbedders | { skipped: string };
  try {
    embedders = writeEmbedders(staging, { imageModel: encoders.imageModel, textModel: encoders.textModel, clip: pair }, shape, parameters, metadata);
  } catch (err) {
    if (!(err instanceof MedsynError) || err.code !== ErrorCodes.BAD_MODEL) throw err;
    embedders = { skipped: err.message };
  }
  const description = {
    format: 'medsyn-dual-encoder/1',
    description: pair
      ? 'Image: encoder/ (CLIP-style folder: preprocess as encoder/preprocessor_config.json, run encoder/onnx/vision_model.onnx, take image_embeds) ' +
        'then image_head.onnx (image_features -> unit-length image_embeds). Text: tokenise with encoder/ (tokenizer.json), run encoder/onnx/text_model.onnx, ' +
        'take text_embeds, then text_head.onnx (text_features -> unit-length text_embeds). Similarity: dot product of the two, times logitScale.'
      : 'Image: image_encoder/ (preprocess as its preprocessor_config.json, run onnx/model.onnx, take pooler_output, else last_hidden_state[:, 0]) ' +
        'then image_head.onnx (image_features -> unit-length image_embeds). Text: tokenise with text_encoder/ (tokenizer.json, padded to its context length), ' +
        'run onnx/model.onnx, take the mean of last_hidden_state over attention_mask, then text_head.onnx (text_features -> unit-length text_embeds). ' +
        'Similarity: dot product of the two, times logitScale.',
    embedders,
    towers,
    heads: shape,
    batch: 1,
    steps,
    logitScale: Math.min(Math.exp(parameters.get('logit_scale')![0]!), 100),
    encoders: { imageHash: encoders.imageHash, textHash: encoders.textHash },
  };
  writeFileSync(join(staging, 'model.json'), `${JSON.stringify(description, null, 2)}\n`);
  rmSync(modelDir, { recursive: true, force: true });
  renameSync(staging, modelDir);
  return modelDir;
}
