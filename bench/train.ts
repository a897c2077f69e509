/**
 * Benchmark of the contrastive trainer on phantom shards with the bundled tiny
 * towers: training samples/s without the feature cache, while filling it, and
 * with a warm cache, and where the time goes (encoders, heads, the rest: shard
 * reading, PNG decoding, batching). The reference is the same trainer without
 * the cache, measured in the same run.
 *
 *     npm run bench:train [-- --samples 1000 --size 128 --epochs 3 --batch-size 32 --threads 2]
 *
 * @module
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { trainContrastive, type TrainSummary } from '../train/contrastive_trainer.js';
import { loadFrozenEncoders } from '../train/frozen_encoders.js';
import { makePhantomShards } from './_phantom_pairs.js';
import { reportFigures } from './_figures.js';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '1000' },
    size: { type: 'string', default: '128' },
    epochs: { type: 'string', default: '3' },
    'batch-size': { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
  },
});
const samples = Number(values.samples);
const size = Number(values.size);
const epochs = Number(values.epochs);
const batchSize = Number(values['batch-size']);
const threads = Number(values.threads);

const here = dirname(fileURLToPath(import.meta.url));
const root = here.includes(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');
const out = join(root, 'bench', 'out', `train-${samples}-${size}`);
if (!existsSync(join(out, 'shards', 'manifest.json'))) {
  mkdirSync(out, { recursive: true });
  process.stderr.write(`bench/train: generating ${samples} phantom samples at ${size} px into ${out}\n`);
  await makePhantomShards(out, samples, { size });
}
const encoders = await loadFrozenEncoders({ image: join(root, 'fixtures', 'vit-tiny'), text: join(root, 'fixtures', 'bert-tiny') }, { intraOpThreads: threads });

async function timed(name: string, cache: string | undefined): Promise<TrainSummary & { rate: number }> {
  const run = join(out, `run-${name}`);
  rmSync(run, { recursive: true, force: true });
  const summary = await trainContrastive(join(out, 'shards'), run, { encoders, epochs, batchSize, evalEvery: 1_000_000, intraOpThreads: threads, ...(cache ? { cache } : {}) });
  return { ...summary, rate: (summary.stepsRun * batchSize) / summary.seconds.total };
}

const cacheDir = join(out, 'cache');
rmSync(cacheDir, { recursive: true, force: true });
const rows = [
  ['no cache', await timed('nocache', undefined)],
  ['filling the cache', await timed('fill', cacheDir)],
  ['warm cache', await timed('warm', cacheDir)],
] as const;
process.stdout.write(`bench/train: ${samples} phantom samples at ${size} px, ${epochs} epochs, batch ${batchSize}, ${threads} threads, vit-tiny + bert-tiny\n`);
process.stdout.write(`${'run'.padEnd(20)}${'samples/s'.padStart(10)}${'total s'.padStart(9)}${'encoders s'.padStart(12)}${'heads s'.padStart(9)}${'rest s'.padStart(8)}${'hits'.padStart(8)}${'misses'.padStart(8)}\n`);
for (const [name, r] of rows) {
  const rest = r.seconds.total - r.seconds.encoders - r.seconds.heads;
  process.stdout.write(
    `${name.padEnd(20)}${r.rate.toFixed(0).padStart(10)}${r.seconds.total.toFixed(2).padStart(9)}${r.seconds.encoders.toFixed(2).padStart(12)}${r.seconds.heads.toFixed(2).padStart(9)}${rest.toFixed(2).padStart(8)}${String(r.cache.hits).padStart(8)}${String(r.cache.misses).padStart(8)}\n`,
  );
}
process.stdout.write(`warm cache / no cache: ${(rows[2][1].rate / rows[0][1].rate).toFixed(2)}× the samples/s\n`);
reportFigures('train', [
  { figure: `training, warm feature cache, ${samples} samples ${size} px`, value: rows[2][1].rate, unit: 'samples/s', reference: { label: 'no cache', value: rows[0][1].rate } },
  { figure: 'training while filling the cache', value: rows[1][1].rate, unit: 'samples/s', reference: { label: 'no cache', value: rows[0][1].rate } },
]);
await encoders.release();
