/**
 * The backward rule of every differentiable op: given a node and the gradient
 * of the loss with respect to its output, the gradients with respect to the
 * inputs that need one, built from the same ops. Private to `train/`: `grad`
 * applies them.
 *
 * @module
 */
import { isFloat } from './dtype.js';
import type { GraphNode, Shape, Value } from './graph.js';
import * as ops from './ops.js';

/**
 * A backward rule: `upstream` is the gradient of each output (undefined where
 * none flows), `needs[i]` says whether input `i` wants a gradient. Returns one
 * entry per input (undefined where none is needed or none exists).
 */
export type GradientRule = (node: GraphNode, upstream: readonly (Value | undefined)[], needs: readonly boolean[]) => (Value | undefined)[];

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}

/** Sums a broadcast gradient back down to the operand's `shape`. */
export function sumTo(gradient: Value, shape: Shape): Value {
  if (sameShape(gradient.shape, shape)) return gradient;
  const lead = gradient.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < gradient.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && gradient.shape[i] !== 1)) axes.push(i);
  }
  if (axes.length === 0) return ops.reshape(gradient, shape);
  if (isFloat(gradient.dtype) && gradient.size > 0 && axes.every((axis, i) => axis === i) && axes.length < gradient.rank) {
    // Summing leading axes (a bias's gradient over the batch) as ones[1, P] @ g[P, Q]: one GEMV, several
    // times faster than onnxruntime's ReduceSum over a leading axis.
    const rows = gradient.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
    const flat = ops.reshape(gradient, [rows, gradient.size / rows]);
    return ops.reshape(ops.gemm(gradient.graph.filled(1, [1, rows], gradient.dtype), flat), shape);
  }
  return ops.reshape(ops.reduceSum(gradient, { axes, keepDims: true }), shape);
}

/** The gradient of a reduction's output, reshaped so that it broadcasts against the input. */
function keptDims(node: GraphNode, gradient: Value): Value {
  const x = node.inputs[0];
  const { axes, keepDims } = node.params as { axes: number[]; keepDims: boolean };
  if (keepDims) return gradient;
  return ops.reshape(gradient, x.shape.map((dim, i) => (axes.includes(i) ? 1 : dim)));
}

function transposeLastTwo(x: Value): Value {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return ops.transpose(x, perm);
}

function only(rule: (node: GraphNode, gradient: Value, needs: readonly boolean[]) => (Value | undefined)[]): GradientRule {
  return (node, upstream, needs) => (upstream[0] ? rule(node, upstream[0], needs) : []);
}

const none: GradientRule = () => [];

function matmulGradient(node: GraphNode, gy: Value, needs: readonly boolean[]): (Value | undefined)[] {
  const [a, b] = node.inputs;
  // Vectors become a row (left) or a column (right), as MatMul treats them.
  const a2 = a.rank === 1 ? ops.reshape(a, [1, a.shape[0]]) : a;
  const b2 = b.rank === 1 ? ops.reshape(b, [b.shape[0], 1]) : b;
  const outRank = Math.max(a2.rank, b2.rank);
  const batch = gy.shape.slice(0, Math.max(0, outRank - 2));
  const g = ops.reshape(gy, [...batch, a2.shape[a2.rank - 2], b2.shape[b2.rank - 1]]);
  let ga: Value | undefined;
  let gb: Value | undefined;
  if (a2.rank === 2 && b2.rank === 2) {
    if (needs[0]) ga = ops.gemm(g, b2, { transB: true });
    if (needs[1]) gb = ops.gemm(a2, g, { transA: true });
  } else {
    if (needs[0]) ga = sumTo(ops.matmul(g, transposeLastTwo(b2)), a2.shape);
    if (needs[1]) gb = sumTo(ops.matmul(transposeLastTwo(a2), g), b2.shape);
  }
  return [ga && ops.reshape(ga, a.shape), gb && ops.reshape(gb, b.shape)];
}

