import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkEmbedders } from './_embedder_check.js';
import { makePhantomShards } from './_phantom_shards.js';
import { loadCheckpoint } from '../../train/checkpoint.js';
import { HeadEmbedder } from '../../train/contrastive_heads.js';
import { inHeldOutSplit, trainContrastive, type ContrastiveTrainerOptions, type TrainLogEntry } from '../../train/contrastive_trainer.js';
import { loadFrozenEncoders, type FrozenEncoders } from '../../train/frozen_encoders.js';
import { openSession, ort } from '../../train/session.js';
import { writeShards } from '../../streams/shard_writer.js';
import { readShards } from '../../streams/shard_reader.js';

const clipTiny = new URL('../../fixtures/clip-tiny', import.meta.url).pathname;
const dir = t.testdir({});
const shards = join(dir, 'shards');
let encoders: FrozenEncoders;

t.before(async () => {
  await makePhantomShards(dir, 240);
  encoders = await loadFrozenEncoders(clipTiny, { intraOpThreads: 1 });
});
t.teardown(() => encoders.release());

const base = (): ContrastiveTrainerOptions => ({ encoders, batchSize: 16, lr: 5e-3, valFraction: 0.2, intraOpThreads: 1 });

function stepLosses(run: string): number[] {
  return readFileSync(join(run, 'log.ndjson'), 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as TrainLogEntry)
    .filter((entry): entry is Extract<TrainLogEntry, { event: 'step' }> => entry.event === 'step')
    .map((entry) => entry.loss);
}

async function parametersOf(file: string): Promise<Record<string, number[]>> {
  const checkpoint = await loadCheckpoint(file);
  return Object.fromEntries([...checkpoint.parameters].map(([name, tensor]) => [name, Array.from(tensor.data)]));
}

t.test('inHeldOutSplit holds out about the asked share, the same keys every time', async (t) => {
  const keys = Array.from({ length: 4000 }, (_, i) => `s${50_000_000 + i}`);
  const held = keys.filter((key) => inHeldOutSplit(key, 0.2)).length;
  t.ok(held > 700 && held < 900, `${held} of 4000 held out at 0.2`);
  t.same(keys.map((key) => inHeldOutSplit(key, 0.2)), keys.map((key) => inHeldOutSplit(key, 0.2)));
  t.ok(keys.every((key) => !inHeldOutSplit(key, 0.1) || inHeldOutSplit(key, 0.2)), 'a smaller split is inside a larger one');
});

