import t from 'tap';
import { constantSchedule, warmupCosine } from '../../train/schedule.js';

t.test('warmupCosine rises linearly, then follows a half cosine down to final', async (t) => {
  const lr = warmupCosine({ peak: 1, warmupSteps: 4, totalSteps: 12, final: 0.1 });
  t.same([0, 1, 2, 3].map((s) => lr.at(s)), [0.25, 0.5, 0.75, 1], 'open_clip warm-up: peak·(step+1)/warmup');
  t.equal(lr.at(4), 1, 'the cosine starts at the peak');
  t.ok(Math.abs(lr.at(8) - 0.55) < 1e-12, 'half way down: (peak + final) / 2');
  t.equal(lr.at(12), 0.1);
  t.equal(lr.at(1000), 0.1, 'stays at final after totalSteps');
  for (let s = 4; s < 12; s++) t.ok(lr.at(s + 1) <= lr.at(s), `non-increasing at ${s}`);
  t.same(lr.config, { peak: 1, warmupSteps: 4, totalSteps: 12, final: 0.1 });
  t.equal(lr.name, 'warmup-cosine');
  const noWarmup = warmupCosine({ peak: 2, totalSteps: 10 });
  t.equal(noWarmup.at(0), 2);
  t.equal(noWarmup.at(10), 0);
  t.equal(warmupCosine({ peak: 1, warmupSteps: 5, totalSteps: 5 }).at(5), 0, 'warm-up to the end, then final');
});

t.test('constantSchedule gives the same rate at every step', async (t) => {
  const lr = constantSchedule(0.3);
  t.same([0, 1, 10 ** 6].map((s) => lr.at(s)), [0.3, 0.3, 0.3]);
  t.same(lr.config, { lr: 0.3 });
});

t.test('schedules validate their options', async (t) => {
  t.throws(() => constantSchedule(-1), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'lr' });
  t.throws(() => warmupCosine({ peak: Number.NaN, totalSteps: 10 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'peak' });
  t.throws(() => warmupCosine({ peak: 1, totalSteps: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'totalSteps' });
  t.throws(() => warmupCosine({ peak: 1, totalSteps: 10, warmupSteps: 11 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'warmupSteps' });
  t.throws(() => warmupCosine({ peak: 1, totalSteps: 10, final: -0.1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'final' });
});
