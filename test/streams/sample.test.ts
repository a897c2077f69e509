import t from 'tap';
import { MAX_KEY_LENGTH, sanitizeKey } from '../../streams/sample.js';

t.test('sanitizeKey keeps ASCII letters, digits, _ and - and turns anything else into _', async (t) => {
  t.equal(sanitizeKey('s50414267'), 's50414267');
  t.equal(sanitizeKey('p10_s5-v2'), 'p10_s5-v2');
  t.equal(sanitizeKey('p10/s5.v2'), 'p10_s5_v2', 'no folder, no extension split');
  t.equal(sanitizeKey('a b\tc'), 'a_b_c');
  t.equal(sanitizeKey('résumé'), 'r_sum_');
  t.equal(sanitizeKey('x😀y'), 'x_y', 'one _ per code point');
  t.equal(sanitizeKey('..'), '__');
});

t.test('sanitizeKey gives undefined for an empty key or one over MAX_KEY_LENGTH', async (t) => {
  t.equal(sanitizeKey(''), undefined);
  t.equal(sanitizeKey('k'.repeat(MAX_KEY_LENGTH)), 'k'.repeat(MAX_KEY_LENGTH));
  t.equal(sanitizeKey('k'.repeat(MAX_KEY_LENGTH + 1)), undefined);
});
