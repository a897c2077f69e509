import t from 'tap';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { partitionOf } from '../../streams/partition.js';
import type { Sample } from '../../streams/sample.js';
import { mergeShards } from '../../streams/shard_merge.js';
import type { ShardManifest } from '../../streams/shard_manifest.js';
import { listShards, readShards } from '../../streams/shard_reader.js';
import { writeShards, type ShardWriterOptions } from '../../streams/shard_writer.js';
import { collect } from './_chunks.js';
import { digestSamples, makeSamples } from './_tar_fixtures.js';

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const partitionSamples = (samples: Sample[], index: number, count: number): Sample[] => samples.filter((sample) => partitionOf(sample.key, count) === index);

/** Writes `count` partitions of `samples` into `dir`, as `count` processes would, at the same time. */
async function writePartitions(samples: Sample[], dir: string, count: number, options: ShardWriterOptions = {}): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, index) => writeShards(partitionSamples(samples, index, count), dir, { maxCount: 4, ...options, partition: { index, count } })));
}

const sortedDigests = (samples: Sample[]): string[] => digestSamples(samples).sort();

t.test('mergeShards writes manifest.json, sizes.json and shards.txt, and readShards reads the merged folder', async (t) => {
  const dir = t.testdir({});
  const samples = makeSamples(50);
  await writePartitions(samples, dir, 4, { maxCount: 4 });
  const summary = await mergeShards(dir);
  const partitions = await Promise.all([0, 1, 2, 3].map((index) => readJson(join(dir, `manifest-p000${index}.json`)) as ShardManifest));
  const shards = partitions.flatMap((manifest) => manifest.shards);

  const manifest = readJson(join(dir, 'manifest.json')) as ShardManifest;
  t.same(summary.manifest, manifest);
  t.match(manifest, {
    format: 'medsyn-shards',
    complete: true,
    partitions: 4,
    options: { prefix: 'shard', maxCount: 4, maxSize: 1_000_000_000, mtime: 0, onError: 'skip' },
    totals: { shards: shards.length, samples: 50, bytes: shards.reduce((sum, shard) => sum + shard.bytes, 0) },
    rejects: {},
    lastRun: { samplesWritten: 50 },
  });
  t.notOk('partition' in manifest, 'no partition of its own');
  t.same(manifest.shards, shards, 'every shard, partition by partition');
  t.same(readJson(join(dir, 'sizes.json')), Object.fromEntries(shards.map((shard) => [shard.name, shard.count])));
  t.equal(readFileSync(join(dir, 'shards.txt'), 'utf8'), shards.map((shard) => `${shard.name}\n`).join(''));
  t.same(
    summary.patterns,
    partitions.map((part, index) => (part.shards.length === 1 ? part.shards[0].name : `shard-p000${index}-{000000..${String(part.shards.length - 1).padStart(6, '0')}}.tar`)),
  );

  t.same(sortedDigests(await collect(readShards(dir))), sortedDigests(samples), 'the folder: every sample once');
  t.same(await listShards(join(dir, 'shards.txt')), shards.map((shard) => join(dir, shard.name)), 'shards.txt lists them, relative to its folder');
  t.same(await listShards(summary.patterns.map((pattern) => join(dir, pattern)).join('::')), await listShards(dir), "the printed --train-data value, open_clip's :: included");

  const again = await mergeShards(dir);
  t.same(again.manifest, manifest, 'merging again gives the same manifest');
});

t.test('mergeShards sums the rejects of the partitions, and a partition resumes in a merged folder', async (t) => {
  const dir = t.testdir({});
  const samples = makeSamples(20);
  const withDuplicates = (index: number): Sample[] => {
    const mine = partitionSamples(samples, index, 2);
    return [...mine, mine[0]];
  };
  await Promise.all([0, 1].map((index) => writeShards(withDuplicates(index), dir, { maxCount: 4, partition: { index, count: 2 } })));
  const { manifest } = await mergeShards(dir);
  t.same(manifest.rejects, { duplicate_key: 2 });
  const resumed = await writeShards(withDuplicates(1), dir, { maxCount: 4, partition: { index: 1, count: 2 } });
  t.match(resumed, { shardsWritten: 0, samplesWritten: 0, samplesSkipped: partitionSamples(samples, 1, 2).length }, 'a merged manifest is no conflict');
  t.same((await mergeShards(dir)).manifest.shards, manifest.shards);
});

t.test('mergeShards refuses missing, unfinished and mismatched partitions, naming what differs', async (t) => {
  const root = t.testdir({ empty: {} });
  const samples = makeSamples(30);
  const conflict = (message: RegExp) => ({ code: 'MEDSYN_ERR_MERGE_CONFLICT', message });

  await t.rejects(mergeShards(join(root, 'empty')), { code: 'MEDSYN_ERR_NOT_FOUND', message: /no partition manifest/u });
  await t.rejects(mergeShards(join(root, 'nowhere')), { code: 'MEDSYN_ERR_NOT_FOUND' });

  const missing = join(root, 'missing');
  await writePartitions(samples, missing, 4);
  for (const index of [1, 3]) rmSync(join(missing, `manifest-p000${index}.json`));
  await t.rejects(mergeShards(missing), conflict(/partitions 1 and 3 of 4 are missing/u));

  const unfinished = join(root, 'unfinished');
  await writePartitions(samples, unfinished, 2);
  await t.rejects(
    writeShards(
      (function* () {
        yield* partitionSamples(samples, 1, 2).slice(0, 5);
        throw new Error('killed');
      })(),
      unfinished,
      { maxCount: 4, partition: { index: 1, count: 2 } },
    ),
    /killed/u,
  );
  await t.rejects(mergeShards(unfinished), conflict(/partition 1 has not finished \("complete": false\)/u));

  const options = join(root, 'options');
  await writePartitions(samples, options, 3);
  // --overwrite skips the writer's own check, as when one partition is re-run with other flags.
  await writeShards(partitionSamples(samples, 2, 3), options, { maxCount: 7, mtime: 5, overwrite: true, partition: { index: 2, count: 3 } });
  await t.rejects(mergeShards(options), conflict(/manifest-p0002\.json was made with --max-count 7, not 4, --mtime 5, not 0 \(as manifest-p0000\.json\)/u));

  const count = join(root, 'count');
  await writePartitions(samples, count, 2);
  await writeShards(partitionSamples(samples, 1, 3), count, { maxCount: 4, overwrite: true, partition: { index: 1, count: 3 } });
  await t.rejects(mergeShards(count), conflict(/manifest-p0001\.json was made with the partition count N 3, not 2/u));

  const version = join(root, 'version');
  await writePartitions(samples, version, 2);
  const path = join(version, 'manifest-p0001.json');
  writeFileSync(path, JSON.stringify({ ...(readJson(path) as ShardManifest), medsyn: '0.0.1' }));
  await t.rejects(mergeShards(version), conflict(/the medsyn version 0\.0\.1, not /u));

  const lost = join(root, 'lost');
  await writePartitions(samples, lost, 2);
  rmSync(join(lost, 'shard-p0001-000001.tar'));
  await t.rejects(mergeShards(lost), conflict(/shard-p0001-000001\.tar, listed in manifest-p0001\.json, is missing/u));

  for (const dir of [missing, unfinished, options, count, version, lost]) {
    t.notOk(readdirSync(dir).some((name) => ['manifest.json', 'sizes.json', 'shards.txt'].includes(name)), `${dir}: nothing written`);
  }
});
