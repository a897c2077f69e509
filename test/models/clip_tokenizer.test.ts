import t from 'tap';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clipTokenizerDefinition, loadClipTokenizer } from '../../models/clip_tokenizer.js';

const fixture = new URL('../../fixtures/tokenizer/', import.meta.url).pathname;

t.test('loadClipTokenizer reads the slow-tokenizer files of a Stable Diffusion export', async (t) => {
  const tokenizer = await loadClipTokenizer(fixture);
  t.equal(tokenizer.maxTokens, 77);
  const vocab = JSON.parse(readFileSync(join(fixture, 'vocab.json'), 'utf8')) as Record<string, number>;
  const ids = tokenizer.encode('No pneumothorax.');
  t.equal(ids[0], vocab['<|startoftext|>'], 'BOS first');
  t.equal(ids[ids.length - 1], vocab['<|endoftext|>'], 'EOS last');
  t.equal(tokenizer.countTokens('No pneumothorax.'), ids.length);
  t.same(tokenizer.encode('NO   Pneumothorax.'), ids, 'lower-cases and collapses white space as CLIP does');
  t.ok(tokenizer.countTokens('1.5 cm') >= 5, 'digits are single pieces');
});

t.test('loadClipTokenizer pads and truncates to 77 with EOS kept last', async (t) => {
  const tokenizer = await loadClipTokenizer(fixture);
  const short = tokenizer.encodePadded('Clear lungs.');
  t.equal(short.length, 77);
  const long = tokenizer.encodePadded('word '.repeat(200));
  t.equal(long.length, 77);
  t.equal(long[76], tokenizer.encode('x').at(-1), 'EOS last when truncated');
});

t.test('loadClipTokenizer gives the same ids from tokenizer.json as from vocab.json + merges.txt', async (t) => {
  const dir = t.testdir({});
  for (const name of ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json']) copyFileSync(join(fixture, name), join(dir, name));
  const vocab = JSON.parse(readFileSync(join(fixture, 'vocab.json'), 'utf8')) as Record<string, number>;
  const merges = readFileSync(join(fixture, 'merges.txt'), 'utf8').split('\n').slice(1).filter(Boolean);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(clipTokenizerDefinition(vocab, merges, {})));
  const slow = await loadClipTokenizer(fixture);
  const fast = await loadClipTokenizer(dir);
  for (const text of ['Moderate right pleural effusion with overlying atelectasis.', 'ET tube 4.5 cm above the carina; NG tube in stomach.']) {
    t.same(fast.encode(text), slow.encode(text), text);
  }
});

t.test('loadClipTokenizer names what is wrong with a folder', async (t) => {
  await t.rejects(loadClipTokenizer('/nonexistent/tokenizer'), { code: 'MEDSYN_ERR_BAD_TOKENIZER', message: /no such folder/ });
  const empty = t.testdir({});
  await t.rejects(loadClipTokenizer(empty), { code: 'MEDSYN_ERR_BAD_TOKENIZER', message: /vocab\.json is missing/ });
  const noMerges = t.testdir({ 'vocab.json': '{"<|startoftext|>":0,"<|endoftext|>":1}' });
  await t.rejects(loadClipTokenizer(noMerges), { code: 'MEDSYN_ERR_BAD_TOKENIZER', message: /merges\.txt is missing/ });
  const badJson = t.testdir({ 'vocab.json': '{', 'merges.txt': '#version: 0.2\n' });
  await t.rejects(loadClipTokenizer(badJson), { code: 'MEDSYN_ERR_BAD_TOKENIZER', message: /not valid JSON/ });
  const noSpecial = t.testdir({ 'vocab.json': '{"a":0}', 'merges.txt': '#version: 0.2\n' });
  await t.rejects(loadClipTokenizer(noSpecial), { code: 'MEDSYN_ERR_BAD_TOKENIZER', message: /special token/ });
});
