import t from 'tap';
import type { GenerationRequest } from '../../models/generator.js';
import { createPhantomGenerator } from '../../models/phantom_generator.js';
import { PHANTOM_MODEL } from '../../models/render_phantom.js';
import { deriveSeed } from '../../models/seeded_random.js';
import type { CleanReport } from '../../records.js';

function request(id: string, labels: CleanReport['labels'], variant = 0): GenerationRequest {
  const report: CleanReport = { id, source: 'test', sections: {}, sectionUsed: 'impression', prompt: 'x', caption: 'x', labels, attributes: {} };
  return { key: id, report, variant, attempt: 0, seed: deriveSeed(0, id, variant, 0) };
}

const requests = [
  request('s1', { noFinding: 1 }),
  request('s2', { pleuralEffusion: 1 }),
  request('s3', { cardiomegaly: 1 }),
  request('s3', { cardiomegaly: 1 }, 1),
  request('s4', { supportDevices: 1 }),
];

t.test('createPhantomGenerator gives the same images on worker threads as on the calling thread, in request order', async (t) => {
  const inThread = await createPhantomGenerator({ size: 64, workers: 0 });
  const threaded = await createPhantomGenerator({ size: 64, workers: 2 });
  t.teardown(() => Promise.all([inThread.close(), threaded.close()]));
  t.equal(threaded.backend, 'phantom');
  t.equal(threaded.model, PHANTOM_MODEL);
  const a = await inThread.generate(requests);
  const b = await threaded.generate(requests);
  t.equal(b.length, requests.length);
  t.same(b.map((image) => Buffer.from((image as { pixels: Uint8Array }).pixels)), a.map((image) => Buffer.from((image as { pixels: Uint8Array }).pixels)));
  t.match(b[0], { width: 64, height: 64, channels: 1 });
  // A batch smaller than the pool, and one at a time, give the same images again.
  const one = await threaded.generate([requests[3]!]);
  t.same(Buffer.from((one[0] as { pixels: Uint8Array }).pixels), Buffer.from((a[3] as { pixels: Uint8Array }).pixels));
  t.same(await threaded.generate([]), []);
  t.not(Buffer.from((a[2] as { pixels: Uint8Array }).pixels).toString('hex'), Buffer.from((a[3] as { pixels: Uint8Array }).pixels).toString('hex'), 'variants differ');
});

t.test('createPhantomGenerator checks its options', async (t) => {
  await t.rejects(createPhantomGenerator({ size: 10 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'size' });
  await t.rejects(createPhantomGenerator({ workers: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'workers' });
});
