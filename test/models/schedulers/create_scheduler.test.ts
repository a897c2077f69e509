import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createScheduler, defaultSchedulerName, readSchedulerConfig, SCHEDULER_CLASS_NAMES } from '../../../models/schedulers/create_scheduler.js';
import { SCHEDULER_NAMES, type SchedulerConfig, type SchedulerName } from '../../../models/schedulers/scheduler.js';
import { dummyModel, dummySampleDeter } from './_dummy.js';

// Stable Diffusion v1.4's scheduler/scheduler_config.json as diffusers wrote it.
const SD_CONFIG_JSON = `{
  "_class_name": "PNDMScheduler",
  "_diffusers_version": "0.7.0.dev0",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "num_train_timesteps": 1000,
  "set_alpha_to_one": false,
  "skip_prk_steps": true,
  "steps_offset": 1,
  "trained_betas": null,
  "clip_sample": false
}`;

t.test('createScheduler makes each scheduler, and a loop over it gives finite latents of the same size', async (t) => {
  const config = JSON.parse(SD_CONFIG_JSON) as SchedulerConfig;
  const calls: Record<SchedulerName, number> = { pndm: 21, ddim: 20, 'dpmpp-2m': 20, 'euler-a': 20 };
  for (const name of SCHEDULER_NAMES) {
    const scheduler = createScheduler(name, config, { steps: 20, eta: name === 'ddim' ? 0.5 : undefined });
    t.equal(scheduler.name, name);
    t.equal(scheduler.timesteps.length, calls[name], `${name}: denoiser calls`);
    t.ok(Object.isFrozen(scheduler.timesteps));
    let x: Float32Array = dummySampleDeter().map((v) => (v - 0.5) * scheduler.initNoiseSigma);
    for (let i = 0; i < scheduler.timesteps.length; i++) {
      const noise = scheduler.stochastic ? dummySampleDeter().map((v, k) => (k % 2 ? v : -v)) : undefined;
      x = scheduler.step(dummyModel(scheduler.scaleModelInput(x, i), scheduler.timesteps[i]), i, x, noise);
    }
    t.equal(x.length, 768);
    t.ok(x.every(Number.isFinite), `${name}: finite`);
  }
  t.throws(() => createScheduler('lms' as SchedulerName, config, { steps: 20 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'scheduler' });
});

t.test('createScheduler refuses bad options with the option named', async (t) => {
  for (const steps of [0, -1, 1.5, 1001, Number.NaN]) {
    t.throws(() => createScheduler('ddim', {}, { steps }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'steps' }, `steps ${steps}`);
  }
  t.equal(createScheduler('ddim', {}, { steps: 1000 }).timesteps.length, 1000);
  t.throws(() => createScheduler('ddim', { num_train_timesteps: 100 }, { steps: 101 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'steps', message: /\[1, 100\]/ });
  t.throws(() => createScheduler('ddim', {}, { steps: 10, eta: -0.1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'eta' });
  t.throws(() => createScheduler('dpmpp-2m', {}, { steps: 10, karras: 'yes' as unknown as boolean }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'karras' });
});

t.test('createScheduler refuses config values it does not implement, naming the field', async (t) => {
  const cases: [SchedulerName, SchedulerConfig, string][] = [
    ['ddim', { beta_schedule: 'sigmoid' as 'linear' }, 'beta_schedule'],
    ['ddim', { prediction_type: 'flow_prediction' as 'epsilon' }, 'prediction_type'],
    ['pndm', { prediction_type: 'sample' }, 'prediction_type'],
    ['euler-a', { prediction_type: 'sample' }, 'prediction_type'],
    ['dpmpp-2m', { timestep_spacing: 'uniform' as 'leading' }, 'timestep_spacing'],
    ['ddim', { steps_offset: '1' as unknown as number }, 'steps_offset'],
    ['ddim', { num_train_timesteps: 0 }, 'num_train_timesteps'],
    ['ddim', { beta_end: 1.5 }, 'beta_end'],
    ['ddim', { clip_sample: 'no' as unknown as boolean }, 'clip_sample'],
    ['ddim', { thresholding: true }, 'thresholding'],
    ['ddim', { num_train_timesteps: 4, trained_betas: [0.1, 0.2] }, 'trained_betas'],
    ['dpmpp-2m', { solver_type: 'bh2' as 'heun' }, 'solver_type'],
    ['dpmpp-2m', { final_sigmas_type: 'denoise_to_zero' as 'zero' }, 'final_sigmas_type'],
  ];
  for (const [name, config, field] of cases) {
    t.throws(() => createScheduler(name, config, { steps: 10 }), { code: 'MEDSYN_ERR_BAD_MODEL', option: field, message: new RegExp(field) }, `${name} ${field}`);
  }
  // Unknown fields and nulls are ignored, as diffusers' from_config does.
  t.equal(createScheduler('ddim', { variance_type: null, some_future_field: 3, prediction_type: null } as unknown as SchedulerConfig, { steps: 10 }).timesteps.length, 10);
});

t.test('defaultSchedulerName maps the config’s _class_name, falling back to pndm', async (t) => {
  t.equal(defaultSchedulerName({ _class_name: 'PNDMScheduler' }), 'pndm');
  t.equal(defaultSchedulerName({ _class_name: 'DDIMScheduler' }), 'ddim');
  t.equal(defaultSchedulerName({ _class_name: 'DPMSolverMultistepScheduler' }), 'dpmpp-2m');
  t.equal(defaultSchedulerName({ _class_name: 'EulerAncestralDiscreteScheduler' }), 'euler-a');
  t.equal(defaultSchedulerName({ _class_name: 'LMSDiscreteScheduler' }), 'pndm');
  t.equal(defaultSchedulerName({ _class_name: 'toString' }), 'pndm');
  t.equal(defaultSchedulerName({}), 'pndm');
  t.same(Object.values(SCHEDULER_CLASS_NAMES).sort(), [...SCHEDULER_NAMES].sort());
});

t.test('readSchedulerConfig reads scheduler_config.json from the scheduler folder or the model folder above it', async (t) => {
  const dir = t.testdir({ model: { scheduler: { 'scheduler_config.json': SD_CONFIG_JSON } } });
  const fromScheduler = await readSchedulerConfig(join(dir, 'model', 'scheduler'));
  const fromModel = await readSchedulerConfig(join(dir, 'model'));
  t.same(fromScheduler, fromModel);
  t.equal(fromScheduler.beta_schedule, 'scaled_linear');
  t.equal(defaultSchedulerName(fromScheduler), 'pndm');
  t.same(createScheduler('pndm', fromScheduler, { steps: 10 }).timesteps, [901, 801, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
});

t.test('readSchedulerConfig accepts the NaN and ±Infinity Python writes, outside strings only', async (t) => {
  const dir = t.testdir({
    'scheduler_config.json': '{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "note": "-Infinity NaN", "sample_max_value": NaN}',
  });
  const config = await readSchedulerConfig(dir);
  t.equal(config.lambda_min_clipped, Number.NEGATIVE_INFINITY);
  t.equal(config.note, '-Infinity NaN');
  t.ok(Number.isNaN(config.sample_max_value));
  t.equal(createScheduler(defaultSchedulerName(config), config, { steps: 10 }).timesteps[0], 999);
});

t.test('readSchedulerConfig fails with a clear error for a missing, broken or unsupported file', async (t) => {
  const dir = t.testdir({
    empty: {},
    broken: { 'scheduler_config.json': '{"beta_schedule": "linear",' },
    list: { 'scheduler_config.json': '[1, 2]' },
    sigmoid: { 'scheduler_config.json': '{"beta_schedule": "sigmoid"}' },
    flow: { 'scheduler_config.json': '{"prediction_type": "flow_prediction"}' },
    spacing: { 'scheduler_config.json': '{"timestep_spacing": "uniform"}' },
    typed: { 'scheduler_config.json': '{"num_train_timesteps": "1000"}' },
    sample: { 'scheduler_config.json': '{"_class_name": "DDIMScheduler", "prediction_type": "sample"}' },
  });
  await t.rejects(readSchedulerConfig(join(dir, 'empty')), { code: 'MEDSYN_ERR_NOT_FOUND', message: /scheduler_config\.json/ });
  await t.rejects(readSchedulerConfig(join(dir, 'broken')), { code: 'MEDSYN_ERR_BAD_MODEL', file: join(dir, 'broken', 'scheduler_config.json'), message: /not valid JSON/ });
  await t.rejects(readSchedulerConfig(join(dir, 'list')), { code: 'MEDSYN_ERR_BAD_MODEL', message: /JSON object/ });
  await t.rejects(readSchedulerConfig(join(dir, 'sigmoid')), { code: 'MEDSYN_ERR_BAD_MODEL', option: 'beta_schedule', message: /"sigmoid" is not supported/ });
  await t.rejects(readSchedulerConfig(join(dir, 'flow')), { code: 'MEDSYN_ERR_BAD_MODEL', option: 'prediction_type' });
  await t.rejects(readSchedulerConfig(join(dir, 'spacing')), { code: 'MEDSYN_ERR_BAD_MODEL', option: 'timestep_spacing' });
  await t.rejects(readSchedulerConfig(join(dir, 'typed')), { code: 'MEDSYN_ERR_BAD_MODEL', option: 'num_train_timesteps' });
  // prediction_type sample is fine for DDIM and DPM-Solver++; PNDM refuses it when made.
  const sample = await readSchedulerConfig(join(dir, 'sample'));
  t.equal(createScheduler('ddim', sample, { steps: 5 }).timesteps.length, 5);
  t.throws(() => createScheduler('pndm', sample, { steps: 5 }), { code: 'MEDSYN_ERR_BAD_MODEL', option: 'prediction_type', message: /pndm/ });
  writeFileSync(join(dir, 'empty', 'scheduler_config.json'), '');
  await t.rejects(readSchedulerConfig(join(dir, 'empty')), { code: 'MEDSYN_ERR_BAD_MODEL' });
});

t.test('createScheduler takes zero terminal SNR and the cosine schedule, and refuses a config that is not an object', async (t) => {
  for (const name of SCHEDULER_NAMES) {
    const scheduler = createScheduler(name, { beta_schedule: 'squaredcos_cap_v2', rescale_betas_zero_snr: true, timestep_spacing: 'trailing', prediction_type: 'v_prediction' }, { steps: 8 });
    let x: Float32Array = dummySampleDeter().map((v) => (v - 0.5) * scheduler.initNoiseSigma);
    for (let i = 0; i < scheduler.timesteps.length; i++) {
      const noise = scheduler.stochastic ? dummySampleDeter() : undefined;
      x = scheduler.step(dummyModel(scheduler.scaleModelInput(x, i), scheduler.timesteps[i]), i, x, noise);
    }
    t.ok(x.every(Number.isFinite), `${name}: finite`);
  }
  // With ᾱ_T = 0, DDIM's ε-prediction would divide by zero: refused up front.
  t.throws(() => createScheduler('ddim', { rescale_betas_zero_snr: true, timestep_spacing: 'trailing' }, { steps: 8 }), { code: 'MEDSYN_ERR_BAD_MODEL', option: 'prediction_type' });
  // Karras timesteps stay fractional with the cosine schedule, as in diffusers.
  const karras = createScheduler('dpmpp-2m', { beta_schedule: 'squaredcos_cap_v2' }, { steps: 10, karras: true }).timesteps;
  t.ok(karras.some((timestep) => !Number.isInteger(timestep)));
  t.throws(() => createScheduler('ddim', null as unknown as SchedulerConfig, { steps: 10 }), { code: 'MEDSYN_ERR_BAD_MODEL', message: /JSON object/ });
  t.throws(() => createScheduler('ddim', { trained_betas: 'x' as unknown as number[] }, { steps: 10 }), { code: 'MEDSYN_ERR_BAD_MODEL', option: 'trained_betas' });
});
