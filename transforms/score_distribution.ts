/**
 * Streaming summaries of score distributions: min, quartiles and max in constant
 * memory, however many images a run scores.
 *
 * @module
 */
import { invalidOption } from '../errors.js';

/** Options of {@link ScoreDistribution}. */
export interface ScoreDistributionOptions {
  /** Values below this are counted in the lowest bin (min and max stay exact). @default 0 */
  low?: number;
  /** Values above this are counted in the highest bin. @default 1 */
  high?: number;
  /** Bins on a log scale (`log1p`) rather than a linear one, for scores that span orders of magnitude. @default false */
  log?: boolean;
  /** Bins between `low` and `high`: the quartiles are exact to one bin. @default 2048 */
  bins?: number;
}

/** Min, quartiles and max of a distribution. */
export interface DistributionSummary {
  count: number;
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
}

/**
 * A histogram of fixed bins plus the exact min and max: adds in O(1), summarises in
 * O(bins), and holds a few kilobytes whatever the count. Quartiles are the centre of
 * the bin that holds them, clamped to [min, max].
 *
 * @example
 * ```ts
 * const contrast = new ScoreDistribution({ low: 0, high: 128 });
 * for (const value of [30, 42, 55]) contrast.add(value);
 * contrast.summary(); // { count: 3, min: 30, q1: ≈30, median: ≈42, q3: ≈55, max: 55 }
 * ```
 */
export class ScoreDistribution {
  readonly #low: number;
  readonly #high: number;
  readonly #log: boolean;
  readonly #counts: Float64Array;
  #count = 0;
  #min = Infinity;
  #max = -Infinity;

  /** @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for an empty range or a bad bin count */
  constructor(options: ScoreDistributionOptions = {}) {
    const log = options.log ?? false;
    const low = options.low ?? 0;
    const high = options.high ?? 1;
    if (!(high > low) || (log && low < 0)) invalidOption('high', `must be above low (${low}), and low ≥ 0 on a log scale, got ${high}`);
    const bins = options.bins ?? 2048;
    if (!Number.isInteger(bins) || bins < 1) invalidOption('bins', `must be a positive integer, got ${bins}`);
    this.#log = log;
    this.#low = log ? Math.log1p(low) : low;
    this.#high = log ? Math.log1p(high) : high;
    this.#counts = new Float64Array(bins);
  }

  /** Counts one value; `NaN` is ignored. */
  add(value: number): void {
    if (Number.isNaN(value)) return;
    this.#count++;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
    const scaled = this.#log ? Math.log1p(Math.max(value, 0)) : value;
    const bins = this.#counts.length;
    const bin = Math.min(bins - 1, Math.max(0, Math.floor(((scaled - this.#low) / (this.#high - this.#low)) * bins)));
    this.#counts[bin]!++;
  }

  /** The summary, or `undefined` when nothing was added. */
  summary(): DistributionSummary | undefined {
    if (this.#count === 0) return undefined;
    return { count: this.#count, min: this.#min, q1: this.#quantile(0.25), median: this.#quantile(0.5), q3: this.#quantile(0.75), max: this.#max };
  }

  #quantile(q: number): number {
    const target = q * (this.#count - 1);
    const bins = this.#counts.length;
    let seen = 0;
    for (let bin = 0; bin < bins; bin++) {
      seen += this.#counts[bin]!;
      if (seen > target) {
        const centre = this.#low + ((bin + 0.5) / bins) * (this.#high - this.#low);
        const value = this.#log ? Math.expm1(centre) : centre;
        return Math.min(Math.max(value, this.#min), this.#max);
      }
    }
    return this.#max;
  }
}
