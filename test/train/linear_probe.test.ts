import t from 'tap';
import { linearProbe } from '../../train/linear_probe.js';

t.test('linearProbe separates labels that a direction of the features decides', async (t) => {
  // Column 0 follows feature 0, column 1 follows −feature 1, column 2 has no negatives, column 3 is unknown (NaN, −1).
  const features: number[][] = [];
  const labels: number[][] = [];
  for (let i = 0; i < 60; i++) {
    const a = Math.sin(i * 1.7);
    const b = Math.cos(i * 2.3);
    features.push([a, b, Math.sin(i * 0.37)]);
    labels.push([a > 0 ? 1 : 0, b < 0 ? 1 : 0, 1, i % 2 ? Number.NaN : -1]);
  }
  const train = Array.from({ length: 40 }, (_, i) => i);
  const test = Array.from({ length: 20 }, (_, i) => 40 + i);
  const aurocs = await linearProbe(features, labels, { train, test }, { steps: 200, intraOpThreads: 1 });
  t.equal(aurocs[0], 1);
  t.equal(aurocs[1], 1);
  t.equal(aurocs[2], null, 'one class only');
  t.equal(aurocs[3], null, 'no known labels');
  await t.rejects(linearProbe(features, labels.slice(1), { train, test }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
  await t.rejects(linearProbe(features, labels, { train, test: [] }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});
