import t from 'tap';
import { shuffleBuffer } from '../../streams/shuffle_buffer.js';
import { collect } from './_chunks.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

t.test('shuffleBuffer yields a permutation of its input, the same for the same seed', async (t) => {
  const first = await collect(shuffleBuffer(range(1000), { size: 100, seed: 7 }));
  t.same([...first].sort((a, b) => a - b), range(1000), 'nothing lost, nothing twice');
  t.not(first.join(), range(1000).join(), 'the order changed');
  t.same(await collect(shuffleBuffer(range(1000), { size: 100, seed: 7 })), first, 'same seed, same order');
  t.not((await collect(shuffleBuffer(range(1000), { size: 100, seed: 8 }))).join(), first.join(), 'another seed, another order');
});

t.test('shuffleBuffer holds at most size items: nothing comes out before it is full, nothing moves far ahead', async (t) => {
  const out = await collect(shuffleBuffer(range(5000), { size: 50, seed: 1 }));
  // An item cannot come out before the buffer has taken it in.
  out.forEach((item, position) => {
    if (item > position + 50) t.fail(`item ${item} came out at ${position}`);
  });
  t.pass('no item came out before it could have entered the buffer');
});

t.test('shuffleBuffer passes items through with size 0 or 1, and checks its options', async (t) => {
  t.same(await collect(shuffleBuffer(range(10), { size: 0 })), range(10));
  t.same(await collect(shuffleBuffer(range(10), { size: 1 })), range(10));
  t.same(await collect(shuffleBuffer([], { size: 10 })), []);
  t.same((await collect(shuffleBuffer(range(5), { size: 100 }))).sort(), range(5), 'input shorter than the buffer');
  await t.rejects(collect(shuffleBuffer(range(3), { size: -1 })), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'size' });
  await t.rejects(collect(shuffleBuffer(range(3), { size: 1.5 })), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});
