/**
 * A Stable Diffusion export folder as the `onnx` backend runs it: the configs,
 * the tokenizer and three onnxruntime sessions, with the inputs and outputs read
 * from the models themselves (names, element types, fixed or symbolic
 * dimensions), and one function per model that takes and gives float32 rows
 * whatever the model's own types are. Private to `onnx_sd_generator.ts`.
 *
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ErrorCodes, MedsynError } from '../errors.js';
import { openSession, ort, type SessionOptions } from '../train/session.js';
import { loadClipTokenizer, type ClipTokenizer } from './clip_tokenizer.js';
import { fromFloat16, toFloat16 } from './_sd_float16.js';
import { readSchedulerConfig } from './schedulers/create_scheduler.js';
import type { SchedulerConfig } from './schedulers/scheduler.js';

type TensorMetadata = InferenceSession.TensorValueMetadata;
type Dim = number | string;

/** The element types a float input or output may have. */
const FLOAT_TYPES = ['float32', 'float16', 'float64'] as const;
type FloatType = (typeof FLOAT_TYPES)[number];

/** One model of the folder, opened. */
interface Part {
  readonly file: string;
  readonly session: InferenceSession;
}

/** What the text encoder takes and gives. */
interface TextSignature {
  ids: { name: string; type: 'int32' | 'int64'; length: number };
  output: { name: string; type: FloatType };
  batch: number | undefined;
}

/** What the UNet takes and gives. */
interface UnetSignature {
  sample: { name: string; type: FloatType };
  /** `scalar`: shape []; `fixed`: [n]; `rows`: [batch] (one per row). */
  timestep: { name: string; type: FloatType | 'int32' | 'int64'; form: 'scalar' | 'rows' | 'fixed'; length: number };
  text: { name: string; type: FloatType };
  output: { name: string; type: FloatType };
  batch: number | undefined;
  /** The latent height and width when the model fixes them. */
  height: number | undefined;
  width: number | undefined;
}