function gemmGradient(node: GraphNode, gy: Value, needs: readonly boolean[]): (Value | undefined)[] {
  const [a, b, c] = node.inputs;
  const { alpha, beta, transA, transB } = node.params as { alpha: number; beta: number; transA: boolean; transB: boolean };
  let ga: Value | undefined;
  let gb: Value | undefined;
  // With A' = op(a), B' = op(b): dA' = alpha·dY·B'ᵀ, dB' = alpha·A'ᵀ·dY, then undo the op.
  if (needs[0]) {
    ga = transA ? ops.gemm(b, gy, { alpha, transA: transB, transB: true }) : ops.gemm(gy, b, { alpha, transB: !transB });
  }
  if (needs[1]) {
    gb = transB ? ops.gemm(gy, a, { alpha, transA: true, transB: transA }) : ops.gemm(a, gy, { alpha, transA: !transA });
  }
  let gc: Value | undefined;
  if (c && needs[2]) gc = sumTo(beta === 1 ? gy : ops.mul(gy, beta), c.shape);
  return [ga, gb, gc];
}

function gatherGradient(node: GraphNode, gy: Value, needs: readonly boolean[]): (Value | undefined)[] {
  if (!needs[0]) return [];
  const [data, indices] = node.inputs;
  const { axis } = node.params as { axis: number };
  const size = data.shape[axis];
  let index = indices.dtype === 'int64' ? indices : ops.cast(indices, 'int64');
  index = ops.where(ops.less(index, 0), ops.add(index, size), index);
  const r = indices.rank;
  // Bring the index dimensions to the front, scatter-add rows into zeros, move the axis back.
  const front = [...Array.from({ length: r }, (_, i) => axis + i), ...Array.from({ length: axis }, (_, i) => i), ...Array.from({ length: gy.rank - axis - r }, (_, i) => axis + r + i)];
  const updates = ops.transpose(gy, front);
  const tableShape = [size, ...data.shape.slice(0, axis), ...data.shape.slice(axis + 1)];
  const zeros = ops.expand(data.graph.scalar(0, data.dtype), tableShape);
  const table = ops.scatterNd(zeros, ops.reshape(index, [...indices.shape, 1]), updates, { reduction: 'add' });
  const back = [...Array.from({ length: axis }, (_, i) => i + 1), 0, ...Array.from({ length: data.rank - axis - 1 }, (_, i) => axis + 1 + i)];
  return [ops.transpose(table, back)];
}

