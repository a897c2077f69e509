/**
 * The quality stage's decisions: each image's scores against thresholds, and the
 * near-duplicate search against every image kept so far in the run.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import { DuplicateIndex } from './duplicate_index.js';
import { imageStats, type GrayImage, type ImageStats } from './image_stats.js';
import { fineDistance, hashToHex, imageHashes } from './perceptual_hash.js';

/** Why an image failed. Stable strings: scripts count them. */
export type QualityReason =
  | 'blank'
  | 'too_dark'
  | 'too_bright'
  | 'low_contrast'
  | 'low_entropy'
  | 'blurry'
  | 'noisy'
  | 'too_black'
  | 'saturated'
  | 'wrong_size'
  | 'wrong_depth'
  | 'duplicate'
  | 'misaligned';

/** Thresholds of {@link QualityFilter}; each is also a `medsyn-filter` / `medsyn-gen` flag. */
export interface QualityThresholds {
  /** Lowest mean intensity (0–255). @default 40 */
  minMean?: number;
  /** Highest mean intensity. @default 215 */
  maxMean?: number;
  /** Lowest standard deviation of intensity. @default 25 */
  minContrast?: number;
  /** Lowest histogram entropy in bits (0–8). @default 4.5 */
  minEntropy?: number;
  /** Lowest variance of the Laplacian (sharpness). @default 10 */
  minSharpness?: number;
  /** Highest noise standard deviation in gray levels (Immerkær's estimator). @default 8 */
  maxNoise?: number;
  /** Highest share of near-black pixels (≤ 5). @default 0.5 */
  maxBlackShare?: number;
  /** Highest share of near-white pixels (≥ 250). @default 0.1 */
  maxWhiteShare?: number;
  /**
   * Near-duplicates: a kept image whose 64-bit perceptual hash is within this Hamming
   * distance is a candidate; -1 turns the search off.
   * @default 4
   */
  dupDistance?: number;
  /** …and a candidate is a duplicate when the 256-bit fine hashes are within this distance too. @default 16 */
  dupFineDistance?: number;
  /** The width and height an image must have. @default undefined (any) */
  size?: number;
  /** Lowest image–caption cosine similarity, when an alignment scorer is given. @default 0.2 */
  minAlignment?: number;
}

/** The defaults of {@link QualityThresholds}. */
export const DEFAULT_THRESHOLDS: Readonly<Required<Omit<QualityThresholds, 'size'>>> = {
  minMean: 40,
  maxMean: 215,
  minContrast: 25,
  minEntropy: 4.5,
  minSharpness: 10,
  maxNoise: 8,
  maxBlackShare: 0.5,
  maxWhiteShare: 0.1,
  dupDistance: 4,
  dupFineDistance: 16,
  minAlignment: 0.2,
};

/** Scores an image against a caption: the cosine similarity of their embeddings. */
export interface AlignmentScorer {
  readonly model: string;
  score(images: readonly GrayImage[], captions: readonly string[]): Promise<number[]>;
}

/** Every score of one image and the decision: what goes into the sample's JSON as `quality`. */
export interface QualityVerdict extends ImageStats {
  width: number;
  height: number;
  /** The 64-bit DCT perceptual hash, 16 hex digits. */
  phash: string;
  /** The kept image this one nearly duplicates, and how near: pHash and fine-hash distances. */
  duplicateOf?: string;
  duplicateDistance?: number;
  duplicateFineDistance?: number;
  /** Whether the duplicate is another variant of the same report, or another report's image. */
  duplicateKind?: 'variant' | 'report';
  /** Cosine similarity of image and caption, with an alignment scorer. */
  alignment?: number;
  passed: boolean;
  reasons: QualityReason[];
}

/** The scores of one image before the duplicate search, which depends on what was kept before. */
export type ImageScores = Omit<QualityVerdict, 'duplicateOf' | 'duplicateDistance' | 'duplicateFineDistance' | 'duplicateKind' | 'passed' | 'reasons'> & {
  /** The reasons found so far (everything but `duplicate`). */
  reasons: QualityReason[];
  hash: bigint;
  fine: Uint32Array;
};

const round = (value: number, digits: number): number => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * Scores images and decides which pass, remembering the perceptual hash of every image
 * kept so far (call {@link keep}) for the near-duplicate search. A thing with state: one
 * per run.
 *
 * Scoring is split in two so a caller can score a whole batch at once ({@link score},
 * which does not depend on order) and then decide image by image in input order
 * ({@link decide}), so the same input gives the same decisions whatever the batch size.
 *
 * @example
 * ```ts
 * const filter = new QualityFilter({ minContrast: 20 });
 * const scores = filter.score(image);
 * if (filter.decide(scores, 's1', 's1').passed) filter.keep(scores, 's1', 's1');
 * ```
 */
export class QualityFilter {
  readonly thresholds: Readonly<Required<Omit<QualityThresholds, 'size'>>> & { size?: number };
  readonly #index: DuplicateIndex | undefined;
  /** The report of each kept key (to tell a variant duplicate from another report's) and where its fine hash is. */
  readonly #kept = new Map<string, { report: string; entry: number }>();
  /** The fine hashes of the kept images, 8 words each, in the order kept. */
  #fine = new Uint32Array(8 * 1024);

