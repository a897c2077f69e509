import t from 'tap';
import { isReject, OBSERVATIONS, OBSERVATION_NAMES } from '../records.js';
import { VERSION } from '../version.js';

t.test('OBSERVATIONS lists the 14 CheXpert observations, each with its CheXpert name', async (t) => {
  t.equal(OBSERVATIONS.length, 14);
  t.same(Object.keys(OBSERVATION_NAMES), [...OBSERVATIONS]);
});

t.test('isReject tells a reject from a report', async (t) => {
  t.ok(isReject({ source: 'a.csv:3', reason: 'bad_row', message: 'x' }));
  t.notOk(isReject({ id: 's1', source: 'a.csv:3', text: 'x' }));
});

t.test('VERSION is the package version', async (t) => {
  t.match(VERSION, /^\d+\.\d+\.\d+/);
  t.not(VERSION, '0.0.0');
});
