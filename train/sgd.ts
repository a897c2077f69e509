/**
 * Stochastic gradient descent with momentum, computed as PyTorch's
 * `torch.optim.SGD` (dampening 0).
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import type { Value } from './graph.js';
import * as ops from './ops.js';
import { decayMatrices, type Optimizer } from './optimizer.js';
import { constantSchedule, type Schedule } from './schedule.js';

/** Options of {@link sgd}. */
export interface SgdOptions {
  /** The learning rate, or a schedule of it. @default 0.01 */
  lr?: number | Schedule;
  /** The momentum factor; 0 keeps no state. @default 0 */
  momentum?: number;
  /** Nesterov momentum (needs `momentum > 0`). @default false */
  nesterov?: boolean;
  /** L2 penalty added to the gradient (coupled, as PyTorch's SGD). @default 0 */
  weightDecay?: number;
  /** Which parameters the penalty applies to. @default matrices only (rank ≥ 2) */
  decay?: (parameter: Value) => boolean;
}

/**
 * SGD. For each update, with g the gradient and lr from the schedule:
 *
 *     g ← g + wd·p                      (only where `decay` says so)
 *     b ← μ·b + g                       (b starts at 0, so the first b is g)
 *     d ← nesterov ? g + μ·b : b
 *     p ← p − lr·d
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a momentum outside [0, 1] or nesterov without momentum
 * @example
 * ```ts
 * const optimizer = sgd({ lr: 0.5, momentum: 0.9 });
 * ```
 */
export function sgd(options: SgdOptions = {}): Optimizer {
  const momentum = options.momentum ?? 0;
  const nesterov = options.nesterov ?? false;
  const weightDecay = options.weightDecay ?? 0;
  if (!(momentum >= 0 && momentum <= 1)) invalidOption('momentum', `must be in [0, 1], got ${String(options.momentum)}`);
  if (nesterov && momentum === 0) invalidOption('nesterov', 'needs momentum > 0');
  if (!(weightDecay >= 0)) invalidOption('weightDecay', `must be ≥ 0, got ${String(options.weightDecay)}`);
  const schedule = typeof options.lr === 'object' ? options.lr : constantSchedule(options.lr ?? 0.01);
  return {
    name: 'sgd',
    config: Object.freeze({ momentum, nesterov, weightDecay }),
    schedule,
    slots: momentum > 0 ? ['momentum_buffer'] : [],
    scalars: ['lr'],
    decays: options.decay ?? decayMatrices,
    scalarValues: (step) => ({ lr: schedule.at(step) }),
    update({ parameter, gradient, state, decay, scalar }) {
      const g = decay && weightDecay > 0 ? ops.add(gradient, ops.mul(parameter, weightDecay)) : gradient;
      if (momentum === 0) return { parameter: ops.sub(parameter, ops.mul(g, scalar('lr'))), state: [] };
      const buffer = ops.add(ops.mul(state[0], momentum), g);
      const direction = nesterov ? ops.add(g, ops.mul(buffer, momentum)) : buffer;
      return { parameter: ops.sub(parameter, ops.mul(direction, scalar('lr'))), state: [buffer] };
    },
  };
}
