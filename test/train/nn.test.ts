import t from 'tap';
import { Graph } from '../../train/graph.js';
import { GraphSession } from '../../train/graph_session.js';
import * as nn from '../../train/nn.js';
import * as ops from '../../train/ops.js';
import { checkGradient, type GradientCase } from './_gradcheck.js';

const cases: Record<string, GradientCase> = {
  'linear as one Gemm': { dtype: 'float64', inputs: [{ shape: [4, 3] }, { shape: [3, 2] }, { shape: [2] }], build: (_, x, w, b) => nn.linear(x, w, b) },
  'linear on a batch of sequences': { dtype: 'float64', inputs: [{ shape: [2, 4, 3] }, { shape: [3, 2] }, { shape: [2] }], build: (_, x, w, b) => nn.linear(x, w, b) },
  'layerNorm with scale and bias': {
    dtype: 'float64',
    inputs: [{ shape: [3, 5] }, { shape: [5] }, { shape: [5] }],
    build: (_, x, scale, bias) => nn.layerNorm(x, { scale, bias }),
  },
  'layerNorm over two dimensions': { dtype: 'float64', inputs: [{ shape: [2, 3, 4] }], build: (_, x) => nn.layerNorm(x, { dims: 2 }) },
  // Erf has no double kernel in onnxruntime's CPU provider.
  gelu: { dtype: 'float32', inputs: [{ shape: [3, 4] }], build: (_, x) => nn.gelu(x) },
  l2Normalize: { dtype: 'float64', inputs: [{ shape: [3, 4] }], build: (_, x) => nn.l2Normalize(x) },
  'l2Normalize along axis 0': { dtype: 'float64', inputs: [{ shape: [3, 4] }], build: (_, x) => nn.l2Normalize(x, { axis: 0 }) },
  logSumExp: { dtype: 'float64', inputs: [{ shape: [3, 4] }], build: (_, x) => nn.logSumExp(x) },
  'softmaxCrossEntropy with class indices': {
    dtype: 'float64',
    inputs: [{ shape: [4, 3] }],
    build: (g, logits) => nn.softmaxCrossEntropy(logits, g.constant([2, 0, 1, 2], { dtype: 'int64' })),
  },
  'softmaxCrossEntropy with probabilities': { dtype: 'float64', inputs: [{ shape: [2, 3] }, { shape: [2, 3], positive: true }], build: (_, logits, p) => nn.softmaxCrossEntropy(logits, p) },
  'sigmoidCrossEntropy with weights': {
    dtype: 'float64',
    inputs: [{ shape: [3, 4] }, { shape: [3, 4], positive: true }],
    build: (g, logits, targets) => nn.sigmoidCrossEntropy(logits, ops.mul(targets, 0.5), { weights: g.constant([1, 0, 1, 2], { shape: [4], dtype: 'float64' }) }),
  },
  meanSquaredError: { dtype: 'float64', inputs: [{ shape: [3, 2] }, { shape: [3, 2] }], build: (_, a, b) => nn.meanSquaredError(a, b) },
  infoNce: { dtype: 'float64', inputs: [{ shape: [4, 4] }], build: (_, logits) => nn.infoNce(ops.mul(logits, 3)) },
  'the contrastive heads (normalised embeddings, clamped logit scale, InfoNCE)': {
    dtype: 'float64',
    inputs: [{ shape: [4, 5] }, { shape: [4, 5] }, { shape: [5, 3] }, { shape: [5, 3] }, { shape: [], values: [1.2] }],
    build: (_, image, text, wi, wt, logitScale) => {
      const scale = ops.clip(ops.exp(logitScale), { max: 100 });
      const logits = ops.mul(ops.gemm(nn.l2Normalize(ops.matmul(image, wi)), nn.l2Normalize(ops.matmul(text, wt)), { transB: true }), scale);
      return nn.infoNce(logits);
    },
  },
};

for (const [name, c] of Object.entries(cases)) {
  t.test(`nn: the gradient of ${name} matches finite differences in ${c.dtype}`, async (t) => {
    t.same(await checkGradient(c), [], 'no element disagrees');
  });
}

