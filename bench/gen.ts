/**
 * Benchmark of the generation pipeline, two figures:
 *
 * 1. The phantom at 512×512, end to end as users run it —
 *    `medsyn-gen reports.ndjson | medsyn-shard out/`, two processes and a pipe — against
 *    the phantom generator alone (render calls in a loop, nothing else) in the same run,
 *    with the default quality checks (and regeneration) on.
 *    Target: at least 50 images/s end to end on this machine's cores.
 * 2. Pipeline efficiency: a generator of fixed cost defined here (it waits `--cost-ms`
 *    per image, as a GPU would, leaving the CPU free, and hands back real 512×512
 *    phantom pixels) end to end into shards, divided by the same generator's rate alone.
 *    Target: at least 0.9 — reading, cleaning, PNG encoding and tar/shard writing hide
 *    behind generation.
 *
 *     npm run bench:gen [-- --reports N --rounds R --cost-ms MS --batch-size B]
 *
 * @module
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { syntheticReports } from './_mimic_corpus.js';
import { measureCommand, median } from './_measure.js';
import { reportFigures, type Figure } from './_figures.js';
import type { GeneratedImage, GenerationRequest, Generator } from '../models/generator.js';
import { phantomFindings } from '../models/phantom_findings.js';
import { createPhantomGenerator } from '../models/phantom_generator.js';
import { renderPhantom } from '../models/render_phantom.js';
import { deriveSeed } from '../models/seeded_random.js';
import { isReject, type CleanReport } from '../records.js';
import { readReports } from '../streams/read_reports.js';
import { writeShards } from '../streams/shard_writer.js';
import { decodeSamples } from '../streams/tar_decoder.js';
import { cleanReports } from '../transforms/clean_reports.js';
import { runGenerate } from '../transforms/run_generate.js';

const { values } = parseArgs({
  options: {
    reports: { type: 'string', default: '480' },
    rounds: { type: 'string', default: '3' },
    'cost-ms': { type: 'string', default: '12' },
    'batch-size': { type: 'string', default: '8' },
  },
});
const REPORTS = Number(values.reports);
const ROUNDS = Number(values.rounds);
const COST_MS = Number(values['cost-ms']);
const BATCH = Number(values['batch-size']);
const SIZE = 512;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outRoot = join(root, 'bench', 'out', 'gen');
const bin = join(root, 'dist', 'bin');


/** The corpus as NDJSON: raw reports, cleaned by the pipeline as part of what is timed. */
async function corpus(): Promise<string> {
  await mkdir(outRoot, { recursive: true });
  const file = join(outRoot, `reports-${REPORTS}.ndjson`);
  if (!existsSync(file)) {
    const lines = [...syntheticReports(REPORTS, 11)].map((report) => JSON.stringify({ id: report.studyId, subjectId: report.subjectId, text: report.text }));
    writeFileSync(file, `${lines.join('\n')}\n`);
  }
  return file;
}

/** The cleaned reports of the corpus, for the generator-alone loops. */
async function cleaned(file: string): Promise<CleanReport[]> {
  const reports: CleanReport[] = [];
  for await (const item of cleanReports(readReports(file))) if (!isReject(item)) reports.push(item);
  return reports;
}

function requests(reports: CleanReport[]): GenerationRequest[] {
  return reports.map((report) => ({ key: report.id, report, variant: 0, attempt: 0, seed: deriveSeed(0, report.id, 0, 0) }));
}

/** Images per second of `generator.generate` called batch after batch on `all`, nothing else. */
async function aloneRate(generator: Generator, all: GenerationRequest[]): Promise<number> {
  const started = performance.now();
  for (let at = 0; at < all.length; at += BATCH) await generator.generate(all.slice(at, at + BATCH));
  return all.length / ((performance.now() - started) / 1000);
}

/**
 * A generator that costs `COST_MS` of waiting per image (a GPU's time, not this CPU's) and
 * returns real phantom pixels, rendered before the clock starts: one image per report
 * (so the duplicate check sees distinct images), the same one for any later attempt.
 */
function fixedCostGenerator(all: readonly GenerationRequest[]): Generator {
  const pixels = new Map(all.map((request) => [request.key, renderPhantom(phantomFindings(request.report), request.seed, SIZE)] as const));
  return {
    backend: 'fixed-cost',
    model: `fixed-cost-${COST_MS}ms`,
    async generate(batch) {
      await new Promise((resolve) => setTimeout(resolve, COST_MS * batch.length));
      return batch.map((request): GeneratedImage => ({ pixels: pixels.get(request.key)!, width: SIZE, height: SIZE, channels: 1 }));
    },
    async close() {},
  };
}

