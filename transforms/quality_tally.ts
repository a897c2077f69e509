/**
 * What a run's quality checks found, for the closing summary: passes, failures by
 * reason, and the distribution of every score.
 *
 * @module
 */
import type { QualityReason, QualityVerdict } from './quality_filter.js';
import { ScoreDistribution, type DistributionSummary } from './score_distribution.js';

/**
 * The scores {@link QualityTally} summarises, with the fixed range of their bins (one-pass
 * histograms need their bins before the first value); the dataset report draws the same.
 */
export const QUALITY_SCORE_RANGES = {
  mean: { low: 0, high: 255 },
  contrast: { low: 0, high: 128 },
  entropy: { low: 0, high: 8 },
  sharpness: { low: 0, high: 100_000, log: true },
  noise: { low: 0, high: 64 },
  blackShare: { low: 0, high: 1 },
  whiteShare: { low: 0, high: 1 },
  alignment: { low: -1, high: 1 },
} as const;
const SCORES = QUALITY_SCORE_RANGES;

/** A score {@link QualityTally} summarises. */
export type ScoreName = keyof typeof SCORES;

/** The summary as JSON. */
export interface QualitySummary {
  checked: number;
  passed: number;
  failed: number;
  /** Failed images by reason (an image may have several). */
  reasons: Partial<Record<QualityReason, number>>;
  scores: Partial<Record<ScoreName, DistributionSummary>>;
}

/**
 * Counts verdicts as they come, in constant memory.
 *
 * @example
 * ```ts
 * const tally = new QualityTally();
 * tally.add(verdict);
 * console.error(formatQualitySummary(tally.summary()));
 * ```
 */
export class QualityTally {
  #checked = 0;
  #passed = 0;
  readonly #reasons: Partial<Record<QualityReason, number>> = {};
  readonly #scores = Object.fromEntries(Object.entries(SCORES).map(([name, range]) => [name, new ScoreDistribution(range)])) as Record<ScoreName, ScoreDistribution>;

  /** Counts the final verdict of one image. */
  add(verdict: QualityVerdict): void {
    this.#checked++;
    if (verdict.passed) this.#passed++;
    for (const reason of verdict.reasons) this.#reasons[reason] = (this.#reasons[reason] ?? 0) + 1;
    for (const name of Object.keys(SCORES) as ScoreName[]) {
      const value = verdict[name];
      if (typeof value === 'number') this.#scores[name].add(value);
    }
  }

  /** The summary so far. */
  summary(): QualitySummary {
    const scores: QualitySummary['scores'] = {};
    for (const name of Object.keys(SCORES) as ScoreName[]) {
      const summary = this.#scores[name].summary();
      if (summary) scores[name] = summary;
    }
    return { checked: this.#checked, passed: this.#passed, failed: this.#checked - this.#passed, reasons: { ...this.#reasons }, scores };
  }
}

/**
 * Lines for stderr: failures by reason, then one line per score with min, quartiles and max.
 *
 * @example
 * ```ts
 * console.error(formatQualitySummary(tally.summary()));
 * ```
 */
export function formatQualitySummary(summary: QualitySummary): string {
  const reasons = Object.entries(summary.reasons)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ');
  const lines = [`quality: ${summary.passed} passed, ${summary.failed} failed${reasons ? ` (${reasons})` : ''} of ${summary.checked} checked`];
  for (const [name, scores] of Object.entries(summary.scores)) {
    const digits = name.endsWith('Share') || name === 'alignment' ? 3 : name === 'entropy' ? 2 : 1;
    const values = [scores.min, scores.q1, scores.median, scores.q3, scores.max].map((value) => value.toFixed(digits));
    lines.push(`  ${name.padEnd(11)} min ${values[0]}  q1 ${values[1]}  median ${values[2]}  q3 ${values[3]}  max ${values[4]}`);
  }
  return lines.join('\n');
}
