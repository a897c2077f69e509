/**
 * The GPU check's driver (`bench/gpu.sh` runs it): the `onnx` backend at Stable
 * Diffusion 1.5's size, with DPM-Solver++ 2M at 20 steps and guidance 4 (the
 * unconditional and conditional halves in one UNet call), 512 × 512, at batch sizes 1,
 * 4, 8 and 16 on each device asked for, printing images/s and UNet steps/s per batch
 * size as each finishes.
 *
 *     node dist/bench/gpu.js --build-only                    # the model folder, cached
 *     node dist/bench/gpu.js --probe --devices webgpu,cuda   # which providers load
 *     node dist/bench/gpu.js --device webgpu --seconds 300   # time one device
 *     node dist/bench/gpu.js --summary                       # the table of what was timed
 *
 * The model folder (cached in `--cache`/`<unet>/`, by default `bench/out/gpu/`, git-ignored) is optimum's
 * layout: the UNet is `bench/_sd15_unet.ts`'s (SD 1.5's layout, 859,520,964 random
 * float16 weights, about 5 s to write); the text encoder is a stand-in of CLIP's I/O
 * (embeddings + LayerNorm, width 768); the VAE decoder, tokenizer and scheduler
 * config are the tiny fixtures of `fixtures/sd-tiny` (a 16-channel decoder, so the
 * figures are the UNet's, not those of SD's 49 M-parameter VAE). `--unet tiny` builds
 * the same layout at widths (32, 64, 128, 128) for a run on the CPU in seconds.
 *
 * Each batch size runs twice when the time left allows: cold (the first call at that
 * size: kernels compiled, cuDNN algorithms searched) and warm; the figures are the
 * warm run's, else the cold one's, marked so. A batch size that would not finish in
 * `--seconds` is skipped with a line saying so; one that fails prints onnxruntime's
 * reason and the next one runs. Results are appended as JSON lines to `--results`.
 * UNet steps/s is the scheduler's UNet calls (20, each on 2 × batch rows with guidance)
 * over a run's wall time, text encoding and decoding included (both stand-ins cost
 * next to nothing); images/s is the batch over the same time.
 *
 * @module
 */
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { GeneratedImage, GenerationRequest } from '../models/generator.js';
import { createOnnxSdGenerator } from '../models/onnx_sd_generator.js';
import type { CleanReport } from '../records.js';
import { openSession, type ExecutionDevice } from '../train/session.js';
import { SD15_UNET, SD15_UNET_PARAMETERS, writeSd15Unet, writeTextEncoderStandIn, type Sd15UnetConfig } from './_sd15_unet.js';
import { reportFigures, type Figure } from './_figures.js';

/** The UNets the check can build. */
export const CHECK_UNETS: Readonly<Record<'sd15' | 'tiny', Readonly<Sd15UnetConfig>>> = {
  sd15: SD15_UNET,
  /** SD 1.5's layout at small widths: the same code path, seconds on a CPU. */
  tiny: { ...SD15_UNET, blockChannels: [32, 64, 128, 128], heads: 2, crossAttentionDim: 64, groups: 8 },
};

/** Bumped when the folder's contents change, so that a cached folder is rebuilt. */
const FOLDER_VERSION = 1;

/** What {@link buildCheckFolder} made or found. */
export interface CheckFolder {
  folder: string;
  /** False when a cached folder of the same config was reused. */
  built: boolean;
  parameters: number;
  unetBytes: number;
  seconds: number;
}

/**
 * Makes (or reuses, when its stamp matches) a Stable Diffusion folder in optimum's
 * layout under `dir`: the UNet of `unet`, a text-encoder stand-in of its
 * cross-attention width, and `fixtures/sd-tiny`'s tokenizer, VAE decoder and scheduler
 * config (set to DPM-Solver++). Written to a temporary folder renamed into place.
 *
 * @param dir the folder to make (its parent is created)
 * @param unet the UNet's layout
 * @param fixtures the project's `fixtures/` folder
 * @example
 * ```ts
 * const { folder } = buildCheckFolder('bench/out/gpu/sd15', SD15_UNET, 'fixtures');
 * ```
 */
