/**
 * AdamW (Loshchilov & Hutter): Adam with bias correction and weight decay
 * decoupled from the gradient, computed exactly as PyTorch's `torch.optim.AdamW`.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import type { Value } from './graph.js';
import * as ops from './ops.js';
import { decayMatrices, type Optimizer } from './optimizer.js';
import { constantSchedule, type Schedule } from './schedule.js';

/** Options of {@link adamw}. */
export interface AdamWOptions {
  /** The learning rate, or a schedule of it. @default 1e-3 */
  lr?: number | Schedule;
  /** The decay rate of the first-moment average. @default 0.9 */
  beta1?: number;
  /** The decay rate of the second-moment average. @default 0.999 */
  beta2?: number;
  /** Added to the root of the second moment. @default 1e-8 */
  epsilon?: number;
  /** The decoupled weight decay: each update multiplies a parameter by `1 − lr·weightDecay`. @default 0.01 */
  weightDecay?: number;
  /**
   * Which parameters decay. @default matrices only (rank ≥ 2): biases, gains and a
   * learnable temperature do not
   */
  decay?: (parameter: Value) => boolean;
}

/**
 * AdamW. For update t (1-based), with learning rate lr from the schedule:
 *
 *     p ← p·(1 − lr·wd)                (only where `decay` says so)
 *     m ← β1·m + (1 − β1)·g
 *     v ← β2·v + (1 − β2)·g²
 *     p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
 *
 * The bias corrections are computed in double precision in TypeScript and fed
 * as scalars, so one graph serves every step. The graph computes the same
 * quantity rearranged to touch each element fewer times:
 * `p − s · m / (√v + ε̂)` with `s = lr·√(1 − β2ᵗ)/(1 − β1ᵗ)` and `ε̂ = ε·√(1 − β2ᵗ)`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for betas outside [0, 1), a negative epsilon or decay
 * @example
 * ```ts
 * const optimizer = adamw({ lr: warmupCosine({ peak: 5e-4, warmupSteps: 100, totalSteps: 5000 }), weightDecay: 0.2 });
 * ```
 */
export function adamw(options: AdamWOptions = {}): Optimizer {
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.999;
  const epsilon = options.epsilon ?? 1e-8;
  const weightDecay = options.weightDecay ?? 0.01;
  if (!(beta1 >= 0 && beta1 < 1)) invalidOption('beta1', `must be in [0, 1), got ${String(options.beta1)}`);
  if (!(beta2 >= 0 && beta2 < 1)) invalidOption('beta2', `must be in [0, 1), got ${String(options.beta2)}`);
  if (!(epsilon >= 0)) invalidOption('epsilon', `must be ≥ 0, got ${String(options.epsilon)}`);
  if (!(weightDecay >= 0)) invalidOption('weightDecay', `must be ≥ 0, got ${String(options.weightDecay)}`);
  const schedule = typeof options.lr === 'object' ? options.lr : constantSchedule(options.lr ?? 1e-3);
  const decays = options.decay ?? decayMatrices;
  return {
    name: 'adamw',
    config: Object.freeze({ beta1, beta2, epsilon, weightDecay }),
    schedule,
    slots: ['exp_avg', 'exp_avg_sq'],
    scalars: ['step_size', 'epsilon_hat', 'decay_factor'],
    decays,
    scalarValues(step) {
      const lr = schedule.at(step);
      const t = step + 1;
      const correction2 = Math.sqrt(1 - beta2 ** t);
      return {
        step_size: (lr * correction2) / (1 - beta1 ** t),
        epsilon_hat: epsilon * correction2,
        decay_factor: 1 - lr * weightDecay,
      };
    },
    update({ parameter, gradient, state, decay, scalar }) {
      const [m, v] = state;
      const nextM = ops.add(ops.mul(m, beta1), ops.mul(gradient, 1 - beta1));
      const nextV = ops.add(ops.mul(v, beta2), ops.mul(ops.mul(gradient, gradient), 1 - beta2));
      const denominator = ops.add(ops.sqrt(nextV), scalar('epsilon_hat'));
      const decayed = decay && weightDecay > 0 ? ops.mul(parameter, scalar('decay_factor')) : parameter;
      const next = ops.sub(decayed, ops.mul(ops.div(nextM, denominator), scalar('step_size')));
      return { parameter: next, state: [nextM, nextV] };
    },
  };
}
