/**
 * Euler ancestral sampling (Karras, Aittala, Aila and Laine, "Elucidating the Design
 * Space of Diffusion-Based Generative Models", 2022, with k-diffusion's ancestral
 * noise), as diffusers' `EulerAncestralDiscreteScheduler` runs it: N denoiser calls for
 * N steps, stochastic at every step but the last.
 *
 * The latents live at noise level σ = √((1 − ᾱ)/ᾱ) (interpolated between training
 * timesteps, a final σ of 0 appended), so the initial N(0, 1) latents are scaled by
 * `initNoiseSigma` (the largest σ; √(σ² + 1) with `leading` spacing) and the denoiser
 * sees x/√(σ² + 1). From σ to the next σ′:
 *
 *     x̂₀ = x − σ ε                          (v_prediction: −σ/√(σ² + 1) v + x/(σ² + 1))
 *     σ↑ = √(σ′² (σ² − σ′²)/σ²),  σ↓ = √(σ′² − σ↑²)
 *     x′ = x + (x − x̂₀)/σ × (σ↓ − σ) + σ↑ z,   z ~ N(0, I)
 *
 * Timesteps (passed to the denoiser as given, fractional with `linspace`): `linspace`
 * (the class default) is N float32 points of [0, T − 1], descending; `leading` is
 * i⌊T/N⌋ + `steps_offset`; `trailing` rounds T, T − T/N, … and subtracts 1.
 * `prediction_type` sample is not supported (diffusers does not implement it either).
 *
 * @module
 */
import { invalidOption } from '../../errors.js';
import { interpolateAt, numpyLinspace, trailingTimesteps, trainingSchedule } from './_betas.js';
import { checkSchedulerOptions, checkTimestepRange, resolveSchedulerConfig, type ResolvedSchedulerConfig } from './_config.js';
import { checkStep } from './_step.js';
import type { Scheduler, SchedulerConfig, SchedulerOptions } from './scheduler.js';

/**
 * Makes an Euler ancestral scheduler for one loop of `options.steps` steps.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_MODEL` for a config it cannot use;
 *   `MEDSYN_ERR_INVALID_OPTION` for bad steps
 * @example
 * ```ts
 * const scheduler = createEulerAncestralScheduler({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 }, { steps: 30 });
 * scheduler.initNoiseSigma; // 14.6146…
 * ```
 */
export function createEulerAncestralScheduler(config: SchedulerConfig, options: SchedulerOptions): Scheduler {
  const resolved = resolveSchedulerConfig('euler-a', config);
  checkSchedulerOptions(resolved, options);
  return new EulerAncestralScheduler(resolved, options.steps);
}

class EulerAncestralScheduler implements Scheduler {
  readonly name = 'euler-a' as const;
  readonly timesteps: readonly number[];
  readonly initNoiseSigma: number;
  readonly stochastic = true;
  /** σ at each call, then 0 (float32 values). */
  readonly #sigmas: readonly number[];
  readonly #config: ResolvedSchedulerConfig;

  constructor(config: ResolvedSchedulerConfig, steps: number) {
    this.#config = config;
    const { alphasCumprod } = trainingSchedule(config);
    const total = config.num_train_timesteps;
    if (config.rescale_betas_zero_snr) alphasCumprod[total - 1] = 2 ** -24;
    const trainSigmas = alphasCumprod.map((a) => Math.fround(Math.sqrt(Math.fround(Math.fround(1 - a) / a))));
    let timesteps: number[];
    switch (config.timestep_spacing) {
      case 'linspace':
        timesteps = numpyLinspace(0, total - 1, steps).map(Math.fround).reverse();
        break;
      case 'leading': {
        const ratio = Math.floor(total / steps);
        timesteps = Array.from({ length: steps }, (_, i) => i * ratio)
          .reverse()
          .map((t) => t + config.steps_offset);
        break;
      }
      case 'trailing':
        timesteps = trailingTimesteps(total, total, steps);
        break;
    }
    checkTimestepRange(timesteps, config, steps);
    this.timesteps = Object.freeze(timesteps);
    this.#sigmas = Object.freeze([...timesteps.map((t) => Math.fround(interpolateAt(t, trainSigmas))), 0]);
    const largest = Math.max(...this.#sigmas);
    this.initNoiseSigma = config.timestep_spacing === 'leading' ? Math.fround(Math.sqrt(largest * largest + 1)) : largest;
  }

  scaleModelInput(sample: Float32Array, index: number): Float32Array {
    if (!Number.isInteger(index) || index < 0 || index >= this.timesteps.length) {
      invalidOption('index', `euler-a: must be an integer in [0, ${this.timesteps.length - 1}], got ${index}`);
    }
    const sigma = this.#sigmas[index];
    const scale = 1 / Math.sqrt(sigma * sigma + 1);
    const scaled = new Float32Array(sample.length);
    for (let i = 0; i < scaled.length; i++) scaled[i] = sample[i] * scale;
    return scaled;
  }

  step(modelOutput: Float32Array, index: number, sample: Float32Array, noise?: Float32Array): Float32Array {
    const sigma = this.#sigmas[index];
    const sigmaNext = this.#sigmas[index + 1];
    const sigmaUp = Math.sqrt((sigmaNext * sigmaNext * (sigma * sigma - sigmaNext * sigmaNext)) / (sigma * sigma));
    checkStep(this.name, this.timesteps, modelOutput, index, sample, noise, sigmaUp > 0);
    const sigmaDown = Math.sqrt(sigmaNext * sigmaNext - sigmaUp * sigmaUp);
    const dt = sigmaDown - sigma;
    const vPrediction = this.#config.prediction_type === 'v_prediction';
    const vOutputCoefficient = -sigma / Math.sqrt(sigma * sigma + 1);
    const vSampleCoefficient = 1 / (sigma * sigma + 1);
    const next = new Float32Array(sample.length);
    for (let i = 0; i < next.length; i++) {
      const x = sample[i];
      const original = vPrediction ? modelOutput[i] * vOutputCoefficient + x * vSampleCoefficient : x - sigma * modelOutput[i];
      let value = x + ((x - original) / sigma) * dt;
      if (noise !== undefined && sigmaUp > 0) value += noise[i] * sigmaUp;
      next[i] = value;
    }
    return next;
  }
}

