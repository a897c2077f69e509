/**
 * The generation stage: cleaned reports in, WebDataset samples out, a batch at a time,
 * with the next batch generating while the last one is encoded and written.
 *
 * @module
 */
import { ErrorCodes, invalidOption, MedsynError } from '../errors.js';
import { isMiss, type GeneratedImage, type GenerationMiss, type GenerationRequest, type Generator } from '../models/generator.js';
import { deriveSeed } from '../models/seeded_random.js';
import { isReject, type CleanReport, type Reject } from '../records.js';
import { sanitizeKey, type Sample } from '../streams/sample.js';
import { VERSION } from '../version.js';
import { encodeImage, resolveEncodeOptions, type EncodeImageOptions } from './encode_image.js';
import type { AlignmentScorer, QualityFilter, QualityVerdict } from './quality_filter.js';
import { assessBatch } from './_assess_batch.js';

/** Options of {@link generateSamples}. */
export interface GenerateSamplesOptions extends EncodeImageOptions {
  /** Images per generator call. @default 8 */
  batchSize?: number;
  /** Images per report: keys `<id>_0 … <id>_<N−1>` when over 1, the id alone when 1. @default 1 */
  imagesPerReport?: number;
  /** The run's seed; each image's seed is `deriveSeed(seed, key, variant, attempt)`. @default 0 */
  seed?: number;
  /**
   * A batch the generator fails on: `skip` rejects its images (`generation_failed`) and
   * goes on; `fail` throws `MEDSYN_ERR_GENERATION_FAILED`. Rejects made before generation
   * (a reader's, the cleaner's) pass through either way.
   * @default 'skip'
   */
  onError?: 'skip' | 'fail';
  /**
   * Checked batches that may wait to be encoded and taken while the generator goes on
   * with the next: the generator is never idle while the consumer keeps up, and a slow
   * consumer stops it after this many (plus the one being taken and one generated).
   * @default 2
   */
  lookahead?: number;
  /**
   * Check every image (scores, near-duplicates, alignment) and regenerate failures; the
   * verdict goes into the sample's JSON as `quality`. @default undefined (no checks)
   */
  qualityFilter?: QualityFilter;
  /** Scores image–caption alignment for `qualityFilter`. @default undefined */
  alignment?: AlignmentScorer;
  /** Regenerations of an image that fails `qualityFilter`, each with the next attempt's seed, before it is rejected (`quality_failed`). @default 2 */
  retries?: number;
  /** Called with the final verdict of every image checked by `qualityFilter`, in order. @default undefined */
  onVerdict?: (verdict: QualityVerdict) => void;
  /** Called after each batch with its size and the generator's time for it. @default undefined */
  onBatch?: (images: number, milliseconds: number) => void;
}

/** A sample's `json` part: where the image came from and how it was made. */
export interface SampleMetadata {
  key: string;
  id: string;
  subjectId?: string;
  source: string;
  variant: number;
  /** The attempt that was kept: 0 for the first. */
  attempt: number;
  /** How many attempts it took: `attempt + 1`. */
  attempts: number;
  seed: number;
  runSeed: number;
  prompt: string;
  caption: string;
  sectionUsed: CleanReport['sectionUsed'];
  labels: CleanReport['labels'];
  attributes: CleanReport['attributes'];
  backend: string;
  model: string;
  width: number;
  height: number;
  channels: 1 | 3;
  format: string;
  /** The generator's wall time for the image's batch over the batch's size, in milliseconds. */
  generationMs: number;
  medsyn: string;
  /** Scores and decision, when the quality stage ran. */
  quality?: QualityVerdict;
  [backendField: string]: unknown;
}

interface Batch {
  requests: GenerationRequest[];
  rejects: Reject[];
  results?: Array<GeneratedImage | GenerationMiss>;
  verdicts?: Array<QualityVerdict | undefined>;
  error?: unknown;
  milliseconds: number;
}

/**
 * Generates samples for `reports` with `generator` and yields each sample (`<key>.png`
 * or `.jpg`/`.webp`, `.txt` the caption, `.json` {@link SampleMetadata}) or reject, a
 * batch at a time in input order. Rejects that come in pass through; a report with an
 * empty prompt or an id that leaves no key is rejected (`no_prompt`, `missing_id`); an
 * image the backend could not make is rejected with its reason.
 *
 * The generator works on the next batch while the last one is checked (`qualityFilter`,
 * regenerating failures) and earlier ones are encoded (sharp, on the thread pool) and
 * handed to the consumer; once `lookahead` checked batches wait, nothing more is read or
 * generated until the consumer takes one: a slow consumer slows generation, memory
 * stays flat. Seeds depend only on the run seed, key, variant and attempt, and the
 * checks decide image by image in input order, so the samples are the same whatever
 * the batch size.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION`; `MEDSYN_ERR_GENERATION_FAILED` under `onError: 'fail'`
 * @example
 * ```ts
 * const generator = await createPhantomGenerator();
 * for await (const item of generateSamples(cleanReports(readReports('reports.csv')), generator, { batchSize: 16 })) {
 *   if (!isReject(item)) console.log(item.key);
 * }
 * ```
 */
