/**
 * `medsyn demo`: the pipeline end to end on the embedded fixtures, no weights, no GPU:
 * clean -> generate (phantom) -> shard -> train -> evaluate.
 *
 * @module
 */
import { createReadStream, createWriteStream, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { OBSERVATIONS, OBSERVATION_NAMES, type CleanReport } from '../records.js';
import { writeShards, type ShardSummary } from '../streams/shard_writer.js';
import { formatReportSummary, writeDatasetReport } from '../transforms/dataset_report.js';
import { decodeSamples } from '../streams/tar_decoder.js';
import { formatCleanSummary, runClean, type CleanSummary } from '../transforms/run_clean.js';
import { formatGenerateSummary, runGenerate, type GenerateSummary } from '../transforms/run_generate.js';
import { formatQualitySummary } from '../transforms/quality_tally.js';
import { trainContrastive, type TrainSummary } from '../train/contrastive_trainer.js';
import { evaluateRun, type EvalMetrics } from '../train/evaluate_run.js';
import { ErrorCodes, MedsynError } from '../errors.js';
import { integerFlag, type Command } from './_cli.js';
import type { CommandStats } from './_progress.js';

/**
 * The demo's training settings: 30 epochs over the ~440 training pairs, a few seconds on two cores.
 * 30% is held out so that each observation has a dozen or more held-out negatives to score.
 */
const DEMO_TRAINING = { epochs: 30, batchSize: 16, lr: 1e-2, valFraction: 0.3, evalEvery: 100, seed: 0 } as const;

/** The fixtures folder of the installed package, from dist/bin or from bin/. */
function fixturesDir(): string {
  for (const candidate of ['../../fixtures', '../fixtures']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(join(dir, 'reports')) && existsSync(join(dir, 'demo-reports.ndjson')) && existsSync(join(dir, 'vit-tiny'))) return dir;
  }
  throw new MedsynError(ErrorCodes.NOT_FOUND, 'Cannot find the medsyn fixtures folder: is the package installed whole?');
}

