/**
 * The worker thread of one Stable Diffusion model (text encoder, UNet or VAE decoder):
 * it opens the model's onnxruntime session and runs the jobs it is sent, so that the
 * three models — each on its own thread, as onnxruntime-node's `run()` blocks the
 * thread that calls it — work at the same time. The UNet's worker runs the whole
 * denoising loop (scheduler steps and guidance included) and the decoder's turns its
 * output into 8-bit pixels, so the main thread only passes buffers along, without
 * copies. Private to `_sd_model.ts`.
 *
 * @module
 */
import { parentPort } from 'node:worker_threads';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ErrorCodes, MedsynError } from '../errors.js';
import { openSession, ort, type SessionOptions } from '../train/session.js';
import { fromFloat16, toFloat16 } from './_sd_float16.js';
import { createScheduler } from './schedulers/create_scheduler.js';
import { SeededRandom } from './seeded_random.js';
import { CPU_SESSION_OPTIONS, type DenoiseJob, type FloatType, type SdReply, type SdRequest, type SdWorkerError, type SessionDescription, type TextSignature, type UnetSignature } from './_sd_protocol.js';

function badModel(file: string, detail: string): never {
  throw new MedsynError(ErrorCodes.BAD_MODEL, `Cannot use ${file}: ${detail}`, { file });
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

/** Opens this thread's model; on the CPU with {@link CPU_SESSION_OPTIONS}. */
function openPart(file: string, options: SessionOptions): Promise<InferenceSession> {
  return openSession(file, (options.device ?? 'cpu') === 'cpu' ? { ...options, ...CPU_SESSION_OPTIONS } : options);
}

/** The open session of this thread, and the native runs of the current job. */
let part: { file: string; session: InferenceSession } | undefined;
let runs: number[] = [];

const now = (): number => performance.timeOrigin + performance.now();

async function runPart(feeds: Record<string, Tensor>, outputName: string): Promise<Tensor> {
  const { file, session } = part!;
  let results: InferenceSession.ReturnType;
  const started = now();
  try {
    results = await session.run(feeds, [outputName]);
  } catch (cause) {
    const message = (cause instanceof Error ? cause.message : String(cause)).split('\n')[0];
    throw new MedsynError(ErrorCodes.SESSION_FAILED, `onnxruntime failed running ${file}: ${message}`, { file, cause });
  } finally {
    runs.push(started, now());
  }
  return results[outputName] as Tensor;
}

async function encodeText(signature: TextSignature, rowsIds: number[][]): Promise<Float32Array> {
  const { ids: idsSpec, output: out, batch } = signature;
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
    return floatValues(await runPart({ [idsSpec.name]: tensor }, out.name));
  });
  return join32(parts);
}

/** The UNet's output for `rows` latents at one timestep. */
async function unet(signature: UnetSignature, latents: Float32Array, rows: number, [channels, height, width]: readonly number[], t: number, textStates: Float32Array): Promise<Float32Array> {
  const { sample: sampleSpec, timestep: timeSpec, text: textSpec, output: out, batch, contextLength } = signature;
  const latentSize = channels! * height! * width!;
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
      [sampleSpec.name]: floatTensor(sampleSpec.type, rowsOf(latents, latentSize, start, count, padded), [padded, channels!, height!, width!]),
      [timeSpec.name]: time,
      [textSpec.name]: floatTensor(textSpec.type, rowsOf(textStates, textSize, start, count, padded), [padded, contextLength, textSize / contextLength]),
    };
    const result = floatValues(await runPart(feeds, out.name));
    if (result.length !== padded * latentSize) badModel(part!.file, `output ${out.name} has ${result.length} values for ${padded} latents of ${latentSize}`);
    return result;
  });
  return join32(parts);
}

/**
 * The starting latents of a group: N(0, 1) draws from each request's `SeededRandom(seed)`,
 * `latentSize` per request, times `sigma` (the scheduler's initial sigma); with the
 * generators, which a stochastic scheduler goes on drawing from.
 */
function startingLatents(seeds: readonly number[], latentSize: number, sigma: number): { latents: Float32Array; randoms: SeededRandom[] } {
  const latents = new Float32Array(seeds.length * latentSize);
  const randoms = seeds.map((seed, i) => {
    const random = new SeededRandom(seed);
    random.fillNormal(latents.subarray(i * latentSize, (i + 1) * latentSize));
    return random;
  });
  if (sigma !== 1) for (let i = 0; i < latents.length; i++) latents[i] = latents[i]! * sigma;
  return { latents, randoms };
}

