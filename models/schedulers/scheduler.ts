/**
 * The contract between a diffusion loop and its noise scheduler. A scheduler is
 * made for one denoising loop (one batch): it owns the loop's state (PNDM's
 * history of model outputs, DPM-Solver's previous output), so each batch gets a
 * fresh one from `createScheduler`.
 *
 * The loop, for a batch of latents `x` (all samples concatenated, float32):
 *
 * ```ts
 * const scheduler = createScheduler('pndm', config, { steps: 50 });
 * x = x.map((v) => v * scheduler.initNoiseSigma);
 * for (let i = 0; i < scheduler.timesteps.length; i++) {
 *   const eps = denoise(scheduler.scaleModelInput(x, i), scheduler.timesteps[i]);
 *   x = scheduler.step(eps, i, x, scheduler.stochastic ? drawNormals(x.length) : undefined);
 * }
 * ```
 *
 * @module
 */

/** The schedulers `--scheduler` selects. */
export const SCHEDULER_NAMES = ['pndm', 'ddim', 'dpmpp-2m', 'euler-a'] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/**
 * The fields of diffusers' `scheduler_config.json` that medsyn reads, with
 * diffusers' names. Unknown fields are ignored; missing ones take diffusers'
 * defaults for the scheduler in question.
 */
export interface SchedulerConfig {
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
  trained_betas?: number[] | null;
  steps_offset?: number;
  set_alpha_to_one?: boolean;
  skip_prk_steps?: boolean;
  prediction_type?: 'epsilon' | 'v_prediction' | 'sample';
  timestep_spacing?: 'leading' | 'linspace' | 'trailing';
  clip_sample?: boolean;
  clip_sample_range?: number;
  use_karras_sigmas?: boolean;
  lower_order_final?: boolean;
  solver_order?: number;
  /** DPM-Solver++'s second-order formula. @default 'midpoint' */
  solver_type?: 'midpoint' | 'heun';
  /** DPM-Solver++: the σ the last step goes to. @default 'zero' */
  final_sigmas_type?: 'zero' | 'sigma_min';
  /** DPM-Solver++: a first-order last step whatever the step count. @default false */
  euler_at_final?: boolean;
  /** DPM-Solver++: drops the noisiest timesteps, those with λ = ln(α/σ) below it. @default -Infinity */
  lambda_min_clipped?: number;
  /** Rescales the betas to zero terminal SNR (DDIM, DPM-Solver++, Euler ancestral). @default false */
  rescale_betas_zero_snr?: boolean;
  /** The diffusers class that wrote the config; see `defaultSchedulerName`. */
  _class_name?: string;
  [field: string]: unknown;
}

/** Per-loop choices that are not in the config file. */
export interface SchedulerOptions {
  /** Inference steps (denoiser calls may be one more, as PNDM makes). */
  steps: number;
  /** DDIM's eta: 0 is deterministic, 1 is DDPM-like. @default 0 */
  eta?: number;
  /** DPM-Solver++: Karras sigmas, overriding the config's `use_karras_sigmas`. */
  karras?: boolean;
}

/** One denoising loop's scheduler. */
export interface Scheduler {
  readonly name: SchedulerName;
  /** The timestep passed to the denoiser at each call, in order: one entry per denoiser call. */
  readonly timesteps: readonly number[];
  /** What the initial N(0, 1) latents are multiplied by. */
  readonly initNoiseSigma: number;
  /** Whether `step` needs fresh N(0, 1) noise (DDIM with eta > 0, Euler ancestral). */
  readonly stochastic: boolean;
  /** The denoiser's input at call `index` (Euler divides by √(σ² + 1)); may return `sample` itself. */
  scaleModelInput(sample: Float32Array, index: number): Float32Array;
  /**
   * Advances the latents after denoiser call `index`.
   * @param modelOutput the denoiser's output (after guidance), same length as `sample`
   * @param index the call's position in `timesteps`
   * @param sample the latents the call was made for (before `scaleModelInput`)
   * @param noise N(0, 1) draws, same length as `sample`, when `stochastic`
   * @returns the next latents (a new array)
   */
  step(modelOutput: Float32Array, index: number, sample: Float32Array, noise?: Float32Array): Float32Array;
}
