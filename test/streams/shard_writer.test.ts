import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as fsPromises from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { decodeSamples } from '../../streams/tar_decoder.js';
import { ShardWriter, writeShards } from '../../streams/shard_writer.js';
import type { Sample, SampleReject } from '../../streams/sample.js';
import type { ShardManifest } from '../../streams/shard_manifest.js';
import { partitionOf } from '../../streams/partition.js';
import { collect } from './_chunks.js';
import { END, digestSamples, encodeToBuffer, makeSamples, pieces, pythonWebdatasetView, rawEntry } from './_tar_fixtures.js';

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const shardFiles = (dir: string): string[] => readdirSync(dir).filter((name) => name.endsWith('.tar')).sort();
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

async function readBack(dir: string): Promise<Sample[]> {
  const out: Sample[] = [];
  for (const name of shardFiles(dir)) out.push(...(await collect(decodeSamples(pieces(readFileSync(join(dir, name)), 1 << 16)))));
  return out;
}

t.test('writeShards closes a shard at maxCount, numbers from 0 and writes stats, sizes.json and manifest.json', async (t) => {
  const dir = t.testdir({});
  const samples = makeSamples(25);
  const summary = await writeShards(samples, dir, { maxCount: 10 });
  t.same(shardFiles(dir), ['shard-000000.tar', 'shard-000001.tar', 'shard-000002.tar']);
  t.same(readdirSync(dir).sort(), [
    'manifest.json',
    'shard-000000.tar',
    'shard-000000_stats.json',
    'shard-000001.tar',
    'shard-000001_stats.json',
    'shard-000002.tar',
    'shard-000002_stats.json',
    'sizes.json',
  ]);
  t.same(readJson(join(dir, 'sizes.json')), { 'shard-000000.tar': 10, 'shard-000001.tar': 10, 'shard-000002.tar': 5 });
  const stats = readJson(join(dir, 'shard-000001_stats.json')) as Record<string, unknown>;
  t.same(stats, {
    shard: 'shard-000001.tar',
    count: 10,
    successes: 10,
    failed: 0,
    bytes: statSync(join(dir, 'shard-000001.tar')).size,
    first_key: 's0010',
    last_key: 's0019',
    sha256: sha256(join(dir, 'shard-000001.tar')),
  });
  const manifest = readJson(join(dir, 'manifest.json')) as ShardManifest;
  t.match(manifest, {
    format: 'medsyn-shards',
    complete: true,
    medsyn: /^\d+\.\d+\.\d+/u,
    options: { prefix: 'shard', maxCount: 10, maxSize: 1_000_000_000, mtime: 0, onError: 'skip' },
    totals: { shards: 3, samples: 25 },
    rejects: {},
    lastRun: { shardsWritten: 3, shardsKept: 0, samplesWritten: 25, samplesSkipped: 0, keysSanitized: 0 },
  });
  t.same(
    manifest.shards.map((shard) => [shard.name, shard.count, shard.bytes, shard.sha256, shard.firstKey, shard.lastKey]),
    shardFiles(dir).map((name, index) => [
      name,
      [10, 10, 5][index],
      statSync(join(dir, name)).size,
      sha256(join(dir, name)),
      `s${String(index * 10).padStart(4, '0')}`,
      `s${String(Math.min(index * 10 + 9, 24)).padStart(4, '0')}`,
    ]),
  );
  t.equal(manifest.totals.bytes, summary.bytesWritten);
  t.match(summary, { shardsWritten: 3, shardsKept: 0, samplesWritten: 25, samplesSkipped: 0 });
  t.same(digestSamples(await readBack(dir)), digestSamples(samples), 'every sample once, in order');
});

