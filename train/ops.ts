/**
 * The primitive ops of the graph builder, one function each, named after the
 * ONNX op they write. Each checks element types and shapes when it is called
 * (so a mistake fails where it is made, with both shapes in the message) and
 * returns the symbolic result. Binary elementwise ops broadcast as NumPy does
 * and take plain numbers for either operand. Every float op here has a
 * gradient rule (see `grad`), except `scatterNd`, `sign`, the comparisons and
 * `custom`.
 *
 * @example
 * ```ts
 * import { Graph, ops } from 'medsyn';
 * const g = new Graph();
 * const x = g.input('x', 'float32', [8, 3]);
 * const w = g.parameter('w', [3, 2], { init: 0.1 });
 * const y = ops.relu(ops.add(ops.matmul(x, w), 1));
 * ```
 *
 * @module
 */
import { ErrorCodes, MedsynError } from '../errors.js';
import { DTYPES, isFloat, type DType } from './dtype.js';
import { onnxDataType } from './_host_arrays.js';
import { Graph, Value, formatShape, shapeSize, type NodeAttribute, type Shape } from './graph.js';

/** A graph value or a plain number (made a scalar constant of the other operand's type). */
export type Operand = Value | number;

function shapeError(message: string): never {
  throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, message);
}

function dtypeError(message: string): never {
  throw new MedsynError(ErrorCodes.DTYPE_MISMATCH, message);
}

