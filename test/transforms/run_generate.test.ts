import t from 'tap';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { Generator } from '../../models/generator.js';
import type { Sample } from '../../streams/sample.js';
import { decodeSamples } from '../../streams/tar_decoder.js';
import { runClean } from '../../transforms/run_clean.js';
import { formatGenerateSummary, runGenerate, type RunGenerateOptions } from '../../transforms/run_generate.js';

const reportsDir = new URL('../../fixtures/reports', import.meta.url).pathname;

async function run(input: string, options: RunGenerateOptions = {}) {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  const summary = await runGenerate(input, out, { size: 32, workers: 0, ...options });
  const samples: Sample[] = [];
  for await (const sample of decodeSamples(Readable.from([Buffer.concat(chunks)]))) samples.push(sample);
  return { summary, samples, bytes: Buffer.concat(chunks) };
}

t.test('runGenerate cleans raw reports, writes a sample tar and the rejects, and sums up', async (t) => {
  const dir = t.testdir({});
  const { summary, samples } = await run(reportsDir, { rejects: join(dir, 'rejects.ndjson'), batchSize: 5 });
  t.ok(summary.generated >= 23, 'images generated, regenerations included');
  t.match(summary.quality, { checked: 23, passed: 23 });
  t.match(summary, { read: 26, samples: 23, rejectedTotal: 3, rejected: { no_section: 2, too_short: 1 }, backend: 'phantom', model: 'medsyn-phantom-1' });
  t.equal(samples.length, 23);
  t.same(Object.keys(samples[0]!.parts).sort(), ['json', 'png', 'txt']);
  t.equal(readFileSync(join(dir, 'rejects.ndjson'), 'utf8').trim().split('\n').length, 3);
  t.match(formatGenerateSummary(summary), /^23 samples, 3 rejected \(no_section 2, too_short 1\) of 26 read in \d+\.\d\d s \(\d+\.\d images\/s; phantom medsyn-phantom-1\)$/);
});

t.test('runGenerate gives the same tar from medsyn-clean output as from the raw reports', async (t) => {
  const dir = t.testdir({});
  const cleaned = join(dir, 'clean.ndjson');
  await runClean(reportsDir, createWriteStream(cleaned), { workers: 0 });
  const fromRaw = await run(reportsDir);
  const fromClean = await run(cleaned);
  const comparable = (sample: Sample) => ({
    key: sample.key,
    png: Buffer.from(sample.parts.png!).toString('base64'),
    txt: Buffer.from(sample.parts.txt!).toString(),
    json: { ...JSON.parse(Buffer.from(sample.parts.json!).toString()), generationMs: 0 },
  });
  t.equal(fromClean.summary.read, 23);
  t.equal(fromClean.samples.length, 23);
  t.same(fromClean.samples.map(comparable), fromRaw.samples.map(comparable), 'the same samples but for timings');
  const stdin = await run('-', { stdin: Readable.from([readFileSync(cleaned)]) });
  t.equal(stdin.samples.length, 23);
});

t.test('runGenerate stops after limit records, and uses a generator it is given without closing it', async (t) => {
  const { summary } = await run(reportsDir, { limit: 4 });
  t.equal(summary.read, 4);
  t.equal(summary.samples + summary.rejectedTotal, 4);
  let closed = false;
  const generator: Generator = {
    backend: 'mine',
    model: 'mine-1',
    generate: async (requests) => requests.map(() => ({ pixels: new Uint8Array(4), width: 2, height: 2, channels: 1 as const })),
    close: async () => {
      closed = true;
    },
  };
  const mine = await run(reportsDir, { generator, limit: 3 });
  t.match(mine.summary, { backend: 'mine', model: 'mine-1' });
  t.notOk(closed);
  await t.rejects(run(reportsDir, { limit: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'limit' });
  await t.rejects(run(reportsDir, { backend: 'images' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'images' });
  await t.rejects(run(reportsDir, { backend: 'dalle' as 'phantom' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'backend' });
  await t.rejects(run(reportsDir, { backend: 'onnx' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'model' });
  await t.rejects(run(reportsDir, { backend: 'http', model: 'roentgen' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'endpoint' });
});