t.test('writeShards closes a shard before maxSize; a sample never spans two shards', async (t) => {
  const dir = t.testdir({});
  // Each sample: json (2 blocks) + png (1 + 4 blocks) + txt (2 blocks) = 9 blocks = 4608 bytes.
  const samples = makeSamples(10, { pngBytes: () => 2000 });
  await writeShards(samples, dir, { maxSize: 4608 * 3 + 1024, prefix: 'train' });
  t.same(shardFiles(dir), ['train-000000.tar', 'train-000001.tar', 'train-000002.tar', 'train-000003.tar']);
  t.same(
    shardFiles(dir).map((name) => statSync(join(dir, name)).size),
    [4608 * 3 + 1024, 4608 * 3 + 1024, 4608 * 3 + 1024, 4608 + 1024],
    'exactly at the limit, never over it',
  );
  t.same(readJson(join(dir, 'sizes.json')), { 'train-000000.tar': 3, 'train-000001.tar': 3, 'train-000002.tar': 3, 'train-000003.tar': 1 });

  const big = join(dir, 'big');
  await writeShards(makeSamples(3, { pngBytes: (index) => (index === 1 ? 50_000 : 100) }), big, { maxSize: 20_000 });
  t.same(readJson(join(big, 'sizes.json')), { 'shard-000000.tar': 1, 'shard-000001.tar': 1, 'shard-000002.tar': 1 }, 'a sample over maxSize gets a shard of its own');
});

t.test('writeShards writes byte-identical shards for identical input', async (t) => {
  const root = t.testdir({});
  const first = join(root, 'first');
  const second = join(root, 'second');
  await writeShards(makeSamples(40), first, { maxCount: 16 });
  await writeShards(makeSamples(40), second, { maxCount: 16 });
  for (const name of shardFiles(first)) t.ok(readFileSync(join(first, name)).equals(readFileSync(join(second, name))), name);
  t.equal(readFileSync(join(first, 'manifest.json'), 'utf8'), readFileSync(join(second, 'manifest.json'), 'utf8'), 'the manifest too');
});

t.test('writeShards sanitizes keys and rejects duplicates, bad keys and bad samples, counted and reported', async (t) => {
  const dir = t.testdir({});
  const rejects: SampleReject[] = [];
  const samples: Sample[] = [
    { key: 'p10/s1.v2', parts: { txt: Buffer.from('renamed') } },
    { key: 'a', parts: { txt: Buffer.from('first a') } },
    { key: 'a', parts: { txt: Buffer.from('second a') } },
    { key: 'p10_s1_v2', parts: { txt: Buffer.from('collides after sanitizing') } },
    { key: '', parts: { txt: Buffer.from('no key') } },
    { key: 'k'.repeat(201), parts: { txt: Buffer.from('too long') } },
    { key: 'empty', parts: {} },
    { key: 'badpart', parts: { 'x/y': Buffer.from('slash in part name') } },
    { key: 'b', parts: { txt: Buffer.from('b') } },
  ];
  const summary = await writeShards(samples, dir, { onReject: (reject) => rejects.push(reject) });
  t.same(
    (await readBack(dir)).map((sample) => [sample.key, Buffer.from(sample.parts.txt).toString()]),
    [
      ['p10_s1_v2', 'renamed'],
      ['a', 'first a'],
      ['b', 'b'],
    ],
  );
  t.same(
    rejects.map((reject) => [reject.reason, reject.id]),
    [
      ['duplicate_key', 'a'],
      ['duplicate_key', 'p10_s1_v2'],
      ['bad_key', ''],
      ['bad_key', 'k'.repeat(201)],
      ['empty_sample', 'empty'],
      ['bad_entry', 'badpart'],
    ],
  );
  t.same(summary.rejects, { bad_entry: 1, bad_key: 2, duplicate_key: 2, empty_sample: 1 });
  t.same((readJson(join(dir, 'manifest.json')) as ShardManifest).rejects, summary.rejects);
  t.equal(summary.keysSanitized, 1);
});