/** Images per second of runGenerate into writeShards in this process, with `generator`. */
async function endToEndInProcess(file: string, generator: Generator, out: string, checks: boolean): Promise<{ rate: number; busy: number }> {
  await rm(out, { recursive: true, force: true });
  const tar = new PassThrough();
  const started = performance.now();
  const [summary] = await Promise.all([
    runGenerate(file, tar, { generator, batchSize: BATCH, ...(checks ? {} : { checks: false }) }),
    writeShards(decodeSamples(tar), out, { overwrite: true }),
  ]);
  const seconds = (performance.now() - started) / 1000;
  return { rate: summary.samples / seconds, busy: summary.generatorSeconds / seconds };
}

async function main(): Promise<void> {
  const file = await corpus();
  const reports = await cleaned(file);
  const all = requests(reports);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`bench/gen: ${REPORTS} synthetic reports (${reports.length} clean), ${SIZE}×${SIZE}, batch ${BATCH}, ${ROUNDS} rounds (median)`);
  console.log(`machine: ${availableParallelism()} × ${cpu}, Node ${process.version}, load ${loadavg()[0]!.toFixed(2)}`);

  // 1. The phantom: alone, and end to end through the two CLIs.
  const phantom = await createPhantomGenerator({ size: SIZE });
  await phantom.generate(all.slice(0, BATCH)); // start the threads
  const phantomAlone: number[] = [];
  for (let round = 0; round < ROUNDS; round++) phantomAlone.push(await aloneRate(phantom, all));
  await phantom.close();
  const phantomEndToEnd: number[] = [];
  const shardOut = join(outRoot, 'shards');
  for (let round = 0; round < ROUNDS; round++) {
    const run = await measureCommand('/bin/bash', [
      '-c',
      `set -o pipefail; "$0" "$1" "$2" --batch-size ${BATCH} --size ${SIZE} -q | "$0" "$3" "$4" --overwrite -q`,
      process.execPath,
      join(bin, 'medsyn-gen.js'),
      file,
      join(bin, 'medsyn-shard.js'),
      shardOut,
    ]);
    if (run.code !== 0) throw new Error(`medsyn-gen | medsyn-shard failed: ${run.stderr}`);
    const written = JSON.parse(readFileSync(join(shardOut, 'manifest.json'), 'utf8')) as { totals: { samples: number } };
    phantomEndToEnd.push(written.totals.samples / run.seconds);
  }
  const alone = median(phantomAlone);
  const endToEnd = median(phantomEndToEnd);
  console.log('');
  console.log('phantom 512×512');
  console.log(`  generator alone (render calls only)          ${alone.toFixed(1)} images/s`);
  console.log(`  medsyn-gen | medsyn-shard, end to end        ${endToEnd.toFixed(1)} images/s   (target ≥ 50: ${endToEnd >= 50 ? 'met' : 'NOT met'})`);
  console.log(`  end to end / alone                           ${(endToEnd / alone).toFixed(2)}`);

  // 2. Pipeline efficiency with a generator of fixed cost, with and without the quality checks.
  const fixed = fixedCostGenerator(all);
  const fixedAlone: number[] = [];
  const runs = { off: [] as Array<{ rate: number; busy: number }>, on: [] as Array<{ rate: number; busy: number }> };
  for (let round = 0; round < ROUNDS; round++) {
    fixedAlone.push(await aloneRate(fixed, all));
    runs.off.push(await endToEndInProcess(file, fixed, join(outRoot, 'fixed'), false));
    runs.on.push(await endToEndInProcess(file, fixed, join(outRoot, 'fixed'), true));
  }
  const alone2 = median(fixedAlone);
  const figures: Figure[] = [
    {
      figure: `phantom ${SIZE}² medsyn-gen | medsyn-shard, ${REPORTS} reports`,
      value: endToEnd,
      unit: 'images/s',
      reference: { label: 'the phantom generator alone', value: alone },
      note: 'target ≥ 50 images/s',
    },
  ];
  console.log('');
  console.log(`fixed-cost generator (${COST_MS} ms per image of waiting, real 512×512 pixels)`);
  console.log(`  generator alone                              ${alone2.toFixed(1)} images/s`);
  for (const [label, measured] of [['quality checks off', runs.off], ['quality checks on (default)', runs.on]] as const) {
    const rate = median(measured.map((run) => run.rate));
    const efficiency = rate / alone2;
    console.log(`  ${label}:`);
    console.log(`    read + clean + generate + PNG + shards     ${rate.toFixed(1)} images/s`);
    console.log(`    pipeline efficiency (end to end / alone)   ${efficiency.toFixed(3)}   (target ≥ 0.9: ${efficiency >= 0.9 ? 'met' : 'NOT met'})`);
    console.log(`    share of the run the generator was busy    ${median(measured.map((run) => run.busy)).toFixed(3)}`);
    figures.push({
      figure: `pipeline, ${COST_MS} ms/image generator, ${label}`,
      value: rate,
      unit: 'images/s',
      reference: { label: 'the same generator alone', value: alone2 },
      note: 'target ≥ 0.9',
    });
  }
  reportFigures('gen', figures);
}

await main();
