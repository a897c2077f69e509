/**
 * `medsyn eval` / `medsyn-eval`: zero-shot AUROC, retrieval and a linear probe
 * of a trained run, written as metrics.json and report.html.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCodes, MedsynError } from '../errors.js';
import { OBSERVATIONS, type Observation } from '../records.js';
import { evaluateRun, type EvalMetrics, type EvaluateRunOptions, type PromptPair } from '../train/evaluate_run.js';
import { EXECUTION_DEVICES } from '../train/session.js';
import { choiceFlag, integerFlag, numberFlag, type Command } from './_cli.js';
import { PROGRESS_FLAG, type CommandStats } from './_progress.js';

/** Formats the end-of-run line. */
export function formatEvalSummary(metrics: EvalMetrics): string {
  const f = (value: number | null | undefined): string => (value === null || value === undefined ? 'n/a' : value.toFixed(3));
  const r = metrics.retrieval;
  return (
    `${metrics.samples} samples (${metrics.labelled} labelled): zero-shot macro AUROC ${f(metrics.zeroShot.macroAuroc)} over ${metrics.zeroShot.counted.length} observations` +
    `${metrics.probe ? `, probe ${f(metrics.probe.macroAuroc)}` : ''}; retrieval over ${r.count}: image→text R@1 ${f(r.imageToText.r1)} R@10 ${f(r.imageToText.r10)}, ` +
    `text→image R@1 ${f(r.textToImage.r1)} R@10 ${f(r.textToImage.r10)}`
  );
}

function readPrompts(path: string): Partial<Record<Observation, PromptPair>> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new MedsynError(ErrorCodes.USAGE, `Cannot read --prompts ${path}: ${(cause as Error).message}`, { file: path, cause });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new MedsynError(ErrorCodes.USAGE, `Invalid --prompts ${path}: expected {"pleuralEffusion": {"positive": "...", "negative": "..."}, ...}`);
  for (const [key, value] of Object.entries(json)) {
    const pair = value as Partial<PromptPair> | null;
    if (!(OBSERVATIONS as readonly string[]).includes(key) || !pair || typeof pair.positive !== 'string' || typeof pair.negative !== 'string') {
      throw new MedsynError(ErrorCodes.USAGE, `Invalid --prompts ${path}: ${key} must be one of the 14 observations (${OBSERVATIONS.join(', ')}) with string positive and negative prompts`);
    }
  }
  return json as Partial<Record<Observation, PromptPair>>;
}