t.test('ShardWriter rejects the second half of a split sample as duplicate_key, and counts upstream rejects', async (t) => {
  const dir = t.testdir({});
  const bytes = Buffer.concat([rawEntry('a.png', Buffer.from('A')), rawEntry('b.png', Buffer.from('B')), rawEntry('a.txt', Buffer.from('a')), rawEntry('README', Buffer.from('?')), END]);
  const writer = await ShardWriter.open(dir);
  const results: string[] = [];
  for await (const sample of decodeSamples(pieces(bytes, 100), { onReject: writer.reject })) results.push(await writer.write(sample));
  const summary = await writer.close();
  t.same(results, ['written', 'written', 'rejected']);
  t.same(summary.rejects, { bad_entry: 1, duplicate_key: 1 });
});

t.test('ShardWriter with onError fail stops at the first reject and leaves no temporary shard', async (t) => {
  const dir = t.testdir({});
  const samples = [...makeSamples(5), makeSamples(1)[0]];
  await t.rejects(writeShards(samples, dir, { onError: 'fail', maxCount: 2 }), { code: 'MEDSYN_ERR_REJECTED', message: /duplicate_key/u });
  t.same(shardFiles(dir), ['shard-000000.tar', 'shard-000001.tar'], 'complete shards stay');
  t.notOk(readdirSync(dir).some((name) => name.endsWith('.tmp')), 'no temporary file');
  t.equal((readJson(join(dir, 'manifest.json')) as ShardManifest).complete, false);
});

t.test('ShardWriter resumes: keeps complete shards, drops a leftover temporary one, skips written keys, goes on numbering', async (t) => {
  const samples = makeSamples(47);
  const root = t.testdir({});
  const reference = join(root, 'reference');
  await writeShards(samples, reference, { maxCount: 10 });

  const dir = join(root, 'resumed');
  // A run that stopped after 23 samples: shards 0 and 1 complete, shard 2 in progress.
  await t.rejects(
    writeShards(
      (function* () {
        yield* samples.slice(0, 23);
        throw new Error('killed');
      })(),
      dir,
      { maxCount: 10 },
    ),
    /killed/u,
  );
  t.same(shardFiles(dir), ['shard-000000.tar', 'shard-000001.tar']);
  // What a SIGKILL leaves on top: a half temporary shard, no stats for the last complete shard, a half stats file.
  writeFileSync(join(dir, 'shard-000002.tar.tmp'), readFileSync(join(reference, 'shard-000002.tar')).subarray(0, 5000));
  rmSync(join(dir, 'shard-000001_stats.json'));
  writeFileSync(join(dir, 'shard-000000_stats.json.tmp'), '{"cou');
  t.equal((readJson(join(dir, 'manifest.json')) as ShardManifest).complete, false);

  const summary = await writeShards(samples, dir, { maxCount: 10 });
  t.match(summary, { shardsKept: 2, shardsWritten: 3, samplesSkipped: 20, samplesWritten: 27 });
  t.same(readdirSync(dir).sort(), readdirSync(reference).sort(), 'the same files');
  for (const name of readdirSync(reference)) {
    if (name === 'manifest.json') continue;
    t.ok(readFileSync(join(dir, name)).equals(readFileSync(join(reference, name))), `${name} is byte-identical to an uninterrupted run`);
  }
  const manifest = readJson(join(dir, 'manifest.json')) as ShardManifest;
  const expected = readJson(join(reference, 'manifest.json')) as ShardManifest;
  t.same(manifest.shards, expected.shards);
  t.same(manifest.totals, expected.totals);

  const again = await writeShards(samples, dir, { maxCount: 10 });
  t.match(again, { shardsKept: 5, shardsWritten: 0, samplesSkipped: 47, samplesWritten: 0 }, 'a finished run re-run does nothing');
  const more = await writeShards([...samples, ...makeSamples(4, { prefix: 'extra' })], dir, { maxCount: 10 });
  t.match(more, { shardsKept: 5, shardsWritten: 1, samplesWritten: 4 }, 'new input goes into new shards');
  t.same(shardFiles(dir).at(-1), 'shard-000005.tar');
});

