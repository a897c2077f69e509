/**
 * The image preprocessing of a CLIP-style image encoder, as its
 * `preprocessor_config.json` (Hugging Face's `CLIPImageProcessor`) says: resize
 * the shortest edge, center crop, rescale, normalise, grayscale replicated to the
 * three channels. Reads 8-bit grayscale pixels, writes the `pixel_values` of one
 * image (`[3, H, W]`, channel-first).
 *
 * @module
 */
import sharp from 'sharp';
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';
import type { GrayImage } from '../transforms/image_stats.js';

/** How a resize interpolates, by PIL's numbering as `preprocessor_config.json` has it (`resample`). */
export type ResampleFilter = 'nearest' | 'lanczos' | 'bilinear' | 'bicubic';

/** The settings of a `CLIPImageProcessor`, checked and with Hugging Face's defaults filled in. */
export interface ClipImageProcessorConfig {
  /** Resize before cropping. @default true */
  readonly doResize: boolean;
  /** Resize so that the shorter side has this length, keeping the aspect ratio (`size.shortest_edge`). @default 224 */
  readonly shortestEdge?: number;
  /** Resize to exactly this size instead (`size.height`, `size.width`). @default undefined */
  readonly resizeTo?: { readonly height: number; readonly width: number };
  /** The resize filter (`resample`: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic). @default 'bicubic' */
  readonly resample: ResampleFilter;
  /** Crop the middle `cropHeight × cropWidth` after resizing (zero-padded when the image is smaller). @default true */
  readonly doCenterCrop: boolean;
  /** @default 224 */
  readonly cropHeight: number;
  /** @default 224 */
  readonly cropWidth: number;
  /** Multiply pixel values by `rescaleFactor`. @default true */
  readonly doRescale: boolean;
  /** @default 1/255 */
  readonly rescaleFactor: number;
  /** Subtract `imageMean` and divide by `imageStd`, per channel. @default true */
  readonly doNormalize: boolean;
  /** @default OpenAI CLIP's [0.48145466, 0.4578275, 0.40821073] */
  readonly imageMean: readonly [number, number, number];
  /** @default OpenAI CLIP's [0.26862954, 0.26130258, 0.27577711] */
  readonly imageStd: readonly [number, number, number];
}

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
const RESAMPLE: readonly ResampleFilter[] = ['nearest', 'lanczos', 'bilinear', 'bicubic'];
/** sharp's kernels for PIL's filters; each is a convolution that widens when shrinking (antialiased), as PIL's resize is. */
const KERNELS = { nearest: 'nearest', lanczos: 'lanczos3', bilinear: 'linear', bicubic: 'cubic' } as const;

/**
 * Checks the parsed `preprocessor_config.json` of a CLIP image encoder and fills
 * in Hugging Face's defaults for what it leaves out.
 *
 * @param json the parsed file
 * @param file the file's path, for messages
 * @throws {MedsynError} `MEDSYN_ERR_BAD_MODEL` naming the field that is wrong
 * @example
 * ```ts
 * const config = parseClipImageProcessor(JSON.parse(readFileSync(path, 'utf8')), path);
 * config.cropHeight; // 224
 * ```
 */
export function parseClipImageProcessor(json: unknown, file: string): ClipImageProcessorConfig {
  const bad = (field: string, detail: string): never => {
    throw new MedsynError(ErrorCodes.BAD_MODEL, `Invalid ${file}: ${field} ${detail}`, { file, option: field });
  };
  if (!json || typeof json !== 'object' || Array.isArray(json)) bad('the file', 'must hold a JSON object');
  const raw = json as Record<string, unknown>;
  const flag = (name: string): boolean => {
    const value = raw[name] ?? true;
    if (typeof value !== 'boolean') bad(name, `must be true or false, got ${JSON.stringify(value)}`);
    return value as boolean;
  };
  const positive = (name: string, value: unknown): number => {
    if (!Number.isSafeInteger(value) || (value as number) < 1) bad(name, `must be a whole number ≥ 1, got ${JSON.stringify(value)}`);
    return value as number;
  };
  const triple = (name: string, fallback: readonly [number, number, number]): readonly [number, number, number] => {
    const value = raw[name] ?? fallback;
    const list = typeof value === 'number' ? [value, value, value] : value;
    if (!Array.isArray(list) || list.length !== 3 || !list.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      bad(name, `must be three numbers (one per channel), got ${JSON.stringify(value)}`);
    }
    return list as unknown as readonly [number, number, number];
  };

  let shortestEdge: number | undefined;
  let resizeTo: { height: number; width: number } | undefined;
  const size = raw['size'] ?? { shortest_edge: 224 };
  if (typeof size === 'number') shortestEdge = positive('size', size);
  else if (size && typeof size === 'object' && 'shortest_edge' in size) shortestEdge = positive('size.shortest_edge', (size as Record<string, unknown>)['shortest_edge']);
  else if (size && typeof size === 'object' && 'height' in size && 'width' in size) {
    const { height, width } = size as Record<string, unknown>;
    resizeTo = { height: positive('size.height', height), width: positive('size.width', width) };
  } else bad('size', `must be {"shortest_edge": N} or {"height": H, "width": W}, got ${JSON.stringify(size)}`);

  const crop = raw['crop_size'] ?? 224;
  let cropHeight: number;
  let cropWidth: number;
  if (typeof crop === 'number') cropHeight = cropWidth = positive('crop_size', crop);
  else if (crop && typeof crop === 'object') {
    cropHeight = positive('crop_size.height', (crop as Record<string, unknown>)['height']);
    cropWidth = positive('crop_size.width', (crop as Record<string, unknown>)['width']);
  } else bad('crop_size', `must be a number or {"height": H, "width": W}, got ${JSON.stringify(crop)}`);

  const resample = raw['resample'] ?? 3;
  if (!(Number.isInteger(resample) && (resample as number) >= 0 && (resample as number) <= 3)) {
    bad('resample', `must be 0 (nearest), 1 (lanczos), 2 (bilinear) or 3 (bicubic), got ${JSON.stringify(resample)}`);
  }
  const rescaleFactor = raw['rescale_factor'] ?? 1 / 255;
  if (typeof rescaleFactor !== 'number' || !Number.isFinite(rescaleFactor)) bad('rescale_factor', `must be a number, got ${JSON.stringify(rescaleFactor)}`);
  const imageStd = triple('image_std', CLIP_STD);
  if (imageStd.some((v) => v === 0)) bad('image_std', 'must not hold 0');

  return {
    doResize: flag('do_resize'),
    ...(shortestEdge !== undefined ? { shortestEdge } : {}),
    ...(resizeTo ? { resizeTo } : {}),
    resample: RESAMPLE[resample as number]!,
    doCenterCrop: flag('do_center_crop'),
    cropHeight: cropHeight!,
    cropWidth: cropWidth!,
    doRescale: flag('do_rescale'),
    rescaleFactor: rescaleFactor as number,
    doNormalize: flag('do_normalize'),
    imageMean: triple('image_mean', CLIP_MEAN),
    imageStd,
  };
}

