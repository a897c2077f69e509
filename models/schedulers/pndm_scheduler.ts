/**
 * PNDM (Liu, Ren, Lin and Zhao, "Pseudo Numerical Methods for Diffusion Models on
 * Manifolds", 2022), as diffusers' `PNDMScheduler` runs it: Stable Diffusion 1.x's
 * default scheduler.
 *
 * Every update is the paper's transfer formula (9) from timestep t to t′:
 *
 *     x_t′ = √(ᾱ_t′/ᾱ_t) x_t − (ᾱ_t′ − ᾱ_t) ε / (ᾱ_t √(1 − ᾱ_t′) + √(ᾱ_t (1 − ᾱ_t) ᾱ_t′))
 *
 * with ε a combination of the denoiser's outputs:
 *
 * - `skip_prk_steps: true` (SD's config): N + 1 denoiser calls. The first call's ε steps
 *   from the first timestep to the second; the second call, at the second timestep
 *   again, averages its output with the first and redoes that step from the first
 *   sample (a Heun-like start). Then linear multistep (PLMS) with the last 2, 3, then 4
 *   outputs: (3e₁ − e₂)/2, (23e₁ − 16e₂ + 5e₃)/12, (55e₁ − 59e₂ + 37e₃ − 9e₄)/24.
 * - `skip_prk_steps: false` (diffusers' class default): 12 pseudo Runge–Kutta calls over
 *   the three largest timesteps (half steps of ⌊T/N⌋/2), then PLMS over the rest:
 *   N + 9 denoiser calls.
 *
 * The step length used for t′ is always ⌊T/N⌋, whatever `timestep_spacing` says
 * (diffusers does the same), and t′ < 0 uses ᾱ = 1 with `set_alpha_to_one`, else ᾱ₀.
 * `prediction_type` v_prediction converts the combined output to ε before the update.
 *
 * @module
 */
import { invalidOption } from '../../errors.js';
import { spacedTimesteps, trainingSchedule } from './_betas.js';
import { checkSchedulerOptions, checkTimestepRange, resolveSchedulerConfig, type ResolvedSchedulerConfig } from './_config.js';
import { checkStep, StepOrder } from './_step.js';
import type { Scheduler, SchedulerConfig, SchedulerOptions } from './scheduler.js';

/**
 * Makes a PNDM scheduler for one loop of `options.steps` steps.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_MODEL` for a config PNDM cannot use;
 *   `MEDSYN_ERR_INVALID_OPTION` for bad steps (fewer than 4 without `skip_prk_steps`)
 * @example
 * ```ts
 * const scheduler = createPndmScheduler({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, steps_offset: 1, skip_prk_steps: true }, { steps: 50 });
 * scheduler.timesteps.length; // 51 denoiser calls
 * ```
 */
export function createPndmScheduler(config: SchedulerConfig, options: SchedulerOptions): Scheduler {
  const resolved = resolveSchedulerConfig('pndm', config);
  checkSchedulerOptions(resolved, options);
  return new PndmScheduler(resolved, options.steps);
}

class PndmScheduler implements Scheduler {
  readonly name = 'pndm' as const;
  readonly timesteps: readonly number[];
  readonly initNoiseSigma = 1;
  readonly stochastic = false;
  readonly #config: ResolvedSchedulerConfig;
  readonly #alphasCumprod: Float64Array;
  readonly #finalAlphaCumprod: number;
  readonly #steps: number;
  readonly #prkCount: number;
  readonly #order = new StepOrder('pndm');
  /** diffusers' `counter`: how many steps were taken. */
  #counter = 0;
  /** Past denoiser outputs, newest last (diffusers' `ets`). */
  #history: Float32Array[] = [];
  #startSample: Float32Array | undefined;
  /** The Runge–Kutta weighted sum of the current group of four outputs. */
  #rungeKuttaSum: Float64Array | undefined;

  constructor(config: ResolvedSchedulerConfig, steps: number) {
    this.#config = config;
    this.#steps = steps;
    // PNDMScheduler has no rescale_betas_zero_snr: diffusers ignores the field for it.
    this.#alphasCumprod = trainingSchedule({ ...config, rescale_betas_zero_snr: false }).alphasCumprod;
    this.#finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.#alphasCumprod[0];
    const spaced = spacedTimesteps(config, steps);
    checkTimestepRange(spaced, config, steps);
    if (config.skip_prk_steps) {
      this.#prkCount = 0;
      const plms = [...spaced.slice(0, -1), ...spaced.slice(-2, -1), ...spaced.slice(-1)];
      this.timesteps = Object.freeze(plms.reverse());
    } else {
      if (steps < 4) invalidOption('steps', `pndm without skip_prk_steps needs at least 4 steps, got ${steps}`);
      const half = Math.floor(Math.floor(config.num_train_timesteps / steps) / 2);
      const repeated = spaced.slice(-4).flatMap((t) => [t, t + half]);
      const prk = repeated
        .slice(0, -1)
        .flatMap((t) => [t, t])
        .slice(1, -1)
        .reverse();
      this.#prkCount = prk.length;
      this.timesteps = Object.freeze([...prk, ...spaced.slice(0, -3).reverse()]);
    }
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, index: number, sample: Float32Array): Float32Array {
    checkStep(this.name, this.timesteps, modelOutput, index, sample, undefined, false);
    this.#order.advance(index);
    const timestep = this.timesteps[index];
    const next = this.#counter < this.#prkCount ? this.#stepRungeKutta(modelOutput, timestep, sample) : this.#stepMultistep(modelOutput, timestep, sample);
    this.#counter++;
    return next;
  }

