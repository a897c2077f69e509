/**
 * The one table of `bench/all.ts`: a row per figure (benchmark, figure, value,
 * reference, ratio), in plain text columns.
 *
 * @example
 * ```ts
 * process.stdout.write(formatTable([{ benchmark: 'shard', figure: 'writeShards', value: '812 MB/s', reference: '950 MB/s (fs copy)', ratio: '0.85' }]));
 * ```
 *
 * @module
 */
import type { Figure } from './_figures.js';

/** One row of the table, every cell already text. */
export interface TableRow {
  benchmark: string;
  figure: string;
  value: string;
  reference: string;
  ratio: string;
}

/** A number with sensible digits: 3 significant below 100, whole above. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return Math.round(value).toLocaleString('en-US');
  if (magnitude >= 10) return value.toFixed(1);
  if (magnitude >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

/** The table row of one figure. */
export function figureRow(benchmark: string, figure: Figure & { ratio: number | null }): TableRow {
  const reference = figure.reference
    ? `${formatNumber(figure.reference.value)} ${figure.reference.unit ?? figure.unit} (${figure.reference.label})`
    : '—';
  return {
    benchmark,
    figure: figure.note ? `${figure.figure} [${figure.note}]` : figure.figure,
    value: `${formatNumber(figure.value)} ${figure.unit}`,
    reference,
    ratio: figure.ratio === null ? '—' : figure.ratio.toFixed(2),
  };
}

const COLUMNS = ['benchmark', 'figure', 'value', 'reference', 'ratio'] as const;

/** The rows as an aligned text table with a header, `ratio` right-aligned. */
export function formatTable(rows: readonly TableRow[]): string {
  const widths = COLUMNS.map((column) => Math.max(column.length, ...rows.map((row) => row[column].length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (COLUMNS[i] === 'ratio' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(COLUMNS), line(widths.map((width) => '-'.repeat(width))), ...rows.map((row) => line(COLUMNS.map((column) => row[column])))].join('\n') + '\n';
}
