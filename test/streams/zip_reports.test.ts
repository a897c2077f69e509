import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { isReject, type Reject, type Report } from '../../records.js';
import { decodeZipBatch, readZipBatches, readZipReports } from '../../streams/zip_reports.js';
import { collect } from './_chunks.js';
import { makeZip, type ZipEntrySpec } from './_zip.js';

const REPORT = '                                 FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n \n IMPRESSION: \n \n No acute cardiopulmonary process.\n';

function zipFile(t: Test, entries: ZipEntrySpec[], name = 'mimic-cxr-reports.zip'): string {
  const dir = t.testdir({});
  const path = join(dir, name);
  writeFileSync(path, makeZip(entries));
  return path;
}

t.test('readZipReports reads the official layout with ids, subject ids and sources, skipping folders', async (t) => {
  const path = zipFile(t, [
    { name: 'files/' },
    { name: 'files/p10/' },
    { name: 'files/p10/p10000032/' },
    { name: 'files/p10/p10000032/s50414267.txt', data: REPORT },
    { name: 'files/p10/p10000032/s53189527.txt', data: 'stored, not deflated\r\n', method: 0 },
    { name: 'files/p11/p11000011/s51234567.txt', data: '\ufeffBOM first é' },
    { name: 'files/p11/p11000011/s51234568.txt', data: '' },
    { name: 'files/p11/p11000011/s51234569.txt', data: '', method: 8, rawData: new Uint8Array(0) },
  ]);
  const items = await collect(readZipReports(path));
  t.same(items, [
    { id: 's50414267', subjectId: 'p10000032', source: `${path}:files/p10/p10000032/s50414267.txt`, text: REPORT },
    { id: 's53189527', subjectId: 'p10000032', source: `${path}:files/p10/p10000032/s53189527.txt`, text: 'stored, not deflated\r\n' },
    { id: 's51234567', subjectId: 'p11000011', source: `${path}:files/p11/p11000011/s51234567.txt`, text: 'BOM first é' },
    { id: 's51234568', subjectId: 'p11000011', source: `${path}:files/p11/p11000011/s51234568.txt`, text: '' },
    { id: 's51234569', subjectId: 'p11000011', source: `${path}:files/p11/p11000011/s51234569.txt`, text: '' },
  ]);
});

