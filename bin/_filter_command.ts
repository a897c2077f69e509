/**
 * `medsyn filter` / `medsyn-filter`: a sample tar stream in, the samples that pass the
 * quality checks out.
 *
 * @module
 */
import { ErrorCodes, MedsynError } from '../errors.js';
import { formatFilterSummary, runFilter, type FilterSummary, type RunFilterOptions } from '../transforms/run_filter.js';
import { integerFlag, type Command } from './_cli.js';
import { PROGRESS_FLAG, stageStats, type CommandStats } from './_progress.js';
import { catchInterrupts } from './_signals.js';
import { QUALITY_FLAGS, qualityThresholds } from './_quality_flags.js';

/** The `filter` command. */
export const filterCommand: Command = {
  name: 'filter',
  summary: 'Score every image of a sample tar stream, keep those that pass, and record every score in the sample JSON.',
  usage: ['medsyn-filter [options] < samples.tar > kept.tar', 'cat out/shard-*.tar | medsyn-filter --min-contrast 20 | medsyn-shard out2/'],
  readsStdin: true,
  flags: {
    ...QUALITY_FLAGS,
    size: { type: 'string', arg: 'PX', help: 'reject images that are not PX x PX: wrong_size (default: any size)' },
    rejects: { type: 'string', arg: 'FILE', help: 'write rejected samples as NDJSON (id, source, offset, reason, reasons, quality, message) to FILE' },
    progress: PROGRESS_FLAG,
    quiet: { type: 'boolean', short: 'q', help: 'no summary on stderr' },
  },
  details: `
Input on stdin: an uncompressed WebDataset tar stream (what medsyn-gen writes,
or shards: cat out/shard-*.tar | ...). Output on stdout: the samples that pass,
their parts unchanged but for <key>.json, which gains (or has replaced) its
"quality": {mean, contrast, entropy, sharpness, noise, blackShare,
whiteShare, blank, width, height, phash, duplicateOf, duplicateDistance,
duplicateFineDistance, duplicateKind, alignment, passed, reasons}.

Checks on the decoded 8-bit gray pixels: blank (contrast below 2, or one
value in 99% of pixels), mean, contrast, histogram entropy, sharpness
(variance of the Laplacian), noise (Immerkaer's estimate of its standard
deviation), near-black and near-white shares, size, 8-bit depth, and
near-duplicates: a 64-bit DCT perceptual hash within --dup-distance of an
image kept earlier in the run (a variant of the same report, or another
report's image), confirmed by a 256-bit hash of the 16x16 lowest
frequencies within --dup-fine-distance. With --align-model, the cosine
similarity of image and caption (<key>.txt). The defaults pass the phantom's images
and fail blank, saturated, washed-out, blurred and duplicated ones; tune them
for real generators from the score distributions in the summary.

Rejects (reason): quality_failed (with the failed checks in "reasons"),
bad_image (no image part, or one that cannot be decoded), bad_json. Exit
status: 0 done, 1 failed, 2 bad usage.

Examples:
  medsyn-gen reports.csv --skip-quality | medsyn-filter --rejects rejects.ndjson | medsyn-shard out/
  cat out/shard-*.tar | medsyn-filter --min-contrast 30 --dup-distance 6 | medsyn-shard out2/
`,
  async run(values, positionals, context) {
    if (positionals.length > 0) {
      throw new MedsynError(ErrorCodes.USAGE, `medsyn-filter reads stdin, not ${positionals.join(' ')} (cat FILE | medsyn-filter; see --help)`);
    }
    const options: RunFilterOptions = { ...qualityThresholds(values), endOutput: false };
    const size = integerFlag(values, 'size');
    if (size !== undefined) options.size = size;
    if (typeof values['rejects'] === 'string') options.rejects = values['rejects'];
    if (typeof values['align-model'] === 'string') options.alignModel = values['align-model'];
    let live: FilterSummary | undefined;
    const progress = context.startProgress('samples', (summary: FilterSummary) => ({
      items: summary.kept,
      rejects: summary.rejectedTotal,
      line: `${summary.read} read, ${summary.kept} kept, ${summary.rejectedTotal} rejected, ${(summary.seconds > 0 ? summary.read / summary.seconds : 0).toFixed(1)} samples/s`,
      extra: { read: summary.read },
    }));
    options.onProgress = (summary) => {
      live = summary;
      progress.update(summary);
    };
    context.stats(() => (live ? filterStats(live) : undefined));
    const interrupts = catchInterrupts('medsyn-filter', 'taking no more samples');
    options.signal = interrupts.signal;
    let summary: FilterSummary;
    try {
      summary = live = await runFilter(process.stdin, process.stdout, options);
    } catch (err) {
      const exitCode = interrupts.exitAfter(err);
      if (exitCode !== undefined) return exitCode;
      throw err;
    } finally {
      interrupts.dispose();
      progress.finish(live);
      // Stopped early: let go of stdin, whose writer may still be writing.
      if (interrupts.exitCode() !== undefined) process.stdin.destroy();
    }
    if (values['quiet'] !== true) process.stderr.write(`medsyn-filter: ${formatFilterSummary(summary)}\n`);
    return interrupts.exitCode() ?? 0;
  },
};

/** The `--stats` figures of a filtering run: those of its summary line, and the quality summary. */
export function filterStats(summary: FilterSummary): CommandStats {
  return stageStats('samples', summary.kept, summary.read, summary, { read: summary.read, kept: summary.kept, seconds: summary.seconds, quality: summary.quality });
}
