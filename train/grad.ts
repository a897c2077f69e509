/**
 * Reverse-mode automatic differentiation on the graph.
 *
 * @module
 */
import { ErrorCodes, MedsynError } from '../errors.js';
import { GRADIENT_RULES } from './_gradients.js';
import { isFloat } from './dtype.js';
import { formatShape, type GraphNode, type Value } from './graph.js';
import * as ops from './ops.js';

/** Options of {@link grad}. */
export interface GradOptions {
  /**
   * The gradient of the final objective with respect to `loss`, for a loss that
   * is not a scalar (a vector–Jacobian product). @default 1 (the loss must be a scalar)
   */
  seed?: Value;
  /**
   * What to return for a value the loss does not depend on: a zero tensor, or
   * fail with `MEDSYN_ERR_BAD_GRAPH` (the usual cause is a parameter left out of the model).
   * @default 'error'
   */
  unused?: 'zeros' | 'error';
}

/**
 * Appends the backward graph of `loss` and returns its gradient with respect to
 * each of `wrt` (parameters, inputs or any float values), in order. Only the
 * nodes that lie between `wrt` and `loss` get a backward rule: branches that
 * do not lead to the loss, or do not depend on `wrt`, add nothing.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_GRAPH` for a loss that is not a float scalar or a `wrt` the loss does
 *   not depend on; `MEDSYN_ERR_UNSUPPORTED_OP` when the path runs through an op with no gradient rule
 * @example
 * ```ts
 * const [dw, db] = grad(loss, [w, b]);
 * ```
 */
export function grad(loss: Value, wrt: readonly Value[], options: GradOptions = {}): Value[] {
  const graph = loss.graph;
  for (const value of wrt) graph.owns(value, 'grad');
  if (!isFloat(loss.dtype)) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Cannot differentiate ${loss}: the loss must be float32 or float64`);
  let seed = options.seed;
  if (seed) {
    graph.owns(seed, 'grad seed');
    if (seed.dtype !== loss.dtype || seed.shape.join() !== loss.shape.join()) {
      throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Invalid gradient seed ${seed} for ${loss}: it must have the loss's type and shape`);
    }
  } else {
    if (loss.rank !== 0) {
      throw new MedsynError(
        ErrorCodes.BAD_GRAPH,
        `Cannot differentiate ${loss}: the loss must be a scalar, got shape ${formatShape(loss.shape)} (reduce it with ops.reduceMean, or pass a seed)`,
      );
    }
    seed = graph.scalar(1, loss.dtype);
  }
  for (const value of wrt) {
    if (!isFloat(value.dtype)) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Cannot differentiate with respect to ${value}: only float values have gradients`);
  }

  // Values the loss depends on.
  const ancestors = new Set<Value>();
  const stack: Value[] = [loss];
  while (stack.length > 0) {
    const value = stack.pop()!;
    if (ancestors.has(value)) continue;
    ancestors.add(value);
    if (value.node) stack.push(...value.node.inputs);
  }
  // Float values that depend on wrt (forward, in creation order) and that the loss depends on.
  const active = new Set<Value>(wrt.filter((value) => ancestors.has(value)));
  const path: GraphNode[] = [];
  for (const node of graph.nodes) {
    if (!node.outputs.some((output) => ancestors.has(output))) continue;
    if (!node.inputs.some((input) => active.has(input))) continue;
    path.push(node);
    for (const output of node.outputs) if (isFloat(output.dtype) && ancestors.has(output)) active.add(output);
  }

  const contributions = new Map<Value, Value[]>([[loss, [seed]]]);
  const total = (value: Value): Value | undefined => {
    const parts = contributions.get(value);
    if (!parts || parts.length === 0) return undefined;
    const sum = parts.reduce((acc, part) => ops.add(acc, part));
    contributions.set(value, [sum]);
    return sum;
  };

  for (let i = path.length - 1; i >= 0; i--) {
    const node = path[i];
    const upstream = node.outputs.map(total);
    if (upstream.every((gradient) => gradient === undefined)) continue;
    const needs = node.inputs.map((input) => active.has(input) && isFloat(input.dtype));
    if (!needs.some(Boolean)) continue;
    const rule = GRADIENT_RULES[node.op];
    if (!rule) {
      throw new MedsynError(
        ErrorCodes.UNSUPPORTED_OP,
        `Cannot differentiate through ${node.op.replace(/^custom:/, '')} (${node.outputs[0].name}): it has no gradient rule (wrap its input in ops.stopGradient if no gradient should flow there)`,
      );
    }
    const gradients = rule(node, upstream, needs);
    node.inputs.forEach((input, index) => {
      const gradient = gradients[index];
      if (!needs[index] || !gradient) return;
      if (gradient.shape.join() !== input.shape.join() || gradient.dtype !== input.dtype) {
        throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Internal error in the gradient of ${node.op}: got ${gradient} for ${input}`);
      }
      const parts = contributions.get(input);
      if (parts) parts.push(gradient);
      else contributions.set(input, [gradient]);
    });
  }

  return wrt.map((value) => {
    const gradient = total(value);
    if (gradient) return gradient === seed && value === loss ? ops.identity(seed) : gradient;
    if (options.unused === 'zeros') return ops.expand(graph.scalar(0, value.dtype), value.shape);
    throw new MedsynError(
      ErrorCodes.BAD_GRAPH,
      `Cannot differentiate ${loss.name} with respect to ${value}: the loss does not depend on it (pass unused: 'zeros' to get zeros)`,
    );
  });
}
