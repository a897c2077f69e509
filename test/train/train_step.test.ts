import t from 'tap';
import { join } from 'node:path';
import { adamw } from '../../train/adamw.js';
import { Graph, type Value } from '../../train/graph.js';
import { GraphSession } from '../../train/graph_session.js';
import { glorotUniform, zeros } from '../../train/init.js';
import * as nn from '../../train/nn.js';
import * as ops from '../../train/ops.js';
import { constantSchedule, warmupCosine } from '../../train/schedule.js';
import { sgd } from '../../train/sgd.js';
import { trainStep, TrainStep } from '../../train/train_step.js';
import { randomSource } from '../../train/_random.js';

const XOR_X = [0, 0, 0, 1, 1, 0, 1, 1];
const XOR_Y = [0, 1, 1, 0];

function xorModel(seed = 3): { g: Graph; loss: Value; probability: Value } {
  const g = new Graph({ seed });
  const x = g.input('x', 'float32', [4, 2]);
  const y = g.input('y', 'float32', [4, 1]);
  const w1 = g.parameter('w1', [2, 8], { init: glorotUniform() });
  const b1 = g.parameter('b1', [8]);
  const w2 = g.parameter('w2', [8, 1], { init: glorotUniform() });
  const b2 = g.parameter('b2', [1]);
  const logit = nn.linear(ops.tanh(nn.linear(x, w1, b1)), w2, b2);
  return { g, loss: nn.sigmoidCrossEntropy(logit, y), probability: ops.sigmoid(logit) };
}

t.test('TrainStep: a small MLP learns XOR', async (t) => {
  const { g, loss, probability } = xorModel();
  const step = await trainStep(g, loss, { optimizer: adamw({ lr: 0.05, weightDecay: 0 }), outputs: { probability }, intraOpThreads: 1 });
  t.same(step.inputs.map((v) => v.name), ['x', 'y'], 'only the batch is fed by the caller');
  let last = await step.run({ x: XOR_X, y: XOR_Y });
  const first = last.loss;
  for (let i = 0; i < 400; i++) last = await step.run({ x: XOR_X, y: XOR_Y });
  t.ok(first > 0.5, `starts near chance (${first.toFixed(3)})`);
  t.ok(last.loss < 0.02, `loss after 401 steps: ${last.loss.toFixed(4)}`);
  t.same(Array.from(last.outputs.probability as Float32Array, (p) => (p > 0.5 ? 1 : 0)), XOR_Y, 'every XOR case right');
  t.equal(last.step, 401);
  await step.release();
});

t.test('TrainStep: logistic regression reaches the closed-form optimum of a grouped design', async (t) => {
  // One-hot groups without intercept: the maximum-likelihood weight of group k is logit(positive rate of k).
  const groups = [
    { count: 4, positives: 1 },
    { count: 2, positives: 1 },
    { count: 5, positives: 4 },
  ];
  const rows = groups.flatMap((group, k) => Array.from({ length: group.count }, (_, i) => ({ k, y: i < group.positives ? 1 : 0 })));
  const x = rows.flatMap(({ k }) => [0, 1, 2].map((j) => (j === k ? 1 : 0)));
  const y = rows.map((row) => row.y);
  const g = new Graph();
  const input = g.input('x', 'float64', [rows.length, 3]);
  const target = g.input('y', 'float64', [rows.length]);
  const w = g.parameter('w', [3], { dtype: 'float64' });
  const loss = nn.sigmoidCrossEntropy(ops.matmul(input, w), target);
  const step = await trainStep(g, loss, { optimizer: sgd({ lr: 2, momentum: 0.9 }), intraOpThreads: 1 });
  for (let i = 0; i < 600; i++) await step.run({ x: Float64Array.from(x), y: Float64Array.from(y) });
  const logit = (p: number): number => Math.log(p / (1 - p));
  const expected = groups.map((group) => logit(group.positives / group.count));
  const got = Array.from(step.parameters().get('w')!);
  got.forEach((value, k) => t.ok(Math.abs(value - expected[k]) < 1e-7, `w[${k}] = ${value}, optimum ${expected[k]}`));
  await step.release();
});

