import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { isReject, type Reject } from '../../records.js';
import { readDirReports } from '../../streams/dir_reports.js';
import { collect } from './_chunks.js';

t.test('readDirReports walks DIR/files/pNN/... in sorted order with ids, subject ids and paths', async (t) => {
  const dir = t.testdir({
    files: {
      p11: { p11000011: { 's51234567.txt': 'third' } },
      p10: {
        p10000032: { 's53189527.txt': 'second', 's50414267.txt': '\ufeffFINAL REPORT\r\n first' },
      },
    },
  });
  const items = await collect(readDirReports(dir));
  t.same(items, [
    { id: 's50414267', subjectId: 'p10000032', source: join(dir, 'files/p10/p10000032/s50414267.txt'), text: 'FINAL REPORT\r\n first' },
    { id: 's53189527', subjectId: 'p10000032', source: join(dir, 'files/p10/p10000032/s53189527.txt'), text: 'second' },
    { id: 's51234567', subjectId: 'p11000011', source: join(dir, 'files/p11/p11000011/s51234567.txt'), text: 'third' },
  ]);
});

t.test('readDirReports takes a folder of pNN groups (the files/ folder itself)', async (t) => {
  const dir = t.testdir({ p10: { p10000032: { 's50414267.txt': 'one' } }, p12: { p12000001: { 's50000001.txt': 'two' } } });
  const items = await collect(readDirReports(dir));
  t.same(items.map((item) => (isReject(item) ? item.reason : item.id)), ['s50414267', 's50000001']);
});

t.test('readDirReports rejects everything off the layout as bad_entry, once per thing, and goes on', async (t) => {
  const dir = t.testdir({
    'README.md': 'not a report',
    files: {
      '.DS_Store': 'x',
      p10: {
        'index.html': 'x',
        p10000032: { 's50414267.txt': 'kept', 'notes.md': 'x', 's1.txt': 'x', extra: { 's50414268.txt': 'x' } },
      },
      pxx: { p10000001: { 's50000001.txt': 'x' } },
    },
    other: { 'a.txt': 'x' },
  });
  const items = await collect(readDirReports(dir));
  const summary = items.map((item) => (isReject(item) ? `${item.reason} ${item.source.slice(dir.length + 1)}` : `report ${item.id}`));
  t.same(summary, [
    'bad_entry README.md',
    'bad_entry files/.DS_Store',
    'bad_entry files/p10/index.html',
    'bad_entry files/p10/p10000032/extra',
    'bad_entry files/p10/p10000032/notes.md',
    'bad_entry files/p10/p10000032/s1.txt',
    'report s50414267',
    'bad_entry files/pxx',
    'bad_entry other',
  ]);
  t.match((items[0] as Reject).message, /README\.md.*files\/pNN/);
  t.match((items[3] as Reject).message, /folder .*extra/);
});

t.test('readDirReports rejects too_long and not_utf8 files and follows symlinks', async (t) => {
  const dir = t.testdir({
    files: {
      p10: {
        p10000001: {
          's50000001.txt': 'A'.repeat(5 * 1024 * 1024),
          's50000002.txt': Buffer.from([0x61, 0xff, 0x62]),
          's50000003.txt': 'ok',
        },
      },
    },
    elsewhere: { 'real.txt': 'linked' },
  });
  symlinkSync(join(dir, 'elsewhere/real.txt'), join(dir, 'files/p10/p10000001/s50000004.txt'));
  const items = await collect(readDirReports(join(dir, 'files')));
  t.same(
    items.map((item) => (isReject(item) ? [item.id, item.reason] : [item.id, item.text])),
    [
      ['s50000001', 'too_long'],
      ['s50000002', 'not_utf8'],
      ['s50000003', 'ok'],
      ['s50000004', 'linked'],
    ],
  );
  t.match((items[1] as Reject).message, /byte 1 is not valid UTF-8 \(0xff/);
});

t.test('readDirReports throws MEDSYN_ERR_NOT_FOUND for a missing folder and MEDSYN_ERR_EMPTY_INPUT for an empty one', async (t) => {
  const dir = t.testdir({ empty: {} });
  await t.rejects(collect(readDirReports(join(dir, 'nope'))), { code: 'MEDSYN_ERR_NOT_FOUND', message: /nope/ });
  await t.rejects(collect(readDirReports(join(dir, 'empty'))), { code: 'MEDSYN_ERR_EMPTY_INPUT' });
});