t.test('ShardWriter resumes over kept shards whose long names need PAX records', async (t) => {
  const dir = t.testdir({});
  const samples = makeSamples(6, { prefix: `long_${'k'.repeat(150)}_` });
  await writeShards(samples.slice(0, 4), dir, { maxCount: 2 });
  const summary = await writeShards(samples, dir, { maxCount: 2 });
  t.match(summary, { shardsKept: 2, samplesSkipped: 4, samplesWritten: 2 });
  t.same(digestSamples(await readBack(dir)), digestSamples(samples));
});

t.test('ShardWriter resume counts duplicates the way an uninterrupted run does', async (t) => {
  const samples = [...makeSamples(12), makeSamples(1)[0], ...makeSamples(3, { prefix: 't' })];
  const root = t.testdir({});
  const reference = join(root, 'reference');
  const whole = await writeShards(samples, reference, { maxCount: 5 });
  const dir = join(root, 'resumed');
  await writeShards(samples.slice(0, 11), dir, { maxCount: 5 });
  rmSync(join(dir, 'shard-000002.tar'));
  rmSync(join(dir, 'shard-000002_stats.json'));
  const resumed = await writeShards(samples, dir, { maxCount: 5 });
  t.same(resumed.rejects, whole.rejects);
  t.same(resumed.rejects, { duplicate_key: 1 });
  for (const name of shardFiles(reference)) t.ok(readFileSync(join(dir, name)).equals(readFileSync(join(reference, name))), name);
});

t.test('ShardWriter refuses folders it must not write into, and --overwrite starts afresh', async (t) => {
  const root = t.testdir({
    foreign: { 'notes.txt': 'mine' },
    notJson: { 'manifest.json': '{"format": "something else"}' },
    leftovers: { 'manifest.json.tmp': '{', 'shard-000000.tar.tmp': 'half' },
  });
  const foreign = join(root, 'foreign');
  await t.rejects(ShardWriter.open(foreign), { code: 'MEDSYN_ERR_OUTPUT_CONFLICT', message: /not empty and holds no medsyn manifest\.json/u });
  t.same(readdirSync(foreign), ['notes.txt'], 'nothing written');

  const other = join(root, 'other');
  await writeShards(makeSamples(3), other, { prefix: 'train' });
  await t.rejects(ShardWriter.open(other), { code: 'MEDSYN_ERR_OUTPUT_CONFLICT', message: /prefix 'train'/u });

  const gap = join(root, 'gap');
  await writeShards(makeSamples(9), gap, { maxCount: 3 });
  rmSync(join(gap, 'shard-000001.tar'));
  await t.rejects(ShardWriter.open(gap), { code: 'MEDSYN_ERR_OUTPUT_CONFLICT', message: /shard-000001\.tar is missing/u });

  const corrupt = join(root, 'corrupt');
  await writeShards(makeSamples(6), corrupt, { maxCount: 3 });
  const path = join(corrupt, 'shard-000001.tar');
  writeFileSync(path, readFileSync(path).subarray(0, 3000));
  await t.rejects(ShardWriter.open(corrupt), { code: 'MEDSYN_ERR_CORRUPT_TAR', file: path });

  const notJson = join(root, 'notJson');
  await t.rejects(ShardWriter.open(notJson), { code: 'MEDSYN_ERR_OUTPUT_CONFLICT' });

  const summary = await writeShards(makeSamples(2), corrupt, { overwrite: true });
  t.match(summary, { shardsKept: 0, shardsWritten: 1, samplesWritten: 2 });
  t.same(shardFiles(corrupt), ['shard-000000.tar']);
  await writeShards(makeSamples(2), foreign, { overwrite: true });
  t.ok(readdirSync(foreign).includes('notes.txt'), '--overwrite leaves files medsyn did not write');

  const leftovers = join(root, 'leftovers');
  await writeShards(makeSamples(1), leftovers);
  t.same(shardFiles(leftovers), ['shard-000000.tar'], 'a run killed before its first manifest is no conflict');
});

