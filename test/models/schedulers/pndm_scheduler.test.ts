import t from 'tap';
import { createPndmScheduler } from '../../../models/schedulers/pndm_scheduler.js';
import { createDdimScheduler } from '../../../models/schedulers/ddim_scheduler.js';
import { absStats, dummySampleDeter, runLoop } from './_dummy.js';

// diffusers' tests/schedulers/test_scheduler_pndm.py: get_scheduler_config() and full_loop(), 10 steps.
const TEST_CONFIG = { num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear' } as const;
const SD_CONFIG = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', steps_offset: 1, set_alpha_to_one: false, skip_prk_steps: true } as const;

function loop(config: Record<string, unknown>, steps = 10): { sum: number; mean: number } {
  return absStats(runLoop(createPndmScheduler({ ...TEST_CONFIG, ...config }, { steps }), dummySampleDeter()));
}

t.test('createPndmScheduler reproduces the full loops of diffusers test_scheduler_pndm.py (PRK then PLMS)', async (t) => {
  // [extra config, result_sum, result_mean] as published; tolerances 1e-2 and 1e-3 as there.
  const cases: [Record<string, unknown>, number, number, string][] = [
    [{}, 198.1318, 0.258, 'test_full_loop_no_noise'],
    [{ prediction_type: 'v_prediction' }, 67.3986, 0.0878, 'test_full_loop_with_v_prediction'],
    [{ set_alpha_to_one: true, beta_start: 0.01 }, 230.0399, 0.2995, 'test_full_loop_with_set_alpha_to_one'],
    [{ set_alpha_to_one: false, beta_start: 0.01 }, 186.9482, 0.2434, 'test_full_loop_with_no_set_alpha_to_one'],
  ];
  for (const [extra, sum, mean, name] of cases) {
    const result = loop(extra);
    t.ok(Math.abs(result.sum - sum) < 1e-2, `${name}: sum ${result.sum} ≈ ${sum}`);
    t.ok(Math.abs(result.mean - mean) < 1e-3, `${name}: mean ${result.mean} ≈ ${mean}`);
  }
});

t.test('the published sums move beyond the tolerance when a timestep or the schedule is off', async (t) => {
  // What a wrong timestep or coefficient would do: these are not within 1e-2 of 198.1318.
  t.ok(Math.abs(loop({ steps_offset: 1 }).sum - 198.1318) > 1e-2);
  t.ok(Math.abs(loop({}, 11).sum - 198.1318) > 1e-2);
  t.ok(Math.abs(loop({ beta_end: 0.0201 }).sum - 198.1318) > 1e-2);
  t.ok(Math.abs(loop({ set_alpha_to_one: true }).sum - 198.1318) > 1e-2);
});

t.test('createPndmScheduler with skip_prk_steps (the SD 1.x config) matches a float32 run of diffusers’ step_plms', async (t) => {
  // Reference: diffusers' PLMS equations re-typed in torch float32 (sum, mean of |x| after the loop).
  const cases: [Record<string, unknown>, number, number, number][] = [
    [{}, 10, 201.38643, 0.2622219],
    [{}, 50, 203.49933, 0.2649731],
    [{ prediction_type: 'v_prediction' }, 10, 81.28917, 0.1058453],
  ];
  for (const [extra, steps, sum, mean] of cases) {
    const scheduler = createPndmScheduler({ ...SD_CONFIG, ...extra }, { steps });
    t.equal(scheduler.timesteps.length, steps + 1);
    const result = absStats(runLoop(scheduler, dummySampleDeter()));
    t.ok(Math.abs(result.sum - sum) < 1e-2, `${steps} steps ${JSON.stringify(extra)}: sum ${result.sum} ≈ ${sum}`);
    t.ok(Math.abs(result.mean - mean) < 1e-4, `mean ${result.mean} ≈ ${mean}`);
  }
});

t.test('with a denoiser that returns the same ε everywhere, PNDM lands where DDIM does (formula (9) is the DDIM update)', async (t) => {
  // The PLMS weights sum to 1 and the repeated timestep averages two equal outputs, so every
  // combined ε is the constant one; a wrong weight or a wrong repeat breaks the equality.
  const epsilon = dummySampleDeter().map((v, i) => Math.sin(i) + v);
  for (const steps of [5, 10, 50]) {
    const pndm = createPndmScheduler(SD_CONFIG, { steps });
    const ddim = createDdimScheduler({ ...SD_CONFIG, clip_sample: false }, { steps });
    let x = dummySampleDeter();
    for (let i = 0; i < pndm.timesteps.length; i++) x = pndm.step(epsilon, i, x);
    let y = dummySampleDeter();
    for (let i = 0; i < ddim.timesteps.length; i++) y = ddim.step(epsilon, i, y);
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
    t.ok(worst < 1e-4, `${steps} steps: largest difference ${worst}`);
  }
});

t.test('PndmScheduler leaves the denoiser input alone, starts at σ = 1, and takes steps in order only', async (t) => {
  const scheduler = createPndmScheduler(SD_CONFIG, { steps: 10 });
  const sample = dummySampleDeter();
  t.equal(scheduler.scaleModelInput(sample, 0), sample);
  t.equal(scheduler.initNoiseSigma, 1);
  t.equal(scheduler.stochastic, false);
  t.equal(scheduler.name, 'pndm');
  const x = scheduler.step(sample, 0, sample);
  t.throws(() => scheduler.step(sample, 2, x), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'index' });
  t.throws(() => scheduler.step(sample.subarray(1), 1, x), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'modelOutput' });
  t.throws(() => scheduler.step(sample, 11, x), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'index' });
  t.throws(() => createPndmScheduler({ skip_prk_steps: false }, { steps: 3 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'steps' });
  t.throws(() => createPndmScheduler({ prediction_type: 'sample' }, { steps: 10 }), { code: 'MEDSYN_ERR_BAD_MODEL', option: 'prediction_type' });
  // One step is allowed: a single transfer to the end of the schedule.
  t.same(createPndmScheduler(SD_CONFIG, { steps: 1 }).timesteps, [1]);
});
