/**
 * A Stable Diffusion export folder as the `onnx` backend runs it: the configs, the
 * tokenizer and three onnxruntime sessions, each on its own worker thread
 * (`_sd_worker.ts`), with the inputs and outputs read from the models themselves
 * (names, element types, fixed or symbolic dimensions). onnxruntime-node's `run()`
 * blocks the thread that calls it for the whole native call, so one thread per model
 * is what lets the text encoder, the UNet and the VAE decoder work at the same time,
 * with the main thread free for the pipeline's own work. Buffers move between the
 * threads without copies. Private to `onnx_sd_generator.ts`.
 *
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import { ErrorCodes, MedsynError } from '../errors.js';
import type { SessionOptions } from '../train/session.js';
import { loadClipTokenizer, type ClipTokenizer } from './clip_tokenizer.js';
import { readSchedulerConfig } from './schedulers/create_scheduler.js';
import type { SchedulerConfig } from './schedulers/scheduler.js';
import {
  FLOAT_TYPES,
  type DenoiseJob,
  type FloatType,
  type SdReply,
  type SdRequest,
  type SessionDescription,
  type TextSignature,
  type UnetSignature,
  type VaeSignature,
} from './_sd_protocol.js';

type TensorMetadata = InferenceSession.TensorValueMetadata;
type Dim = number | string;

/** The three models of a folder, as {@link watchSdRuns} names them. */
export type SdModelKind = 'text' | 'unet' | 'vae';

/** One native session run in a worker: which model, and its start and end in ms since the epoch. */
export interface SdRun {
  kind: SdModelKind;
  start: number;
  end: number;
}

const watchers = new Set<(run: SdRun) => void>();

/**
 * Calls `listener` with every native session run of every Stable Diffusion model
 * (reported when the job that made it answers): how benchmarks and tests see the
 * models' busy time and overlap, as the runs happen on worker threads. Gives the
 * function that stops it.
 *
 * @example
 * ```ts
 * let unetMs = 0;
 * const stop = watchSdRuns((run) => { if (run.kind === 'unet') unetMs += run.end - run.start; });
 * ```
 */
export function watchSdRuns(listener: (run: SdRun) => void): () => void {
  watchers.add(listener);
  return () => void watchers.delete(listener);
}

/** One model of the folder, opened on its own worker thread. */
interface Part {
  readonly file: string;
  readonly worker: SdWorker;
  readonly description: SessionDescription;
}

/** A loaded Stable Diffusion folder. */
export interface SdModel {
  /** The folder, resolved. */
  readonly folder: string;
  /** The folder's name, recorded in every sample. */
  readonly name: string;
  readonly tokenizer: ClipTokenizer;
  /** `scheduler/scheduler_config.json`. */
  readonly schedulerConfig: SchedulerConfig;
  /** The VAE's `scaling_factor` (0.18215 for SD 1.x). */
  readonly scalingFactor: number;
  /** Pixels per latent, each way (8). */
  readonly vaeFactor: number;
  /** Latent channels (4). */
  readonly latentChannels: number;
  /** Tokens per prompt the text encoder takes (77). */
  readonly contextLength: number;
  /** The latent height and width when the UNet fixes them. */
  readonly fixedLatent: { height: number | undefined; width: number | undefined };
  /** Hidden states of `rows` prompts, token ids row by row: float32 [rows, length, hidden]. */
  encodeText(ids: readonly number[][]): Promise<Float32Array>;
  /**
   * Starting latents of a group, drawn on the text encoder's thread (idle while the UNet
   * works): `latentSize` N(0, 1) draws from each `SeededRandom(seed)`, times `sigma`.
   */
  drawLatents(seeds: readonly number[], latentSize: number, sigma: number): Promise<Float32Array>;
  /** The final latents of one group's denoising loop, run on the UNet's thread (`job.textStates` and `job.latents` move there). */
  denoise(job: DenoiseJob): Promise<Float32Array>;
  /**
   * 8-bit images (`channels` 1: the mean of the decoder's channels; 3: RGB) of `rows`
   * latents, which are multiplied by `scale` first (`latents` moves to the decoder's thread).
   */
  decode(latents: Float32Array, rows: number, latentShape: [number, number, number], scale: number, channels: 1 | 3): Promise<{ images: Uint8Array[]; width: number; height: number }>;
  release(): Promise<void>;
}

