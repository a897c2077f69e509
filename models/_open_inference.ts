/**
 * The Open Inference Protocol v2 (KServe / Triton) as the `http` backend speaks it, with
 * no network code: model metadata to a plan of which tensors carry the prompt, seed,
 * steps and guidance, a batch of requests to an infer request body, and an infer
 * response (JSON, or JSON plus binary tensor data) back to images.
 *
 * Inputs are found by name among documented aliases (case-insensitive):
 *
 * | role            | names                                                              | datatypes              |
 * | --------------- | ------------------------------------------------------------------ | ---------------------- |
 * | prompt          | prompt, prompts, text, text_input, input_text, caption             | BYTES                  |
 * | negative prompt | negative_prompt, negative_prompts, negative_text, uncond_prompt    | BYTES                  |
 * | seed            | seed, seeds, random_seed, generator_seed, noise_seed               | INT64 UINT64 INT32 UINT32 |
 * | steps           | steps, num_inference_steps, num_steps, inference_steps, sampling_steps | INT8 … UINT64      |
 * | guidance        | guidance_scale, guidance, cfg_scale, cfg, scale                    | FP16 FP32 FP64         |
 * | width, height   | width, height (or image_size, size for both)                       | INT8 … UINT64          |
 *
 * A model with a single BYTES input takes the prompt there whatever its name. The
 * prompt and the seed are required; a model input that fits no role is an error at
 * start, since the server would refuse every request without it.
 *
 * The image is the output named image, images, generated_image, output_image, output,
 * pixel_values or sample (or the model's only output): UINT8 (0 … 255) or FP16/FP32/FP64
 * (0 … 1, clipped), laid out `[B,H,W]`, `[B,H,W,C]` or `[B,C,H,W]` with C 1, 3 or 4
 * (alpha dropped); a model without a batch dimension may answer `[H,W]`, `[H,W,C]` or
 * `[C,H,W]` for a single request.
 *
 * @module
 */
import { ErrorCodes, MedsynError } from '../errors.js';
import type { GeneratedImage, GenerationMiss, GenerationRequest } from './generator.js';

/** A tensor as the metadata declares it: `-1` in `shape` for a dimension of any size. */
export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

