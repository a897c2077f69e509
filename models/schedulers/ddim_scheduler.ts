/**
 * DDIM (Song, Meng and Ermon, "Denoising Diffusion Implicit Models", 2021), as
 * diffusers' `DDIMScheduler` runs it: N denoiser calls for N steps.
 *
 * From timestep t to t′ = t − ⌊T/N⌋ (diffusers' step length for every spacing;
 * t′ < 0 uses ᾱ = 1 with `set_alpha_to_one`, else ᾱ₀):
 *
 *     x̂₀ = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t            (clipped to ±clip_sample_range with clip_sample)
 *     σ_t = η √((1 − ᾱ_t′)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_t′)
 *     x_t′ = √ᾱ_t′ x̂₀ + √(1 − ᾱ_t′ − σ_t²) ε + σ_t z,   z ~ N(0, I)
 *
 * η = 0 (the default) is deterministic; η > 0 makes the scheduler `stochastic` and each
 * step takes fresh noise z. `prediction_type` v_prediction gives
 * x̂₀ = √ᾱ_t x_t − √(1 − ᾱ_t) v and ε = √ᾱ_t v + √(1 − ᾱ_t) x_t; `sample` takes the
 * output as x̂₀ and ε = (x_t − √ᾱ_t x̂₀)/√(1 − ᾱ_t). As in diffusers' pipelines, ε is
 * the unclipped one (`use_clipped_model_output` off).
 *
 * @module
 */
import { ErrorCodes, MedsynError } from '../../errors.js';
import { spacedTimesteps, trainingSchedule } from './_betas.js';
import { checkSchedulerOptions, checkTimestepRange, resolveSchedulerConfig, type ResolvedSchedulerConfig } from './_config.js';
import { checkStep } from './_step.js';
import type { Scheduler, SchedulerConfig, SchedulerOptions } from './scheduler.js';

/**
 * Makes a DDIM scheduler for one loop of `options.steps` steps with `options.eta`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_MODEL` for a config DDIM cannot use;
 *   `MEDSYN_ERR_INVALID_OPTION` for bad steps or eta
 * @example
 * ```ts
 * const scheduler = createDdimScheduler({ steps_offset: 1, clip_sample: false }, { steps: 50, eta: 0 });
 * scheduler.timesteps.slice(0, 3); // [981, 961, 941]
 * ```
 */
export function createDdimScheduler(config: SchedulerConfig, options: SchedulerOptions): Scheduler {
  const resolved = resolveSchedulerConfig('ddim', config);
  checkSchedulerOptions(resolved, options);
  return new DdimScheduler(resolved, options.steps, options.eta ?? 0);
}

/**
 * The variance of DDPM's posterior between timesteps t and t′, (1 − ᾱ_t′)/(1 − ᾱ_t) ×
 * (1 − ᾱ_t/ᾱ_t′): σ_t² for η = 1 (diffusers' `DDIMScheduler._get_variance`).
 */
export function ddimVariance(alphaCumprod: number, alphaCumprodPrevious: number): number {
  return ((1 - alphaCumprodPrevious) / (1 - alphaCumprod)) * (1 - alphaCumprod / alphaCumprodPrevious);
}

class DdimScheduler implements Scheduler {
  readonly name = 'ddim' as const;
  readonly timesteps: readonly number[];
  readonly initNoiseSigma = 1;
  readonly stochastic: boolean;
  readonly #config: ResolvedSchedulerConfig;
  readonly #alphasCumprod: Float64Array;
  readonly #finalAlphaCumprod: number;
  readonly #stride: number;
  readonly #eta: number;

  constructor(config: ResolvedSchedulerConfig, steps: number, eta: number) {
    this.#config = config;
    this.#eta = eta;
    this.stochastic = eta > 0;
    this.#alphasCumprod = trainingSchedule(config).alphasCumprod;
    this.#finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.#alphasCumprod[0];
    this.#stride = Math.floor(config.num_train_timesteps / steps);
    const timesteps = spacedTimesteps(config, steps).reverse();
    checkTimestepRange(timesteps, config, steps);
    if (config.prediction_type === 'epsilon' && timesteps.some((t) => this.#alphasCumprod[t] === 0)) {
      throw new MedsynError(
        ErrorCodes.BAD_MODEL,
        `Bad scheduler config: rescale_betas_zero_snr with prediction_type epsilon divides by √ᾱ = 0 at timestep ${config.num_train_timesteps - 1} (zero terminal SNR needs v_prediction, or leading spacing)`,
        { option: 'prediction_type' },
      );
    }
    this.timesteps = Object.freeze(timesteps);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, index: number, sample: Float32Array, noise?: Float32Array): Float32Array {
    checkStep(this.name, this.timesteps, modelOutput, index, sample, noise, this.stochastic);
    const timestep = this.timesteps[index];
    const previous = timestep - this.#stride;
    const alpha = this.#alphasCumprod[timestep];
    const alphaPrevious = previous >= 0 ? this.#alphasCumprod[previous] : this.#finalAlphaCumprod;
    const beta = 1 - alpha;
    const rootAlpha = Math.sqrt(alpha);
    const rootBeta = Math.sqrt(beta);
    const deviation = this.#eta * Math.sqrt(ddimVariance(alpha, alphaPrevious));
    const directionCoefficient = Math.sqrt(1 - alphaPrevious - deviation * deviation);
    const rootAlphaPrevious = Math.sqrt(alphaPrevious);
    const { prediction_type: prediction, clip_sample: clip, clip_sample_range: range } = this.#config;
    const addNoise = this.stochastic && noise !== undefined;

    const next = new Float32Array(sample.length);
    for (let i = 0; i < next.length; i++) {
      const x = sample[i];
      const output = modelOutput[i];
      let original: number;
      let epsilon: number;
      if (prediction === 'epsilon') {
        original = (x - rootBeta * output) / rootAlpha;
        epsilon = output;
      } else if (prediction === 'v_prediction') {
        original = rootAlpha * x - rootBeta * output;
        epsilon = rootAlpha * output + rootBeta * x;
      } else {
        original = output;
        epsilon = (x - rootAlpha * original) / rootBeta;
      }
      if (clip) original = Math.min(range, Math.max(-range, original));
      let value = rootAlphaPrevious * original + directionCoefficient * epsilon;
      if (addNoise) value += deviation * noise[i];
      next[i] = value;
    }
    return next;
  }
}
