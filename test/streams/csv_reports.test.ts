import t from 'tap';
import { isReject, type Reject, type Report } from '../../records.js';
import { readCsvReports } from '../../streams/csv_reports.js';
import { chunked, collect } from './_chunks.js';

const SECTIONED =
  '\ufeffstudy,impression,findings,last_paragraph,comparison\r\n' +
  's50414267,No acute cardiopulmonary process.,"There is no focal consolidation.\nThe heart is normal.",,None.\r\n' +
  's53189527,,,"Single paragraph, with a comma.",\r\n' +
  's53911762,"Says ""small"" effusion.",,,\r\n';

t.test('readCsvReports reads the official sectioned CSV into sections and joined text, in any chunk size', async (t) => {
  for (const size of [1, 7, 4096]) {
    const items = await collect(readCsvReports(chunked(SECTIONED, size), { name: 'mimic_cxr_sectioned.csv' }));
    t.same(
      items,
      [
        {
          id: 's50414267',
          source: 'mimic_cxr_sectioned.csv:2',
          text: 'No acute cardiopulmonary process.\n\nThere is no focal consolidation.\nThe heart is normal.\n\nNone.',
          sections: {
            impression: 'No acute cardiopulmonary process.',
            findings: 'There is no focal consolidation.\nThe heart is normal.',
            comparison: 'None.',
          },
        },
        {
          id: 's53189527',
          source: 'mimic_cxr_sectioned.csv:4',
          text: 'Single paragraph, with a comma.',
          sections: { lastParagraph: 'Single paragraph, with a comma.' },
        },
        {
          id: 's53911762',
          source: 'mimic_cxr_sectioned.csv:5',
          text: 'Says "small" effusion.',
          sections: { impression: 'Says "small" effusion.' },
        },
      ],
      `chunks of ${size}`,
    );
  }
});

t.test('readCsvReports reads a generic CSV with its id and text columns, keeping the text raw', async (t) => {
  const csv = 'text,id,other\n"FINAL REPORT\n IMPRESSION:  Clear.\n",s1,x\n  raw  , s2 ,y\n';
  t.same(await collect(readCsvReports(chunked(csv, 3), { name: 'r.csv' })), [
    { id: 's1', source: 'r.csv:2', text: 'FINAL REPORT\n IMPRESSION:  Clear.\n' },
    { id: 's2', source: 'r.csv:5', text: '  raw  ' },
  ]);
  const named = 'study_id,report\r\ns9,"a\r\nb"\r\n';
  t.same(await collect(readCsvReports(chunked(named, 1), { idColumn: 'study_id', textColumn: 'report' })), [
    { id: 's9', source: '-:2', text: 'a\r\nb' },
  ]);
});

t.test('readCsvReports treats the sectioned header as generic when columns are named', async (t) => {
  const items = await collect(readCsvReports(chunked(SECTIONED, 64), { idColumn: 'study', textColumn: 'findings' }));
  t.same((items[0] as Report).text, 'There is no focal consolidation.\nThe heart is normal.');
  t.notOk('sections' in items[0]);
});

