import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { listShards, readShards, type ShardReadSummary } from '../../streams/shard_reader.js';
import { writeShards } from '../../streams/shard_writer.js';
import type { Sample } from '../../streams/sample.js';
import type { MedsynError } from '../../errors.js';
import { digestSamples, makeSamples, captureWarnings } from './_tar_fixtures.js';

/** Everything a readShards generator yields, and what it returns. */
async function readAll(generator: AsyncGenerator<Sample, ShardReadSummary>): Promise<{ samples: Sample[]; summary: ShardReadSummary }> {
  const samples: Sample[] = [];
  for (;;) {
    const next = await generator.next();
    if (next.done) return { samples, summary: next.value };
    samples.push(next.value);
  }
}

/** 60 samples in 6 shards of 10. */
async function makeFolder(dir: string): Promise<Sample[]> {
  const samples = makeSamples(60);
  await writeShards(samples, dir, { maxCount: 10 });
  return samples;
}

/** Serves `dir` on 127.0.0.1; `/cut/NAME` sends half of NAME then drops the connection. */
async function serve(t: { teardown: (fn: () => Promise<void>) => void }, dir: string): Promise<string> {
  const server: Server = createServer((request, response) => {
    const url = request.url ?? '/';
    try {
      if (url.startsWith('/cut/')) {
        const bytes = readFileSync(join(dir, url.slice('/cut/'.length)));
        response.writeHead(200, { 'content-length': bytes.byteLength });
        response.write(bytes.subarray(0, bytes.byteLength >> 1), () => response.destroy());
        return;
      }
      const bytes = readFileSync(join(dir, url.slice(1)));
      response.writeHead(200, { 'content-length': bytes.byteLength });
      response.end(bytes);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.unref();
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

t.test('readShards reads paths, folders through their manifest and brace patterns, with provenance', async (t) => {
  const dir = t.testdir({});
  const samples = await makeFolder(dir);
  const fromFolder = await readAll(readShards(dir));
  t.same(digestSamples(fromFolder.samples), digestSamples(samples));
  t.same(fromFolder.summary, { shards: 6, shardsSkipped: 0, samples: 60, errors: [] });
  t.equal(fromFolder.samples[0].url, join(dir, 'shard-000000.tar'));
  t.equal(fromFolder.samples[59].url, join(dir, 'shard-000005.tar'));
  t.equal(fromFolder.samples[10].offset, 0, 'offset within its shard');
  const fromPattern = await readAll(readShards(join(dir, 'shard-{000000..000005}.tar')));
  t.same(digestSamples(fromPattern.samples), digestSamples(samples));
  const fromPaths = await readAll(readShards([join(dir, 'shard-000002.tar'), join(dir, 'shard-000000.tar')]));
  t.same(
    fromPaths.samples.map((sample) => sample.key),
    [...samples.slice(20, 30), ...samples.slice(0, 10)].map((sample) => sample.key),
  );
  t.same(await listShards(`file://${dir}/shard-{000000..000001}.tar`), [join(dir, 'shard-000000.tar'), join(dir, 'shard-000001.tar')]);
});

t.test('readShards streams http(s) URLs with undici, and folder URLs through their manifest', async (t) => {
  const dir = t.testdir({});
  const samples = await makeFolder(dir);
  const base = await serve(t, dir);
  const fromUrls = await readAll(readShards(`${base}shard-{000000..000005}.tar`));
  t.same(digestSamples(fromUrls.samples), digestSamples(samples));
  t.equal(fromUrls.samples[0].url, `${base}shard-000000.tar`);
  const fromFolder = await readAll(readShards(base));
  t.same(digestSamples(fromFolder.samples), digestSamples(samples));
  await t.rejects(readAll(readShards(`${base}missing.tar`)), { code: 'MEDSYN_ERR_NOT_FOUND', file: `${base}missing.tar`, message: /HTTP 404/u });
  await t.rejects(readAll(readShards(`${base}cut/shard-000001.tar`)), { code: /MEDSYN_ERR_(READ_FAILED|CORRUPT_TAR)/u, file: `${base}cut/shard-000001.tar`, offset: Number });
  const skipped: MedsynError[] = [];
  const partial = await readAll(
    readShards([`${base}shard-000000.tar`, `${base}cut/shard-000001.tar`, `${base}shard-000002.tar`], { onError: 'skip', onShardError: (error) => skipped.push(error) }),
  );
  t.equal(partial.summary.shardsSkipped, 1);
  t.equal(partial.summary.shards, 2);
  t.equal(skipped.length, 1);
  t.ok(partial.samples.some((sample) => sample.key === 's0029'), 'reading goes on after the skipped shard');
});

t.test('readShards shuffles shards per epoch with a seed and splits them between readers', async (t) => {
  const dir = t.testdir({});
  const samples = makeSamples(120, { pngBytes: () => 10 });
  await writeShards(samples, dir, { maxCount: 5 });
  const shardOrder = async (options: Parameters<typeof readShards>[1]): Promise<string[]> => {
    const order: string[] = [];
    for await (const sample of readShards(dir, options)) if (order.at(-1) !== sample.url) order.push(sample.url ?? '');
    return order;
  };
  const plain = await shardOrder({});
  t.equal(plain.length, 24);
  const epoch0 = await shardOrder({ shuffleShards: true, seed: 3, epoch: 0 });
  t.same(await shardOrder({ shuffleShards: true, seed: 3, epoch: 0 }), epoch0, 'the same seed and epoch give the same order');
  t.not(epoch0.join(), plain.join(), 'shuffled');
  t.same([...epoch0].sort(), [...plain].sort(), 'every shard once');
  const epoch1 = await shardOrder({ shuffleShards: true, seed: 3, epoch: 1 });
  t.not(epoch1.join(), epoch0.join(), 'another epoch, another order');

  for (const epoch of [0, 1]) {
    const parts = await Promise.all([0, 1, 2].map((index) => shardOrder({ shuffleShards: true, seed: 3, epoch, partition: `${index}/3` })));
    t.same(parts.map((part) => part.length), [8, 8, 8]);
    t.same(parts.flat().sort(), [...plain].sort(), `epoch ${epoch}: three readers read every shard exactly once`);
  }
  t.same(await shardOrder({ partition: '1/2' }), plain.filter((_, index) => index % 2 === 1));
});

t.test('readShards passes samples through a seeded shuffle buffer', async (t) => {
  const dir = t.testdir({});
  const samples = await makeFolder(dir);
  const keys = async (options: Parameters<typeof readShards>[1]): Promise<string[]> => (await readAll(readShards(dir, options))).samples.map((sample) => sample.key);
  const shuffled = await keys({ shuffleBuffer: 20, seed: 1 });
  t.same([...shuffled].sort(), samples.map((sample) => sample.key));
  t.not(shuffled.join(), samples.map((sample) => sample.key).join());
  t.same(await keys({ shuffleBuffer: 20, seed: 1 }), shuffled);
  t.not((await keys({ shuffleBuffer: 20, seed: 1, epoch: 1 })).join(), shuffled.join(), 'each epoch its own order');
  t.not((await keys({ shuffleBuffer: 20, seed: 1, partition: '0/1' })).join(), '', 'partition does not break it');
});

t.test('readShards names a corrupt or truncated shard and the byte; onError skip skips, counts and reports it', async (t) => {
  const dir = t.testdir({});
  await makeFolder(dir);
  const truncated = join(dir, 'shard-000003.tar');
  const bytes = readFileSync(truncated);
  writeFileSync(truncated, bytes.subarray(0, 4000));
  await t.rejects(readAll(readShards(dir)), {
    code: 'MEDSYN_ERR_CORRUPT_TAR',
    file: truncated,
    offset: 4000,
    message: new RegExp(`Cannot read ${truncated.replace(/[.*+?^${}()|[\]\\/]/gu, '\\$&')}: truncated at byte 4000`, 'u'),
  });
  const corrupt = Buffer.from(bytes);
  corrupt[1024 + 5] ^= 0x55;
  writeFileSync(truncated, corrupt);
  await t.rejects(readAll(readShards(truncated)), { code: 'MEDSYN_ERR_CORRUPT_TAR', file: truncated, offset: 1024 });

  const warnings = captureWarnings(t);
  const { samples, summary } = await readAll(readShards([dir, join(dir, 'gone.tar')], { onError: 'skip' }));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(summary.shardsSkipped, 2);
  t.same(summary.errors.map((error) => error.code), ['MEDSYN_ERR_CORRUPT_TAR', 'MEDSYN_ERR_NOT_FOUND']);
  t.equal(samples.length, 50, 'the five good shards are read');
  t.match(warnings, [/skipped shard: Cannot read .*shard-000003\.tar/u, /skipped shard: Cannot read shard .*gone\.tar: no such file/u]);
});

t.test('readShards refuses a folder whose run has not finished, and bad options', async (t) => {
  const dir = t.testdir({ empty: {} });
  await t.rejects(
    writeShards(
      (function* () {
        yield* makeSamples(3);
        throw new Error('killed');
      })(),
      join(dir, 'run'),
    ),
  );
  await t.rejects(readAll(readShards(join(dir, 'run'))), { code: 'MEDSYN_ERR_READ_FAILED', message: /has not finished/u });
  await t.rejects(readAll(readShards(join(dir, 'empty'))), { code: 'MEDSYN_ERR_NOT_FOUND', message: /no manifest\.json/u });
  await t.rejects(readAll(readShards([])), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'sources' });
  for (const partition of ['2/2', '1', 'a/b', '0/0']) {
    await t.rejects(readAll(readShards(dir, { partition })), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'partition' }, partition);
  }
  await t.rejects(readAll(readShards(dir, { shuffleBuffer: -1 })), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'shuffleBuffer' });
  await t.rejects(readAll(readShards(dir, { onError: 'ignore' as 'skip' })), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'onError' });
});
