/**
 * Gradient checks against central finite differences, for the op and layer
 * tests: the analytic gradient from `grad` is compared with (L(x+h) − L(x−h))/2h
 * for every element (or a sample of them) of every input.
 */
import { Graph, type Value } from '../../train/graph.js';
import { GraphSession } from '../../train/graph_session.js';
import { grad } from '../../train/grad.js';
import * as ops from '../../train/ops.js';
import { randomSource } from '../../train/_random.js';
import type { FloatDType } from '../../train/dtype.js';

/** One input of a checked function. */
export interface CheckedInput {
  shape: number[];
  /** Values; random in [-1, 1) (or [0.5, 1.5) when positive) if not given. */
  values?: number[];
  positive?: boolean;
}

/** A function checked at one point. */
export interface GradientCase {
  dtype: FloatDType;
  inputs: CheckedInput[];
  build(g: Graph, ...inputs: Value[]): Value;
}

/** Where an analytic and a numeric gradient disagree. */
export interface Mismatch {
  input: number;
  element: number;
  analytic: number;
  numeric: number;
}

/** The tolerance of each precision: float64 is checked tightly, float32 loosely. */
export const TOLERANCE: Record<FloatDType, { step: number; atol: number; rtol: number }> = {
  float64: { step: 1e-6, atol: 1e-7, rtol: 1e-6 },
  float32: { step: 3e-3, atol: 3e-3, rtol: 1e-2 },
};

/** The elements where `analytic` and `numeric` differ beyond the tolerance. */
export function compareGradients(analytic: ArrayLike<number>, numeric: ArrayLike<number>, dtype: FloatDType, input = 0): Mismatch[] {
  const { atol, rtol } = TOLERANCE[dtype];
  const out: Mismatch[] = [];
  for (let i = 0; i < numeric.length; i++) {
    const a = analytic[i];
    const n = numeric[i];
    if (!(Math.abs(a - n) <= atol + rtol * Math.max(Math.abs(a), Math.abs(n)))) out.push({ input, element: i, analytic: a, numeric: n });
  }
  return out;
}

/** The checked function's inputs at the evaluation point. */
function startingValues(c: GradientCase, seed: number): Float64Array[] {
  const random = randomSource(seed, 'gradcheck');
  return c.inputs.map((input) => {
    const size = input.shape.reduce((a, b) => a * b, 1);
    if (input.values) return Float64Array.from(input.values);
    return Float64Array.from({ length: size }, () => (input.positive ? 0.5 + random.uniform() : 2 * random.uniform() - 1));
  });
}

/**
 * Checks every input's gradient; returns the mismatches (none when the rule is right).
 * The loss is Σ cast(f(x), float64)·r with a fixed random r, so every output element matters.
 */
export async function checkGradient(c: GradientCase, options: { seed?: number; maxElements?: number } = {}): Promise<Mismatch[]> {
  const g = new Graph();
  const inputs = c.inputs.map((input, i) => g.input(`x${i}`, c.dtype, input.shape));
  const y = c.build(g, ...inputs);
  const random = randomSource(options.seed ?? 1, 'weights');
  const weights = g.constant(Float64Array.from({ length: y.size }, () => random.uniform() + 0.5), { shape: y.shape, dtype: 'float64' });
  const loss = ops.reduceSum(ops.mul(ops.cast(y, 'float64'), weights));
  const gradients = grad(loss, inputs);
  const outputs: Record<string, Value> = { loss };
  gradients.forEach((gradient, i) => (outputs[`g${i}`] = gradient));
  const analyticSession = await GraphSession.create(g, outputs, { intraOpThreads: 1 });
  const lossSession = await GraphSession.create(g, { loss }, { intraOpThreads: 1 });
  const point = startingValues(c, options.seed ?? 1);
  const typed = (values: Float64Array): Float32Array | Float64Array => (c.dtype === 'float64' ? values : Float32Array.from(values));
  const feed = (values: Float64Array[]): Record<string, Float32Array | Float64Array> =>
    Object.fromEntries(values.map((v, i) => [`x${i}`, typed(v)]));
  const analytic = await analyticSession.run(feed(point));
  const { step } = TOLERANCE[c.dtype];
  const mismatches: Mismatch[] = [];
  for (let i = 0; i < point.length; i++) {
    const size = point[i].length;
    const maxElements = options.maxElements ?? 48;
    const elements = size <= maxElements ? [...Array(size).keys()] : Array.from({ length: maxElements }, (_, k) => Math.floor((k * size) / maxElements));
    const numeric: number[] = [];
    const picked: number[] = [];
    for (const element of elements) {
      const original = point[i][element];
      // Perturb the value as it is stored, so that float32 rounding does not bias the difference.
      const stored = c.dtype === 'float32' ? Math.fround(original) : original;
      const plusValue = c.dtype === 'float32' ? Math.fround(stored + step) : stored + step;
      const minusValue = c.dtype === 'float32' ? Math.fround(stored - step) : stored - step;
      point[i][element] = plusValue;
      const plus = (await lossSession.run(feed(point))).loss[0] as number;
      point[i][element] = minusValue;
      const minus = (await lossSession.run(feed(point))).loss[0] as number;
      point[i][element] = original;
      numeric.push((plus - minus) / (plusValue - minusValue));
      picked.push(Number(analytic[`g${i}`][element]));
    }
    for (const m of compareGradients(picked, numeric, c.dtype, i)) mismatches.push({ ...m, element: elements[m.element] });
  }
  await analyticSession.release();
  await lossSession.release();
  return mismatches;
}
