/**
 * `--backend NAME` to a running {@link Generator}.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import type { Generator } from './generator.js';
import { createImageFolderGenerator, type ImageFolderGeneratorOptions } from './image_folder_generator.js';
import { createPhantomGenerator, type PhantomGeneratorOptions } from './phantom_generator.js';

/** The backends `--backend` takes. */
export const BACKENDS = ['phantom', 'images'] as const;

/** One of {@link BACKENDS}. */
export type Backend = (typeof BACKENDS)[number];

/** Options of {@link createGenerator}: the backend's name and the options of that backend. */
export interface CreateGeneratorOptions extends PhantomGeneratorOptions, Partial<ImageFolderGeneratorOptions> {
  /** @default 'phantom' */
  backend?: Backend;
}

/**
 * Starts the backend `options.backend` with its options.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for an unknown backend or a missing
 *   option it needs; what the backend throws when it starts
 * @example
 * ```ts
 * const generator = await createGenerator({ backend: 'images', images: 'mimic-cxr-jpg', size: 512 });
 * ```
 */
export async function createGenerator(options: CreateGeneratorOptions = {}): Promise<Generator> {
  const backend = options.backend ?? 'phantom';
  switch (backend) {
    case 'phantom':
      return createPhantomGenerator(options);
    case 'images':
      if (options.images === undefined) invalidOption('images', 'the images backend needs the MIMIC-CXR-JPG folder (--images DIR)');
      return createImageFolderGenerator({ ...options, images: options.images });
    default:
      return invalidOption('backend', `must be one of ${BACKENDS.join(', ')}, got ${JSON.stringify(backend)}`);
  }
}
