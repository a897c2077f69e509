import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { formatCleanSummary, runClean } from '../../transforms/run_clean.js';

const reportsDir = new URL('../../fixtures/reports', import.meta.url).pathname;

async function run(options: Parameters<typeof runClean>[2]) {
  const out = new PassThrough();
  let text = '';
  out.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const summary = await runClean(reportsDir, out, { workers: 0, ...options });
  return { summary, lines: text.trim().split('\n').filter(Boolean) };
}

t.test('runClean writes clean reports, counts rejects by reason and writes the rejects file', async (t) => {
  const dir = t.testdir({});
  const { summary, lines } = await run({ rejects: join(dir, 'rejects.ndjson') });
  t.match(summary, { read: 26, cleaned: 23, rejectedTotal: 3, rejected: { no_section: 2, too_short: 1 } });
  t.equal(lines.length, 23);
  t.equal(readFileSync(join(dir, 'rejects.ndjson'), 'utf8').trim().split('\n').length, 3);
  t.match(formatCleanSummary(summary), /^23 cleaned, 3 rejected \(no_section 2, too_short 1\) of 26 read in \d+\.\d\d s \(\d+ reports\/s\)$/);
});

t.test('runClean stops after limit records read, rejects included', async (t) => {
  const { summary, lines } = await run({ limit: 5 });
  t.equal(summary.read, 5);
  t.equal(lines.length + summary.rejectedTotal, 5);
  await t.rejects(run({ limit: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'limit' });
  await t.rejects(run({ workers: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'workers' });
});

t.test('runClean keeps the rejects of a run that fails, and leaves no file when there were none', async (t) => {
  const dir = t.testdir({ 'broken.csv': 'id,text\ns1,"R\n IMPRESSION: Clear lungs."\ns2,a,b\ns3,"unterminated\n' });
  await t.rejects(runClean(join(dir, 'broken.csv'), new PassThrough().resume(), { workers: 0, rejects: join(dir, 'r.ndjson') }), {
    code: 'MEDSYN_ERR_BAD_CSV',
  });
  t.match(readFileSync(join(dir, 'r.ndjson'), 'utf8'), /"reason":"bad_row"/, 'the reject read before the failure');
  await t.rejects(runClean(reportsDir, new PassThrough().resume(), { workers: 0, onError: 'fail', rejects: join(dir, 'none.ndjson') }), {
    code: 'MEDSYN_ERR_REJECTED',
  });
  t.notOk(existsSync(join(dir, 'none.ndjson')), 'the failing record is the error, not a reject: no file');
  t.same(readdirSync(dir).sort(), ['broken.csv', 'r.ndjson'], 'no temporary file left');
});

t.test('runClean keeps one partition, the same on worker threads as in one thread, and the partitions add up to the whole', async (t) => {
  const whole = await run({});
  let total = 0;
  for (let index = 0; index < 3; index++) {
    const inProcess = await run({ partition: { index, count: 3 } });
    const onWorkers = await run({ partition: { index, count: 3 }, workers: 2 });
    t.same(onWorkers.lines, inProcess.lines, `partition ${index}: workers and one thread agree`);
    t.equal(onWorkers.summary.rejectedTotal, inProcess.summary.rejectedTotal);
    total += inProcess.lines.length;
  }
  t.equal(total, whole.lines.length);
});
