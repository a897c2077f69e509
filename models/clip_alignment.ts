/**
 * Image–text alignment with a CLIP-style pair of ONNX encoders: the cosine
 * similarity of an image's and a caption's embeddings. Reads a model folder in
 * the layout @huggingface/transformers loads for CLIP models (what optimum
 * writes): `preprocessor_config.json`, the tokenizer files, and
 * `onnx/vision_model.onnx` + `onnx/text_model.onnx`. Never touches the network.
 *
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';
import { openSession, ort, type SessionOptions } from '../train/session.js';
import type { GrayImage } from '../transforms/image_stats.js';
import type { AlignmentScorer } from '../transforms/quality_filter.js';
import { clipOutputSize, parseClipImageProcessor, preprocessClipImage, type ClipImageProcessorConfig } from './clip_image_processor.js';
import { loadClipTokenizer, type ClipTokenizer } from './clip_tokenizer.js';

/** Options of {@link loadClipAlignment}. */
export interface ClipAlignmentOptions extends SessionOptions {
  /**
   * Images (or captions) per encoder run for a model whose batch size is not
   * fixed; a model exported with a fixed batch size runs that many at a time.
   * @default 32
   */
  batchSize?: number;
}

/** One encoder: its session, the input and output it is fed and read by, and its batch size. */
interface Tower {
  readonly file: string;
  readonly session: InferenceSession;
  /** The fixed batch size, or undefined when the model takes any. */
  readonly fixedBatch: number | undefined;
  readonly output: string;
}

interface TextTower extends Tower {
  readonly length: number;
  readonly idType: 'int64' | 'int32';
  /** The attention mask input's type, or undefined when the model has none. */
  readonly maskType: 'int64' | 'int32' | undefined;
}

interface VisionTower extends Tower {
  readonly height: number;
  readonly width: number;
}

const MODEL_FILES = { vision: 'vision_model.onnx', text: 'text_model.onnx' } as const;

/**
 * A loaded CLIP-style encoder pair that scores images against captions. Owns
 * two onnxruntime sessions: call {@link release} when done.
 *
 * @example
 * ```ts
 * const scorer = await loadClipAlignment('fixtures/clip-tiny');
 * const [similarity] = await scorer.score([{ pixels, width: 64, height: 64 }], ['Large left pleural effusion.']);
 * await scorer.release();
 * ```
 */
export class ClipAlignment implements AlignmentScorer {
  /** `clip:<folder name>`, for sample metadata and summaries. */
  readonly model: string;
  /** The model folder, resolved. */
  readonly dir: string;
  readonly #vision: VisionTower;
  readonly #text: TextTower;
  readonly #processor: ClipImageProcessorConfig;
  readonly #tokenizer: ClipTokenizer;
  readonly #batchSize: number;

  private constructor(parts: {
    dir: string;
    vision: VisionTower;
    text: TextTower;
    processor: ClipImageProcessorConfig;
    tokenizer: ClipTokenizer;
    batchSize: number;
  }) {
    this.dir = parts.dir;
    this.model = `clip:${basename(parts.dir)}`;
    this.#vision = parts.vision;
    this.#text = parts.text;
    this.#processor = parts.processor;
    this.#tokenizer = parts.tokenizer;
    this.#batchSize = parts.batchSize;
  }

  /**
   * Loads the pair in `dir`. See {@link loadClipAlignment}.
   *
   * @throws {MedsynError} as {@link loadClipAlignment}
   */
  static async load(dir: string, options: ClipAlignmentOptions = {}): Promise<ClipAlignment> {
    const batchSize = options.batchSize ?? 32;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) invalidOption('batchSize', `must be a whole number ≥ 1, got ${String(options.batchSize)}`);
    const folder = resolve(dir);
    if (!existsSync(folder) || !statSync(folder).isDirectory()) {
      throw new MedsynError(
        ErrorCodes.NOT_FOUND,
        `Cannot load alignment model ${dir}: no such folder (it needs preprocessor_config.json, the tokenizer files and onnx/${MODEL_FILES.vision}, onnx/${MODEL_FILES.text})`,
        { file: dir },
      );
    }
    const processorPath = join(folder, 'preprocessor_config.json');
    const processor = parseClipImageProcessor(readJson(processorPath, dir), processorPath);
    const visionPath = modelFile(folder, dir, 'vision');
    const textPath = modelFile(folder, dir, 'text');
    const tokenizer = await loadClipTokenizer(folder);

