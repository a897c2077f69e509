import t from 'tap';
import { isReject, type Reject } from '../../records.js';
import { readNdjsonReports } from '../../streams/ndjson_reports.js';
import { chunked, collect } from './_chunks.js';

t.test('readNdjsonReports reads id, text, subjectId and sections, skipping blank lines, in any chunk size', async (t) => {
  const input =
    '\ufeff{"id":"s50414267","subjectId":"p10000032","text":"FINAL REPORT\\n IMPRESSION: clear é","source":"ignored"}\r\n' +
    '\n   \r\n' +
    '{"id":"s2","text":"x","sections":{"impression":"clear","findings":"","lastParagraph":null,"other":"dropped"}}\n' +
    '{"text":"last line without newline","id":"s3"}';
  for (const size of [1, 7, 4096]) {
    t.same(
      await collect(readNdjsonReports(chunked(input, size), { name: 'in.ndjson' })),
      [
        { id: 's50414267', subjectId: 'p10000032', source: 'in.ndjson:1', text: 'FINAL REPORT\n IMPRESSION: clear é' },
        { id: 's2', source: 'in.ndjson:4', text: 'x', sections: { impression: 'clear' } },
        { id: 's3', source: 'in.ndjson:5', text: 'last line without newline' },
      ],
      `chunks of ${size}`,
    );
  }
});

t.test('readNdjsonReports rejects each bad line with its reason and goes on', async (t) => {
  const lines = [
    '{"id":"s1","text":"ok"}',
    '{"id":"s2","text":',
    'not json at all',
    '["s3","text"]',
    '42',
    'null',
    '{"text":"no id"}',
    '{"id":7,"text":"number id"}',
    '{"id":"s4"}',
    '{"id":"s5","text":"x","subjectId":5}',
    '{"id":"s6","text":"x","sections":"impression"}',
    '{"id":"s7","text":"x","sections":{"impression":3}}',
    '{"id":"  ","text":"blank id"}',
    '{"id":"s8","text":"fine"}',
  ];
  const items = await collect(readNdjsonReports(chunked(lines.join('\n'), 7)));
  t.same(
    items.map((item) => (isReject(item) ? `${item.reason}${item.id ? ` ${item.id}` : ''} ${item.source}` : `report ${item.id}`)),
    [
      'report s1',
      'bad_json -:2',
      'bad_json -:3',
      'bad_row -:4',
      'bad_row -:5',
      'bad_row -:6',
      'bad_row -:7',
      'bad_row -:8',
      'bad_row s4 -:9',
      'bad_row s5 -:10',
      'bad_row s6 -:11',
      'bad_row s7 -:12',
      'missing_id -:13',
      'report s8',
    ],
  );
  t.match((items[3] as Reject).message, /an array, not an object/);
  t.match((items[6] as Reject).message, /no "id"/);
  t.match((items[8] as Reject).message, /no "text"/);
});

t.test('readNdjsonReports decodes each line strictly: a line with bad UTF-8 is not_utf8, the next is read', async (t) => {
  const input = Buffer.concat([Buffer.from('{"id":"s1","text":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n{"id":"s2","text":"ok"}\n')]);
  const items = await collect(readNdjsonReports(chunked(input, 3)));
  t.match(items, [{ reason: 'not_utf8', source: '-:1', message: /byte 22/ }, { id: 's2', text: 'ok' }]);
});

t.test('readNdjsonReports rejects a too long text, and a line over maxRecordBytes without holding it', async (t) => {
  const big = 'lung '.repeat(1024 * 1024);
  const input = `{"id":"s1","text":"${big}"}\n{"id":"s2","text":"after"}\n`;
  t.match(await collect(readNdjsonReports(chunked(input, 65536))), [
    { id: 's1', reason: 'too_long', message: /5242880 bytes/ },
    { id: 's2', text: 'after' },
  ]);
  const items = await collect(readNdjsonReports(chunked(input, 65536), { maxReportBytes: 1000, maxRecordBytes: 4096 }));
  t.match(items, [
    { id: 's1', source: '-:1', reason: 'too_long', message: /line -:1: it is 5242901 bytes, over maxRecordBytes 4096/ },
    { id: 's2', text: 'after' },
  ]);
  const noId = await collect(readNdjsonReports(chunked(`{"text":"${big}"}\n`, 65536), { maxRecordBytes: 4096 }));
  t.match(noId, [{ reason: 'too_long' }]);
  t.notOk('id' in noId[0]);
});

t.test('readNdjsonReports yields nothing for empty input and validates its options', async (t) => {
  t.same(await collect(readNdjsonReports(chunked('', 1))), []);
  await t.rejects(collect(readNdjsonReports(chunked('', 1), { maxReportBytes: 0 })), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});