export function buildCheckFolder(dir: string, unet: Sd15UnetConfig, fixtures: string): CheckFolder {
  const stampFile = join(dir, 'medsyn-gpu-check.json');
  const stamp = JSON.stringify({ version: FOLDER_VERSION, unet });
  if (existsSync(stampFile)) {
    const cached = JSON.parse(readFileSync(stampFile, 'utf8')) as { stamp: string; parameters: number; unetBytes: number };
    if (cached.stamp === stamp) return { folder: dir, built: false, parameters: cached.parameters, unetBytes: cached.unetBytes, seconds: 0 };
  }
  const started = performance.now();
  const temporary = `${dir}.tmp-${process.pid}`;
  rmSync(temporary, { recursive: true, force: true });
  const tiny = join(fixtures, 'sd-tiny');
  for (const part of ['tokenizer', 'text_encoder', 'unet', 'vae_decoder', 'scheduler']) mkdirSync(join(temporary, part), { recursive: true });
  for (const file of readdirSync(join(tiny, 'tokenizer'))) copyFileSync(join(tiny, 'tokenizer', file), join(temporary, 'tokenizer', file));
  for (const file of ['model.onnx', 'config.json']) copyFileSync(join(tiny, 'vae_decoder', file), join(temporary, 'vae_decoder', file));
  const scheduler = JSON.parse(readFileSync(join(tiny, 'scheduler', 'scheduler_config.json'), 'utf8')) as Record<string, unknown>;
  const json = (file: string, value: unknown): void => writeFileSync(join(temporary, file), `${JSON.stringify(value, null, 2)}\n`);
  json('scheduler/scheduler_config.json', { ...scheduler, _class_name: 'DPMSolverMultistepScheduler', algorithm_type: 'dpmsolver++', solver_order: 2 });
  const part = (className: string): [string, string] => ['optimum', className];
  json('model_index.json', {
    _class_name: 'ORTStableDiffusionPipeline',
    _diffusers_version: '0.30.0',
    _medsyn: 'bench/gpu.ts: a UNet of SD 1.5 layout with random weights; stand-in text encoder; tiny fixture VAE decoder. For timing only.',
    scheduler: ['diffusers', 'DPMSolverMultistepScheduler'],
    text_encoder: part('ORTModelTextEncoder'),
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: part('ORTModelUnet'),
    vae_decoder: part('ORTModelVaeDecoder'),
  });
  const vocabSize = Object.keys(JSON.parse(readFileSync(join(tiny, 'tokenizer', 'vocab.json'), 'utf8')) as object).length;
  writeTextEncoderStandIn(join(temporary, 'text_encoder', 'model.onnx'), { width: unet.crossAttentionDim, vocabSize, seed: unet.seed });
  json('text_encoder/config.json', { _class_name: 'CLIPTextModel (stand-in)', hidden_size: unet.crossAttentionDim, max_position_embeddings: 77 });
  const written = writeSd15Unet(join(temporary, 'unet', 'model.onnx'), unet);
  json('unet/config.json', {
    _class_name: 'UNet2DConditionModel',
    in_channels: unet.latentChannels,
    out_channels: unet.latentChannels,
    block_out_channels: unet.blockChannels,
    layers_per_block: unet.layersPerBlock,
    attention_head_dim: unet.heads,
    cross_attention_dim: unet.crossAttentionDim,
    norm_num_groups: unet.groups,
    sample_size: 64,
  });
  writeFileSync(join(temporary, 'medsyn-gpu-check.json'), `${JSON.stringify({ stamp, parameters: written.parameters, unetBytes: written.bytes }, null, 2)}\n`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(temporary, dir);
  return { folder: dir, built: true, parameters: written.parameters, unetBytes: written.bytes, seconds: (performance.now() - started) / 1000 };
}

/** One batch size timed on one device. */
export interface BatchTiming {
  device: string;
  batch: number;
  /** Rows per UNet call (twice the batch with guidance). */
  unetRows: number;
  unetCalls: number;
  /** Seconds of the first run at this batch size (compilation included). */
  coldSeconds?: number;
  /** Seconds of the second run, when there was time for it. */
  warmSeconds?: number;
  imagesPerSecond?: number;
  unetStepsPerSecond?: number;
  /** Why there is no figure: skipped or failed. */
  error?: string;
  skipped?: string;
}

/** Options of {@link timeDevice}. */
export interface TimeDeviceOptions {
  model: string;
  device: string;
  batches: readonly number[];
  /** @default 512 */
  size?: number;
  /** @default 20 */
  steps?: number;
  /** @default 4 */
  guidance?: number;
  /** Seconds this call may take, session load included. @default Infinity */
  seconds?: number;
  /** @default 0 (one per core) */
  threads?: number;
  /** Called with each batch size's timing as soon as it is known. */
  onResult?: (timing: BatchTiming) => void;
  /** Called with progress lines. */
  log?: (line: string) => void;
}

const PROMPTS = ['No acute cardiopulmonary process.', 'Small left pleural effusion.', 'Moderate cardiomegaly with pulmonary edema.', 'Right lower lobe opacity, possibly pneumonia.'];

function requests(count: number, round: number): GenerationRequest[] {
  return Array.from({ length: count }, (_, i) => {
    const prompt = PROMPTS[i % PROMPTS.length]!;
    const report = { id: `gpu-${i}`, source: 'bench/gpu', prompt, caption: prompt } as unknown as CleanReport;
    return { key: `gpu-${round}-${i}`, report, variant: 0, attempt: 0, seed: 1000 * round + i };
  });
}

function firstLine(cause: unknown): string {
  return (cause instanceof Error ? cause.message : String(cause)).split('\n')[0]!;
}

/**
 * Opens the onnx backend on `device` once and times `batches` (each a cold and, when
 * the time left allows, a warm run of `generate`), skipping a batch size whose
 * estimated time (from the rows per second seen so far) would pass `seconds`.
 *
 * @throws {MedsynError} what `createOnnxSdGenerator` throws when the device or model cannot load
 * @example
 * ```ts
 * const timings = await timeDevice({ model: 'bench/out/gpu/sd15', device: 'webgpu', batches: [1, 4] });
 * ```
 */
export async function timeDevice(options: TimeDeviceOptions): Promise<BatchTiming[]> {
  const started = performance.now();
  const deadline = started + (options.seconds ?? Infinity) * 1000;
  const steps = options.steps ?? 20;
  const guidance = options.guidance ?? 4;
  const log = options.log ?? (() => undefined);
  const generator = await createOnnxSdGenerator({
    model: options.model,
    device: options.device,
    size: options.size ?? 512,
    steps,
    guidance,
    scheduler: 'dpmpp-2m',
    threads: options.threads ?? 0,
  });
  log(`${options.device}: model loaded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const timings: BatchTiming[] = [];
  /** UNet rows × calls per second, the best seen: the basis of the estimates. */
  let rowRate: number | undefined;
  let round = 0;
  try {
    for (const batch of options.batches) {
      const unetRows = guidance > 1 ? 2 * batch : batch;
      const timing: BatchTiming = { device: options.device, batch, unetRows, unetCalls: steps };
      const left = (deadline - performance.now()) / 1000;
      const estimate = rowRate === undefined ? undefined : (unetRows * steps) / rowRate;
      if (estimate !== undefined && estimate * 1.2 > left) {
        timing.skipped = `would take about ${estimate.toFixed(0)} s, ${left.toFixed(0)} s left`;
      } else {
        log(`${options.device} batch ${batch}: running${rowRate === undefined ? '' : ` (about ${((unetRows * steps) / rowRate).toFixed(0)} s a run)`}`);
        try {
          const run = async (): Promise<number> => {
            const t0 = performance.now();
            const images = (await generator.generate(requests(batch, ++round))) as GeneratedImage[];
            if (images.length !== batch || images.some((image) => !image.pixels)) throw new Error(`got ${images.length} images for ${batch} requests`);
            return (performance.now() - t0) / 1000;
          };
          timing.coldSeconds = await run();
          rowRate = Math.max(rowRate ?? 0, (unetRows * steps) / timing.coldSeconds);
          if (timing.coldSeconds * 1.2 < (deadline - performance.now()) / 1000) {
            timing.warmSeconds = await run();
            rowRate = Math.max(rowRate, (unetRows * steps) / timing.warmSeconds);
          }
          const seconds = timing.warmSeconds ?? timing.coldSeconds;
          timing.imagesPerSecond = batch / seconds;
          timing.unetStepsPerSecond = steps / seconds;
        } catch (cause) {
          timing.error = firstLine(cause);
        }
      }
      timings.push(timing);
      options.onResult?.(timing);
    }
  } finally {
    await generator.close();
  }
  return timings;
}

/** A timing as one line of the log. */
export function formatTiming(timing: BatchTiming): string {
  const head = `${timing.device} batch ${timing.batch} (UNet batch ${timing.unetRows}, ${timing.unetCalls} calls)`;
  if (timing.skipped) return `${head}: skipped, ${timing.skipped}`;
  if (timing.error) return `${head}: FAILED: ${timing.error}`;
  const runs = `cold ${timing.coldSeconds!.toFixed(2)} s${timing.warmSeconds !== undefined ? `, warm ${timing.warmSeconds.toFixed(2)} s` : ' (no time for a warm run: figures include warm-up)'}`;
  return `${head}: ${runs} → ${timing.imagesPerSecond!.toFixed(3)} images/s, ${timing.unetStepsPerSecond!.toFixed(2)} UNet steps/s (${(timing.unetStepsPerSecond! * timing.unetRows).toFixed(1)} UNet rows/s)`;
}

/**
 * Checks that each device's execution provider loads (a one-node model), in this
 * process: `available` or onnxruntime's reason with medsyn's hint.
 *
 * @example
 * ```ts
 * await probeDevices(['webgpu', 'cuda']); // [{ device: 'webgpu', available: true }, { device: 'cuda', available: false, reason: '…' }]
 * ```
 */
export async function probeDevices(devices: readonly string[], model: string): Promise<Array<{ device: string; available: boolean; reason?: string }>> {
  const results: Array<{ device: string; available: boolean; reason?: string }> = [];
  for (const device of devices) {
    try {
      const session = await openSession(model, { device: device as ExecutionDevice });
      await session.release();
      results.push({ device, available: true });
    } catch (cause) {
      results.push({ device, available: false, reason: firstLine(cause) });
    }
  }
  return results;
}

function list(value: string, name: string): number[] {
  const numbers = value.split(',').map((part) => Number(part.trim()));
  if (numbers.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${name} must be positive integers separated by commas, got ${value}`);
  return numbers;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      unet: { type: 'string', default: 'sd15' },
      cache: { type: 'string' },
      devices: { type: 'string', default: process.env['MEDSYN_GPU_CHECK_DEVICES'] ?? 'webgpu,cuda' },
      device: { type: 'string' },
      batches: { type: 'string', default: '1,4,8,16' },
      size: { type: 'string', default: '512' },
      steps: { type: 'string', default: '20' },
      guidance: { type: 'string', default: '4' },
      threads: { type: 'string', default: '0' },
      seconds: { type: 'string', default: '420' },
      results: { type: 'string' },
      'build-only': { type: 'boolean', default: false },
      probe: { type: 'boolean', default: false },
      summary: { type: 'boolean', default: false },
    },
  });
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const unetName = values.unet as keyof typeof CHECK_UNETS;
  const unet = CHECK_UNETS[unetName];
  if (!unet) throw new Error(`--unet must be ${Object.keys(CHECK_UNETS).join(' or ')}, got ${values.unet}`);
  const folder = resolve(values.cache ?? join(root, 'bench', 'out', 'gpu'), unetName);
  const resultsFile = resolve(values.results ?? join(root, 'bench', 'out', 'gpu', 'results.jsonl'));
  const say = (line: string): void => void process.stdout.write(`gpu-check ${line}\n`);

  if (values['build-only']) {
    say(`machine: ${availableParallelism()} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
    const built = buildCheckFolder(folder, unet, join(root, 'fixtures'));
    const sd15 = unetName === 'sd15' ? ` (SD 1.5 has ${SD15_UNET_PARAMETERS.toLocaleString('en-US')})` : ' (SD 1.5 layout at small widths)';
    say(
      `model: ${built.folder} ${built.built ? `built in ${built.seconds.toFixed(1)} s` : 'cached'}; UNet ${unetName}: ${built.parameters.toLocaleString('en-US')} parameters${sd15}, ` +
        `${unet.dtype}, random seed ${unet.seed}, ${(built.unetBytes / 1e6).toFixed(0)} MB`,
    );
    say(`model: text encoder is a stand-in (token + position embeddings, LayerNorm; width ${unet.crossAttentionDim}); VAE decoder, tokenizer and scheduler config are fixtures/sd-tiny's (tiny): the figures are the UNet's`);
    return;
  }
  if (values.probe) {
    const devices = values.devices.split(',').map((d) => d.trim()).filter(Boolean);
    for (const result of await probeDevices(devices, join(root, 'fixtures', 'sd-tiny', 'unet', 'model.onnx'))) {
      say(`probe ${result.device}: ${result.available ? 'available' : `unavailable: ${result.reason}`}`);
      if (result.available) process.stdout.write(`available ${result.device}\n`);
    }
    return;
  }
  if (values.summary) {
    const lines = existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean) : [];
    const timings = lines.map((line) => JSON.parse(line) as BatchTiming);
    say(`summary (${values.steps} steps DPM-Solver++, guidance ${values.guidance}, ${values.size} px, UNet ${unetName}):`);
    process.stdout.write(`| device | batch | UNet batch | images/s | UNet steps/s | cold s | warm s | note |\n|---|---|---|---|---|---|---|---|\n`);
    for (const t of timings) {
      const note = t.error ? `failed: ${t.error.slice(0, 160)}` : t.skipped ? `skipped: ${t.skipped}` : t.warmSeconds === undefined ? 'cold run only' : '';
      const n = (v: number | undefined, digits: number): string => (v === undefined ? '—' : v.toFixed(digits));
      process.stdout.write(`| ${t.device} | ${t.batch} | ${t.unetRows} | ${n(t.imagesPerSecond, 3)} | ${n(t.unetStepsPerSecond, 2)} | ${n(t.coldSeconds, 1)} | ${n(t.warmSeconds, 1)} | ${note} |\n`);
    }
    const figures: Figure[] = timings
      .filter((t) => t.imagesPerSecond !== undefined)
      .map((t) => ({ figure: `${t.device} batch ${t.batch} images`, value: t.imagesPerSecond!, unit: 'images/s', reference: null, note: `${t.unetStepsPerSecond!.toFixed(2)} UNet steps/s` }));
    reportFigures('gpu', figures);
    return;
  }
  const device = values.device;
  if (!device) throw new Error('give --build-only, --probe, --summary or --device DEVICE');
  const batches = list(values.batches, 'batches');
  const [size, steps] = [list(values.size, 'size')[0]!, list(values.steps, 'steps')[0]!];
  const guidance = Number(values.guidance);
  say(`${device}: batches ${batches.join(', ')}, ${size} px, DPM-Solver++ 2M ${steps} steps, guidance ${guidance}, up to ${values.seconds} s`);
  mkdirSync(dirname(resultsFile), { recursive: true });
  try {
    await timeDevice({
      model: folder,
      device,
      batches,
      size,
      steps,
      guidance,
      seconds: Number(values.seconds),
      threads: Number(values.threads),
      log: say,
      onResult: (timing) => {
        say(formatTiming(timing));
        appendFileSync(resultsFile, `${JSON.stringify(timing)}\n`);
      },
    });
  } catch (cause) {
    say(`${device}: cannot run: ${firstLine(cause)}`);
    appendFileSync(resultsFile, `${JSON.stringify({ device, batch: 0, unetRows: 0, unetCalls: steps, error: `cannot run: ${firstLine(cause)}` } satisfies BatchTiming)}\n`);
    process.exitCode = 3;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().catch((cause: unknown) => {
    process.stderr.write(`gpu-check: ${cause instanceof Error ? cause.message : String(cause)}\n`);
    process.exit(2);
  });
}
