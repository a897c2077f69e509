/**
 * Frozen towers from two model folders (an image tower, a text tower), as
 * @huggingface/transformers and optimum lay them out; see `frozen_encoders.ts`
 * for the layouts and the pooling.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ErrorCodes, MedsynError } from '../errors.js';
import { clipOutputSize, parseClipImageProcessor, preprocessClipImage } from '../models/clip_image_processor.js';
import type { GrayImage } from '../transforms/image_stats.js';
import { sha256File } from './feature_cache.js';
import type { FrozenEncoders, FrozenEncodersOptions } from './frozen_encoders.js';
import { openSession, ort } from './session.js';

type TensorMetadata = InferenceSession.TensorValueMetadata;

interface BatchTokenizer {
  (texts: string[], options: { padding: 'max_length'; max_length: number; truncation: boolean }): Record<string, { data: BigInt64Array; dims: number[] }>;
  model_max_length: number;
}

function badModel(file: string, detail: string): never {
  throw new MedsynError(ErrorCodes.BAD_MODEL, `Cannot use ${file}: ${detail}`, { file });
}

function modelFile(dir: string, names: readonly string[]): string {
  for (const name of names) for (const candidate of [join(dir, 'onnx', name), join(dir, name)]) if (existsSync(candidate)) return candidate;
  throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot load encoder ${dir}: no ${names.map((name) => `onnx/${name}`).join(' or ')}`, { file: join(dir, 'onnx', names[0]!) });
}

function fixedDim(dim: number | string | undefined): number | undefined {
  return typeof dim === 'number' && dim > 0 ? dim : undefined;
}

function tensorInputs(session: InferenceSession): TensorMetadata[] {
  return session.inputMetadata.filter((entry): entry is TensorMetadata => entry.isTensor);
}

async function run(session: InferenceSession, file: string, feeds: Record<string, Tensor>): Promise<InferenceSession.OnnxValueMapType> {
  try {
    return await session.run(feeds);
  } catch (cause) {
    throw new MedsynError(ErrorCodes.SESSION_FAILED, `onnxruntime failed running ${file}: ${(cause as Error).message.split('\n')[0]}`, { file, cause });
  }
}

/** Loads an image tower folder and a text tower folder as {@link FrozenEncoders}. */
export async function loadTowerPair(imageDir: string, textDir: string, options: FrozenEncodersOptions): Promise<FrozenEncoders> {
  const batchSize = options.batchSize ?? 32;
  const processorPath = join(imageDir, 'preprocessor_config.json');
  if (!existsSync(processorPath)) throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot load image encoder ${imageDir}: preprocessor_config.json is missing`, { file: processorPath });
  let processorJson: unknown;
  try {
    processorJson = JSON.parse(readFileSync(processorPath, 'utf8'));
  } catch (cause) {
    throw new MedsynError(ErrorCodes.BAD_MODEL, `Cannot load image encoder ${imageDir}: preprocessor_config.json is not valid JSON`, { file: processorPath, cause });
  }
  const processor = parseClipImageProcessor(processorJson, processorPath);
  const imageModel = modelFile(imageDir, ['model.onnx', 'vision_model.onnx']);
  const textModel = modelFile(textDir, ['model.onnx', 'text_model.onnx']);

  const transformers = await import('@huggingface/transformers');
  transformers.env.allowRemoteModels = false;
  transformers.env.allowLocalModels = true;
  transformers.env.useFSCache = false;
  let tokenizer: BatchTokenizer;
  try {
    tokenizer = (await transformers.AutoTokenizer.from_pretrained(textDir, { local_files_only: true })) as unknown as BatchTokenizer;
  } catch (cause) {
    throw new MedsynError(ErrorCodes.BAD_TOKENIZER, `Cannot load the tokenizer of ${textDir}: ${(cause as Error).message} (it needs tokenizer.json and tokenizer_config.json)`, { file: textDir, cause });
  }

  const sessions: InferenceSession[] = [];
  try {
    const imageSession = await openSession(imageModel, options);
    sessions.push(imageSession);
    const textSession = await openSession(textModel, options);
    sessions.push(textSession);

    const pixel = tensorInputs(imageSession).find((input) => input.name === 'pixel_values');
    if (!pixel || pixel.type !== 'float32') badModel(imageModel, 'it needs a float32 input pixel_values [batch, 3, height, width]');
    const imageOutput = ['pooler_output', 'image_embeds', 'last_hidden_state'].find((name) => imageSession.outputNames.includes(name));
    if (!imageOutput) badModel(imageModel, `it has no pooler_output, image_embeds or last_hidden_state output (its outputs: ${imageSession.outputNames.join(', ')})`);
    const imageBatch = fixedDim(pixel.shape[0]);
    // A gray-scale tower takes one channel; the processor writes the gray value into three.
    const channels = fixedDim(pixel.shape[1]) ?? 3;
    if (channels !== 1 && channels !== 3) badModel(imageModel, `input pixel_values has ${channels} channels, 1 or 3 are supported`);
    const [height, width] = [fixedDim(pixel.shape[2]), fixedDim(pixel.shape[3])];

    const textInputs = tensorInputs(textSession);
    const names = textInputs.map((input) => input.name);
    for (const name of ['input_ids', 'attention_mask']) if (!names.includes(name)) badModel(textModel, `it has no input ${name} (its inputs: ${names.join(', ')})`);
    const unknown = names.filter((name) => !['input_ids', 'attention_mask', 'token_type_ids'].includes(name));
    if (unknown.length > 0) badModel(textModel, `it takes input ${unknown.join(', ')} that medsyn cannot feed (a BERT export takes input_ids, attention_mask, token_type_ids)`);
    const ids = textInputs.find((input) => input.name === 'input_ids')!;
    const textBatch = fixedDim(ids.shape[0]);
    const length = fixedDim(ids.shape[1]) ?? Math.min(tokenizer.model_max_length, 512);
    const textOutput = ['sentence_embedding', 'text_embeds', 'last_hidden_state'].find((name) => textSession.outputNames.includes(name));
    if (!textOutput) badModel(textModel, `it has no last_hidden_state, text_embeds or sentence_embedding output (its outputs: ${textSession.outputNames.join(', ')})`);

    const embedImages = async (images: readonly GrayImage[]): Promise<Float32Array[]> => {
      const out: Float32Array[] = [];
      const chunk = imageBatch ?? batchSize;
      for (let start = 0; start < images.length; start += chunk) {
        const count = Math.min(chunk, images.length - start);
        const rows = imageBatch ?? count;
        const [h, w] = clipOutputSize(processor, images[start]!.height, images[start]!.width);
        if ((height !== undefined && h !== height) || (width !== undefined && w !== width)) {
          badModel(imageModel, `it takes ${width} × ${height} images, preprocessor_config.json makes ${w} × ${h}`);
        }
        const plane = channels * h * w;
        const pixels = new Float32Array(rows * plane);
        for (let i = 0; i < count; i++) {
          if (channels === 3) await preprocessClipImage(images[start + i]!, processor, pixels, i * plane);
          else pixels.set((await preprocessClipImage(images[start + i]!, processor)).subarray(0, plane), i * plane);
        }
        const result = (await run(imageSession, imageModel, { pixel_values: new ort.Tensor('float32', pixels, [rows, channels, h, w]) }))[imageOutput] as Tensor;
        const data = result.data as Float32Array;
        // last_hidden_state [B, T, H]: the first ([CLS]) token; a pooled output [B, H] as it is.
        const size = Number(result.dims.at(-1));
        const stride = result.dims.length === 3 ? Number(result.dims[1]) * size : size;
        for (let i = 0; i < count; i++) out.push(data.slice(i * stride, i * stride + size));
      }
      return out;
    };

    const embedTexts = async (captions: readonly string[]): Promise<Float32Array[]> => {
      const out: Float32Array[] = [];
      const chunk = textBatch ?? batchSize;
      for (let start = 0; start < captions.length; start += chunk) {
        const count = Math.min(chunk, captions.length - start);
        const rows = textBatch ?? count;
        const texts = captions.slice(start, start + count).map(String);
        while (texts.length < rows) texts.push('');
        const encoded = tokenizer(texts, { padding: 'max_length', max_length: length, truncation: true });
        const feeds: Record<string, Tensor> = {};
        for (const input of textInputs) {
          const tensor = encoded[input.name] ?? { data: new BigInt64Array(rows * length), dims: [rows, length] };
          feeds[input.name] = input.type === 'int32' ? new ort.Tensor('int32', Int32Array.from(tensor.data, Number), [rows, length]) : new ort.Tensor('int64', tensor.data, [rows, length]);
        }
        const result = (await run(textSession, textModel, feeds))[textOutput] as Tensor;
        const data = result.data as Float32Array;
        const size = Number(result.dims.at(-1));
        if (result.dims.length === 2) {
          for (let i = 0; i < count; i++) out.push(data.slice(i * size, (i + 1) * size));
          continue;
        }
        const mask = encoded['attention_mask']!.data;
        for (let i = 0; i < count; i++) {
          const pooled = new Float32Array(size);
          let tokens = 0;
          for (let t = 0; t < length; t++) {
            if (mask[i * length + t] === 0n) continue;
            tokens++;
            const at = (i * length + t) * size;
            for (let k = 0; k < size; k++) pooled[k]! += data[at + k]!;
          }
          if (tokens > 0) for (let k = 0; k < size; k++) pooled[k]! /= tokens;
          out.push(pooled);
        }
      }
      return out;
    };

    const [probeImage] = await embedImages([{ pixels: new Uint8Array((height ?? 64) * (width ?? 64)), width: width ?? 64, height: height ?? 64 }]);
    const [probeText] = await embedTexts(['']);
    return {
      folders: { image: imageDir, text: textDir },
      imageModel,
      textModel,
      imageHash: sha256File(imageModel),
      textHash: sha256File(textModel),
      imageSize: probeImage!.length,
      textSize: probeText!.length,
      embedImages,
      embedTexts,
      release: async () => {
        await Promise.all(sessions.map((session) => session.release()));
      },
    };
  } catch (err) {
    await Promise.all(sessions.map((session) => session.release()));
    throw err;
  }
}
