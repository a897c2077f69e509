/**
 * Parameter initialisers: functions from a shape and a seeded random source to
 * the initial values. Weights are laid out `[in, out]` (a linear layer computes
 * `x @ w`), so the fan-in is the product of all dimensions but the last.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import type { RandomSource } from './_random.js';

export type { RandomSource } from './_random.js';

/**
 * Makes the initial values of a parameter of `shape`, drawing from `random`
 * (seeded by the graph's seed and the parameter's name).
 */
export type Initializer = (shape: readonly number[], random: RandomSource) => ArrayLike<number>;

function count(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

/**
 * The fan-in and fan-out of a weight of `shape` laid out `[in, out]`.
 *
 * @example
 * ```ts
 * fans([768, 512]); // { fanIn: 768, fanOut: 512 }
 * ```
 */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0], fanOut: shape[0] };
  return { fanIn: count(shape.slice(0, -1)), fanOut: shape[shape.length - 1] };
}

/**
 * All zeros.
 *
 * @example
 * ```ts
 * const b = g.parameter('b', [512], { init: zeros() });
 * ```
 */
export function zeros(): Initializer {
  return (shape) => new Float64Array(count(shape));
}

/**
 * Every element `value`.
 *
 * @example
 * ```ts
 * const logitScale = g.parameter('logit_scale', [], { init: constant(Math.log(1 / 0.07)) });
 * ```
 */
export function constant(value: number): Initializer {
  if (!Number.isFinite(value)) invalidOption('value', `must be a finite number, got ${value}`);
  return (shape) => new Float64Array(count(shape)).fill(value);
}

/** Options of {@link uniform}. */
export interface UniformOptions {
  /** The lower bound. @default -1 */
  low?: number;
  /** The upper bound (exclusive). @default 1 */
  high?: number;
}

/**
 * Uniform draws in [low, high).
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` when `low` is not below `high`
 * @example
 * ```ts
 * const w = g.parameter('w', [2, 8], { init: uniform({ low: -0.5, high: 0.5 }) });
 * ```
 */
export function uniform(options: UniformOptions = {}): Initializer {
  const low = options.low ?? -1;
  const high = options.high ?? 1;
  if (!(Number.isFinite(low) && Number.isFinite(high) && low < high)) invalidOption('low', `must be finite and below high, got [${low}, ${high})`);
  return (shape, random) => {
    const out = new Float64Array(count(shape));
    for (let i = 0; i < out.length; i++) out[i] = low + (high - low) * random.uniform();
    return out;
  };
}

/** Options of {@link normal}. */
export interface NormalOptions {
  /** The mean. @default 0 */
  mean?: number;
  /** The standard deviation. @default 1 */
  std?: number;
}

/**
 * Normal draws.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a negative `std`
 * @example
 * ```ts
 * const embedding = g.parameter('embedding', [1000, 64], { init: normal({ std: 0.02 }) });
 * ```
 */
export function normal(options: NormalOptions = {}): Initializer {
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  if (!(std >= 0) || !Number.isFinite(mean)) invalidOption('std', `must be ≥ 0 with a finite mean, got std ${std}, mean ${mean}`);
  return (shape, random) => {
    const out = new Float64Array(count(shape));
    for (let i = 0; i < out.length; i++) out[i] = mean + std * random.normal();
    return out;
  };
}

/** Options of {@link glorotUniform}. */
export interface GlorotUniformOptions {
  /** A factor on the bound (√2 for ReLU layers). @default 1 */
  gain?: number;
}

/**
 * Glorot (Xavier) uniform: U(−a, a) with a = gain·√(6 / (fanIn + fanOut)).
 *
 * @example
 * ```ts
 * const w = g.parameter('w', [768, 512], { init: glorotUniform() });
 * ```
 */
export function glorotUniform(options: GlorotUniformOptions = {}): Initializer {
  const gain = options.gain ?? 1;
  if (!(gain > 0)) invalidOption('gain', `must be > 0, got ${gain}`);
  return (shape, random) => {
    const { fanIn, fanOut } = fans(shape);
    const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
    return uniform({ low: -bound, high: bound })(shape, random);
  };
}

/** Options of {@link linearUniform}. */
export interface LinearUniformOptions {
  /** The layer's input size; a bias needs it, a weight `[in, out]` has it. @default the weight's fan-in */
  fanIn?: number;
}

/**
 * PyTorch's `nn.Linear` default for weights and biases: U(−1/√fanIn, 1/√fanIn).
 *
 * @example
 * ```ts
 * const w = g.parameter('w', [768, 512], { init: linearUniform() });
 * const b = g.parameter('b', [512], { init: linearUniform({ fanIn: 768 }) });
 * ```
 */
export function linearUniform(options: LinearUniformOptions = {}): Initializer {
  if (options.fanIn !== undefined && !(Number.isSafeInteger(options.fanIn) && options.fanIn > 0)) {
    invalidOption('fanIn', `must be a positive integer, got ${options.fanIn}`);
  }
  return (shape, random) => {
    const bound = 1 / Math.sqrt(options.fanIn ?? fans(shape).fanIn);
    return uniform({ low: -bound, high: bound })(shape, random);
  };
}
