import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { decodeSamples } from '../../streams/tar_decoder.js';
import type { Sample, SampleReject } from '../../streams/sample.js';
import { collect } from './_chunks.js';
import { END, digestSamples, encodeToBuffer, gnuTar, makeSamples, pieces, pythonTar, rawEntry, rawHeader, sampleFiles, captureWarnings } from './_tar_fixtures.js';

const decodeAll = (bytes: Uint8Array, size = bytes.byteLength || 1, options: Parameters<typeof decodeSamples>[1] = {}): Promise<Sample[]> =>
  collect(decodeSamples(pieces(bytes, size), options));

t.test('decodeSamples round-trips what encodeSamples writes, with url and offset provenance', async (t) => {
  const samples = makeSamples(30);
  const bytes = await encodeToBuffer(samples);
  const decoded = await decodeAll(bytes, 65536, { source: 'shard-000000.tar' });
  t.same(digestSamples(decoded), digestSamples(samples));
  t.equal(decoded[0].url, 'shard-000000.tar');
  t.equal(decoded[0].offset, 0);
  t.equal(decoded[1].offset, 512 * (1 + 1 + 1 + Math.ceil(samples[0].parts.png.byteLength / 512) + 1 + 1), 'offset of the first header of the second sample');
});

t.test('decodeSamples reads every fixture the same fed in odd-sized chunks', async (t) => {
  const dir = t.testdir({});
  const samples = makeSamples(5);
  samples.push({ key: `long_${'n'.repeat(120)}`, parts: { txt: Buffer.from('a long name'), json: Buffer.from('{"long":true}') } });
  const files = sampleFiles(samples);
  const shortFiles = files.filter((file) => file.name.length <= 99);
  const shortSamples = samples.filter((sample) => sample.key.length < 90);
  const medsyn = await encodeToBuffer(samples);
  const fixtures: [string, Buffer, Sample[]][] = [
    ['medsyn encoder (PAX long name)', medsyn, samples],
    ['GNU tar --format=ustar', gnuTar(dir, 'ustar', shortFiles), shortSamples],
    ['GNU tar --format=gnu (long name)', gnuTar(dir, 'gnu', files), samples],
    ['GNU tar --format=oldgnu', gnuTar(dir, 'oldgnu', shortFiles), shortSamples],
    ['GNU tar --format=posix (PAX headers)', gnuTar(dir, 'posix', files), samples],
    ['GNU tar --format=v7 (no magic)', gnuTar(dir, 'v7', shortFiles), shortSamples],
    ['Python tarfile USTAR_FORMAT', pythonTar('USTAR_FORMAT', shortFiles), shortSamples],
    ['Python tarfile GNU_FORMAT (long name)', pythonTar('GNU_FORMAT', files), samples],
    ['Python tarfile PAX_FORMAT (long name)', pythonTar('PAX_FORMAT', files), samples],
    ['two tars concatenated', Buffer.concat([medsyn, await encodeToBuffer(makeSamples(2, { prefix: 'z' }))]), [...samples, ...makeSamples(2, { prefix: 'z' })]],
  ];
  for (const [name, bytes, expected] of fixtures) {
    for (const size of [1, 7, 511, 512, 513, 4099, bytes.byteLength]) {
      const decoded = await decodeAll(bytes, size);
      t.same(digestSamples(decoded), digestSamples(expected), `${name}, chunks of ${size}`);
    }
  }
});

t.test('decodeSamples drops a leading ./ and skips directory entries, as from `tar cf - .`', async (t) => {
  const dir = t.testdir({});
  const root = join(dir, 'data');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'a.txt'), 'A');
  writeFileSync(join(root, 'a.json'), '{}');
  writeFileSync(join(root, 'sub', 'b.txt'), 'B');
  const bytes = execFileSync('tar', ['-C', root, '--sort=name', '-cf', '-', '.']);
  const decoded = await decodeAll(bytes, 100);
  t.same(
    decoded.map((sample) => [sample.key, Object.keys(sample.parts).sort()]),
    [
      ['a', ['json', 'txt']],
      ['sub/b', ['txt']],
    ],
  );
});

