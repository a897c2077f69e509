/**
 * A {@link SchedulerConfig} completed with the defaults of the diffusers class behind
 * each scheduler, and checked once, with messages that name the field.
 *
 * @module
 */
import { ErrorCodes, MedsynError, invalidOption } from '../../errors.js';
import type { TrainingScheduleConfig } from './_betas.js';
import type { SchedulerConfig, SchedulerName, SchedulerOptions } from './scheduler.js';

/** Every field a scheduler reads, filled in. Fields a scheduler does not read keep their common default. */
export interface ResolvedSchedulerConfig extends TrainingScheduleConfig {
  steps_offset: number;
  set_alpha_to_one: boolean;
  skip_prk_steps: boolean;
  prediction_type: 'epsilon' | 'v_prediction' | 'sample';
  timestep_spacing: 'leading' | 'linspace' | 'trailing';
  clip_sample: boolean;
  clip_sample_range: number;
  use_karras_sigmas: boolean;
  lower_order_final: boolean;
  euler_at_final: boolean;
  solver_order: 1 | 2;
  solver_type: 'midpoint' | 'heun';
  final_sigmas_type: 'zero' | 'sigma_min';
  lambda_min_clipped: number;
}

const COMMON_DEFAULTS: ResolvedSchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  rescale_betas_zero_snr: false,
  steps_offset: 0,
  set_alpha_to_one: false,
  skip_prk_steps: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'leading',
  clip_sample: false,
  clip_sample_range: 1,
  use_karras_sigmas: false,
  lower_order_final: true,
  euler_at_final: false,
  solver_order: 2,
  solver_type: 'midpoint',
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
};

/** Where diffusers' classes differ from {@link COMMON_DEFAULTS} (their `__init__` defaults). */
const CLASS_DEFAULTS: Record<SchedulerName, Partial<ResolvedSchedulerConfig>> = {
  pndm: {},
  ddim: { clip_sample: true, set_alpha_to_one: true },
  'dpmpp-2m': { timestep_spacing: 'linspace' },
  'euler-a': { timestep_spacing: 'linspace' },
};

/** The prediction types each diffusers class accepts. */
const PREDICTION_TYPES: Record<SchedulerName, readonly string[]> = {
  pndm: ['epsilon', 'v_prediction'],
  ddim: ['epsilon', 'v_prediction', 'sample'],
  'dpmpp-2m': ['epsilon', 'v_prediction', 'sample'],
  'euler-a': ['epsilon', 'v_prediction'],
};

/** Config switches that change the results and that medsyn does not implement: refused rather than ignored. */
const UNSUPPORTED_SWITCHES = ['thresholding', 'use_exponential_sigmas', 'use_beta_sigmas', 'use_lu_lambdas', 'use_flow_sigmas'] as const;

/**
 * Completes and checks `config` for scheduler `name`.
 *
 * @param file the config file, named in errors
 * @throws {MedsynError} `MEDSYN_ERR_BAD_MODEL` naming the field that is wrong or not supported
 */
