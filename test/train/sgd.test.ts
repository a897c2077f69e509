import t from 'tap';
import { Graph } from '../../train/graph.js';
import * as ops from '../../train/ops.js';
import { sgd } from '../../train/sgd.js';
import { warmupCosine } from '../../train/schedule.js';
import { trainStep } from '../../train/train_step.js';

t.test('sgd with momentum, Nesterov and weight decay follows torch.optim.SGD step by step', async (t) => {
  for (const nesterov of [false, true]) {
    const g = new Graph();
    const c = [0.5, -1, 2, 0.25];
    const p = g.parameter('p', [2, 2], { init: [1, 2, 3, 4], dtype: 'float64' });
    // loss = Σ c·p + ½ Σ p², so the gradient is c + p.
    const loss = ops.add(ops.reduceSum(ops.mul(p, g.constant(c, { shape: [2, 2], dtype: 'float64' }))), ops.mul(ops.reduceSumSquare(p), 0.5));
    const lr = 0.1;
    const momentum = 0.8;
    const weightDecay = 0.3;
    const step = await trainStep(g, loss, { optimizer: sgd({ lr, momentum, nesterov, weightDecay }), intraOpThreads: 1 });
    let params = [1, 2, 3, 4];
    let buffer = [0, 0, 0, 0];
    for (let k = 0; k < 5; k++) {
      await step.run({});
      const gradient = params.map((v, i) => c[i] + v + weightDecay * v);
      buffer = buffer.map((b, i) => (k === 0 ? gradient[i] : momentum * b + gradient[i]));
      const direction = nesterov ? gradient.map((gi, i) => gi + momentum * buffer[i]) : buffer;
      params = params.map((v, i) => v - lr * direction[i]);
    }
    const got = Array.from(step.parameters().get('p')!);
    got.forEach((v, i) => t.ok(Math.abs(v - params[i]) < 1e-12, `nesterov=${nesterov} p[${i}] ${v} vs ${params[i]}`));
    t.same(Array.from(step.optimizerState().get('momentum_buffer')!.get('p')!).map((v) => +v.toFixed(10)), buffer.map((v) => +v.toFixed(10)));
    await step.release();
  }
});

t.test('sgd without momentum keeps no state and follows its schedule', async (t) => {
  const g = new Graph();
  const p = g.parameter('p', [1], { init: [0], dtype: 'float64' });
  const optimizer = sgd({ lr: warmupCosine({ peak: 1, warmupSteps: 2, totalSteps: 4 }) });
  t.same(optimizer.slots, []);
  const step = await trainStep(g, ops.reduceSum(p), { optimizer });
  for (let k = 0; k < 4; k++) await step.run({});
  // The gradient is 1: p = −Σ lr(k) = −(0.5 + 1 + 1 + 0.5).
  t.same(Array.from(step.parameters().get('p')!), [-3]);
  t.same([...step.optimizerState().keys()], []);
  await step.release();
});

t.test('sgd validates its options', async (t) => {
  t.throws(() => sgd({ momentum: 1.5 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'momentum' });
  t.throws(() => sgd({ nesterov: true }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'nesterov' });
  t.throws(() => sgd({ weightDecay: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'weightDecay' });
  t.throws(() => sgd({ lr: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'lr' });
  t.same(sgd({ momentum: 0.9 }).config, { momentum: 0.9, nesterov: false, weightDecay: 0 });
});