t.test('trainContrastive learns the phantom findings: held-out retrieval far above chance', async (t) => {
  const entries: TrainLogEntry[] = [];
  const run = join(dir, 'learn');
  const summary = await trainContrastive(shards, run, { ...base(), epochs: 30, evalEvery: 60, onLog: (entry) => entries.push(entry) });
  const evals = entries.filter((entry): entry is Extract<TrainLogEntry, { event: 'eval' }> => entry.event === 'eval');
  const last = summary.lastEval!;
  const chance = 1 / last.valCount;
  t.equal(summary.trainCount + summary.valCount, 240);
  t.equal(summary.steps, 30 * Math.floor(summary.trainCount / 16));
  t.ok(last.imageToText.r1 >= 5 * chance, `image→text R@1 ${last.imageToText.r1.toFixed(3)} ≥ 5 × chance ${chance.toFixed(3)}`);
  t.ok(last.textToImage.r1 >= 5 * chance, `text→image R@1 ${last.textToImage.r1.toFixed(3)} ≥ 5 × chance`);
  t.ok(last.imageToText.r10 > last.imageToText.r1 && last.imageToText.medianRank <= 5, `R@10 ${last.imageToText.r10.toFixed(3)}, median rank ${last.imageToText.medianRank}`);
  t.ok(last.valLoss < Math.log(last.valCount), `validation loss ${last.valLoss.toFixed(3)} below chance ln(${last.valCount})`);
  const losses = stepLosses(run);
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
  t.ok(mean(losses.slice(-20)) < 0.6 * mean(losses.slice(0, 20)), `training loss falls: ${mean(losses.slice(0, 20)).toFixed(3)} → ${mean(losses.slice(-20)).toFixed(3)}`);
  t.same(evals.map((entry) => entry.step), [...Array.from({ length: Math.floor(summary.steps / 60) }, (_, i) => 60 * (i + 1)), ...(summary.steps % 60 ? [summary.steps] : [])], 'evaluations every 60 steps and after the last');
  t.ok(evals[0]!.logitScale !== 1 / 0.07, 'the temperature is learnt');
  t.ok(last.logitScale <= 100);
  const files = readdirSync(run).sort();
  t.ok(files.includes('config.json') && files.includes('log.ndjson') && files.includes('model'), files.join(' '));
  t.same(readdirSync(join(run, 'model')).sort(), ['encoder', 'image_embedder.onnx', 'image_head.onnx', 'model.json', 'text_embedder.onnx', 'text_head.onnx']);
  t.ok(files.includes(`ckpt-${String(summary.steps).padStart(6, '0')}.safetensors`));

  t.test('the single-file embedders (tower + head) reproduce the in-process embeddings', async (t) => {
    for await (const sample of readShards(shards)) {
      const { decodeGrayImage } = await import('../../train/frozen_encoders.js');
      const check = await checkEmbedders(run, summary.checkpoint!, encoders, await decodeGrayImage(sample.parts['png']!, sample.key), 'Large left pleural effusion. Cardiomegaly.');
      t.ok(check.image < 1e-5 && check.text < 1e-5, `largest differences: image ${check.image}, text ${check.text}`);
      t.ok(Math.abs(check.norms[0] - 1) < 1e-5 && Math.abs(check.norms[1] - 1) < 1e-5, 'unit length');
      break;
    }
    const description = JSON.parse(readFileSync(join(run, 'model', 'model.json'), 'utf8'));
    t.same(description.embedders.image, { output: 'image_embeds', pooling: 'as-is', file: 'image_embedder.onnx' });
  });

  t.test('the exported heads reproduce the in-process embeddings, also chained after the copied towers', async (t) => {
    const parameters = new Map([...(await loadCheckpoint(summary.checkpoint!)).parameters].map(([name, tensor]) => [name, tensor.data]));
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    const embedder = await HeadEmbedder.create(config.heads, parameters, { batch: 16, intraOpThreads: 1 });
    const imageHead = await openSession(join(run, 'model', 'image_head.onnx'));
    const textHead = await openSession(join(run, 'model', 'text_head.onnx'));
    const copied = await loadFrozenEncoders(join(run, 'model', 'encoder'), { intraOpThreads: 1 });
    t.teardown(async () => {
      await embedder.release();
      await imageHead.release();
      await textHead.release();
      await copied.release();
    });
    t.equal(copied.imageHash, encoders.imageHash, 'the copied image tower is the trained-on one');
    const caption = 'Large left pleural effusion. Cardiomegaly.';
    const [textFeatures] = await copied.embedTexts([caption]);
    const [inProcess] = await embedder.embedTexts([textFeatures!]);
    const exported = (await textHead.run({ text_features: new ort.Tensor('float32', textFeatures!, [1, textFeatures!.length]) }))['text_embeds']!.data as Float32Array;
    const worst = Math.max(...Array.from(exported, (value, i) => Math.abs(value - inProcess![i]!)));
    t.ok(worst < 1e-6, `text_embeds equal (largest difference ${worst})`);
    const norm = Math.hypot(...Array.from(exported));
    t.ok(Math.abs(norm - 1) < 1e-5, 'unit length');
    for await (const sample of readShards(shards)) {
      const { decodeGrayImage } = await import('../../train/frozen_encoders.js');
      const [imageFeatures] = await copied.embedImages([await decodeGrayImage(sample.parts['png']!, sample.key)]);
      const [image] = await embedder.embedImages([imageFeatures!]);
      const out = (await imageHead.run({ image_features: new ort.Tensor('float32', imageFeatures!, [1, imageFeatures!.length]) }))['image_embeds']!.data as Float32Array;
      t.ok(Math.max(...Array.from(out, (value, i) => Math.abs(value - image![i]!))) < 1e-6, 'image_embeds equal');
      break;
    }
  });
});

