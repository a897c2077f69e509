/**
 * The `images` backend: each study's real image(s) from a MIMIC-CXR-JPG tree instead of a
 * generated one, so real and synthetic shards come from the same commands in the same
 * format.
 *
 * @module
 */
import { access, readdir, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import sharp from 'sharp';
import { ErrorCodes, invalidOption, MedsynError } from '../errors.js';
import { readStudyImages, type StudyImage } from '../streams/mimic_jpg_metadata.js';
import type { GeneratedImage, GenerationMiss, GenerationRequest, Generator } from './generator.js';

/** Options of {@link createImageFolderGenerator}. */
export interface ImageFolderGeneratorOptions {
  /** The MIMIC-CXR-JPG folder: it holds `files/pNN/pNNNNNNNN/sNNNNNNNN/<dicom_id>.jpg` (or is that `files/`). */
  images: string;
  /** `mimic-cxr-2.0.0-metadata.csv` (or `.csv.gz`): which images a study has and their views. @default undefined (the study folder's *.jpg) */
  metadata?: string;
  /** Keep only these views (`ViewPosition`), e.g. `['PA', 'AP']`; needs `metadata`. @default undefined (all) */
  views?: readonly string[];
  /** Width and height: the image is scaled to cover the square and cut to it, centred. @default 512 */
  size?: number;
  /** 1 grayscale, 3 RGB. @default 1 */
  channels?: 1 | 3;
}

/**
 * Starts the `images` backend. For a request with variant `v` it takes the study's
 * `v`-th image: in the metadata's order among the kept views when `metadata` is given,
 * else in name order among the study folder's `.jpg` files. The study folder comes from
 * the report's `subjectId`, or from the metadata when the report has none. A study with
 * too few images is a `missing_image` reject, an image that cannot be decoded `bad_image`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` for a missing folder or metadata file,
 *   `MEDSYN_ERR_INVALID_OPTION` (`views` without `metadata`, bad size), the metadata
 *   reader's errors
 * @example
 * ```ts
 * const generator = await createImageFolderGenerator({ images: 'mimic-cxr-jpg', metadata: 'mimic-cxr-jpg/mimic-cxr-2.0.0-metadata.csv.gz', views: ['PA', 'AP'] });
 * ```
 */
export async function createImageFolderGenerator(options: ImageFolderGeneratorOptions): Promise<Generator> {
  const size = options.size ?? 512;
  if (!Number.isInteger(size) || size < 16 || size > 4096) invalidOption('size', `must be an integer in 16 … 4096, got ${size}`);
  const channels = options.channels ?? 1;
  if (channels !== 1 && channels !== 3) invalidOption('channels', `must be 1 or 3, got ${String(channels)}`);
  if (options.views !== undefined && options.metadata === undefined) {
    invalidOption('views', 'choosing views needs the image metadata (--metadata mimic-cxr-2.0.0-metadata.csv.gz)');
  }
  const root = options.images;
  const files = await filesFolder(root);
  const studies = options.metadata === undefined ? undefined : await readStudyImages(options.metadata, options.views ? { views: options.views } : {});

  async function imagesOf(request: GenerationRequest): Promise<Array<{ path: string; image?: StudyImage }> | GenerationMiss> {
    const study = studyKey(request.report.id);
    if (study === undefined) return miss('missing_image', `No image for ${request.report.id}: its id is not a MIMIC-CXR study id (sNNNNNNNN)`);
    const listed = studies?.get(study);
    const subject = request.report.subjectId ?? listed?.[0]?.subjectId;
    if (studies && listed === undefined) {
      return miss('missing_image', `No image for ${study}: the metadata lists no ${options.views ? `${options.views.join('/')} ` : ''}image of it`);
    }
    if (subject === undefined) {
      return miss('missing_image', `No image for ${study}: the report has no subject id to find its folder (give --metadata)`);
    }
    const folder = join(files, subject.slice(0, 3), subject, study);
    if (listed) return listed.map((image) => ({ path: join(folder, `${image.dicomId}.jpg`), image }));
    let names: string[];
    try {
      names = await readdir(folder);
    } catch {
      return miss('missing_image', `No image for ${study}: there is no folder ${relative(root, folder)}`);
    }
    return names
      .filter((name) => /\.jpe?g$/iu.test(name))
      .sort()
      .map((name) => ({ path: join(folder, name) }));
  }

  async function load(request: GenerationRequest): Promise<GeneratedImage | GenerationMiss> {
    const found = await imagesOf(request);
    if ('miss' in found) return found;
    const chosen = found[request.variant];
    if (chosen === undefined) {
      return miss('missing_image', `No image ${request.variant} for ${request.report.id}: its study has ${found.length} image${found.length === 1 ? '' : 's'}`);
    }
    try {
      await access(chosen.path);
    } catch {
      return miss('missing_image', `No image for ${request.report.id}: ${relative(root, chosen.path)} does not exist`);
    }
    try {
      let pipeline = sharp(chosen.path).resize(size, size, { fit: 'cover', position: 'centre' });
      pipeline = channels === 1 ? pipeline.grayscale() : pipeline.toColourspace('srgb').removeAlpha();
      const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
      return {
        pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        width: info.width,
        height: info.height,
        channels,
        meta: {
          sourceImage: relative(root, chosen.path),
          ...(chosen.image ? { dicomId: chosen.image.dicomId, view: chosen.image.view } : {}),
        },
      };
    } catch (err) {
      return miss('bad_image', `Cannot decode ${relative(root, chosen.path)} for ${request.report.id}: ${(err as Error).message}`);
    }
  }

  return {
    backend: 'images',
    usesSeed: false,
    model: `images:${basename(root.replace(/[\\/]+$/u, '')) || root}`,
    generate: (requests) => Promise.all(requests.map(load)),
    async close() {},
  };
}

function miss(reason: 'missing_image' | 'bad_image', message: string): GenerationMiss {
  return { miss: { reason, message } };
}

/** `s` and the study's digits, from `s50414267` or `50414267`. */
function studyKey(id: string): string | undefined {
  const match = /^s?(\d+)$/iu.exec(id.trim());
  return match ? `s${match[1]}` : undefined;
}

async function filesFolder(root: string): Promise<string> {
  let stats;
  try {
    stats = await stat(root);
  } catch (err) {
    throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot open the image folder ${root}: ${(err as Error).message}`, { file: root, cause: err });
  }
  if (!stats.isDirectory()) throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot use ${root} as the image folder: it is not a folder`, { file: root });
  const nested = join(root, 'files');
  try {
    if ((await stat(nested)).isDirectory()) return nested;
  } catch {
    // The folder is files/ itself.
  }
  return root;
}