function rows(values: ArrayLike<number>, width: number): number[][] {
  return Array.from({ length: values.length / width }, (_, i) => Array.from(values).slice(i * width, (i + 1) * width));
}

t.test('nn forward values match direct computations', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float64', [2, 3]);
  const labels = g.input('labels', 'int64', [2]);
  const outputs = {
    layerNorm: nn.layerNorm(x),
    l2: nn.l2Normalize(x),
    lse: nn.logSumExp(x),
    ce: nn.softmaxCrossEntropy(x, labels),
    bce: nn.sigmoidCrossEntropy(x, ops.mul(ops.sigmoid(x), 0)),
    nce: nn.infoNce(ops.matmul(x, ops.transpose(x))),
  };
  const session = await GraphSession.create(g, outputs);
  const data = [1, 2, 4, -1, 0, 3];
  const out = await session.run({ x: data, labels: BigInt64Array.from([2n, 0n]) });
  const close = (a: number, b: number): boolean => Math.abs(a - b) < 1e-9;
  const matrix = rows(data, 3);
  const lse = matrix.map((row) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)));
  t.ok(Array.from(out.lse as Float64Array).every((v, i) => close(v, lse[i])));
  t.ok(close((out.ce as Float64Array)[0], (lse[0] - 4 + lse[1] - -1) / 2));
  const norms = matrix.map((row) => Math.hypot(...row));
  t.ok(Array.from(out.l2 as Float64Array).every((v, i) => close(v, data[i] / norms[Math.floor(i / 3)])));
  const stats = matrix.map((row) => {
    const mean = row.reduce((a, b) => a + b) / 3;
    return { mean, sd: Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0) / 3 + 1e-5) };
  });
  t.ok(Array.from(out.layerNorm as Float64Array).every((v, i) => close(v, (data[i] - stats[Math.floor(i / 3)].mean) / stats[Math.floor(i / 3)].sd)));
  const bce = data.reduce((s, z) => s + Math.log(1 + Math.exp(z)), 0) / 6;
  t.ok(close((out.bce as Float64Array)[0], bce), 'sigmoidCrossEntropy against target 0 is mean log(1 + e^z)');
  // infoNce of the Gram matrix: mean of the row- and column-wise cross-entropies at the diagonal.
  const gram = matrix.map((a) => matrix.map((b) => a.reduce((s, v, k) => s + v * b[k], 0)));
  const rowLse = gram.map((row) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)));
  const colLse = [0, 1].map((j) => Math.log(gram.reduce((s, row) => s + Math.exp(row[j]), 0)));
  const expected = ([0, 1].reduce((s, i) => s + rowLse[i] - gram[i][i] + colLse[i] - gram[i][i], 0)) / 4;
  t.ok(close((out.nce as Float64Array)[0], expected), `infoNce ${(out.nce as Float64Array)[0]} vs ${expected}`);
});

t.test('nn.logSumExp does not overflow for large logits', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [3]);
  const session = await GraphSession.create(g, { lse: nn.logSumExp(x) });
  const out = (await session.run({ x: [1000, 1000, 0] })).lse as Float32Array;
  t.ok(Math.abs(out[0] - (1000 + Math.log(2))) < 1e-3, String(out[0]));
});

t.test('nn functions reject shapes that do not fit', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [4, 3]);
  t.throws(() => nn.infoNce(x), { code: 'MEDSYN_ERR_SHAPE_MISMATCH', message: /square/ });
  t.throws(() => nn.softmaxCrossEntropy(x, g.input('l', 'int64', [5])), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => nn.softmaxCrossEntropy(x, g.input('p', 'float32', [4, 2])), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => nn.softmaxCrossEntropy(g.input('v', 'float32', [4]), g.input('l2', 'int64', [4])), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => nn.sigmoidCrossEntropy(x, g.input('y', 'float32', [4])), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => nn.layerNorm(x, { scale: g.input('s', 'float32', [4]) }), { code: 'MEDSYN_ERR_SHAPE_MISMATCH', option: 'scale' });
  t.throws(() => nn.layerNorm(x, { dims: 3 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'dims' });
  t.throws(() => nn.linear(x, g.input('w', 'float32', [4, 2])), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
  t.throws(() => nn.l2Normalize(x, { epsilon: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});