t.test('readCsvReports throws MEDSYN_ERR_MISSING_COLUMN naming the column and the columns found', async (t) => {
  await t.rejects(collect(readCsvReports(chunked('study,report\ns1,x\n', 5), { name: 'n.csv' })), {
    code: 'MEDSYN_ERR_MISSING_COLUMN',
    option: 'id',
    message: /n\.csv: it has no column "id" \(found "study", "report"; .*--id-column/,
  });
  await t.rejects(collect(readCsvReports(chunked('id,txt\ns1,x\n', 5))), { code: 'MEDSYN_ERR_MISSING_COLUMN', option: 'text', message: /stdin/ });
});

t.test('readCsvReports rejects a row with the wrong number of fields as bad_row at its line, and goes on', async (t) => {
  const csv = 'id,text\ns1,one\ns2,two,extra\n\ns3\n"s4","four\nlines"\ns5,five\n';
  for (const size of [1, 7, 100]) {
    const items = await collect(readCsvReports(chunked(csv, size), { name: 'b.csv' }));
    t.same(
      items.map((item) => (isReject(item) ? `${item.reason} ${item.source}` : `${item.id} ${item.source}`)),
      ['s1 b.csv:2', 'bad_row b.csv:3', 'bad_row b.csv:5', 's4 b.csv:6', 's5 b.csv:8'],
      `chunks of ${size}`,
    );
    t.match((items[1] as Reject).message, /has 3 fields where the header has 2/);
  }
});

t.test('readCsvReports rejects an empty id as missing_id and a field with bad UTF-8 as not_utf8', async (t) => {
  const csv = Buffer.concat([
    Buffer.from('id,text\n,orphan text\n  ,blank id\ns2,caf'),
    Buffer.from([0xe9]),
    Buffer.from(' au lait\ns3,fine\n'),
  ]);
  const items = await collect(readCsvReports(chunked(csv, 7), { name: 'u.csv' }));
  t.match(items, [
    { reason: 'missing_id', source: 'u.csv:2' },
    { reason: 'missing_id', source: 'u.csv:3' },
    { reason: 'not_utf8', id: 's2', source: 'u.csv:4', message: /iconv/ },
    { id: 's3', text: 'fine' },
  ]);
});

t.test('readCsvReports rejects a report over maxReportBytes as too_long and reads on, in linear time', async (t) => {
  // 2.5 MB rather than 5: fast-csv parses a quoted field a character at a time (~10 MB/s,
  // slower under coverage); the 5 MB case is in the zip, folder and NDJSON tests.
  const csv = `id,text\ns1,"${'lung '.repeat(512 * 1024)}"\ns2,after\n`;
  const started = performance.now();
  const items = await collect(readCsvReports(chunked(csv, 65536)));
  t.match(items, [{ id: 's1', reason: 'too_long', message: /2621440 bytes is over maxReportBytes 1048576/ }, { id: 's2', text: 'after' }]);
  // About 0.5 s; re-scanning the record from its start with every 64 KiB piece took 2.5 s (and 9 s at 5 MB).
  t.ok(performance.now() - started < 6000, 'no quadratic re-scan of the long record');
});

t.test('readCsvReports throws MEDSYN_ERR_BAD_CSV at an unbalanced quote, after yielding every row before it', async (t) => {
  const csv = 'id,text\ns1,one\ns2,two\ns3,"never closed\ns4,four\n';
  for (const size of [1, 7, 1000]) {
    const seen: string[] = [];
    await t.rejects(
      (async () => {
        for await (const item of readCsvReports(chunked(csv, size), { name: 'q.csv' })) seen.push((item as Report).id);
      })(),
      { code: 'MEDSYN_ERR_BAD_CSV', file: 'q.csv', line: 4, message: /q\.csv: the record starting at line 4 has an unbalanced quote/ },
    );
    t.same(seen, ['s1', 's2'], `chunks of ${size}`);
  }
});

t.test('readCsvReports keeps report text out of its error messages', async (t) => {
  const err = await collect(readCsvReports(chunked('id,text\ns1,"PATIENT SECRET"x\n', 4))).then(
    () => undefined,
    (err: Error) => err,
  );
  t.match(err, { code: 'MEDSYN_ERR_BAD_CSV', message: /closing quote/ });
  t.notMatch(err?.message, /SECRET/);
  t.equal(err?.cause, undefined);
});

t.test('readCsvReports gives up on a record over maxRecordBytes instead of buffering the file', async (t) => {
  const csv = `id,text\ns1,ok\ns2,"${'x'.repeat(3000)}`;
  await t.rejects(collect(readCsvReports(chunked(csv, 100), { maxReportBytes: 100, maxRecordBytes: 1000 })), {
    code: 'MEDSYN_ERR_BAD_CSV',
    line: 3,
    message: /line 3 runs over 1000 bytes \(an unbalanced quote\?/,
  });
});

t.test('readCsvReports throws MEDSYN_ERR_BAD_CSV for duplicate columns and MEDSYN_ERR_EMPTY_INPUT without a header', async (t) => {
  await t.rejects(collect(readCsvReports(chunked('id,id,text\n', 3))), { code: 'MEDSYN_ERR_BAD_CSV', message: /twice.*"id"/ });
  await t.rejects(collect(readCsvReports(chunked('\n\n', 1))), { code: 'MEDSYN_ERR_MISSING_COLUMN', message: /found none/ });
  await t.rejects(collect(readCsvReports(chunked('', 1))), { code: 'MEDSYN_ERR_EMPTY_INPUT' });
});

t.test('readCsvReports validates its options', async (t) => {
  await t.rejects(collect(readCsvReports(chunked('id,text\n', 3), { idColumn: '' })), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'idColumn' });
  await t.rejects(collect(readCsvReports(chunked('id,text\n', 3), { maxRecordBytes: 1.5 })), {
    code: 'MEDSYN_ERR_INVALID_OPTION',
    option: 'maxRecordBytes',
  });
});
