import t from 'tap';
import { median } from '../../bench/_measure.js';

t.test('median is the middle value, or the mean of the two middle values', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([7]), 7);
  const input = [5, 1, 4];
  median(input);
  t.same(input, [5, 1, 4], 'the input is not sorted in place');
});
