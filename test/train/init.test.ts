import t from 'tap';
import { constant, fans, glorotUniform, linearUniform, normal, uniform, zeros } from '../../train/init.js';
import { randomSource } from '../../train/_random.js';

const draw = (init: ReturnType<typeof zeros>, shape: number[], seed = 1): number[] => Array.from(init(shape, randomSource(seed, 'p')));

t.test('zeros and constant fill the shape', async (t) => {
  t.same(draw(zeros(), [2, 2]), [0, 0, 0, 0]);
  t.same(draw(constant(0.5), [3]), [0.5, 0.5, 0.5]);
  t.same(draw(constant(2), []), [2]);
  t.throws(() => constant(Number.POSITIVE_INFINITY), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});

t.test('uniform, glorotUniform and linearUniform stay inside their bounds and are deterministic', async (t) => {
  const values = draw(uniform({ low: 2, high: 3 }), [1000]);
  t.ok(values.every((v) => v >= 2 && v < 3));
  t.ok(Math.abs(values.reduce((a, b) => a + b) / 1000 - 2.5) < 0.05, 'mean near the middle');
  t.same(draw(uniform(), [10], 5), draw(uniform(), [10], 5), 'same seed, same values');
  t.not(draw(uniform(), [10], 5).join(), draw(uniform(), [10], 6).join());
  const bound = Math.sqrt(6 / (768 + 512));
  const glorot = draw(glorotUniform(), [768, 512]);
  t.ok(glorot.every((v) => Math.abs(v) <= bound));
  t.ok(glorot.reduce((m, v) => Math.max(m, Math.abs(v)), 0) > 0.99 * bound, 'fills the range');
  const linear = draw(linearUniform(), [768, 4]);
  t.ok(linear.every((v) => Math.abs(v) <= 1 / Math.sqrt(768)));
  const bias = draw(linearUniform({ fanIn: 16 }), [4]);
  t.ok(bias.every((v) => Math.abs(v) <= 0.25));
  t.throws(() => uniform({ low: 1, high: 1 }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
  t.throws(() => linearUniform({ fanIn: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'fanIn' });
  t.throws(() => glorotUniform({ gain: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'gain' });
});

t.test('normal has the asked mean and standard deviation', async (t) => {
  const values = draw(normal({ mean: 1, std: 2 }), [20000]);
  const mean = values.reduce((a, b) => a + b) / values.length;
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
  t.ok(Math.abs(mean - 1) < 0.05, `mean ${mean}`);
  t.ok(Math.abs(sd - 2) < 0.05, `sd ${sd}`);
  t.throws(() => normal({ std: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'std' });
});

t.test('fans reads weights as [in, out]', async (t) => {
  t.same(fans([768, 512]), { fanIn: 768, fanOut: 512 });
  t.same(fans([3, 4, 5]), { fanIn: 12, fanOut: 5 });
  t.same(fans([7]), { fanIn: 7, fanOut: 7 });
  t.same(fans([]), { fanIn: 1, fanOut: 1 });
});