/**
 * The denoising loop of one group: latents of N(0, 1) draws from each request's
 * `SeededRandom(seed)` times the scheduler's initial sigma, then one UNet call per
 * timestep (both halves together when guided) and a scheduler step; a stochastic
 * scheduler's noise comes from the same per-request generators.
 */
async function denoise(signature: UnetSignature, job: DenoiseJob): Promise<Float32Array> {
  const { name, config, steps, eta, karras } = job.scheduler;
  const scheduler = createScheduler(name, config, { steps, eta, ...(karras !== undefined ? { karras } : {}) });
  const [channels, height, width] = job.latentShape;
  const latentSize = channels * height * width;
  const count = job.seeds.length;
  // A deterministic scheduler's starting latents may come drawn (on the text encoder's
  // thread, while this one ran the last group); a stochastic one draws here, as it goes
  // on drawing its noise from the same generators.
  let latents: Float32Array;
  let randoms: SeededRandom[] = [];
  if (job.latents !== undefined && !scheduler.stochastic) {
    if (job.latents.length !== count * latentSize) throw new Error(`denoise: ${job.latents.length} starting latents for ${count} × ${latentSize}`);
    latents = job.latents;
  } else {
    ({ latents, randoms } = startingLatents(job.seeds, latentSize, scheduler.initNoiseSigma));
  }

  const { guidance, guided } = job;
  const rows = guided ? 2 * count : count;
  const batch = guided ? new Float32Array(2 * latents.length) : undefined;
  for (let index = 0; index < scheduler.timesteps.length; index++) {
    const input = scheduler.scaleModelInput(latents, index);
    if (batch) {
      batch.set(input, 0);
      batch.set(input, input.length);
    }
    const output = await unet(signature, batch ?? input, rows, job.latentShape, scheduler.timesteps[index]!, job.textStates);
    let prediction = output;
    if (guided) {
      // ε = ε_uncond + s · (ε_cond − ε_uncond), the unconditional half first, written over
      // that half: the output is this call's own array (a scheduler may keep it, as PNDM does).
      const half = latents.length;
      for (let i = 0; i < half; i++) output[i] = output[i]! + guidance * (output[half + i]! - output[i]!);
      prediction = output.subarray(0, half);
    }
    let noise: Float32Array | undefined;
    if (scheduler.stochastic) {
      noise = new Float32Array(latents.length);
      randoms.forEach((random, i) => random.fillNormal(noise!.subarray(i * latentSize, (i + 1) * latentSize)));
    }
    latents = scheduler.step(prediction, index, latents, noise);
  }
  return latents;
}

/** Images of `rows` latents: the decoder's output as 8-bit grayscale or RGB, one array per image. */
async function decode(request: Extract<SdRequest, { op: 'decode' }>): Promise<{ images: Uint8Array[]; width: number; height: number }> {
  const { signature, latents, rows, scale, channels: wanted } = request;
  const [channels, height, width] = request.latentShape;
  const { latent: latentSpec, output: out, batch } = signature;
  const scaled = new Float32Array(latents.length);
  for (let i = 0; i < latents.length; i++) scaled[i] = latents[i]! * scale;
  const latentSize = channels * height * width;
  let shape: readonly number[] = [];
  const parts = await inBatches(rows, batch, async (start, count, padded) => {
    const tensor = await runPart({ [latentSpec.name]: floatTensor(latentSpec.type, rowsOf(scaled, latentSize, start, count, padded), [padded, channels, height, width]) }, out.name);
    shape = tensor.dims;
    return floatValues(tensor);
  });
  const [, imageChannels, imageHeight, imageWidth] = shape as number[];
  if (shape.length !== 4 || (imageChannels !== 1 && imageChannels !== 3)) badModel(part!.file, `output ${out.name} has shape [${shape.join(', ')}], not [batch, 3, height, width]`);
  const pixels = join32(parts);
  const plane = imageHeight! * imageWidth!;
  const imageSize = imageChannels! * plane;
  const images = Array.from({ length: rows }, (_, n) => {
    const source = pixels.subarray(n * imageSize, (n + 1) * imageSize);
    const image = new Uint8Array(plane * wanted);
    if (wanted === 1) toGray(source, imageChannels!, plane, image);
    else toRgb(source, imageChannels!, plane, image);
    return image;
  });
  return { images, width: imageWidth!, height: imageHeight! };
}