/**
 * The height and width of the `pixel_values` that {@link preprocessClipImage}
 * makes from an image of `height × width`.
 *
 * @example
 * ```ts
 * clipOutputSize(config, 512, 512); // [224, 224] for OpenAI CLIP's settings
 * ```
 */
export function clipOutputSize(config: ClipImageProcessorConfig, height: number, width: number): [number, number] {
  if (config.doCenterCrop) return [config.cropHeight, config.cropWidth];
  return config.doResize ? resizedSize(config, height, width) : [height, width];
}

/** The size after the resize step, as Python's `get_resize_output_image_size` (the long side truncated). */
function resizedSize(config: ClipImageProcessorConfig, height: number, width: number): [number, number] {
  if (config.resizeTo) return [config.resizeTo.height, config.resizeTo.width];
  const edge = config.shortestEdge ?? 224;
  if (height <= width) return [edge, Math.max(1, Math.trunc((edge * width) / height))];
  return [Math.max(1, Math.trunc((edge * height) / width)), edge];
}

/**
 * Preprocesses one 8-bit grayscale image as `config` says and writes its
 * `pixel_values` (`[3, H, W]`, channel-first, the gray value in each channel
 * before normalisation) into `out` at `offset`, or into a new array.
 *
 * The resize uses sharp's convolution kernels (bicubic: `cubic`, Catmull-Rom),
 * which widen when shrinking as PIL's resize does, so a large image is
 * antialiased as in Python's `CLIPImageProcessor`. An image already at the
 * resize size is not resampled.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for an image whose pixel count is not width × height,
 *   or an `out` too small
 * @example
 * ```ts
 * const pixelValues = await preprocessClipImage({ pixels, width: 512, height: 512 }, config);
 * ```
 */
export async function preprocessClipImage(image: GrayImage, config: ClipImageProcessorConfig, out?: Float32Array, offset = 0): Promise<Float32Array> {
  const { width, height } = image;
  if (!(Number.isSafeInteger(width) && Number.isSafeInteger(height) && width > 0 && height > 0) || image.pixels?.length !== width * height) {
    invalidOption('image', `needs width × height pixels, got ${String(image.pixels?.length)} for ${width} × ${height}`);
  }
  let pixels = image.pixels;
  let [h, w] = [height, width];
  if (config.doResize) {
    const [targetHeight, targetWidth] = resizedSize(config, height, width);
    if (targetHeight !== height || targetWidth !== width) {
      const { data, info } = await sharp(pixels, { raw: { width, height, channels: 1 } })
        .resize(targetWidth, targetHeight, { fit: 'fill', kernel: KERNELS[config.resample] })
        .extractChannel(0)
        .raw()
        .toBuffer({ resolveWithObject: true });
      pixels = new Uint8Array(data.buffer, data.byteOffset, info.width * info.height);
      [h, w] = [info.height, info.width];
    }
  }
  const [outHeight, outWidth] = config.doCenterCrop ? [config.cropHeight, config.cropWidth] : [h, w];
  // Python's center_crop: the top-left corner at floor((size − crop) / 2); outside the image is 0.
  const top = Math.floor((h - outHeight) / 2);
  const left = Math.floor((w - outWidth) / 2);
  const plane = outHeight * outWidth;
  const target = out ?? new Float32Array(3 * plane);
  if (offset < 0 || target.length < offset + 3 * plane) invalidOption('out', `needs room for ${3 * plane} values at ${offset}, has ${target.length}`);
  const scale = config.doRescale ? config.rescaleFactor : 1;
  const mean = config.doNormalize ? config.imageMean : [0, 0, 0];
  const std = config.doNormalize ? config.imageStd : [1, 1, 1];
  for (let y = 0; y < outHeight; y++) {
    const sy = y + top;
    for (let x = 0; x < outWidth; x++) {
      const sx = x + left;
      const value = sy >= 0 && sy < h && sx >= 0 && sx < w ? pixels[sy * w + sx]! * scale : 0;
      const at = offset + y * outWidth + x;
      for (let c = 0; c < 3; c++) target[at + c * plane] = (value - mean[c]!) / std[c]!;
    }
  }
  return target;
}
