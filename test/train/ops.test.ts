import t from 'tap';
import { Graph, type Value } from '../../train/graph.js';
import { GraphSession } from '../../train/graph_session.js';
import { grad } from '../../train/grad.js';
import * as ops from '../../train/ops.js';
import { checkGradient, compareGradients, type GradientCase } from './_gradcheck.js';

/**
 * Every op's gradient against central finite differences. Each case runs in
 * float64 where onnxruntime's CPU provider has a double kernel for every op the
 * forward and backward graphs use; the float32 cases say why.
 */

/** Inputs for ops with kinks (relu and abs at 0, clip at its bounds): every value well away from them. */
const kinked = [-0.9, -0.35, 0.4, 0.8, -0.6, 0.25, 0.7, -0.15, 0.55, -0.45, 0.3, -0.75];

const cases: Record<string, GradientCase> = {
  'add with both operands broadcast': { dtype: 'float64', inputs: [{ shape: [2, 1, 3] }, { shape: [4, 1] }], build: (_, a, b) => ops.add(a, b) },
  'add with a number': { dtype: 'float64', inputs: [{ shape: [2, 3] }], build: (_, a) => ops.add(2, a) },
  'sub with a broadcast right operand': { dtype: 'float64', inputs: [{ shape: [2, 3] }, { shape: [2, 1] }], build: (_, a, b) => ops.sub(a, b) },
  'sub from a number': { dtype: 'float64', inputs: [{ shape: [3] }], build: (_, a) => ops.sub(1, a) },
  'mul with broadcasting on both sides': { dtype: 'float64', inputs: [{ shape: [3, 1, 4] }, { shape: [2, 4] }], build: (_, a, b) => ops.mul(a, b) },
  'mul of a value by itself': { dtype: 'float64', inputs: [{ shape: [5] }], build: (_, a) => ops.mul(a, a) },
  'div with a broadcast denominator': { dtype: 'float64', inputs: [{ shape: [2, 3] }, { shape: [3], positive: true }], build: (_, a, b) => ops.div(a, b) },
  'div of a number': { dtype: 'float64', inputs: [{ shape: [4], positive: true }], build: (_, a) => ops.div(1, a) },
  'pow with a tensor exponent, broadcast': { dtype: 'float64', inputs: [{ shape: [2, 3], positive: true }, { shape: [3] }], build: (_, a, b) => ops.pow(a, b) },
  'pow with a constant exponent': { dtype: 'float64', inputs: [{ shape: [2, 3] }], build: (_, a) => ops.pow(a, 3) },
  neg: { dtype: 'float64', inputs: [{ shape: [2, 3] }], build: (_, a) => ops.neg(a) },
  exp: { dtype: 'float64', inputs: [{ shape: [2, 3] }], build: (_, a) => ops.exp(a) },
  log: { dtype: 'float64', inputs: [{ shape: [2, 3], positive: true }], build: (_, a) => ops.log(a) },
  sqrt: { dtype: 'float64', inputs: [{ shape: [2, 3], positive: true }], build: (_, a) => ops.sqrt(a) },
  abs: { dtype: 'float64', inputs: [{ shape: [12], values: kinked }], build: (_, a) => ops.abs(a) },
  // onnxruntime's CPU provider has Erf for float only.
  erf: { dtype: 'float32', inputs: [{ shape: [2, 3] }], build: (_, a) => ops.erf(a) },
  relu: { dtype: 'float64', inputs: [{ shape: [3, 4], values: kinked }], build: (_, a) => ops.relu(a) },
  tanh: { dtype: 'float64', inputs: [{ shape: [2, 3] }], build: (_, a) => ops.tanh(a) },
  sigmoid: { dtype: 'float64', inputs: [{ shape: [2, 3] }], build: (_, a) => ops.sigmoid(a) },
  identity: { dtype: 'float64', inputs: [{ shape: [2, 3] }], build: (_, a) => ops.identity(a) },
  'matmul of matrices': { dtype: 'float64', inputs: [{ shape: [3, 4] }, { shape: [4, 5] }], build: (_, a, b) => ops.matmul(a, b) },
  'matmul of a batch by a broadcast matrix': { dtype: 'float64', inputs: [{ shape: [2, 3, 4] }, { shape: [4, 5] }], build: (_, a, b) => ops.matmul(a, b) },
  'matmul of a matrix by a batch': { dtype: 'float64', inputs: [{ shape: [3, 4] }, { shape: [2, 4, 2] }], build: (_, a, b) => ops.matmul(a, b) },
  'matmul of batches with a broadcast batch dimension': { dtype: 'float64', inputs: [{ shape: [2, 1, 3, 4] }, { shape: [3, 4, 2] }], build: (_, a, b) => ops.matmul(a, b) },
  'matmul of a vector by a matrix': { dtype: 'float64', inputs: [{ shape: [4] }, { shape: [4, 3] }], build: (_, a, b) => ops.matmul(a, b) },
  'matmul of a matrix by a vector': { dtype: 'float64', inputs: [{ shape: [3, 4] }, { shape: [4] }], build: (_, a, b) => ops.matmul(a, b) },
  'gemm with a row bias': { dtype: 'float64', inputs: [{ shape: [3, 4] }, { shape: [4, 5] }, { shape: [5] }], build: (_, a, b, c) => ops.gemm(a, b, { c }) },
  'gemm transA with a column bias and alpha/beta': {
    dtype: 'float64',
    inputs: [{ shape: [4, 3] }, { shape: [4, 5] }, { shape: [3, 1] }],
    build: (_, a, b, c) => ops.gemm(a, b, { c, transA: true, alpha: 0.5, beta: 2 }),
  },
  'gemm transB': { dtype: 'float64', inputs: [{ shape: [3, 4] }, { shape: [5, 4] }], build: (_, a, b) => ops.gemm(a, b, { transB: true, alpha: 3 }) },
  'gemm transA transB with a full bias': {
    dtype: 'float64',
    inputs: [{ shape: [4, 3] }, { shape: [5, 4] }, { shape: [3, 5] }],
    build: (_, a, b, c) => ops.gemm(a, b, { c, transA: true, transB: true }),
  },
  'reduceSum over one axis': { dtype: 'float64', inputs: [{ shape: [2, 3, 4] }], build: (_, a) => ops.reduceSum(a, { axes: 1 }) },
  'reduceSum over all axes': { dtype: 'float64', inputs: [{ shape: [2, 3] }], build: (_, a) => ops.reduceSum(a) },
  'reduceMean keeping dimensions': { dtype: 'float64', inputs: [{ shape: [2, 3, 4] }], build: (_, a) => ops.reduceMean(a, { axes: [0, 2], keepDims: true }) },
  'reduceMax over the last axis': { dtype: 'float64', inputs: [{ shape: [3, 4] }], build: (_, a) => ops.reduceMax(a, { axes: -1 }) },
  reduceSumSquare: { dtype: 'float64', inputs: [{ shape: [3, 4] }], build: (_, a) => ops.reduceSumSquare(a, { axes: 0 }) },
  'softmax over the last axis': { dtype: 'float64', inputs: [{ shape: [3, 4] }], build: (_, a) => ops.softmax(a) },
  'softmax over the first axis': { dtype: 'float64', inputs: [{ shape: [3, 4] }], build: (_, a) => ops.softmax(a, { axis: 0 }) },
  'logSoftmax over a middle axis': { dtype: 'float64', inputs: [{ shape: [2, 3, 4] }], build: (_, a) => ops.logSoftmax(a, { axis: 1 }) },
  transpose: { dtype: 'float64', inputs: [{ shape: [2, 3, 4] }], build: (_, a) => ops.transpose(a, [2, 0, 1]) },
  reshape: { dtype: 'float64', inputs: [{ shape: [2, 6] }], build: (_, a) => ops.reshape(a, [3, -1]) },
  expand: { dtype: 'float64', inputs: [{ shape: [3, 1] }], build: (_, a) => ops.expand(a, [2, 3, 4]) },
  concat: { dtype: 'float64', inputs: [{ shape: [2, 3] }, { shape: [2, 2] }], build: (_, a, b) => ops.concat([a, b, a], { axis: 1 }) },
  'slice with negative and clamped bounds': {
    dtype: 'float64',
    inputs: [{ shape: [4, 5] }],
    build: (_, a) => ops.slice(a, { starts: [1, -3], ends: [3, 100], axes: [0, 1] }),
  },
  pad: { dtype: 'float64', inputs: [{ shape: [2, 3] }], build: (_, a) => ops.pad(a, { before: [1, 0], after: [0, 2] }) },
  'gather rows with a repeated and a negative index': {
    dtype: 'float64',
    inputs: [{ shape: [5, 3] }],
    build: (g, a) => ops.gather(a, g.constant([0, 2, 2, -1], { shape: [2, 2], dtype: 'int64' })),
  },
  'gather along axis 1 with int32 indices': {
    dtype: 'float64',
    inputs: [{ shape: [2, 4, 3] }],
    build: (g, a) => ops.gather(a, g.constant([3, 0, 3], { shape: [3], dtype: 'int32' }), { axis: 1 }),
  },
  'clip inside and outside the bounds': { dtype: 'float64', inputs: [{ shape: [12], values: kinked }], build: (_, a) => ops.clip(a, { min: -0.5, max: 0.5 }) },
  'clip with an upper bound only': { dtype: 'float64', inputs: [{ shape: [12], values: kinked }], build: (_, a) => ops.clip(a, { max: 0.5 }) },
  'where with broadcast branches': {
    dtype: 'float64',
    inputs: [{ shape: [2, 3] }, { shape: [3] }],
    build: (g, a, b) => ops.where(g.constant([1, 0, 1, 0, 0, 1], { shape: [2, 3], dtype: 'bool' }), a, b),
  },
  'where with a number branch': {
    dtype: 'float64',
    inputs: [{ shape: [2, 3] }],
    build: (g, a) => ops.where(g.constant([1, 0, 1], { shape: [3], dtype: 'bool' }), 0, a),
  },
  // Float32 in, so both directions of Cast are crossed; the float32 rounding limits the accuracy.
  'cast to float64 and back': { dtype: 'float32', inputs: [{ shape: [2, 3] }], build: (_, a) => ops.cast(ops.mul(ops.cast(a, 'float64'), 3), 'float32') },
  // The products again in float32, the type training runs in (MLAS kernels rather than Eigen's double ones).
  'matmul in float32': { dtype: 'float32', inputs: [{ shape: [3, 4] }, { shape: [4, 5] }], build: (_, a, b) => ops.matmul(a, b) },
  'gemm in float32': { dtype: 'float32', inputs: [{ shape: [4, 3] }, { shape: [4, 5] }, { shape: [5] }], build: (_, a, b, c) => ops.gemm(a, b, { c, transA: true }) },
};

