import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkEmbedders } from './_embedder_check.js';
import { makePhantomShards } from './_phantom_shards.js';
import { readShards } from '../../streams/shard_reader.js';
import { decodeGrayImage, loadFrozenEncoders } from '../../train/frozen_encoders.js';
import { trainContrastive } from '../../train/contrastive_trainer.js';
import { evaluateRun } from '../../train/evaluate_run.js';

const fixtures = new URL('../../fixtures/', import.meta.url).pathname;
const towers = { image: join(fixtures, 'vit-tiny'), text: join(fixtures, 'bert-tiny') };

t.test('trainContrastive learns the phantom findings on the random-weight ViT and BERT fixture towers', async (t) => {
  const dir = t.testdir({});
  await makePhantomShards(dir, 400);
  const run = join(dir, 'run');
  const summary = await trainContrastive(join(dir, 'shards'), run, { encoders: towers, epochs: 60, batchSize: 16, lr: 1e-2, valFraction: 0.2, evalEvery: 100, intraOpThreads: 1 });
  const e = summary.lastEval!;
  const chance = 1 / e.valCount;
  t.ok(e.imageToText.r1 >= 5 * chance && e.textToImage.r1 >= 5 * chance, `held-out R@1 ${e.imageToText.r1.toFixed(3)} / ${e.textToImage.r1.toFixed(3)} at least 5 × chance ${chance.toFixed(3)}`);
  t.ok(e.imageToText.r5 >= 3 * 5 * chance && e.textToImage.r5 >= 3 * 5 * chance, `held-out R@5 ${e.imageToText.r5.toFixed(3)} / ${e.textToImage.r5.toFixed(3)}, chance ${(5 * chance).toFixed(3)}`);
  t.same(
    readdirSync(join(run, 'model')).sort(),
    ['image_embedder.onnx', 'image_encoder', 'image_head.onnx', 'model.json', 'text_embedder.onnx', 'text_encoder', 'text_head.onnx'],
    'the joined embedders, and both towers copied beside the heads',
  );
  const encoders = await loadFrozenEncoders(towers, { intraOpThreads: 1 });
  try {
    for await (const sample of readShards(join(dir, 'shards'))) {
      const check = await checkEmbedders(run, summary.checkpoint!, encoders, await decodeGrayImage(sample.parts['png']!, sample.key), 'Small right pleural effusion.');
      t.ok(check.image < 1e-5 && check.text < 1e-5, `the joined embedders (pooler_output; masked mean) reproduce the in-process embeddings: largest differences ${check.image}, ${check.text}`);
      break;
    }
  } finally {
    await encoders.release();
  }

  const metrics = await evaluateRun(run, join(dir, 'shards'), { split: 'val', intraOpThreads: 1 });
  const effusion = metrics.observations['pleuralEffusion']!;
  t.ok(effusion.zeroShotAuroc! > 0.75, `pleural effusion zero-shot AUROC ${effusion.zeroShotAuroc!.toFixed(3)}`);
  t.ok(metrics.probe!.macroAuroc! > 0.65, `linear probe macro AUROC ${metrics.probe!.macroAuroc!.toFixed(3)}`);
  t.ok(metrics.zeroShot.macroAuroc! > 0.65, `zero-shot macro AUROC ${metrics.zeroShot.macroAuroc!.toFixed(3)}`);
});
