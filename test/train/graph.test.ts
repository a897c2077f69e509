import t from 'tap';
import { Graph, Value, formatShape, shapeSize } from '../../train/graph.js';
import { GraphSession } from '../../train/graph_session.js';
import { glorotUniform, uniform } from '../../train/init.js';
import * as ops from '../../train/ops.js';
import { openSession } from '../../train/session.js';

t.test('Graph declares inputs, parameters and constants with static shapes', async (t) => {
  const g = new Graph({ seed: 3 });
  const x = g.input('x', 'float32', [4, 3]);
  const w = g.parameter('w', [3, 2], { init: glorotUniform() });
  const b = g.parameter('b', [2], { init: [0.5, -0.5] });
  const s = g.parameter('scale', [], { init: 2, dtype: 'float64' });
  const c = g.constant([1, 2, 3], { dtype: 'int64' });
  t.ok(x instanceof Value);
  t.same([x.kind, w.kind, c.kind], ['input', 'parameter', 'constant']);
  t.same([x.rank, x.size, s.rank, s.size], [2, 12, 0, 1]);
  t.equal(String(x), 'x float32[4, 3]');
  t.same(g.inputs, [x]);
  t.same(g.parameters, [w, b, s]);
  t.same(Array.from(g.initialValue('b')), [0.5, -0.5]);
  t.same(Array.from(g.initialValue(s)), [2]);
  t.ok(g.initialValue(s) instanceof Float64Array);
  t.same(Array.from(g.constantValue(c) as BigInt64Array), [1n, 2n, 3n]);
  t.equal(g.value('w'), w);
  t.equal(g.scalar(0.5, 'float32'), g.scalar(0.5, 'float32'), 'equal scalars are shared');
  t.equal(g.int64s([1, 2]), g.int64s([1, 2]));
  t.equal(shapeSize([2, 3, 4]), 24);
  t.equal(formatShape([]), '[]');
});

t.test('Graph draws the same initial values for the same seed and name, whatever the order', async (t) => {
  const a = new Graph({ seed: 9 });
  const a1 = a.parameter('first', [4], { init: uniform() });
  const a2 = a.parameter('second', [4], { init: uniform() });
  const b = new Graph({ seed: 9 });
  const b2 = b.parameter('second', [4], { init: uniform() });
  const b1 = b.parameter('first', [4], { init: uniform() });
  t.same(Array.from(a.initialValue(a1)), Array.from(b.initialValue(b1)));
  t.same(Array.from(a.initialValue(a2)), Array.from(b.initialValue(b2)));
  t.not(Array.from(a.initialValue(a1)).join(), Array.from(a.initialValue(a2)).join(), 'another name, other values');
  const c = new Graph({ seed: 10 });
  t.not(Array.from(c.initialValue(c.parameter('first', [4], { init: uniform() }))).join(), Array.from(a.initialValue(a1)).join(), 'another seed, other values');
});

t.test('Graph rejects duplicate names, bad shapes and initial values that do not fill the shape', async (t) => {
  const g = new Graph();
  g.input('x', 'float32', [2]);
  t.throws(() => g.input('x', 'float32', [2]), { code: 'MEDSYN_ERR_BAD_GRAPH', message: /already has a value of that name/ });
  t.throws(() => g.parameter('x', [2]), { code: 'MEDSYN_ERR_BAD_GRAPH' });
  t.throws(() => g.input('', 'float32', [2]), { code: 'MEDSYN_ERR_BAD_GRAPH' });
  t.throws(() => g.input('y', 'float32', [2, -1]), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => g.input('y', 'float32', [1.5]), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => g.input('y', 'complex' as never, [2]), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'dtype' });
  t.throws(() => g.parameter('p', [2, 2], { init: [1, 2, 3] }), { code: 'MEDSYN_ERR_SHAPE_MISMATCH', message: /3 values for 4 elements/ });
  t.throws(() => g.parameter('q', [2], { dtype: 'int64' as never }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
  t.throws(() => g.constant([1, 2, 3], { shape: [2, 2] }), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => g.initialValue('nope'), { code: 'MEDSYN_ERR_BAD_GRAPH' });
  t.throws(() => new Graph({ seed: Number.NaN }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'seed' });
});

t.test('Graph.toOnnx writes only what the outputs need', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [2]);
  const unused = g.input('unused', 'float32', [2]);
  const w = g.parameter('w', [2], { init: [2, 3] });
  const other = g.parameter('other', [2]);
  const y = ops.mul(x, w);
  ops.exp(ops.add(unused, other)); // a branch nobody asks for
  const session = await openSession(g.toOnnx({ y }));
  t.same(session.inputNames, ['x', 'w'], 'parameters are inputs by default; the unused branch is gone');
  t.same(session.outputNames, ['y']);
  await session.release();
  const inference = await openSession(g.toOnnx({ y }, { parameters: 'initializers' }));
  t.same(inference.inputNames, ['x'], 'as initializers, only the data input is left');
  await inference.release();
});

t.test('Graph.toOnnx names outputs as asked and refuses clashing names', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [2]);
  const y = ops.mul(x, 2);
  const session = await GraphSession.create(g, { doubled: y, same: x, [y.name]: y });
  const out = await session.run({ x: [1, 2] });
  t.same(Array.from(out.doubled as Float32Array), [2, 4]);
  t.same(Array.from(out.same as Float32Array), [1, 2]);
  t.same(Array.from(out[y.name] as Float32Array), [2, 4]);
  t.throws(() => g.toOnnx({ x: y }), { code: 'MEDSYN_ERR_BAD_GRAPH', message: /another value of that name/ });
  t.throws(() => g.toOnnx({}), { code: 'MEDSYN_ERR_BAD_GRAPH' });
  t.throws(() => g.toOnnx({ y: new Graph().input('z', 'float32', [1]) }), { code: 'MEDSYN_ERR_BAD_GRAPH', message: /another graph/ });
});

t.test('Graph.uniqueName and addNode keep names unique', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [1]);
  t.equal(g.uniqueName('x'), 'x_1');
  t.equal(g.uniqueName('fresh'), 'fresh');
  const [y] = g.addNode('Identity', [x], [{ dtype: 'float32', shape: [1] }]);
  const [z] = g.addNode('Identity', [x], [{ dtype: 'float32', shape: [1] }]);
  t.not(y.name, z.name);
  t.equal(y.node!.op, 'Identity');
  t.same(g.nodes.map((node) => node.outputs[0]), [y, z]);
});
