import t from 'tap';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECKPOINT_FORMAT, decodeCheckpoint, encodeCheckpoint, loadCheckpoint, saveCheckpoint, type Checkpoint } from '../../train/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../../train/safetensors.js';

function sample(): Checkpoint {
  return {
    step: 42,
    parameters: new Map([
      ['head.w', { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }],
      ['head.b', { dtype: 'float64', shape: [2], data: Float64Array.of(0.5, -0.5) }],
    ]),
    state: new Map([
      ['exp_avg', new Map([['head.w', { dtype: 'float32', shape: [2, 2], data: Float32Array.of(0.1, 0.2, 0.3, 0.4) }]])],
      ['exp_avg_sq', new Map([['head.w', { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 1, 1, 1) }]])],
    ]),
    optimizer: { name: 'adamw', config: { beta1: 0.9 } },
    schedule: { name: 'warmup-cosine', config: { peak: 0.001 } },
    clipGradNorm: 1,
    config: { model: 'mlp', layers: [768, 512] },
  } as Checkpoint;
}

t.test('encodeCheckpoint writes a plain safetensors state dict with the training state in its metadata', async (t) => {
  const { tensors, metadata } = decodeSafetensors(encodeCheckpoint(sample()));
  t.same([...tensors.keys()].sort(), ['head.b', 'head.w', 'optimizer.exp_avg.head.w', 'optimizer.exp_avg_sq.head.w']);
  t.equal(metadata.format, CHECKPOINT_FORMAT);
  t.equal(metadata.step, '42');
  t.same(JSON.parse(metadata.config), { model: 'mlp', layers: [768, 512] });
  t.same(JSON.parse(metadata.optimizer), { name: 'adamw', config: { beta1: 0.9 } });
  t.same(JSON.parse(metadata.slots), ['exp_avg', 'exp_avg_sq'], 'a slot name that prefixes another still decodes');
});

t.test('decodeCheckpoint restores what encodeCheckpoint wrote', async (t) => {
  const back = decodeCheckpoint(encodeCheckpoint(sample()));
  t.equal(back.step, 42);
  t.same(Array.from(back.parameters.get('head.w')!.data), [1, 2, 3, 4]);
  t.ok(back.parameters.get('head.b')!.data instanceof Float64Array);
  t.same(Array.from(back.state.get('exp_avg')!.get('head.w')!.data).map((v) => +v.toFixed(6)), [0.1, 0.2, 0.3, 0.4]);
  t.same(Array.from(back.state.get('exp_avg_sq')!.get('head.w')!.data), [1, 1, 1, 1]);
  t.same([back.optimizer, back.schedule, back.clipGradNorm, back.config], [sample().optimizer, sample().schedule, 1, sample().config]);
});

t.test('decodeCheckpoint refuses safetensors files that are not medsyn checkpoints', async (t) => {
  const foreign = encodeSafetensors(new Map([['w', { dtype: 'float32', shape: [1], data: Float32Array.of(1) }]]), { format: 'pt' });
  t.throws(() => decodeCheckpoint(foreign, 'model.safetensors'), { code: 'MEDSYN_ERR_BAD_CHECKPOINT', file: 'model.safetensors', message: /not written by medsyn/ });
  const good = decodeSafetensors(encodeCheckpoint(sample()));
  const withMetadata = (changes: Record<string, string>, extra?: [string, Float32Array]) => {
    const tensors = new Map(good.tensors);
    if (extra) tensors.set(extra[0], { dtype: 'float32', shape: [1], data: extra[1] });
    return encodeSafetensors(tensors, { ...good.metadata, ...changes });
  };
  t.throws(() => decodeCheckpoint(withMetadata({ step: '-1' })), { code: 'MEDSYN_ERR_BAD_CHECKPOINT', message: /bad step/ });
  t.throws(() => decodeCheckpoint(withMetadata({ config: '{' })), { code: 'MEDSYN_ERR_BAD_CHECKPOINT', message: /config is not JSON/ });
  t.throws(() => decodeCheckpoint(withMetadata({}, ['optimizer.momentum.w', Float32Array.of(1)])), { code: 'MEDSYN_ERR_BAD_CHECKPOINT', message: /no optimizer slot/ });
  const ints = encodeSafetensors(new Map([['w', { dtype: 'int32', shape: [1], data: Int32Array.of(1) }]]), good.metadata);
  t.throws(() => decodeCheckpoint(ints), { code: 'MEDSYN_ERR_BAD_CHECKPOINT', message: /not float/ });
  t.throws(() => encodeCheckpoint({ ...sample(), parameters: new Map([['optimizer.x', { dtype: 'float32', shape: [1], data: Float32Array.of(1) }]]) }), { code: 'MEDSYN_ERR_BAD_GRAPH' });
});

t.test('saveCheckpoint writes atomically and loadCheckpoint reads it back', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'last.safetensors');
  await saveCheckpoint(path, sample());
  t.same(await readdir(dir), ['last.safetensors'], 'no temporary file left');
  t.equal((await loadCheckpoint(path)).step, 42);
  await t.rejects(saveCheckpoint(join(dir, 'missing', 'x.safetensors'), sample()), { code: 'MEDSYN_ERR_WRITE_FAILED' });
  t.same(await readdir(dir), ['last.safetensors']);
  await t.rejects(loadCheckpoint(join(dir, 'nope.safetensors')), { code: 'MEDSYN_ERR_NOT_FOUND' });
  await t.rejects(loadCheckpoint(dir), { code: 'MEDSYN_ERR_READ_FAILED' });
  const truncated = join(dir, 'truncated.safetensors');
  await writeFile(truncated, (await readFile(path)).subarray(0, 100));
  await t.rejects(loadCheckpoint(truncated), { code: 'MEDSYN_ERR_BAD_CHECKPOINT', file: truncated });
});
