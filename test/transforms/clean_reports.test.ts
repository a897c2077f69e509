import t from 'tap';
import { isReject } from '../../records.js';
import { cleanReports } from '../../transforms/clean_reports.js';

const reports = [
  { id: 's1', source: 'a:1', text: 'R\n IMPRESSION: No acute process.\n' },
  { source: 'a:2', reason: 'bad_row' as const, message: '3 fields' },
  { id: 's3', source: 'a:3', text: 'R\n IMPRESSION: No acute process.\n' },
  { id: 's4', source: 'a:4', text: 'R\n IMPRESSION: Small effusion.\n' },
];

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

t.test('cleanReports passes reader rejects on in order and cleans the rest', async (t) => {
  const out = await all(cleanReports(reports));
  t.same(out.map((item) => (isReject(item) ? item.reason : item.id)), ['s1', 'bad_row', 's3', 's4']);
});

t.test('cleanReports with dedupe rejects a prompt seen before, naming the first', async (t) => {
  const out = await all(cleanReports(reports, { dedupe: true }));
  t.match(out[2], { id: 's3', reason: 'duplicate', message: 'same prompt as s1' });
  t.match(out[3], { id: 's4', caption: 'Small effusion.' });
});

t.test('cleanReports with onError fail stops at the first reject', async (t) => {
  const seen: string[] = [];
  await t.rejects(
    (async () => {
      for await (const item of cleanReports(reports, { onError: 'fail' })) if (!isReject(item)) seen.push(item.id);
    })(),
    { code: 'MEDSYN_ERR_REJECTED', message: /a:2 \(bad_row\)/ },
  );
  t.same(seen, ['s1']);
  await t.rejects(all(cleanReports(reports, { onError: 'explode' as 'fail' })), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});
