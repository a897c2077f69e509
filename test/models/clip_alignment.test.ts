import t from 'tap';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLIP_PAIR_CASES, writeClipPairFixture } from '../../fixtures/make_clip_pair.js';
import { loadClipAlignment } from '../../models/clip_alignment.js';
import { phantomFindings } from '../../models/phantom_findings.js';
import { renderPhantom } from '../../models/render_phantom.js';
import type { GrayImage } from '../../transforms/image_stats.js';
import { toyTextModel, toyVisionModel } from './_toy_onnx.js';

const fixtures = new URL('../../fixtures/', import.meta.url).pathname;
const clipTiny = join(fixtures, 'clip-tiny');
/** Seeds far from the training seeds (1,000,000 + 1000·case + k). */
const TEST_SEED = 424_242;

function phantom(index: number, seed: number, size: number): GrayImage {
  const phantomCase = CLIP_PAIR_CASES[index]!;
  const findings = phantomFindings({ labels: phantomCase.labels, attributes: phantomCase.attributes, caption: phantomCase.captions[0]! });
  return { pixels: renderPhantom(findings, seed, size), width: size, height: size };
}

const captions = CLIP_PAIR_CASES.map((phantomCase) => phantomCase.captions[0]!);
const names = CLIP_PAIR_CASES.map((phantomCase) => phantomCase.name);

/** A copy of the fixture folder, to break one file of. */
function copyFixture(dir: string): string {
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  for (const name of readdirSync(clipTiny)) if (name !== 'onnx') copyFileSync(join(clipTiny, name), join(dir, name));
  for (const name of readdirSync(join(clipTiny, 'onnx'))) copyFileSync(join(clipTiny, 'onnx', name), join(dir, 'onnx', name));
  return dir;
}

t.test('loadClipAlignment on fixtures/clip-tiny scores a phantom higher with its own caption than with another', async (t) => {
  const scorer = await loadClipAlignment(clipTiny, { intraOpThreads: 1 });
  t.teardown(() => scorer.release());
  t.equal(scorer.model, 'clip:clip-tiny');
  const n = CLIP_PAIR_CASES.length;
  const images = CLIP_PAIR_CASES.map((_, i) => phantom(i, TEST_SEED, 64));
  // Every image against every caption: row i is image i.
  const flat = await scorer.score(
    images.flatMap((image) => captions.map(() => image)),
    images.flatMap(() => captions),
  );
  const matrix = Array.from({ length: n }, (_, i) => flat.slice(i * n, (i + 1) * n));
  t.ok(
    flat.every((score) => score >= -1 && score <= 1 && Number.isFinite(score)),
    `scores in [−1, 1]: min ${Math.min(...flat).toFixed(3)}, max ${Math.max(...flat).toFixed(3)}`,
  );

  const nextWins = matrix.map((row, i) => row[i]! > row[(i + 1) % n]!);
  const detail = matrix.map((row, i) => `${names[i]}: own ${row[i]!.toFixed(3)} vs "${captions[(i + 1) % n]}" ${row[(i + 1) % n]!.toFixed(3)}`).join('; ');
  const wins = nextWins.filter(Boolean).length;
  t.ok(wins >= Math.ceil(0.8 * n), `own caption beats the next case's caption for ${wins}/${n} images (need ≥ 80%): ${detail}`);

  let pairwise = 0;
  let top1 = 0;
  matrix.forEach((row, i) => {
    pairwise += row.filter((score, j) => j !== i && row[i]! > score).length;
    if (row.indexOf(Math.max(...row)) === i) top1++;
  });
  const pairs = n * (n - 1);
  t.ok(pairwise / pairs >= 0.9, `own caption beats another case's caption in ${pairwise}/${pairs} comparisons (need ≥ 90%)`);
  t.ok(top1 >= n / 2, `own caption is the best of the ${n} for ${top1}/${n} images (need ≥ half; chance is 1/${n})`);
});

