import t from 'tap';
import { Graph } from '../../train/graph.js';
import { GraphSession } from '../../train/graph_session.js';
import { grad } from '../../train/grad.js';
import * as ops from '../../train/ops.js';
import { openSession } from '../../train/session.js';

t.test('grad computes the gradient of a scalar loss with respect to parameters and inputs', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float64', [3]);
  const w = g.parameter('w', [3], { init: [1, 2, 3], dtype: 'float64' });
  // loss = Σ (x·w)² → ∂/∂w = 2·x²·w, ∂/∂x = 2·w²·x
  const xw = ops.mul(x, w);
  const loss = ops.reduceSum(ops.mul(xw, xw));
  const [dw, dx] = grad(loss, [w, x]);
  const session = await GraphSession.create(g, { dw, dx });
  const out = await session.run({ x: [1, -1, 2] });
  t.same(Array.from(out.dw as Float64Array), [2, 4, 24]);
  t.same(Array.from(out.dx as Float64Array), [2, -8, 36]);
});

t.test('grad adds the contributions of a value used several times', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float64', [2]);
  const loss = ops.reduceSum(ops.add(ops.mul(x, 3), ops.mul(ops.exp(x), x)));
  const [dx] = grad(loss, [x]);
  const session = await GraphSession.create(g, { dx });
  const out = (await session.run({ x: [0, 1] })).dx as Float64Array;
  t.same(Array.from(out).map((v) => +v.toFixed(12)), [3 + 1, 3 + 2 * Math.E].map((v) => +v.toFixed(12)));
});

t.test('grad prunes branches that do not lead to the loss or do not depend on the parameters', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [4, 8]);
  const w = g.parameter('w', [8, 2]);
  const frozen = g.parameter('frozen', [8, 8]);
  const side = g.parameter('side', [8, 8]);
  const features = ops.tanh(ops.matmul(x, frozen)); // depends on no trained parameter
  ops.softmax(ops.matmul(x, side)); // leads nowhere near the loss
  const loss = ops.reduceMean(ops.matmul(features, w));
  const before = g.nodes.length;
  const [dw] = grad(loss, [w]);
  const added = g.nodes.slice(before);
  const backwardOps = added.map((node) => node.op);
  t.notOk(backwardOps.includes('Softmax'), 'no backward of the side branch');
  t.notOk(added.some((node) => node.inputs.includes(frozen) || node.inputs.includes(side)), 'no gradient for frozen or side parameters');
  t.notOk(backwardOps.includes('Tanh') || added.some((node) => node.inputs.some((input) => input.node?.op === 'Tanh' && input !== features)), 'no backward through tanh');
  t.ok(added.length <= 6, `a handful of backward nodes (${added.length}: ${backwardOps.join(', ')})`);
  const session = await openSession(g.toOnnx({ dw }));
  t.notOk(session.inputNames.includes('side'), 'the side branch is not in the model');
  await session.release();
});

t.test('grad refuses losses that are not scalars, and parameters the loss ignores', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [3]);
  const w = g.parameter('w', [3]);
  const unused = g.parameter('unused', [3]);
  const y = ops.mul(x, w);
  t.throws(() => grad(y, [w]), { code: 'MEDSYN_ERR_BAD_GRAPH', message: /must be a scalar/ });
  t.throws(() => grad(ops.reduceSum(y), [unused]), { code: 'MEDSYN_ERR_BAD_GRAPH', message: /does not depend on it/ });
  t.throws(() => grad(ops.cast(ops.reduceSum(y), 'int64'), [w]), { code: 'MEDSYN_ERR_BAD_GRAPH', message: /float/ });
  t.throws(() => grad(ops.reduceSum(y), [g.input('ids', 'int64', [3])]), { code: 'MEDSYN_ERR_BAD_GRAPH' });
  const [zeros] = grad(ops.reduceSum(y), [unused], { unused: 'zeros' });
  const session = await GraphSession.create(g, { zeros });
  t.same(Array.from((await session.run({})).zeros as Float32Array), [0, 0, 0]);
});

t.test('grad with a seed computes a vector–Jacobian product', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float64', [2]);
  const seed = g.input('seed', 'float64', [2]);
  const [dx] = grad(ops.mul(x, x), [x], { seed });
  const session = await GraphSession.create(g, { dx });
  t.same(Array.from((await session.run({ x: [3, 4], seed: [1, 10] })).dx as Float64Array), [6, 80]);
  t.throws(() => grad(ops.mul(x, x), [x], { seed: g.input('bad', 'float64', [3]) }), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
});

t.test('grad through an op without a gradient rule fails with MEDSYN_ERR_UNSUPPORTED_OP naming it', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [3]);
  const [softplus] = ops.custom('Softplus', [x], { outputs: [{ dtype: 'float32', shape: [3] }] });
  t.throws(() => grad(ops.reduceSum(softplus), [x]), { code: 'MEDSYN_ERR_UNSUPPORTED_OP', message: /Softplus.*no gradient rule/ });
  const scattered = ops.scatterNd(x, g.constant([0], { shape: [1, 1], dtype: 'int64' }), g.constant([1], { shape: [1] }));
  t.throws(() => grad(ops.reduceSum(scattered), [x]), { code: 'MEDSYN_ERR_UNSUPPORTED_OP', message: /ScatterND/ });
  // A custom op off the gradient path is fine, and onnxruntime runs it.
  const [dx] = grad(ops.reduceSum(ops.mul(x, ops.stopGradient(softplus))), [x]);
  const session = await GraphSession.create(g, { dx, softplus });
  const out = await session.run({ x: [0, 1, -1] });
  t.same(Array.from(out.dx as Float32Array), Array.from(out.softplus as Float32Array));
});

t.test('an op onnxruntime does not know fails to load with MEDSYN_ERR_SESSION_FAILED', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [3]);
  const [y] = ops.custom('NoSuchOp', [x], { outputs: [{ dtype: 'float32', shape: [3] }] });
  await t.rejects(GraphSession.create(g, { y }), { code: 'MEDSYN_ERR_SESSION_FAILED', message: /NoSuchOp/ });
  // Erf has no double kernel on onnxruntime's CPU provider: that is why its gradient is checked in float32.
  const d = g.input('d', 'float64', [3]);
  await t.rejects(GraphSession.create(g, { e: ops.erf(d) }), { code: 'MEDSYN_ERR_SESSION_FAILED', message: /Erf/ });
});