    const sessions: InferenceSession[] = [];
    try {
      const visionSession = await openSession(visionPath, options);
      sessions.push(visionSession);
      const textSession = await openSession(textPath, options);
      sessions.push(textSession);
      const vision = visionTower(visionPath, visionSession, processor);
      const text = textTower(textPath, textSession, tokenizer);
      return new ClipAlignment({ dir: folder, vision, text, processor, tokenizer, batchSize });
    } catch (err) {
      await Promise.all(sessions.map((session) => session.release()));
      throw err;
    }
  }

  /**
   * The image embeddings, one per image, as the model writes them (not normalised).
   *
   * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for an image whose pixel count is not width × height,
   *   `MEDSYN_ERR_SESSION_FAILED` when onnxruntime fails
   */
  async embedImages(images: readonly GrayImage[]): Promise<Float32Array[]> {
    const { height, width } = this.#vision;
    const plane = 3 * height * width;
    return this.#runChunks(this.#vision, images.length, async (start, count, rows) => {
      const pixels = new Float32Array(rows * plane);
      for (let i = 0; i < count; i++) {
        const image = images[start + i]!;
        const [outHeight, outWidth] = clipOutputSize(this.#processor, image.height, image.width);
        if (outHeight !== height || outWidth !== width) {
          invalidOption(
            'images',
            `image ${start + i} (${image.width} × ${image.height}) preprocesses to ${outWidth} × ${outHeight}, ${this.#vision.file} takes ${width} × ${height} (the model needs center cropping in preprocessor_config.json)`,
          );
        }
        await preprocessClipImage(image, this.#processor, pixels, i * plane);
      }
      return { pixel_values: new ort.Tensor('float32', pixels, [rows, 3, height, width]) };
    });
  }

  /**
   * The text embeddings, one per caption, as the model writes them (not normalised).
   * Captions are padded or truncated to the model's context length (EOS kept last).
   *
   * @throws {MedsynError} `MEDSYN_ERR_SESSION_FAILED` when onnxruntime fails
   */
  async embedTexts(captions: readonly string[]): Promise<Float32Array[]> {
    const { length, idType, maskType } = this.#text;
    const padId = this.#tokenizer.encodePadded('').at(-1)!;
    return this.#runChunks(this.#text, captions.length, async (start, count, rows) => {
      const ids = new Array<number>(rows * length).fill(padId);
      const mask = new Array<number>(rows * length).fill(0);
      for (let i = 0; i < count; i++) {
        const caption = captions[start + i]!;
        if (typeof caption !== 'string') invalidOption('captions', `caption ${start + i} is not a string`);
        const tokens = this.#tokenizer.encode(caption);
        const kept = tokens.length > length ? [...tokens.slice(0, length - 1), tokens.at(-1)!] : tokens;
        for (let j = 0; j < kept.length; j++) {
          ids[i * length + j] = kept[j]!;
          mask[i * length + j] = 1;
        }
      }
      const feeds: Record<string, Tensor> = { input_ids: integerTensor(idType, ids, [rows, length]) };
      if (maskType) feeds['attention_mask'] = integerTensor(maskType, mask, [rows, length]);
      return feeds;
    });
  }

  /**
   * The cosine similarity of each image with the caption at the same index, in [−1, 1]
   * (0 where an embedding is all zeros).
   *
   * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` when the lists differ in length or an image is malformed,
   *   `MEDSYN_ERR_SESSION_FAILED` when onnxruntime fails
   */
  async score(images: readonly GrayImage[], captions: readonly string[]): Promise<number[]> {
    if (images.length !== captions.length) invalidOption('captions', `got ${captions.length} captions for ${images.length} images (one caption per image)`);
    if (images.length === 0) return [];
    const imageEmbeds = await this.embedImages(images);
    const textEmbeds = await this.embedTexts(captions);
    if (imageEmbeds[0]!.length !== textEmbeds[0]!.length) {
      throw new MedsynError(
        ErrorCodes.BAD_MODEL,
        `Cannot compare the embeddings of ${this.dir}: ${this.#vision.file} writes ${imageEmbeds[0]!.length} values, ${this.#text.file} ${textEmbeds[0]!.length} (the two encoders are not a pair)`,
        { file: this.dir },
      );
    }
    return imageEmbeds.map((image, i) => cosine(image, textEmbeds[i]!));
  }

  /** Frees both sessions. */
  async release(): Promise<void> {
    await Promise.all([this.#vision.session.release(), this.#text.session.release()]);
  }

  /** Runs `encoder` over `total` items in chunks of its batch size; a fixed batch is padded and the padding dropped. */
  async #runChunks(
    encoder: Tower,
    total: number,
    feedsFor: (start: number, count: number, rows: number) => Promise<Record<string, Tensor>>,
  ): Promise<Float32Array[]> {
    const chunk = encoder.fixedBatch ?? this.#batchSize;
    const embeddings: Float32Array[] = [];
    for (let start = 0; start < total; start += chunk) {
      const count = Math.min(chunk, total - start);
      const rows = encoder.fixedBatch ?? count;
      const feeds = await feedsFor(start, count, rows);
      let results: InferenceSession.OnnxValueMapType;
      try {
        results = await encoder.session.run(feeds);
      } catch (cause) {
        throw new MedsynError(ErrorCodes.SESSION_FAILED, `onnxruntime failed running ${encoder.file}: ${firstLine(cause)}`, { file: encoder.file, cause });
      }
      const output = results[encoder.output] as Tensor;
      if (output.type !== 'float32' || output.dims.length !== 2 || output.dims[0] !== rows) {
        throw new MedsynError(
          ErrorCodes.BAD_MODEL,
          `Cannot use ${encoder.file}: output ${encoder.output} is ${output.type}[${output.dims.join(', ')}], an embedding per input (float32 [${rows}, D]) is needed (export the model with projection, e.g. CLIPVisionModelWithProjection)`,
          { file: encoder.file },
        );
      }
      const size = Number(output.dims[1]);
      const data = output.data as Float32Array;
      for (let i = 0; i < count; i++) embeddings.push(data.slice(i * size, (i + 1) * size));
    }
    return embeddings;
  }
}