/** Newton's method for L2-penalised logistic regression with an intercept, in double precision. */
function newtonLogistic(x: number[][], y: number[], lambda: number): number[] {
  const d = x[0].length + 1;
  const theta = new Array(d).fill(0);
  for (let iteration = 0; iteration < 50; iteration++) {
    const gradient = new Array(d).fill(0);
    const hessian = Array.from({ length: d }, () => new Array(d).fill(0));
    x.forEach((row, i) => {
      const features = [...row, 1];
      const z = features.reduce((sum, f, j) => sum + f * theta[j], 0);
      const p = 1 / (1 + Math.exp(-z));
      for (let a = 0; a < d; a++) {
        gradient[a] += ((p - y[i]) * features[a]) / x.length;
        for (let b = 0; b < d; b++) hessian[a][b] += (p * (1 - p) * features[a] * features[b]) / x.length;
      }
    });
    for (let a = 0; a < d - 1; a++) {
      gradient[a] += 2 * lambda * theta[a];
      hessian[a][a] += 2 * lambda;
    }
    // Solve hessian · delta = gradient (Gaussian elimination; the Hessian is positive definite).
    const m = hessian.map((row, i) => [...row, gradient[i]]);
    for (let c = 0; c < d; c++) {
      for (let r = c + 1; r < d; r++) {
        const f = m[r][c] / m[c][c];
        for (let k = c; k <= d; k++) m[r][k] -= f * m[c][k];
      }
    }
    const delta = new Array(d).fill(0);
    for (let r = d - 1; r >= 0; r--) delta[r] = (m[r][d] - m[r].slice(r + 1, d).reduce((s, v, k) => s + v * delta[r + 1 + k], 0)) / m[r][r];
    for (let a = 0; a < d; a++) theta[a] -= delta[a];
  }
  return theta;
}

t.test('TrainStep: a float32 linear probe with AdamW reaches the Newton optimum of penalised logistic regression', async (t) => {
  const random = randomSource(7, 'probe');
  const n = 128;
  const trueW = [1.5, -2, 0.5, 0];
  const x = Array.from({ length: n }, () => trueW.map(() => random.normal()));
  const y = x.map((row) => (random.uniform() < 1 / (1 + Math.exp(-(row.reduce((s, v, j) => s + v * trueW[j], 0) + 0.3))) ? 1 : 0));
  const lambda = 0.01;
  const optimum = newtonLogistic(x, y, lambda);

  const g = new Graph();
  const features = g.input('x', 'float32', [n, 4]);
  const labels = g.input('y', 'float32', [n, 1]);
  const w = g.parameter('w', [4, 1], { init: zeros() });
  const b = g.parameter('b', [1]);
  const loss = ops.add(nn.sigmoidCrossEntropy(nn.linear(features, w, b), labels), ops.mul(ops.reduceSumSquare(w), lambda));
  const step = await trainStep(g, loss, {
    optimizer: adamw({ lr: warmupCosine({ peak: 0.1, warmupSteps: 20, totalSteps: 1500, final: 1e-4 }), weightDecay: 0 }),
    intraOpThreads: 1,
  });
  const batch = { x: Float32Array.from(x.flat()), y: Float32Array.from(y) };
  for (let i = 0; i < 1500; i++) await step.run(batch);
  const learned = [...step.parameters().get('w')!, ...step.parameters().get('b')!];
  learned.forEach((value, j) => t.ok(Math.abs(value - optimum[j]) < 2e-3, `θ[${j}] = ${value.toFixed(5)}, optimum ${optimum[j].toFixed(5)}`));
  await step.release();
});

t.test('TrainStep: clipGradNorm scales the gradients to the global norm and reports the norm', async (t) => {
  const g = new Graph();
  const a = g.parameter('a', [2], { dtype: 'float64' });
  const b = g.parameter('b', [1], { dtype: 'float64' });
  // Gradient (3, 4) for a and 12 for b: global norm 13.
  const loss = ops.add(ops.reduceSum(ops.mul(a, g.constant([3, 4], { dtype: 'float64' }))), ops.reduceSum(ops.mul(b, 12)));
  const step = await trainStep(g, loss, { optimizer: sgd({ lr: 1 }), clipGradNorm: 6.5, intraOpThreads: 1 });
  const result = await step.run({});
  t.equal(result.gradNorm, 13);
  const scale = 6.5 / (13 + 1e-6);
  t.same(Array.from(step.parameters().get('a')!), [-3 * scale, -4 * scale]);
  t.same(Array.from(step.parameters().get('b')!), [-12 * scale]);
  const loose = await trainStep(g, loss, { optimizer: sgd({ lr: 1 }), clipGradNorm: 100, intraOpThreads: 1 });
  await loose.run({});
  t.same(Array.from(loose.parameters().get('a')!), [-3, -4], 'no scaling below the limit');
  await step.release();
  await loose.release();
});