function graphOf(op: string, ...operands: readonly Operand[]): Graph {
  const first = operands.find((operand): operand is Value => operand instanceof Value);
  if (!first) {
    const bad = operands.find((operand) => typeof operand !== 'number');
    if (bad !== undefined) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Invalid operand of ${op}: ${String(bad)} is not a graph value or a number`);
    throw new MedsynError(ErrorCodes.BAD_GRAPH, `Invalid operands of ${op}: at least one must be a graph value, got only numbers`);
  }
  for (const operand of operands) if (typeof operand !== 'number') first.graph.owns(operand, op);
  return first.graph;
}

function lift(graph: Graph, operand: Operand, dtype: DType): Value {
  return typeof operand === 'number' ? graph.scalar(operand, dtype) : operand;
}

function requireFloat(op: string, ...values: readonly Value[]): void {
  for (const value of values) {
    if (!isFloat(value.dtype)) dtypeError(`Invalid operand of ${op}: ${value} is ${value.dtype}, the op takes float32 or float64 (cast it first)`);
  }
}

function requireNumeric(op: string, ...values: readonly Value[]): void {
  for (const value of values) if (value.dtype === 'bool') dtypeError(`Invalid operand of ${op}: ${value} is bool, the op takes numbers (cast it first)`);
}

function requireSameDtype(op: string, a: Value, b: Value): void {
  if (a.dtype !== b.dtype) dtypeError(`Cannot apply ${op} to ${a} and ${b}: element types differ (cast one of them)`);
}

function int(value: number): NodeAttribute {
  return { type: 'int', value };
}

function float(value: number): NodeAttribute {
  return { type: 'float', value };
}

function ints(value: readonly number[]): NodeAttribute {
  return { type: 'ints', value };
}

/**
 * Normalises a possibly negative `axis` of a tensor of `rank` dimensions.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` for an axis out of range, naming `op`
 * @example
 * ```ts
 * ops.normalizeAxis('Softmax', -1, 3); // 2
 * ```
 */
export function normalizeAxis(op: string, axis: number, rank: number): number {
  if (!Number.isSafeInteger(axis) || axis < -rank || axis >= Math.max(rank, 1) || (rank === 0 && axis !== 0 && axis !== -1)) {
    shapeError(`Invalid axis ${axis} for ${op}: the tensor has ${rank} dimension${rank === 1 ? '' : 's'} (axes run from ${-rank} to ${rank - 1})`);
  }
  return axis < 0 ? axis + rank : axis;
}

function normalizeAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = (typeof axes === 'number' ? [axes] : [...axes]).map((axis) => normalizeAxis(op, axis, rank));
  if (new Set(list).size !== list.length) shapeError(`Invalid axes ${JSON.stringify(axes)} for ${op}: an axis is repeated`);
  return list.sort((a, b) => a - b);
}

/**
 * The NumPy broadcast of the values' shapes.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` naming the two sizes that differ
 * @example
 * ```ts
 * ops.broadcastShapes('Add', g.input('a', 'float32', [8, 1, 5]), g.input('b', 'float32', [4, 1])); // [8, 4, 5]
 * ```
 */
export function broadcastShapes(op: string, ...values: readonly Value[]): number[] {
  return broadcastLabelled(op, values.map((value) => ({ shape: value.shape, label: String(value) })));
}

function broadcastLabelled(op: string, entries: readonly { shape: Shape; label: string }[]): number[] {
  const rank = Math.max(...entries.map((entry) => entry.shape.length));
  const out: number[] = new Array(rank).fill(1);
  const from: string[] = new Array(rank).fill('');
  for (let i = 0; i < rank; i++) {
    for (const { shape, label } of entries) {
      const dim = shape[shape.length - rank + i] ?? 1;
      if (dim === 1) continue;
      if (out[i] !== 1 && out[i] !== dim) {
        shapeError(`Cannot broadcast ${from[i]} with ${label} in ${op}: sizes ${out[i]} and ${dim} differ at dimension ${i - rank} (sizes must match or one be 1)`);
      }
      out[i] = dim;
      from[i] = label;
    }
  }
  return out;
}

function binary(op: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow', a: Operand, b: Operand): Value {
  const graph = graphOf(op, a, b);
  const dtype = (a instanceof Value ? a : (b as Value)).dtype;
  const left = lift(graph, a, dtype);
  const right = lift(graph, b, dtype);
  requireSameDtype(op, left, right);
  if (op === 'Pow') requireFloat(op, left, right);
  else requireNumeric(op, left, right);
  const shape = broadcastShapes(op, left, right);
  return graph.addNode(op, [left, right], [{ dtype, shape }])[0];
}

function compare(op: 'Greater' | 'Less' | 'Equal' | 'GreaterOrEqual' | 'LessOrEqual', a: Operand, b: Operand): Value {
  const graph = graphOf(op, a, b);
  const dtype = (a instanceof Value ? a : (b as Value)).dtype;
  const left = lift(graph, a, dtype);
  const right = lift(graph, b, dtype);
  requireSameDtype(op, left, right);
  requireNumeric(op, left, right);
  return graph.addNode(op, [left, right], [{ dtype: 'bool', shape: broadcastShapes(op, left, right) }])[0];
}

function unary(op: string, x: Value, kind: 'float' | 'numeric' | 'any', onnxOp?: string): Value {
  const graph = graphOf(op, x);
  if (kind === 'float') requireFloat(op, x);
  else if (kind === 'numeric') requireNumeric(op, x);
  return graph.addNode(op, [x], [{ dtype: x.dtype, shape: x.shape }], { onnxOp })[0];
}

/**
 * `a + b`, broadcasting.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when the shapes do not broadcast, `MEDSYN_ERR_DTYPE_MISMATCH` for mixed types
 * @example
 * ```ts
 * const y = ops.add(ops.matmul(x, w), b);
 * ```
 */
export function add(a: Operand, b: Operand): Value {
  return binary('Add', a, b);
}

/**
 * `a - b`, broadcasting.
 *
 * @throws {MedsynError} as {@link add}
 * @example
 * ```ts
 * const centred = ops.sub(x, ops.reduceMean(x, { axes: -1, keepDims: true }));
 * ```
 */
export function sub(a: Operand, b: Operand): Value {
  return binary('Sub', a, b);
}

/**
 * `a * b` elementwise, broadcasting.
 *
 * @throws {MedsynError} as {@link add}
 * @example
 * ```ts
 * const scaled = ops.mul(logits, scale);
 * ```
 */
export function mul(a: Operand, b: Operand): Value {
  return binary('Mul', a, b);
}

/**
 * `a / b` elementwise, broadcasting.
 *
 * @throws {MedsynError} as {@link add}
 * @example
 * ```ts
 * const unit = ops.div(x, norm);
 * ```
 */
export function div(a: Operand, b: Operand): Value {
  return binary('Div', a, b);
}

/**
 * `a ** b` elementwise (floats), broadcasting. The gradient with respect to
 * `b` uses `log(a)`, so it needs `a > 0`.
 *
 * @throws {MedsynError} as {@link add}
 * @example
 * ```ts
 * const squared = ops.pow(x, 2);
 * ```
 */
export function pow(a: Operand, b: Operand): Value {
  return binary('Pow', a, b);
}

/**
 * `-x`.
 *
 * @example
 * ```ts
 * const loss = ops.neg(logLikelihood);
 * ```
 */
export function neg(x: Value): Value {
  return unary('Neg', x, 'numeric');
}

/**
 * `e ** x`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_DTYPE_MISMATCH` for a tensor that is not float
 * @example
 * ```ts
 * const scale = ops.exp(logitScale);
 * ```
 */
export function exp(x: Value): Value {
  return unary('Exp', x, 'float');
}

/**
 * The natural logarithm.
 *
 * @throws {MedsynError} as {@link exp}
 * @example
 * ```ts
 * const logP = ops.log(p);
 * ```
 */
export function log(x: Value): Value {
  return unary('Log', x, 'float');
}

/**
 * The square root.
 *
 * @throws {MedsynError} as {@link exp}
 * @example
 * ```ts
 * const norm = ops.sqrt(ops.reduceSum(ops.mul(x, x), { axes: -1, keepDims: true }));
 * ```
 */
export function sqrt(x: Value): Value {
  return unary('Sqrt', x, 'float');
}

/**
 * `|x|`; its gradient is `sign(x)` (0 at 0).
 *
 * @example
 * ```ts
 * const l1 = ops.reduceSum(ops.abs(w));
 * ```
 */
export function abs(x: Value): Value {
  return unary('Abs', x, 'numeric');
}

/**
 * The sign, −1, 0 or 1. It has no gradient (it is flat almost everywhere).
 *
 * @example
 * ```ts
 * const direction = ops.sign(x);
 * ```
 */
export function sign(x: Value): Value {
  return unary('Sign', x, 'numeric');
}

/**
 * The error function. onnxruntime's CPU provider runs it in float32 only.
 *
 * @throws {MedsynError} as {@link exp}
 * @example
 * ```ts
 * const y = ops.erf(x);
 * ```
 */
export function erf(x: Value): Value {
  return unary('Erf', x, 'float');
}

/**
 * `max(x, 0)`; its gradient at 0 is 0, as in PyTorch.
 *
 * @throws {MedsynError} as {@link exp}
 * @example
 * ```ts
 * const hidden = ops.relu(ops.matmul(x, w1));
 * ```
 */
export function relu(x: Value): Value {
  return unary('Relu', x, 'float');
}

/**
 * The hyperbolic tangent.
 *
 * @throws {MedsynError} as {@link exp}
 * @example
 * ```ts
 * const h = ops.tanh(ops.matmul(x, w));
 * ```
 */
export function tanh(x: Value): Value {
  return unary('Tanh', x, 'float');
}

/**
 * The logistic function `1 / (1 + e ** −x)`.
 *
 * @throws {MedsynError} as {@link exp}
 * @example
 * ```ts
 * const probability = ops.sigmoid(logit);
 * ```
 */
export function sigmoid(x: Value): Value {
  return unary('Sigmoid', x, 'float');
}

/**
 * The same tensor under a new name; the gradient passes through.
 *
 * @example
 * ```ts
 * const embedding = ops.identity(z);
 * ```
 */
export function identity(x: Value): Value {
  return unary('Identity', x, 'any');
}

/**
 * The same tensor, but no gradient flows back through it (PyTorch's `detach`).
 *
 * @example
 * ```ts
 * const shift = ops.stopGradient(ops.reduceMax(x, { axes: -1, keepDims: true }));
 * ```
 */
export function stopGradient(x: Value): Value {
  return unary('StopGradient', x, 'any', 'Identity');
}

/**
 * `a > b` elementwise, broadcasting; bool, no gradient.
 *
 * @example
 * ```ts
 * const positive = ops.greater(x, 0);
 * ```
 */
export function greater(a: Operand, b: Operand): Value {
  return compare('Greater', a, b);
}

/**
 * `a < b` elementwise, broadcasting; bool, no gradient.
 *
 * @example
 * ```ts
 * const negative = ops.less(x, 0);
 * ```
 */
export function less(a: Operand, b: Operand): Value {
  return compare('Less', a, b);
}

/**
 * `a >= b` elementwise, broadcasting; bool, no gradient.
 *
 * @example
 * ```ts
 * const inside = ops.greaterOrEqual(x, 0);
 * ```
 */
export function greaterOrEqual(a: Operand, b: Operand): Value {
  return compare('GreaterOrEqual', a, b);
}

/**
 * `a <= b` elementwise, broadcasting; bool, no gradient.
 *
 * @example
 * ```ts
 * const inside = ops.lessOrEqual(x, 1);
 * ```
 */
export function lessOrEqual(a: Operand, b: Operand): Value {
  return compare('LessOrEqual', a, b);
}

/**
 * `a == b` elementwise, broadcasting; bool, no gradient.
 *
 * @example
 * ```ts
 * const hit = ops.equal(labels, predicted);
 * ```
 */
export function equal(a: Operand, b: Operand): Value {
  return compare('Equal', a, b);
}

/**
 * Logical and of two bool tensors, broadcasting.
 *
 * @throws {MedsynError} `MEDSYN_ERR_DTYPE_MISMATCH` for tensors that are not bool
 * @example
 * ```ts
 * const inside = ops.and(ops.greaterOrEqual(x, 0), ops.lessOrEqual(x, 1));
 * ```
 */
export function and(a: Value, b: Value): Value {
  const graph = graphOf('And', a, b);
  if (a.dtype !== 'bool' || b.dtype !== 'bool') dtypeError(`Invalid operands of And: ${a} and ${b} must both be bool`);
  return graph.addNode('And', [a, b], [{ dtype: 'bool', shape: broadcastShapes('And', a, b) }])[0];
}

/**
 * The matrix product with NumPy's rules: the last two dimensions multiply,
 * leading (batch) dimensions broadcast, a vector operand is a row (left) or
 * a column (right) that is dropped from the result.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when the inner dimensions differ
 * @example
 * ```ts
 * const logits = ops.matmul(imageEmbeddings, ops.transpose(textEmbeddings));
 * ```
 */
export function matmul(a: Value, b: Value): Value {
  const graph = graphOf('MatMul', a, b);
  requireFloat('MatMul', a, b);
  requireSameDtype('MatMul', a, b);
  if (a.rank === 0 || b.rank === 0) shapeError(`Cannot multiply ${a} by ${b} in MatMul: scalars have no matrix product (use ops.mul)`);
  const k1 = a.shape[a.rank - 1];
  const k2 = b.rank === 1 ? b.shape[0] : b.shape[b.rank - 2];
  if (k1 !== k2) {
    shapeError(`Cannot multiply ${a} by ${b} in MatMul: ${a.name} has ${k1} columns but ${b.name} has ${k2} rows (transpose one of them?)`);
  }
  const batchA = a.rank > 2 ? a.shape.slice(0, -2) : [];
  const batchB = b.rank > 2 ? b.shape.slice(0, -2) : [];
  const batch = broadcastBatch('MatMul', a, b, batchA, batchB);
  const shape = [...batch, ...(a.rank > 1 ? [a.shape[a.rank - 2]] : []), ...(b.rank > 1 ? [b.shape[b.rank - 1]] : [])];
  return graph.addNode('MatMul', [a, b], [{ dtype: a.dtype, shape }])[0];
}

function broadcastBatch(op: string, a: Value, b: Value, batchA: Shape, batchB: Shape): number[] {
  const rank = Math.max(batchA.length, batchB.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = batchA[batchA.length - rank + i] ?? 1;
    const db = batchB[batchB.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) shapeError(`Cannot multiply ${a} by ${b} in ${op}: batch sizes ${da} and ${db} differ`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Options of {@link gemm}. */
export interface GemmOptions {
  /** A bias added to the product, broadcast to `[M, N]`. @default none */
  c?: Value;
  /** The factor on the product. @default 1 */
  alpha?: number;
  /** The factor on `c`. @default 1 */
  beta?: number;
  /** Use `a` transposed. @default false */
  transA?: boolean;
  /** Use `b` transposed. @default false */
  transB?: boolean;
}

/**
 * `alpha · op(a) @ op(b) + beta · c` for matrices, where `op` transposes when
 * asked. One fused onnxruntime kernel; the backward pass uses it too.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` for operands that are not matrices or do not fit
 * @example
 * ```ts
 * const y = ops.gemm(x, w, { c: b });                          // x @ w + b
 * const logits = ops.gemm(image, text, { transB: true, alpha: 10 });
 * ```
 */
export function gemm(a: Value, b: Value, options: GemmOptions = {}): Value {
  const graph = graphOf('Gemm', a, b, ...(options.c ? [options.c] : []));
  const alpha = options.alpha ?? 1;
  const beta = options.beta ?? 1;
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  requireFloat('Gemm', a, b);
  requireSameDtype('Gemm', a, b);
  if (a.rank !== 2 || b.rank !== 2) shapeError(`Cannot multiply ${a} by ${b} in Gemm: both must be matrices (use ops.matmul for batches)`);
  const [m, k1] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [k2, n] = transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k1 !== k2) {
    shapeError(
      `Cannot multiply ${a}${transA ? 'ᵀ' : ''} by ${b}${transB ? 'ᵀ' : ''} in Gemm: inner dimensions ${k1} and ${k2} differ (transA/transB?)`,
    );
  }
  const inputs = [a, b];
  if (options.c) {
    requireSameDtype('Gemm', a, options.c);
    const c = options.c;
    if (c.rank > 2 || c.shape.some((dim, i) => dim !== 1 && dim !== [m, n][i + 2 - c.rank])) {
      shapeError(`Cannot add ${c} to a [${m}, ${n}] product in Gemm: c must broadcast to [${m}, ${n}]`);
    }
    inputs.push(c);
  }
  const attributes: Record<string, NodeAttribute> = {};
  if (alpha !== 1) attributes.alpha = float(alpha);
  if (beta !== 1) attributes.beta = float(beta);
  if (transA) attributes.transA = int(1);
  if (transB) attributes.transB = int(1);
  return graph.addNode('Gemm', inputs, [{ dtype: a.dtype, shape: [m, n] }], { attributes, params: { alpha, beta, transA, transB } })[0];
}

/** Options of the reductions. */
export interface ReduceOptions {
  /** The axes to reduce, negative from the end. @default all */
  axes?: number | readonly number[];
  /** Keep reduced axes as size 1 (NumPy's `keepdims`). @default false */
  keepDims?: boolean;
}

function reduce(op: 'ReduceSum' | 'ReduceMean' | 'ReduceMax' | 'ReduceSumSquare', x: Value, options: ReduceOptions): Value {
  const graph = graphOf(op, x);
  if (op === 'ReduceMax' || op === 'ReduceSum') requireNumeric(op, x);
  else requireFloat(op, x);
  const axes = normalizeAxes(op, options.axes, x.rank);
  const keepDims = options.keepDims ?? false;
  if (axes.length === 0) return op === 'ReduceSumSquare' ? mul(x, x) : identity(x);
  for (const axis of axes) if (x.shape[axis] === 0 && op === 'ReduceMax') shapeError(`Cannot take ReduceMax of ${x} over empty axis ${axis}`);
  const shape = keepDims ? x.shape.map((dim, i) => (axes.includes(i) ? 1 : dim)) : x.shape.filter((_, i) => !axes.includes(i));
  return graph.addNode(op, [x, graph.int64s(axes)], [{ dtype: x.dtype, shape }], {
    attributes: { keepdims: int(keepDims ? 1 : 0) },
    params: { axes, keepDims },
  })[0];
}

/**
 * The sum over `axes`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` for an axis out of range
 * @example
 * ```ts
 * const total = ops.reduceSum(x);                                  // a scalar
 * const rows = ops.reduceSum(x, { axes: -1, keepDims: true });     // [N, 1]
 * ```
 */
export function reduceSum(x: Value, options: ReduceOptions = {}): Value {
  return reduce('ReduceSum', x, options);
}

/**
 * The mean over `axes`.
 *
 * @throws {MedsynError} as {@link reduceSum}
 * @example
 * ```ts
 * const loss = ops.reduceMean(perExample);
 * ```
 */
export function reduceMean(x: Value, options: ReduceOptions = {}): Value {
  return reduce('ReduceMean', x, options);
}

/**
 * The maximum over `axes`. Its gradient goes to the maximal elements (shared
 * equally between ties); wrap it in {@link stopGradient} to use it as a shift.
 *
 * @throws {MedsynError} as {@link reduceSum}
 * @example
 * ```ts
 * const shift = ops.stopGradient(ops.reduceMax(x, { axes: -1, keepDims: true }));
 * ```
 */
export function reduceMax(x: Value, options: ReduceOptions = {}): Value {
  return reduce('ReduceMax', x, options);
}

/**
 * The sum of squares over `axes`.
 *
 * @throws {MedsynError} as {@link reduceSum}
 * @example
 * ```ts
 * const squaredNorm = ops.reduceSumSquare(w);
 * ```
 */
export function reduceSumSquare(x: Value, options: ReduceOptions = {}): Value {
  return reduce('ReduceSumSquare', x, options);
}

/** Options of {@link softmax} and {@link logSoftmax}. */
export interface SoftmaxOptions {
  /** The axis the probabilities sum to 1 over. @default -1 */
  axis?: number;
}

function softmaxLike(op: 'Softmax' | 'LogSoftmax', x: Value, options: SoftmaxOptions): Value {
  const graph = graphOf(op, x);
  requireFloat(op, x);
  if (x.rank === 0) shapeError(`Cannot take ${op} of scalar ${x}: it needs an axis`);
  const axis = normalizeAxis(op, options.axis ?? -1, x.rank);
  return graph.addNode(op, [x], [{ dtype: x.dtype, shape: x.shape }], { attributes: { axis: int(axis) }, params: { axis } })[0];
}

/**
 * The softmax along `axis`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` for a scalar or an axis out of range
 * @example
 * ```ts
 * const probabilities = ops.softmax(logits);
 * ```
 */
export function softmax(x: Value, options: SoftmaxOptions = {}): Value {
  return softmaxLike('Softmax', x, options);
}

/**
 * The log of the softmax along `axis`, computed stably.
 *
 * @throws {MedsynError} as {@link softmax}
 * @example
 * ```ts
 * const logP = ops.logSoftmax(logits, { axis: 1 });
 * ```
 */
export function logSoftmax(x: Value, options: SoftmaxOptions = {}): Value {
  return softmaxLike('LogSoftmax', x, options);
}

/**
 * Permutes the dimensions; without `perm`, reverses them (a matrix transpose).
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when `perm` is not a permutation of the axes
 * @example
 * ```ts
 * const t = ops.transpose(x);               // [N, D] → [D, N]
 * const u = ops.transpose(y, [0, 2, 1]);
 * ```
 */
export function transpose(x: Value, perm?: readonly number[]): Value {
  const graph = graphOf('Transpose', x);
  const order = perm ? [...perm] : Array.from({ length: x.rank }, (_, i) => x.rank - 1 - i);
  const sorted = [...order].sort((a, b) => a - b);
  if (order.length !== x.rank || sorted.some((axis, i) => axis !== i)) {
    shapeError(`Invalid permutation ${JSON.stringify(perm)} for Transpose of ${x}: it must list each of the ${x.rank} axes once`);
  }
  if (order.every((axis, i) => axis === i)) return identity(x);
  return graph.addNode('Transpose', [x], [{ dtype: x.dtype, shape: order.map((axis) => x.shape[axis]) }], {
    attributes: { perm: ints(order) },
    params: { perm: order },
  })[0];
}

/**
 * The same elements in a new shape; one dimension may be `-1` (inferred).
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when the element counts differ
 * @example
 * ```ts
 * const column = ops.reshape(labels, [-1, 1]);
 * ```
 */
export function reshape(x: Value, shape: readonly number[]): Value {
  const graph = graphOf('Reshape', x);
  const inferred = shape.filter((dim) => dim === -1).length;
  if (inferred > 1 || !shape.every((dim) => dim === -1 || (Number.isSafeInteger(dim) && dim >= 0))) {
    shapeError(`Invalid shape ${JSON.stringify(shape)} for Reshape of ${x}: sizes must be whole numbers ≥ 0, at most one −1`);
  }
  const known = shapeSize(shape.filter((dim) => dim !== -1));
  let target = [...shape];
  if (inferred === 1) {
    if (known === 0 || x.size % known !== 0) shapeError(`Cannot reshape ${x} to ${formatShape(shape)}: ${x.size} elements do not divide into ${known}`);
    target = shape.map((dim) => (dim === -1 ? x.size / known : dim));
  }
  if (shapeSize(target) !== x.size) shapeError(`Cannot reshape ${x} to ${formatShape(target)}: ${x.size} elements, not ${shapeSize(target)}`);
  if (target.length === x.rank && target.every((dim, i) => dim === x.shape[i])) return x;
  const attributes: Record<string, NodeAttribute> = target.includes(0) ? { allowzero: int(1) } : {};
  return graph.addNode('Reshape', [x, graph.int64s(target)], [{ dtype: x.dtype, shape: target }], { attributes })[0];
}

/**
 * Broadcasts `x` to `shape` (ONNX Expand: the result has the broadcast of both shapes).
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when the shapes do not broadcast
 * @example
 * ```ts
 * const tiled = ops.expand(row, [256, 512]);
 * ```
 */
export function expand(x: Value, shape: readonly number[]): Value {
  const graph = graphOf('Expand', x);
  if (!shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) shapeError(`Invalid shape ${JSON.stringify(shape)} for Expand of ${x}`);
  const out = broadcastLabelled('Expand', [
    { shape: x.shape, label: String(x) },
    { shape, label: `shape ${formatShape(shape)}` },
  ]);
  if (out.length === x.rank && out.every((dim, i) => dim === x.shape[i])) return x;
  return graph.addNode('Expand', [x, graph.int64s(shape)], [{ dtype: x.dtype, shape: out }])[0];
}

/** Options of {@link concat}. */
export interface ConcatOptions {
  /** The axis to join along. @default 0 */
  axis?: number;
}

/**
 * Joins tensors along `axis`; the other dimensions must agree.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when ranks or the other dimensions differ
 * @example
 * ```ts
 * const features = ops.concat([image, text], { axis: 1 });
 * ```
 */
export function concat(values: readonly Value[], options: ConcatOptions = {}): Value {
  if (values.length === 0) throw new MedsynError(ErrorCodes.BAD_GRAPH, 'Invalid operands of Concat: no tensors to join');
  const graph = graphOf('Concat', ...values);
  const first = values[0];
  if (first.rank === 0) shapeError(`Cannot concatenate scalar ${first}: reshape it to [1] first`);
  const axis = normalizeAxis('Concat', options.axis ?? 0, first.rank);
  for (const value of values) {
    requireSameDtype('Concat', first, value);
    if (value.rank !== first.rank || value.shape.some((dim, i) => i !== axis && dim !== first.shape[i])) {
      shapeError(`Cannot concatenate ${first} and ${value} along axis ${axis}: the other dimensions must match`);
    }
  }
  if (values.length === 1) return identity(first);
  const shape = first.shape.map((dim, i) => (i === axis ? values.reduce((sum, value) => sum + value.shape[axis], 0) : dim));
  return graph.addNode('Concat', values, [{ dtype: first.dtype, shape }], { attributes: { axis: int(axis) }, params: { axis } })[0];
}

/** Options of {@link slice}. */
export interface SliceOptions {
  /** First index per sliced axis; negative counts from the end. */
  starts: readonly number[];
  /** One past the last index per sliced axis; negative counts from the end; clamped to the size. */
  ends: readonly number[];
  /** The axes `starts`/`ends` refer to. @default the first `starts.length` axes */
  axes?: readonly number[];
}

/**
 * A contiguous block `x[start:end]` along some axes (step 1).
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when starts, ends and axes do not line up
 * @example
 * ```ts
 * const firstHalf = ops.slice(x, { starts: [0], ends: [256], axes: [1] });
 * ```
 */
export function slice(x: Value, options: SliceOptions): Value {
  const graph = graphOf('Slice', x);
  const { starts, ends } = options;
  const axesList = options.axes ?? starts.map((_, i) => i);
  if (starts.length !== ends.length || starts.length !== axesList.length) {
    shapeError(`Invalid Slice of ${x}: starts, ends and axes need one entry each per axis, got ${starts.length}, ${ends.length}, ${axesList.length}`);
  }
  const axes = axesList.map((axis) => normalizeAxis('Slice', axis, x.rank));
  if (new Set(axes).size !== axes.length) shapeError(`Invalid Slice of ${x}: an axis is repeated in ${JSON.stringify(axesList)}`);
  const begin = x.shape.map(() => 0);
  const end = [...x.shape];
  axes.forEach((axis, i) => {
    const dim = x.shape[axis];
    const clamp = (index: number): number => {
      if (!Number.isSafeInteger(index)) shapeError(`Invalid Slice of ${x}: bound ${index} is not a whole number`);
      return Math.min(Math.max(index < 0 ? index + dim : index, 0), dim);
    };
    begin[axis] = clamp(starts[i]);
    end[axis] = Math.max(clamp(ends[i]), begin[axis]);
  });
  const shape = x.shape.map((_, i) => end[i] - begin[i]);
  if (shape.every((dim, i) => dim === x.shape[i])) return x;
  const sliced = x.shape.map((_, i) => i).filter((i) => begin[i] !== 0 || end[i] !== x.shape[i]);
  return graph.addNode(
    'Slice',
    [x, graph.int64s(sliced.map((i) => begin[i])), graph.int64s(sliced.map((i) => end[i])), graph.int64s(sliced)],
    [{ dtype: x.dtype, shape }],
    { params: { begin, end } },
  )[0];
}

/** Options of {@link pad}. */
export interface PadOptions {
  /** Zeros added before each dimension. */
  before: readonly number[];
  /** Zeros added after each dimension. */
  after: readonly number[];
}

/**
 * Pads with zeros.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when `before`/`after` do not have one entry per dimension
 * @example
 * ```ts
 * const padded = ops.pad(x, { before: [0, 1], after: [0, 1] });
 * ```
 */
export function pad(x: Value, options: PadOptions): Value {
  const graph = graphOf('Pad', x);
  const { before, after } = options;
  if (before.length !== x.rank || after.length !== x.rank || ![...before, ...after].every((n) => Number.isSafeInteger(n) && n >= 0)) {
    shapeError(`Invalid Pad of ${x}: before and after need one whole number ≥ 0 per dimension, got ${JSON.stringify(before)} and ${JSON.stringify(after)}`);
  }
  if ([...before, ...after].every((n) => n === 0)) return x;
  const shape = x.shape.map((dim, i) => before[i] + dim + after[i]);
  return graph.addNode('Pad', [x, graph.int64s([...before, ...after])], [{ dtype: x.dtype, shape }], { params: { before: [...before], after: [...after] } })[0];
}

/** Options of {@link gather}. */
export interface GatherOptions {
  /** The axis `indices` select along. @default 0 */
  axis?: number;
}

/**
 * Picks slices of `data` along `axis` at `indices` (int32/int64, negative from
 * the end): embedding rows for token ids. The gradient adds up rows picked more
 * than once.
 *
 * @throws {MedsynError} `MEDSYN_ERR_DTYPE_MISMATCH` for float indices
 * @example
 * ```ts
 * const vectors = ops.gather(embedding, tokenIds);  // [V, D] at [B, T] → [B, T, D]
 * ```
 */
export function gather(data: Value, indices: Value, options: GatherOptions = {}): Value {
  const graph = graphOf('Gather', data, indices);
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') dtypeError(`Invalid indices of Gather: ${indices} must be int32 or int64`);
  if (data.rank === 0) shapeError(`Cannot Gather from scalar ${data}`);
  const axis = normalizeAxis('Gather', options.axis ?? 0, data.rank);
  const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
  return graph.addNode('Gather', [data, indices], [{ dtype: data.dtype, shape }], { attributes: { axis: int(axis) }, params: { axis } })[0];
}

/** Options of {@link scatterNd}. */
export interface ScatterNdOptions {
  /** `add` sums updates that hit the same place; `none` writes them. @default 'add' */
  reduction?: 'none' | 'add';
}

/**
 * ONNX ScatterND: `data` with `updates` written at `indices` (int64, last axis
 * indexing the leading axes of `data`). The engine uses it for the gradient of
 * {@link gather}; it has no gradient itself.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when the shapes do not fit ScatterND
 * @example
 * ```ts
 * const table = ops.scatterNd(zeros, ops.reshape(ids, [-1, 1]), rows);
 * ```
 */
export function scatterNd(data: Value, indices: Value, updates: Value, options: ScatterNdOptions = {}): Value {
  const graph = graphOf('ScatterND', data, indices, updates);
  requireSameDtype('ScatterND', data, updates);
  if (indices.dtype !== 'int64') dtypeError(`Invalid indices of ScatterND: ${indices} must be int64`);
  const k = indices.shape[indices.rank - 1];
  const expected = [...indices.shape.slice(0, -1), ...data.shape.slice(k)];
  if (indices.rank === 0 || k > data.rank || updates.rank !== expected.length || expected.some((dim, i) => dim !== updates.shape[i])) {
    shapeError(`Cannot scatter ${updates} into ${data} at ${indices}: updates must have shape ${formatShape(expected)}`);
  }
  const reduction = options.reduction ?? 'add';
  const attributes: Record<string, NodeAttribute> = reduction === 'add' ? { reduction: { type: 'string', value: 'add' } } : {};
  return graph.addNode('ScatterND', [data, indices, updates], [{ dtype: data.dtype, shape: data.shape }], { attributes })[0];
}

/** Options of {@link clip}. */
export interface ClipOptions {
  /** The lower bound. @default −∞ */
  min?: number;
  /** The upper bound. @default +∞ */
  max?: number;
}

/**
 * Clamps to [min, max]. The gradient passes where `min ≤ x ≤ max` and is 0
 * outside, as PyTorch's `clamp`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` when `min > max`
 * @example
 * ```ts
 * const scale = ops.clip(ops.exp(logitScale), { max: 100 });
 * ```
 */
export function clip(x: Value, options: ClipOptions = {}): Value {
  const graph = graphOf('Clip', x);
  requireFloat('Clip', x);
  const min = options.min ?? -Infinity;
  const max = options.max ?? Infinity;
  if (Number.isNaN(min) || Number.isNaN(max) || min > max) {
    throw new MedsynError(ErrorCodes.INVALID_OPTION, `Invalid option min/max of Clip: [${min}, ${max}] is empty`, { option: 'min' });
  }
  return graph.addNode('Clip', [x, graph.scalar(min, x.dtype), graph.scalar(max, x.dtype)], [{ dtype: x.dtype, shape: x.shape }], { params: { min, max } })[0];
}

/**
 * `condition ? a : b` elementwise, broadcasting all three.
 *
 * @throws {MedsynError} `MEDSYN_ERR_DTYPE_MISMATCH` when `condition` is not bool or `a`/`b` differ
 * @example
 * ```ts
 * const masked = ops.where(ops.greater(mask, 0), logits, -1e9);
 * ```
 */
export function where(condition: Value, a: Operand, b: Operand): Value {
  const graph = graphOf('Where', condition, a, b);
  if (condition.dtype !== 'bool') dtypeError(`Invalid condition of Where: ${condition} must be bool (use a comparison)`);
  if (typeof a === 'number' && typeof b === 'number') {
    throw new MedsynError(ErrorCodes.BAD_GRAPH, 'Invalid operands of Where: one of a and b must be a graph value');
  }
  const dtype = (a instanceof Value ? a : (b as Value)).dtype;
  const left = lift(graph, a, dtype);
  const right = lift(graph, b, dtype);
  requireSameDtype('Where', left, right);
  return graph.addNode('Where', [condition, left, right], [{ dtype, shape: broadcastShapes('Where', condition, left, right) }])[0];
}

/**
 * Converts the element type. Between float types the gradient converts back;
 * to or from integers there is none.
 *
 * @example
 * ```ts
 * const mask = ops.cast(ops.greater(x, 0), 'float32');
 * ```
 */
export function cast(x: Value, dtype: DType): Value {
  const graph = graphOf('Cast', x);
  if (!DTYPES.includes(dtype)) throw new MedsynError(ErrorCodes.INVALID_OPTION, `Invalid option dtype of Cast: ${String(dtype)}`, { option: 'dtype' });
  if (x.dtype === dtype) return x;
  return graph.addNode('Cast', [x], [{ dtype, shape: x.shape }], { attributes: { to: int(onnxDataType(dtype)) } })[0];
}

/** Options of {@link custom}. */
export interface CustomOptions {
  /** The outputs' element types and shapes (not inferred: medsyn does not know the op). */
  outputs: readonly { dtype: DType; shape: readonly number[] }[];
  /** The ONNX attributes. @default {} */
  attributes?: Readonly<Record<string, NodeAttribute>>;
  /** The ONNX domain. @default '' (the standard one) */
  domain?: string;
}

/**
 * An ONNX op medsyn has no function for. Its outputs have the given types and
 * shapes; it has no gradient, so `grad` through it fails with
 * `MEDSYN_ERR_UNSUPPORTED_OP`.
 *
 * @example
 * ```ts
 * const [y] = ops.custom('Softplus', [x], { outputs: [{ dtype: 'float32', shape: x.shape }] });
 * ```
 */
export function custom(opType: string, inputs: readonly Value[], options: CustomOptions): Value[] {
  if (inputs.length === 0) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Invalid operands of ${opType}: a custom op needs at least one input`);
  const graph = graphOf(opType, ...inputs);
  if (options.outputs.length === 0) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Invalid custom op ${opType}: it needs at least one output`);
  return graph.addNode(`custom:${opType}`, inputs, options.outputs, {
    onnxOp: opType,
    domain: options.domain ?? '',
    attributes: { ...(options.attributes ?? {}) },
  });
}
