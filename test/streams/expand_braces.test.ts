import t from 'tap';
import { expandBraces } from '../../streams/expand_braces.js';

t.test('expandBraces expands zero-padded numeric ranges as webdataset shard lists write them', async (t) => {
  const names = expandBraces('out/shard-{000000..000099}.tar');
  t.equal(names.length, 100);
  t.equal(names[0], 'out/shard-000000.tar');
  t.equal(names[99], 'out/shard-000099.tar');
  t.same(expandBraces('s{8..11}'), ['s8', 's9', 's10', 's11'], 'no padding without a leading zero');
  t.same(expandBraces('s{08..11}'), ['s08', 's09', 's10', 's11']);
  t.same(expandBraces('{3..1}'), ['3', '2', '1'], 'descending');
  t.same(expandBraces('{0..10..5}'), ['0', '5', '10'], 'with a step');
  t.same(expandBraces('{-1..1}'), ['-1', '0', '1']);
});

t.test('expandBraces expands lists, letters, nested and several groups left to right', async (t) => {
  t.same(expandBraces('{train,val}-{0..1}.tar'), ['train-0.tar', 'train-1.tar', 'val-0.tar', 'val-1.tar']);
  t.same(expandBraces('{a..c}'), ['a', 'b', 'c']);
  t.same(expandBraces('x{a,b{1..2}}y'), ['xay', 'xb1y', 'xb2y']);
  t.same(expandBraces('https://host/{a,b}.tar'), ['https://host/a.tar', 'https://host/b.tar']);
  t.same(expandBraces('plain.tar'), ['plain.tar']);
  t.same(expandBraces('{single}.tar'), ['{single}.tar'], 'a group without , or .. stays as written');
  t.same(expandBraces('{}'), ['{}']);
});

t.test('expandBraces refuses unbalanced braces and patterns that expand to too many names', async (t) => {
  t.throws(() => expandBraces('shard-{0..9.tar'), { code: 'MEDSYN_ERR_INVALID_OPTION', message: /unbalanced '\{'/u });
  t.throws(() => expandBraces('shard-0..9}.tar'), { code: 'MEDSYN_ERR_INVALID_OPTION', message: /unbalanced '\}'/u });
  t.throws(() => expandBraces('{0..99999999}'), { code: 'MEDSYN_ERR_INVALID_OPTION', message: /more than 1000000/u });
  t.throws(() => expandBraces('{0..999}{0..999}{0..9}'), { code: 'MEDSYN_ERR_INVALID_OPTION' });
  t.equal(expandBraces('{0..9}', { maxResults: 10 }).length, 10);
  t.throws(() => expandBraces('{0..10}', { maxResults: 10 }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});
