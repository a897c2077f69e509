import t from 'tap';
import { adamw } from '../../train/adamw.js';
import { Graph, type Value } from '../../train/graph.js';
import * as ops from '../../train/ops.js';
import { warmupCosine } from '../../train/schedule.js';
import { trainStep } from '../../train/train_step.js';

t.test('adamw matches torch.optim.AdamW step by step, with the decay mask and a schedule', async (t) => {
  const g = new Graph();
  const c = [0.5, -1, 2, 0.25, -0.75, 1.5];
  const w = g.parameter('w', [2, 2], { init: [1, -2, 3, 0.5], dtype: 'float64' });
  const b = g.parameter('b', [2], { init: [0.1, -0.2], dtype: 'float64' });
  const cw = g.constant(c.slice(0, 4), { shape: [2, 2], dtype: 'float64' });
  const cb = g.constant(c.slice(4), { shape: [2], dtype: 'float64' });
  // loss = Σ c·θ + Σ θ⁴/4: gradient c + θ³.
  const quartic = (v: Value): Value => ops.mul(ops.reduceSum(ops.pow(v, 4)), 0.25);
  const loss = ops.add(ops.add(ops.reduceSum(ops.mul(w, cw)), ops.reduceSum(ops.mul(b, cb))), ops.add(quartic(w), quartic(b)));
  const schedule = warmupCosine({ peak: 0.05, warmupSteps: 3, totalSteps: 10 });
  const [beta1, beta2, eps, wd] = [0.9, 0.95, 1e-6, 0.2];
  const step = await trainStep(g, loss, { optimizer: adamw({ lr: schedule, beta1, beta2, epsilon: eps, weightDecay: wd }), intraOpThreads: 1 });
  // torch.optim.AdamW (single-tensor path), transcribed.
  let theta = [1, -2, 3, 0.5, 0.1, -0.2];
  const decays = [true, true, true, true, false, false];
  let m = new Array(6).fill(0);
  let v = new Array(6).fill(0);
  for (let k = 0; k < 12; k++) {
    const result = await step.run({});
    const lr = schedule.at(k);
    t.equal(result.learningRate, lr);
    const gradient = theta.map((x, i) => c[i] + x ** 3);
    const tStep = k + 1;
    theta = theta.map((x, i) => (decays[i] ? x * (1 - lr * wd) : x));
    m = m.map((mi, i) => mi + (gradient[i] - mi) * (1 - beta1));
    v = v.map((vi, i) => vi * beta2 + (1 - beta2) * gradient[i] * gradient[i]);
    const bc1 = 1 - beta1 ** tStep;
    const bc2 = 1 - beta2 ** tStep;
    theta = theta.map((x, i) => x - (lr / bc1) * (m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + eps)));
  }
  const got = [...step.parameters().get('w')!, ...step.parameters().get('b')!];
  got.forEach((x, i) => t.ok(Math.abs(x - theta[i]) < 1e-12, `θ[${i}] ${x} vs ${theta[i]}`));
  await step.release();
});

t.test('adamw takes a custom decay mask', async (t) => {
  const g = new Graph();
  const w = g.parameter('w', [1, 1], { init: [1], dtype: 'float64' });
  const temperature = g.parameter('temperature', [], { init: 1, dtype: 'float64' });
  // Zero gradients: only weight decay moves the parameters.
  const loss = ops.mul(ops.reduceSum(ops.mul(w, temperature)), 0);
  const step = await trainStep(g, loss, { optimizer: adamw({ lr: 0.1, weightDecay: 0.5, decay: (p) => p.name === 'temperature' }) });
  await step.run({});
  t.same(Array.from(step.parameters().get('w')!), [1], 'the matrix is masked out');
  t.same(Array.from(step.parameters().get('temperature')!), [0.95], 'the scalar decays: 1 − lr·wd');
  await step.release();
});

t.test('adamw validates its options and records its config', async (t) => {
  t.throws(() => adamw({ beta1: 1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'beta1' });
  t.throws(() => adamw({ beta2: -0.1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'beta2' });
  t.throws(() => adamw({ epsilon: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'epsilon' });
  t.throws(() => adamw({ weightDecay: Number.NaN }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'weightDecay' });
  const optimizer = adamw();
  t.same(optimizer.config, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 });
  t.same(optimizer.slots, ['exp_avg', 'exp_avg_sq']);
  t.same(optimizer.schedule.config, { lr: 1e-3 });
});