t.test('readZipReports rejects entries off the layout as bad_entry without reading them, and goes on', async (t) => {
  const names = [
    '../evil.txt',
    'files/../../etc/passwd',
    '/abs/files/p10/p10000032/s50414267.txt',
    'C:/files/p10/p10000032/s1.txt',
    'files\\p10\\p10000032\\s50414268.txt',
    '__MACOSX/files/p10/._s1.txt',
    'README.txt',
    'files/p10/p10000032/notes.md',
    'files/p10/p10000032/s5041426.txt',
    'files/p10/s50414267.txt',
  ];
  const path = zipFile(t, [
    ...names.map((name) => ({ name, data: 'never read', crc: 1 })),
    { name: 'files/p10/p10000032/s50414269.txt', data: REPORT },
  ]);
  const items = await collect(readZipReports(path, { name: 'reports.zip' }));
  t.equal(items.length, names.length + 1);
  const rejects = items.slice(0, -1) as Reject[];
  t.same(rejects.map((reject) => reject.reason), names.map(() => 'bad_entry'));
  t.same(rejects.map((reject) => reject.source), names.map((name) => `reports.zip:${name}`));
  t.notOk(rejects.some((reject) => 'id' in reject));
  t.match(rejects[0].message, /\.\./);
  t.match(rejects[2].message, /absolute/);
  t.match(rejects[4].message, /backslash/);
  t.match(rejects[5].message, /outside files\//);
  t.match(rejects[7].message, /files\/pNN\/pNNNNNNNN\/sNNNNNNNN\.txt/);
  t.match(items.at(-1), { id: 's50414269', text: REPORT });
});

t.test('readZipReports rejects too_long, not_utf8, encrypted and unknown-method entries one by one', async (t) => {
  const big = 'A'.repeat(5 * 1024 * 1024);
  const path = zipFile(t, [
    { name: 'files/p10/p10000001/s50000001.txt', data: big },
    { name: 'files/p10/p10000001/s50000002.txt', data: Buffer.from([0x4e, 0x6f, 0x20, 0xe9, 0x74, 0xe9]) },
    { name: 'files/p10/p10000001/s50000003.txt', data: 'secret', flags: 1 },
    { name: 'files/p10/p10000001/s50000004.txt', data: 'bzip2', method: 12, rawData: Buffer.from('BZh9') },
    { name: 'files/p10/p10000001/s50000005.txt', data: 'fine' },
  ]);
  const items = await collect(readZipReports(path, { name: 'z.zip' }));
  t.same(
    items.map((item) => (isReject(item) ? [item.id, item.reason] : [item.id, item.text])),
    [
      ['s50000001', 'too_long'],
      ['s50000002', 'not_utf8'],
      ['s50000003', 'bad_entry'],
      ['s50000004', 'bad_entry'],
      ['s50000005', 'fine'],
    ],
  );
  t.match((items[0] as Reject).message, /5242880 bytes.*maxReportBytes 1048576/);
  t.match((items[1] as Reject).message, /byte 3 is not valid UTF-8/);
  t.match((items[2] as Reject).message, /encrypted/);
  t.match((items[3] as Reject).message, /method 12/);
  const roomy = await collect(readZipReports(path, { maxReportBytes: 6 * 1024 * 1024 }));
  t.equal((roomy[0] as Report).text.length, big.length, 'a larger maxReportBytes keeps it');
});

t.test('readZipReports reads many entries across batches in archive order', async (t) => {
  const entries: ZipEntrySpec[] = [];
  for (let i = 0; i < 1500; i++) {
    const subject = `p1${String(1000000 + Math.floor(i / 3)).padStart(7, '0')}`;
    entries.push({
      name: `files/p1${subject[2]}/${subject}/s${60000000 + i}.txt`,
      data: `${REPORT}${'word '.repeat(i % 97)}${i}`,
      method: i % 5 === 0 ? 0 : 8,
    });
  }
  // One entry larger than a batch read on its own, with a long local extra field.
  entries.splice(700, 0, {
    name: 'files/p10/p10999999/s59999999.txt',
    data: 'B'.repeat(900_000) + Math.random().toString(36),
    localExtra: new Uint8Array(1000),
  });
  const path = zipFile(t, entries);
  const items = await collect(readZipReports(path));
  t.equal(items.length, 1501);
  t.notOk(items.some(isReject));
  t.same(
    items.map((item) => item.id),
    entries.map((entry) => /(s\d+)\.txt$/.exec(entry.name)![1]),
  );
  t.equal((items[1500] as Report).text, `${REPORT}${'word '.repeat(1499 % 97)}1499`);
  t.equal((items[700] as Report).text.length, entries[700].data!.length);
});

t.test('decodeZipBatch inflates deflated entries where they were read, whatever lies between them, and again the same', async (t) => {
  const entries: ZipEntrySpec[] = [];
  for (let i = 0; i < 700; i++) {
    entries.push({ name: `files/p10/p10000${String(100 + (i % 50))}/s${60000000 + i}.txt`, data: `${REPORT}${'lung '.repeat(i % 41)}${i}` });
  }
  // Local headers longer than the central ones: one whose gap a gzip extra field still
  // fills, one whose gap is longer than any extra field (its batch is inflated from a copy).
  entries[100] = { ...entries[100], localExtra: new Uint8Array(60_000).fill(7) };
  entries[400] = { ...entries[400], localExtra: new Uint8Array(65_535).fill(9) };
  const path = zipFile(t, entries);
  const texts: string[] = [];
  const gzipHeaded: boolean[] = [];
  for await (const batch of readZipBatches(path)) {
    const first = decodeZipBatch(batch).map((item) => (item as Report).text);
    t.same(decodeZipBatch(batch).map((item) => (item as Report).text), first, 'a batch decodes the same twice');
    texts.push(...first);
    // Inflated in place: a gzip header with an extra field now stands before the first entry's data.
    const bytes = new Uint8Array(batch.data, batch.numbers[4]! - 12, 4);
    gzipHeaded.push(bytes[0] === 0x1f && bytes[1] === 0x8b && bytes[3] === 0x04);
  }
  t.same(texts, entries.map((entry) => entry.data));
  t.same(gzipHeaded, [true, false, true], 'every batch inflated in place but the one with the longest gap');
});

t.test('readZipReports throws MEDSYN_ERR_CORRUPT_ZIP for a truncated archive or a file that is no zip', async (t) => {
  const whole = makeZip([{ name: 'files/p10/p10000032/s50414267.txt', data: REPORT }]);
  const dir = t.testdir({ 'cut.zip': whole.subarray(0, whole.byteLength - 30), 'text.zip': 'id,text\ns1,hello\n' });
  for (const name of ['cut.zip', 'text.zip']) {
    await t.rejects(collect(readZipReports(join(dir, name))), {
      code: 'MEDSYN_ERR_CORRUPT_ZIP',
      message: new RegExp(`${name}.*is the download complete`),
      file: join(dir, name),
    });
  }
});

t.test('readZipReports never hangs or crashes on an archive cut at any length', async (t) => {
  const whole = makeZip([
    { name: 'files/' },
    { name: 'files/p10/p10000032/s50414267.txt', data: REPORT },
    { name: 'files/p10/p10000032/s50414268.txt', data: 'short' },
  ]);
  const dir = t.testdir({});
  let corrupt = 0;
  for (let length = 1; length < whole.byteLength; length += 3) {
    const path = join(dir, `cut-${length}.zip`);
    writeFileSync(path, whole.subarray(0, length));
    try {
      await collect(readZipReports(path));
    } catch (err) {
      if ((err as { code?: string }).code !== 'MEDSYN_ERR_CORRUPT_ZIP') throw err;
      corrupt += 1;
    }
  }
  t.ok(corrupt > 0);
});

t.test('readZipReports throws MEDSYN_ERR_CORRUPT_ZIP naming the entry whose data is damaged', async (t) => {
  const path = zipFile(t, [
    { name: 'files/p10/p10000032/s50414266.txt', data: 'good' },
    { name: 'files/p10/p10000032/s50414267.txt', data: REPORT, crc: 12345 },
  ]);
  const seen: string[] = [];
  await t.rejects(
    (async () => {
      for await (const item of readZipReports(path, { name: 'reports.zip' })) seen.push(item.source);
    })(),
    { code: 'MEDSYN_ERR_CORRUPT_ZIP', message: /reports\.zip: entry files\/p10\/p10000032\/s50414267\.txt is damaged: its CRC-32/ },
  );
  t.same(seen, [], 'a batch fails whole');
  const lying = zipFile(t, [{ name: 'files/p10/p10000032/s50414267.txt', data: REPORT, size: 10 }], 'lying.zip');
  await t.rejects(collect(readZipReports(lying)), { code: 'MEDSYN_ERR_CORRUPT_ZIP', message: /more than the 10 bytes/ });
});

t.test('readZipReports reads an entry whose local header is longer than the central one on its own', async (t) => {
  const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => 97 + ((i * 7919) % 26)));
  const path = zipFile(t, [
    { name: 'files/p10/p10000032/s50414266.txt', data: 'first' },
    { name: 'files/p10/p10000032/s50414267.txt', data, method: 0, localExtra: new Uint8Array(4000) },
  ]);
  const items = await collect(readZipReports(path));
  t.same(items.map((item) => (item as Report).text), ['first', data.toString('latin1')]);
});

