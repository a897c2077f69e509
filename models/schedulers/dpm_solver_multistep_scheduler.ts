/**
 * DPM-Solver++(2M) (Lu, Zhou, Bao, Chen, Li and Zhu, "DPM-Solver++: Fast Solver for
 * Guided Sampling of Diffusion Probabilistic Models", 2022), as diffusers'
 * `DPMSolverMultistepScheduler` runs it with `algorithm_type: "dpmsolver++"`: N denoiser
 * calls for N steps, deterministic.
 *
 * With σ the noise-to-signal ratio √((1 − ᾱ)/ᾱ) at each inference timestep (then a final
 * σ of 0, or σ of timestep 0 with `final_sigmas_type: "sigma_min"`), α_t = 1/√(σ² + 1),
 * σ_t = σ α_t and λ = ln α_t − ln σ_t, each call first turns the output into a data
 * prediction x̂₀ (epsilon: (x − σ_t ε)/α_t; v_prediction: α_t x − σ_t v; sample: as is),
 * then, from s to t with h = λ_t − λ_s:
 *
 *     first order:   x_t = (σ_t/σ_s) x − α_t (e^(−h) − 1) D₀
 *     second order:  the same − ½ α_t (e^(−h) − 1) D₁        (midpoint)
 *                    or + α_t ((e^(−h) − 1)/h + 1) D₁       (solver_type heun)
 *
 * with D₀ = x̂₀ of this call and D₁ = (h/h₀)(D₀ − x̂₀ of the previous call). The first
 * call is first order; so is the last when the final σ is 0, with `euler_at_final`, or
 * with `lower_order_final` (the default) when there are fewer than 15 steps.
 *
 * Timesteps: `linspace` (the class default) rounds N + 1 points of [0, T − 1] and drops
 * 0; `leading` steps ⌊T/(N + 1)⌋ and adds `steps_offset`; `trailing` rounds T, T − T/N, …
 * and subtracts 1. Karras sigmas (`use_karras_sigmas`, or the `karras` option) replace
 * the σ's with Karras, Aittala, Aila and Laine's ρ = 7 ramp between the schedule's
 * smallest and largest σ and take as timesteps the rounded positions of those σ in the
 * schedule (log-linear interpolation). `algorithm_type` and the SDE variants are not
 * read: this scheduler is DPM-Solver++ whatever the config's class used.
 *
 * @module
 */
import { interpolateAt, numpyLinspace, roundHalfEven, trailingTimesteps, trainingSchedule } from './_betas.js';
import { checkSchedulerOptions, checkTimestepRange, resolveSchedulerConfig, type ResolvedSchedulerConfig } from './_config.js';
import { checkStep, StepOrder } from './_step.js';
import type { Scheduler, SchedulerConfig, SchedulerOptions } from './scheduler.js';

/**
 * Makes a DPM-Solver++(2M) scheduler for one loop of `options.steps` steps.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_MODEL` for a config it cannot use;
 *   `MEDSYN_ERR_INVALID_OPTION` for bad steps
 * @example
 * ```ts
 * const scheduler = createDpmSolverMultistepScheduler({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 }, { steps: 20, karras: true });
 * ```
 */
export function createDpmSolverMultistepScheduler(config: SchedulerConfig, options: SchedulerOptions): Scheduler {
  const resolved = resolveSchedulerConfig('dpmpp-2m', config);
  checkSchedulerOptions(resolved, options);
  return new DpmSolverMultistepScheduler(resolved, options.steps, options.karras ?? resolved.use_karras_sigmas);
}

class DpmSolverMultistepScheduler implements Scheduler {
  readonly name = 'dpmpp-2m' as const;
  readonly timesteps: readonly number[];
  readonly initNoiseSigma = 1;
  readonly stochastic = false;
  /** σ at each call, then the final σ (float32 values). */
  readonly #sigmas: readonly number[];
  readonly #config: ResolvedSchedulerConfig;
  readonly #order: StepOrder;
  #previousPrediction: Float32Array | undefined;
  /** The prediction array of two calls ago, written over by the next call. */
  #spare: Float32Array | undefined;
  #lowerOrderCount = 0;

