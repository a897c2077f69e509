import t from 'tap';
import { numpyArange, numpyLinspace, roundHalfEven, spacedTimesteps, trainingSchedule } from '../../../models/schedulers/_betas.js';
import { resolveSchedulerConfig } from '../../../models/schedulers/_config.js';

const schedule = (config: Record<string, unknown>) => trainingSchedule(resolveSchedulerConfig('ddim', config));

t.test('trainingSchedule gives torch’s float32 alphas_cumprod for each beta_schedule', async (t) => {
  // Reference values: torch.cumprod(1 − betas) in float32 with diffusers' beta formulas, at timesteps 0, 1, 499, 998, 999.
  const cases: [Record<string, unknown>, number[]][] = [
    [{ beta_schedule: 'linear' }, [0.9998999834060669, 0.9997800588607788, 0.07858724147081375, 4.118194556212984e-5, 4.0358307160204276e-5]],
    [{ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 }, [0.9991499781608582, 0.9982960224151611, 0.2776694595813751, 0.0047166962176561356, 0.0046600960195064545]],
    [{ beta_schedule: 'squaredcos_cap_v2' }, [0.9999586939811707, 0.9999125599861145, 0.4938434660434723, 2.428766265438753e-6, 2.4287349909002387e-9]],
    [{ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, rescale_betas_zero_snr: true }, [0.9991499781608582, 0.9982334971427917, 0.2423589527606964, 1.9678900287090073e-7, 0]],
  ];
  for (const [config, expected] of cases) {
    const { alphasCumprod } = schedule(config);
    t.equal(alphasCumprod.length, 1000);
    // Zero terminal SNR subtracts nearly equal float32 values at the end: relative 1e-4 there.
    const tolerance = config.rescale_betas_zero_snr ? 1e-4 : 2e-6;
    [0, 1, 499, 998, 999].forEach((timestep, i) => {
      t.ok(Math.abs(alphasCumprod[timestep] - expected[i]) <= tolerance * expected[i] + 1e-12, `${JSON.stringify(config)} ᾱ[${timestep}] = ${alphasCumprod[timestep]} ≈ ${expected[i]}`);
    });
  }
  const trained = schedule({ num_train_timesteps: 3, trained_betas: [0.1, 0.2, 0.5] });
  const [a, b] = [Math.fround(0.9), Math.fround(0.8)];
  t.same(Array.from(trained.alphasCumprod), [a, Math.fround(a * b), Math.fround(a * b * 0.5)]);
});

t.test('numpyLinspace, numpyArange and roundHalfEven round as numpy does', async (t) => {
  t.same(numpyLinspace(0, 999, 11).map(roundHalfEven), [0, 100, 200, 300, 400, 500, 599, 699, 799, 899, 999]);
  t.same(numpyLinspace(0, 999, 1), [0]);
  t.equal(numpyLinspace(0, 1, 50).at(-1), 1);
  t.same([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, 2.5001].map(roundHalfEven), [0, 2, 2, -0, -2, 2, 3]);
  // np.arange(1000, 0, -1000/61) has 62 values; the last is a rounding residue near 0.
  const values = numpyArange(1000, 0, -1000 / 61);
  t.equal(values.length, 62);
  t.ok(Math.abs(values[61]) < 1e-9);
  t.same(numpyArange(10, 0, -2.5), [10, 7.5, 5, 2.5]);
  t.same(numpyArange(0, 1, 1), [0]);
});

t.test('spacedTimesteps honours steps_offset only with leading spacing', async (t) => {
  const base = { num_train_timesteps: 1000, steps_offset: 3 };
  t.same(spacedTimesteps({ ...base, timestep_spacing: 'leading' }, 4), [3, 253, 503, 753]);
  t.same(spacedTimesteps({ ...base, timestep_spacing: 'linspace' }, 4), [0, 333, 666, 999]);
  t.same(spacedTimesteps({ ...base, timestep_spacing: 'trailing' }, 4), [249, 499, 749, 999]);
});