for (const [name, c] of Object.entries(cases)) {
  t.test(`ops: the gradient of ${name} matches finite differences in ${c.dtype}`, async (t) => {
    t.same(await checkGradient(c), [], 'no element disagrees');
  });
}

t.test('compareGradients reports elements beyond the tolerance, so the checks can fail', async (t) => {
  t.same(compareGradients([1, 2, 3], [1, 2, 3], 'float64'), []);
  t.same(compareGradients([1, 2, 3], [1, 2.001, 3], 'float64').map((m) => m.element), [1]);
  t.same(compareGradients([1, 2], [1.5, 2], 'float32').map((m) => m.element), [0]);
  t.same(compareGradients([NaN], [0], 'float32').length, 1, 'NaN never passes');
});

t.test('checkGradient finds a wrong gradient: x·stopGradient(x) has analytic gradient x, not 2x', async (t) => {
  // stopGradient makes the analytic gradient of x·stop(x) equal to stop(x), not 2x.
  const mismatches = await checkGradient({ dtype: 'float64', inputs: [{ shape: [4] }], build: (_, a) => ops.mul(a, ops.stopGradient(a)) });
  t.equal(mismatches.length, 4, 'every element disagrees');
});

t.test('ops.stopGradient passes values and blocks gradients', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float64', [3]);
  const loss = ops.reduceSum(ops.mul(x, ops.stopGradient(ops.mul(x, 2))));
  const [dx] = grad(loss, [x]);
  const session = await GraphSession.create(g, { loss, dx });
  const out = await session.run({ x: new Float64Array([1, 2, 3]) });
  t.same(Array.from(out.loss as Float64Array), [28]);
  t.same(Array.from(out.dx as Float64Array), [2, 4, 6], 'd/dx of x·stop(2x) is 2x');
});