  constructor(config: ResolvedSchedulerConfig, steps: number, karras: boolean) {
    this.#config = config;
    this.#order = new StepOrder('dpmpp-2m');
    const { alphasCumprod } = trainingSchedule(config);
    const total = config.num_train_timesteps;
    if (config.rescale_betas_zero_snr) alphasCumprod[total - 1] = 2 ** -24;
    const trainSigmas = alphasCumprod.map((a) => Math.fround(Math.sqrt(Math.fround(Math.fround(1 - a) / a))));

    // Timesteps whose λ is below lambda_min_clipped are cut from the top of the range.
    let clipped = 0;
    for (const a of alphasCumprod) {
      const lambda = Math.fround(Math.fround(Math.log(Math.fround(Math.sqrt(a)))) - Math.fround(Math.log(Math.fround(Math.sqrt(1 - a)))));
      if (lambda < config.lambda_min_clipped) clipped++;
    }
    const last = total - clipped;
    let timesteps: number[];
    switch (config.timestep_spacing) {
      case 'linspace':
        timesteps = numpyLinspace(0, last - 1, steps + 1).map(roundHalfEven).reverse().slice(0, -1);
        break;
      case 'leading': {
        const ratio = Math.floor(last / (steps + 1));
        timesteps = Array.from({ length: steps + 1 }, (_, i) => i * ratio)
          .reverse()
          .slice(0, -1)
          .map((t) => t + config.steps_offset);
        break;
      }
      case 'trailing':
        timesteps = trailingTimesteps(last, total, steps);
        break;
    }
    checkTimestepRange(timesteps, config, steps);

    let sigmas: number[];
    if (karras) {
      const logSigmas = trainSigmas.map((s) => Math.fround(Math.log(s)));
      sigmas = karrasSigmas(trainSigmas[0], trainSigmas[total - 1], steps);
      timesteps = sigmas.map((sigma) => {
        const t = timestepOfSigma(sigma, logSigmas);
        return config.beta_schedule === 'squaredcos_cap_v2' ? t : roundHalfEven(t);
      });
    } else {
      sigmas = timesteps.map((t) => interpolateAt(t, trainSigmas));
    }
    const finalSigma = config.final_sigmas_type === 'zero' ? 0 : Math.sqrt((1 - alphasCumprod[0]) / alphasCumprod[0]);
    this.#sigmas = Object.freeze([...sigmas, finalSigma].map(Math.fround));
    this.timesteps = Object.freeze(timesteps);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, index: number, sample: Float32Array): Float32Array {
    checkStep(this.name, this.timesteps, modelOutput, index, sample, undefined, false);
    this.#order.advance(index);
    const config = this.#config;
    const count = this.timesteps.length;
    const lowerOrderFinal =
      index === count - 1 && (config.euler_at_final || (config.lower_order_final && count < 15) || config.final_sigmas_type === 'zero');

    const [alphaS, sigmaS] = alphaSigma(this.#sigmas[index]);
    const [alphaT, sigmaT] = alphaSigma(this.#sigmas[index + 1]);
    const lambdaT = Math.log(alphaT) - Math.log(sigmaT);
    const lambdaS = Math.log(alphaS) - Math.log(sigmaS);
    const h = lambdaT - lambdaS;
    const sampleCoefficient = sigmaT / sigmaS;
    const firstCoefficient = alphaT * (Math.exp(-h) - 1);
    const previous = this.#previousPrediction;
    const n = sample.length;
    // The predicted x₀ goes into the array of two calls ago (only the last one is kept).
    const spare = this.#spare;
    const prediction = spare !== undefined && spare.length === n ? spare : new Float32Array(n);
    this.#spare = previous;
    this.#previousPrediction = prediction;
    const next = new Float32Array(n);
    const firstOrder = config.solver_order === 1 || this.#lowerOrderCount < 1 || lowerOrderFinal || previous === undefined;
    // One pass for epsilon models, the data prediction rounded to float32 as when it is
    // stored first; one loop per prediction type (no branch per element).
    if (firstOrder) {
      if (config.prediction_type === 'epsilon') {
        for (let i = 0; i < n; i++) {
          const x0 = Math.fround((sample[i] - sigmaS * modelOutput[i]) / alphaS);
          prediction[i] = x0;
          next[i] = sampleCoefficient * sample[i] - firstCoefficient * x0;
        }
      } else {
        dataPrediction(config.prediction_type, prediction, modelOutput, sample, alphaS, sigmaS);
        for (let i = 0; i < n; i++) next[i] = sampleCoefficient * sample[i] - firstCoefficient * prediction[i];
      }
    } else {
      const [alphaR, sigmaR] = alphaSigma(this.#sigmas[index - 1]);
      const lambdaR = Math.log(alphaR) - Math.log(sigmaR);
      const ratio = (lambdaS - lambdaR) / h;
      const secondCoefficient = config.solver_type === 'midpoint' ? -0.5 * firstCoefficient : alphaT * ((Math.exp(-h) - 1) / h + 1);
      if (config.prediction_type === 'epsilon') {
        for (let i = 0; i < n; i++) {
          const x0 = Math.fround((sample[i] - sigmaS * modelOutput[i]) / alphaS);
          prediction[i] = x0;
          const d1 = (x0 - previous[i]) / ratio;
          next[i] = sampleCoefficient * sample[i] - firstCoefficient * x0 + secondCoefficient * d1;
        }
      } else {
        dataPrediction(config.prediction_type, prediction, modelOutput, sample, alphaS, sigmaS);
        for (let i = 0; i < n; i++) {
          const d1 = (prediction[i] - previous[i]) / ratio;
          next[i] = sampleCoefficient * sample[i] - firstCoefficient * prediction[i] + secondCoefficient * d1;
        }
      }
    }
    if (this.#lowerOrderCount < config.solver_order) this.#lowerOrderCount++;
    return next;
  }
}

/** The predicted x₀ into `out`: epsilon (x − σ_t ε)/α_t, v_prediction α_t x − σ_t v, or sample as is. */
function dataPrediction(type: ResolvedSchedulerConfig['prediction_type'], out: Float32Array, modelOutput: Float32Array, sample: Float32Array, alphaS: number, sigmaS: number): void {
  const n = out.length;
  if (type === 'epsilon') for (let i = 0; i < n; i++) out[i] = (sample[i] - sigmaS * modelOutput[i]) / alphaS;
  else if (type === 'v_prediction') for (let i = 0; i < n; i++) out[i] = alphaS * sample[i] - sigmaS * modelOutput[i];
  else out.set(modelOutput);
}

/** α_t = 1/√(σ² + 1) and σ_t = σ α_t for a noise-to-signal ratio σ. */
function alphaSigma(sigma: number): [number, number] {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  return [alpha, sigma * alpha];
}

/** Karras et al.'s σ ramp with ρ = 7 from `sigmaMax` down to `sigmaMin`, `count` values. */
function karrasSigmas(sigmaMin: number, sigmaMax: number, count: number): number[] {
  const rho = 7;
  const minRoot = sigmaMin ** (1 / rho);
  const maxRoot = sigmaMax ** (1 / rho);
  return numpyLinspace(0, 1, count).map((ramp) => (maxRoot + ramp * (minRoot - maxRoot)) ** rho);
}

/**
 * The fractional training timestep of `sigma`: linear interpolation of ln σ between the
 * two schedule entries around it (diffusers' `_sigma_to_t`).
 */
function timestepOfSigma(sigma: number, logSigmas: Float64Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  let low = 0;
  for (let i = 0; i < logSigmas.length; i++) if (logSigma - logSigmas[i] >= 0) low = i;
  low = Math.min(low, logSigmas.length - 2);
  const weight = Math.min(1, Math.max(0, (logSigmas[low] - logSigma) / Math.fround(logSigmas[low] - logSigmas[low + 1])));
  return (1 - weight) * low + weight * (low + 1);
}