/** The `eval` command. */
export const evalCommand: Command = {
  name: 'eval',
  summary: 'Evaluate a trained run: zero-shot AUROC per CheXpert observation, retrieval R@K, linear probe; metrics.json and report.html.',
  usage: ['medsyn-eval RUN --data SHARDS [--labels FILE] [options]'],
  readsStdin: false,
  flags: {
    data: { type: 'string', multiple: true, arg: 'SHARDS', help: 'shards to evaluate on (files, folders, brace patterns, URLs; repeatable; required)' },
    labels: { type: 'string', arg: 'FILE', help: "labels CSV in the layout of mimic-cxr-2.0.0-chexpert.csv, matched by study id (default: the samples' JSON labels)" },
    prompts: { type: 'string', arg: 'FILE', help: 'JSON {"<observation>": {"positive": "...", "negative": "..."}} replacing default prompts' },
    split: { type: 'string', arg: 'WHICH', help: "all (default) or val: only the keys of the run's validation split" },
    out: { type: 'string', arg: 'DIR', help: 'where metrics.json and report.html go (default: RUN)' },
    limit: { type: 'string', arg: 'N', help: 'samples used at most (default 5000)' },
    'retrieval-size': { type: 'string', arg: 'N', help: 'pairs retrieval is computed over (default 1000)' },
    'probe-test-fraction': { type: 'string', arg: 'X', help: "share of keys that are the linear probe's test rows (default 0.3)" },
    'skip-probe': { type: 'boolean', help: 'no linear probe' },
    device: { type: 'string', arg: 'NAME', help: `onnxruntime device: ${EXECUTION_DEVICES.join('|')} (default cpu)` },
    threads: { type: 'string', arg: 'N', help: 'onnxruntime threads per op (default: one per core)' },
    progress: PROGRESS_FLAG,
    quiet: { type: 'boolean', short: 'q', help: 'no summary line on stderr' },
  },
  details: `
RUN is a folder medsyn-train wrote; its last checkpoint is evaluated with the
towers it was trained on (their SHA-256 are checked).

Zero-shot: for each of the 14 CheXpert observations, score = cos(image,
positive prompt) - cos(image, negative prompt); AUROC per observation (labels 1
and 0; -1 and blank ignored) and their macro mean over the observations with
both classes present. Default prompts: "<Observation>." against
"No <observation>." ("No acute cardiopulmonary process." for No Finding,
"Support devices in place." for Support Devices, "Pulmonary edema." against
"No pulmonary edema." for Edema, as reports say it).
Retrieval: image->text and text->image R@1/5/10 and median rank; ties count
against the match. Linear probe: logistic regression per observation on the
image embeddings, trained with medsyn's engine on the keys outside the
--probe-test-fraction hash split, AUROC on the rest.

Writes metrics.json and report.html (self-contained: curves, AUROC table,
retrieved thumbnails) to --out (default RUN); stdout: metrics.json.

Examples:
  medsyn-eval run1 --data test-shards/
  medsyn-eval run1 --data 'real/shard-{000000..000009}.tar' --labels mimic-cxr-2.0.0-chexpert.csv
`,
  async run(values, positionals, context) {
    if (positionals.length !== 1) throw new MedsynError(ErrorCodes.USAGE, `Expected one RUN folder, got ${positionals.length} (see medsyn-eval --help)`);
    const data = values['data'] as string[] | undefined;
    if (!data || data.length === 0) throw new MedsynError(ErrorCodes.USAGE, '--data SHARDS is required: the shards to evaluate on (see medsyn-eval --help)');
    const options: EvaluateRunOptions = {
      split: choiceFlag(values, 'split', ['all', 'val'] as const) ?? 'all',
      device: choiceFlag(values, 'device', EXECUTION_DEVICES) ?? 'cpu',
      probe: values['skip-probe'] !== true,
    };
    const limit = integerFlag(values, 'limit');
    if (limit !== undefined) options.limit = limit;
    const retrievalSize = integerFlag(values, 'retrieval-size');
    if (retrievalSize !== undefined) options.retrievalSize = retrievalSize;
    const threads = integerFlag(values, 'threads', 0);
    if (threads !== undefined) options.intraOpThreads = threads;
    const probeTestFraction = numberFlag(values, 'probe-test-fraction', 0, 1);
    if (probeTestFraction !== undefined) options.probeTestFraction = probeTestFraction;
    if (typeof values['labels'] === 'string') options.labels = values['labels'];
    if (typeof values['out'] === 'string') options.out = values['out'];
    if (typeof values['prompts'] === 'string') options.prompts = readPrompts(values['prompts']);
    const started = performance.now();
    const live = { samples: 0, skipped: 0 };
    let metrics: EvalMetrics | undefined;
    const progress = context.startProgress('samples', (state: typeof live) => ({ items: state.samples, rejects: state.skipped }));
    options.onProgress = (state) => {
      Object.assign(live, state);
      progress.update(live);
    };
    context.stats(() => (metrics ? evalStats(metrics, performance.now() - started) : { unit: 'samples', items: live.samples, rejects: live.skipped, elapsedMs: performance.now() - started }));
    try {
      metrics = await evaluateRun(positionals[0]!, data, options);
    } finally {
      progress.finish(live);
    }
    process.stdout.write(`${JSON.stringify(metrics, null, 2)}\n`);
    if (values['quiet'] !== true) {
      const out = resolve(options.out ?? positionals[0]!);
      process.stderr.write(`medsyn-eval: ${formatEvalSummary(metrics)}\nmedsyn-eval: wrote ${join(out, 'metrics.json')} and ${join(out, 'report.html')}\n`);
    }
    return 0;
  },
};

/** The `--stats` figures of an evaluation: those of its summary line. */
export function evalStats(metrics: EvalMetrics, elapsedMs: number): CommandStats {
  const skipped = Object.values(metrics.skipped).reduce((sum, count) => sum + count, 0);
  return {
    unit: 'samples',
    items: metrics.samples,
    rejects: skipped,
    rejectsByReason: metrics.skipped,
    elapsedMs,
    details: {
      run: metrics.run,
      checkpoint: metrics.checkpoint,
      step: metrics.step,
      split: metrics.split,
      samples: metrics.samples,
      labelled: metrics.labelled,
      zeroShotMacroAuroc: metrics.zeroShot.macroAuroc,
      zeroShotCounted: metrics.zeroShot.counted.length,
      probeMacroAuroc: metrics.probe ? metrics.probe.macroAuroc : null,
      retrieval: metrics.retrieval,
    },
  };
}