t.test('loadClipAlignment gives the same scores in one batch as one pair at a time', async (t) => {
  const scorer = await loadClipAlignment(clipTiny, { intraOpThreads: 1 });
  t.teardown(() => scorer.release());
  const images = CLIP_PAIR_CASES.map((_, i) => phantom(i, TEST_SEED + 1, 64));
  const batch = await scorer.score(images, captions);
  const single: number[] = [];
  for (const [i, image] of images.entries()) single.push(...(await scorer.score([image], [captions[i]!])));
  t.same(batch, single);
  t.same(await scorer.score([], []), []);
});

t.test('loadClipAlignment resizes and crops larger or non-square images as preprocessor_config.json says', async (t) => {
  const scorer = await loadClipAlignment(clipTiny, { intraOpThreads: 1 });
  t.teardown(() => scorer.release());
  const small = CLIP_PAIR_CASES.map((_, i) => phantom(i, TEST_SEED + 2, 64));
  const large = CLIP_PAIR_CASES.map((_, i) => phantom(i, TEST_SEED + 2, 256));
  const atSmall = await scorer.score(small, captions);
  const atLarge = await scorer.score(large, captions);
  const worst = Math.max(...atSmall.map((score, i) => Math.abs(score - atLarge[i]!)));
  t.ok(worst < 0.15, `256 px shrunk to 64 scores as the 64 px render (largest difference ${worst.toFixed(3)})`);
  // 80 × 64: resized to 64 high (already), center-cropped to 64 wide.
  const wide: GrayImage = { width: 80, height: 64, pixels: new Uint8Array(80 * 64) };
  for (let y = 0; y < 64; y++) wide.pixels.set(small[1]!.pixels.subarray(y * 64, (y + 1) * 64), y * 80 + 8);
  t.same(await scorer.score([wide], [captions[1]!]), [atSmall[1]], 'the padding is cropped away');
});

t.test('loadClipAlignment runs a model with a fixed batch above one in padded chunks', async (t) => {
  const dir = t.testdir({});
  await writeClipPairFixture(dir, join(fixtures, 'tokenizer'), { exportBatch: 5 });
  const byFive = await loadClipAlignment(dir, { intraOpThreads: 1 });
  const byOne = await loadClipAlignment(clipTiny, { intraOpThreads: 1 });
  t.teardown(async () => {
    await byFive.release();
    await byOne.release();
  });
  const images = CLIP_PAIR_CASES.map((_, i) => phantom(i, TEST_SEED + 3, 64));
  const five = await byFive.score(images, captions); // 5 + 5 + 2 (padded to 5)
  const one = await byOne.score(images, captions);
  const worst = Math.max(...five.map((score, i) => Math.abs(score - one[i]!)));
  t.ok(worst < 1e-5, `batch-5 export scores as the batch-1 export (largest difference ${worst})`);
});

t.test('loadClipAlignment batches a model whose batch size is open, batchSize at a time', async (t) => {
  const dir = copyFixture(t.testdir({}));
  writeFileSync(join(dir, 'onnx', 'vision_model.onnx'), toyVisionModel());
  writeFileSync(join(dir, 'onnx', 'text_model.onnx'), toyTextModel());
  const images = CLIP_PAIR_CASES.map((_, i) => phantom(i, TEST_SEED + 4, 64));
  const whole = await loadClipAlignment(dir, { intraOpThreads: 1 });
  const byFive = await loadClipAlignment(dir, { intraOpThreads: 1, batchSize: 5 });
  t.teardown(async () => {
    await whole.release();
    await byFive.release();
  });
  const all = await whole.score(images, captions);
  const chunked = await byFive.score(images, captions);
  const single: number[] = [];
  for (const [i, image] of images.entries()) single.push(...(await whole.score([image], [captions[i]!])));
  const worst = Math.max(...all.flatMap((score, i) => [Math.abs(score - chunked[i]!), Math.abs(score - single[i]!)]));
  t.ok(worst < 1e-6, `12 at once, 5 at a time and one at a time agree (largest difference ${worst})`);
  t.ok(new Set(all.map((score) => score.toFixed(6))).size > 1, 'the toy model tells the pairs apart');
});

