/**
 * `--scheduler NAME` to a {@link Scheduler}, and the model folder's
 * `scheduler_config.json` to a {@link SchedulerConfig}.
 *
 * | name       | diffusers class                     | denoiser calls for N steps          | stochastic        |
 * |------------|-------------------------------------|-------------------------------------|-------------------|
 * | `pndm`     | `PNDMScheduler`                     | N + 1 (`skip_prk_steps`), else N + 9 | no                |
 * | `ddim`     | `DDIMScheduler`                     | N                                   | when eta > 0      |
 * | `dpmpp-2m` | `DPMSolverMultistepScheduler`       | N                                   | no                |
 * | `euler-a`  | `EulerAncestralDiscreteScheduler`   | N                                   | yes               |
 *
 * Each scheduler reads the config fields its diffusers class reads; a field the file
 * leaves out takes that class's default, exactly as `Class.from_config(config)` does
 * (so SD 1.x's PNDM config run with `dpmpp-2m` or `euler-a` gets `linspace` spacing).
 *
 * @module
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, MedsynError, invalidOption } from '../../errors.js';
import { resolveSchedulerConfig } from './_config.js';
import { createDdimScheduler } from './ddim_scheduler.js';
import { createDpmSolverMultistepScheduler } from './dpm_solver_multistep_scheduler.js';
import { createEulerAncestralScheduler } from './euler_ancestral_scheduler.js';
import { createPndmScheduler } from './pndm_scheduler.js';
import { SCHEDULER_NAMES, type Scheduler, type SchedulerConfig, type SchedulerName, type SchedulerOptions } from './scheduler.js';

/**
 * The scheduler a config's `_class_name` maps to, used when `--scheduler` is not given:
 * each implemented class maps to itself. Any other class, or none, falls back to
 * `pndm` (see {@link defaultSchedulerName}).
 */
export const SCHEDULER_CLASS_NAMES: Readonly<Record<string, SchedulerName>> = Object.freeze({
  PNDMScheduler: 'pndm',
  DDIMScheduler: 'ddim',
  DPMSolverMultistepScheduler: 'dpmpp-2m',
  EulerAncestralDiscreteScheduler: 'euler-a',
});

/**
 * The scheduler a model's config asks for: {@link SCHEDULER_CLASS_NAMES}`[_class_name]`,
 * or `pndm` (Stable Diffusion 1.x's scheduler, whose config fields every scheduler here
 * reads) for another class or none.
 *
 * @example
 * ```ts
 * defaultSchedulerName({ _class_name: 'DDIMScheduler' }); // 'ddim'
 * ```
 */
export function defaultSchedulerName(config: SchedulerConfig): SchedulerName {
  const className = config._class_name;
  return (typeof className === 'string' && Object.hasOwn(SCHEDULER_CLASS_NAMES, className) && SCHEDULER_CLASS_NAMES[className]) || 'pndm';
}

/**
 * Makes a fresh scheduler for one denoising loop.
 *
 * @param name one of {@link SCHEDULER_NAMES}
 * @param config the model's scheduler config (diffusers' field names)
 * @param options the steps and the per-loop choices
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for an unknown name or bad options
 *   (steps < 1 or > `num_train_timesteps`, eta outside [0, 1]); `MEDSYN_ERR_BAD_MODEL`
 *   for a config value the scheduler does not support
 * @example
 * ```ts
 * const config = await readSchedulerConfig('roentgen/scheduler');
 * const scheduler = createScheduler('dpmpp-2m', config, { steps: 25, karras: true });
 * ```
 */
export function createScheduler(name: SchedulerName, config: SchedulerConfig, options: SchedulerOptions): Scheduler {
  switch (name) {
    case 'pndm':
      return createPndmScheduler(config, options);
    case 'ddim':
      return createDdimScheduler(config, options);
    case 'dpmpp-2m':
      return createDpmSolverMultistepScheduler(config, options);
    case 'euler-a':
      return createEulerAncestralScheduler(config, options);
    default:
      return invalidOption('scheduler', `must be one of ${SCHEDULER_NAMES.join(', ')}, got ${JSON.stringify(name)}`);
  }
}

/**
 * Reads `scheduler_config.json` from `dir` (the `scheduler/` folder of a diffusers or
 * optimum export, or the model folder above it) and checks every field any scheduler
 * reads. Python's `NaN` and `±Infinity`, which diffusers may write, are accepted.
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` when there is no config file;
 *   `MEDSYN_ERR_BAD_MODEL` for a file that is not a JSON object or has a field of the
 *   wrong type or an unsupported value (beta_schedule, prediction_type, timestep_spacing …)
 * @example
 * ```ts
 * const config = await readSchedulerConfig('models/roentgen');
 * const scheduler = createScheduler(defaultSchedulerName(config), config, { steps: 50 });
 * ```
 */
export async function readSchedulerConfig(dir: string): Promise<SchedulerConfig> {
  const candidates = [join(dir, 'scheduler_config.json'), join(dir, 'scheduler', 'scheduler_config.json')];
  let file: string | undefined;
  for (const candidate of candidates) {
    if (await stat(candidate).then((s) => s.isFile(), () => false)) {
      file = candidate;
      break;
    }
  }
  if (file === undefined) {
    throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot read the scheduler config: no ${candidates.join(' or ')} (is ${dir} a diffusers or optimum model folder?)`, {
      file: candidates[0],
    });
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new MedsynError(ErrorCodes.READ_FAILED, `Cannot read the scheduler config ${file}: ${(cause as Error).message}`, { file, cause });
  }
  let config: unknown;
  try {
    config = parsePythonJson(text);
  } catch (cause) {
    throw new MedsynError(ErrorCodes.BAD_MODEL, `Bad scheduler config ${file}: not valid JSON (${(cause as Error).message})`, { file, cause });
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new MedsynError(ErrorCodes.BAD_MODEL, `Bad scheduler config ${file}: must be a JSON object`, { file });
  }
  // Every field is checked now, so a bad file fails at start, not at the first batch. DDIM
  // takes every prediction type; whether the chosen scheduler does is checked when it is made.
  resolveSchedulerConfig('ddim', config as SchedulerConfig, file);
  return config as SchedulerConfig;
}

/** JSON.parse that also takes the bare `NaN`, `Infinity` and `-Infinity` values Python's json module writes. */
function parsePythonJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const tokens: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };
    const marker = '\u0000medsyn-number:';
    // Only outside strings: split on string literals and rewrite the rest.
    const rewritten = text.replace(/("(?:[^"\\]|\\.)*")|(-?Infinity|NaN)/g, (match, string: string | undefined) =>
      string !== undefined ? string : JSON.stringify(marker + match),
    );
    if (rewritten === text) throw error;
    return JSON.parse(rewritten, (_key, value: unknown) =>
      typeof value === 'string' && value.startsWith(marker) ? tokens[value.slice(marker.length)] : value,
    );
  }
}
