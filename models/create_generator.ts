/**
 * `--backend NAME` to a running {@link Generator}.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import type { Generator } from './generator.js';
import { createHttpGenerator, type HttpGeneratorOptions } from './http_generator.js';
import { createImageFolderGenerator, type ImageFolderGeneratorOptions } from './image_folder_generator.js';
import { createOnnxSdGenerator, type OnnxSdGeneratorOptions } from './onnx_sd_generator.js';
import { createPhantomGenerator, type PhantomGeneratorOptions } from './phantom_generator.js';

/** The backends `--backend` takes. */
export const BACKENDS = ['phantom', 'images', 'onnx', 'http'] as const;

/** One of {@link BACKENDS}. */
export type Backend = (typeof BACKENDS)[number];

/** Options of {@link createGenerator}: the backend's name and the options of that backend. */
export interface CreateGeneratorOptions extends PhantomGeneratorOptions, Partial<ImageFolderGeneratorOptions>, Partial<OnnxSdGeneratorOptions>, Partial<HttpGeneratorOptions> {
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
 * const roentgen = await createGenerator({ backend: 'onnx', model: 'models/roentgen-onnx', device: 'cuda', steps: 50 });
 * const served = await createGenerator({ backend: 'http', endpoint: 'http://triton:8000', model: 'roentgen' });
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
    case 'onnx':
      if (options.model === undefined) invalidOption('model', 'the onnx backend needs a Stable Diffusion ONNX folder (--model DIR)');
      return createOnnxSdGenerator({ ...options, model: options.model });
    case 'http':
      if (options.endpoint === undefined) invalidOption('endpoint', 'the http backend needs the server URL (--endpoint http://HOST:PORT)');
      if (options.model === undefined) invalidOption('model', 'the http backend needs the model name on the server (--model NAME)');
      return createHttpGenerator({ ...options, endpoint: options.endpoint, model: options.model });
    default:
      return invalidOption('backend', `must be one of ${BACKENDS.join(', ')}, got ${JSON.stringify(backend)}`);
  }
}