t.test('ops.reduceMax shares the gradient between ties', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float64', [4]);
  const [dx] = grad(ops.reduceMax(x), [x]);
  const session = await GraphSession.create(g, { dx });
  t.same(Array.from((await session.run({ x: [1, 3, 3, 2] })).dx as Float64Array), [0, 0.5, 0.5, 0]);
});

t.test('ops.relu has gradient 0 at 0 and ops.clip passes it at the bounds, as PyTorch', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float64', [3]);
  const [dr] = grad(ops.reduceSum(ops.relu(x)), [x]);
  const [dc] = grad(ops.reduceSum(ops.clip(x, { min: 0, max: 1 })), [x]);
  const session = await GraphSession.create(g, { dr, dc });
  const out = await session.run({ x: [0, 1, 2] });
  t.same(Array.from(out.dr as Float64Array), [0, 1, 1]);
  t.same(Array.from(out.dc as Float64Array), [1, 1, 0]);
});

t.test('ops forward values match the definitions', async (t) => {
  const g = new Graph();
  const a = g.input('a', 'float64', [2, 3]);
  const b = g.input('b', 'float64', [3]);
  const outputs: Record<string, Value> = {
    add: ops.add(a, b),
    pow: ops.pow(b, 2),
    matmul: ops.matmul(a, b),
    sumRows: ops.reduceSum(a, { axes: 1 }),
    meanAll: ops.reduceMean(a),
    max: ops.reduceMax(a, { axes: 0 }),
    softmax: ops.softmax(b),
    slice: ops.slice(a, { starts: [1], ends: [3], axes: [1] }),
    gather: ops.gather(a, g.constant([1, 0], { dtype: 'int64' })),
    clip: ops.clip(b, { min: 1.5, max: 2.5 }),
    transpose: ops.transpose(a),
    concat: ops.concat([a, a], { axis: 0 }),
    pad: ops.pad(b, { before: [1], after: [2] }),
    greater: ops.greater(b, 2),
  };
  const session = await GraphSession.create(g, outputs);
  const out = await session.run({ a: [1, 2, 3, 4, 5, 6], b: [1, 2, 3] });
  const list = (name: string): number[] => Array.from(out[name] as ArrayLike<number>, Number);
  t.same(list('add'), [2, 4, 6, 5, 7, 9]);
  t.same(list('pow'), [1, 4, 9]);
  t.same(list('matmul'), [14, 32]);
  t.same(list('sumRows'), [6, 15]);
  t.same(list('meanAll'), [3.5]);
  t.same(list('max'), [4, 5, 6]);
  const e = [1, 2, 3].map(Math.exp);
  const total = e.reduce((x, y) => x + y);
  list('softmax').forEach((p, i) => t.ok(Math.abs(p - e[i] / total) < 1e-15));
  t.same(list('slice'), [2, 3, 5, 6]);
  t.same(list('gather'), [4, 5, 6, 1, 2, 3]);
  t.same(list('clip'), [1.5, 2, 2.5]);
  t.same(list('transpose'), [1, 4, 2, 5, 3, 6]);
  t.same(list('concat'), [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
  t.same(list('pad'), [0, 1, 2, 3, 0, 0]);
  t.same(list('greater'), [0, 0, 1]);
});

t.test('ops shape inference: static shapes of results', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [8, 1, 5]);
  t.same(ops.add(x, g.input('y', 'float32', [4, 1])).shape, [8, 4, 5]);
  t.same(ops.matmul(g.input('p', 'float32', [2, 1, 3, 4]), g.input('q', 'float32', [5, 4, 6])).shape, [2, 5, 3, 6]);
  t.same(ops.matmul(g.input('v', 'float32', [4]), g.input('m', 'float32', [4, 6])).shape, [6]);
  t.same(ops.gemm(g.input('a', 'float32', [4, 3]), g.input('b', 'float32', [5, 4]), { transA: true, transB: true }).shape, [3, 5]);
  t.same(ops.reduceSum(x, { axes: [0, -1] }).shape, [1]);
  t.same(ops.reduceMean(x, { axes: -1, keepDims: true }).shape, [8, 1, 1]);
  t.same(ops.reduceMax(x).shape, []);
  t.same(ops.reshape(x, [-1, 10]).shape, [4, 10]);
  t.same(ops.transpose(x).shape, [5, 1, 8]);
  t.same(ops.slice(x, { starts: [-3], ends: [-1], axes: [2] }).shape, [8, 1, 2]);
  t.same(ops.gather(x, g.input('i', 'int64', [2, 3]), { axis: 2 }).shape, [8, 1, 2, 3]);
  t.same(ops.concat([x, x], { axis: -1 }).shape, [8, 1, 10]);
  t.same(ops.expand(x, [3, 8, 4, 5]).shape, [3, 8, 4, 5]);
  t.same(ops.where(g.input('c', 'bool', [5]), x, 0).shape, [8, 1, 5]);
  t.equal(ops.cast(x, 'float64').dtype, 'float64');
  t.equal(ops.greater(x, 0).dtype, 'bool');
});

