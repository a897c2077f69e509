/**
 * Evaluation metrics of a contrastive image–text model, computed on the host in
 * double precision: exact AUROC (the Mann–Whitney statistic, ties counted as
 * one half, which is the area under the trapezoid ROC curve), macro AUROC over
 * the observations that have both classes, and retrieval recall at K with the
 * median rank from an image × text similarity matrix whose matching pairs are
 * on the diagonal.
 *
 * @module
 */
import { invalidOption } from '../errors.js';

/**
 * The exact area under the ROC curve of `scores` against binary `labels`
 * (1 positive, 0 negative; any other label is ignored, so CheXpert's −1
 * uncertain and blanks drop out). Tied scores count one half, as the trapezoid
 * rule over the ROC curve and the Mann–Whitney U statistic do. `NaN` when
 * either class is missing.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` when the lists differ in length or a used score is not finite
 * @example
 * ```ts
 * auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]); // 0.75
 * ```
 */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (scores.length !== labels.length) invalidOption('labels', `got ${labels.length} labels for ${scores.length} scores`);
  const used: { score: number; positive: boolean }[] = [];
  for (let i = 0; i < scores.length; i++) {
    const label = labels[i];
    if (label !== 1 && label !== 0) continue;
    const score = scores[i]!;
    if (!Number.isFinite(score)) invalidOption('scores', `score ${i} is ${score}, every scored sample needs a finite score`);
    used.push({ score, positive: label === 1 });
  }
  used.sort((a, b) => a.score - b.score);
  let positives = 0;
  let rankSum = 0;
  // Ranks are 1-based; a run of equal scores shares the mean of its ranks.
  for (let start = 0; start < used.length; ) {
    let end = start;
    while (end < used.length && used[end]!.score === used[start]!.score) end++;
    const meanRank = (start + 1 + end) / 2;
    for (let i = start; i < end; i++) {
      if (used[i]!.positive) {
        positives++;
        rankSum += meanRank;
      }
    }
    start = end;
  }
  const negatives = used.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** The AUROC of each observation and their mean. */
export interface MacroAuroc {
  /** AUROC per observation name; `null` where a class is missing. */
  perObservation: Record<string, number | null>;
  /** The mean over the observations with both classes; `null` when there is none. */
  macro: number | null;
  /** The observations that entered the mean, in the order given. */
  counted: string[];
}

/**
 * AUROC per observation from scores and labels per observation, and the macro
 * mean over those where both classes are present.
 *
 * @param scores per observation, one score per sample
 * @param labels per observation, one label per sample (1, 0; anything else ignored)
 * @throws {MedsynError} as {@link auroc}; `MEDSYN_ERR_INVALID_OPTION` for an observation without labels
 * @example
 * ```ts
 * const { macro, perObservation } = macroAuroc({ edema: [0.2, 0.9] }, { edema: [0, 1] }); // macro 1
 * ```
 */
export function macroAuroc(scores: Readonly<Record<string, ArrayLike<number>>>, labels: Readonly<Record<string, ArrayLike<number>>>): MacroAuroc {
  const perObservation: Record<string, number | null> = {};
  const counted: string[] = [];
  let sum = 0;
  for (const [name, values] of Object.entries(scores)) {
    const truth = labels[name];
    if (!truth) invalidOption('labels', `no labels for observation ${name}`);
    const value = auroc(values, truth);
    perObservation[name] = Number.isNaN(value) ? null : value;
    if (!Number.isNaN(value)) {
      counted.push(name);
      sum += value;
    }
  }
  return { perObservation, macro: counted.length > 0 ? sum / counted.length : null, counted };
}

/** Retrieval quality in one direction. */
export interface RetrievalScores {
  /** Share of queries whose match is ranked first. */
  r1: number;
  /** Share of queries whose match is in the first five. */
  r5: number;
  /** Share of queries whose match is in the first ten. */
  r10: number;
  /** The median 1-based rank of the match (the mean of the two middle ranks for an even count). */
  medianRank: number;
}

/** Retrieval both ways. */
export interface RetrievalMetrics {
  /** Queries (= candidates) counted. */
  count: number;
  /** Each image queries the texts. */
  imageToText: RetrievalScores;
  /** Each text queries the images. */
  textToImage: RetrievalScores;
}

/**
 * The 1-based rank of the matching candidate of each query: row i of the
 * row-major `n × n` `similarity` (query i against every candidate) matches
 * candidate i. A candidate with a score equal to the match's counts as ahead
 * of it (the pessimistic rank, so a constant model does not score well).
 *
 * @param transpose rank columns instead of rows (text→image from an image × text matrix)
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` when `similarity` does not hold n × n values
 * @example
 * ```ts
 * matchRanks(Float32Array.of(0.9, 0.1, 0.5, 0.4), 2); // [1, 2]
 * ```
 */
export function matchRanks(similarity: ArrayLike<number>, n: number, transpose = false): number[] {
  if (!Number.isSafeInteger(n) || n < 0 || similarity.length !== n * n) invalidOption('similarity', `must hold n × n = ${n} × ${n} values, got ${similarity.length}`);
  const ranks: number[] = [];
  for (let q = 0; q < n; q++) {
    const at = (c: number): number => (transpose ? similarity[c * n + q]! : similarity[q * n + c]!);
    const match = at(q);
    let rank = 1;
    for (let c = 0; c < n; c++) if (c !== q && !(at(c) < match)) rank++;
    ranks.push(rank);
  }
  return ranks;
}

function scoresOf(ranks: readonly number[]): RetrievalScores {
  const n = ranks.length;
  const within = (k: number): number => (n === 0 ? 0 : ranks.filter((rank) => rank <= k).length / n);
  const sorted = [...ranks].sort((a, b) => a - b);
  const medianRank = n === 0 ? Number.NaN : n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { r1: within(1), r5: within(5), r10: within(10), medianRank };
}

/**
 * Image→text and text→image R@1/5/10 and median rank from the row-major
 * image × text `similarity` matrix (image i against text j at `i·n + j`),
 * the pairs on the diagonal. Ties with the match count against it.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` when `similarity` does not hold n × n values
 * @example
 * ```ts
 * const { imageToText, textToImage } = retrievalMetrics(similarities, 500);
 * imageToText.r1; // share of images whose own caption is ranked first
 * ```
 */
export function retrievalMetrics(similarity: ArrayLike<number>, n: number): RetrievalMetrics {
  return { count: n, imageToText: scoresOf(matchRanks(similarity, n)), textToImage: scoresOf(matchRanks(similarity, n, true)) };
}

/**
 * The row-major `a × b` matrix of dot products of two lists of vectors (cosine
 * similarities when both are unit length).
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for vectors of different lengths
 * @example
 * ```ts
 * const similarity = similarityMatrix(imageEmbeddings, textEmbeddings);
 * ```
 */
export function similarityMatrix(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(a.length * b.length);
  const size = a[0]?.length ?? 0;
  for (const vector of [...a, ...b]) if (vector.length !== size) invalidOption('vectors', `all need ${size} values, got one with ${vector.length}`);
  for (let i = 0; i < a.length; i++) {
    const u = a[i]!;
    for (let j = 0; j < b.length; j++) {
      const v = b[j]!;
      let dot = 0;
      for (let k = 0; k < size; k++) dot += u[k]! * v[k]!;
      out[i * b.length + j] = dot;
    }
  }
  return out;
}
