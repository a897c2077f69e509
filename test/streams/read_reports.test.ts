import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import t from 'tap';
import { isReject, type Report } from '../../records.js';
import { readReports } from '../../streams/read_reports.js';
import { chunked, collect } from './_chunks.js';
import { makeZip } from './_zip.js';

const ZIP = makeZip([
  { name: 'files/' },
  { name: 'files/p10/p10000032/s50414267.txt', data: 'FINAL REPORT\n IMPRESSION: clear.\n' },
  { name: '../escape.txt', data: 'x' },
  { name: 'files/p10/p10000032/s53189527.txt', data: 'second' },
]);
const CSV = 'id,text\r\ns1,"first\r\nreport"\r\ns2,second\r\n';
const NDJSON = '{"id":"s1","text":"first"}\n{"id":"s2","text":"second"}\n';

const ids = (items: Array<{ id?: string; reason?: string }>): string[] => items.map((item) => item.reason ?? item.id ?? '?');

t.test('readReports picks the reader from the name', async (t) => {
  const dir = t.testdir({
    'mimic-cxr-reports.zip': ZIP,
    'reports.csv': CSV,
    'reports.ndjson': NDJSON,
    'reports.jsonl': NDJSON,
    'p10000032': { 's50414267.txt': 'one report' },
    tree: { files: { p10: { p10000032: { 's50414267.txt': 'in a tree' } } } },
  });
  t.same(ids(await collect(readReports(join(dir, 'mimic-cxr-reports.zip')))), ['s50414267', 'bad_entry', 's53189527']);
  const csv = await collect(readReports(join(dir, 'reports.csv')));
  t.same(csv, [
    { id: 's1', source: `${join(dir, 'reports.csv')}:2`, text: 'first\r\nreport' },
    { id: 's2', source: `${join(dir, 'reports.csv')}:4`, text: 'second' },
  ]);
  t.same(ids(await collect(readReports(join(dir, 'reports.ndjson')))), ['s1', 's2']);
  t.same(ids(await collect(readReports(join(dir, 'reports.jsonl')))), ['s1', 's2']);
  t.same(await collect(readReports(join(dir, 'p10000032/s50414267.txt'))), [
    { id: 's50414267', subjectId: 'p10000032', source: join(dir, 'p10000032/s50414267.txt'), text: 'one report' },
  ]);
  t.same(ids(await collect(readReports(join(dir, 'tree')))), ['s50414267']);
});

t.test('readReports looks at the first bytes when the name does not tell, and obeys an explicit format', async (t) => {
  const dir = t.testdir({ 'zip.bin': ZIP, 'rows.dat': CSV, 'lines.log': `\ufeff  \n${NDJSON}`, 'notes.txt': CSV });
  t.same(ids(await collect(readReports(join(dir, 'zip.bin')))), ['s50414267', 'bad_entry', 's53189527']);
  t.same(ids(await collect(readReports(join(dir, 'rows.dat')))), ['s1', 's2']);
  t.same(ids(await collect(readReports(join(dir, 'lines.log')))), ['s1', 's2']);
  t.same(ids(await collect(readReports(join(dir, 'notes.txt'), { format: 'csv' }))), ['s1', 's2']);
  t.same(ids(await collect(readReports(join(dir, 'notes.txt')))), ['notes']);
});

t.test('readReports reads CSV and NDJSON on stdin in odd chunks without losing the peeked bytes', async (t) => {
  for (const size of [1, 7]) {
    const csv = await collect(readReports('-', { stdin: chunked(`\ufeff${CSV}`, size) }));
    t.same(csv, [
      { id: 's1', source: '-:2', text: 'first\r\nreport' },
      { id: 's2', source: '-:4', text: 'second' },
    ]);
    const ndjson = await collect(readReports('-', { stdin: chunked(`\ufeff \r\n${NDJSON}`, size) }));
    t.same(ndjson, [
      { id: 's1', source: '-:2', text: 'first' },
      { id: 's2', source: '-:3', text: 'second' },
    ]);
  }
});

t.test('readReports spools a zip on stdin to a temporary file and deletes it, also on error and early stop', async (t) => {
  const tmpDir = t.testdir({});
  const items = await collect(readReports('-', { stdin: chunked(ZIP, 7), tmpDir }));
  t.same(ids(items), ['s50414267', 'bad_entry', 's53189527']);
  t.equal(items[0].source, '-:files/p10/p10000032/s50414267.txt');
  t.same(readdirSync(tmpDir), [], 'spool deleted');

  await t.rejects(collect(readReports('-', { stdin: chunked(ZIP.subarray(0, ZIP.byteLength - 10), 64), tmpDir })), {
    code: 'MEDSYN_ERR_CORRUPT_ZIP',
    message: /stdin/,
  });
  t.same(readdirSync(tmpDir), [], 'spool deleted after an error');

  for await (const item of readReports('-', { stdin: chunked(ZIP, 64), tmpDir })) {
    t.equal((item as Report).id, 's50414267');
    break;
  }
  t.same(readdirSync(tmpDir), [], 'spool deleted after an early stop');

  await t.rejects(collect(readReports('-', { stdin: chunked(ZIP, 64), tmpDir: join(tmpDir, 'missing') })), {
    code: 'MEDSYN_ERR_WRITE_FAILED',
    message: /Cannot spool the zip on stdin/,
  });
});