/** `GET /v2/models/NAME`: the model's versions and tensors. */
export interface ModelMetadata {
  name: string;
  versions: string[];
  platform?: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

/** The model inputs medsyn fills. */
export type InputRole = 'prompt' | 'negativePrompt' | 'seed' | 'steps' | 'guidance' | 'width' | 'height' | 'size';

/** Which model input takes which role, and the output that holds the images. */
export interface InferencePlan {
  inputs: Array<{ role: InputRole; tensor: TensorMetadata; batched: boolean }>;
  output: TensorMetadata;
  /** The most images one request may carry: 1 when an input's batch dimension is fixed at 1. */
  maxBatch: number;
}

/** What goes into each request besides the prompts and seeds. */
export interface InferenceSettings {
  negativePrompt: string;
  steps: number;
  guidance: number;
  size: number;
}

const INPUT_ALIASES: Record<InputRole, readonly string[]> = {
  prompt: ['prompt', 'prompts', 'text', 'text_input', 'input_text', 'caption'],
  negativePrompt: ['negative_prompt', 'negative_prompts', 'negative_text', 'uncond_prompt'],
  seed: ['seed', 'seeds', 'random_seed', 'generator_seed', 'noise_seed'],
  steps: ['steps', 'num_inference_steps', 'num_steps', 'inference_steps', 'sampling_steps'],
  guidance: ['guidance_scale', 'guidance', 'cfg_scale', 'cfg', 'scale'],
  width: ['width'],
  height: ['height'],
  size: ['image_size', 'size'],
};

const OUTPUT_ALIASES = ['image', 'images', 'generated_image', 'output_image', 'output', 'pixel_values', 'sample'];

const INTEGER_TYPES = ['INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64'];
const FLOAT_TYPES = ['FP16', 'FP32', 'FP64'];
const ROLE_TYPES: Record<InputRole, readonly string[]> = {
  prompt: ['BYTES'],
  negativePrompt: ['BYTES'],
  seed: ['INT64', 'UINT64', 'INT32', 'UINT32'],
  steps: INTEGER_TYPES,
  guidance: FLOAT_TYPES,
  width: INTEGER_TYPES,
  height: INTEGER_TYPES,
  size: INTEGER_TYPES,
};
/** Roles that differ image by image: they need a batch dimension. */
const PER_IMAGE: ReadonlySet<InputRole> = new Set(['prompt', 'seed']);
const IMAGE_TYPES = ['UINT8', 'FP16', 'FP32', 'FP64'];

/**
 * Checks the body of `GET /v2/models/NAME`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_RESPONSE` when it is not model metadata
 */
export function parseModelMetadata(body: unknown, where: string): ModelMetadata {
  const bad = (detail: string): never => {
    throw new MedsynError(ErrorCodes.BAD_RESPONSE, `Bad model metadata from ${where}: ${detail}`);
  };
  if (!isObject(body)) return bad('not a JSON object');
  const tensors = (field: 'inputs' | 'outputs'): TensorMetadata[] => {
    const list = body[field];
    if (!Array.isArray(list)) return bad(`no "${field}" list`);
    return list.map((tensor, i) => {
      if (!isObject(tensor) || typeof tensor['name'] !== 'string' || typeof tensor['datatype'] !== 'string' || !Array.isArray(tensor['shape'])) {
        return bad(`${field}[${i}] is not a tensor (name, datatype, shape)`);
      }
      const shape = tensor['shape'].map(Number);
      if (shape.some((dim) => !Number.isInteger(dim) || dim < -1)) bad(`${field}[${i}] (${tensor['name']}) has a bad shape ${JSON.stringify(tensor['shape'])}`);
      return { name: tensor['name'], datatype: tensor['datatype'].toUpperCase(), shape };
    });
  };
  return {
    name: typeof body['name'] === 'string' ? body['name'] : '',
    versions: Array.isArray(body['versions']) ? body['versions'].map(String) : [],
    ...(typeof body['platform'] === 'string' ? { platform: body['platform'] } : {}),
    inputs: tensors('inputs'),
    outputs: tensors('outputs'),
  };
}

/**
 * Matches the model's tensors to what medsyn sends and reads (see the module doc).
 *
 * @param maxBatchSize the model configuration's `max_batch_size` where the server tells it (Triton), else undefined
 * @throws {MedsynError} `MEDSYN_ERR_BAD_MODEL` naming the input or output that does not fit
 */
export function planInference(metadata: ModelMetadata, maxBatchSize: number | undefined, where: string): InferencePlan {
  const bad = (detail: string): never => {
    throw new MedsynError(ErrorCodes.BAD_MODEL, `The model at ${where} does not fit the http backend: ${detail}`);
  };
  const inputs: InferencePlan['inputs'] = [];
  const taken = new Set<InputRole>();
  const onlyBytes = metadata.inputs.filter((tensor) => tensor.datatype === 'BYTES');
  let maxBatch = maxBatchSize !== undefined && maxBatchSize > 0 ? maxBatchSize : Infinity;
  for (const tensor of metadata.inputs) {
    const lower = tensor.name.toLowerCase();
    let role = (Object.keys(INPUT_ALIASES) as InputRole[]).find((candidate) => INPUT_ALIASES[candidate].includes(lower));
    if (role === undefined && onlyBytes.length === 1 && onlyBytes[0] === tensor && metadata.inputs.every((other) => !INPUT_ALIASES.prompt.includes(other.name.toLowerCase()))) {
      role = 'prompt';
    }
    if (role === undefined) {
      return bad(
        `its input ${tensor.name} (${tensor.datatype} ${JSON.stringify(tensor.shape)}) is none medsyn fills (${(Object.keys(INPUT_ALIASES) as InputRole[]).map((r) => `${r}: ${INPUT_ALIASES[r].join('|')}`).join('; ')})`,
      );
    }
    if (taken.has(role)) bad(`two inputs take the ${role} (${inputs.find((input) => input.role === role)!.tensor.name} and ${tensor.name})`);
    taken.add(role);
    if (!ROLE_TYPES[role].includes(tensor.datatype)) bad(`its ${role} input ${tensor.name} is ${tensor.datatype}, expected ${ROLE_TYPES[role].join(' or ')}`);
    const batched = tensor.shape.length > 0;
    if (!batched && PER_IMAGE.has(role)) bad(`its ${role} input ${tensor.name} is a scalar: it needs a batch dimension (shape [-1] or [-1,1])`);
    if (batched) {
      const [first, ...rest] = tensor.shape;
      if (first !== -1 && first !== 1) bad(`its input ${tensor.name} has a fixed batch dimension of ${first} (expected -1, or 1 for one image a request)`);
      if (first === 1) maxBatch = 1;
      if (rest.some((dim) => dim !== 1 && dim !== -1)) bad(`its input ${tensor.name} has shape ${JSON.stringify(tensor.shape)}: one value per image takes [-1] or [-1,1]`);
    }
    inputs.push({ role, tensor, batched });
  }
  if (!taken.has('prompt')) bad(`it has no prompt input (a BYTES input named ${INPUT_ALIASES.prompt.join(', ')}); its inputs are ${describe(metadata.inputs)}`);
  if (!taken.has('seed')) {
    bad(`it has no seed input (an INT64 input named ${INPUT_ALIASES.seed.join(', ')}): medsyn sends every image's own seed so that a run can be repeated; its inputs are ${describe(metadata.inputs)}`);
  }
  const output =
    metadata.outputs.find((tensor) => OUTPUT_ALIASES.includes(tensor.name.toLowerCase())) ?? (metadata.outputs.length === 1 ? metadata.outputs[0] : undefined);
  if (output === undefined) return bad(`none of its outputs is the image (named ${OUTPUT_ALIASES.join(', ')}, or a single output); its outputs are ${describe(metadata.outputs)}`);
  if (!IMAGE_TYPES.includes(output.datatype)) bad(`its image output ${output.name} is ${output.datatype}, expected ${IMAGE_TYPES.join(', ')}`);
  if (output.shape.length < 2 || output.shape.length > 4) bad(`its image output ${output.name} has shape ${JSON.stringify(output.shape)}, expected [B,H,W], [B,H,W,C] or [B,C,H,W]`);
  return { inputs, output, maxBatch };
}

/**
 * The JSON body of one `POST …/infer` for `requests`: one value per image for the prompt
 * and seed, the shared settings for the rest.
 */
export function inferRequestBody(plan: InferencePlan, requests: readonly GenerationRequest[], settings: InferenceSettings, binaryOutput: boolean): string {
  const count = requests.length;
  const inputs = plan.inputs.map(({ role, tensor, batched }) => {
    const shape = batched ? [count, ...tensor.shape.slice(1).map(() => 1)] : [];
    const values = batched ? count : 1;
    let data: Array<string | number>;
    switch (role) {
      case 'prompt':
        data = requests.map((request) => request.report.prompt);
        break;
      case 'seed':
        data = requests.map((request) => seedFor(tensor.datatype, request.seed));
        break;
      case 'negativePrompt':
        data = Array<string>(values).fill(settings.negativePrompt);
        break;
      case 'steps':
        data = Array<number>(values).fill(settings.steps);
        break;
      case 'guidance':
        data = Array<number>(values).fill(settings.guidance);
        break;
      default:
        data = Array<number>(values).fill(settings.size);
    }
    return { name: tensor.name, shape, datatype: tensor.datatype, data };
  });
  const output = binaryOutput ? { name: plan.output.name, parameters: { binary_data: true } } : { name: plan.output.name };
  return JSON.stringify({ inputs, outputs: [output] });
}

/** The seed as the model's seed input holds it: whole for 64-bit inputs, the low 31 or 32 bits for 32-bit ones. */
export function seedFor(datatype: string, seed: number): number {
  if (datatype === 'INT32') return seed % 2 ** 31;
  if (datatype === 'UINT32') return seed % 2 ** 32;
  return seed;
}

/** An infer response split into its JSON header and the binary tensor data after it. */
export interface InferResponse {
  header: Record<string, unknown>;
  binary?: Uint8Array;
}

/**
 * Splits a response body: with `Inference-Header-Content-Length` the first that many bytes
 * are the JSON header and the rest binary tensor data, else the whole body is JSON.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_RESPONSE` for a body that is not JSON or a header length that does not fit
 */
export function splitInferResponse(body: Uint8Array, headerLength: string | undefined, where: string): InferResponse {
  let jsonBytes = body;
  let binary: Uint8Array | undefined;
  if (headerLength !== undefined) {
    const length = Number(headerLength);
    if (!/^\d+$/u.test(headerLength.trim()) || length > body.byteLength) {
      throw new MedsynError(ErrorCodes.BAD_RESPONSE, `Bad answer from ${where}: Inference-Header-Content-Length ${JSON.stringify(headerLength.slice(0, 20))} does not fit a body of ${body.byteLength} bytes`);
    }
    jsonBytes = body.subarray(0, length);
    binary = body.subarray(length);
  }
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(jsonBytes.buffer, jsonBytes.byteOffset, jsonBytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new MedsynError(ErrorCodes.BAD_RESPONSE, `Bad answer from ${where}: the body is not JSON (${(err as Error).message}; truncated?)`, { cause: err });
  }
  if (!isObject(header)) throw new MedsynError(ErrorCodes.BAD_RESPONSE, `Bad answer from ${where}: the body is not a JSON object`);
  return binary === undefined ? { header } : { header, binary };
}

/**
 * The images of an infer response, one per request, in order: an image, or a miss for a
 * request whose pixels are not an image (a value out of range, not a number).
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_RESPONSE` when the output is missing or its shape, type or size is wrong for the batch
 */
export function decodeImages(
  response: InferResponse,
  plan: InferencePlan,
  count: number,
  channels: 1 | 3,
  where: string,
): Array<GeneratedImage | GenerationMiss> {
  const bad = (detail: string): never => {
    throw new MedsynError(ErrorCodes.BAD_RESPONSE, `Bad answer from ${where}: ${detail}`);
  };
  const outputs = response.header['outputs'];
  if (!Array.isArray(outputs)) return bad('no "outputs" list');
  // Binary data follows the header in the order of the outputs that have binary_data_size.
  let binaryOffset = 0;
  let found: { tensor: Record<string, unknown>; binary?: Uint8Array } | undefined;
  for (const tensor of outputs) {
    if (!isObject(tensor)) return bad('an output is not an object');
    const parameters = isObject(tensor['parameters']) ? tensor['parameters'] : {};
    const size = parameters['binary_data_size'];
    let binary: Uint8Array | undefined;
    if (size !== undefined) {
      if (response.binary === undefined) return bad(`output ${String(tensor['name'])} has binary_data_size but the answer has no binary part`);
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0 || binaryOffset + size > response.binary.byteLength) {
        return bad(`output ${String(tensor['name'])} has binary_data_size ${JSON.stringify(size)}, but only ${response.binary.byteLength - binaryOffset} bytes are left (truncated?)`);
      }
      binary = response.binary.subarray(binaryOffset, binaryOffset + size);
      binaryOffset += size;
    }
    if (tensor['name'] === plan.output.name) found = binary === undefined ? { tensor } : { tensor, binary };
  }
  if (found === undefined) return bad(`no output ${plan.output.name}`);
  const { tensor } = found;
  const datatype = typeof tensor['datatype'] === 'string' ? tensor['datatype'].toUpperCase() : plan.output.datatype;
  if (!IMAGE_TYPES.includes(datatype)) bad(`output ${plan.output.name} is ${datatype}, expected ${IMAGE_TYPES.join(', ')}`);
  const shape = Array.isArray(tensor['shape']) ? tensor['shape'].map(Number) : undefined;
  if (shape === undefined || shape.some((dim) => !Number.isInteger(dim) || dim < 0)) return bad(`output ${plan.output.name} has no shape or a bad one`);
  const layout = imageLayout(shape, count, plan.output.shape) ?? bad(`output ${plan.output.name} has shape ${JSON.stringify(shape)}, which is no layout of ${count} image${count === 1 ? '' : 's'} ([B,H,W], [B,H,W,C] or [B,C,H,W], C 1, 3 or 4)`);
  const total = count * layout.height * layout.width * layout.channels;