/**
 * Loads a CLIP-style pair of ONNX encoders from a folder in the layout
 * @huggingface/transformers loads (optimum's CLIP export): `preprocessor_config.json`
 * (CLIPImageProcessor), the tokenizer (`tokenizer.json`, or `vocab.json` +
 * `merges.txt`, with `tokenizer_config.json`), `onnx/vision_model.onnx` (input
 * `pixel_values` float32 [batch, 3, H, W], output `image_embeds`) and
 * `onnx/text_model.onnx` (inputs `input_ids` and, if it has one, `attention_mask`,
 * int64 [batch, length]; output `text_embeds`). A model without the named output
 * is read at its first output. The model files may also sit beside the configs.
 *
 * Images are preprocessed as `preprocessor_config.json` says (shortest-edge
 * resize with sharp's bicubic, center crop, rescale, normalise, the gray value in
 * all three channels). A model exported with a fixed batch size is run that many
 * at a time (the tiny fixture: one); otherwise `batchSize` at a time.
 *
 * @param dir the model folder
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` for a missing folder, model file or `preprocessor_config.json`;
 *   `MEDSYN_ERR_BAD_MODEL` for a config that cannot be read or a model without the inputs and outputs named above;
 *   `MEDSYN_ERR_BAD_TOKENIZER` for tokenizer files that cannot be loaded; `MEDSYN_ERR_SESSION_FAILED` when
 *   onnxruntime refuses a model; `MEDSYN_ERR_PROVIDER_UNAVAILABLE` for a device that cannot be used;
 *   `MEDSYN_ERR_INVALID_OPTION` for bad options
 * @example
 * ```ts
 * const scorer = await loadClipAlignment('fixtures/clip-tiny', { intraOpThreads: 1 });
 * const similarities = await scorer.score(images, captions);
 * await scorer.release();
 * ```
 */
export function loadClipAlignment(dir: string, options: ClipAlignmentOptions = {}): Promise<ClipAlignment> {
  return ClipAlignment.load(dir, options);
}

function readJson(path: string, dir: string): unknown {
  if (!existsSync(path)) {
    throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot load alignment model ${dir}: ${basename(path)} is missing (the image encoder's CLIPImageProcessor settings)`, {
      file: path,
    });
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new MedsynError(ErrorCodes.BAD_MODEL, `Cannot load alignment model ${dir}: ${basename(path)} is not valid JSON`, { file: path, cause });
  }
}

function modelFile(folder: string, dir: string, tower: keyof typeof MODEL_FILES): string {
  const name = MODEL_FILES[tower];
  for (const candidate of [join(folder, 'onnx', name), join(folder, name)]) if (existsSync(candidate)) return candidate;
  throw new MedsynError(
    ErrorCodes.NOT_FOUND,
    `Cannot load alignment model ${dir}: onnx/${name} is missing (the ${tower} encoder, as optimum exports CLIP${tower === 'vision' ? 'Vision' : 'Text'}ModelWithProjection)`,
    { file: join(folder, 'onnx', name) },
  );
}

type TensorMetadata = InferenceSession.TensorValueMetadata;

function inputsOf(session: InferenceSession): TensorMetadata[] {
  return session.inputMetadata.filter((entry): entry is TensorMetadata => entry.isTensor);
}

