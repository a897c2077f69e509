/**
 * `medsyn report`: one self-contained HTML page about a dataset's shards
 * (totals, rejects, labels, quality score histograms, a filterable grid of
 * thumbnails).
 *
 * @module
 */
import { resolve } from 'node:path';
import { ErrorCodes, MedsynError } from '../errors.js';
import { formatReportSummary, reportStats, writeDatasetReport, type DatasetReportOptions, type DatasetSummary } from '../transforms/dataset_report.js';
import { choiceFlag, integerFlag, type Command } from './_cli.js';
import { PROGRESS_FLAG, type CommandStats } from './_progress.js';

/** The `--stats` figures of a report: the samples, the rejects by reason, and every count of the page but the thumbnails. */
export function reportCommandStats(summary: DatasetSummary): CommandStats {
  return {
    unit: 'samples',
    items: summary.samples,
    rejects: summary.rejects.total,
    rejectsByReason: summary.rejects.byReason,
    elapsedMs: summary.seconds * 1000,
    details: reportStats(summary) as unknown as Record<string, unknown>,
  };
}

/** The `report` command. */
export const reportCommand: Command = {
  name: 'report',
  summary: 'Write a self-contained HTML report of a dataset: totals, rejects, labels, quality score histograms, a grid of thumbnails filterable by label.',
  usage: ['medsyn report SHARDS... --out report.html [--rejects FILE]... [options]'],
  readsStdin: false,
  flags: {
    out: { type: 'string', short: 'o', arg: 'FILE', help: 'the HTML file to write (required); written under a temporary name and renamed when complete' },
    rejects: { type: 'string', multiple: true, arg: 'FILE', help: 'a rejects NDJSON file (of medsyn-clean, -gen, -filter, -shard) to count by reason (repeatable)' },
    thumbnails: { type: 'string', arg: 'N', help: 'thumbnails in the random sample of the grid, 0 for none (default 48; a few positives per label are kept besides)' },
    'thumbnail-size': { type: 'string', arg: 'PX', help: 'longer side of a thumbnail in pixels (default 96)' },
    seed: { type: 'string', arg: 'N', help: 'seeds the choice of thumbnails (default 0)' },
    'on-error': { type: 'string', arg: 'POLICY', help: 'a shard that cannot be read: fail (default) or skip it, counting it as unreadable_shard' },
    title: { type: 'string', arg: 'TEXT', help: "the page's title (default 'medsyn dataset report')" },
    progress: PROGRESS_FLAG,
    quiet: { type: 'boolean', short: 'q', help: 'no summary line on stderr' },
  },
  details: `
SHARDS are what medsyn-train takes: shard files, folders with a manifest.json
(medsyn-shard's output), brace patterns ('out/shard-{000000..000099}.tar'),
shard lists (shards.txt of a merge), http(s) URLs. Every sample is read once;
memory stays flat (counts, fixed-bin histograms, a bounded set of thumbnails).

The page: totals (samples, reports, images per report, shards, bytes,
backends, models, sizes, formats, attempts); rejects by reason, from the
manifests and <shard>_stats.json beside local shards and from each --rejects
file (quality_failed rejects also by failed check); the distribution of the
14 CheXpert labels (positive, uncertain, negative, absent); histograms of the
quality scores the samples' JSON holds (mean, contrast, entropy, sharpness,
noise, near-black and near-white shares, alignment); a grid of thumbnails with
caption, scores and positive labels: a random sample chosen by a hash of the
key (the same whatever the shard order), plus a few positives per label, with
a label filter (link to one with report.html#label=Cardiomegaly).

The page is self-contained and offline: inline CSS and SVG, thumbnails as
data: URIs, one small inline script for the filter, and a
Content-Security-Policy that forbids any fetch. stdout: nothing.

Examples:
  medsyn report out/ --out report.html
  medsyn report 'out/shard-{000000..000009}.tar' --rejects gen-rejects.ndjson --rejects filter-rejects.ndjson -o report.html
`,
  async run(values, positionals, context) {
    if (positionals.length === 0) throw new MedsynError(ErrorCodes.USAGE, 'Expected SHARDS: shard files, a folder, a brace pattern or a URL (see medsyn report --help)');
    const out = values['out'];
    if (typeof out !== 'string' || out === '') throw new MedsynError(ErrorCodes.USAGE, '--out FILE is required: the HTML file to write (see medsyn report --help)', { option: 'out' });
    const options: DatasetReportOptions = { onError: choiceFlag(values, 'on-error', ['skip', 'fail'] as const) ?? 'fail' };
    const thumbnails = integerFlag(values, 'thumbnails', 0);
    if (thumbnails !== undefined) options.thumbnails = thumbnails;
    const thumbnailSize = integerFlag(values, 'thumbnail-size', 8);
    if (thumbnailSize !== undefined) options.thumbnailSize = thumbnailSize;
    const seed = integerFlag(values, 'seed', 0);
    if (seed !== undefined) options.seed = seed;
    if (Array.isArray(values['rejects'])) options.rejects = values['rejects'];
    if (typeof values['title'] === 'string') options.title = values['title'];

    const started = performance.now();
    const live = { samples: 0, shards: 0 };
    let summary: DatasetSummary | undefined;
    const progress = context.startProgress('samples', (state: typeof live) => ({
      items: state.samples,
      rejects: 0,
      line: `${state.samples} samples read from ${state.shards} shards`,
      extra: { shards: state.shards },
    }));
    options.onProgress = (state) => {
      Object.assign(live, state);
      progress.update(live);
    };
    context.stats(() => (summary ? reportCommandStats(summary) : { unit: 'samples', items: live.samples, rejects: 0, elapsedMs: performance.now() - started }));
    try {
      summary = await writeDatasetReport(positionals, out, options);
    } finally {
      progress.finish(live);
    }
    if (values['quiet'] !== true) process.stderr.write(`${context.prog}: ${formatReportSummary(summary)}\n${context.prog}: wrote ${resolve(out)}\n`);
    return 0;
  },
};
