import t from 'tap';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createEulerAncestralScheduler } from '../../../models/schedulers/euler_ancestral_scheduler.js';
import { absStats, dummyModel, dummyNoiseDeter, dummySampleDeter, runLoop } from './_dummy.js';

// diffusers' tests/schedulers/test_scheduler_euler_ancestral.py: get_scheduler_config(), 10 steps.
const TEST_CONFIG = { num_train_timesteps: 1100, beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear' } as const;
const SD_CONFIG = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', steps_offset: 1, set_alpha_to_one: false, skip_prk_steps: true } as const;

// torch.manual_seed(0) then torch.randn((4, 3, 8, 8)) nine times: the noise those tests draw
// (written by make_torch_noise.py next to this file; checked by its SHA-256).
const noiseFile = readFileSync(new URL('./torch_noise_seed0.f32', import.meta.url));
const SAMPLE_SIZE = 4 * 3 * 8 * 8;
const torchNoise = (draw: number): Float32Array => {
  const values = new Float32Array(SAMPLE_SIZE);
  for (let i = 0; i < SAMPLE_SIZE; i++) values[i] = noiseFile.readFloatLE((draw * SAMPLE_SIZE + i) * 4);
  return values;
};

/** The training σ of timestep t, interpolated, computed here in float64 without the library's schedule code. */
function independentSigmas(config: { num_train_timesteps: number; beta_start: number; beta_end: number; beta_schedule?: string }, timesteps: readonly number[]): number[] {
  const total = config.num_train_timesteps;
  const sigmaAt: number[] = [];
  const [from, to] = config.beta_schedule === 'scaled_linear' ? [Math.sqrt(config.beta_start), Math.sqrt(config.beta_end)] : [config.beta_start, config.beta_end];
  let product = 1;
  for (let i = 0; i < total; i++) {
    const beta = from + ((to - from) * i) / (total - 1);
    product *= 1 - (config.beta_schedule === 'scaled_linear' ? beta * beta : beta);
    sigmaAt.push(Math.sqrt((1 - product) / product));
  }
  return [
    ...timesteps.map((t) => {
      const low = Math.floor(t);
      return low === t ? sigmaAt[t] : sigmaAt[low] + (sigmaAt[low + 1] - sigmaAt[low]) * (t - low);
    }),
    0,
  ];
}

t.test('the noise fixture is the file make_torch_noise.py wrote', async (t) => {
  t.equal(noiseFile.length, 9 * SAMPLE_SIZE * 4);
  t.equal(createHash('sha256').update(noiseFile).digest('hex'), '20f59114f076351c7dcfcfe7ce0c5759e9dc2838ba1ddc686e6cff11a4a74527');
});

t.test('createEulerAncestralScheduler reproduces the full loops of diffusers test_scheduler_euler_ancestral.py, given torch’s noise', async (t) => {
  // Those loops reassign `sample` to the scaled input before stepping; step i draws noise i.
  const noise = (i: number): Float32Array | undefined => (i < 9 ? torchNoise(i) : undefined);
  for (const [extra, sum, mean, name] of [
    [{}, 152.3192, 0.1983, 'test_full_loop_no_noise'],
    [{ prediction_type: 'v_prediction' }, 108.4439, 0.1412, 'test_full_loop_with_v_prediction'],
  ] as const) {
    const scheduler = createEulerAncestralScheduler({ ...TEST_CONFIG, ...extra }, { steps: 10 });
    const start = dummySampleDeter().map((v) => v * scheduler.initNoiseSigma);
    const result = absStats(runLoop(scheduler, start, { stepScaled: true, noise }));
    t.ok(Math.abs(result.sum - sum) < 1e-2, `${name}: sum ${result.sum} ≈ ${sum}`);
    t.ok(Math.abs(result.mean - mean) < 1e-3, `${name}: mean ${result.mean} ≈ ${mean}`);
  }
  // test_full_loop_with_noise: started at call 8 from sample σ_max + noise σ_8, the first draw at step 8.
  const scheduler = createEulerAncestralScheduler(TEST_CONFIG, { steps: 10 });
  const sigma8 = independentSigmas(TEST_CONFIG, scheduler.timesteps)[8];
  const noiseDeter = dummyNoiseDeter();
  const start = dummySampleDeter().map((v, i) => v * scheduler.initNoiseSigma + noiseDeter[i] * Math.fround(sigma8));
  const result = absStats(runLoop(scheduler, start, { from: 8, stepScaled: true, noise: (i) => (i === 8 ? torchNoise(0) : undefined) }));
  t.ok(Math.abs(result.sum - 56163.0508) < 1e-2 * 10, `test_full_loop_with_noise: sum ${result.sum} ≈ 56163.0508`);
  t.ok(Math.abs(result.mean - 73.129) < 1e-3, `mean ${result.mean} ≈ 73.1290`);
});

t.test('the published sums move beyond the tolerance with other noise, another step count or a wrong schedule', async (t) => {
  const sum = (config: Record<string, unknown>, steps: number, noise: (i: number) => Float32Array | undefined): number => {
    const scheduler = createEulerAncestralScheduler({ ...TEST_CONFIG, ...config }, { steps });
    return absStats(runLoop(scheduler, dummySampleDeter().map((v) => v * scheduler.initNoiseSigma), { stepScaled: true, noise })).sum;
  };
  const torch = (i: number): Float32Array | undefined => (i < 9 ? torchNoise(i) : undefined);
  t.ok(Math.abs(sum({}, 10, (i) => (i < 9 ? torchNoise(8 - i) : undefined)) - 152.3192) > 1e-2);
  t.ok(Math.abs(sum({}, 9, torch) - 152.3192) > 1e-2);
  t.ok(Math.abs(sum({ beta_end: 0.0201 }, 10, torch) - 152.3192) > 1e-2);
});

t.test('Euler ancestral with zero noise is the deterministic Euler step to σ↓, checked against an independent loop', async (t) => {
  for (const prediction of ['epsilon', 'v_prediction'] as const) {
    const config = { num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, prediction_type: prediction };
    const scheduler = createEulerAncestralScheduler(config, { steps: 25 });
    const sigmas = independentSigmas(config, scheduler.timesteps);
    t.ok(Math.abs(scheduler.initNoiseSigma - sigmas[0]) < 1e-5 * sigmas[0]);
    const zero = new Float32Array(SAMPLE_SIZE);
    let x: Float32Array = dummySampleDeter().map((v) => v * scheduler.initNoiseSigma);
    let y = Float64Array.from(x);
    for (let i = 0; i < scheduler.timesteps.length; i++) {
      const input = scheduler.scaleModelInput(x, i);
      const output = dummyModel(input, scheduler.timesteps[i]);
      x = scheduler.step(output, i, x, zero);
      // Independently: Karras et al.'s Euler step to σ↓ with k-diffusion's ancestral split.
      const [s, next] = [sigmas[i], sigmas[i + 1]];
      const up = Math.sqrt((next ** 2 * (s ** 2 - next ** 2)) / s ** 2);
      const down = Math.sqrt(next ** 2 - up ** 2);
      y = y.map((v, k) => {
        const m = dummyModel(Float32Array.of(v / Math.sqrt(s * s + 1)), scheduler.timesteps[i])[0];
        const original = prediction === 'epsilon' ? v - s * m : (-s / Math.sqrt(s * s + 1)) * m + v / (s * s + 1);
        return v + ((v - original) / s) * (down - s);
      });
    }
    let worst = 0;
    for (let k = 0; k < SAMPLE_SIZE; k++) worst = Math.max(worst, Math.abs(x[k] - y[k]) / Math.max(1, Math.abs(y[k])));
    t.ok(worst < 1e-4, `${prediction}: largest relative difference ${worst}`);
  }
});

t.test('Euler ancestral adds σ↑ z: the same noise gives the same latents, other noise others', async (t) => {
  const scheduler = createEulerAncestralScheduler(SD_CONFIG, { steps: 30 });
  const sigmas = independentSigmas({ ...SD_CONFIG, num_train_timesteps: 1000 }, scheduler.timesteps);
  t.equal(scheduler.stochastic, true);
  const sample = dummySampleDeter().map((v) => 4 * v - 2);
  const zero = new Float32Array(SAMPLE_SIZE);
  const z = dummyNoiseDeter().map((v, i) => (i % 3 ? v : -2 * v));
  for (const index of [0, 14, 28]) {
    const output = dummyModel(scheduler.scaleModelInput(sample, index), scheduler.timesteps[index]);
    const base = scheduler.step(output, index, sample, zero);
    const noisy = scheduler.step(output, index, sample, z);
    t.same(scheduler.step(output, index, sample, z), noisy);
    t.not(scheduler.step(output, index, sample, torchNoise(0)).join(), noisy.join());
    const [s, next] = [sigmas[index], sigmas[index + 1]];
    const up = Math.sqrt((next ** 2 * (s ** 2 - next ** 2)) / s ** 2);
    let worst = 0;
    for (let k = 0; k < SAMPLE_SIZE; k++) if (Math.abs(z[k]) > 0.1) worst = Math.max(worst, Math.abs((noisy[k] - base[k]) / z[k] - up));
    t.ok(up > 0.01 && worst < 1e-3 * up + 1e-5, `index ${index}: σ↑ = ${up.toFixed(5)} (worst ${worst})`);
  }
  // The last step goes to σ = 0: nothing is added and no noise is needed.
  const last = scheduler.timesteps.length - 1;
  const output = dummyModel(scheduler.scaleModelInput(sample, last), scheduler.timesteps[last]);
  t.same(scheduler.step(output, last, sample), scheduler.step(output, last, sample, z));
  t.throws(() => scheduler.step(output, 0, sample), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'noise' });
});

t.test('EulerAncestralScheduler scales the denoiser input by 1/√(σ² + 1) and refuses what diffusers does not run', async (t) => {
  const scheduler = createEulerAncestralScheduler(SD_CONFIG, { steps: 10 });
  const sigma = independentSigmas({ ...SD_CONFIG, num_train_timesteps: 1000 }, scheduler.timesteps)[3];
  const sample = dummySampleDeter();
  const scaled = scheduler.scaleModelInput(sample, 3);
  t.not(scaled, sample);
  t.ok(Math.abs(scaled[700] - sample[700] / Math.sqrt(sigma * sigma + 1)) < 1e-6);
  t.throws(() => scheduler.scaleModelInput(sample, 10), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'index' });
  t.throws(() => createEulerAncestralScheduler({ prediction_type: 'sample' }, { steps: 10 }), { code: 'MEDSYN_ERR_BAD_MODEL', option: 'prediction_type' });
  // linspace timesteps are fractional float32 values, passed to the denoiser as they are.
  t.equal(scheduler.timesteps[1], Math.fround((999 * 8) / 9));
});