t.test('ShardWriter checks its options once, by name', async (t) => {
  const dir = t.testdir({});
  for (const [options, option] of [
    [{ maxCount: 0 }, 'maxCount'],
    [{ maxSize: -1 }, 'maxSize'],
    [{ prefix: 'a/b' }, 'prefix'],
    [{ prefix: '.hidden' }, 'prefix'],
    [{ mtime: -5 }, 'mtime'],
    [{ onError: 'ignore' }, 'onError'],
  ] as const) {
    await t.rejects(ShardWriter.open(dir, options as object), { code: 'MEDSYN_ERR_INVALID_OPTION', option });
  }
});

t.test('ShardWriter stops on a full disk with a clear message and no half shard under a final name', async (t) => {
  // The disk fills after 60 kB of shard data, in the middle of the third shard.
  let written = 0;
  const { ShardWriter: MockedWriter } = await t.mockImport<typeof import('../../streams/shard_writer.js')>('../../streams/shard_writer.js', {
    'node:fs/promises': {
      ...fsPromises,
      open: async (path: string, flags?: string) => {
        const handle = await fsPromises.open(path, flags);
        if (!String(path).endsWith('.tar.tmp')) return handle;
        return {
          fd: handle.fd,
          write: async (buffer: Uint8Array, offset: number, length: number, position: number) => {
            if (written + length > 60_000) {
              throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });
            }
            written += length;
            return handle.write(buffer, offset, length, position);
          },
          sync: () => handle.sync(),
          close: () => handle.close(),
        };
      },
    },
  });
  const dir = t.testdir({});
  const writer = await MockedWriter.open(dir, { maxCount: 5 });
  const failure = await (async () => {
    try {
      for (const sample of makeSamples(200, { pngBytes: () => 3000 })) await writer.write(sample);
      await writer.close();
    } catch (err) {
      await writer.abort();
      return err;
    }
    return undefined;
  })();
  t.match(failure, { code: 'MEDSYN_ERR_WRITE_FAILED', message: /^Cannot write .*shard-0000\d\d\.tar: no space left on the device \(ENOSPC\) \(free some space, then re-run the same command to resume\)$/u });
  t.notOk(readdirSync(dir).some((name) => name.endsWith('.tmp')), 'no temporary file left');
  for (const name of shardFiles(dir)) t.doesNotThrow(() => execFileSync('tar', ['tf', join(dir, name)]), `${name} is a whole tar`);
});

t.test('writeShards output reads with GNU tar and with Python tarfile as webdataset groups it', async (t) => {
  const dir = t.testdir({});
  const samples = makeSamples(12);
  await writeShards(samples, dir, { maxCount: 5, mtime: 1_700_000_000 });
  const paths = shardFiles(dir).map((name) => join(dir, name));
  for (const path of paths) {
    const listing = execFileSync('tar', ['tvf', path], { encoding: 'utf8' });
    t.match(listing, /^-rw-r--r-- 0\/0 +\d+ 2023-11-14 \d\d:\d\d s00\d\d\.json$/mu);
    t.notMatch(listing, /^d/mu, 'no directory entries');
  }
  const view = pythonWebdatasetView(paths);
  t.same(view.samples, digestSamples(samples));
  t.ok(view.members.every((member) => member.includes(' 644 0 0 1700000000 0 /')));
  t.ok(existsSync(join(dir, 'sizes.json')));
});

t.test('writeShards in a process with nothing else to do finishes instead of exiting mid-hash', async (t) => {
  // The hash worker must keep the process alive while it owes an answer; an unref'd one let it exit with code 13.
  const dir = t.testdir({});
  const script = `
    const { writeShards } = await import(${JSON.stringify(pathToFileURL(join(import.meta.dirname, '..', '..', 'streams', 'shard_writer.ts')).href)});
    const summary = await writeShards([{ key: 'a', parts: { txt: Buffer.alloc(20_000_000, 1) } }, { key: 'b', parts: { txt: Buffer.from('b') } }], ${JSON.stringify(join(dir, 'out'))}, { maxCount: 1 });
    console.log('written', summary.shardsWritten);
  `;
  const output = execFileSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(output.trim(), 'written 2');
});