/** What the VAE decoder takes and gives. */
interface VaeSignature {
  latent: { name: string; type: FloatType };
  output: { name: string; type: FloatType };
  batch: number | undefined;
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
  /** The UNet's output for `rows` latents at one timestep. */
  unet(sample: Float32Array, rows: number, latentShape: readonly [number, number, number], timestep: number, textStates: Float32Array): Promise<Float32Array>;
  /** Images of `rows` latents (already divided by the scaling factor): float32 [rows, channels, H, W] and its shape. */
  decode(latents: Float32Array, rows: number, latentShape: readonly [number, number, number]): Promise<{ pixels: Float32Array; channels: number; height: number; width: number }>;
  release(): Promise<void>;
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

function tensorsOf(entries: readonly InferenceSession.ValueMetadata[]): TensorMetadata[] {
  return entries.filter((entry): entry is TensorMetadata => entry.isTensor);
}

function describe(entry: TensorMetadata): string {
  return `${entry.name} ${entry.type}[${entry.shape.join(', ')}]`;
}

/** The input named `name`, checked against what medsyn can feed. */
function input(part: Part, name: string, types: readonly string[], rank: number | readonly number[], what: string): TensorMetadata {
  const inputs = tensorsOf(part.session.inputMetadata);
  const entry = inputs.find((candidate) => candidate.name === name);
  if (!entry) badModel(part.file, `it has no input ${name} (${what}; its inputs: ${inputs.map(describe).join(', ') || 'none'})`);
  if (!types.includes(entry.type)) badModel(part.file, `input ${describe(entry)} must be ${types.join(' or ')} (${what})`);
  const ranks = typeof rank === 'number' ? [rank] : rank;
  if (!ranks.includes(entry.shape.length)) badModel(part.file, `input ${describe(entry)} must have ${ranks.join(' or ')} dimensions (${what})`);
  return entry;
}

/** The output named `name`, else the first one. */
function output(part: Part, name: string, rank: number, what: string): { name: string; type: FloatType; shape: readonly Dim[] } {
  const outputs = tensorsOf(part.session.outputMetadata);
  const entry = outputs.find((candidate) => candidate.name === name) ?? outputs[0];
  if (!entry) badModel(part.file, `it has no outputs (${what} expected)`);
  if (!(FLOAT_TYPES as readonly string[]).includes(entry.type)) badModel(part.file, `output ${describe(entry)} must be float32 or float16 (${what})`);
  if (entry.shape.length !== rank) badModel(part.file, `output ${describe(entry)} must have ${rank} dimensions (${what})`);
  return { name: entry.name, type: entry.type as FloatType, shape: entry.shape };
}

function onlyInputs(part: Part, known: readonly string[], what: string): void {
  const extra = part.session.inputNames.filter((name) => !known.includes(name));
  if (extra.length > 0) badModel(part.file, `it takes input ${extra.join(', ')} that medsyn cannot feed (${what} takes ${known.join(', ')})`);
}

/** A float tensor of `type` from float32 values. */
function floatTensor(type: FloatType, values: Float32Array, dims: readonly number[]): Tensor {
  if (type === 'float16') return new ort.Tensor('float16', toFloat16(values), dims);
  if (type === 'float64') return new ort.Tensor('float64', Float64Array.from(values), dims);
  return new ort.Tensor('float32', values, dims);
}

/** A float tensor's values as float32. */
function floatValues(tensor: Tensor): Float32Array {
  const data = tensor.data;
  if (tensor.type === 'float16') return data instanceof Uint16Array ? fromFloat16(data) : Float32Array.from(data as ArrayLike<number>);
  if (data instanceof Float32Array) return data;
  return Float32Array.from(data as ArrayLike<number>);
}

/** The fewest rows a model with a symbolic batch is run on. */
const MIN_ROWS = 2;

/** Rows `[start, start + count)` of `data`, the last repeated up to `padded` rows. */
function rowsOf(data: Float32Array, rowSize: number, start: number, count: number, padded: number): Float32Array {
  if (start === 0 && count === padded && data.length === count * rowSize) return data;
  const out = new Float32Array(padded * rowSize);
  out.set(data.subarray(start * rowSize, (start + count) * rowSize));
  for (let row = count; row < padded; row++) out.copyWithin(row * rowSize, (count - 1) * rowSize, count * rowSize);
  return out;
}

/**
 * Runs `run` on all rows at once (at least {@link MIN_ROWS}), or, for a model with a
 * fixed batch, that many rows at a time (the last call padded with copies of the last
 * row), and gives the rows' results.
 */
async function inBatches(
  rows: number,
  batch: number | undefined,
  run: (start: number, count: number, padded: number) => Promise<Float32Array>,
): Promise<Float32Array[]> {
  if (batch === undefined) {
    // onnxruntime's CPU matrix products take another path for one row (a matrix-vector
    // product) whose last bits differ: a lone row is run beside a copy of itself, so that
    // an image's bytes do not depend on its batch's size.
    const padded = Math.max(rows, MIN_ROWS);
    const result = await run(0, rows, padded);
    return [padded === rows ? result : result.subarray(0, (result.length / padded) * rows)];
  }
  const parts: Float32Array[] = [];
  for (let start = 0; start < rows; start += batch) {
    const count = Math.min(batch, rows - start);
    const result = await run(start, count, batch);
    parts.push(result.subarray(0, (result.length / batch) * count));
  }
  return parts;
}

function join32(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

async function runPart(part: Part, feeds: Record<string, Tensor>, outputName: string): Promise<Tensor> {
  let results: InferenceSession.ReturnType;
  try {
    results = await part.session.run(feeds, [outputName]);
  } catch (cause) {
    const message = (cause instanceof Error ? cause.message : String(cause)).split('\n')[0];
    throw new MedsynError(ErrorCodes.SESSION_FAILED, `onnxruntime failed running ${part.file}: ${message}`, { file: part.file, cause });
  }
  return results[outputName] as Tensor;
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

  const parts: Partial<Record<keyof typeof PARTS, Part>> = {};
  const release = async (): Promise<void> => {
    await Promise.all(Object.values(parts).map((part) => part.session.release()));
  };
  try {
    for (const name of Object.keys(PARTS) as (keyof typeof PARTS)[]) {
      const file = join(folder, name, 'model.onnx');
      parts[name] = { file, session: await openSession(file, session) };
    }
    const text = parts.text_encoder!;
    const unet = parts.unet!;
    const vae = parts.vae_decoder!;

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
        const { ids: idsSpec, output: out, batch } = textSignature;
        const length = idsSpec.length;
        const parts = await inBatches(rowsIds.length, batch, async (start, count, padded) => {
          const flat = idsSpec.type === 'int64' ? new BigInt64Array(padded * length) : new Int32Array(padded * length);
          for (let row = 0; row < padded; row++) {
            const source = rowsIds[start + Math.min(row, count - 1)]!;
            for (let i = 0; i < length; i++) {
              if (flat instanceof BigInt64Array) flat[row * length + i] = BigInt(source[i]!);
              else flat[row * length + i] = source[i]!;
            }
          }
          const tensor = idsSpec.type === 'int64' ? new ort.Tensor('int64', flat as BigInt64Array, [padded, length]) : new ort.Tensor('int32', flat as Int32Array, [padded, length]);
          return floatValues(await runPart(text, { [idsSpec.name]: tensor }, out.name));
        });
        return join32(parts);
      },

      async unet(latents, rows, [channels, height, width], t, textStates) {
        const { sample: sampleSpec, timestep: timeSpec, text: textSpec, output: out, batch } = unetSignature;
        const latentSize = channels * height * width;
        const textSize = textStates.length / rows;
        const parts = await inBatches(rows, batch, async (start, count, padded) => {
          const timeCount = timeSpec.form === 'scalar' ? 1 : timeSpec.form === 'rows' ? padded : timeSpec.length;
          const dims = timeSpec.form === 'scalar' ? [] : [timeCount];
          let time: Tensor;
          // An integer timestep is the float one truncated, as diffusers' ONNX pipeline casts it
          // (np.array([t], dtype=int64)): Euler's 978.61 is 978.
          if (timeSpec.type === 'int64') time = new ort.Tensor('int64', new BigInt64Array(timeCount).fill(BigInt(Math.trunc(t))), dims);
          else if (timeSpec.type === 'int32') time = new ort.Tensor('int32', new Int32Array(timeCount).fill(Math.trunc(t)), dims);
          else time = floatTensor(timeSpec.type, new Float32Array(timeCount).fill(t), dims);
          const feeds = {
            [sampleSpec.name]: floatTensor(sampleSpec.type, rowsOf(latents, latentSize, start, count, padded), [padded, channels, height, width]),
            [timeSpec.name]: time,
            [textSpec.name]: floatTensor(textSpec.type, rowsOf(textStates, textSize, start, count, padded), [padded, contextLength, textSize / contextLength]),
          };
          const result = floatValues(await runPart(unet, feeds, out.name));
          if (result.length !== padded * latentSize) badModel(unet.file, `output ${out.name} has ${result.length} values for ${padded} latents of ${latentSize}`);
          return result;
        });
        return join32(parts);
      },

      async decode(latents, rows, [channels, height, width]) {
        const { latent: latentSpec, output: out, batch } = vaeSignature;
        const latentSize = channels * height * width;
        let shape: readonly number[] = [];
        const parts = await inBatches(rows, batch, async (start, count, padded) => {
          const tensor = await runPart(vae, { [latentSpec.name]: floatTensor(latentSpec.type, rowsOf(latents, latentSize, start, count, padded), [padded, channels, height, width]) }, out.name);
          shape = tensor.dims;
          return floatValues(tensor);
        });
        const [, imageChannels, imageHeight, imageWidth] = shape as number[];
        if (shape.length !== 4 || (imageChannels !== 1 && imageChannels !== 3)) badModel(vae.file, `output ${out.name} has shape [${shape.join(', ')}], not [batch, 3, height, width]`);
        return { pixels: join32(parts), channels: imageChannels!, height: imageHeight!, width: imageWidth! };
      },

      release,
    };
  } catch (err) {
    await release();
    throw err;
  }
}
