import t from 'tap';
import { appendFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FeatureCache, inputDigest, sha256File } from '../../train/feature_cache.js';

const hashA = 'a'.repeat(64);
const hashB = 'b'.repeat(64);

t.test('FeatureCache stores features by key and finds them after reopening', async (t) => {
  const dir = t.testdir({});
  const cache = FeatureCache.open(dir, { encoderHash: hashA, size: 3 });
  t.equal(cache.get('s1', inputDigest('x')), undefined, 'empty: a miss');
  cache.put('s1', inputDigest('caption one'), [1, 2, 3]);
  cache.put('s2', inputDigest('caption two'), Float32Array.of(0.5, -0.25, 1e-3));
  t.same(Array.from(cache.get('s1', inputDigest('caption one'))!), [1, 2, 3]);
  cache.close();

  const again = FeatureCache.open(dir, { encoderHash: hashA, size: 3 });
  t.equal(again.count, 2);
  t.same(Array.from(again.get('s2', inputDigest('caption two'))!), Array.from(Float32Array.of(0.5, -0.25, 1e-3)), 'float32 round trip');
  t.equal(again.get('s2', inputDigest('another caption')), undefined, 'a changed input is a miss');
  again.put('s2', inputDigest('another caption'), [7, 8, 9]);
  t.same(Array.from(again.get('s2', inputDigest('another caption'))!), [7, 8, 9], 'the later record wins');
  t.equal(again.hits, 2);
  t.equal(again.misses, 1);
  again.close();
  const third = FeatureCache.open(dir, { encoderHash: hashA, size: 3 });
  t.same(Array.from(third.get('s2', inputDigest('another caption'))!), [7, 8, 9], 'and still after reopening');
  third.close();
});

t.test('FeatureCache never reuses a cache made by another encoder', async (t) => {
  const dir = t.testdir({});
  const a = FeatureCache.open(dir, { encoderHash: hashA, size: 2 });
  a.put('s1', inputDigest('x'), [1, 2]);
  a.close();
  const b = FeatureCache.open(dir, { encoderHash: hashB, size: 2 });
  t.equal(b.file, join(dir, `${hashB}.features`), 'one file per encoder hash');
  t.equal(b.count, 0);
  t.equal(b.get('s1', inputDigest('x')), undefined);
  b.close();
  // A file renamed to another encoder's name is refused by its header.
  writeFileSync(join(dir, `${'c'.repeat(64)}.features`), readFileSync(join(dir, `${hashA}.features`)));
  t.throws(() => FeatureCache.open(dir, { encoderHash: 'c'.repeat(64), size: 2 }), { code: 'MEDSYN_ERR_BAD_CACHE' });
  t.throws(() => FeatureCache.open(dir, { encoderHash: hashA, size: 3 }), { code: 'MEDSYN_ERR_BAD_CACHE' }, 'another vector size');
  writeFileSync(join(dir, `${'d'.repeat(64)}.features`), 'not a cache at all, just some text here.........');
  t.throws(() => FeatureCache.open(dir, { encoderHash: 'd'.repeat(64), size: 2 }), { code: 'MEDSYN_ERR_BAD_CACHE' });
  t.throws(() => FeatureCache.open(dir, { encoderHash: 'nothex', size: 2 }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
  t.throws(() => FeatureCache.open(dir, { encoderHash: hashA, size: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});

t.test('FeatureCache drops a record cut short by a crash and appends after the last whole one', async (t) => {
  const dir = t.testdir({});
  const cache = FeatureCache.open(dir, { encoderHash: hashA, size: 4 });
  for (let i = 0; i < 500; i++) cache.put(`key-${i}`, inputDigest(String(i)), [i, i + 1, i + 2, i + 3]);
  cache.close();
  const file = join(dir, `${hashA}.features`);
  const whole = statSync(file).size;
  truncateSync(file, whole - 5);
  const reopened = FeatureCache.open(dir, { encoderHash: hashA, size: 4 });
  t.equal(reopened.count, 499, 'the cut record is gone');
  t.same(Array.from(reopened.get('key-498', inputDigest('498'))!), [498, 499, 500, 501]);
  reopened.put('key-499', inputDigest('499'), [1, 1, 1, 1]);
  reopened.close();
  const last = FeatureCache.open(dir, { encoderHash: hashA, size: 4 });
  t.equal(last.count, 500);
  t.same(Array.from(last.get('key-499', inputDigest('499'))!), [1, 1, 1, 1]);
  for (let i = 0; i < 499; i += 37) t.same(Array.from(last.get(`key-${i}`, inputDigest(String(i)))!), [i, i + 1, i + 2, i + 3]);
  last.close();
  appendFileSync(file, Buffer.from([0xff]));
  const odd = FeatureCache.open(dir, { encoderHash: hashA, size: 4 });
  t.equal(odd.count, 500, 'one stray byte is cut off too');
  odd.close();
});

t.test('FeatureCache checks what it is given', async (t) => {
  const dir = t.testdir({});
  const cache = FeatureCache.open(dir, { encoderHash: hashA, size: 2 });
  t.teardown(() => cache.close());
  t.throws(() => cache.put('k', inputDigest('x'), [1]), { code: 'MEDSYN_ERR_INVALID_OPTION' });
  t.throws(() => cache.put('k', new Uint8Array(3), [1, 2]), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});

t.test('sha256File hashes a file', async (t) => {
  const dir = t.testdir({ 'model.onnx': 'abc' });
  t.equal(sha256File(join(dir, 'model.onnx')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  t.throws(() => sha256File(join(dir, 'missing.onnx')), { code: 'MEDSYN_ERR_NOT_FOUND' });
});