/** 8-bit grayscale of one decoded image (planes [channels, plane]): the mean of its channels. */
function toGray(source: Float32Array, channels: number, plane: number, out: Uint8Array): void {
  if (channels === 3) {
    for (let p = 0; p < plane; p++) out[p] = toByte((source[p]! + source[plane + p]! + source[2 * plane + p]!) / 3);
  } else {
    for (let p = 0; p < plane; p++) out[p] = toByte(source[p]!);
  }
}

/** 8-bit interleaved RGB of one decoded image (planes [channels, plane]); one plane is repeated. */
function toRgb(source: Float32Array, channels: number, plane: number, out: Uint8Array): void {
  const green = Math.min(1, channels - 1) * plane;
  const blue = Math.min(2, channels - 1) * plane;
  for (let p = 0; p < plane; p++) {
    out[3 * p] = toByte(source[p]!);
    out[3 * p + 1] = toByte(source[green + p]!);
    out[3 * p + 2] = toByte(source[blue + p]!);
  }
}

/** A decoder value in [−1, 1] to a byte: x/2 + ½ clipped to [0, 1], times 255, rounded. */
function toByte(value: number): number {
  const unit = value / 2 + 0.5;
  if (!(unit > 0)) return 0;
  if (unit >= 1) return 255;
  return Math.round(unit * 255);
}

function describeSession(session: InferenceSession): SessionDescription {
  const tensors = (entries: readonly InferenceSession.ValueMetadata[]): InferenceSession.TensorValueMetadata[] =>
    entries
      .filter((entry): entry is InferenceSession.TensorValueMetadata => entry.isTensor)
      .map((entry) => ({ name: entry.name, isTensor: true, type: entry.type, shape: [...entry.shape] }));
  return { inputNames: [...session.inputNames], inputs: tensors(session.inputMetadata), outputs: tensors(session.outputMetadata) };
}

function errorOf(err: unknown): SdWorkerError {
  if (err instanceof MedsynError) {
    return {
      code: err.code,
      message: err.message,
      ...(err.file !== undefined ? { file: err.file } : {}),
      ...(err.option !== undefined ? { option: err.option } : {}),
      ...(err.stack !== undefined ? { stack: err.stack } : {}),
    };
  }
  return err instanceof Error ? { message: err.message, ...(err.stack !== undefined ? { stack: err.stack } : {}) } : { message: String(err) };
}

async function handle(request: SdRequest): Promise<[SdReply, ArrayBuffer[]]> {
  const { id } = request;
  switch (request.op) {
    case 'open':
      part = { file: request.file, session: await openPart(request.file, request.session) };
      return [{ id, description: describeSession(part.session) }, []];
    case 'text': {
      const states = await encodeText(request.signature, request.ids);
      return [{ id, states }, [states.buffer as ArrayBuffer]];
    }
    case 'latents': {
      const { latents } = startingLatents(request.seeds, request.latentSize, request.sigma);
      return [{ id, latents }, [latents.buffer as ArrayBuffer]];
    }
    case 'denoise': {
      const latents = await denoise(request.signature, request.job);
      return [{ id, latents }, [latents.buffer as ArrayBuffer]];
    }
    case 'decode': {
      const decoded = await decode(request);
      return [{ id, ...decoded }, decoded.images.map((image) => image.buffer as ArrayBuffer)];
    }
    case 'release':
      await part?.session.release();
      part = undefined;
      return [{ id }, []];
  }
}

const port = parentPort!;

/** Sends `reply`, moving the buffers in `transfer`; one that cannot move (memory onnxruntime owns) is copied. */
function post(reply: SdReply, transfer: ArrayBuffer[]): void {
  try {
    port.postMessage(reply, transfer);
  } catch {
    port.postMessage(reply);
  }
}

/** The jobs not yet answered: this thread runs them one at a time, in the order they came. */
let queue: Promise<void> = Promise.resolve();

// The main thread may send a job while the last one runs (a UNet job as soon as its group is
// encoded): it waits here, so the next denoising loop starts the moment the last one ends,
// without a round trip through the main thread's event loop (busy with PNG encoding and
// quality checks) between the two.
port.on('message', (request: SdRequest) => {
  queue = queue.then(async () => {
    runs = [];
    try {
      const [reply, transfer] = await handle(request);
      post({ ...reply, runs }, transfer);
    } catch (err) {
      port.postMessage({ id: request.id, error: errorOf(err), runs } satisfies SdReply);
    }
  });
});
