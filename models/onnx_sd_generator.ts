/**
 * The `onnx` backend: Stable Diffusion (RoentGen, a Stable Diffusion 1.x fine-tune)
 * exported to ONNX, run with onnxruntime-node on the CPU, a CUDA GPU or WebGPU.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import type { ExecutionDevice } from '../train/session.js';
import type { GeneratedImage, GenerationRequest, Generator } from './generator.js';
import { loadSdModel, type SdModel } from './_sd_model.js';
import { createScheduler, defaultSchedulerName } from './schedulers/create_scheduler.js';
import { SCHEDULER_NAMES, type SchedulerName } from './schedulers/scheduler.js';

/** Options of {@link createOnnxSdGenerator}. */
export interface OnnxSdGeneratorOptions {
  /** The model folder, as optimum exports Stable Diffusion (`--model DIR`). */
  model: string;
  /** Width and height of the images in pixels, a multiple of the VAE's factor (8). @default 512 */
  size?: number;
  /**
   * The noise scheduler, configured from `scheduler/scheduler_config.json`.
   * @default the folder's own scheduler class when medsyn has it, else 'pndm' (Stable Diffusion 1.x's)
   */
  scheduler?: SchedulerName;
  /** Inference steps (PNDM makes one UNet call more). @default 50 */
  steps?: number;
  /** Classifier-free guidance scale; ≤ 1 runs the conditional half only. @default 4 (as RoentGen) */
  guidance?: number;
  /** The unconditional prompt of classifier-free guidance. @default '' */
  negativePrompt?: string;
  /** `cpu`, `cuda`, `cuda:N` (GPU N) or `webgpu`; a provider that cannot load is an error, never a fall-back. @default 'cpu' */
  device?: string;
  /** 1: 8-bit grayscale, the mean of the decoder's R, G and B (chest X-rays); 3: RGB as decoded. @default 1 */
  channels?: 1 | 3;
  /** DDIM's eta (0 deterministic, 1 DDPM-like); other schedulers take none. @default 0 */
  eta?: number;
  /** DPM-Solver++: Karras sigmas. @default the config's use_karras_sigmas */
  karras?: boolean;
  /** Threads one onnxruntime op may use; 0 is one per core (on the CPU they sleep between ops, never spin). @default 0 */
  threads?: number;
  /**
   * Images denoised together in one UNet call (times two with guidance). A batch of
   * more requests is split into groups that go through text encoding, denoising and
   * decoding one after another, each stage working on another group.
   * @default the whole batch
   */
  unetBatch?: number;
}

/**
 * Reads `--device`: `cpu`, `cuda` (GPU 0), `cuda:N` or `webgpu`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for anything else
 * @example
 * ```ts
 * parseDevice('cuda:1'); // { device: 'cuda', deviceId: 1 }
 * ```
 */
export function parseDevice(device: string): { device: ExecutionDevice; deviceId: number } {
  const match = /^(cpu|cuda|webgpu)(?::(\d+))?$/.exec(device);
  if (!match || (match[2] !== undefined && match[1] !== 'cuda')) invalidOption('device', `must be cpu, cuda, cuda:N or webgpu, got ${JSON.stringify(device)}`);
  return { device: match[1] as ExecutionDevice, deviceId: match[2] === undefined ? 0 : Number(match[2]) };
}

