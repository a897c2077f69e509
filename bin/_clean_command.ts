/**
 * `medsyn clean` / `medsyn-clean`: reports in, cleaned-report NDJSON out.
 *
 * @module
 */
import { formatCleanSummary, runClean, type CleanSummary, type RunCleanOptions } from '../transforms/run_clean.js';
import { ErrorCodes, MedsynError } from '../errors.js';
import { PARTITION_FLAGS, partitionFromFlags } from './_partition_flags.js';
import { choiceFlag, integerFlag, type Command } from './_cli.js';
import { PROGRESS_FLAG, stageStats, type CommandStats } from './_progress.js';
import { catchInterrupts } from './_signals.js';

const FORMATS = ['auto', 'zip', 'dir', 'txt', 'csv', 'ndjson'] as const;

/** The `clean` command. */
export const cleanCommand: Command = {
  name: 'clean',
  summary: 'Read radiology reports, extract sections and labels, write one cleaned report per line (NDJSON).',
  usage: ['medsyn-clean [options] [INPUT]', 'cat reports.csv | medsyn-clean [options] > clean.ndjson'],
  readsStdin: true,
  flags: {
    format: { type: 'string', arg: 'FMT', help: `input format: ${FORMATS.join('|')} (default auto: from the name, else the first bytes)` },
    'id-column': { type: 'string', arg: 'NAME', help: 'generic CSV: the column with the study id (default id)' },
    'text-column': { type: 'string', arg: 'NAME', help: 'generic CSV: the column with the whole report text (default text)' },
    tokenizer: { type: 'string', arg: 'DIR', help: "CLIP tokenizer folder (e.g. MODEL/tokenizer) to fit prompts exactly; default: a word-count estimate" },
    'max-tokens': { type: 'string', arg: 'N', help: "prompt limit in tokens, BOS/EOS included (default 77, or the tokenizer's)" },
    'min-words': { type: 'string', arg: 'N', help: 'reject captions shorter than N words as too_short (default 2)' },
    'max-report-bytes': { type: 'string', arg: 'N', help: 'reject reports larger than N bytes as too_long (default 1048576)' },
    dedupe: { type: 'boolean', help: 'reject reports whose prompt repeats an earlier one (duplicate)' },
    'keep-communication': { type: 'boolean', help: 'keep sentences that only record communication of results' },
    'keep-text': { type: 'boolean', help: 'keep the raw report text in each record (field text)' },
    rejects: { type: 'string', arg: 'FILE', help: 'write rejects as NDJSON (id, source, reason, message) to FILE' },
    'on-error': { type: 'string', arg: 'POLICY', help: 'skip (default): reject bad records and go on; fail: stop at the first' },
    ...PARTITION_FLAGS,
    limit: { type: 'string', arg: 'N', help: 'stop after N reports read' },
    workers: { type: 'string', arg: 'N', help: 'worker threads that inflate and clean (default: one per core, one fewer for a file or folder, where the main thread cleans too; 0 cleans on the main thread)' },
    progress: PROGRESS_FLAG,
    quiet: { type: 'boolean', short: 'q', help: 'no summary line on stderr' },
  },
  details: `
INPUT is a path or - (stdin, the default). Formats:
  zip     the official mimic-cxr-reports.zip (files/pNN/pNNNNNNNN/sNNNNNNNN.txt)
  dir     a folder laid out like the zip (DIR/files/pNN/... or DIR/pNN/...)
  txt     one report in one .txt file (id from the file name)
  csv     the official mimic_cxr_sectioned.csv (recognised by its header
          study,impression,findings,last_paragraph,comparison), or any CSV with
          --id-column and --text-column holding whole reports
  ndjson  one {"id": ..., "text": ...} object per line

Sections follow the official MIMIC-CXR section parser: the caption is the last
IMPRESSION, else FINDINGS, else the last paragraph, else COMPARISON, normalised
(line breaks unwrapped, list numbers and ___ placeholders removed, sentences
that only record communication dropped). The prompt is the caption cut at a
sentence boundary to fit the generator's token limit. Labels are the 14
CheXpert observations (1 positive, 0 negative, -1 uncertain, absent when not
mentioned), with side and size for effusion, pneumothorax, consolidation and
opacity.

Output: one CleanReport per line on stdout:
  {"id","subjectId","source","sections","sectionUsed","prompt","caption",
   "labels","attributes"}  (and "text", the raw report, with --keep-text)
Rejects (reason: empty, no_section, too_short, too_long, duplicate, bad_row,
bad_json, bad_entry, missing_id, not_utf8) go to --rejects; a summary line
goes to stderr. Exit status: 0 done, 1 failed (one line on stderr; --debug
for a stack trace), 2 bad usage.

Examples:
  medsyn-clean mimic-cxr-reports.zip --rejects rejects.ndjson > clean.ndjson
  medsyn-clean mimic_cxr_sectioned.csv --tokenizer roentgen/tokenizer --dedupe > clean.ndjson
  medsyn-clean notes.csv --id-column study_id --text-column report > clean.ndjson
  cat reports.ndjson | medsyn-clean | medsyn-gen | medsyn-shard out/
`,
  async run(values, positionals, context) {
    if (positionals.length > 1) {
      throw new MedsynError(ErrorCodes.USAGE, `Too many inputs: ${positionals.join(' ')} (medsyn-clean reads one INPUT; see --help)`);
    }
    const options: RunCleanOptions = {
      format: choiceFlag(values, 'format', FORMATS) ?? 'auto',
      dedupe: values['dedupe'] === true,
      dropCommunication: values['keep-communication'] !== true,
      keepText: values['keep-text'] === true,
      onError: choiceFlag(values, 'on-error', ['skip', 'fail'] as const) ?? 'skip',
      endOutput: false,
    };
    const idColumn = values['id-column'] as string | undefined;
    const textColumn = values['text-column'] as string | undefined;
    if (idColumn !== undefined) options.idColumn = idColumn;
    if (textColumn !== undefined) options.textColumn = textColumn;
    const maxTokens = integerFlag(values, 'max-tokens', 3);
    if (maxTokens !== undefined) options.maxTokens = maxTokens;
    // runClean loads it (in each worker) before it reads anything, so a bad folder fails first.
    if (typeof values['tokenizer'] === 'string') options.tokenizer = values['tokenizer'];
    const workers = integerFlag(values, 'workers', 0);
    if (workers !== undefined) options.workers = workers;
    const minWords = integerFlag(values, 'min-words', 0);
    if (minWords !== undefined) options.minWords = minWords;
    const maxReportBytes = integerFlag(values, 'max-report-bytes');
    if (maxReportBytes !== undefined) options.maxReportBytes = maxReportBytes;
    const limit = integerFlag(values, 'limit');
    if (limit !== undefined) options.limit = limit;
    if (typeof values['rejects'] === 'string') options.rejects = values['rejects'];

    const partition = partitionFromFlags(values, 'medsyn-clean', values['quiet'] === true);
    if (partition) options.partition = partition;

    let live: CleanSummary = { read: 0, cleaned: 0, rejected: {}, rejectedTotal: 0, seconds: 0 };
    const progress = context.startProgress('reports', (summary: CleanSummary) => ({
      items: summary.cleaned,
      rejects: summary.rejectedTotal,
      done: summary.read,
      ...(limit !== undefined ? { total: limit } : {}),
      line: `${summary.cleaned} cleaned, ${summary.rejectedTotal} rejected, ${summary.read} read, ${Math.round(summary.seconds > 0 ? summary.read / summary.seconds : 0)} reports/s`,
      extra: { read: summary.read },
    }));
    context.stats(() => cleanStats(live));
    options.onProgress = (summary) => {
      live = summary;
      progress.update(summary);
    };
    const interrupts = catchInterrupts('medsyn-clean', 'reading no more reports');
    options.signal = interrupts.signal;
    try {
      live = await runClean(positionals[0] ?? '-', process.stdout, options);
    } catch (err) {
      // After a signal, a reader that went away first (the next stage stopping too) is expected.
      const exitCode = interrupts.exitAfter(err);
      if (exitCode !== undefined) return exitCode;
      throw err;
    } finally {
      interrupts.dispose();
      progress.finish(live);
    }
    if (values['quiet'] !== true) process.stderr.write(`medsyn-clean: ${formatCleanSummary(live)}\n`);
    return interrupts.exitCode() ?? 0;
  },
};

/** The `--stats` figures of a cleaning run: those of its summary line. */
export function cleanStats(summary: CleanSummary): CommandStats {
  return stageStats('reports', summary.cleaned, summary.read, summary, { read: summary.read, cleaned: summary.cleaned, seconds: summary.seconds });
}