t.test('TrainStep: frozen parameters are fed but not updated; outputs come from before the update', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [2]);
  const frozen = g.parameter('frozen', [2], { init: [2, 3] });
  const trained = g.parameter('trained', [2], { init: [1, 1] });
  const product = ops.mul(ops.mul(x, frozen), trained);
  const step = await trainStep(g, ops.reduceSum(product), { optimizer: sgd({ lr: 0.5 }), parameters: [trained], outputs: { product } });
  const result = await step.run({ x: [1, 1] });
  t.same(Array.from(result.outputs.product as Float32Array), [2, 3]);
  t.same(Array.from(step.parameters().get('frozen')!), [2, 3]);
  t.same(Array.from(step.parameters().get('trained')!), [0, -0.5]);
  await step.release();
});

t.test('TrainStep.run rejects bad batches with MEDSYN_ERR_BAD_FEED', async (t) => {
  const { g, loss } = xorModel();
  const step = await trainStep(g, loss, { optimizer: sgd() });
  await t.rejects(step.run({ x: XOR_X }), { code: 'MEDSYN_ERR_BAD_FEED', message: /input y not fed/ });
  await t.rejects(step.run({ x: XOR_X, y: XOR_Y, z: [1] }), { code: 'MEDSYN_ERR_BAD_FEED', message: /no input named z/ });
  await t.rejects(step.run({ x: XOR_X.slice(1), y: XOR_Y }), { code: 'MEDSYN_ERR_BAD_FEED', message: /7 elements/ });
  await t.rejects(step.run({ x: Float64Array.from(XOR_X), y: XOR_Y }), { code: 'MEDSYN_ERR_BAD_FEED', message: /needs float32/ });
  t.equal(step.step, 0, 'failed runs do not count');
  t.ok((await step.run({ x: XOR_X, y: XOR_Y })).loss > 0, 'the step still works after a bad batch');
  await step.release();
});

