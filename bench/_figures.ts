/**
 * The figures of a benchmark in machine-readable form, for `bench/all.ts`: when the
 * environment names a file in `MEDSYN_BENCH_JSON`, {@link reportFigures} writes the
 * benchmark's figures there as JSON (through a temporary file renamed into place);
 * otherwise it does nothing, and the benchmark prints only its own text.
 *
 * @example
 * ```ts
 * reportFigures('shard', [
 *   { figure: 'writeShards', value: 812, unit: 'MB/s', reference: { label: 'fs copy + fsync', value: 950 } },
 * ]);
 * ```
 *
 * @module
 */
import { renameSync, writeFileSync } from 'node:fs';

/** The environment variable naming the file the figures go to. */
export const FIGURES_ENV = 'MEDSYN_BENCH_JSON';

/** One figure: a measured value, the reference it is compared with, and their ratio. */
export interface Figure {
  /** What was measured, e.g. `medsyn-clean end to end`. */
  figure: string;
  value: number;
  /** The value's unit, e.g. `reports/s`. */
  unit: string;
  /**
   * The reference measured in the same run (or, where it could not be, a recorded
   * figure whose label says so); null when there is none.
   */
  reference: { label: string; value: number; unit?: string } | null;
  /**
   * value / reference by default; a benchmark gives its own where the headline ratio is
   * computed otherwise (a median of per-round ratios, a ratio of times).
   */
  ratio?: number | null;
  /** A remark for the table: a target, a fallback. */
  note?: string;
}

/** What one benchmark writes. */
export interface FigureFile {
  format: 'medsyn-bench/1';
  benchmark: string;
  figures: Array<Figure & { ratio: number | null }>;
}

/**
 * Writes `figures` to the file `MEDSYN_BENCH_JSON` names, when it names one.
 */
export function reportFigures(benchmark: string, figures: Figure[]): void {
  const path = process.env[FIGURES_ENV];
  if (!path) return;
  const file: FigureFile = {
    format: 'medsyn-bench/1',
    benchmark,
    figures: figures.map((figure) => ({
      ...figure,
      ratio: figure.ratio !== undefined ? figure.ratio : figure.reference && figure.reference.value !== 0 ? figure.value / figure.reference.value : null,
    })),
  };
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(temporary, path);
}
