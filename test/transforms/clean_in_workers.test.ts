import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { isReject, type Reject } from '../../records.js';
import { readReportBatches } from '../../streams/read_reports.js';
import { cleanBatchesInWorkers, cleanInWorkers, sliceBatch, type CleanedBatch } from '../../transforms/clean_in_workers.js';
import { cleanReports } from '../../transforms/clean_reports.js';
import { makeZip } from '../streams/_zip.js';

const dir = mkdtempSync(join(tmpdir(), 'medsyn-clean-in-workers-'));

/** Reports whose JSON is hard to get right: escapes, non-ASCII, lone surrogates, U+2028, long lines. */
const hostile = [
  'R\n IMPRESSION: "Quoted" \\ back\\slash and tab\there.\n',
  'R\n IMPRESSION: Épanchement pleural gauche, 5 mm — stable. Line\u2028separator and \u2029 too.\n',
  'R\n IMPRESSION: Lone \ud800 high and \udc00 low surrogates, a pair 😀 and control \u0001\u001f chars.\n',
  `R\n IMPRESSION: ${'Large effusion € '.repeat(3000)}end.\n`,
  'R\n FINDINGS: Only findings here.\n \n',
  '   \n',
  'R\n IMPRESSION: Small left pleural effusion.\n',
];

function writeNdjson(name: string, texts: readonly string[]): string {
  const file = join(dir, name);
  writeFileSync(file, texts.map((text, i) => JSON.stringify({ id: `s${i}`, text })).join('\n') + '\n');
  return file;
}

/** What one thread makes of the same input: JSON lines for clean reports, rejects as they are. */
async function inOneThread(file: string, options: { dedupe?: boolean } = {}): Promise<Array<string | Reject>> {
  const { readReports } = await import('../../streams/read_reports.js');
  const out: Array<string | Reject> = [];
  for await (const item of cleanReports(readReports(file), options)) out.push(isReject(item) ? item : JSON.stringify(item));
  return out;
}

/** The results of `batches` in order, as {@link cleanInWorkers} gives them; throws where the layout of a batch is off. */
function itemsOf(batches: readonly CleanedBatch[]): Array<string | Reject> {
  const out: Array<string | Reject> = [];
  const decoder = new TextDecoder();
  for (const batch of batches) {
    const rejects = new Map(batch.rejects.map(({ index, reject }) => [index, reject]));
    let start = 0;
    for (let i = 0; i < batch.count; i++) {
      const end = batch.ends[i]!;
      const reject = rejects.get(i);
      if (reject) {
        if (end !== start) throw new Error(`reject ${i} has a line`);
        out.push(reject);
      } else {
        const line = decoder.decode(batch.lines.subarray(start, end));
        if (line.indexOf('\n') !== line.length - 1) throw new Error(`result ${i} is not one line: ${line}`);
        out.push(line.slice(0, -1));
      }
      start = end;
    }
    if (start !== batch.lines.byteLength) throw new Error('bytes after the last result');
  }
  return out;
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

t.test('cleanInWorkers serialises hostile text exactly as JSON.stringify does, rejects in place', async (t) => {
  const file = writeNdjson('hostile.ndjson', hostile);
  const expected = await inOneThread(file);
  t.ok(expected.some((item) => typeof item !== 'string'), 'the input has rejects');
  const batches = await all(cleanInWorkers(readReportBatches(file), { workers: 2 }));
  t.same(batches.flat(), expected);
  const bytes = await all(cleanBatchesInWorkers(readReportBatches(file), { workers: 1, mainThread: true }));
  t.same(itemsOf(bytes), expected, 'the same as bytes, with the main thread cleaning too');
});

t.test('cleanBatchesInWorkers on a zip: the main thread and a worker share the batches, in order', async (t) => {
  const entries = [];
  for (let i = 0; i < 2000; i++) {
    const study = `s${String(50000000 + i)}`;
    const text = i % 97 === 5 ? '  \n' : `FINAL REPORT\n IMPRESSION: ${i % 3 === 0 ? 'Small left' : 'Moderate right'} pleural effusion ${i % 50}.\n`;
    entries.push({ name: `files/p10/p10000${String(100 + (i % 7))}/${study}.txt`, data: text });
  }
  entries.splice(700, 0, { name: 'files/../escape.txt', data: 'x' });
  const zip = join(dir, 'reports.zip');
  writeFileSync(zip, makeZip(entries));
  for (const dedupe of [false, true]) {
    const expected = await inOneThread(zip, { dedupe });
    const got = itemsOf(await all(cleanBatchesInWorkers(readReportBatches(zip), { workers: 1, mainThread: true, dedupe })));
    t.same(got, expected, `dedupe ${dedupe}: the same results as one thread`);
    t.ok(got.some((item) => typeof item !== 'string' && item.reason === 'bad_entry'), 'the bad entry is a reject in place');
    if (dedupe) t.ok(got.some((item) => typeof item !== 'string' && item.reason === 'duplicate'), 'duplicates found across batches');
  }
});

t.test('cleanBatchesInWorkers under onError fail yields what came before the first reject, then throws', async (t) => {
  const file = writeNdjson('fail.ndjson', ['R\n IMPRESSION: Small effusion.\n', 'R\n IMPRESSION: No pneumothorax.\n', '  ', 'R\n IMPRESSION: Edema.\n']);
  const seen: CleanedBatch[] = [];
  await t.rejects(
    (async () => {
      for await (const batch of cleanBatchesInWorkers(readReportBatches(file), { workers: 1, onError: 'fail' })) seen.push(batch);
    })(),
    { code: 'MEDSYN_ERR_REJECTED' },
  );
  t.equal(seen.length, 1);
  t.equal(seen[0]!.count, 2);
  t.equal(seen[0]!.rejects.length, 0);
});

t.test('sliceBatch keeps the first results with their lines and rejects', async (t) => {
  const encoder = new TextEncoder();
  const reject: Reject = { source: 'x', reason: 'empty', message: 'no text' };
  const batch: CleanedBatch = {
    count: 3,
    lines: encoder.encode('{"a":1}\n{"b":2}\n'),
    ends: Uint32Array.from([8, 8, 16]),
    rejects: [{ index: 1, reject }],
  };
  const two = sliceBatch(batch, 2);
  t.equal(two.count, 2);
  t.equal(new TextDecoder().decode(two.lines), '{"a":1}\n');
  t.same(two.rejects, [{ index: 1, reject }]);
  const one = sliceBatch(batch, 1);
  t.same(one.rejects, []);
  t.equal(sliceBatch(batch, 0).lines.byteLength, 0);
  t.equal(sliceBatch(batch, 5), batch, 'more than there is: the batch itself');
});

