import t from 'tap';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseClipImageProcessor, preprocessClipImage } from '../../models/clip_image_processor.js';
import { phantomFindings } from '../../models/phantom_findings.js';
import { renderPhantom } from '../../models/render_phantom.js';
import { sha256File } from '../../train/feature_cache.js';
import { decodeGrayImage, loadFrozenEncoders } from '../../train/frozen_encoders.js';
import { openSession, ort } from '../../train/session.js';

const fixtures = new URL('../../fixtures/', import.meta.url).pathname;
const towers = { image: join(fixtures, 'vit-tiny'), text: join(fixtures, 'bert-tiny') };

t.test('loadFrozenEncoders with two tower folders: pooler_output for images, the masked mean of last_hidden_state for texts', async (t) => {
  const encoders = await loadFrozenEncoders(towers, { intraOpThreads: 1 });
  const vit = await openSession(join(towers.image, 'onnx', 'model.onnx'));
  const bert = await openSession(join(towers.text, 'onnx', 'model.onnx'));
  t.teardown(async () => {
    await encoders.release();
    await vit.release();
    await bert.release();
  });
  t.equal(encoders.imageSize, 1024);
  t.equal(encoders.textSize, 256);
  t.equal(encoders.imageHash, sha256File(join(towers.image, 'onnx', 'model.onnx')));
  t.equal(encoders.textHash, sha256File(join(towers.text, 'onnx', 'model.onnx')));
  t.same(encoders.folders, towers);

  const pixels = renderPhantom(phantomFindings({ labels: { cardiomegaly: 1 }, attributes: {}, caption: 'Cardiomegaly.' }), 3, 128);
  const [features] = await encoders.embedImages([{ pixels, width: 128, height: 128 }]);
  const processor = parseClipImageProcessor(JSON.parse((await import('node:fs')).readFileSync(join(towers.image, 'preprocessor_config.json'), 'utf8')), 'preprocessor_config.json');
  const pixelValues = await preprocessClipImage({ pixels, width: 128, height: 128 }, processor);
  const pooled = (await vit.run({ pixel_values: new ort.Tensor('float32', pixelValues, [1, 3, 64, 64]) }))['pooler_output']!.data as Float32Array;
  t.same(Array.from(features!), Array.from(pooled), 'pooler_output of the preprocessed image (resized 128 → 64)');

  const [text, other] = await encoders.embedTexts(['No pneumothorax.', 'Cardiomegaly.']);
  const ids = [2, 0, 0, 0, 3]; // filled below from the vocabulary
  const vocab = (await import('node:fs')).readFileSync(join(towers.text, 'vocab.txt'), 'utf8').split('\n');
  ids[1] = vocab.indexOf('no');
  ids[2] = vocab.indexOf('pneumothorax');
  ids[3] = vocab.indexOf('.');
  const inputIds = new BigInt64Array(32);
  const mask = new BigInt64Array(32);
  ids.forEach((id, i) => {
    inputIds[i] = BigInt(id);
    mask[i] = 1n;
  });
  const hidden = (await bert.run({
    input_ids: new ort.Tensor('int64', inputIds, [1, 32]),
    attention_mask: new ort.Tensor('int64', mask, [1, 32]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(32), [1, 32]),
  }))['last_hidden_state']!.data as Float32Array;
  const mean = Array.from({ length: 256 }, (_, k) => (hidden[k]! + hidden[256 + k]! + hidden[512 + k]! + hidden[768 + k]! + hidden[1024 + k]!) / 5);
  t.ok(Math.max(...mean.map((value, k) => Math.abs(value - text![k]!))) < 1e-6, 'the mean over the 5 unmasked tokens');
  t.notSame(Array.from(text!), Array.from(other!));
});

t.test('loadFrozenEncoders with one CLIP-style folder uses image_embeds and text_embeds', async (t) => {
  const encoders = await loadFrozenEncoders(join(fixtures, 'clip-tiny'), { intraOpThreads: 1 });
  t.teardown(() => encoders.release());
  t.equal(encoders.imageSize, 32);
  t.equal(encoders.textSize, 32);
  t.equal(encoders.folders.image, encoders.folders.text);
  const same = await loadFrozenEncoders({ image: join(fixtures, 'clip-tiny'), text: join(fixtures, 'clip-tiny') }, { intraOpThreads: 1 });
  t.teardown(() => same.release());
  t.same(Array.from((await same.embedTexts(['Cardiomegaly.']))[0]!), Array.from((await encoders.embedTexts(['Cardiomegaly.']))[0]!));
});

t.test('loadFrozenEncoders feeds a one-channel image tower one gray plane, and takes [CLS] without a pooled output', async (t) => {
  const { Graph } = await import('../../train/graph.js');
  const ops = await import('../../train/ops.js');
  const { mkdirSync, writeFileSync, cpSync } = await import('node:fs');
  const dir = t.testdir({});
  const g = new Graph({ name: 'gray' });
  const pixelValues = g.input('pixel_values', 'float32', [1, 1, 4, 4]);
  // last_hidden_state [1, 2, 4]: token 0 = the first row, token 1 = the second.
  const hidden = ops.reshape(ops.slice(ops.reshape(pixelValues, [4, 4]), { starts: [0], ends: [2] }), [1, 2, 4]);
  mkdirSync(join(dir, 'gray', 'onnx'), { recursive: true });
  writeFileSync(join(dir, 'gray', 'onnx', 'model.onnx'), g.toOnnx({ last_hidden_state: hidden }, { parameters: 'initializers' }));
  writeFileSync(join(dir, 'gray', 'preprocessor_config.json'), JSON.stringify({ do_resize: false, do_center_crop: false, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0, 0], image_std: [0.5, 1, 1] }));
  cpSync(towers.text, join(dir, 'bert'), { recursive: true });
  const encoders = await loadFrozenEncoders({ image: join(dir, 'gray'), text: join(dir, 'bert') });
  t.teardown(() => encoders.release());
  t.equal(encoders.imageSize, 4);
  const pixels = Uint8Array.from({ length: 16 }, (_, i) => (i < 4 ? 255 : 0));
  const [features] = await encoders.embedImages([{ pixels, width: 4, height: 4 }]);
  t.same(Array.from(features!), [1, 1, 1, 1], 'the first token of the gray plane, normalised with the first channel');
});

t.test('loadFrozenEncoders and decodeGrayImage say what is wrong', async (t) => {
  await t.rejects(loadFrozenEncoders({ image: join(fixtures, 'bert-tiny'), text: towers.text }), { code: 'MEDSYN_ERR_NOT_FOUND' }, 'no preprocessor_config.json');
  await t.rejects(loadFrozenEncoders({ image: join(fixtures, 'clip-tiny'), text: towers.image }), { code: 'MEDSYN_ERR_BAD_TOKENIZER' }, 'a text tower without tokenizer');
  await t.rejects(decodeGrayImage(new Uint8Array([1, 2, 3]), 's1'), { code: 'MEDSYN_ERR_BAD_SAMPLE' });
  const rgb = await sharp({ create: { width: 4, height: 2, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
  const gray = await decodeGrayImage(rgb, 's2');
  t.equal(gray.pixels.length, 8, 'colour images become one gray channel');
});
