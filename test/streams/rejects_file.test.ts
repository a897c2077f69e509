import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RejectsFile } from '../../streams/rejects_file.js';

t.test('RejectsFile appears under its final name only when closed', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'rejects.ndjson');
  const rejects = new RejectsFile(path);
  await rejects.write({ id: 's1', source: 'a.csv:2', reason: 'too_short', message: 'one word' });
  await rejects.write({ source: 'a.csv:3', reason: 'bad_row', message: '3 fields, expected 2' });
  t.notOk(existsSync(path), 'not under the final name while writing');
  await rejects.close();
  t.equal(rejects.count, 2);
  const lines = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  t.same(lines.map((line) => line.reason), ['too_short', 'bad_row']);
  t.same(readdirSync(dir), ['rejects.ndjson'], 'no temporary file left');
});

t.test('RejectsFile.discard leaves nothing behind', async (t) => {
  const dir = t.testdir({});
  const rejects = new RejectsFile(join(dir, 'r.ndjson'));
  await rejects.write({ source: 'x', reason: 'empty', message: 'no text' });
  rejects.discard();
  t.same(readdirSync(dir), []);
});

t.test('RejectsFile reports a folder that does not exist as MEDSYN_ERR_WRITE_FAILED', async (t) => {
  const rejects = new RejectsFile('/nonexistent-dir/rejects.ndjson');
  await new Promise((resolve) => setTimeout(resolve, 20));
  await t.rejects(rejects.write({ source: 'x', reason: 'empty', message: 'no text' }), { code: 'MEDSYN_ERR_WRITE_FAILED', message: /Cannot write rejects file/ });
});