t.test('decodeSamples refuses unsafe entries with MEDSYN_ERR_UNSAFE_ENTRY naming the byte', async (t) => {
  const good = rawEntry('ok.txt', Buffer.from('fine'));
  const cases: [string, Buffer][] = [
    ['an absolute name', rawEntry('/etc/passwd.txt', Buffer.from('x'))],
    ['a .. component', rawEntry('../../evil.txt', Buffer.from('x'))],
    ['a .. in the middle', rawEntry('a/../../evil.txt', Buffer.from('x'))],
    ['a symlink', rawHeader({ name: 'link.png', typeflag: '2', linkname: '/etc/shadow' })],
    ['a hard link', rawHeader({ name: 'hard.png', typeflag: '1', linkname: 'ok.txt' })],
    ['a character device', rawHeader({ name: 'dev.png', typeflag: '3' })],
    ['a block device', rawHeader({ name: 'blk.png', typeflag: '4' })],
    ['a fifo', rawHeader({ name: 'fifo.png', typeflag: '6' })],
    ['an unknown type', rawHeader({ name: 'odd.png', typeflag: 'Q' })],
  ];
  for (const [what, entry] of cases) {
    const bytes = Buffer.concat([good, entry, END]);
    for (const size of [13, bytes.byteLength]) {
      await t.rejects(decodeAll(bytes, size, { source: 'hostile.tar' }), { code: 'MEDSYN_ERR_UNSAFE_ENTRY', file: 'hostile.tar', offset: 1024 }, `${what}, chunks of ${size}`);
    }
  }
});

t.test('decodeSamples fails on a huge size field before reading any of it', async (t) => {
  const octal = rawHeader({ name: 'big.png', sizeField: Buffer.from('77777777777 ', 'latin1') });
  const base256 = Buffer.alloc(12);
  base256[0] = 0x80;
  base256.writeUIntBE(2 ** 40, 6, 6);
  const binary = rawHeader({ name: 'big.png', sizeField: base256 });
  for (const [what, header] of [
    ['octal 8 GiB', octal],
    ['base-256 1 TiB', binary],
  ] as const) {
    // Only a little data follows: the decoder must not wait for (or buffer) 8 GiB.
    const bytes = Buffer.concat([header, Buffer.alloc(4096)]);
    await t.rejects(decodeAll(bytes, 512, { source: 'big.tar' }), { code: 'MEDSYN_ERR_CORRUPT_TAR', offset: 0, message: /declares \d+ bytes/u }, what);
  }
  const small = Buffer.concat([rawEntry('a.txt', Buffer.alloc(2000)), END]);
  await t.rejects(decodeAll(small, 512, { maxPartBytes: 1000 }), { code: 'MEDSYN_ERR_CORRUPT_TAR', message: /more than the 1000 allowed/u });
});

t.test('decodeSamples reports a truncated tar with the byte where it ends', async (t) => {
  const bytes = await encodeToBuffer(makeSamples(4));
  const entriesEnd = bytes.byteLength - 1024;
  for (let cut = 1; cut < bytes.byteLength; cut += 97) {
    await t.rejects(
      decodeAll(bytes.subarray(0, cut), 100, { source: 'cut.tar' }),
      { code: 'MEDSYN_ERR_CORRUPT_TAR', file: 'cut.tar', offset: cut },
      `cut at ${cut}`,
    );
  }
  await t.rejects(decodeAll(bytes.subarray(0, entriesEnd), 512), { code: 'MEDSYN_ERR_CORRUPT_TAR', message: /no end-of-archive marker/u }, 'cut between entries');
  await t.rejects(decodeAll(Buffer.alloc(0)), { code: 'MEDSYN_ERR_EMPTY_INPUT' });
  t.same(await decodeAll(Buffer.alloc(1024)), [], 'an empty tar is fine');
});

t.test('decodeSamples names the header that fails its checksum, and spots gzip', async (t) => {
  const bytes = Buffer.from(await encodeToBuffer(makeSamples(3)));
  const second = 512 * (3 + 1 + Math.ceil(makeSamples(3)[0].parts.png.byteLength / 512) + 1);
  bytes[second + 10] ^= 0xff;
  await t.rejects(decodeAll(bytes, 333, { source: 'bad.tar' }), { code: 'MEDSYN_ERR_CORRUPT_TAR', file: 'bad.tar', offset: second, message: /bad tar header/u });
  const gz = gzipSync(await encodeToBuffer(makeSamples(2)));
  await t.rejects(decodeAll(gz), { code: 'MEDSYN_ERR_CORRUPT_TAR', offset: 0, message: /gzip/u });
});

