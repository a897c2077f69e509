import t from 'tap';
import { trainingSchedule } from '../../../models/schedulers/_betas.js';
import { resolveSchedulerConfig } from '../../../models/schedulers/_config.js';
import { createDdimScheduler, ddimVariance } from '../../../models/schedulers/ddim_scheduler.js';
import { absStats, combine, dummyModel, dummyNoiseDeter, dummySampleDeter, runLoop } from './_dummy.js';

// diffusers' tests/schedulers/test_scheduler_ddim.py: get_scheduler_config() and full_loop(), 10 steps, eta 0.
const TEST_CONFIG = { num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear', clip_sample: true } as const;
const SD_CONFIG = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', steps_offset: 1, set_alpha_to_one: false, clip_sample: false } as const;

const alphasCumprod = (config: Record<string, unknown>): Float64Array => trainingSchedule(resolveSchedulerConfig('ddim', config)).alphasCumprod;

t.test('createDdimScheduler reproduces the full loops of diffusers test_scheduler_ddim.py', async (t) => {
  const cases: [Record<string, unknown>, number, number, string][] = [
    [{}, 172.0067, 0.223967, 'test_full_loop_no_noise'],
    [{ prediction_type: 'v_prediction' }, 52.5302, 0.0684, 'test_full_loop_with_v_prediction'],
    [{ set_alpha_to_one: true, beta_start: 0.01 }, 149.8295, 0.1951, 'test_full_loop_with_set_alpha_to_one'],
    [{ set_alpha_to_one: false, beta_start: 0.01 }, 149.0784, 0.1941, 'test_full_loop_with_no_set_alpha_to_one'],
  ];
  for (const [extra, sum, mean, name] of cases) {
    const result = absStats(runLoop(createDdimScheduler({ ...TEST_CONFIG, ...extra }, { steps: 10 }), dummySampleDeter()));
    t.ok(Math.abs(result.sum - sum) < 1e-2, `${name}: sum ${result.sum} ≈ ${sum}`);
    t.ok(Math.abs(result.mean - mean) < 1e-3, `${name}: mean ${result.mean} ≈ ${mean}`);
  }
});

t.test('createDdimScheduler reproduces test_full_loop_with_noise (the loop started at call 8 from a noised sample)', async (t) => {
  const scheduler = createDdimScheduler(TEST_CONFIG, { steps: 10 });
  const ac = alphasCumprod(TEST_CONFIG)[scheduler.timesteps[8]];
  const noised = combine(dummySampleDeter(), dummyNoiseDeter(), (x, z) => Math.sqrt(ac) * x + Math.sqrt(1 - ac) * z);
  const result = absStats(runLoop(scheduler, noised, { from: 8 }));
  t.ok(Math.abs(result.sum - 354.5418) < 1e-2, `sum ${result.sum}`);
  t.ok(Math.abs(result.mean - 0.4616) < 1e-3, `mean ${result.mean}`);
  // A loop started one call later is far off: the start index matters.
  const later = absStats(runLoop(createDdimScheduler(TEST_CONFIG, { steps: 10 }), noised, { from: 9 }));
  t.ok(Math.abs(later.sum - 354.5418) > 1e-2);
});

t.test('the published sums move beyond the tolerance when a timestep, the clipping or the schedule is off', async (t) => {
  const sum = (config: Record<string, unknown>, steps = 10): number =>
    absStats(runLoop(createDdimScheduler({ ...TEST_CONFIG, ...config }, { steps }), dummySampleDeter())).sum;
  t.ok(Math.abs(sum({ steps_offset: 1 }) - 172.0067) > 1e-2);
  t.ok(Math.abs(sum({}, 11) - 172.0067) > 1e-2);
  t.ok(Math.abs(sum({ clip_sample_range: 0.1 }) - 172.0067) > 1e-2);
  t.ok(Math.abs(sum({ beta_end: 0.0201 }) - 172.0067) > 1e-2);
});

t.test('ddimVariance gives the values of diffusers test_variance', async (t) => {
  const ac = alphasCumprod(TEST_CONFIG);
  for (const [step, previous, expected] of [
    [420, 400, 0.14771],
    [980, 960, 0.3246],
    [487, 486, 0.00979],
    [999, 998, 0.02],
  ] as const) {
    t.ok(Math.abs(ddimVariance(ac[step], ac[previous]) - expected) < 1e-5, `${step} → ${previous}`);
  }
  t.equal(ddimVariance(ac[0], ac[0]), 0);
});

t.test('DDIM with eta > 0: zero noise gives the deterministic part, and noise adds exactly η σ_t z', async (t) => {
  const eta = 0.7;
  const ac = alphasCumprod(SD_CONFIG);
  const scheduler = createDdimScheduler(SD_CONFIG, { steps: 50, eta });
  t.equal(scheduler.stochastic, true);
  t.equal(createDdimScheduler(SD_CONFIG, { steps: 50 }).stochastic, false);
  const sample = dummySampleDeter();
  const zero = new Float32Array(sample.length);
  const z1 = dummyNoiseDeter();
  const z2 = dummyNoiseDeter().map((v, i) => (i % 2 ? v : -v));
  for (const index of [0, 17, 49]) {
    const timestep = scheduler.timesteps[index];
    const output = dummyModel(sample, timestep);
    // Independently: DDIM's equation (12) with σ_t from equation (16).
    const a = ac[timestep];
    const previous = timestep - 20;
    const aPrevious = previous >= 0 ? ac[previous] : ac[0];
    const sigma = eta * Math.sqrt(((1 - aPrevious) / (1 - a)) * (1 - a / aPrevious));
    const deterministic = scheduler.step(output, index, sample, zero);
    for (let i = 0; i < sample.length; i += 37) {
      const original = (sample[i] - Math.sqrt(1 - a) * output[i]) / Math.sqrt(a);
      const expected = Math.sqrt(aPrevious) * original + Math.sqrt(1 - aPrevious - sigma * sigma) * output[i];
      t.ok(Math.abs(deterministic[i] - expected) < 1e-5, `index ${index}, element ${i}`);
    }
    const first = scheduler.step(output, index, sample, z1);
    t.same(scheduler.step(output, index, sample, z1), first, 'the same noise gives the same result');
    t.not(scheduler.step(output, index, sample, z2).join(), first.join(), 'other noise gives another result');
    let worst = 0;
    for (let i = 0; i < sample.length; i++) {
      if (z1[i] !== 0) worst = Math.max(worst, Math.abs((first[i] - deterministic[i]) / z1[i] - sigma));
    }
    t.ok(sigma > 0.01 && worst < 1e-4, `index ${index}: added noise is ${sigma.toFixed(5)} z (worst ${worst})`);
  }
  t.throws(() => scheduler.step(sample, 0, sample), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'noise' });
  t.throws(() => scheduler.step(sample, 0, sample, zero.subarray(1)), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'noise' });
});