/** Runs tasks one at a time, in the order they were given. */
class Stage {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * Starts the `onnx` backend on a Stable Diffusion export (optimum's layout:
 * `model_index.json`, `tokenizer/`, `text_encoder/model.onnx`, `unet/model.onnx`,
 * `vae_decoder/model.onnx`, `scheduler/scheduler_config.json`). Input and output
 * names, types and shapes are read from the models: exports before optimum 1.24
 * (int32 `input_ids`, int64 `timestep` [batch]) and later ones (int64 `input_ids`,
 * float `timestep` []), float32 or float16, symbolic or fixed batch (a fixed batch
 * is run that many rows at a time). medsyn never downloads weights.
 *
 * Per request: the prompt through the folder's CLIP tokenizer (padded to 77) and
 * text encoder; latents [channels, size/8, size/8] of N(0, 1) draws from
 * `new SeededRandom(request.seed)` times the scheduler's initial sigma; `steps`
 * scheduler steps, each one UNet call for the whole group with the unconditional
 * and conditional halves together (guidance > 1); a stochastic scheduler's noise
 * comes from the same per-request generator, so an image depends on its seed only,
 * not on its batch. (Bit for bit on the CPU, where a model is never run on one row
 * alone, as onnxruntime's one-row kernels round differently; a GPU's kernels, chosen
 * by batch size, may move a pixel by a gray level. A model with a fixed batch runs
 * that many rows at a time, padded.) Then latents / `scaling_factor` through the VAE
 * decoder, x/2 + ½ clipped to [0, 1], 8-bit: grayscale is the mean of R, G and B.
 *
 * Requests are denoised in groups of `unetBatch` that move through three stages —
 * tokenise and encode, denoise, decode — each stage on one group at a time, so that
 * while the UNet works on group k the text encoder takes group k + 1 and the VAE group
 * k − 1; calls to `generate` that overlap share the stages the same way. Each model runs
 * on its own worker thread (onnxruntime-node's `run()` blocks the thread that calls it),
 * the UNet's with the whole denoising loop, the text encoder's with the starting latents
 * of a deterministic scheduler and the VAE's with the conversion to bytes, so
 * the stages and the caller's own work (PNG encoding, quality checks) really run at the
 * same time; `close()` releases the sessions and ends the threads (a released thread
 * first waits two seconds for another model to open on it, never keeping the process alive).
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` naming a bad option; `MEDSYN_ERR_NOT_FOUND` /
 *   `MEDSYN_ERR_BAD_MODEL` naming the file or input of a folder that does not fit;
 *   `MEDSYN_ERR_BAD_TOKENIZER`; `MEDSYN_ERR_PROVIDER_UNAVAILABLE` (with what to install) when the device's
 *   execution provider cannot load; `generate` throws `MEDSYN_ERR_SESSION_FAILED` when onnxruntime fails
 * @example
 * ```ts
 * const generator = await createOnnxSdGenerator({ model: 'models/roentgen-onnx', device: 'cuda', steps: 50 });
 * const [image] = await generator.generate([{ key: 's1', report, variant: 0, attempt: 0, seed: 42 }]);
 * await generator.close();
 * ```
 */
export async function createOnnxSdGenerator(options: OnnxSdGeneratorOptions): Promise<Generator> {
  if (typeof options.model !== 'string' || options.model === '') invalidOption('model', 'the onnx backend needs the model folder (--model DIR)');
  const size = options.size ?? 512;
  if (!Number.isInteger(size) || size < 8 || size > 4096) invalidOption('size', `must be an integer in 8 … 4096, got ${size}`);
  const steps = options.steps ?? 50;
  if (!Number.isInteger(steps) || steps < 1 || steps > 1000) invalidOption('steps', `must be an integer in 1 … 1000, got ${steps}`);
  const guidance = options.guidance ?? 4;
  if (!Number.isFinite(guidance) || guidance < 0) invalidOption('guidance', `must be a number ≥ 0, got ${guidance}`);
  const eta = options.eta ?? 0;
  if (!Number.isFinite(eta) || eta < 0) invalidOption('eta', `must be a number ≥ 0, got ${eta}`);
  const channels = options.channels ?? 1;
  if (channels !== 1 && channels !== 3) invalidOption('channels', `must be 1 or 3, got ${String(channels)}`);
  const threads = options.threads ?? 0;
  if (!Number.isInteger(threads) || threads < 0) invalidOption('threads', `must be an integer ≥ 0, got ${threads}`);
  const unetBatch = options.unetBatch;
  if (unetBatch !== undefined && (!Number.isInteger(unetBatch) || unetBatch < 1)) invalidOption('unetBatch', `must be a positive integer, got ${unetBatch}`);
  if (options.scheduler !== undefined && !SCHEDULER_NAMES.includes(options.scheduler)) {
    invalidOption('scheduler', `must be one of ${SCHEDULER_NAMES.join(', ')}, got ${JSON.stringify(options.scheduler)}`);
  }
  const negativePrompt = options.negativePrompt ?? '';
  const deviceName = options.device ?? 'cpu';
  const { device, deviceId } = parseDevice(deviceName);

  const model = await loadSdModel(options.model, { device, deviceId, intraOpThreads: threads });
  try {
    return new OnnxSdGenerator(model, {
      size,
      steps,
      guidance,
      eta,
      channels,
      unetBatch,
      negativePrompt,
      deviceName,
      karras: options.karras,
      scheduler: options.scheduler ?? defaultSchedulerName(model.schedulerConfig),
    });
  } catch (err) {
    await model.release();
    throw err;
  }
}

interface Settings {
  size: number;
  steps: number;
  guidance: number;
  eta: number;
  channels: 1 | 3;
  unetBatch: number | undefined;
  negativePrompt: string;
  deviceName: string;
  karras: boolean | undefined;
  scheduler: SchedulerName;
}

/** A group of requests between stages. */
interface Group {
  requests: readonly GenerationRequest[];
  /** Hidden states of the UNet's rows: unconditional ones first when guided. */
  textStates?: Float32Array;
  /** The starting latents, drawn beside the text encoding (deterministic schedulers). */
  start?: Float32Array;
  latents?: Float32Array;
}

class OnnxSdGenerator implements Generator {
  readonly backend = 'onnx';
  /** Three stages (text encoder, UNet, decoder): batch k+1 is encoded while k denoises and k−1 decodes. */
  readonly concurrentBatches = 3;
  readonly model: string;
  readonly #sd: SdModel;
  readonly #settings: Settings;
  readonly #latentShape: readonly [number, number, number];
  readonly #guided: boolean;
  /** The scheduler's initial sigma, and whether it draws noise as it steps (then the UNet's thread draws the starting latents too). */
  readonly #initNoiseSigma: number;
  readonly #stochastic: boolean;
  readonly #meta: Record<string, unknown>;
  readonly #encoding = new Stage();
  #unconditional: Promise<Float32Array> | undefined;

  constructor(sd: SdModel, settings: Settings) {
    this.#sd = sd;
    this.#settings = settings;
    this.model = sd.name;
    if (settings.size % sd.vaeFactor !== 0) invalidOption('size', `must be a multiple of ${sd.vaeFactor} (the VAE's factor), got ${settings.size}`);
    const latent = settings.size / sd.vaeFactor;
    for (const [dim, value] of Object.entries(sd.fixedLatent)) {
      if (value !== undefined && value !== latent) {
        invalidOption('size', `the UNet takes latents of ${dim} ${value}, so images of ${value * sd.vaeFactor} px, not ${settings.size}`);
      }
    }
    this.#latentShape = [sd.latentChannels, latent, latent];
    this.#guided = settings.guidance > 1;
    // Made once: fails early on a scheduler option that does not fit its config.
    const scheduler = this.#scheduler();
    this.#initNoiseSigma = scheduler.initNoiseSigma;
    this.#stochastic = scheduler.stochastic;
    this.#meta = {
      scheduler: settings.scheduler,
      steps: settings.steps,
      unetCalls: scheduler.timesteps.length,
      guidance: settings.guidance,
      negativePrompt: settings.negativePrompt,
      ...(settings.scheduler === 'ddim' ? { eta: settings.eta } : {}),
      ...(settings.karras !== undefined ? { karras: settings.karras } : {}),
      device: settings.deviceName,
      modelFolder: sd.name,
    };
  }

