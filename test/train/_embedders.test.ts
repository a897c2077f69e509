import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeEmbedders } from '../../train/_embedders.js';
import { onnxSignature } from '../../train/_onnx_fuse.js';
import { buildHeads, HeadEmbedder, type HeadShape } from '../../train/contrastive_heads.js';
import type { FloatArray } from '../../train/dtype.js';
import { Graph } from '../../train/graph.js';
import { openSession, ort } from '../../train/session.js';
import { toyOnnx, toyVisionModel } from '../models/_toy_onnx.js';

const VOCAB = 7;
const TOKENS = 5;
const HIDDEN = 4;
const table = Array.from({ length: VOCAB * HIDDEN }, (_, i) => Math.sin(i * 1.7) * 2);

/** A BERT-like text tower at opset 14 with an open batch: last_hidden_state = table[input_ids]. */
function textTower(opset = 14): Uint8Array {
  return toyOnnx({
    opset,
    inputs: [
      { name: 'input_ids', type: 'int64', dims: ['batch_size', TOKENS] },
      { name: 'attention_mask', type: 'int64', dims: ['batch_size', TOKENS] },
    ],
    outputs: [{ name: 'last_hidden_state', type: 'float32', dims: ['batch_size', TOKENS, HIDDEN] }],
    initializers: [{ name: 'table', type: 'float32', dims: [VOCAB, HIDDEN], values: table }],
    nodes: [{ op: 'Gather', inputs: ['table', 'input_ids'], outputs: ['last_hidden_state'], ints: { axis: 0 } }],
  });
}

/** A ViT-like image tower at opset 14 with only last_hidden_state: pixel_values [N, 2, 3] times 3. */
function imageTower(): Uint8Array {
  return toyOnnx({
    opset: 14,
    inputs: [{ name: 'pixel_values', type: 'float32', dims: ['batch_size', 2, 3] }],
    outputs: [{ name: 'last_hidden_state', type: 'float32', dims: ['batch_size', 2, 3] }],
    initializers: [{ name: 'three', type: 'float32', dims: [], values: [3] }],
    nodes: [{ op: 'Mul', inputs: ['pixel_values', 'three'], outputs: ['last_hidden_state'] }],
  });
}

function headParameters(shape: HeadShape): Map<string, FloatArray> {
  const graph = new Graph({ seed: 5 });
  buildHeads(graph, 1, shape);
  return new Map(graph.parameters.map((p) => [p.name, graph.initialValue(p)]));
}

const largest = (a: ArrayLike<number>, b: ArrayLike<number>): number => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)));

t.test('writeEmbedders joins towers (opset 14, open batch) with first-token and masked-mean pooling and the heads', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'medsyn-embedders-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'vision.onnx'), imageTower());
  writeFileSync(join(dir, 'text.onnx'), textTower());
  const shape: HeadShape = { head: 'mlp', imageSize: 3, textSize: HIDDEN, embedDim: 5, hiddenDim: 6 };
  const parameters = headParameters(shape);
  const written = writeEmbedders(dir, { imageModel: join(dir, 'vision.onnx'), textModel: join(dir, 'text.onnx'), clip: false }, shape, parameters, { medsyn_step: '7' });
  t.same(written.image, { output: 'last_hidden_state', pooling: 'first-token', file: 'image_embedder.onnx' });
  t.same(written.text, { output: 'last_hidden_state', pooling: 'masked-mean', file: 'text_embedder.onnx' });

  const text = readFileSync(join(dir, 'text_embedder.onnx'));
  const signature = onnxSignature(text);
  t.equal(signature.opset, 14, 'the tower opset is kept');
  t.same(signature.inputs.map((i) => i.name), ['input_ids', 'attention_mask']);
  t.same(signature.outputs.map((o) => o.name), ['text_embeds'], 'only the embedding comes out');

  const heads = await HeadEmbedder.create(shape, parameters, { batch: 3, intraOpThreads: 1 });
  const textSession = await openSession(text, { intraOpThreads: 1 });
  const imageSession = await openSession(join(dir, 'image_embedder.onnx'), { intraOpThreads: 1 });
  t.teardown(async () => {
    await heads.release();
    await textSession.release();
    await imageSession.release();
  });

  // Three rows at once, with different padding (and one row with no token at all).
  const ids = [1, 2, 3, 0, 0, 6, 5, 4, 3, 2, 1, 1, 1, 1, 1];
  const mask = [1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
  const out = await textSession.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [3, TOKENS]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask, BigInt), [3, TOKENS]),
  });
  t.same(out['text_embeds']!.dims, [3, 5], 'the batch stays open');
  const pooled = [0, 1, 2].map((row) => {
    const sum = new Float32Array(HIDDEN);
    let tokens = 0;
    for (let k = 0; k < TOKENS; k++) {
      if (mask[row * TOKENS + k] === 0) continue;
      tokens++;
      for (let h = 0; h < HIDDEN; h++) sum[h]! += table[ids[row * TOKENS + k]! * HIDDEN + h]!;
    }
    return sum.map((v) => (tokens > 0 ? v / tokens : 0));
  });
  const expected = await heads.embedTexts(pooled);
  const got = out['text_embeds']!.data as Float32Array;
  for (let row = 0; row < 3; row++) t.ok(largest(got.subarray(row * 5, row * 5 + 5), expected[row]!) < 1e-5, `text row ${row} equals pooling then head`);

  const pixels = Float32Array.from({ length: 2 * 2 * 3 }, (_, i) => Math.cos(i));
  const image = (await imageSession.run({ pixel_values: new ort.Tensor('float32', pixels, [2, 2, 3]) }))['image_embeds']!.data as Float32Array;
  const firstTokens = [0, 1].map((row) => Float32Array.from(pixels.subarray(row * 6, row * 6 + 3), (v) => v * 3));
  const expectedImages = await heads.embedImages(firstTokens);
  for (let row = 0; row < 2; row++) t.ok(largest(image.subarray(row * 5, row * 5 + 5), expectedImages[row]!) < 1e-5, `image row ${row} equals first token then head`);
});

