import t from 'tap';
import { Graph } from '../../train/graph.js';
import { GraphSession } from '../../train/graph_session.js';
import { buildHeads, contrastiveLoss, exportHeads, HeadEmbedder, hostContrastiveLoss, type HeadShape } from '../../train/contrastive_heads.js';
import { openSession, ort } from '../../train/session.js';

const shape: HeadShape = { head: 'mlp', imageSize: 6, textSize: 5, embedDim: 4, hiddenDim: 8 };

function features(count: number, size: number, seed: number): Float32Array[] {
  let state = seed;
  const next = (): number => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  return Array.from({ length: count }, () => Float32Array.from({ length: size }, next));
}

t.test('contrastiveLoss in the graph equals hostContrastiveLoss on the same embeddings, at temperature 0.07', async (t) => {
  const g = new Graph({ seed: 3 });
  const heads = buildHeads(g, 4, shape);
  const loss = contrastiveLoss(heads);
  const session = await GraphSession.create(g, { loss, image: heads.imageEmbeds, text: heads.textEmbeds });
  t.teardown(() => session.release());
  const image = features(4, 6, 1);
  const text = features(4, 5, 2);
  const flat = (rows: Float32Array[]): Float32Array => Float32Array.from(rows.flatMap((row) => Array.from(row)));
  const out = await session.run({ image_features: flat(image), text_features: flat(text) });
  const rows = (data: ArrayLike<number>): number[][] => Array.from({ length: 4 }, (_, i) => Array.from(data).slice(i * 4, i * 4 + 4));
  const host = hostContrastiveLoss(rows(out['image'] as Float32Array), rows(out['text'] as Float32Array), 1 / 0.07);
  t.ok(Math.abs(host - Number(out['loss']![0])) < 1e-4, `${host} vs ${out['loss']![0]}`);
  t.equal(g.initialValue('logit_scale')[0], Math.fround(Math.log(1 / 0.07)));
  t.ok(Math.abs(hostContrastiveLoss([[1, 0]], [[1, 0]], 1e6)) < 1e-12, 'the scale is clamped at 100: one pair has loss 0');
  t.ok(Number.isNaN(hostContrastiveLoss([], [], 1)));
});

t.test('HeadEmbedder runs any count in fixed batches and matches the exported heads', async (t) => {
  const g = new Graph({ seed: 5 });
  buildHeads(g, 1, shape);
  const parameters = new Map(g.parameters.map((p) => [p.name, g.initialValue(p)]));
  const embedder = await HeadEmbedder.create(shape, parameters, { batch: 3 });
  const { image, text } = exportHeads(shape, parameters);
  const imageSession = await openSession(image);
  const textSession = await openSession(text);
  t.teardown(async () => {
    await embedder.release();
    await imageSession.release();
    await textSession.release();
  });
  const imageFeatures = features(7, 6, 9);
  const embedded = await embedder.embedImages(imageFeatures);
  t.equal(embedded.length, 7);
  for (let i = 0; i < 7; i++) {
    const out = (await imageSession.run({ image_features: new ort.Tensor('float32', imageFeatures[i]!, [1, 6]) }))['image_embeds']!.data as Float32Array;
    t.ok(Math.max(...Array.from(out, (v, k) => Math.abs(v - embedded[i]![k]!))) < 1e-6, `image ${i}`);
    t.ok(Math.abs(Math.hypot(...Array.from(out)) - 1) < 1e-5, 'unit length');
  }
  const [textEmbed] = await embedder.embedTexts(features(1, 5, 4));
  const out = (await textSession.run({ text_features: new ort.Tensor('float32', features(1, 5, 4)[0]!, [1, 5]) }))['text_embeds']!.data as Float32Array;
  t.ok(Math.max(...Array.from(out, (v, k) => Math.abs(v - textEmbed![k]!))) < 1e-6, 'text');
  t.same(textSession.inputNames, ['text_features']);
});

t.test('buildHeads checks the shape', async (t) => {
  t.throws(() => buildHeads(new Graph(), 2, { ...shape, head: 'deep' as 'mlp' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'head' });
  t.throws(() => buildHeads(new Graph(), 2, { ...shape, embedDim: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'embedDim' });
});