t.test('loadClipAlignment names what is wrong with a model folder', async (t) => {
  await t.rejects(loadClipAlignment('/nonexistent/clip'), { code: 'MEDSYN_ERR_NOT_FOUND', file: '/nonexistent/clip', message: /no such folder/ });
  await t.rejects(loadClipAlignment(clipTiny, { batchSize: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'batchSize' });
  await t.rejects(loadClipAlignment(clipTiny, { device: 'tpu' as never }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'device' });

  const noText = copyFixture(t.testdir({}));
  rmSync(join(noText, 'onnx', 'text_model.onnx'));
  await t.rejects(loadClipAlignment(noText), { code: 'MEDSYN_ERR_NOT_FOUND', file: join(noText, 'onnx', 'text_model.onnx'), message: /onnx\/text_model\.onnx is missing/ });

  const noProcessor = copyFixture(t.testdir({}));
  rmSync(join(noProcessor, 'preprocessor_config.json'));
  await t.rejects(loadClipAlignment(noProcessor), { code: 'MEDSYN_ERR_NOT_FOUND', message: /preprocessor_config\.json is missing/ });

  const badProcessor = copyFixture(t.testdir({}));
  writeFileSync(join(badProcessor, 'preprocessor_config.json'), JSON.stringify({ crop_size: { height: 64, width: 64 }, image_mean: [0.5, 0.5] }));
  await t.rejects(loadClipAlignment(badProcessor), { code: 'MEDSYN_ERR_BAD_MODEL', option: 'image_mean' });

  const wrongCrop = copyFixture(t.testdir({}));
  writeFileSync(join(wrongCrop, 'preprocessor_config.json'), JSON.stringify({ size: { shortest_edge: 224 }, crop_size: { height: 224, width: 224 } }));
  await t.rejects(loadClipAlignment(wrongCrop), { code: 'MEDSYN_ERR_BAD_MODEL', message: /takes 64 × 64 images, preprocessor_config\.json makes 224 × 224/ });

  const wrongImageInput = copyFixture(t.testdir({}));
  writeFileSync(join(wrongImageInput, 'onnx', 'vision_model.onnx'), toyVisionModel('image'));
  await t.rejects(loadClipAlignment(wrongImageInput), {
    code: 'MEDSYN_ERR_BAD_MODEL',
    file: join(wrongImageInput, 'onnx', 'vision_model.onnx'),
    message: /no input pixel_values \(its inputs: image/,
  });

  const wrongTextInput = copyFixture(t.testdir({}));
  writeFileSync(join(wrongTextInput, 'onnx', 'text_model.onnx'), toyTextModel('ids'));
  await t.rejects(loadClipAlignment(wrongTextInput), {
    code: 'MEDSYN_ERR_BAD_MODEL',
    file: join(wrongTextInput, 'onnx', 'text_model.onnx'),
    message: /no input input_ids \(its inputs: ids, attention_mask/,
  });

  const corrupt = copyFixture(t.testdir({}));
  writeFileSync(join(corrupt, 'onnx', 'vision_model.onnx'), 'not a model');
  await t.rejects(loadClipAlignment(corrupt), { code: 'MEDSYN_ERR_SESSION_FAILED', file: join(corrupt, 'onnx', 'vision_model.onnx') });

  const noTokenizer = copyFixture(t.testdir({}));
  for (const name of ['tokenizer.json', 'vocab.json']) rmSync(join(noTokenizer, name));
  await t.rejects(loadClipAlignment(noTokenizer), { code: 'MEDSYN_ERR_BAD_TOKENIZER', message: /vocab\.json is missing/ });

  const unpaired = copyFixture(t.testdir({}));
  writeFileSync(join(unpaired, 'onnx', 'text_model.onnx'), toyTextModel());
  const mismatched = await loadClipAlignment(unpaired);
  t.teardown(() => mismatched.release());
  await t.rejects(mismatched.score([phantom(0, 1, 64)], [captions[0]!]), { code: 'MEDSYN_ERR_BAD_MODEL', message: /not a pair/ });
});

t.test('ClipAlignment.score refuses lists of different lengths and malformed images', async (t) => {
  const scorer = await loadClipAlignment(clipTiny, { intraOpThreads: 1 });
  t.teardown(() => scorer.release());
  await t.rejects(scorer.score([phantom(0, 1, 64)], []), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'captions' });
  await t.rejects(scorer.score([{ pixels: new Uint8Array(10), width: 64, height: 64 }], ['x']), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'image' });
});