/** The `demo` command. */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run the whole pipeline on the bundled fixture reports, train and evaluate, and print what it made (no weights, no GPU).',
  usage: ['medsyn demo [--out DIR] [--size PX] [--skip-train]'],
  readsStdin: false,
  flags: {
    out: { type: 'string', arg: 'DIR', help: 'where the outputs go (default demo-out)' },
    size: { type: 'string', arg: 'PX', help: 'image size (default 128)' },
    'skip-train': { type: 'boolean', help: 'stop after shard: no training, no evaluation' },
  },
  details: `
Runs the whole story on the reports bundled in fixtures/ (written for
medsyn, no patient data), with the phantom backend and the random-weight
towers medsyn-train uses by default (fixtures/vit-tiny, fixtures/bert-tiny)
as frozen encoders, as

  medsyn-clean fixtures/reports --rejects DIR/rejects.ndjson > DIR/clean.ndjson
  medsyn-clean fixtures/demo-reports.ndjson --on-error fail >> DIR/clean.ndjson
  medsyn-gen DIR/clean.ndjson --size 128 | medsyn-shard DIR/shards --overwrite
  medsyn-train DIR/shards --out DIR/run --cache DIR/cache \\
    --epochs 30 --batch-size 16 --lr 0.01 --val-fraction 0.3 --eval-every 100
  medsyn-eval DIR/run --data DIR/shards --split val

would, and prints what it made: rejects by reason, label counts, example
prompts, the shards, the training steps, and the held-out figures: retrieval
R@1 both ways against chance, zero-shot AUROC per observation with both
classes, their macro mean and the linear probe's; then where report.html is.

fixtures/reports holds 26 reports in the layouts real MIMIC-CXR reports have;
fixtures/demo-reports.ndjson 600 synthetic ones with the findings the phantom
draws, enough to train on. The phantom is a test double for real generators:
a procedural chest radiograph drawn from each report's labels. The towers
are test fixtures with random weights, not medical models: what the demo
learns, it learns in the projection heads it trains on top of them. DIR/run and DIR/cache are made afresh on every run. Takes well under
a minute on two cores; --skip-train stops after shard.
`,
  async run(values, _positionals, context) {
    const started = performance.now();
    const stages: DemoStages = {};
    context.stats(() => demoStats(stages, performance.now() - started));
    const out = resolve((values['out'] as string | undefined) ?? 'demo-out');
    const size = integerFlag(values, 'size', 16) ?? 128;
    const train = values['skip-train'] !== true;
    mkdirSync(out, { recursive: true });
    const cleanPath = join(out, 'clean.ndjson');
    const rejectsPath = join(out, 'rejects.ndjson');
    const fixtures = fixturesDir();
    const input = join(fixtures, 'reports');
    const demoInput = join(fixtures, 'demo-reports.ndjson');

    // Both inputs into one clean.ndjson. The demo corpus is made to clean without a reject, so any is a bug: fail.
    const cleanOutput = createWriteStream(cleanPath);
    const summary = await runClean(input, cleanOutput, { rejects: rejectsPath, endOutput: false });
    const demoSummary = await runClean(demoInput, cleanOutput, { onError: 'fail' });
    stages.clean = [summary, demoSummary];
    const counts = new Map<string, [number, number, number]>();
    const examples: CleanReport[] = [];
    for await (const line of createInterface({ input: createReadStream(cleanPath), crlfDelay: Infinity })) {
      const report = JSON.parse(line) as CleanReport;
      if (examples.length < 3 && report.caption.length > 40) examples.push(report);
      for (const [observation, value] of Object.entries(report.labels)) {
        const row = counts.get(observation) ?? [0, 0, 0];
        row[value === 1 ? 0 : value === 0 ? 1 : 2]++;
        counts.set(observation, row);
      }
    }

    // Generate into the shard writer through a tar stream, as the two CLIs do through a pipe.
    const shardsDir = join(out, 'shards');
    const tar = new PassThrough();
    const [generated, sharded] = await Promise.all([
      runGenerate(cleanPath, tar, { size }),
      writeShards(decodeSamples(tar), shardsDir, { overwrite: true }),
    ]);
    stages.generated = generated;
    stages.sharded = sharded;
    // The dataset's own page, as `medsyn report` writes it, with the rejects of cleaning.
    const datasetPage = join(out, 'dataset.html');
    const dataset = await writeDatasetReport(shardsDir, datasetPage, { rejects: [rejectsPath] });

    // Afresh every time: the trainer refuses to overwrite a run, cached features would outlive a new --size,
    // and a report of earlier shards must not sit beside new ones after --skip-train.
    const run = join(out, 'run');
    const cache = join(out, 'cache');
    rmSync(run, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
    let trained: { summary: TrainSummary; metrics: EvalMetrics } | undefined;
    if (train) {
      const towers = { image: join(fixtures, 'vit-tiny'), text: join(fixtures, 'bert-tiny') };
      const summaryOfTraining = await trainContrastive(shardsDir, run, { encoders: towers, cache, ...DEMO_TRAINING });
      const metrics = await evaluateRun(run, shardsDir, { split: 'val' });
      trained = { summary: summaryOfTraining, metrics };
      stages.trained = trained;
    }

    const lines = [
      `medsyn demo: clean -> generate (phantom) -> shard${train ? ' -> train -> evaluate' : ''} on the fixture reports in ${fixtures}`,
      `  clean:    ${formatCleanSummary(summary)} (reports/)`,
      `            ${formatCleanSummary(demoSummary)} (demo-reports.ndjson)`,
      `  generate: ${formatGenerateSummary(generated)}`,
      ...(generated.quality ? [`  ${formatQualitySummary(generated.quality).split('\n')[0]!.replace(/^quality: /, 'quality:  ')}`] : []),
      `  shard:    ${sharded.shardsWritten} shard(s), ${sharded.samplesWritten} samples, ${(sharded.bytesWritten / 1e6).toFixed(1)} MB in ${shardsDir}`,
      `  wrote ${cleanPath}`,
      `  wrote ${rejectsPath}`,
      `  wrote ${join(shardsDir, 'manifest.json')}`,
      `  report:   ${formatReportSummary(dataset)}`,
      `            the dataset's page: ${datasetPage}`,
      '',
      '  CheXpert labels          positive  negative  uncertain',
      ...OBSERVATIONS.filter((observation) => counts.has(observation)).map((observation) => {
        const [positive, negative, uncertain] = counts.get(observation)!;
        return `  ${OBSERVATION_NAMES[observation].padEnd(26)}${String(positive).padStart(6)}${String(negative).padStart(10)}${String(uncertain).padStart(11)}`;
      }),
      '',
      '  Example prompts:',
      ...examples.map((report) => `  ${report.id}  ${report.prompt}`),
      '',
      `  Look at one: tar xOf ${join(shardsDir, 'shard-000000.tar')} ${examples[0]?.id ?? 's50000001'}.png > example.png`,
      '',
      ...(trained ? formatTraining(trained.summary, trained.metrics, run, `${join(fixtures, 'vit-tiny')} and ${join(fixtures, 'bert-tiny')}`) : ['  Training skipped (--skip-train).', '']),
    ];
    process.stdout.write(lines.join('\n'));
    process.stderr.write(`medsyn demo: ${formatDemoSummary(stages, performance.now() - started, out)}\n`);
    return 0;
  },
};