export function resolveSchedulerConfig(name: SchedulerName, config: SchedulerConfig, file?: string): ResolvedSchedulerConfig {
  const where = file ?? 'scheduler config';
  const bad: (field: string, detail: string) => never = (field, detail) => {
    throw new MedsynError(ErrorCodes.BAD_MODEL, `Bad scheduler config ${where}: ${field} ${detail}`, {
      ...(file === undefined ? {} : { file }),
      option: field,
    });
  };
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new MedsynError(ErrorCodes.BAD_MODEL, `Bad scheduler config ${where}: must be a JSON object`, file === undefined ? {} : { file });
  }
  const given = (field: string): unknown => (config[field] === null ? undefined : config[field]);
  const resolved: ResolvedSchedulerConfig = { ...COMMON_DEFAULTS, ...CLASS_DEFAULTS[name] };

  const number = (field: keyof ResolvedSchedulerConfig, check: (value: number) => boolean, expected: string): void => {
    const value = given(field);
    if (value === undefined) return;
    if (typeof value !== 'number' || !check(value)) bad(field, `must be ${expected}, got ${JSON.stringify(value) ?? String(value)}`);
    (resolved as unknown as Record<string, unknown>)[field] = value;
  };
  const boolean = (field: keyof ResolvedSchedulerConfig): void => {
    const value = given(field);
    if (value === undefined) return;
    if (typeof value !== 'boolean') bad(field, `must be true or false, got ${JSON.stringify(value)}`);
    (resolved as unknown as Record<string, unknown>)[field] = value;
  };
  const choice = (field: keyof ResolvedSchedulerConfig, allowed: readonly string[], why = 'is not supported'): void => {
    const value = given(field);
    if (value === undefined) return;
    if (typeof value !== 'string' || !allowed.includes(value)) {
      bad(field, `${JSON.stringify(value)} ${why} (supported: ${allowed.join(', ')})`);
    }
    (resolved as unknown as Record<string, unknown>)[field] = value;
  };

  number('num_train_timesteps', (v) => Number.isInteger(v) && v >= 2 && v <= 100_000, 'an integer in [2, 100000]');
  number('beta_start', (v) => Number.isFinite(v) && v >= 0 && v < 1, 'a number in [0, 1)');
  number('beta_end', (v) => Number.isFinite(v) && v >= 0 && v < 1, 'a number in [0, 1)');
  choice('beta_schedule', ['linear', 'scaled_linear', 'squaredcos_cap_v2']);
  const trained = given('trained_betas');
  if (trained !== undefined) {
    if (!Array.isArray(trained) || !trained.every((beta) => typeof beta === 'number' && beta >= 0 && beta < 1)) {
      bad('trained_betas', 'must be null or an array of numbers in [0, 1)');
    }
    if (trained.length !== resolved.num_train_timesteps) {
      bad('trained_betas', `has ${trained.length} betas but num_train_timesteps is ${resolved.num_train_timesteps}`);
    }
    resolved.trained_betas = trained as number[];
  }
  boolean('rescale_betas_zero_snr');
  number('steps_offset', (v) => Number.isInteger(v) && v >= 0 && v < resolved.num_train_timesteps, `an integer in [0, ${resolved.num_train_timesteps})`);
  boolean('set_alpha_to_one');
  boolean('skip_prk_steps');
  choice('prediction_type', PREDICTION_TYPES.ddim);
  choice('prediction_type', PREDICTION_TYPES[name], `is not supported by the ${name} scheduler`);
  choice('timestep_spacing', ['leading', 'linspace', 'trailing']);
  boolean('clip_sample');
  number('clip_sample_range', (v) => Number.isFinite(v) && v > 0, 'a positive number');
  boolean('use_karras_sigmas');
  boolean('lower_order_final');
  boolean('euler_at_final');
  number('solver_order', (v) => v === 1 || v === 2, '1 or 2 (dpmpp-2m is DPM-Solver++ of order 2, or 1 when asked)');
  choice('solver_type', ['midpoint', 'heun']);
  choice('final_sigmas_type', ['zero', 'sigma_min']);
  number('lambda_min_clipped', (v) => !Number.isNaN(v), 'a number');
  for (const field of UNSUPPORTED_SWITCHES) {
    if (given(field) !== undefined && given(field) !== false) bad(field, `${JSON.stringify(given(field))} is not supported (medsyn implements it off only)`);
  }
  return resolved;
}

/**
 * Checks the per-loop options against a resolved config.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` naming `steps`, `eta` or `karras`
 */
export function checkSchedulerOptions(config: ResolvedSchedulerConfig, options: SchedulerOptions): void {
  if (typeof options !== 'object' || options === null) invalidOption('steps', 'scheduler options must be an object with steps');
  const { steps, eta, karras } = options;
  if (!Number.isInteger(steps) || steps < 1 || steps > config.num_train_timesteps) {
    invalidOption('steps', `must be an integer in [1, ${config.num_train_timesteps}] (the model's num_train_timesteps), got ${steps}`);
  }
  if (eta !== undefined && !(typeof eta === 'number' && eta >= 0 && eta <= 1)) invalidOption('eta', `must be a number in [0, 1], got ${eta}`);
  if (karras !== undefined && typeof karras !== 'boolean') invalidOption('karras', `must be true or false, got ${karras}`);
}

/**
 * Throws unless every timestep indexes the training schedule (a large `steps_offset` with
 * many steps can push `leading` timesteps past the end).
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` naming `steps`
 */
export function checkTimestepRange(timesteps: readonly number[], config: ResolvedSchedulerConfig, steps: number): void {
  for (const timestep of timesteps) {
    if (!(timestep >= 0 && timestep <= config.num_train_timesteps - 1)) {
      invalidOption(
        'steps',
        `${steps} steps with steps_offset ${config.steps_offset} and ${config.timestep_spacing} spacing give timestep ${timestep}, outside [0, ${config.num_train_timesteps - 1}] (use fewer steps)`,
      );
    }
  }
}