/** Backward rules by op name. Ops absent here (and not listed as non-differentiable) make `grad` fail. */
export const GRADIENT_RULES: Readonly<Record<string, GradientRule>> = {
  Add: only((node, gy, needs) => [needs[0] ? sumTo(gy, node.inputs[0].shape) : undefined, needs[1] ? sumTo(gy, node.inputs[1].shape) : undefined]),
  Sub: only((node, gy, needs) => [needs[0] ? sumTo(gy, node.inputs[0].shape) : undefined, needs[1] ? sumTo(ops.neg(gy), node.inputs[1].shape) : undefined]),
  Mul: only((node, gy, needs) => {
    const [a, b] = node.inputs;
    return [needs[0] ? sumTo(ops.mul(gy, b), a.shape) : undefined, needs[1] ? sumTo(ops.mul(gy, a), b.shape) : undefined];
  }),
  Div: only((node, gy, needs) => {
    const [a, b] = node.inputs;
    const y = node.outputs[0];
    return [needs[0] ? sumTo(ops.div(gy, b), a.shape) : undefined, needs[1] ? sumTo(ops.neg(ops.div(ops.mul(gy, y), b)), b.shape) : undefined];
  }),
  Pow: only((node, gy, needs) => {
    const [a, b] = node.inputs;
    const y = node.outputs[0];
    return [
      needs[0] ? sumTo(ops.mul(gy, ops.mul(b, ops.pow(a, ops.sub(b, 1)))), a.shape) : undefined,
      needs[1] ? sumTo(ops.mul(gy, ops.mul(y, ops.log(a))), b.shape) : undefined,
    ];
  }),
  Neg: only((_, gy) => [ops.neg(gy)]),
  Exp: only((node, gy) => [ops.mul(gy, node.outputs[0])]),
  Log: only((node, gy) => [ops.div(gy, node.inputs[0])]),
  Sqrt: only((node, gy) => [ops.div(gy, ops.mul(node.outputs[0], 2))]),
  Abs: only((node, gy) => [ops.mul(gy, ops.sign(node.inputs[0]))]),
  Erf: only((node, gy) => {
    const x = node.inputs[0];
    return [ops.mul(gy, ops.mul(ops.exp(ops.neg(ops.mul(x, x))), 2 / Math.sqrt(Math.PI)))];
  }),
  Relu: only((node, gy) => [ops.where(ops.greater(node.inputs[0], 0), gy, 0)]),
  Tanh: only((node, gy) => {
    const y = node.outputs[0];
    return [ops.mul(gy, ops.sub(1, ops.mul(y, y)))];
  }),
  Sigmoid: only((node, gy) => {
    const y = node.outputs[0];
    return [ops.mul(gy, ops.mul(y, ops.sub(1, y)))];
  }),
  Identity: only((_, gy) => [gy]),
  StopGradient: none,
  Sign: none,
  MatMul: only(matmulGradient),
  Gemm: only(gemmGradient),
  ReduceSum: only((node, gy) => [ops.expand(keptDims(node, gy), node.inputs[0].shape)]),
  ReduceMean: only((node, gy) => {
    const x = node.inputs[0];
    const { axes } = node.params as { axes: number[] };
    const count = axes.reduce((product, axis) => product * x.shape[axis], 1);
    return [ops.expand(ops.mul(keptDims(node, gy), 1 / count), x.shape)];
  }),
  ReduceMax: only((node, gy) => {
    const x = node.inputs[0];
    const { axes } = node.params as { axes: number[] };
    const mask = ops.cast(ops.equal(x, keptDims(node, node.outputs[0])), x.dtype);
    const ties = ops.reduceSum(mask, { axes, keepDims: true });
    return [ops.mul(mask, ops.div(keptDims(node, gy), ties))];
  }),
  ReduceSumSquare: only((node, gy) => {
    const x = node.inputs[0];
    return [ops.mul(ops.mul(x, 2), keptDims(node, gy))];
  }),
  Softmax: only((node, gy) => {
    const y = node.outputs[0];
    const { axis } = node.params as { axis: number };
    return [ops.mul(y, ops.sub(gy, ops.reduceSum(ops.mul(gy, y), { axes: axis, keepDims: true })))];
  }),
  LogSoftmax: only((node, gy) => {
    const y = node.outputs[0];
    const { axis } = node.params as { axis: number };
    return [ops.sub(gy, ops.mul(ops.exp(y), ops.reduceSum(gy, { axes: axis, keepDims: true })))];
  }),
  Transpose: only((node, gy) => {
    const { perm } = node.params as { perm: number[] };
    const inverse: number[] = [];
    perm.forEach((axis, i) => (inverse[axis] = i));
    return [ops.transpose(gy, inverse)];
  }),
  Reshape: only((node, gy) => [ops.reshape(gy, node.inputs[0].shape)]),
  Expand: only((node, gy) => [sumTo(gy, node.inputs[0].shape)]),
  Concat: only((node, gy, needs) => {
    const { axis } = node.params as { axis: number };
    let offset = 0;
    return node.inputs.map((input, i) => {
      const start = offset;
      offset += input.shape[axis];
      return needs[i] ? ops.slice(gy, { starts: [start], ends: [offset], axes: [axis] }) : undefined;
    });
  }),
  Slice: only((node, gy) => {
    const x = node.inputs[0];
    const { begin, end } = node.params as { begin: number[]; end: number[] };
    return [ops.pad(gy, { before: begin, after: x.shape.map((dim, i) => dim - end[i]) })];
  }),
  Pad: only((node, gy) => {
    const x = node.inputs[0];
    const { before } = node.params as { before: number[] };
    return [ops.slice(gy, { starts: before, ends: before.map((b, i) => b + x.shape[i]), axes: x.shape.map((_, i) => i) })];
  }),
  Gather: only(gatherGradient),
  Clip: only((node, gy) => {
    const x = node.inputs[0];
    const { min, max } = node.params as { min: number; max: number };
    let inside: Value | undefined;
    if (min !== -Infinity) inside = ops.greaterOrEqual(x, min);
    if (max !== Infinity) inside = inside ? ops.and(inside, ops.lessOrEqual(x, max)) : ops.lessOrEqual(x, max);
    return [inside ? ops.where(inside, gy, 0) : gy];
  }),
  Where: only((node, gy, needs) => {
    const [condition, a, b] = node.inputs;
    return [
      undefined,
      needs[1] ? sumTo(ops.where(condition, gy, 0), a.shape) : undefined,
      needs[2] ? sumTo(ops.where(condition, 0, gy), b.shape) : undefined,
    ];
  }),
  Cast: only((node, gy) => [ops.cast(gy, node.inputs[0].dtype)]),
};
