/**
 * `medsyn demo`: the pipeline end to end on the embedded fixtures, no weights, no GPU.
 *
 * @module
 */
import { createReadStream, createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OBSERVATIONS, OBSERVATION_NAMES, type CleanReport } from '../records.js';
import { formatCleanSummary, runClean } from '../transforms/run_clean.js';
import { ErrorCodes, MedsynError } from '../errors.js';
import type { Command } from './_cli.js';

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
  },
  details: `
Cleans the fixture reports in fixtures/reports (MIMIC-CXR layout, written for
medsyn, no patient data) and writes DIR/clean.ndjson and DIR/rejects.ndjson,
then prints a summary: rejects by reason, label counts, example prompts.
`,
  async run(values) {
    const out = resolve((values['out'] as string | undefined) ?? 'demo-out');
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

    const lines = [
      `medsyn demo: cleaned the fixture reports in ${input}`,
      `  ${formatCleanSummary(summary)}`,
      `  wrote ${cleanPath}`,
      `  wrote ${rejectsPath}`,
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
    ];
    process.stdout.write(lines.join('\n'));
    return 0;
  },
};
