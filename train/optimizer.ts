/**
 * What an optimizer gives the training step: the per-parameter state it keeps,
 * the scalars it needs fed at each step, and the graph of one update.
 * `sgd` and `adamw` implement it.
 *
 * @module
 */
import type { Value } from './graph.js';
import type { Schedule } from './schedule.js';

/** What {@link Optimizer.update} gets for one parameter. */
export interface OptimizerUpdateContext {
  /** The parameter's current value. */
  parameter: Value;
  /** Its gradient (clipped when the step clips). */
  gradient: Value;
  /** Its state tensors, one per {@link Optimizer.slots} entry, same shape as the parameter. */
  state: readonly Value[];
  /** Whether weight decay applies to it. */
  decay: boolean;
  /** The per-step scalar named `name` (one of {@link Optimizer.scalars}) in the parameter's type. */
  scalar(name: string): Value;
}

/** An optimizer's update of one parameter, as graph values. */
export interface OptimizerUpdate {
  parameter: Value;
  state: Value[];
}

/** An optimizer whose update runs inside the training graph. */
export interface Optimizer {
  /** Its kind, recorded in checkpoints (`sgd`, `adamw`). */
  readonly name: string;
  /** Its hyper-parameters, recorded in checkpoints. */
  readonly config: Readonly<Record<string, number | boolean | string>>;
  /** The learning rate per step. */
  readonly schedule: Schedule;
  /** The state kept per parameter, by name (`exp_avg`, `momentum_buffer`, as PyTorch names them). */
  readonly slots: readonly string[];
  /** The scalars fed at every step. */
  readonly scalars: readonly string[];
  /** Whether weight decay applies to `parameter` (its mask). */
  decays(parameter: Value): boolean;
  /** The values of {@link scalars} for update `step` (0 for the first), computed in double precision. */
  scalarValues(step: number): Readonly<Record<string, number>>;
  /** Builds the update of one parameter into the graph. */
  update(context: OptimizerUpdateContext): OptimizerUpdate;
}

/**
 * The default weight-decay mask: matrices and larger decay; biases, gains and scalars (a temperature) do not.
 *
 * @example
 * ```ts
 * adamw({ weightDecay: 0.2, decay: (p) => decayMatrices(p) && !p.name.startsWith('frozen.') });
 * ```
 */
export function decayMatrices(parameter: { readonly shape: readonly number[] }): boolean {
  return parameter.shape.length >= 2;
}
