/**
 * Raw pixels to PNG, JPEG or WebP bytes, with sharp (on libuv's thread pool, so
 * encoding overlaps whatever the main thread and the generator do).
 *
 * @module
 */
import sharp from 'sharp';
import { invalidOption } from '../errors.js';
import type { GeneratedImage } from '../models/generator.js';

/** The image formats medsyn writes; each is also the sample part's extension. */
export const IMAGE_FORMATS = ['png', 'jpg', 'webp'] as const;

/** One of {@link IMAGE_FORMATS}. */
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** Options of {@link encodeImage}. */
export interface EncodeImageOptions {
  /** @default 'png' */
  imageFormat?: ImageFormat;
  /** JPEG and WebP quality, 1 … 100. @default 90 */
  quality?: number;
  /** PNG zlib compression level, 0 (fastest, largest) … 9 (slowest, smallest). @default 6 */
  compression?: number;
}

/** The options with their defaults, checked. */
export type ResolvedEncodeOptions = Required<EncodeImageOptions>;

/**
 * Checks encoding options once, up front, and fills in the defaults.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` naming the option
 * @example
 * ```ts
 * resolveEncodeOptions({ imageFormat: 'jpg' }); // { imageFormat: 'jpg', quality: 90, compression: 6 }
 * ```
 */
export function resolveEncodeOptions(options: EncodeImageOptions = {}): ResolvedEncodeOptions {
  const imageFormat = options.imageFormat ?? 'png';
  if (!IMAGE_FORMATS.includes(imageFormat)) invalidOption('imageFormat', `must be one of ${IMAGE_FORMATS.join(', ')}, got ${String(imageFormat)}`);
  const quality = options.quality ?? 90;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) invalidOption('quality', `must be an integer in 1 … 100, got ${quality}`);
  const compression = options.compression ?? 6;
  if (!Number.isInteger(compression) || compression < 0 || compression > 9) {
    invalidOption('compression', `must be an integer in 0 … 9, got ${compression}`);
  }
  return { imageFormat, quality, compression };
}

/**
 * Encodes one image. The same pixels and options give the same bytes (no timestamps,
 * no metadata chunks).
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION`; sharp's own error for pixels that
 *   do not match the stated size
 * @example
 * ```ts
 * const png = await encodeImage({ pixels, width: 512, height: 512, channels: 1 });
 * ```
 */
export async function encodeImage(image: GeneratedImage, options: EncodeImageOptions | ResolvedEncodeOptions = {}): Promise<Buffer> {
  const { imageFormat, quality, compression } = resolveEncodeOptions(options);
  let input = sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: image.channels } });
  // Without this sharp writes one-channel pixels as RGB: three times the PNG bytes.
  if (image.channels === 1) input = input.toColourspace('b-w');
  switch (imageFormat) {
    case 'png':
      return input.png({ compressionLevel: compression }).toBuffer();
    case 'jpg':
      return input.jpeg({ quality }).toBuffer();
    case 'webp':
      return input.webp({ quality }).toBuffer();
  }
}
