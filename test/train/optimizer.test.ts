import t from 'tap';
import { Graph } from '../../train/graph.js';
import * as ops from '../../train/ops.js';
import { decayMatrices, type Optimizer } from '../../train/optimizer.js';
import { constantSchedule } from '../../train/schedule.js';
import { trainStep } from '../../train/train_step.js';

t.test('decayMatrices decays matrices only', async (t) => {
  t.equal(decayMatrices({ shape: [768, 512] }), true);
  t.equal(decayMatrices({ shape: [2, 3, 4] }), true);
  t.equal(decayMatrices({ shape: [512] }), false);
  t.equal(decayMatrices({ shape: [] }), false);
});

t.test('Optimizer: a custom optimizer (sign descent with a step counter) plugs into trainStep', async (t) => {
  const signDescent: Optimizer = {
    name: 'sign-descent',
    config: {},
    schedule: constantSchedule(0.25),
    slots: ['updates'],
    scalars: ['lr'],
    decays: decayMatrices,
    scalarValues: (step) => ({ lr: 0.25 / (step + 1) }),
    update: ({ parameter, gradient, state, scalar }) => ({
      parameter: ops.sub(parameter, ops.mul(ops.sign(gradient), scalar('lr'))),
      state: [ops.add(state[0], 1)],
    }),
  };
  const g = new Graph();
  const p = g.parameter('p', [2], { init: [1, -1] });
  const step = await trainStep(g, ops.reduceSum(ops.mul(p, p)), { optimizer: signDescent });
  await step.run({});
  await step.run({});
  t.same(Array.from(step.parameters().get('p')!), [1 - 0.25 - 0.125, -1 + 0.25 + 0.125]);
  t.same(Array.from(step.optimizerState().get('updates')!.get('p')!), [2, 2]);
  await step.release();
});

t.test('Optimizer: asking for an undeclared scalar is a graph error', async (t) => {
  const broken: Optimizer = {
    name: 'broken',
    config: {},
    schedule: constantSchedule(1),
    slots: [],
    scalars: [],
    decays: () => false,
    scalarValues: () => ({}),
    update: ({ parameter, scalar }) => ({ parameter: ops.mul(parameter, scalar('lr')), state: [] }),
  };
  const g = new Graph();
  const p = g.parameter('p', [1]);
  await t.rejects(trainStep(g, ops.reduceSum(p), { optimizer: broken }), { code: 'MEDSYN_ERR_BAD_GRAPH', message: /scalar lr/ });
});