type Job = SdRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/**
 * Threads whose model was released, kept a moment for the next model to open on (a
 * thread costs a module load — onnxruntime's binding and, under a TypeScript loader,
 * the compiler — which a test or bench that opens model after model would pay each
 * time). A parked thread holds no session and never keeps the process alive.
 */
const parked: Worker[] = [];
const PARKED_MS = 2000;
/** What takes a parked thread off the list: its listeners, removed when it is taken. */
const parkedListeners = new WeakMap<Worker, () => void>();

function startThread(): Worker {
  const worker = parked.pop();
  if (worker) {
    parkedListeners.get(worker)?.();
    return worker;
  }
  return new Worker(new URL('./_sd_worker.js', import.meta.url));
}

function park(worker: Worker): void {
  worker.unref();
  const leave = (): void => {
    const at = parked.indexOf(worker);
    if (at >= 0) parked.splice(at, 1);
  };
  worker.on('error', leave);
  worker.on('exit', leave);
  parkedListeners.set(worker, () => {
    worker.off('error', leave);
    worker.off('exit', leave);
  });
  parked.push(worker);
  setTimeout(() => {
    if (parked.includes(worker)) {
      leave();
      void worker.terminate();
    }
  }, PARKED_MS).unref();
}

/**
 * One model's worker thread: jobs are answered by id; a thread that fails or exits
 * fails its pending jobs and every later one. It keeps the process alive only while a
 * job is pending.
 */
class SdWorker {
  readonly #worker: Worker;
  readonly #kind: SdModelKind;
  readonly #file: string;
  readonly #pending = new Map<number, { resolve: (reply: SdReply) => void; reject: (err: Error) => void }>();
  #next = 0;
  #failure: Error | undefined;
  #closed = false;

  constructor(kind: SdModelKind, file: string) {
    this.#kind = kind;
    this.#file = file;
    this.#worker = startThread();
    this.#worker.unref();
    this.#worker.on('message', this.#onMessage);
    this.#worker.on('error', this.#onError);
    this.#worker.on('exit', this.#onExit);
  }