t.test('trainContrastive resumed after a stop equals an uninterrupted run, and the cache changes nothing', async (t) => {
  const options = { ...base(), steps: 36, evalEvery: 12, checkpointEvery: 12 };
  const whole = await trainContrastive(shards, join(dir, 'whole'), options);
  t.equal(whole.steps, 36);

  const controller = new AbortController();
  const part = await trainContrastive(shards, join(dir, 'resumed'), {
    ...options,
    cache: join(dir, 'cache'),
    signal: controller.signal,
    onLog: (entry) => {
      if (entry.event === 'step' && entry.step === 17) controller.abort();
    },
  });
  t.ok(part.stopped, 'stopped on the signal');
  t.equal(part.steps, 17);
  t.equal(part.model, undefined, 'no export before the end');
  t.match(part.checkpoint, /ckpt-000017\.safetensors$/, 'a checkpoint at the stop');
  t.ok(part.cache.misses >= 2 * (part.valCount + 12 * 16), `a new cache: the first epoch encodes every pair (${part.cache.misses} misses)`);

  const rest = await trainContrastive(shards, join(dir, 'resumed'), { ...options, cache: join(dir, 'cache'), resume: true });
  t.equal(rest.steps, 36);
  t.equal(rest.stepsRun, 19);
  // Only the few pairs the stopped run never reached (the dropped tail of its first epoch) are encoded.
  t.ok(rest.cache.misses <= 2 * 16 && rest.cache.hits > 10 * rest.cache.misses, `the resumed run reads its features from the cache (${rest.cache.hits} hits, ${rest.cache.misses} misses)`);
  t.same(await parametersOf(rest.checkpoint!), await parametersOf(whole.checkpoint!), 'the same parameters and temperature');
  t.same(stepLosses(join(dir, 'resumed')), stepLosses(join(dir, 'whole')), 'the same loss at every step, logged once each');
  t.same(rest.lastEval, whole.lastEval);

  await t.rejects(trainContrastive(shards, join(dir, 'whole'), options), { code: 'MEDSYN_ERR_BAD_RUN' }, 'an existing run is not overwritten');
  await t.rejects(trainContrastive(shards, join(dir, 'whole'), { ...options, resume: true, lr: 1e-2 }), { code: 'MEDSYN_ERR_BAD_RUN' }, 'resume with other settings is refused');
});

t.test('trainContrastive skips unusable samples with a logged reason and checks its options', async (t) => {
  const odd = join(dir, 'odd');
  const samples = [];
  for await (const sample of readShards(shards)) {
    if (samples.length === 40) break;
    samples.push(sample);
  }
  delete samples[0]!.parts['txt'];
  delete samples[1]!.parts['png'];
  samples[2]!.parts['png'] = new Uint8Array([1, 2, 3]);
  await writeShards(samples, odd, { overwrite: true });
  await t.rejects(trainContrastive(odd, join(dir, 'odd-run'), { ...base(), steps: 2, valFraction: 0.2 }), { code: 'MEDSYN_ERR_BAD_SAMPLE' }, 'an undecodable image fails the run, naming the sample');
  samples[2]!.parts['png'] = samples[3]!.parts['png']!;
  await writeShards(samples, odd, { overwrite: true });
  const entries: TrainLogEntry[] = [];
  const summary = await trainContrastive(odd, join(dir, 'odd-run2'), { ...base(), steps: 2, onLog: (entry) => entries.push(entry) });
  t.same(summary.skipped, { no_caption: 1, no_image: 1 });
  t.same(entries.filter((entry) => entry.event === 'skip').map((entry) => (entry as { reason: string }).reason).sort(), ['no_caption', 'no_image']);
  await t.rejects(trainContrastive(odd, join(dir, 'odd-run3'), { ...base(), batchSize: 64 }), { code: 'MEDSYN_ERR_EMPTY_INPUT' }, 'fewer pairs than a batch');
  await t.rejects(trainContrastive(odd, join(dir, 'x'), { ...base(), head: 'deep' as 'mlp' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'head' });
  await t.rejects(trainContrastive(odd, join(dir, 'x'), { ...base(), valFraction: 1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'valFraction' });
  await t.rejects(trainContrastive([], join(dir, 'x'), base()), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'sources' });
});

t.test('trainContrastive trains an MLP head', async (t) => {
  const summary = await trainContrastive(shards, join(dir, 'mlp'), { ...base(), head: 'mlp', hiddenDim: 64, epochs: 10 });
  t.ok(summary.lastEval!.imageToText.r1 >= 5 / summary.valCount, `R@1 ${summary.lastEval!.imageToText.r1.toFixed(3)}`);
  const parameters = await parametersOf(summary.checkpoint!);
  t.ok('image_head.fc1.weight' in parameters && 'text_head.fc2.bias' in parameters, Object.keys(parameters).join(' '));
});
