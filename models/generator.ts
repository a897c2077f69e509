/**
 * The one interface every image backend implements (`phantom`, `images`, and the model
 * backends), and the records that cross it.
 *
 * @module
 */
import type { CleanReport, RejectReason } from '../records.js';

/** One image to make: which report, which variant and attempt, and the seed derived from them. */
export interface GenerationRequest {
  /** The report's sample key: its id after `sanitizeKey`. */
  key: string;
  report: CleanReport;
  /** 0 … images per report − 1. */
  variant: number;
  /** 0 for the first try, 1, 2, … when the quality stage asks for another. */
  attempt: number;
  /** The image's seed, from `deriveSeed(runSeed, key, variant, attempt)`. */
  seed: number;
}

/** An image as a backend returns it: raw 8-bit pixels, row-major, channels interleaved. */
export interface GeneratedImage {
  pixels: Uint8Array;
  width: number;
  height: number;
  /** 1 for grayscale, 3 for RGB. */
  channels: 1 | 3;
  /** What the backend adds to the sample's metadata (scheduler, steps, guidance, source image). */
  meta?: Record<string, unknown>;
}

/** A request the backend could not turn into an image, while the rest of the batch went fine. */
export interface GenerationMiss {
  miss: { reason: RejectReason; message: string };
}

/**
 * An image backend. `generate` takes a batch and answers with one result per request, in
 * order; it throws when the whole batch failed (the pipeline then rejects the batch's
 * reports with `generation_failed`, or stops under `--on-error fail`). A backend may run
 * its work on other threads, a GPU or a server: the pipeline keeps one batch in
 * `generate` while it encodes and writes the one before.
 *
 * @example
 * ```ts
 * const generator: Generator = await createPhantomGenerator({ size: 256 });
 * try {
 *   const [image] = await generator.generate([{ key: 's1', report, variant: 0, attempt: 0, seed: deriveSeed(0, 's1', 0, 0) }]);
 * } finally {
 *   await generator.close();
 * }
 * ```
 */
export interface Generator {
  /** The backend's name, as `--backend` takes it. */
  readonly backend: string;
  /** What made the images: a model id and version, recorded in every sample. */
  readonly model: string;
  /**
   * Whether the image depends on the request's seed, so that another attempt gives
   * another image; `false` for backends that return a fixed image (real images), which
   * the quality stage then does not retry.
   * @default true
   */
  readonly usesSeed?: boolean;
  /**
   * How many `generate` calls the pipeline may have in flight at once: more than 1 for
   * backends that pipeline batches themselves (a model's text encoder, UNet and decoder
   * working on consecutive batches; requests to a server). Results are still taken in order.
   * @default 1
   */
  readonly concurrentBatches?: number;
  generate(requests: readonly GenerationRequest[]): Promise<Array<GeneratedImage | GenerationMiss>>;
  /** Frees threads, sessions and connections. */
  close(): Promise<void>;
}

/**
 * Tells a {@link GenerationMiss} from an image.
 *
 * @example
 * ```ts
 * for (const result of await generator.generate(batch)) if (isMiss(result)) console.error(result.miss.message);
 * ```
 */
export function isMiss(result: GeneratedImage | GenerationMiss): result is GenerationMiss {
  return 'miss' in result;
}
