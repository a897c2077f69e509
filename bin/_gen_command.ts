/**
 * `medsyn gen` / `medsyn-gen`: reports in, a WebDataset sample tar stream out.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BACKENDS } from '../models/create_generator.js';
import { parseDevice } from '../models/onnx_sd_generator.js';
import { SCHEDULER_NAMES } from '../models/schedulers/scheduler.js';
import { ErrorCodes, MedsynError } from '../errors.js';
import { IMAGE_FORMATS } from '../transforms/encode_image.js';
import { formatGenerateSummary, runGenerate, type GenerateSummary, type RunGenerateOptions } from '../transforms/run_generate.js';
import { PARTITION_FLAGS, partitionFromFlags } from './_partition_flags.js';
import { choiceFlag, integerFlag, numberFlag, type Command } from './_cli.js';
import { PROGRESS_FLAG, stageStats, type CommandStats } from './_progress.js';
import { QUALITY_FLAGS, qualityThresholds } from './_quality_flags.js';
import { catchInterrupts } from './_signals.js';
import { formatQualitySummary } from '../transforms/quality_tally.js';

const FORMATS = ['auto', 'clean', 'zip', 'dir', 'txt', 'csv', 'ndjson'] as const;

/** The `gen` command. */
export const genCommand: Command = {
  name: 'gen',
  summary: 'Generate an image for each report and write image-text samples as a WebDataset tar stream on stdout.',
  usage: [
    'medsyn-gen [options] [INPUT] > samples.tar',
    'cat reports.csv | medsyn-gen [options] | medsyn-shard out/',
    'medsyn-clean reports.zip | medsyn-gen --batch-size 16 | medsyn-shard out/',
  ],
  readsStdin: true,
  flags: {
    backend: { type: 'string', arg: 'NAME', help: `image backend: ${BACKENDS.join('|')} (default phantom)` },
    size: { type: 'string', arg: 'PX', help: 'image width and height in pixels (default 512)' },
    'batch-size': { type: 'string', arg: 'N', help: 'images per generator call (default 8); the last batch is flushed at end of input' },
    'images-per-report': { type: 'string', arg: 'N', help: 'images per report, keys <id>_0 ... <id>_<N-1> (default 1: key <id>)' },
    seed: { type: 'string', arg: 'N', help: "the run's seed; each image's seed derives from it, the key, variant and attempt (default 0)" },
    'image-format': { type: 'string', arg: 'FMT', help: `${IMAGE_FORMATS.join('|')} (default png); the part's extension follows` },
    quality: { type: 'string', arg: 'Q', help: 'jpg/webp quality 1-100 (default 90)' },
    compression: { type: 'string', arg: 'L', help: 'png zlib level 0-9 (default 6)' },
    workers: { type: 'string', arg: 'N', help: 'phantom: render threads (default: one per core; 0 renders on the main thread)' },
    model: { type: 'string', arg: 'DIR|NAME', help: 'onnx: a Stable Diffusion ONNX export as optimum writes it (model_index.json, tokenizer/, text_encoder/, unet/, vae_decoder/, scheduler/); http: the model name on the server' },
    scheduler: { type: 'string', arg: 'NAME', help: `onnx: ${SCHEDULER_NAMES.join('|')} (default: the folder's scheduler class, else pndm)` },
    steps: { type: 'string', arg: 'N', help: "onnx, http: denoising steps (onnx default 50; pndm makes N+1 UNet calls; http: the server's default)" },
    guidance: { type: 'string', arg: 'S', help: "onnx, http: classifier-free guidance scale; 1 or less runs the conditional half only (onnx default 4)" },
    'negative-prompt': { type: 'string', arg: 'TEXT', help: 'onnx, http: the unconditional prompt of guidance (default "")' },
    device: { type: 'string', arg: 'NAME', help: 'onnx: cpu|cuda|cuda:N|webgpu (default cpu); a provider that cannot load is an error, never a CPU fall-back' },
    channels: { type: 'string', arg: 'N', help: 'onnx, http: 1 = 8-bit grayscale, the mean of the decoded R, G, B (default); 3 = RGB' },
    eta: { type: 'string', arg: 'X', help: 'onnx --scheduler ddim: eta, 0 deterministic … 1 DDPM-like (default 0)' },
    karras: { type: 'boolean', help: "onnx --scheduler dpmpp-2m: Karras sigmas (default: the config's use_karras_sigmas)" },
    threads: { type: 'string', arg: 'N', help: 'onnx: threads per onnxruntime op (default 0: one per core)' },
    endpoint: { type: 'string', arg: 'URL', help: 'http: the inference server (KServe/Triton Open Inference Protocol v2), e.g. http://triton:8000; the only address contacted' },
    'model-version': { type: 'string', arg: 'V', help: "http: the model version (default: the server's choice)" },
    header: { type: 'string', arg: "'NAME: VALUE'", multiple: true, help: 'http: a header sent on every request (repeatable), e.g. an auth token; never logged or stored' },
    concurrency: { type: 'string', arg: 'N', help: 'http: requests in flight at once (default 4)' },
    timeout: { type: 'string', arg: 'S', help: 'http: seconds to wait for an answer before the attempt fails (default 300)' },
    'request-retries': { type: 'string', arg: 'N', help: 'http: retries of a request after connection errors, timeouts, 429 and 5xx, with back-off (default 4)' },
    'max-batch': { type: 'string', arg: 'N', help: "http: images per infer request (default: the model's max_batch_size, else the whole batch)" },
    images: { type: 'string', arg: 'DIR', help: 'images backend: the MIMIC-CXR-JPG folder (files/pNN/pNNNNNNNN/sNNNNNNNN/*.jpg)' },
    metadata: { type: 'string', arg: 'FILE', help: 'images backend: mimic-cxr-2.0.0-metadata.csv[.gz], to choose images by view' },
    view: { type: 'string', arg: 'LIST', help: 'images backend: keep these views, e.g. PA,AP (needs --metadata)' },
    format: { type: 'string', arg: 'FMT', help: `input format: ${FORMATS.join('|')} (default auto; clean = medsyn-clean's NDJSON)` },
    'id-column': { type: 'string', arg: 'NAME', help: 'generic CSV: the column with the study id (default id)' },
    'text-column': { type: 'string', arg: 'NAME', help: 'generic CSV: the column with the whole report text (default text)' },
    tokenizer: { type: 'string', arg: 'DIR', help: 'CLIP tokenizer folder to fit prompts of raw reports exactly (default: a word-count estimate)' },
    'max-tokens': { type: 'string', arg: 'N', help: "prompt limit in tokens, BOS/EOS included (default 77, or the tokenizer's)" },
    'min-words': { type: 'string', arg: 'N', help: 'raw reports: reject captions shorter than N words as too_short (default 2)' },
    dedupe: { type: 'boolean', help: 'raw reports: reject reports whose prompt repeats an earlier one (duplicate)' },
    retries: { type: 'string', arg: 'N', help: 'regenerate an image that fails the quality checks up to N times, each with the next seed (default 2)' },
    'skip-quality': { type: 'boolean', help: 'no quality checks (no "quality" in the JSON, no regeneration)' },
    ...QUALITY_FLAGS,
    rejects: { type: 'string', arg: 'FILE', help: 'write rejects as NDJSON (id, source, reason, message) to FILE' },
    'on-error': { type: 'string', arg: 'POLICY', help: 'a batch the backend fails on: skip (default) rejects its images and goes on; fail stops' },
    ...PARTITION_FLAGS,
    limit: { type: 'string', arg: 'N', help: 'stop after N input records' },
    progress: PROGRESS_FLAG,
    quiet: { type: 'boolean', short: 'q', help: 'no summary line on stderr' },
  },
  details: `
INPUT is a path or - (stdin, the default): any input medsyn-clean reads (the
MIMIC-CXR zip, a folder, .txt, CSV, NDJSON), cleaned with the same stage, or
medsyn-clean's own NDJSON, used as it is (recognised by its first line, or
--format clean).

Output on stdout: an uncompressed tar in WebDataset layout, for medsyn-shard
or tar: per sample <key>.png (or .jpg/.webp), <key>.txt (the caption) and
<key>.json: id, subjectId, source, variant, attempt, seed, runSeed, prompt,
caption, sectionUsed, labels, attributes, backend, model, width, height,
channels, format, generationMs, medsyn (the version), and what the backend
adds (images: sourceImage, dicomId, view).

Backends:
  phantom  a procedural chest radiograph drawn from the report's labels,
           sides and sizes (heart size, effusions, pneumothorax, opacities,
           edema, nodules, devices). A test double for real generators: no
           weights, no GPU, deterministic.
  onnx     Stable Diffusion (RoentGen) exported to ONNX with optimum, in
           --model DIR, run with onnxruntime-node on --device cpu, cuda[:N]
           or webgpu: the folder's own tokenizer (prompts are fitted with it),
           --guidance with the unconditional and conditional halves in one
           UNet call, --steps of --scheduler, latents from each image's seed,
           VAE decode, 8-bit grayscale (--channels 3: RGB). Old (int32 ids,
           int64 timestep) and new (float timestep) exports, fp32 and fp16.
           medsyn never downloads weights. CUDA needs onnxruntime-node's CUDA
           build: ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci (with internet).
  http     a model on an inference server speaking the KServe/Triton Open
           Inference Protocol v2 (--endpoint URL --model NAME): prompts,
           seeds, steps and guidance sent as tensors, the image tensor back
           (binary tensors when the server offers them). Retries with
           back-off; a batch that still fails is rejected (generation_failed)
           and the run goes on. JSON adds endpoint, modelName, modelVersion,
           steps, guidance. --header values are never printed or stored.
  images   the study's real image(s) from a MIMIC-CXR-JPG tree, scaled to
           cover --size and cut to it, centred: real shards in the same
           format as synthetic ones. A study without the image is rejected
           as missing_image.

Quality: every image is scored (mean, contrast, entropy, sharpness, black and
white shares, blank, size, near-duplicates by 64-bit perceptual hash against
every image kept so far) and the verdict goes into its JSON as "quality"; an
image that fails is made again with the next attempt's seed up to --retries
times, then rejected as quality_failed with its reasons. The same checks run
standalone in medsyn-filter. --skip-quality turns them off.

Seeds: image seed = low 53 bits of the first 8 bytes of
SHA-256("medsyn-seed-v1\\n<seed>\\n<key>\\n<variant>\\n<attempt>"); random
draws are xoshiro128** from that seed (models/seeded_random.ts). The same
input and --seed give the same images whatever --batch-size, partition or
restart.

Rejects (reason): those of medsyn-clean, no_prompt, missing_image,
bad_image, generation_failed, quality_failed. Exit status: 0 done, 1 failed, 2 bad usage. A
closed stdout (| head) ends the run quietly.

Examples:
  medsyn-gen fixtures/reports --limit 8 | tar tvf -
  medsyn-gen mimic-cxr-reports.zip --images-per-report 2 --rejects rejects.ndjson | medsyn-shard out/
  medsyn-clean reports.csv > clean.ndjson && medsyn-gen clean.ndjson --image-format jpg > samples.tar
  medsyn-gen reports.zip --backend onnx --model roentgen-onnx --device cuda \\
      --steps 50 --guidance 4 --batch-size 8 | medsyn-shard out/
  medsyn-gen reports.zip --backend http --endpoint http://triton:8000 --model roentgen \\
      --header "Authorization: Bearer $TOKEN" --concurrency 8 | medsyn-shard out/
  medsyn-gen reports.zip --backend images --images mimic-cxr-jpg \\
      --metadata mimic-cxr-jpg/mimic-cxr-2.0.0-metadata.csv.gz --view PA,AP | medsyn-shard real/
`,
  async run(values, positionals, context) {
    if (positionals.length > 1) {
      throw new MedsynError(ErrorCodes.USAGE, `Too many inputs: ${positionals.join(' ')} (medsyn-gen reads one INPUT; see --help)`);
    }
    const options: RunGenerateOptions = {
      backend: choiceFlag(values, 'backend', BACKENDS) ?? 'phantom',
      format: choiceFlag(values, 'format', FORMATS) ?? 'auto',
      imageFormat: choiceFlag(values, 'image-format', IMAGE_FORMATS) ?? 'png',
      onError: choiceFlag(values, 'on-error', ['skip', 'fail'] as const) ?? 'skip',
      dedupe: values['dedupe'] === true,
      endOutput: false,
    };
    const integers = {
      size: integerFlag(values, 'size', 16),
      batchSize: integerFlag(values, 'batch-size'),
      imagesPerReport: integerFlag(values, 'images-per-report'),
      seed: integerFlag(values, 'seed', 0),
      quality: integerFlag(values, 'quality'),
      compression: integerFlag(values, 'compression', 0),
      workers: integerFlag(values, 'workers', 0),
      maxTokens: integerFlag(values, 'max-tokens', 3),
      minWords: integerFlag(values, 'min-words', 0),
      limit: integerFlag(values, 'limit'),
      retries: integerFlag(values, 'retries', 0),
    };
    for (const [name, value] of Object.entries(integers)) if (value !== undefined) (options as Record<string, unknown>)[name] = value;
    for (const [flag, name] of [
      ['images', 'images'],
      ['metadata', 'metadata'],
      ['id-column', 'idColumn'],
      ['text-column', 'textColumn'],
      ['tokenizer', 'tokenizer'],
      ['rejects', 'rejects'],
    ] as const) {
      if (typeof values[flag] === 'string') (options as Record<string, unknown>)[name] = values[flag];
    }
    if (typeof values['view'] === 'string') options.views = values['view'].split(',').map((view) => view.trim()).filter((view) => view !== '');
    if (options.backend !== 'images') {
      for (const flag of ['images', 'metadata', 'view']) {
        if (values[flag] !== undefined) throw new MedsynError(ErrorCodes.USAGE, `--${flag} is for --backend images (see medsyn-gen --help)`);
      }
    } else if (options.images === undefined) {
      throw new MedsynError(ErrorCodes.USAGE, '--backend images needs --images DIR, the MIMIC-CXR-JPG folder (see medsyn-gen --help)');
    }
    modelBackendOptions(values, options);
    options.checks = values['skip-quality'] === true ? false : qualityThresholds(values);
    if (typeof values['align-model'] === 'string') {
      if (options.checks === false) throw new MedsynError(ErrorCodes.USAGE, '--align-model is a quality check: it cannot go with --skip-quality');
      options.alignModel = values['align-model'];
    }
    // Progress and --stats follow the summary runGenerate keeps (the same object, updated after every batch).
    let live: GenerateSummary | undefined;
    const limit = options.limit;
    const progress = context.startProgress('samples', (summary: GenerateSummary) => ({
      items: summary.samples,
      rejects: summary.rejectedTotal,
      // Each report read ends as its samples or a reject; with --limit the total is known.
      done: summary.samples + summary.rejectedTotal,
      ...(limit !== undefined ? { total: limit * (options.imagesPerReport ?? 1) } : {}),
      line: `${summary.samples} samples, ${summary.rejectedTotal} rejected, ${summary.read} read, ${(summary.seconds > 0 ? summary.samples / summary.seconds : 0).toFixed(1)} images/s`,
      extra: { read: summary.read, generated: summary.generated },
    }));
    options.onProgress = (summary) => {
      live = summary;
      progress.update(summary);
    };
    context.stats(() => (live ? generateStats(live) : undefined));

    const partition = partitionFromFlags(values, 'medsyn-gen', values['quiet'] === true);
    if (partition) options.partition = partition;
    const interrupts = catchInterrupts('medsyn-gen', 'reading no more reports, finishing the batches in flight');
    options.signal = interrupts.signal;
    let summary: GenerateSummary;
    try {
      summary = live = await runGenerate(positionals[0] ?? '-', process.stdout, options);
    } catch (err) {
      // After a signal, a reader that went away first (medsyn-shard stopping too) is expected.
      const exitCode = interrupts.exitAfter(err);
      if (exitCode !== undefined) return exitCode;
      throw err;
    } finally {
      interrupts.dispose();
      progress.finish(live);
    }
    if (values['quiet'] !== true) {
      process.stderr.write(`medsyn-gen: ${formatGenerateSummary(summary)}\n`);
      if (summary.quality) process.stderr.write(`medsyn-gen: ${formatQualitySummary(summary.quality)}\n`);
    }
    return interrupts.exitCode() ?? 0;
  },
};