export async function* generateSamples(
  reports: AsyncIterable<CleanReport | Reject> | Iterable<CleanReport | Reject>,
  generator: Generator,
  options: GenerateSamplesOptions = {},
): AsyncGenerator<Sample | Reject> {
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) invalidOption('batchSize', `must be a positive integer, got ${batchSize}`);
  const imagesPerReport = options.imagesPerReport ?? 1;
  if (!Number.isInteger(imagesPerReport) || imagesPerReport < 1) invalidOption('imagesPerReport', `must be a positive integer, got ${imagesPerReport}`);
  const runSeed = options.seed ?? 0;
  if (!Number.isSafeInteger(runSeed) || runSeed < 0) invalidOption('seed', `must be an integer in [0, 2^53), got ${runSeed}`);
  const onError = options.onError ?? 'skip';
  if (onError !== 'skip' && onError !== 'fail') invalidOption('onError', `must be skip or fail, got ${String(onError)}`);
  const encoding = resolveEncodeOptions(options);
  const lookahead = options.lookahead ?? 2;
  if (!Number.isInteger(lookahead) || lookahead < 1) invalidOption('lookahead', `must be a positive integer, got ${lookahead}`);
  const retries = options.retries ?? 2;
  if (!Number.isInteger(retries) || retries < 0) invalidOption('retries', `must be an integer ≥ 0, got ${retries}`);

  const sampleKey = (request: GenerationRequest): string => (imagesPerReport === 1 ? request.key : `${request.key}_${request.variant}`);
  const iterator = (reports as AsyncIterable<CleanReport | Reject>)[Symbol.asyncIterator]?.() ?? toAsync(reports as Iterable<CleanReport | Reject>);
  // A report's variants not yet in a batch: a report may straddle two batches.
  const waiting: GenerationRequest[] = [];
  let exhausted = false;

  /** Reads the next batch's reports (and passes on the rejects among them). */
  async function gather(): Promise<Batch | undefined> {
    const batch: Batch = { requests: [], rejects: [], milliseconds: 0 };
    while (batch.requests.length < batchSize) {
      if (waiting.length > 0) {
        batch.requests.push(...waiting.splice(0, batchSize - batch.requests.length));
        continue;
      }
      if (exhausted) break;
      const next = await iterator.next();
      if (next.done === true) {
        exhausted = true;
        break;
      }
      const report = next.value;
      if (isReject(report)) {
        batch.rejects.push(report);
        continue;
      }
      const key = sanitizeKey(report.id);
      if (key === undefined) {
        batch.rejects.push({ id: report.id, source: report.source, reason: 'missing_id', message: `Skipped report ${JSON.stringify(report.id.slice(0, 80))} (${report.source}): its id makes no sample key (empty or over 200 characters)` });
        continue;
      }
      if (report.prompt.trim() === '') {
        batch.rejects.push({ id: report.id, source: report.source, reason: 'no_prompt', message: `Skipped ${report.id} (${report.source}): its prompt is empty` });
        continue;
      }
      for (let variant = 0; variant < imagesPerReport; variant++) {
        waiting.push({ key, report, variant, attempt: 0, seed: deriveSeed(runSeed, key, variant, 0) });
      }
    }
    if (batch.requests.length === 0 && batch.rejects.length === 0) return undefined;
    return batch;
  }

  /** Runs the generator on a gathered batch; failures are kept on the batch, not thrown. */
  async function generate(batch: Batch): Promise<void> {
    if (batch.requests.length === 0) return;
    const started = performance.now();
    try {
      batch.results = await generator.generate(batch.requests);
      if (batch.results.length !== batch.requests.length) {
        throw new MedsynError(ErrorCodes.GENERATION_FAILED, `The ${generator.backend} backend returned ${batch.results.length} images for ${batch.requests.length} requests`);
      }
    } catch (err) {
      batch.error = err;
      delete batch.results;
    }
    batch.milliseconds = performance.now() - started;
    options.onBatch?.(batch.requests.length, batch.milliseconds);
  }

  /** The quality checks of a generated batch, with regeneration: batches are assessed one after another, in order. */
  async function assess(batch: Batch): Promise<void> {
    if (!options.qualityFilter || !batch.results) return;
    batch.verdicts = await assessBatch(batch.requests, batch.results, {
      filter: options.qualityFilter,
      ...(options.alignment ? { alignment: options.alignment } : {}),
      retries,
      runSeed,
      generator,
      sampleKey,
      ...(options.onBatch ? { onBatch: options.onBatch } : {}),
    });
  }

  async function* emit(batch: Batch): AsyncGenerator<Sample | Reject> {
    yield* batch.rejects;
    if (batch.requests.length === 0) return;
    if (batch.error !== undefined) {
      const detail = batch.error instanceof Error ? batch.error.message : String(batch.error);
      if (onError === 'fail') {
        throw batch.error instanceof MedsynError && batch.error.code === ErrorCodes.GENERATION_FAILED
          ? batch.error
          : new MedsynError(ErrorCodes.GENERATION_FAILED, `The ${generator.backend} backend failed on a batch of ${batch.requests.length}: ${detail}`, { cause: batch.error });
      }
      for (const request of batch.requests) {
        yield { id: sampleKey(request), source: request.report.source, reason: 'generation_failed', message: `Not generated: the ${generator.backend} backend failed on its batch: ${detail}` };
      }
      return;
    }
    const perImage = batch.milliseconds / batch.requests.length;
    const results = batch.results!;
    // Encode the whole batch at once: sharp spreads it over the thread pool.
    const encoded = await Promise.all(
      results.map((result, i) => (isMiss(result) || batch.verdicts?.[i]?.passed === false ? undefined : encodeImage(result, encoding))),
    );
    for (let i = 0; i < batch.requests.length; i++) {
      const request = batch.requests[i]!;
      const result = results[i]!;
      const key = sampleKey(request);
      if (isMiss(result)) {
        yield { id: key, source: request.report.source, reason: result.miss.reason, message: result.miss.message };
        continue;
      }
      const verdict = batch.verdicts?.[i];
      if (verdict) options.onVerdict?.(verdict);
      if (verdict && !verdict.passed) {
        const duplicate = verdict.duplicateOf !== undefined ? ` (of ${verdict.duplicateOf}, distance ${verdict.duplicateDistance})` : '';
        yield {
          id: key,
          source: request.report.source,
          reason: 'quality_failed',
          message: `Failed the quality checks after ${request.attempt + 1} attempt${request.attempt === 0 ? '' : 's'}: ${verdict.reasons.join(', ')}${duplicate}`,
        };
        continue;
      }
      const { report } = request;
      const metadata: SampleMetadata = {
        key,
        id: report.id,
        ...(report.subjectId !== undefined ? { subjectId: report.subjectId } : {}),
        source: report.source,
        variant: request.variant,
        attempt: request.attempt,
        attempts: request.attempt + 1,
        seed: request.seed,
        runSeed,
        prompt: report.prompt,
        caption: report.caption,
        sectionUsed: report.sectionUsed,
        labels: report.labels,
        attributes: report.attributes,
        backend: generator.backend,
        model: generator.model,
        width: result.width,
        height: result.height,
        channels: result.channels,
        format: encoding.imageFormat,
        ...result.meta,
        generationMs: Math.round(perImage * 1000) / 1000,
        medsyn: VERSION,
        ...(verdict ? { quality: verdict } : {}),
      };
      yield {
        key,
        parts: { [encoding.imageFormat]: encoded[i]!, txt: Buffer.from(report.caption, 'utf8'), json: Buffer.from(JSON.stringify(metadata), 'utf8') },
      };
    }
  }

  // The producer generates batch after batch: as soon as one batch is generated, the next
  // is gathered and handed to the generator, and only then is the first checked (scores on
  // this thread, regeneration of failures) and queued; up to `lookahead` checked batches wait
  // to be encoded and taken, in order, by the consumer below.
  const ready: Batch[] = [];
  let finished = false;
  let failure: { error: unknown } | undefined;
  let stopped = false;
  let wakeConsumer: (() => void) | undefined;
  let wakeProducer: (() => void) | undefined;
  // Backends that pipeline internally (a model's stages, a server's requests) take up to
  // `concurrentBatches` generate calls at once; results are still taken in input order.
  const depth = Math.max(1, Math.floor(generator.concurrentBatches ?? 1));
  const producer = (async () => {
    const inFlight: Array<{ batch: Batch; done: Promise<void> }> = [];
    let inputDone = false;
    const fill = async (): Promise<void> => {
      while (!inputDone && !stopped && inFlight.length < depth) {
        const batch = await gather();
        if (!batch) {
          inputDone = true;
          break;
        }
        const done = generate(batch);
        // An early stop or a failure below still lets this generation finish before the input is closed.
        done.catch(() => undefined);
        inFlight.push({ batch, done });
      }
    };
    try {
      await fill();
      while (inFlight.length > 0 && !stopped) {
        const { batch: current, done } = inFlight[0]!;
        await done;
        while (ready.length >= lookahead && !stopped) await new Promise<void>((resolve) => (wakeProducer = resolve));
        if (stopped) break;
        inFlight.shift();
        // The next batch goes to the generator before this one is checked.
        await fill();
        await assess(current);
        ready.push(current);
        wakeConsumer?.();
      }
      await Promise.all(inFlight.map((entry) => entry.done));
    } catch (err) {
      failure = { error: err };
    } finally {
      finished = true;
      wakeConsumer?.();
    }
  })();

  try {
    for (;;) {
      if (ready.length === 0) {
        if (finished) {
          if (failure) throw failure.error;
          return;
        }
        await new Promise<void>((resolve) => (wakeConsumer = resolve));
        wakeConsumer = undefined;
        continue;
      }
      const batch = ready.shift()!;
      wakeProducer?.();
      wakeProducer = undefined;
      yield* emit(batch);
    }
  } finally {
    // An early stop or a failure: let the batch in flight finish, then let go of the input.
    stopped = true;
    wakeProducer?.();
    await producer;
    await iterator.return?.();
  }
}

async function* toAsync<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}