t.test('ops reject shape mismatches with MEDSYN_ERR_SHAPE_MISMATCH and both shapes in the message', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [256, 768]);
  const w = g.input('w', 'float32', [512, 768]);
  t.throws(() => ops.matmul(x, w), { code: 'MEDSYN_ERR_SHAPE_MISMATCH', message: /x float32\[256, 768\] by w float32\[512, 768\].*768 columns but w has 512 rows/ });
  t.throws(() => ops.add(x, g.input('b', 'float32', [512])), { code: 'MEDSYN_ERR_SHAPE_MISMATCH', message: /sizes 768 and 512 differ/ });
  t.throws(() => ops.gemm(x, w), { code: 'MEDSYN_ERR_SHAPE_MISMATCH', message: /transA\/transB/ });
  t.throws(() => ops.gemm(x, w, { transB: true, c: g.input('c', 'float32', [3]) }), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => ops.reshape(x, [7, -1]), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => ops.reshape(x, [-1, -1]), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => ops.reduceSum(x, { axes: 2 }), { code: 'MEDSYN_ERR_SHAPE_MISMATCH', message: /axis 2/ });
  t.throws(() => ops.reduceSum(x, { axes: [1, -1] }), { code: 'MEDSYN_ERR_SHAPE_MISMATCH', message: /repeated/ });
  t.throws(() => ops.transpose(x, [0, 0]), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => ops.concat([x, g.input('z', 'float32', [256, 10, 1])], { axis: 1 }), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => ops.slice(x, { starts: [0, 0], ends: [1] }), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => ops.pad(x, { before: [1], after: [1] }), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => ops.softmax(g.scalar(1)), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => ops.expand(x, [3, 768]), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
});

t.test('ops reject wrong element types and foreign values', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [4]);
  const d = g.input('d', 'float64', [4]);
  const i = g.input('i', 'int64', [4]);
  t.throws(() => ops.add(x, d), { code: 'MEDSYN_ERR_DTYPE_MISMATCH', message: /cast one of them/ });
  t.throws(() => ops.exp(i), { code: 'MEDSYN_ERR_DTYPE_MISMATCH' });
  t.throws(() => ops.gather(x, x), { code: 'MEDSYN_ERR_DTYPE_MISMATCH' });
  t.throws(() => ops.where(x, x, x), { code: 'MEDSYN_ERR_DTYPE_MISMATCH' });
  t.throws(() => ops.add(x, new Graph().input('y', 'float32', [4])), { code: 'MEDSYN_ERR_BAD_GRAPH', message: /another graph/ });
  t.throws(() => ops.add(1 as never, 2 as never), { code: 'MEDSYN_ERR_BAD_GRAPH' });
  t.throws(() => ops.clip(x, { min: 1, max: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
  t.equal(ops.add(i, 1).dtype, 'int64', 'integer arithmetic is allowed');
});