  /**
   * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` naming a threshold out of range
   */
  constructor(thresholds: QualityThresholds = {}) {
    const merged: Required<Omit<QualityThresholds, 'size'>> & { size?: number } = { ...DEFAULT_THRESHOLDS };
    for (const name of [...(Object.keys(DEFAULT_THRESHOLDS) as Array<keyof typeof DEFAULT_THRESHOLDS>), 'size'] as const) {
      const value = thresholds[name];
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isFinite(value)) invalidOption(name, `must be a number, got ${String(value)}`);
      merged[name] = value;
    }
    if (!Number.isInteger(merged.dupDistance) || merged.dupDistance < -1 || merged.dupDistance > 32) {
      invalidOption('dupDistance', `must be an integer in -1 … 32, got ${merged.dupDistance}`);
    }
    if (!Number.isInteger(merged.dupFineDistance) || merged.dupFineDistance < 0 || merged.dupFineDistance > 256) {
      invalidOption('dupFineDistance', `must be an integer in 0 … 256, got ${merged.dupFineDistance}`);
    }
    if (merged.size !== undefined && (!Number.isInteger(merged.size) || merged.size < 1)) invalidOption('size', `must be a positive integer, got ${merged.size}`);
    this.thresholds = merged;
    this.#index = merged.dupDistance >= 0 ? new DuplicateIndex({ maxDistance: Math.max(merged.dupDistance, 1) }) : undefined;
  }

  /** Images kept so far (in the duplicate index). */
  get kept(): number {
    return this.#kept.size;
  }

  /** Scores one image against the thresholds that do not depend on other images. */
  score(image: GrayImage, alignment?: number): ImageScores {
    const t = this.thresholds;
    const stats = imageStats(image);
    const { phash: hash, fine } = imageHashes(image);
    const reasons: QualityReason[] = [];
    if (stats.blank) reasons.push('blank');
    if (stats.mean < t.minMean) reasons.push('too_dark');
    if (stats.mean > t.maxMean) reasons.push('too_bright');
    if (stats.contrast < t.minContrast) reasons.push('low_contrast');
    if (stats.entropy < t.minEntropy) reasons.push('low_entropy');
    if (stats.sharpness < t.minSharpness) reasons.push('blurry');
    if (stats.noise > t.maxNoise) reasons.push('noisy');
    if (stats.blackShare > t.maxBlackShare) reasons.push('too_black');
    if (stats.whiteShare > t.maxWhiteShare) reasons.push('saturated');
    if (t.size !== undefined && (image.width !== t.size || image.height !== t.size)) reasons.push('wrong_size');
    if (alignment !== undefined && alignment < t.minAlignment) reasons.push('misaligned');
    return {
      mean: round(stats.mean, 2),
      contrast: round(stats.contrast, 2),
      entropy: round(stats.entropy, 3),
      sharpness: round(stats.sharpness, 2),
      noise: round(stats.noise, 3),
      blackShare: round(stats.blackShare, 4),
      whiteShare: round(stats.whiteShare, 4),
      blank: stats.blank,
      width: image.width,
      height: image.height,
      phash: hashToHex(hash),
      ...(alignment !== undefined ? { alignment: round(alignment, 4) } : {}),
      reasons,
      hash,
      fine,
    };
  }

  /**
   * The decision for scored image `key` of report `report`: its own reasons, and
   * `duplicate` when an image kept so far is within `dupDistance` of it.
   */
  decide(scores: ImageScores, key: string, report: string): QualityVerdict {
    const { hash, fine, reasons: own, ...rest } = scores;
    const reasons = [...own];
    const verdict: QualityVerdict = { ...rest, passed: false, reasons };
    if (this.#index) {
      // Candidates by pHash, nearest first; the first whose fine hash agrees too is the duplicate.
      for (const candidate of this.#index.within(hash, this.thresholds.dupDistance)) {
        const kept = this.#kept.get(candidate.key)!;
        const distance = fineDistance(fine, this.#fine.subarray(kept.entry * 8, kept.entry * 8 + 8));
        if (distance > this.thresholds.dupFineDistance) continue;
        verdict.duplicateOf = candidate.key;
        verdict.duplicateDistance = candidate.distance;
        verdict.duplicateFineDistance = distance;
        verdict.duplicateKind = kept.report === report ? 'variant' : 'report';
        reasons.push('duplicate');
        break;
      }
    }
    verdict.passed = reasons.length === 0;
    return verdict;
  }

  /** Remembers a kept image for the duplicate search. */
  keep(scores: Pick<ImageScores, 'hash' | 'fine'>, key: string, report: string): void {
    if (!this.#index || this.#kept.has(key)) return;
    const entry = this.#kept.size;
    if ((entry + 1) * 8 > this.#fine.length) {
      const grown = new Uint32Array(this.#fine.length * 2);
      grown.set(this.#fine);
      this.#fine = grown;
    }
    this.#fine.set(scores.fine, entry * 8);
    this.#kept.set(key, { report, entry });
    this.#index.add(scores.hash, key);
  }
}