  #stepRungeKutta(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const phase = this.#counter % 4;
    const halfStep = Math.floor(Math.floor(this.#config.num_train_timesteps / this.#steps) / 2);
    const to = timestep - (this.#counter % 2 === 1 ? 0 : halfStep);
    const from = this.timesteps[this.#counter - phase];
    let epsilon: ArrayLike<number> = modelOutput;
    if (phase === 0) {
      this.#rungeKuttaSum = new Float64Array(modelOutput.length);
      this.#history.push(modelOutput);
      this.#startSample = sample;
    }
    const sum = this.#rungeKuttaSum!;
    if (phase === 3) {
      const combined = new Float64Array(modelOutput.length);
      for (let i = 0; i < combined.length; i++) combined[i] = sum[i] + modelOutput[i] / 6;
      epsilon = combined;
    } else {
      const weight = phase === 0 ? 1 / 6 : 1 / 3;
      for (let i = 0; i < sum.length; i++) sum[i] += weight * modelOutput[i];
    }
    return this.#transfer(this.#startSample ?? sample, from, to, epsilon);
  }

  #stepMultistep(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const stride = Math.floor(this.#config.num_train_timesteps / this.#steps);
    let from = timestep;
    let to = timestep - stride;
    if (this.#counter !== 1) {
      this.#history = [...this.#history.slice(-3), modelOutput];
    } else {
      // The repeated timestep: redo the first step with the average of both outputs.
      from = timestep + stride;
      to = timestep;
    }
    const e = this.#history;
    const n = e.length;
    const epsilon = new Float64Array(modelOutput.length);
    let start = sample;
    if (n === 1 && this.#counter === 0) {
      epsilon.set(modelOutput);
      this.#startSample = sample;
    } else if (n === 1 && this.#counter === 1) {
      for (let i = 0; i < epsilon.length; i++) epsilon[i] = (modelOutput[i] + e[0][i]) / 2;
      start = this.#startSample!;
      this.#startSample = undefined;
    } else if (n === 2) {
      for (let i = 0; i < epsilon.length; i++) epsilon[i] = (3 * e[1][i] - e[0][i]) / 2;
    } else if (n === 3) {
      for (let i = 0; i < epsilon.length; i++) epsilon[i] = (23 * e[2][i] - 16 * e[1][i] + 5 * e[0][i]) / 12;
    } else {
      for (let i = 0; i < epsilon.length; i++) epsilon[i] = (55 * e[3][i] - 59 * e[2][i] + 37 * e[1][i] - 9 * e[0][i]) / 24;
    }
    return this.#transfer(start, from, to, epsilon);
  }

  /** Formula (9): the sample at timestep `to` from the sample at `from` and the combined output. */
  #transfer(sample: Float32Array, from: number, to: number, output: ArrayLike<number>): Float32Array {
    const alpha = this.#alphaCumprodAt(from);
    const alphaTo = to >= 0 ? this.#alphaCumprodAt(to) : this.#finalAlphaCumprod;
    const beta = 1 - alpha;
    const betaTo = 1 - alphaTo;
    const sampleCoefficient = Math.sqrt(alphaTo / alpha);
    const outputCoefficient = (alphaTo - alpha) / (alpha * Math.sqrt(betaTo) + Math.sqrt(alpha * beta * alphaTo));
    const vPrediction = this.#config.prediction_type === 'v_prediction';
    const rootAlpha = Math.sqrt(alpha);
    const rootBeta = Math.sqrt(beta);
    const next = new Float32Array(sample.length);
    for (let i = 0; i < next.length; i++) {
      const epsilon = vPrediction ? rootAlpha * output[i] + rootBeta * sample[i] : output[i];
      next[i] = sampleCoefficient * sample[i] - outputCoefficient * epsilon;
    }
    return next;
  }

  #alphaCumprodAt(timestep: number): number {
    const value = this.#alphasCumprod[timestep];
    if (value === undefined) invalidOption('steps', `pndm: timestep ${timestep} is outside the training schedule (use another timestep_spacing or fewer steps)`);
    return value;
  }
}