t.test('readZipReports throws MEDSYN_ERR_CORRUPT_ZIP when the directory points at no local header', async (t) => {
  const path = zipFile(t, [
    { name: 'files/p10/p10000032/s50414266.txt', data: 'first' },
    { name: 'files/p10/p10000032/s50414267.txt', data: 'second', offset: 3 },
  ]);
  await t.rejects(collect(readZipReports(path)), { code: 'MEDSYN_ERR_CORRUPT_ZIP', message: /s50414267\.txt is damaged: there is no local header at byte 3/ });
  const past = zipFile(t, [{ name: 'files/p10/p10000032/s50414267.txt', data: 'x', offset: 1_000_000 }], 'past.zip');
  await t.rejects(collect(readZipReports(past)), { code: 'MEDSYN_ERR_CORRUPT_ZIP', message: /past the end of the file/ });
});

t.test('readZipReports throws MEDSYN_ERR_NOT_FOUND for a missing archive', async (t) => {
  await t.rejects(collect(readZipReports(join(t.testdir({}), 'nope.zip'))), { code: 'MEDSYN_ERR_NOT_FOUND', message: /nope\.zip/ });
});

t.test('readZipReports closes the archive when the consumer stops early', async (t) => {
  const path = zipFile(t, [
    { name: 'files/p10/p10000032/s50414267.txt', data: REPORT },
    { name: 'files/p10/p10000032/s50414268.txt', data: REPORT },
  ]);
  for await (const item of readZipReports(path)) {
    t.equal(item.source.endsWith('s50414267.txt'), true);
    break;
  }
});