/** The `--stats` figures of a generation run: those of its summary lines. */
export function generateStats(summary: GenerateSummary): CommandStats {
  return stageStats('samples', summary.samples, summary.samples, summary, {
    read: summary.read,
    samples: summary.samples,
    generated: summary.generated,
    generatorSeconds: summary.generatorSeconds,
    seconds: summary.seconds,
    backend: summary.backend,
    model: summary.model,
    ...(summary.quality ? { quality: summary.quality } : {}),
  });
}

/** The flags of the onnx backend only. */
const ONNX_FLAGS = ['scheduler', 'device', 'eta', 'karras', 'threads'] as const;
/** The flags of the http backend only. */
const HTTP_FLAGS = ['endpoint', 'model-version', 'header', 'concurrency', 'timeout', 'request-retries', 'max-batch'] as const;
/** The flags of both model backends (onnx and http). */
const MODEL_FLAGS = ['model', 'steps', 'guidance', 'negative-prompt', 'channels'] as const;

/** The model backends' flags into `options`; a usage error for them with another backend. */
function modelBackendOptions(values: Record<string, unknown>, options: RunGenerateOptions): void {
  const backend = options.backend ?? 'phantom';
  const refuse = (flags: readonly string[], backends: string): void => {
    for (const flag of flags) {
      if (values[flag] !== undefined) throw new MedsynError(ErrorCodes.USAGE, `--${flag} is for --backend ${backends} (see medsyn-gen --help)`);
    }
  };
  if (backend !== 'onnx') refuse(ONNX_FLAGS, 'onnx');
  if (backend !== 'http') refuse(HTTP_FLAGS, 'http');
  if (backend !== 'onnx' && backend !== 'http') {
    refuse(MODEL_FLAGS, 'onnx or http');
    return;
  }
  if (typeof values['model'] !== 'string') {
    throw new MedsynError(
      ErrorCodes.USAGE,
      backend === 'onnx'
        ? '--backend onnx needs --model DIR, a Stable Diffusion ONNX export (see medsyn-gen --help)'
        : '--backend http needs --endpoint URL and --model NAME (see medsyn-gen --help)',
    );
  }
  options.model = values['model'];
  const steps = integerFlag(values, 'steps');
  if (steps !== undefined) options.steps = steps;
  const guidance = numberFlag(values, 'guidance', 0);
  if (guidance !== undefined) options.guidance = guidance;
  const channels = choiceFlag(values, 'channels', ['1', '3'] as const);
  if (channels !== undefined) options.channels = channels === '3' ? 3 : 1;
  if (typeof values['negative-prompt'] === 'string') options.negativePrompt = values['negative-prompt'];
  if (backend === 'http') {
    if (typeof values['endpoint'] !== 'string') throw new MedsynError(ErrorCodes.USAGE, '--backend http needs --endpoint URL and --model NAME (see medsyn-gen --help)');
    options.endpoint = values['endpoint'];
    if (typeof values['model-version'] === 'string') options.modelVersion = values['model-version'];
    if (Array.isArray(values['header'])) options.headers = values['header'] as string[];
    const concurrency = integerFlag(values, 'concurrency');
    if (concurrency !== undefined) options.concurrency = concurrency;
    const requestRetries = integerFlag(values, 'request-retries', 0);
    if (requestRetries !== undefined) options.requestRetries = requestRetries;
    const maxBatch = integerFlag(values, 'max-batch');
    if (maxBatch !== undefined) options.maxBatch = maxBatch;
    const timeout = numberFlag(values, 'timeout', 0.001);
    if (timeout !== undefined) options.timeout = Math.round(timeout * 1000);
    return;
  }
  const scheduler = choiceFlag(values, 'scheduler', SCHEDULER_NAMES);
  if (scheduler !== undefined) options.scheduler = scheduler;
  const eta = numberFlag(values, 'eta', 0, 1);
  if (eta !== undefined) options.eta = eta;
  const threads = integerFlag(values, 'threads', 0);
  if (threads !== undefined) options.threads = threads;
  if (values['karras'] === true) options.karras = true;
  if (typeof values['device'] === 'string') {
    try {
      parseDevice(values['device']);
    } catch {
      throw new MedsynError(ErrorCodes.USAGE, `Invalid --device: expected cpu, cuda, cuda:N or webgpu, got '${values['device']}'`, { option: 'device' });
    }
    options.device = values['device'];
  }
  // Prompts are fitted with the model's own tokenizer unless --tokenizer names another
  // (a folder without one is the backend's to report, naming what is missing).
  if (existsSync(join(values['model'], 'tokenizer'))) options.tokenizer ??= join(values['model'], 'tokenizer');
}