  async generate(requests: readonly GenerationRequest[]): Promise<GeneratedImage[]> {
    const groupSize = this.#settings.unetBatch ?? Math.max(1, requests.length);
    const groups: Promise<GeneratedImage[]>[] = [];
    for (let start = 0; start < requests.length; start += groupSize) {
      const group: Group = { requests: requests.slice(start, start + groupSize) };
      // Each stage takes groups in order; while the UNet works on one group the text
      // encoder may take the next and the VAE the one before. The UNet's and the VAE's
      // threads queue their jobs and run them in the order they were sent: a group goes to
      // the UNet the moment it is encoded, so that the next loop waits there when the last
      // one ends (no round trip through this thread's event loop between two loops), and to
      // the VAE the moment it is denoised.
      const encoded = this.#encoding.run(() => this.#encode(group));
      const denoised = encoded.then(() => this.#denoise(group));
      groups.push(denoised.then(() => this.#decode(group)));
    }
    // Settle every group before answering, so that a failure leaves nothing running.
    const settled = await Promise.allSettled(groups);
    const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.flatMap((result) => (result as PromiseFulfilledResult<GeneratedImage[]>).value);
  }

  async close(): Promise<void> {
    await this.#sd.release();
  }

  #scheduler() {
    const { scheduler, steps, eta, karras } = this.#settings;
    return createScheduler(scheduler, this.#sd.schedulerConfig, { steps, eta, ...(karras !== undefined ? { karras } : {}) });
  }

  async #encode(group: Group): Promise<void> {
    const { tokenizer } = this.#sd;
    const [channels, height, width] = this.#latentShape;
    // The starting latents are drawn on the text encoder's thread too, off the UNet's.
    const [conditional, start] = await Promise.all([
      this.#sd.encodeText(group.requests.map((request) => tokenizer.encodePadded(request.report.prompt))),
      this.#stochastic ? undefined : this.#sd.drawLatents(group.requests.map((request) => request.seed), channels * height * width, this.#initNoiseSigma),
    ]);
    group.start = start;
    if (!this.#guided) {
      group.textStates = conditional;
      return;
    }
    this.#unconditional ??= this.#sd.encodeText([tokenizer.encodePadded(this.#settings.negativePrompt)]);
    let unconditional: Float32Array;
    try {
      unconditional = await this.#unconditional;
    } catch (err) {
      this.#unconditional = undefined;
      throw err;
    }
    const rows = group.requests.length;
    const states = new Float32Array(2 * conditional.length);
    for (let row = 0; row < rows; row++) states.set(unconditional, row * unconditional.length);
    states.set(conditional, conditional.length);
    group.textStates = states;
  }

  async #denoise(group: Group): Promise<void> {
    const { scheduler, steps, eta, karras, guidance } = this.#settings;
    const textStates = group.textStates!;
    const start = group.start;
    group.textStates = undefined;
    group.start = undefined;
    // The loop runs on the UNet's thread; the text states and starting latents move there.
    group.latents = await this.#sd.denoise({
      seeds: group.requests.map((request) => request.seed),
      textStates,
      ...(start ? { latents: start } : {}),
      latentShape: [...this.#latentShape],
      scheduler: { name: scheduler, config: this.#sd.schedulerConfig, steps, eta, karras },
      guidance,
      guided: this.#guided,
    });
  }

  async #decode(group: Group): Promise<GeneratedImage[]> {
    const latents = group.latents!;
    group.latents = undefined;
    const count = group.requests.length;
    const channels = this.#settings.channels;
    const { images, width, height } = await this.#sd.decode(latents, count, [...this.#latentShape], 1 / this.#sd.scalingFactor, channels);
    return images.map((pixels) => ({ pixels, width, height, channels, meta: { ...this.#meta } }));
  }
}
