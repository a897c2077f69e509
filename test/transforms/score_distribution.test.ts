import t from 'tap';
import { ScoreDistribution } from '../../transforms/score_distribution.js';

t.test('ScoreDistribution gives exact min and max and quartiles to one bin, in constant memory', async (t) => {
  const linear = new ScoreDistribution({ low: 0, high: 100, bins: 1000 });
  t.equal(linear.summary(), undefined);
  for (let i = 0; i <= 100; i++) linear.add(i);
  linear.add(NaN);
  const summary = linear.summary()!;
  t.equal(summary.count, 101);
  t.equal(summary.min, 0);
  t.equal(summary.max, 100);
  t.ok(Math.abs(summary.q1 - 25) <= 0.1, `q1 ${summary.q1}`);
  t.ok(Math.abs(summary.median - 50) <= 0.1, `median ${summary.median}`);
  t.ok(Math.abs(summary.q3 - 75) <= 0.1, `q3 ${summary.q3}`);

  const log = new ScoreDistribution({ low: 0, high: 1e6, log: true });
  for (const value of [1, 10, 100, 1000, 10000]) log.add(value);
  const logSummary = log.summary()!;
  t.ok(Math.abs(logSummary.median - 100) / 100 < 0.01, `log median ${logSummary.median}`);
  t.ok(Math.abs(logSummary.q1 - 10) / 10 < 0.01 && Math.abs(logSummary.q3 - 1000) / 1000 < 0.01);

  const clamped = new ScoreDistribution({ low: 0, high: 1 });
  for (const value of [-5, -5, 7, 7]) clamped.add(value);
  const ends = clamped.summary()!;
  t.match(ends, { min: -5, max: 7 }, 'min and max stay exact');
  t.ok(ends.q1 >= 0 && ends.q1 < 0.001 && ends.q3 > 0.999 && ends.q3 <= 1, 'values out of range land in the end bins');
  t.throws(() => new ScoreDistribution({ low: 1, high: 1 }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
  t.throws(() => new ScoreDistribution({ bins: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'bins' });
});