  let values: ArrayLike<number>;
  if (found.binary !== undefined) {
    values = binaryValues(found.binary, datatype) ?? bad(`output ${plan.output.name} has ${found.binary.byteLength} bytes of binary data, not a whole number of ${datatype} values`);
  } else {
    const data = tensor['data'];
    if (!Array.isArray(data)) return bad(`output ${plan.output.name} has neither "data" nor binary data`);
    values = data.flat(Infinity) as number[];
  }
  if (values.length !== total) bad(`output ${plan.output.name} holds ${values.length} values, but its shape ${JSON.stringify(shape)} needs ${total}`);

  const perImage = total / count;
  const results: Array<GeneratedImage | GenerationMiss> = [];
  for (let i = 0; i < count; i++) {
    results.push(toImage(values, i * perImage, layout, datatype === 'UINT8', channels));
  }
  return results;
}

interface ImageLayout {
  height: number;
  width: number;
  channels: number;
  /** Channels first ([C,H,W]) rather than interleaved ([H,W,C]). */
  planar: boolean;
}

/** The image size and layout of an output of `shape` for `count` images, or undefined when it fits none. */
function imageLayout(shape: number[], count: number, declared: number[]): ImageLayout | undefined {
  const isChannels = (dim: number | undefined): boolean => dim === 1 || dim === 3 || dim === 4;
  const hwc = (h: number, w: number, c: number): ImageLayout => ({ height: h, width: w, channels: c, planar: false });
  const chw = (c: number, h: number, w: number): ImageLayout => ({ height: h, width: w, channels: c, planar: true });
  // Interleaved unless only the channels-first reading fits, or the metadata says channels first.
  const pick = (a: number, b: number, c: number, declaredFirst: number | undefined, declaredLast: number | undefined): ImageLayout | undefined => {
    const lastFits = isChannels(c);
    const firstFits = isChannels(a);
    if (firstFits && (!lastFits || (isChannels(declaredFirst) && !isChannels(declaredLast)))) return chw(a, b, c);
    return lastFits ? hwc(a, b, c) : undefined;
  };
  const [a, b, c, d] = shape as [number, number, number, number];
  switch (shape.length) {
    case 4:
      return a === count ? pick(b, c, d, declared[1], declared[3]) : undefined;
    case 3:
      if (a === count) return hwc(b, c, 1);
      return count === 1 ? pick(a, b, c, declared[0], declared[2]) : undefined;
    case 2:
      return count === 1 ? hwc(a, b, 1) : undefined;
    default:
      return undefined;
  }
}

