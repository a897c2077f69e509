import t from 'tap';
import { join } from 'node:path';
import { openCleanInput } from '../../streams/open_clean_input.js';
import { readReports } from '../../streams/read_reports.js';
import { chunked, collect } from './_chunks.js';

const clean = `${JSON.stringify({ id: 's1', prompt: 'No effusion.', labels: { pleuralEffusion: 0 } })}\n`;
const raw = `${JSON.stringify({ id: 's1', text: 'IMPRESSION: No effusion.' })}\n`;

t.test('openCleanInput reads cleaned NDJSON from a file and leaves other files to readReports', async (t) => {
  const dir = t.testdir({ 'clean.ndjson': `\n${clean}`, 'raw.ndjson': raw, 'reports.csv': 'id,text\ns1,x\n', 'data.txt': clean, folder: {} });
  const opened = await openCleanInput(join(dir, 'clean.ndjson'));
  t.equal(opened.kind, 'clean');
  if (opened.kind === 'clean') t.match(await collect(opened.records), [{ id: 's1', prompt: 'No effusion.' }]);
  t.same(await openCleanInput(join(dir, 'raw.ndjson')), { kind: 'raw', input: join(dir, 'raw.ndjson') });
  t.same(await openCleanInput(join(dir, 'reports.csv')), { kind: 'raw', input: join(dir, 'reports.csv') });
  t.same(await openCleanInput(join(dir, 'folder')), { kind: 'raw', input: join(dir, 'folder') });
  t.equal((await openCleanInput(join(dir, 'data.txt'))).kind, 'raw', 'a .txt is a report, whatever it holds');
  t.equal((await openCleanInput(join(dir, 'data.txt'), { format: 'clean' })).kind, 'clean', '--format clean decides');
  t.same(await openCleanInput(join(dir, 'clean.ndjson'), { format: 'csv' }), { kind: 'raw', input: join(dir, 'clean.ndjson') });
  await t.rejects(openCleanInput(join(dir, 'missing.ndjson')), { code: 'MEDSYN_ERR_NOT_FOUND' });
});

t.test('openCleanInput looks at the first line of stdin and loses no byte of it', async (t) => {
  const cleaned = await openCleanInput('-', { stdin: chunked(clean.repeat(3), 5) });
  t.equal(cleaned.kind, 'clean');
  if (cleaned.kind === 'clean') t.equal((await collect(cleaned.records)).length, 3);

  const opened = await openCleanInput('-', { stdin: chunked(raw.repeat(3), 5) });
  t.match(opened, { kind: 'raw', input: '-' });
  if (opened.kind === 'raw') t.match(await collect(readReports(opened.input, { stdin: opened.stdin! })), [{ id: 's1' }, { id: 's1' }, { id: 's1' }]);

  const csv = await openCleanInput('-', { stdin: chunked('id,text\ns1,"IMPRESSION: fine."\n', 3) });
  if (csv.kind === 'raw') t.match(await collect(readReports(csv.input, { stdin: csv.stdin! })), [{ id: 's1', text: 'IMPRESSION: fine.' }]);
  else t.fail('a CSV is raw');
});
