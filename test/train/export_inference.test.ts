import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportInference } from '../../train/export_inference.js';
import { Graph } from '../../train/graph.js';
import { grad } from '../../train/grad.js';
import * as nn from '../../train/nn.js';
import * as ops from '../../train/ops.js';
import { openSession, ort } from '../../train/session.js';

t.test('exportInference writes the forward pass with parameters as initializers, no backward nodes', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [1, 3]);
  const labels = g.input('labels', 'int64', [1]);
  const w = g.parameter('head.w', [3, 2], { init: [1, 0, 0, 1, 1, 1] });
  const b = g.parameter('head.b', [2], { init: [0.5, -0.5] });
  const embedding = nn.l2Normalize(nn.linear(x, w, b));
  const loss = nn.softmaxCrossEntropy(nn.linear(x, w, b), labels);
  grad(loss, [w, b]); // the backward graph exists but is not exported
  const bytes = exportInference(g, { embedding }, { parameters: new Map([['head.b', Float32Array.of(0, 0)]]), metadata: { data: 'synthetic' }, docString: 'image head' });
  const path = join(t.testdir(), 'head.onnx');
  await writeFile(path, bytes);
  const session = await openSession(path);
  t.same(session.inputNames, ['x']);
  t.same(session.outputNames, ['embedding']);
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(3, 4, 0), [1, 3]) });
  // x·w = [3, 4] (+ b = 0 from the values given; w from the graph) → unit length [0.6, 0.8].
  t.same(Array.from(out.embedding.data as Float32Array).map((v) => +v.toFixed(6)), [0.6, 0.8]);
  await session.release();
  const raw = new TextDecoder('latin1').decode(bytes);
  t.notOk(raw.includes('LogSoftmax'), 'the loss is not in the file');
  t.notOk(raw.includes('transA'), 'nor the weight-gradient products of the backward pass');
  t.ok(raw.includes('Gemm') && raw.includes('synthetic') && raw.includes('image head'), 'the forward product, the metadata and the doc string are');
});

t.test('exportInference refuses values of another graph and empty outputs', async (t) => {
  const g = new Graph();
  t.throws(() => exportInference(g, {}), { code: 'MEDSYN_ERR_BAD_GRAPH' });
  t.throws(() => exportInference(g, { y: ops.exp(new Graph().input('x', 'float32', [1])) }), { code: 'MEDSYN_ERR_BAD_GRAPH' });
});