t.test('trainStep rejects a loss that is not a scalar, bad options and parameters the loss ignores', async (t) => {
  const g = new Graph();
  const x = g.input('x', 'float32', [3]);
  const w = g.parameter('w', [3]);
  const unused = g.parameter('unused', [3]);
  void unused;
  await t.rejects(trainStep(g, ops.mul(x, w), { optimizer: sgd() }), { code: 'MEDSYN_ERR_BAD_GRAPH', message: /must be a scalar/ });
  await t.rejects(trainStep(g, ops.reduceSum(ops.mul(x, w)), { optimizer: sgd() }), { code: 'MEDSYN_ERR_BAD_GRAPH', message: /does not depend on it/ });
  await t.rejects(trainStep(g, ops.reduceSum(ops.mul(x, w)), { optimizer: sgd(), parameters: [w], clipGradNorm: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'clipGradNorm' });
  await t.rejects(trainStep(g, ops.reduceSum(ops.mul(x, w)), { optimizer: undefined as never }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'optimizer' });
  await t.rejects(trainStep(g, ops.reduceSum(ops.mul(x, w)), { optimizer: sgd(), parameters: [x] }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'parameters' });
  await t.rejects(trainStep(g, ops.reduceSum(ops.mul(x, w)), { optimizer: sgd(), parameters: [w], device: 'tpu' as never }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'device' });
});

/** The MLP of the resume test: every feature of a real run (AdamW, warm-up + cosine, clipping, decay mask). */
function resumeModel(): { g: Graph; loss: Value } {
  const g = new Graph({ seed: 11 });
  const x = g.input('x', 'float32', [16, 6]);
  const y = g.input('y', 'int64', [16]);
  const w1 = g.parameter('w1', [6, 12], { init: glorotUniform() });
  const b1 = g.parameter('b1', [12]);
  const w2 = g.parameter('w2', [12, 3], { init: glorotUniform() });
  const b2 = g.parameter('b2', [3]);
  const gamma = g.parameter('gamma', [12], { init: 1 });
  const h = nn.gelu(nn.layerNorm(nn.linear(x, w1, b1), { scale: gamma }));
  return { g, loss: nn.softmaxCrossEntropy(nn.linear(h, w2, b2), y) };
}

function resumeBatches(): { x: Float32Array; y: BigInt64Array }[] {
  const random = randomSource(5, 'resume');
  return Array.from({ length: 10 }, () => ({
    x: Float32Array.from({ length: 96 }, () => random.normal()),
    y: BigInt64Array.from({ length: 16 }, () => BigInt(Math.floor(random.uniform() * 3))),
  }));
}

const resumeOptions = () => ({
  optimizer: adamw({ lr: warmupCosine({ peak: 0.01, warmupSteps: 3, totalSteps: 10 }), weightDecay: 0.1 }),
  clipGradNorm: 0.5,
  intraOpThreads: 2,
});

t.test('TrainStep.save and load: resuming gives the same numbers as never stopping', async (t) => {
  const dir = t.testdir();
  const batches = resumeBatches();
  const straight = resumeModel();
  const once = await trainStep(straight.g, straight.loss, resumeOptions());
  const straightLosses: number[] = [];
  for (const batch of batches) straightLosses.push((await once.run(batch)).loss);

  const first = resumeModel();
  const before = await trainStep(first.g, first.loss, resumeOptions());
  for (const batch of batches.slice(0, 4)) await before.run(batch);
  const path = join(dir, 'step-4.safetensors');
  await before.save(path, { config: { model: 'resume-mlp', batch: 16 } });
  await before.release();

  const second = resumeModel();
  const after = await trainStep(second.g, second.loss, resumeOptions());
  const checkpoint = await after.load(path);
  t.same(checkpoint.config, { model: 'resume-mlp', batch: 16 }, 'the config comes back');
  t.equal(after.step, 4);
  t.equal(after.learningRate, resumeOptions().optimizer.schedule.at(4), 'the schedule continues');
  const resumedLosses: number[] = [];
  for (const batch of batches.slice(4)) resumedLosses.push((await after.run(batch)).loss);
  t.same(resumedLosses, straightLosses.slice(4), 'the same losses, bit for bit');
  for (const [name, values] of once.parameters()) t.same(Array.from(after.parameters().get(name)!), Array.from(values), `parameter ${name} identical`);
  for (const [slot, byName] of once.optimizerState()) {
    for (const [name, values] of byName) t.same(Array.from(after.optimizerState().get(slot)!.get(name)!), Array.from(values), `${slot} of ${name} identical`);
  }
  t.ok(straightLosses[9] < straightLosses[0], 'and it learns');
  await once.release();
  await after.release();
});

t.test('TrainStep.load refuses checkpoints of another model or optimizer with MEDSYN_ERR_CHECKPOINT_MISMATCH', async (t) => {
  const dir = t.testdir();
  const model = resumeModel();
  const step = await trainStep(model.g, model.loss, resumeOptions());
  await step.run(resumeBatches()[0]);
  const path = join(dir, 'ckpt.safetensors');
  await step.save(path);

  const other = new Graph();
  const p = other.parameter('w1', [6, 13]);
  const otherStep = await trainStep(other, ops.reduceSum(p), { optimizer: sgd() });
  await t.rejects(otherStep.load(path), { code: 'MEDSYN_ERR_CHECKPOINT_MISMATCH' });

  const again = resumeModel();
  const changed = await trainStep(again.g, again.loss, { ...resumeOptions(), optimizer: adamw({ lr: constantSchedule(0.5), weightDecay: 0.1 }) });
  await t.rejects(changed.load(path), { code: 'MEDSYN_ERR_CHECKPOINT_MISMATCH', message: /schedule/ });
  await changed.load(path, { allowConfigChange: true });
  t.equal(changed.step, 1, 'allowConfigChange continues the step count');

  const third = resumeModel();
  const withSgd = await trainStep(third.g, third.loss, { optimizer: sgd({ momentum: 0.9 }) });
  await t.rejects(withSgd.load(path), { code: 'MEDSYN_ERR_CHECKPOINT_MISMATCH', message: /adamw/ });
  await withSgd.load(path, { parametersOnly: true });
  t.equal(withSgd.step, 0, 'a warm start begins at step 0');
  t.same(Array.from(withSgd.parameters().get('w1')!), Array.from(step.parameters().get('w1')!));
  t.same(Array.from(withSgd.optimizerState().get('momentum_buffer')!.get('w1')!).every((v) => v === 0), true, 'fresh optimizer state');

  await t.rejects(step.load(join(dir, 'missing.safetensors')), { code: 'MEDSYN_ERR_NOT_FOUND' });
  for (const s of [step, otherStep, changed, withSgd]) await s.release();
});

t.test('TrainStep.exportInference writes a forward-only model with the trained parameters inside', async (t) => {
  const { g, loss, probability } = xorModel();
  const step = await trainStep(g, loss, { optimizer: adamw({ lr: 0.05, weightDecay: 0 }), outputs: { probability } });
  let last;
  for (let i = 0; i < 50; i++) last = await step.run({ x: XOR_X, y: XOR_Y });
  const bytes = step.exportInference({ probability });
  const { openSession, ort } = await import('../../train/session.js');
  const session = await openSession(bytes);
  t.same(session.inputNames, ['x'], 'only the features: no labels, parameters or optimizer state');
  t.same(session.outputNames, ['probability']);
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from(XOR_X), [4, 2]) });
  // The step's outputs come from before its update; evaluate the current parameters through a GraphSession.
  const check = await GraphSession.create(g, { probability }, { parameters: step.parameters() });
  const expected = (await check.run({ x: XOR_X })).probability as Float32Array;
  t.same(Array.from(out.probability.data as Float32Array), Array.from(expected));
  t.ok(last && last.step === 50);
  await session.release();
  await check.release();
  await step.release();
});