/** The train and evaluate part of the demo's output. */
function formatTraining(summary: TrainSummary, metrics: EvalMetrics, run: string, encoders: string): string[] {
  const f = (value: number | null | undefined): string => (value === null || value === undefined ? 'n/a' : value.toFixed(3));
  const r = metrics.retrieval;
  const counted = metrics.zeroShot.counted;
  const rows = OBSERVATIONS.filter((observation) => counted.includes(observation)).map((observation) => {
    const o = metrics.observations[observation]!;
    return `  ${o.name.padEnd(26)}${String(o.positives).padStart(6)}${String(o.negatives).padStart(10)}${f(o.zeroShotAuroc).padStart(11)}${f(o.probeAuroc).padStart(8)}`;
  });
  return [
    `  train:    ${summary.steps} steps (${DEMO_TRAINING.epochs} epochs, batch ${DEMO_TRAINING.batchSize}) on ${summary.trainCount} pairs, ${summary.valCount} held out; ` +
      `loss ${summary.lastLoss.toFixed(3)} in ${summary.seconds.total.toFixed(1)} s`,
    `            heads on the frozen towers ${encoders}`,
    `  evaluate: on the ${metrics.samples} held-out pairs`,
    `            retrieval R@1 image→text ${f(r.imageToText.r1)}, text→image ${f(r.textToImage.r1)} (chance ${f(1 / r.count)}); ` +
      `R@10 ${f(r.imageToText.r10)} / ${f(r.textToImage.r10)}`,
    `            zero-shot macro AUROC ${f(metrics.zeroShot.macroAuroc)} over ${counted.length} observations; linear probe ${f(metrics.probe?.macroAuroc)} (chance 0.5)`,
    '',
    '  Held out                  positive  negative  zero-shot   probe',
    ...rows,
    '',
    `  wrote ${join(run, 'metrics.json')}`,
    `  Open the report: ${join(run, 'report.html')}`,
    '',
  ];
}

/** What the demo's stages gave, as they finish. */
interface DemoStages {
  clean?: [CleanSummary, CleanSummary];
  generated?: GenerateSummary;
  sharded?: ShardSummary;
  trained?: { summary: TrainSummary; metrics: EvalMetrics };
}

/** The demo's one line on stderr. */
function formatDemoSummary(stages: DemoStages, elapsedMs: number, out: string): string {
  const stats = demoStats(stages, elapsedMs);
  const d = stats.details as { cleaned: number; read: number; shards: number; steps?: number; zeroShotMacroAuroc?: number | null };
  const auroc = d.zeroShotMacroAuroc === undefined ? '' : `, held-out zero-shot macro AUROC ${d.zeroShotMacroAuroc === null ? 'n/a' : d.zeroShotMacroAuroc.toFixed(3)}`;
  return (
    `${d.cleaned} reports cleaned of ${d.read} read, ${stats.items} samples in ${d.shards} shard${d.shards === 1 ? '' : 's'}, ${stats.rejects} rejected` +
    `${d.steps === undefined ? '' : `, trained ${d.steps} steps`}${auroc} in ${(elapsedMs / 1000).toFixed(1)} s; outputs in ${out}`
  );
}

/** The `--stats` figures of the demo: each stage's counts, as far as it got. */
function demoStats(stages: DemoStages, elapsedMs: number): CommandStats {
  const [a, b] = stages.clean ?? [];
  const rejectsByReason: Record<string, number> = {};
  for (const rejected of [a?.rejected, b?.rejected, stages.generated?.rejected, stages.sharded?.rejects]) {
    for (const [reason, count] of Object.entries(rejected ?? {})) rejectsByReason[reason] = (rejectsByReason[reason] ?? 0) + (count ?? 0);
  }
  const trained = stages.trained;
  return {
    unit: 'samples',
    items: stages.sharded?.samplesWritten ?? 0,
    rejects: Object.values(rejectsByReason).reduce((sum, count) => sum + count, 0),
    rejectsByReason,
    elapsedMs,
    details: {
      read: (a?.read ?? 0) + (b?.read ?? 0),
      cleaned: (a?.cleaned ?? 0) + (b?.cleaned ?? 0),
      samples: stages.generated?.samples ?? 0,
      shards: stages.sharded?.shardsWritten ?? 0,
      ...(trained
        ? {
            steps: trained.summary.steps,
            lastLoss: trained.summary.lastLoss,
            evaluated: trained.metrics.samples,
            zeroShotMacroAuroc: trained.metrics.zeroShot.macroAuroc,
            probeMacroAuroc: trained.metrics.probe ? trained.metrics.probe.macroAuroc : null,
          }
        : {}),
    },
  };
}