  readonly #onMessage = (reply: SdReply): void => this.#answer(reply);
  readonly #onError = (err: Error): void => {
    this.#fail(new MedsynError(ErrorCodes.SESSION_FAILED, `onnxruntime failed running ${this.#file}: its worker thread failed: ${err.message}`, { file: this.#file, cause: err }));
  };
  readonly #onExit = (code: number): void => {
    this.#fail(new MedsynError(ErrorCodes.SESSION_FAILED, `onnxruntime failed running ${this.#file}: its worker thread exited with code ${code} (out of memory?)`, { file: this.#file }));
  };

  call(job: Job, transfer: ArrayBuffer[] = []): Promise<SdReply> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...job, id }, transfer);
    });
  }

  /**
   * Releases the session and parks the thread for another model, or ends a thread
   * that failed; later calls fail.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const released = this.#failure ? false : await this.call({ op: 'release' }).then(
      () => true,
      () => false,
    );
    this.#fail(new MedsynError(ErrorCodes.SESSION_FAILED, `onnxruntime failed running ${this.#file}: the model was released`, { file: this.#file }));
    this.#worker.off('message', this.#onMessage);
    this.#worker.off('exit', this.#onExit);
    if (released) {
      this.#worker.off('error', this.#onError);
      park(this.#worker);
    } else {
      await this.#worker.terminate();
    }
  }

  #answer(reply: SdReply): void {
    const waiting = this.#pending.get(reply.id);
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#worker.unref();
    const runs = reply.runs ?? [];
    if (watchers.size > 0) {
      for (let i = 0; i + 1 < runs.length; i += 2) for (const watcher of watchers) watcher({ kind: this.#kind, start: runs[i]!, end: runs[i + 1]! });
    }
    if (!waiting) return;
    if (reply.error) {
      const { code, message, file, option, stack } = reply.error;
      const err = code ? new MedsynError(code, message, { ...(file !== undefined ? { file } : {}), ...(option !== undefined ? { option } : {}) }) : new Error(message);
      if (stack !== undefined) err.stack = stack;
      waiting.reject(err);
    } else {
      waiting.resolve(reply);
    }
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const { reject } of this.#pending.values()) reject(err);
    this.#pending.clear();
    this.#worker.unref();
  }
}

function badModel(file: string, detail: string): never {
  throw new MedsynError(ErrorCodes.BAD_MODEL, `Cannot use ${file}: ${detail}`, { file });
}

function readJson(file: string, required: boolean, hint: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) {
    if (!required) return undefined;
    throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot load Stable Diffusion model: ${file} is missing (${hint})`, { file });
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new MedsynError(ErrorCodes.BAD_MODEL, `Cannot load Stable Diffusion model: ${file} is not valid JSON`, { file, cause });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) badModel(file, 'it is not a JSON object');
  return value as Record<string, unknown>;
}

function positiveNumber(config: Record<string, unknown> | undefined, field: string, file: string): number | undefined {
  const value = config?.[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !(value > 0)) badModel(file, `${field} must be a positive number, got ${JSON.stringify(value)}`);
  return value;
}

function fixed(dim: Dim | undefined): number | undefined {
  return typeof dim === 'number' && dim > 0 ? dim : undefined;
}

function describe(entry: TensorMetadata): string {
  return `${entry.name} ${entry.type}[${entry.shape.join(', ')}]`;
}

/** The input named `name`, checked against what medsyn can feed. */
function input(part: Part, name: string, types: readonly string[], rank: number | readonly number[], what: string): TensorMetadata {
  const inputs = part.description.inputs;
  const entry = inputs.find((candidate) => candidate.name === name);
  if (!entry) badModel(part.file, `it has no input ${name} (${what}; its inputs: ${inputs.map(describe).join(', ') || 'none'})`);
  if (!types.includes(entry.type)) badModel(part.file, `input ${describe(entry)} must be ${types.join(' or ')} (${what})`);
  const ranks = typeof rank === 'number' ? [rank] : rank;
  if (!ranks.includes(entry.shape.length)) badModel(part.file, `input ${describe(entry)} must have ${ranks.join(' or ')} dimensions (${what})`);
  return entry;
}

/** The output named `name`, else the first one. */
function output(part: Part, name: string, rank: number, what: string): { name: string; type: FloatType; shape: readonly Dim[] } {
  const outputs = part.description.outputs;
  const entry = outputs.find((candidate) => candidate.name === name) ?? outputs[0];
  if (!entry) badModel(part.file, `it has no outputs (${what} expected)`);
  if (!(FLOAT_TYPES as readonly string[]).includes(entry.type)) badModel(part.file, `output ${describe(entry)} must be float32 or float16 (${what})`);
  if (entry.shape.length !== rank) badModel(part.file, `output ${describe(entry)} must have ${rank} dimensions (${what})`);
  return { name: entry.name, type: entry.type as FloatType, shape: entry.shape };
}

function onlyInputs(part: Part, known: readonly string[], what: string): void {
  const extra = part.description.inputNames.filter((name) => !known.includes(name));
  if (extra.length > 0) badModel(part.file, `it takes input ${extra.join(', ')} that medsyn cannot feed (${what} takes ${known.join(', ')})`);
}

const PARTS = {
  text_encoder: 'the CLIP text encoder',
  unet: 'the UNet',
  vae_decoder: 'the VAE decoder',
} as const;

/**
 * Opens the Stable Diffusion export in `dir` on the device of `session`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` for a missing folder, model file or config;
 *   `MEDSYN_ERR_BAD_MODEL` for a config or model that does not fit (naming the file and input);
 *   `MEDSYN_ERR_BAD_TOKENIZER`; `MEDSYN_ERR_PROVIDER_UNAVAILABLE`; `MEDSYN_ERR_SESSION_FAILED`
 */