/** The samples of partition `index` of `count`, as `medsyn-gen --partition` keeps them. */
const partitionSamples = (samples: Sample[], index: number, count: number): Sample[] => samples.filter((sample) => partitionOf(sample.key, count) === index);

t.test('ShardWriter with partition writes <prefix>-pIIII-NNNNNN.tar and manifest-pIIII.json, no sizes.json or manifest.json, beside the other partitions', async (t) => {
  const dir = t.testdir({});
  const samples = makeSamples(40);
  const summaries = await Promise.all([0, 1, 2].map((index) => writeShards(partitionSamples(samples, index, 3), dir, { maxCount: 5, partition: { index, count: 3 } })));
  const files = readdirSync(dir).sort();
  t.same(files.filter((name) => name.startsWith('manifest')), ['manifest-p0000.json', 'manifest-p0001.json', 'manifest-p0002.json']);
  t.notOk(files.includes('sizes.json'), 'no sizes.json: it belongs to the merged dataset');
  t.notOk(files.some((name) => name.endsWith('.tmp')), 'no temporary file');
  for (const [index, summary] of summaries.entries()) {
    const mine = partitionSamples(samples, index, 3);
    const names = shardFiles(dir).filter((name) => name.startsWith(`shard-p000${index}-`));
    t.same(names, Array.from({ length: Math.ceil(mine.length / 5) }, (_, shard) => `shard-p000${index}-${String(shard).padStart(6, '0')}.tar`));
    for (const name of names) t.ok(files.includes(name.replace(/\.tar$/u, '_stats.json')), `${name} has its stats`);
    const manifest = readJson(join(dir, `manifest-p000${index}.json`)) as ShardManifest;
    t.match(manifest, { complete: true, partition: { index, count: 3 }, options: { prefix: 'shard', maxCount: 5 }, totals: { samples: mine.length } });
    t.same(manifest.shards.map((shard) => shard.name), names);
    t.same(summary.manifest, manifest);
    const read: Sample[] = [];
    for (const name of names) read.push(...(await collect(decodeSamples(pieces(readFileSync(join(dir, name)), 4096)))));
    t.same(digestSamples(read), digestSamples(mine), `partition ${index}: its samples, in order`);
  }
});

t.test('ShardWriter with partition resumes its own shards and never touches the other partitions\' files', async (t) => {
  const samples = partitionSamples(makeSamples(60), 1, 2);
  const root = t.testdir({});
  const reference = join(root, 'reference');
  await writeShards(samples, reference, { maxCount: 4, partition: { index: 1, count: 2 } });

  const dir = join(root, 'shared');
  const options = { maxCount: 4, partition: { index: 1, count: 2 } };
  await t.rejects(
    writeShards(
      (function* () {
        yield* samples.slice(0, 10);
        throw new Error('killed');
      })(),
      dir,
      options,
    ),
    /killed/u,
  );
  // What a SIGKILL leaves, and what partition 0, writing at the same time, has in the folder.
  writeFileSync(join(dir, 'shard-p0001-000002.tar.tmp'), 'half');
  writeFileSync(join(dir, 'manifest-p0001.json.tmp'), '{');
  const others = { 'shard-p0000-000000.tar.tmp': 'being written', 'manifest-p0000.json.tmp': '{"being": "written"}' };
  for (const [name, text] of Object.entries(others)) writeFileSync(join(dir, name), text);

  const summary = await writeShards(samples, dir, options);
  t.match(summary, { shardsKept: 2, samplesSkipped: 8, samplesWritten: samples.length - 8 });
  for (const [name, text] of Object.entries(others)) t.equal(readFileSync(join(dir, name), 'utf8'), text, `${name} of partition 0 left alone`);
  t.same(readdirSync(dir).filter((name) => !(name in others)).sort(), readdirSync(reference).sort(), 'its own files are those of an uninterrupted run');
  for (const name of shardFiles(reference)) t.ok(readFileSync(join(dir, name)).equals(readFileSync(join(reference, name))), `${name} byte-identical`);
  t.same((readJson(join(dir, 'manifest-p0001.json')) as ShardManifest).shards, (readJson(join(reference, 'manifest-p0001.json')) as ShardManifest).shards);
});

