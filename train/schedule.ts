/**
 * Learning-rate schedules, computed in TypeScript and fed to the training
 * graph as a scalar at every step.
 *
 * @module
 */
import { invalidOption } from '../errors.js';

/** A learning rate per optimizer step. */
export interface Schedule {
  /** The schedule's kind, recorded in checkpoints. */
  readonly name: string;
  /** Its settings, recorded in checkpoints. */
  readonly config: Readonly<Record<string, number>>;
  /** The learning rate of update `step` (0 for the first update). */
  at(step: number): number;
}

function check(option: string, value: number, ok: boolean, rule: string): void {
  if (!ok || !Number.isFinite(value)) invalidOption(option, `must be ${rule}, got ${String(value)}`);
}

/**
 * The same learning rate at every step.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a negative or non-finite rate
 * @example
 * ```ts
 * const optimizer = sgd({ lr: constantSchedule(0.1) });
 * ```
 */
export function constantSchedule(lr: number): Schedule {
  check('lr', lr, lr >= 0, 'a number ≥ 0');
  return Object.freeze({ name: 'constant', config: Object.freeze({ lr }), at: () => lr });
}

/** Options of {@link warmupCosine}. */
export interface WarmupCosineOptions {
  /** The learning rate at the end of the warm-up. */
  peak: number;
  /** Updates over which the rate rises linearly to `peak` (open_clip: `peak·(step+1)/warmupSteps`). @default 0 */
  warmupSteps?: number;
  /** The update at which the cosine reaches `final`; the rate stays there after. */
  totalSteps: number;
  /** The rate at the end of the cosine. @default 0 */
  final?: number;
}

/**
 * Linear warm-up, then a half cosine from `peak` down to `final` at
 * `totalSteps` (the schedule of CLIP / open_clip's `cosine_lr`).
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for negative rates or `warmupSteps` beyond `totalSteps`
 * @example
 * ```ts
 * const lr = warmupCosine({ peak: 5e-4, warmupSteps: 500, totalSteps: 20_000 });
 * lr.at(0);      // 1e-6
 * lr.at(20_000); // 0
 * ```
 */
export function warmupCosine(options: WarmupCosineOptions): Schedule {
  const { peak, totalSteps } = options;
  const warmupSteps = options.warmupSteps ?? 0;
  const final = options.final ?? 0;
  check('peak', peak, peak >= 0, 'a number ≥ 0');
  check('final', final, final >= 0, 'a number ≥ 0');
  check('totalSteps', totalSteps, Number.isSafeInteger(totalSteps) && totalSteps > 0, 'a whole number > 0');
  check('warmupSteps', warmupSteps, Number.isSafeInteger(warmupSteps) && warmupSteps >= 0 && warmupSteps <= totalSteps, `a whole number in [0, totalSteps]`);
  const decaySteps = totalSteps - warmupSteps;
  return Object.freeze({
    name: 'warmup-cosine',
    config: Object.freeze({ peak, warmupSteps, totalSteps, final }),
    at(step: number): number {
      if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
      if (step >= totalSteps || decaySteps === 0) return final;
      const progress = (step - warmupSteps) / decaySteps;
      return final + 0.5 * (1 + Math.cos(Math.PI * progress)) * (peak - final);
    },
  });
}
