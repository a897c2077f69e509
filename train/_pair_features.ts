/**
 * From samples to the frozen towers' features, through the feature caches when
 * there are some: the one place the trainer and the evaluation decode images
 * and read captions.
 *
 * @module
 */
import type { Sample } from '../streams/sample.js';
import { FeatureCache, inputDigest } from './feature_cache.js';
import { decodeGrayImage, type FrozenEncoders } from './frozen_encoders.js';

/** The image parts medsyn reads, in order of preference. */
export const IMAGE_PARTS = ['png', 'jpg', 'jpeg', 'webp'] as const;

/** Why a sample cannot be used. */
export type PairSkipReason = 'no_image' | 'no_caption' | 'bad_image';

/** A sample reduced to what training and evaluation use. */
export interface Pair {
  key: string;
  caption: string;
  image: Uint8Array;
  /** The sample's JSON, parsed, or an empty object. */
  json: Record<string, unknown>;
}

/** The pair of a sample, or why there is none. */
export function pairOf(sample: Sample): Pair | PairSkipReason {
  const part = IMAGE_PARTS.find((name) => sample.parts[name] !== undefined);
  if (part === undefined) return 'no_image';
  const txt = sample.parts['txt'];
  const caption = txt ? Buffer.from(txt).toString('utf8').trim() : '';
  if (caption === '') return 'no_caption';
  let json: Record<string, unknown> = {};
  const raw = sample.parts['json'];
  if (raw) {
    try {
      const parsed = JSON.parse(Buffer.from(raw).toString('utf8')) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
    } catch {
      // Labels are optional for training; evaluation says when they are missing.
    }
  }
  return { key: sample.key, caption, image: sample.parts[part]!, json };
}

/** Encodes pairs with the frozen towers, reading and filling the caches. */
export class PairFeatures {
  readonly #encoders: FrozenEncoders;
  readonly #imageCache: FeatureCache | undefined;
  readonly #textCache: FeatureCache | undefined;
  /** Milliseconds spent in the encoders (decoding included). */
  encoderMs = 0;

  constructor(encoders: FrozenEncoders, cacheDir?: string) {
    this.#encoders = encoders;
    if (cacheDir !== undefined) {
      this.#imageCache = FeatureCache.open(cacheDir, { encoderHash: encoders.imageHash, size: encoders.imageSize });
      this.#textCache = FeatureCache.open(cacheDir, { encoderHash: encoders.textHash, size: encoders.textSize });
    }
  }

  /** Cache hits and misses, both towers together. */
  get cacheStats(): { hits: number; misses: number } {
    return {
      hits: (this.#imageCache?.hits ?? 0) + (this.#textCache?.hits ?? 0),
      misses: (this.#imageCache?.misses ?? 0) + (this.#textCache?.misses ?? 0),
    };
  }

  /**
   * The image and text features of each pair.
   *
   * @throws {MedsynError} `MEDSYN_ERR_BAD_SAMPLE` for an image that cannot be decoded; the encoders' errors
   */
  async encode(pairs: readonly Pair[]): Promise<{ image: Float32Array[]; text: Float32Array[] }> {
    const image = await this.#tower(pairs, this.#imageCache, (pair) => pair.image, async (missing) =>
      this.#encoders.embedImages(await Promise.all(missing.map((pair) => decodeGrayImage(pair.image, pair.key)))),
    );
    const text = await this.#tower(pairs, this.#textCache, (pair) => pair.caption, (missing) => this.#encoders.embedTexts(missing.map((pair) => pair.caption)));
    return { image, text };
  }

  async #tower(
    pairs: readonly Pair[],
    cache: FeatureCache | undefined,
    input: (pair: Pair) => Uint8Array | string,
    run: (missing: Pair[]) => Promise<Float32Array[]>,
  ): Promise<Float32Array[]> {
    const out: (Float32Array | undefined)[] = new Array(pairs.length);
    const digests = cache ? pairs.map((pair) => inputDigest(input(pair))) : [];
    const missing: number[] = [];
    pairs.forEach((pair, i) => {
      out[i] = cache?.get(pair.key, digests[i]!);
      if (!out[i]) missing.push(i);
    });
    if (missing.length > 0) {
      const started = performance.now();
      const features = await run(missing.map((i) => pairs[i]!));
      this.encoderMs += performance.now() - started;
      missing.forEach((i, k) => {
        out[i] = features[k]!;
        cache?.put(pairs[i]!.key, digests[i]!, features[k]!);
      });
    }
    return out as Float32Array[];
  }

  /** Closes the caches. */
  close(): void {
    this.#imageCache?.close();
    this.#textCache?.close();
  }
}