t.test('writeEmbedders on a CLIP-style pair: the tower output named like the embedder output moves aside', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'medsyn-embedders-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'vision.onnx'), toyVisionModel());
  writeFileSync(join(dir, 'text.onnx'), textTower());
  const shape: HeadShape = { head: 'linear', imageSize: 64, textSize: HIDDEN, embedDim: 8, hiddenDim: 8 };
  const parameters = headParameters(shape);
  t.throws(() => writeEmbedders(dir, { imageModel: join(dir, 'vision.onnx'), textModel: join(dir, 'text.onnx'), clip: true }, shape, parameters), {
    code: 'MEDSYN_ERR_BAD_MODEL',
    message: /text tower: it has none of the outputs text_embeds, last_hidden_state/,
  });
  const image = readFileSync(join(dir, 'image_embedder.onnx'));
  t.same(onnxSignature(image).outputs.map((o) => o.name), ['image_embeds']);
  const session = await openSession(image, { intraOpThreads: 1 });
  const heads = await HeadEmbedder.create(shape, parameters, { batch: 1, intraOpThreads: 1 });
  t.teardown(async () => {
    await session.release();
    await heads.release();
  });
  const pixels = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => ((i * 7919) % 255) / 255);
  const got = (await session.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, 64, 64]) }))['image_embeds']!.data as Float32Array;
  const columnMeans = new Float32Array(64);
  for (let c = 0; c < 3; c++) for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) columnMeans[x]! += pixels[c * 4096 + y * 64 + x]! / 192;
  const [expected] = await heads.embedImages([columnMeans]);
  t.ok(largest(got, expected!) < 1e-5, 'image_embeds = head(tower image_embeds)');
  t.ok(Math.abs(Math.hypot(...got) - 1) < 1e-5, 'unit length');
});

t.test('writeEmbedders refuses towers it cannot join, with the reason', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'medsyn-embedders-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const shape: HeadShape = { head: 'linear', imageSize: 3, textSize: HIDDEN, embedDim: 4, hiddenDim: 4 };
  const parameters = headParameters(shape);
  writeFileSync(join(dir, 'vision.onnx'), imageTower());
  writeFileSync(join(dir, 'old.onnx'), textTower(12));
  t.throws(() => writeEmbedders(dir, { imageModel: join(dir, 'vision.onnx'), textModel: join(dir, 'old.onnx'), clip: false }, shape, parameters), {
    code: 'MEDSYN_ERR_BAD_MODEL',
    message: /opset 12 is older than 13/,
  });
  writeFileSync(join(dir, 'garbage.onnx'), Buffer.from('not a model at all'));
  t.throws(() => writeEmbedders(dir, { imageModel: join(dir, 'garbage.onnx'), textModel: join(dir, 'old.onnx'), clip: false }, shape, parameters), { code: 'MEDSYN_ERR_BAD_MODEL' });
});
