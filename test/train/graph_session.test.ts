import t from 'tap';
import { Graph } from '../../train/graph.js';
import { GraphSession } from '../../train/graph_session.js';
import * as nn from '../../train/nn.js';
import * as ops from '../../train/ops.js';

t.test('GraphSession runs chosen outputs with the given parameter values', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [2, 2]);
  const ids = g.input('ids', 'int64', [2]);
  const w = g.parameter('w', [2, 2], { init: [1, 0, 0, 1] });
  const y = nn.linear(x, w);
  const picked = ops.gather(y, ids);
  const initial = await GraphSession.create(g, { y, picked });
  t.same(initial.inputs.map((v) => v.name), ['x', 'ids']);
  const out = await initial.run({ x: [1, 2, 3, 4], ids: BigInt64Array.of(1n, 0n) });
  t.same(Array.from(out.y as Float32Array), [1, 2, 3, 4]);
  t.same(Array.from(out.picked as Float32Array), [3, 4, 1, 2]);
  const doubled = await GraphSession.create(g, { y }, { parameters: new Map([['w', Float32Array.of(2, 0, 0, 2)]]) });
  t.same(doubled.inputs.map((v) => v.name), ['x'], 'only what the outputs need');
  t.same(Array.from((await doubled.run({ x: [1, 2, 3, 4] })).y as Float32Array), [2, 4, 6, 8]);
  await initial.release();
  await doubled.release();
});

t.test('GraphSession.run checks feeds with MEDSYN_ERR_BAD_FEED', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [3]);
  const flags = g.input('flags', 'bool', [3]);
  const session = await GraphSession.create(g, { y: ops.where(flags, x, 0) });
  t.same(Array.from((await session.run({ x: [1, 2, 3], flags: Uint8Array.of(1, 0, 1) })).y as Float32Array), [1, 0, 3]);
  t.same(Array.from((await session.run({ x: Float32Array.of(1, 2, 3), flags: [0, 1, 1] })).y as Float32Array), [0, 2, 3], 'plain arrays are converted');
  await t.rejects(session.run({ x: [1, 2, 3] }), { code: 'MEDSYN_ERR_BAD_FEED', message: /flags not fed/ });
  await t.rejects(session.run({ x: Int32Array.of(1, 2, 3), flags: [1, 1, 1] }), { code: 'MEDSYN_ERR_BAD_FEED', message: /Int32Array \(int32\), it needs float32/ });
  await t.rejects(session.run({ x: [1, 2], flags: [1, 1, 1] }), { code: 'MEDSYN_ERR_BAD_FEED', message: /2 elements, shape \[3\] holds 3/ });
  await t.rejects(session.run({ x: 'abc' as never, flags: [1, 1, 1] }), { code: 'MEDSYN_ERR_BAD_FEED' });
  await session.release();
});

t.test('GraphSession.create rejects parameter values of the wrong size', async (t) => {
  const g = new Graph();
  const w = g.parameter('w', [3]);
  await t.rejects(GraphSession.create(g, { y: ops.exp(w) }, { parameters: new Map([['w', new Float32Array(2)]]) }), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
});
