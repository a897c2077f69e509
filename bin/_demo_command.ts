/**
 * `medsyn demo`: the pipeline end to end on the embedded fixtures, no weights, no GPU.
 *
 * @module
 */
import { createReadStream, createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { OBSERVATIONS, OBSERVATION_NAMES, type CleanReport } from '../records.js';
import { writeShards } from '../streams/shard_writer.js';
import { decodeSamples } from '../streams/tar_decoder.js';
import { formatCleanSummary, runClean } from '../transforms/run_clean.js';
import { formatGenerateSummary, runGenerate } from '../transforms/run_generate.js';
import { formatQualitySummary } from '../transforms/quality_tally.js';
import { ErrorCodes, MedsynError } from '../errors.js';
import { integerFlag, type Command } from './_cli.js';

/** The fixtures folder of the installed package, from dist/bin or from bin/. */
function fixturesDir(): string {
  for (const candidate of ['../../fixtures', '../fixtures']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(join(dir, 'reports'))) return dir;
  }
  throw new MedsynError(ErrorCodes.NOT_FOUND, 'Cannot find the medsyn fixtures folder: is the package installed whole?');
}

/** The `demo` command. */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run the pipeline on the bundled fixture reports and print what it made (no weights, no GPU).',
  usage: ['medsyn demo [--out DIR]'],
  readsStdin: false,
  flags: {
    out: { type: 'string', arg: 'DIR', help: 'where the outputs go (default demo-out)' },
    size: { type: 'string', arg: 'PX', help: 'image size (default 256)' },
  },
  details: `
Runs clean -> generate -> shard on the fixture reports in fixtures/reports
(MIMIC-CXR layout, written for medsyn, no patient data) with the phantom
backend, as

  medsyn-clean fixtures/reports --rejects DIR/rejects.ndjson > DIR/clean.ndjson
  medsyn-gen DIR/clean.ndjson --size 256 | medsyn-shard DIR/shards --overwrite

would, then prints what it made: rejects by reason, label counts, example
prompts, the shards. The phantom is a test double for real generators: a
procedural chest radiograph drawn from each report's labels.
`,
  async run(values) {
    const out = resolve((values['out'] as string | undefined) ?? 'demo-out');
    const size = integerFlag(values, 'size', 16) ?? 256;
    mkdirSync(out, { recursive: true });
    const cleanPath = join(out, 'clean.ndjson');
    const rejectsPath = join(out, 'rejects.ndjson');
    const input = join(fixturesDir(), 'reports');

    const summary = await runClean(input, createWriteStream(cleanPath), { rejects: rejectsPath });
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

    const lines = [
      `medsyn demo: clean -> generate (phantom) -> shard on the fixture reports in ${input}`,
      `  clean:    ${formatCleanSummary(summary)}`,
      `  generate: ${formatGenerateSummary(generated)}`,
      ...(generated.quality ? [`  ${formatQualitySummary(generated.quality).split('\n')[0]!.replace(/^quality: /, 'quality:  ')}`] : []),
      `  shard:    ${sharded.shardsWritten} shard(s), ${sharded.samplesWritten} samples, ${(sharded.bytesWritten / 1e6).toFixed(1)} MB in ${shardsDir}`,
      `  wrote ${cleanPath}`,
      `  wrote ${rejectsPath}`,
      `  wrote ${join(shardsDir, 'manifest.json')}`,
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
    ];
    process.stdout.write(lines.join('\n'));
    return 0;
  },
};