/** Typed values over little-endian binary tensor data, or undefined when the length does not fit the type. */
function binaryValues(bytes: Uint8Array, datatype: string): ArrayLike<number> | undefined {
  const width = datatype === 'UINT8' ? 1 : datatype === 'FP16' ? 2 : datatype === 'FP32' ? 4 : 8;
  if (bytes.byteLength % width !== 0) return undefined;
  if (width === 1) return bytes;
  // Copy to an aligned buffer: the binary part may start at any offset.
  const aligned = new Uint8Array(bytes);
  const view = new DataView(aligned.buffer);
  const count = bytes.byteLength / width;
  if (width === 4) return new Float32Array(aligned.buffer);
  if (width === 8) return new Float64Array(aligned.buffer);
  const halves = new Float32Array(count);
  for (let i = 0; i < count; i++) halves[i] = halfToFloat(view.getUint16(i * 2, true));
  return halves;
}

/** An IEEE 754 half-precision value (as its 16 bits) as a number. */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** One image out of the output values, as 8-bit pixels with `channels` channels, or a miss. */
function toImage(values: ArrayLike<number>, start: number, layout: ImageLayout, isUint8: boolean, channels: 1 | 3): GeneratedImage | GenerationMiss {
  const { height, width } = layout;
  const pixelCount = height * width;
  if (pixelCount === 0) return { miss: { reason: 'bad_image', message: `The server returned an empty image (${height}×${width})` } };
  const sourceChannels = Math.min(layout.channels, 3);
  const pixels = new Uint8Array(pixelCount * channels);
  const at = (pixel: number, channel: number): number =>
    values[start + (layout.planar ? channel * pixelCount + pixel : pixel * layout.channels + channel)]!;
  const byte = (value: number): number => {
    if (typeof value !== 'number' || Number.isNaN(value)) return NaN;
    if (isUint8) return Number.isInteger(value) && value >= 0 && value <= 255 ? value : NaN;
    if (!Number.isFinite(value)) return NaN;
    return Math.round(Math.min(1, Math.max(0, value)) * 255);
  };
  for (let pixel = 0; pixel < pixelCount; pixel++) {
    let r: number;
    let g: number;
    let b: number;
    if (sourceChannels === 1) {
      r = g = b = byte(at(pixel, 0));
    } else {
      r = byte(at(pixel, 0));
      g = byte(at(pixel, 1));
      b = byte(at(pixel, 2));
    }
    if (Number.isNaN(r) || Number.isNaN(g) || Number.isNaN(b)) {
      const raw = [at(pixel, 0), sourceChannels === 1 ? undefined : at(pixel, 1), sourceChannels === 1 ? undefined : at(pixel, 2)].filter((v) => v !== undefined);
      return {
        miss: {
          reason: 'bad_image',
          message: `The server returned a malformed image: pixel ${pixel} is ${raw.map((v) => JSON.stringify(v) ?? String(v)).join(',')}, not ${isUint8 ? 'an integer in 0 … 255' : 'a finite number'}`,
        },
      };
    }
    if (channels === 1) {
      pixels[pixel] = sourceChannels === 1 ? r : (77 * r + 150 * g + 29 * b + 128) >> 8;
    } else {
      pixels[pixel * 3] = r;
      pixels[pixel * 3 + 1] = g;
      pixels[pixel * 3 + 2] = b;
    }
  }
  return { pixels, width, height, channels };
}

/** The server's own error text out of an error body: the protocol's `{"error": "…"}`, or the start of the text. */
export function serverErrorText(body: Uint8Array): string {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  let message = text;
  try {
    const parsed: unknown = JSON.parse(text);
    if (isObject(parsed) && typeof parsed['error'] === 'string') message = parsed['error'];
  } catch {
    // Not JSON: the text as it is.
  }
  message = message.replace(/[\u0000-\u001f\u007f]+/gu, ' ').trim();
  return message.length > 500 ? `${message.slice(0, 500)}…` : message;
}

function describe(tensors: readonly TensorMetadata[]): string {
  return tensors.length === 0 ? 'none' : tensors.map((tensor) => `${tensor.name} (${tensor.datatype} ${JSON.stringify(tensor.shape)})`).join(', ');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
