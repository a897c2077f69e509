/**
 * The frozen image and text towers the contrastive trainer puts its heads on,
 * with the hashes of their model files (the feature cache's keys). Two
 * layouts, both as @huggingface/transformers and optimum write them:
 *
 * - one CLIP-style folder (`preprocessor_config.json`, the tokenizer,
 *   `onnx/vision_model.onnx`, `onnx/text_model.onnx`), loaded through
 *   {@link ClipAlignment}; features: `image_embeds` and `text_embeds`;
 * - two folders, an image tower (ViT/DINOv2/BEiT-style: `preprocessor_config.json`,
 *   `onnx/model.onnx` with input `pixel_values`) and a text tower (BERT-style:
 *   `tokenizer.json` + `tokenizer_config.json`, `onnx/model.onnx` with inputs
 *   `input_ids`, `attention_mask` and, if it has it, `token_type_ids`).
 *   Pooling: the image tower's `pooler_output` when it has one, else its
 *   `last_hidden_state` at the first ([CLS]) token; the text tower's
 *   `sentence_embedding` or `text_embeds` when it has one, else the mean of
 *   `last_hidden_state` over the attention mask (sentence-transformers' mean
 *   pooling; BERT's own pooler is trained for next-sentence prediction only).
 *
 * Images are preprocessed as `preprocessor_config.json` says, the gray value in
 * every channel.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { ErrorCodes, MedsynError } from '../errors.js';
import { loadClipAlignment, type ClipAlignment, type ClipAlignmentOptions } from '../models/clip_alignment.js';
import { loadTowerPair } from './_tower_pair.js';
import type { GrayImage } from '../transforms/image_stats.js';
import { sha256File } from './feature_cache.js';

/** Options of {@link loadFrozenEncoders}. */
export type FrozenEncodersOptions = ClipAlignmentOptions;

/** An image tower folder and a text tower folder (the same folder for a CLIP-style pair). */
export interface TowerFolders {
  image: string;
  text: string;
}

/** A frozen image tower and text tower. */
export interface FrozenEncoders {
  /** The tower folders, resolved. */
  readonly folders: TowerFolders;
  /** The image tower's model file. */
  readonly imageModel: string;
  /** The text tower's model file. */
  readonly textModel: string;
  /** SHA-256 of the image tower's model file. */
  readonly imageHash: string;
  /** SHA-256 of the text tower's model file. */
  readonly textHash: string;
  /** Values per image feature vector. */
  readonly imageSize: number;
  /** Values per text feature vector. */
  readonly textSize: number;
  /** The image features, one vector per image. */
  embedImages(images: readonly GrayImage[]): Promise<Float32Array[]>;
  /** The text features, one vector per caption. */
  embedTexts(captions: readonly string[]): Promise<Float32Array[]>;
  /** Frees the sessions. */
  release(): Promise<void>;
}

function towerFile(dir: string, name: string): string {
  for (const candidate of [join(dir, 'onnx', name), join(dir, name)]) if (existsSync(candidate)) return candidate;
  throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot load encoders ${dir}: onnx/${name} is missing`, { file: join(dir, 'onnx', name) });
}

/**
 * Loads frozen towers: a CLIP-style folder, or an image tower folder and a text
 * tower folder (see the module's description for the layouts and pooling).
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` for a missing folder or file; `MEDSYN_ERR_BAD_MODEL` for a model
 *   without the inputs and outputs named above; `MEDSYN_ERR_BAD_TOKENIZER` for tokenizer files that cannot be
 *   loaded; as {@link loadClipAlignment}
 * @example
 * ```ts
 * const encoders = await loadFrozenEncoders({ image: 'fixtures/vit-tiny', text: 'fixtures/bert-tiny' }, { intraOpThreads: 1 });
 * const [features] = await encoders.embedTexts(['Cardiomegaly.']);
 * await encoders.release();
 * ```
 */
export async function loadFrozenEncoders(source: string | TowerFolders, options: FrozenEncodersOptions = {}): Promise<FrozenEncoders> {
  if (typeof source !== 'string') {
    if (resolve(source.image) !== resolve(source.text)) return loadTowerPair(resolve(source.image), resolve(source.text), options);
    source = source.image;
  }
  const dir = source;
  const clip: ClipAlignment = await loadClipAlignment(dir, options);
  try {
    const imageModel = towerFile(clip.dir, 'vision_model.onnx');
    const textModel = towerFile(clip.dir, 'text_model.onnx');
    const [probeImage] = await clip.embedImages([{ pixels: new Uint8Array(64 * 64), width: 64, height: 64 }]).catch(async () => {
      // A model that does not crop needs its own input size: a 1 × 1 probe resized by the processor.
      return clip.embedImages([{ pixels: new Uint8Array(1), width: 1, height: 1 }]);
    });
    const [probeText] = await clip.embedTexts(['']);
    return {
      folders: { image: clip.dir, text: clip.dir },
      imageModel,
      textModel,
      imageHash: sha256File(imageModel),
      textHash: sha256File(textModel),
      imageSize: probeImage!.length,
      textSize: probeText!.length,
      embedImages: (images) => clip.embedImages(images),
      embedTexts: (captions) => clip.embedTexts(captions),
      release: () => clip.release(),
    };
  } catch (err) {
    await clip.release();
    throw err;
  }
}

/**
 * Decodes PNG/JPEG/WebP bytes to an 8-bit grayscale image (colour images are
 * converted; the preprocessing copies the gray value into the channels the
 * encoder expects).
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_SAMPLE` for bytes sharp cannot decode
 * @example
 * ```ts
 * const image = await decodeGrayImage(sample.parts.png, sample.key);
 * ```
 */
export async function decodeGrayImage(bytes: Uint8Array, key: string): Promise<GrayImage> {
  try {
    const { data, info } = await sharp(bytes).toColourspace('b-w').extractChannel(0).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { pixels: new Uint8Array(data.buffer, data.byteOffset, info.width * info.height), width: info.width, height: info.height };
  } catch (cause) {
    throw new MedsynError(ErrorCodes.BAD_SAMPLE, `Cannot decode the image of sample ${key}: ${(cause as Error).message}`, { cause });
  }
}
