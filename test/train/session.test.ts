import t from 'tap';
import { Graph } from '../../train/graph.js';
import * as ops from '../../train/ops.js';
import { openSession, sessionOptions, ort } from '../../train/session.js';

function tinyModel(): Uint8Array {
  const g = new Graph();
  const x = g.input('x', 'float32', [2]);
  return g.toOnnx({ y: ops.add(x, 1) });
}

t.test('sessionOptions maps devices and thread counts onto onnxruntime options', async (t) => {
  t.same(sessionOptions(), {
    executionProviders: ['cpu'],
    intraOpNumThreads: 0,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  const cuda = sessionOptions({ device: 'cuda', deviceId: 1, intraOpThreads: 2, interOpThreads: 2, optimization: 'basic' });
  t.same(cuda.executionProviders, [{ name: 'cuda', deviceId: 1 }]);
  t.same([cuda.intraOpNumThreads, cuda.interOpNumThreads, cuda.executionMode, cuda.graphOptimizationLevel], [2, 2, 'parallel', 'basic']);
  t.same(sessionOptions({ device: 'webgpu' }).executionProviders, ['webgpu']);
  t.same(sessionOptions({ spinning: false }).extra, { session: { intra_op: { allow_spinning: '0' } } }, 'spinning: false sets the session config entry');
  t.equal(sessionOptions({ spinning: true }).extra, undefined, "spinning: true leaves onnxruntime's default");
  t.throws(() => sessionOptions({ device: 'tpu' as never }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'device' });
  t.throws(() => sessionOptions({ intraOpThreads: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'intraOpThreads' });
  t.throws(() => sessionOptions({ interOpThreads: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'interOpThreads' });
  t.throws(() => sessionOptions({ deviceId: 0.5 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'deviceId' });
});

t.test('openSession runs on the CPU with the thread counts asked for', async (t) => {
  for (const intraOpThreads of [1, 2]) {
    const session = await openSession(tinyModel(), { intraOpThreads });
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) });
    t.same(Array.from(out.y.data as Float32Array), [2, 3]);
    await session.release();
  }
});

for (const device of ['cuda', 'webgpu'] as const) {
  t.test(`openSession fails loudly when the ${device} provider cannot load`, async (t) => {
    let session;
    try {
      session = await openSession(tinyModel(), { device });
    } catch (error) {
      t.match(error, { code: 'MEDSYN_ERR_PROVIDER_UNAVAILABLE', option: 'device', message: new RegExp(`Cannot use device ${device}: .*or use --device cpu`) });
      return;
    }
    // A machine where the provider does load: it must then really run the model.
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) });
    t.same(Array.from(out.y.data as Float32Array), [2, 3], `${device} is available here and runs the model`);
    await session.release();
  });
}

t.test('openSession refuses bytes that are not a model with MEDSYN_ERR_SESSION_FAILED', async (t) => {
  await t.rejects(openSession(new Uint8Array([1, 2, 3, 4])), { code: 'MEDSYN_ERR_SESSION_FAILED' });
  await t.rejects(openSession('/nonexistent/model.onnx'), { code: 'MEDSYN_ERR_SESSION_FAILED', file: '/nonexistent/model.onnx' });
});