t.test('TrainStep runs queue up instead of interleaving', async (t) => {
  const { g, loss } = xorModel();
  const step = await TrainStep.create(g, loss, { optimizer: sgd({ lr: 0.1 }) });
  const results = await Promise.all([0, 1, 2, 3].map(() => step.run({ x: XOR_X, y: XOR_Y })));
  t.same(results.map((r) => r.step), [1, 2, 3, 4]);
  await step.release();
});

t.test('trainStep through the package API: two projection heads with InfoNCE align paired features', async (t) => {
  const medsyn = await import('../../mod.js');
  const { Graph: G, ops: o, nn: n, init, adamw: optimizerOf, warmupCosine: cosine, trainStep: compile } = medsyn;
  const [batch, features, embedding] = [16, 12, 8];
  const g = new G({ seed: 4 });
  const image = g.input('image', 'float32', [batch, features]);
  const text = g.input('text', 'float32', [batch, features]);
  const head = (name: string, x: Value): Value => {
    const w1 = g.parameter(`${name}.w1`, [features, 16], { init: init.linearUniform() });
    const b1 = g.parameter(`${name}.b1`, [16], { init: init.linearUniform({ fanIn: features }) });
    const w2 = g.parameter(`${name}.w2`, [16, embedding], { init: init.linearUniform() });
    return n.l2Normalize(n.linear(n.gelu(n.linear(x, w1, b1)), w2));
  };
  const logitScale = g.parameter('logit_scale', [], { init: Math.log(1 / 0.07) });
  const logits = o.mul(o.gemm(head('image', image), head('text', text), { transB: true }), o.clip(o.exp(logitScale), { max: 100 }));
  const step = await compile(g, n.infoNce(logits), {
    optimizer: optimizerOf({ lr: cosine({ peak: 0.01, warmupSteps: 10, totalSteps: 150 }), weightDecay: 0.1 }),
    clipGradNorm: 1,
    outputs: { logits },
    intraOpThreads: 1,
  });
  const random = randomSource(1, 'pairs');
  const imageData = Float32Array.from({ length: batch * features }, () => random.normal());
  const textData = imageData.map((v, i) => -imageData[(i + 3) % imageData.length] + 0.1 * v);
  const losses: number[] = [];
  let last;
  for (let i = 0; i < 150; i++) {
    last = await step.run({ image: imageData, text: textData });
    losses.push(last.loss);
  }
  t.ok(losses[0] > Math.log(batch), `starts above chance, ln ${batch} (${losses[0].toFixed(3)})`);
  t.ok(losses[149] < 0.2, `ends low (${losses[149].toFixed(3)})`);
  const scores = last!.outputs.logits as Float32Array;
  const matched = Array.from({ length: batch }, (_, i) => {
    const row = scores.subarray(i * batch, (i + 1) * batch);
    return row.indexOf(Math.max(...row)) === i;
  });
  t.ok(matched.every(Boolean), 'every image retrieves its own text');
  t.notOk(step.parameters().has('nope'));
  t.ok(step.optimizer.decays(g.value('image.w1')!) && !step.optimizer.decays(logitScale), 'weights decay, the temperature does not');
  await step.release();
});