t.test('readReports yields the first record of a stream before the stream ends', async (t) => {
  for (const [format, first] of [
    ['ndjson', '{"id":"s1","text":"a"}\n'],
    ['csv', 'id,text\ns1,a\n'],
  ] as const) {
    const stdin = new PassThrough();
    stdin.write(first);
    const reports = readReports('-', { stdin });
    const next = await reports.next();
    t.match(next.value, { id: 's1', text: 'a' }, format);
    stdin.end();
    t.same(await collect(reports), []);
  }
});

t.test('readReports throws MEDSYN_ERR_NOT_FOUND naming a path that does not exist', async (t) => {
  const missing = join(t.testdir({}), 'no-such-reports.csv');
  await t.rejects(collect(readReports(missing)), { code: 'MEDSYN_ERR_NOT_FOUND', file: missing, message: /no-such-reports\.csv: no such file/ });
});

t.test('readReports throws MEDSYN_ERR_EMPTY_INPUT for an empty file or stdin', async (t) => {
  const dir = t.testdir({ 'empty.csv': '', 'empty.zip': '' });
  await t.rejects(collect(readReports(join(dir, 'empty.csv'))), { code: 'MEDSYN_ERR_EMPTY_INPUT', message: /empty\.csv/ });
  await t.rejects(collect(readReports(join(dir, 'empty.zip'))), { code: 'MEDSYN_ERR_EMPTY_INPUT' });
  await t.rejects(collect(readReports('-', { stdin: Readable.from([]) })), { code: 'MEDSYN_ERR_EMPTY_INPUT', message: /stdin/ });
});

t.test('readReports throws MEDSYN_ERR_UNKNOWN_FORMAT with a --format hint', async (t) => {
  const gzip = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0]);
  const dir = t.testdir({ 'reports.csv.gz': gzip });
  await t.rejects(collect(readReports(join(dir, 'reports.csv.gz'))), { code: 'MEDSYN_ERR_UNKNOWN_FORMAT', message: /gzip.*--format/ });
  const stdin = new PassThrough();
  stdin.write(gzip);
  await t.rejects(collect(readReports('-', { stdin })), { code: 'MEDSYN_ERR_UNKNOWN_FORMAT', message: /stdin/ });
  t.ok(stdin.destroyed, 'stdin let go of, though never read to its end');
});

t.test('readReports refuses formats that cannot read the input, and bad options', async (t) => {
  const dir = t.testdir({ 'a.csv': CSV, sub: {} });
  await t.rejects(collect(readReports(join(dir, 'sub'), { format: 'csv' })), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'format' });
  await t.rejects(collect(readReports(join(dir, 'a.csv'), { format: 'dir' })), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'format' });
  await t.rejects(collect(readReports('-', { format: 'txt', stdin: chunked('text', 2) })), {
    code: 'MEDSYN_ERR_INVALID_OPTION',
    message: /file name/,
  });
  await t.rejects(collect(readReports('-', { format: 'xlsx' as 'csv' })), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'format' });
  await t.rejects(collect(readReports(join(dir, 'a.csv'), { textColumn: '' })), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'textColumn' });
  await t.rejects(collect(readReports(join(dir, 'a.csv'), { maxReportBytes: 0 })), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'maxReportBytes' });
  await t.rejects(collect(readReports('')), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'input' });
});

t.test('readReports passes CSV column options and limits to the readers', async (t) => {
  const dir = t.testdir({ 'n.csv': 'study_id,report\ns1,abcdef\ns2,abc\n' });
  const items = await collect(readReports(join(dir, 'n.csv'), { idColumn: 'study_id', textColumn: 'report', maxReportBytes: 4 }));
  t.same(items.map((item) => (isReject(item) ? item.reason : item.id)), ['too_long', 's2']);
});

t.test('readReports reads a FIFO once, detecting its format from the first bytes', async (t) => {
  const dir = t.testdir({});
  const fifo = join(dir, 'pipe');
  if (spawnSync('mkfifo', [fifo]).status !== 0) {
    t.pass('no mkfifo here: skipped');
    return;
  }
  const writer = spawn('sh', ['-c', 'cat > "$0"', fifo], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = once(writer, 'exit');
  writer.stdin.end(NDJSON);
  t.same(ids(await collect(readReports(fifo))), ['s1', 's2']);
  await exited;
});