t.test('decodeSamples groups only adjacent entries: non-adjacent parts give two samples with one key', async (t) => {
  const bytes = Buffer.concat([rawEntry('a.png', Buffer.from('A')), rawEntry('b.png', Buffer.from('B')), rawEntry('a.txt', Buffer.from('a')), END]);
  const decoded = await decodeAll(bytes, 64);
  t.same(
    decoded.map((sample) => [sample.key, Object.keys(sample.parts)]),
    [
      ['a', ['png']],
      ['b', ['png']],
      ['a', ['txt']],
    ],
    'as webdataset reads it; the shard writer rejects the second a as duplicate_key',
  );
});

t.test('decodeSamples rejects entries without key or extension and repeated parts, by policy', async (t) => {
  const bytes = Buffer.concat([
    rawEntry('README', Buffer.from('no extension')),
    rawEntry('a.png', Buffer.from('A')),
    rawEntry('a.png', Buffer.from('A again')),
    rawEntry('.hidden', Buffer.from('no key')),
    rawEntry('b.', Buffer.from('empty extension')),
    rawEntry('c.txt', Buffer.from('C')),
    END,
  ]);
  const rejects: SampleReject[] = [];
  const decoded = await decodeAll(bytes, 100, { source: 'mixed.tar', onReject: (reject) => rejects.push(reject) });
  t.same(decoded.map((sample) => sample.key), ['c']);
  t.same(
    rejects.map((reject) => [reject.reason, reject.offset, reject.id]),
    [
      ['bad_entry', 0, undefined],
      ['bad_entry', 1024, 'a'],
      ['bad_entry', 3072, undefined],
      ['bad_entry', 4096, undefined],
    ],
  );
  t.ok(rejects.every((reject) => reject.source === 'mixed.tar' && reject.message.length > 0));
  await t.rejects(decodeAll(bytes, 100, { onError: 'fail' }), { code: 'MEDSYN_ERR_REJECTED', offset: 0 });
  await t.rejects(decodeSamples(pieces(bytes, 1), { onError: 'ignore' as 'skip' }).next(), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'onError' });
});

t.test('decodeSamples keeps a part named __proto__ as a part', async (t) => {
  const decoded = await decodeAll(Buffer.concat([rawEntry('a.txt', Buffer.from('A')), rawEntry('a.__proto__', Buffer.from('P')), END]));
  t.same(Object.keys(decoded[0].parts).sort(), ['__proto__', 'txt']);
  t.equal(Buffer.from(decoded[0].parts['__proto__']).toString(), 'P');
});

t.test('decodeSamples reports skipped entries as process warnings when nobody listens', async (t) => {
  const warnings = captureWarnings(t);
  const decoded = await decodeAll(Buffer.concat([rawEntry('README', Buffer.from('x')), rawEntry('a.txt', Buffer.from('A')), END]));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(decoded.length, 1);
  t.match(warnings, [/skipped bad_entry in - at byte 0/u]);
});

t.test('decodeSamples stops its source when the consumer stops early, and wraps source errors', async (t) => {
  const bytes = await encodeToBuffer(makeSamples(20));
  let returned = false;
  async function* source(): AsyncGenerator<Uint8Array> {
    try {
      yield* pieces(bytes, 1000);
    } finally {
      returned = true;
    }
  }
  for await (const sample of decodeSamples(source())) {
    t.equal(sample.key, 's0000');
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.ok(returned, 'the source generator was closed');

  async function* failing(): AsyncGenerator<Uint8Array> {
    yield bytes.subarray(0, 3000);
    throw new Error('disk on fire');
  }
  await t.rejects(collect(decodeSamples(failing(), { source: 'x.tar' })), { code: 'MEDSYN_ERR_READ_FAILED', file: 'x.tar', offset: 3000, message: /disk on fire/u });
});