t.test('ShardWriter with partition refuses unpartitioned runs, partitions made with other options, and foreign folders', async (t) => {
  const root = t.testdir({ foreign: { 'notes.txt': 'mine' } });
  const samples = makeSamples(12);
  const single = join(root, 'single');
  await writeShards(samples, single);
  await t.rejects(ShardWriter.open(single, { partition: { index: 0, count: 2 } }), { code: 'MEDSYN_ERR_OUTPUT_CONFLICT', message: /unpartitioned run with prefix 'shard'/u });

  const shared = join(root, 'shared');
  await writeShards(partitionSamples(samples, 0, 2), shared, { maxCount: 3, partition: { index: 0, count: 2 } });
  await t.rejects(ShardWriter.open(shared), { code: 'MEDSYN_ERR_OUTPUT_CONFLICT', message: /partitioned run \(manifest-p0000\.json\).*--partition I\/N/u });
  await t.rejects(ShardWriter.open(shared, { maxCount: 4, partition: { index: 1, count: 2 } }), {
    code: 'MEDSYN_ERR_OUTPUT_CONFLICT',
    message: /manifest-p0000\.json was made with --max-count 3, not 4/u,
  });
  await t.rejects(ShardWriter.open(shared, { maxCount: 3, partition: { index: 1, count: 3 } }), {
    code: 'MEDSYN_ERR_OUTPUT_CONFLICT',
    message: /the partition count N 2, not 3/u,
  });
  await t.rejects(ShardWriter.open(shared, { maxCount: 3, prefix: 'train', partition: { index: 0, count: 2 } }), {
    code: 'MEDSYN_ERR_OUTPUT_CONFLICT',
    message: /manifest-p0000\.json is of a run with prefix 'shard'/u,
  });
  t.notOk(readdirSync(shared).some((name) => name.startsWith('shard-p0001') || name === 'manifest-p0001.json'), 'nothing written by the refused runs');
  await t.rejects(ShardWriter.open(join(root, 'foreign'), { partition: { index: 0, count: 2 } }), { code: 'MEDSYN_ERR_OUTPUT_CONFLICT', message: /holds no medsyn manifest/u });
  for (const partition of [{ index: 2, count: 2 }, { index: -1, count: 2 }, { index: 0, count: 0 }, { index: 0.5, count: 2 }]) {
    await t.rejects(ShardWriter.open(join(root, 'bad'), { partition }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'partition' });
  }
});

t.test('ShardWriter with partition and overwrite deletes only its own files and the merged ones', async (t) => {
  const dir = t.testdir({});
  const samples = makeSamples(20);
  for (const index of [0, 1]) await writeShards(partitionSamples(samples, index, 2), dir, { maxCount: 3, partition: { index, count: 2 } });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ format: 'medsyn-shards', partitions: 2, shards: [] }));
  writeFileSync(join(dir, 'sizes.json'), '{}');
  const before = readdirSync(dir).filter((name) => name.includes('p0000'));
  const summary = await writeShards(partitionSamples(samples, 1, 2).slice(0, 2), dir, { maxCount: 5, overwrite: true, partition: { index: 1, count: 2 } });
  t.match(summary, { shardsKept: 0, shardsWritten: 1, samplesWritten: 2 });
  t.same(readdirSync(dir).filter((name) => name.includes('p0000')), before, "partition 0's files untouched");
  t.same(readdirSync(dir).filter((name) => name.includes('p0001')).sort(), ['manifest-p0001.json', 'shard-p0001-000000.tar', 'shard-p0001-000000_stats.json']);
  t.notOk(existsSync(join(dir, 'manifest.json')) || existsSync(join(dir, 'sizes.json')), 'the stale merged files are gone');
});
