import t from 'tap';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tar from 'tar-stream';
import { encodeSamples } from '../../streams/tar_encoder.js';
import type { Sample } from '../../streams/sample.js';
import { digestSamples, encodeToBuffer, makeSamples, pythonWebdatasetView } from './_tar_fixtures.js';

/** Every entry of a tar as tar-stream reads it. */
async function listEntries(bytes: Buffer): Promise<{ name: string; type: string; size: number; mode: number; mtime: number; uid: number; gid: number }[]> {
  const extract = tar.extract();
  const entries: { name: string; type: string; size: number; mode: number; mtime: number; uid: number; gid: number }[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const { name, type, size, mode, mtime, uid, gid } = entry.header;
      entries.push({ name, type, size, mode, mtime: mtime.getTime() / 1000, uid, gid });
      entry.resume();
    }
  })();
  extract.end(bytes);
  await done;
  return entries;
}

/** What tar-stream's own pack() writes for the same entries. */
async function tarStreamPack(samples: Sample[], mtime = 0): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const reading = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const sample of samples) {
    for (const extension of Object.keys(sample.parts).sort()) {
      await new Promise<void>((resolve, reject) =>
        pack.entry({ name: `${sample.key}.${extension}`, mtime: new Date(mtime * 1000) }, sample.parts[extension], (err) => (err ? reject(err) : resolve())),
      );
    }
  }
  pack.finalize();
  await reading;
  return Buffer.concat(chunks);
}

t.test('encodeSamples writes the parts of a sample adjacent, extensions sorted, regular files only', async (t) => {
  const samples: Sample[] = [
    { key: 'b', parts: { txt: Buffer.from('t'), png: Buffer.from('p'), json: Buffer.from('{}'), 'seg.png': Buffer.from('s') } },
    { key: 'a', parts: { txt: Buffer.from('only text') } },
  ];
  const entries = await listEntries(await encodeToBuffer(samples));
  t.same(
    entries.map((entry) => entry.name),
    ['b.json', 'b.png', 'b.seg.png', 'b.txt', 'a.txt'],
    'sample order kept, parts sorted by extension',
  );
  t.ok(entries.every((entry) => entry.type === 'file' && entry.mode === 0o644 && entry.uid === 0 && entry.gid === 0 && entry.mtime === 0));
});

t.test('encodeSamples writes what tar-stream pack() writes, byte for byte, long names included', async (t) => {
  const samples = makeSamples(12);
  samples.push({ key: 'k'.repeat(150), parts: { txt: Buffer.from('a name of 154 bytes needs a PAX record'), json: Buffer.alloc(0) } });
  samples.push({ key: 'x'.repeat(96), parts: { png: Buffer.from('name of exactly 100 bytes: ustar only') } });
  t.ok((await encodeToBuffer(samples)).equals(await tarStreamPack(samples)), 'mtime 0');
  t.ok((await encodeToBuffer(samples, 1_700_000_000)).equals(await tarStreamPack(samples, 1_700_000_000)), 'mtime set');
});

t.test('encodeSamples gives byte-identical tars for the same samples, and mtime changes only the mtime', async (t) => {
  const first = await encodeToBuffer(makeSamples(20));
  const second = await encodeToBuffer(makeSamples(20));
  t.ok(first.equals(second));
  const entries = await listEntries(await encodeToBuffer(makeSamples(2), 1234567890));
  t.ok(entries.every((entry) => entry.mtime === 1234567890));
  await t.rejects(encodeToBuffer(makeSamples(1), -1), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'mtime' });
  await t.rejects(encodeToBuffer(makeSamples(1), 1.5), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});

t.test('encodeSamples adds a PAX record only for a name longer than 100 bytes', async (t) => {
  const short = await encodeToBuffer([{ key: 's'.repeat(96), parts: { txt: Buffer.from('x') } }]);
  t.equal(short.byteLength, 512 + 512 + 1024, 'one header, one data block, the end marker');
  const long = await encodeToBuffer([{ key: 's'.repeat(97), parts: { txt: Buffer.from('x') } }]);
  t.equal(String.fromCharCode(long[156]), 'x', 'PAX header first');
  const entries = await listEntries(long);
  t.same(entries.map((entry) => entry.name), [`${'s'.repeat(97)}.txt`]);
});

t.test('encodeSamples refuses keys and part names that break the WebDataset rules', async (t) => {
  const bad: [string, Sample][] = [
    ['a dot in the key', { key: 'a.b', parts: { txt: Buffer.from('x') } }],
    ['a slash in the key', { key: 'a/b', parts: { txt: Buffer.from('x') } }],
    ['an empty key', { key: '', parts: { txt: Buffer.from('x') } }],
    ['a key over 200 characters', { key: 'k'.repeat(201), parts: { txt: Buffer.from('x') } }],
    ['non-ASCII', { key: 'résumé', parts: { txt: Buffer.from('x') } }],
    ['no parts', { key: 'a', parts: {} }],
    ['an empty extension', { key: 'a', parts: { '': Buffer.from('x') } }],
    ['a slash in an extension', { key: 'a', parts: { 'x/png': Buffer.from('x') } }],
    ['a part that is not bytes', { key: 'a', parts: { txt: 'text' as unknown as Uint8Array } }],
  ];
  for (const [what, sample] of bad) {
    await t.rejects(encodeToBuffer([sample]), { code: 'MEDSYN_ERR_BAD_SAMPLE' }, what);
  }
});

t.test('encodeSamples output reads with GNU tar and with Python tarfile grouped as webdataset groups it', async (t) => {
  const dir = t.testdir({});
  const samples = makeSamples(8);
  samples.push({ key: 'L'.repeat(140), parts: { txt: Buffer.from('long'), json: Buffer.from('{}') } });
  const path = join(dir, 'samples.tar');
  writeFileSync(path, await encodeToBuffer(samples));
  const listing = execFileSync('tar', ['tvf', path], { encoding: 'utf8' }).trim().split('\n');
  t.equal(listing.length, samples.length * 3 - 1);
  t.match(listing[0], /^-rw-r--r-- 0\/0 +\d+ 1970-01-01 00:00 s0000\.json$/u);
  t.match(listing.at(-1), new RegExp(`${'L'.repeat(140)}\\.txt$`, 'u'), 'GNU tar reads the PAX long name');
  t.equal(execFileSync('tar', ['xOf', path, 's0003.txt'], { encoding: 'utf8' }), 'Caption 3: no acute cardiopulmonary process.');
  const view = pythonWebdatasetView([path]);
  t.same(view.samples, digestSamples(samples));
  t.ok(view.members.every((member) => / 644 0 0 0 0 \//u.test(member)), 'mode 644, uid/gid 0, mtime 0, regular, no user names');
});

t.test('encodeSamples is a plain async generator that a Readable can wrap', async (t) => {
  const { Readable } = await import('node:stream');
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(encodeSamples(makeSamples(3)))) chunks.push(chunk as Buffer);
  t.ok(Buffer.concat(chunks).equals(await encodeToBuffer(makeSamples(3))));
});