t.test('DDIM with prediction_type sample lands on the predicted sample, clipped with clip_sample', async (t) => {
  const target = dummySampleDeter().map((v) => 3 * v - 1);
  for (const clip of [false, true]) {
    const scheduler = createDdimScheduler({ ...SD_CONFIG, prediction_type: 'sample', set_alpha_to_one: true, clip_sample: clip, clip_sample_range: 0.5 }, { steps: 20 });
    let x = dummyNoiseDeter();
    for (let i = 0; i < scheduler.timesteps.length; i++) x = scheduler.step(target, i, x);
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - (clip ? Math.min(0.5, Math.max(-0.5, target[i])) : target[i])));
    t.ok(worst < 1e-5, `clip_sample ${clip}: largest difference ${worst}`);
  }
});

t.test('DdimScheduler leaves the denoiser input alone and takes steps in any order', async (t) => {
  const scheduler = createDdimScheduler(SD_CONFIG, { steps: 10 });
  const sample = dummySampleDeter();
  t.equal(scheduler.scaleModelInput(sample, 3), sample);
  t.same(scheduler.step(sample, 5, sample), scheduler.step(sample, 5, sample));
  t.throws(() => scheduler.step(sample, -1, sample), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'index' });
  t.throws(() => createDdimScheduler(SD_CONFIG, { steps: 10, eta: 1.5 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'eta' });
});