export async function loadSdModel(dir: string, session: SessionOptions): Promise<SdModel> {
  const folder = resolve(dir);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot load Stable Diffusion model ${dir}: no such folder (export one with optimum-cli export onnx --task text-to-image)`, {
      file: dir,
      option: 'model',
    });
  }
  const layout = 'an optimum Stable Diffusion export has model_index.json, tokenizer/, text_encoder/, unet/, vae_decoder/ and scheduler/';
  readJson(join(folder, 'model_index.json'), true, layout);
  const schedulerConfig = await readSchedulerConfig(join(folder, 'scheduler'));
  const vaeConfigFile = join(folder, 'vae_decoder', 'config.json');
  const vaeConfig = readJson(vaeConfigFile, false, layout);
  const unetConfigFile = join(folder, 'unet', 'config.json');
  const unetConfig = readJson(unetConfigFile, false, layout);
  for (const name of Object.keys(PARTS)) {
    const file = join(folder, name, 'model.onnx');
    if (!existsSync(file)) throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot load Stable Diffusion model ${dir}: ${join(name, 'model.onnx')} is missing (${layout})`, { file });
  }
  const tokenizer = await loadClipTokenizer(join(folder, 'tokenizer'));

  const scalingFactor = positiveNumber(vaeConfig, 'scaling_factor', vaeConfigFile) ?? 0.18215;
  const blocks = vaeConfig?.['block_out_channels'];
  if (blocks !== undefined && (!Array.isArray(blocks) || blocks.length === 0)) badModel(vaeConfigFile, 'block_out_channels must be a non-empty list');
  const vaeFactor = 2 ** ((Array.isArray(blocks) ? blocks.length : 4) - 1);

  const names = Object.keys(PARTS) as (keyof typeof PARTS)[];
  const kinds: Record<keyof typeof PARTS, SdModelKind> = { text_encoder: 'text', unet: 'unet', vae_decoder: 'vae' };
  // One thread per model, all opening at once; a failure is told in the models' order.
  const workers = names.map((name) => new SdWorker(kinds[name], join(folder, name, 'model.onnx')));
  const release = async (): Promise<void> => {
    await Promise.all(workers.map((worker) => worker.close()));
  };
  try {
    const opened = await Promise.allSettled(names.map((name, i) => workers[i]!.call({ op: 'open', file: join(folder, name, 'model.onnx'), session })));
    const failed = opened.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    const parts = Object.fromEntries(
      names.map((name, i) => [name, { file: join(folder, name, 'model.onnx'), worker: workers[i]!, description: (opened[i] as PromiseFulfilledResult<SdReply>).value.description! }]),
    ) as Record<keyof typeof PARTS, Part>;
    const text = parts.text_encoder;
    const unet = parts.unet;
    const vae = parts.vae_decoder;

    // Text encoder: input_ids [batch, length] → last_hidden_state [batch, length, hidden].
    const textWhat = 'a CLIP text encoder takes input_ids [batch, 77]';
    onlyInputs(text, ['input_ids'], 'a CLIP text encoder export');
    const ids = input(text, 'input_ids', ['int32', 'int64'], 2, textWhat);
    const contextLength = fixed(ids.shape[1]) ?? tokenizer.maxTokens;
    if (contextLength !== tokenizer.maxTokens) {
      badModel(text.file, `input ${describe(ids)} takes ${contextLength} tokens but the tokenizer pads to ${tokenizer.maxTokens} (tokenizer/tokenizer_config.json model_max_length)`);
    }
    const textOutput = output(text, 'last_hidden_state', 3, 'last_hidden_state [batch, tokens, hidden]');
    const textSignature: TextSignature = {
      ids: { name: ids.name, type: ids.type as 'int32' | 'int64', length: contextLength },
      output: { name: textOutput.name, type: textOutput.type },
      batch: fixed(ids.shape[0]),
    };
    const hidden = fixed(textOutput.shape[2]);

    // UNet: sample [batch, 4, h, w], timestep, encoder_hidden_states [batch, 77, hidden] → out_sample.
    onlyInputs(unet, ['sample', 'timestep', 'encoder_hidden_states'], 'a Stable Diffusion 1.x/2.x UNet export');
    const sample = input(unet, 'sample', FLOAT_TYPES, 4, 'the noisy latents [batch, channels, height, width]');
    const timestep = input(unet, 'timestep', [...FLOAT_TYPES, 'int32', 'int64'], [0, 1], 'a scalar or one timestep per row');
    const states = input(unet, 'encoder_hidden_states', FLOAT_TYPES, 3, 'the text encoder\'s last_hidden_state [batch, tokens, hidden]');
    const textDim = fixed(states.shape[2]);
    if (hidden !== undefined && textDim !== undefined && hidden !== textDim) {
      badModel(unet.file, `input ${describe(states)} takes width ${textDim} but ${join('text_encoder', 'model.onnx')} gives ${hidden} (are the two from the same model?)`);
    }
    const unetOutput = output(unet, 'out_sample', 4, 'out_sample [batch, channels, height, width]');
    const latentChannels = fixed(sample.shape[1]) ?? positiveNumber(unetConfig, 'in_channels', unetConfigFile) ?? 4;
    const timestepLength = fixed(timestep.shape[0]);
    const unetSignature: UnetSignature = {
      sample: { name: sample.name, type: sample.type as FloatType },
      timestep: {
        name: timestep.name,
        type: timestep.type as UnetSignature['timestep']['type'],
        form: timestep.shape.length === 0 ? 'scalar' : timestepLength === undefined ? 'rows' : 'fixed',
        length: timestepLength ?? 1,
      },
      text: { name: states.name, type: states.type as FloatType },
      output: { name: unetOutput.name, type: unetOutput.type },
      batch: fixed(sample.shape[0]),
      height: fixed(sample.shape[2]),
      width: fixed(sample.shape[3]),
      contextLength,
    };
    const unetBatch = unetSignature.batch;
    if (unetSignature.timestep.form === 'fixed' && unetSignature.timestep.length !== 1 && unetSignature.timestep.length !== unetBatch) {
      badModel(unet.file, `input ${describe(timestep)} has ${unetSignature.timestep.length} entries but sample's batch is ${unetBatch ?? 'not fixed'}`);
    }

    // VAE decoder: latent_sample [batch, 4, h, w] → sample [batch, 3, 8h, 8w].
    onlyInputs(vae, ['latent_sample'], 'a VAE decoder export');
    const latent = input(vae, 'latent_sample', FLOAT_TYPES, 4, 'the latents [batch, channels, height, width]');
    const vaeLatentChannels = fixed(latent.shape[1]);
    if (vaeLatentChannels !== undefined && vaeLatentChannels !== latentChannels) {
      badModel(vae.file, `input ${describe(latent)} takes ${vaeLatentChannels} channels but the UNet makes ${latentChannels}`);
    }
    const vaeOutput = output(vae, 'sample', 4, 'sample [batch, 3, height, width]');
    const vaeSignature: VaeSignature = { latent: { name: latent.name, type: latent.type as FloatType }, output: { name: vaeOutput.name, type: vaeOutput.type }, batch: fixed(latent.shape[0]) };

    return {
      folder,
      name: basename(folder),
      tokenizer,
      schedulerConfig,
      scalingFactor,
      vaeFactor,
      latentChannels,
      contextLength,
      fixedLatent: { height: unetSignature.height, width: unetSignature.width },

      async encodeText(rowsIds) {
        const reply = await text.worker.call({ op: 'text', signature: textSignature, ids: rowsIds.map((ids) => [...ids]) });
        return reply.states!;
      },

      async drawLatents(seeds, latentSize, sigma) {
        const reply = await text.worker.call({ op: 'latents', seeds: [...seeds], latentSize, sigma });
        return reply.latents!;
      },

      async denoise(job) {
        const transfer = [job.textStates.buffer as ArrayBuffer, ...(job.latents ? [job.latents.buffer as ArrayBuffer] : [])];
        const reply = await unet.worker.call({ op: 'denoise', signature: unetSignature, job }, transfer);
        return reply.latents!;
      },

      async decode(latents, rows, latentShape, scale, channels) {
        const reply = await vae.worker.call({ op: 'decode', signature: vaeSignature, latents, rows, latentShape, scale, channels }, [latents.buffer as ArrayBuffer]);
        return { images: reply.images!, width: reply.width!, height: reply.height! };
      },

      release,
    };
  } catch (err) {
    await release();
    throw err;
  }
}
