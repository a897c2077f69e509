import t from 'tap';
import { isCleanReportJson, readCleanNdjson } from '../../streams/clean_ndjson.js';
import { chunked, collect } from './_chunks.js';

const good = {
  id: 's1',
  subjectId: 'p1',
  source: 'reports.zip:files/p10/p1/s1.txt',
  sections: { impression: 'Small left effusion.' },
  sectionUsed: 'impression',
  prompt: 'Small left effusion.',
  caption: 'Small left effusion.',
  labels: { pleuralEffusion: 1 },
  attributes: { pleuralEffusion: { laterality: 'left', size: 'small' } },
};

t.test('readCleanNdjson reads what medsyn-clean writes, in any chunk size, and fills in caption and source', async (t) => {
  const input = `${JSON.stringify(good)}\n\n${JSON.stringify({ id: 's2', prompt: 'No effusion.', labels: { pleuralEffusion: 0 }, extra: 1 })}\n`;
  for (const size of [1, 7, 4096]) {
    t.same(await collect(readCleanNdjson(chunked(input, size), { name: 'clean.ndjson' })), [
      good,
      { id: 's2', source: 'clean.ndjson:3', sections: {}, sectionUsed: 'custom', prompt: 'No effusion.', caption: 'No effusion.', labels: { pleuralEffusion: 0 }, attributes: {} },
    ]);
  }
});

t.test('readCleanNdjson rejects each bad line with its reason and goes on', async (t) => {
  const lines = [
    '{"id":"s1"',
    '[1]',
    JSON.stringify({ prompt: 'x', labels: {} }),
    JSON.stringify({ id: ' ', prompt: 'x', labels: {} }),
    JSON.stringify({ id: 's3', labels: {} }),
    JSON.stringify({ id: 's4', prompt: 'x', labels: { effusion: 1 } }),
    JSON.stringify({ id: 's5', prompt: 'x', labels: { edema: 2 } }),
    JSON.stringify({ id: 's6', prompt: 'x', labels: {}, attributes: { pneumothorax: { laterality: 'up' } } }),
    JSON.stringify({ id: 's7', prompt: 'x', labels: {}, sectionUsed: 'abstract' }),
    JSON.stringify({ id: 's8', prompt: '  ', labels: {} }),
    JSON.stringify({ id: 's9', prompt: 'fine', labels: {} }),
  ];
  const items = await collect(readCleanNdjson(chunked(lines.join('\n'), 5)));
  t.match(items, [
    { reason: 'bad_json', source: '-:1' },
    { reason: 'bad_row', message: /not an object/ },
    { reason: 'bad_row', message: /no "id"/ },
    { reason: 'missing_id' },
    { reason: 'bad_row', id: 's3', message: /no "prompt"/ },
    { reason: 'bad_row', id: 's4', message: /labels\.effusion/ },
    { reason: 'bad_row', id: 's5', message: /1, 0 or -1/ },
    { reason: 'bad_row', id: 's6', message: /laterality/ },
    { reason: 'bad_row', id: 's7', message: /sectionUsed/ },
    { reason: 'no_prompt', id: 's8' },
    { id: 's9', prompt: 'fine' },
  ]);
});

t.test('isCleanReportJson tells cleaned reports from raw ones', async (t) => {
  t.ok(isCleanReportJson(good));
  t.notOk(isCleanReportJson({ id: 's1', text: 'FINDINGS: ...' }));
  t.notOk(isCleanReportJson([good]));
  t.notOk(isCleanReportJson(null));
});