function badModel(file: string, detail: string): never {
  throw new MedsynError(ErrorCodes.BAD_MODEL, `Cannot use ${file}: ${detail}`, { file });
}

function fixedDim(dim: number | string | undefined): number | undefined {
  return typeof dim === 'number' && dim > 0 ? dim : undefined;
}

function outputOf(session: InferenceSession, wanted: string, file: string): string {
  if (session.outputNames.includes(wanted)) return wanted;
  const first = session.outputNames[0];
  if (first === undefined) badModel(file, 'it has no outputs');
  return first;
}

function checkInputs(file: string, inputs: readonly TensorMetadata[], known: readonly string[], required: readonly string[]): void {
  const names = inputs.map((input) => input.name);
  for (const name of required) {
    if (!names.includes(name)) badModel(file, `it has no input ${name} (its inputs: ${names.join(', ') || 'none'}; a CLIP export names them ${known.join(', ')})`);
  }
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0) badModel(file, `it takes input ${unknown.join(', ')} that medsyn cannot feed (a CLIP export takes ${known.join(', ')})`);
}

function visionTower(file: string, session: InferenceSession, processor: ClipImageProcessorConfig): VisionTower {
  const inputs = inputsOf(session);
  checkInputs(file, inputs, ['pixel_values'], ['pixel_values']);
  const input = inputs[0]!;
  if (input.type !== 'float32') badModel(file, `input pixel_values is ${input.type}, float32 is needed (use the fp32 export)`);
  if (input.shape.length !== 0 && (input.shape.length !== 4 || (fixedDim(input.shape[1]) ?? 3) !== 3)) {
    badModel(file, `input pixel_values has shape [${input.shape.join(', ')}], [batch, 3, height, width] is needed`);
  }
  const height = fixedDim(input.shape[2]);
  const width = fixedDim(input.shape[3]);
  if (!processor.doCenterCrop && !processor.resizeTo && (height === undefined || width === undefined)) {
    badModel(file, 'its input size is not fixed and preprocessor_config.json neither crops nor resizes to a fixed size');
  }
  const [cropHeight, cropWidth] = processor.doCenterCrop ? [processor.cropHeight, processor.cropWidth] : processor.resizeTo ? [processor.resizeTo.height, processor.resizeTo.width] : [height!, width!];
  if ((height !== undefined && height !== cropHeight) || (width !== undefined && width !== cropWidth)) {
    badModel(file, `it takes ${width} × ${height} images, preprocessor_config.json makes ${cropWidth} × ${cropHeight}`);
  }
  return { file, session, fixedBatch: fixedDim(input.shape[0]), output: outputOf(session, 'image_embeds', file), height: cropHeight, width: cropWidth };
}

function textTower(file: string, session: InferenceSession, tokenizer: ClipTokenizer): TextTower {
  const inputs = inputsOf(session);
  checkInputs(file, inputs, ['input_ids', 'attention_mask'], ['input_ids']);
  const ids = inputs.find((input) => input.name === 'input_ids')!;
  const mask = inputs.find((input) => input.name === 'attention_mask');
  const integerType = (input: TensorMetadata): 'int64' | 'int32' => {
    if (input.type === 'int64') return 'int64';
    if (input.type === 'int32') return 'int32';
    return badModel(file, `input ${input.name} is ${input.type}, int64 or int32 is needed`);
  };
  for (const input of [ids, mask]) {
    if (input && input.shape.length !== 0 && input.shape.length !== 2) badModel(file, `input ${input.name} has shape [${input.shape.join(', ')}], [batch, length] is needed`);
  }
  const batches = [ids, mask].map((input) => fixedDim(input?.shape[0]));
  const lengths = [ids, mask].map((input) => fixedDim(input?.shape[1]));
  if (mask && (batches[0] !== batches[1] || lengths[0] !== lengths[1])) {
    badModel(file, `inputs input_ids [${ids.shape.join(', ')}] and attention_mask [${mask.shape.join(', ')}] differ in shape`);
  }
  return {
    file,
    session,
    fixedBatch: batches[0],
    output: outputOf(session, 'text_embeds', file),
    length: lengths[0] ?? tokenizer.maxTokens,
    idType: integerType(ids),
    maskType: mask ? integerType(mask) : undefined,
  };
}

function integerTensor(type: 'int64' | 'int32', values: readonly number[], dims: readonly number[]): Tensor {
  return type === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims) : new ort.Tensor('int32', Int32Array.from(values), dims);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  if (aa === 0 || bb === 0) return 0;
  return Math.max(-1, Math.min(1, dot / Math.sqrt(aa * bb)));
}

function firstLine(cause: unknown): string {
  return (cause instanceof Error ? cause.message : String(cause)).split('\n')[0]!;
}
