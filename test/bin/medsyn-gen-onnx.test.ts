import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { ShardManifest } from '../../streams/shard_manifest.js';
import { ROOT, bin, comparable, samplesIn, sh } from './_pipes.js';

const gen = bin('medsyn-gen');
const shard = bin('medsyn-shard');
const reportsDir = JSON.stringify(join(ROOT, 'fixtures', 'reports'));
const sdTiny = JSON.stringify(join(ROOT, 'fixtures', 'sd-tiny'));
const onnx = `--backend onnx --model ${sdTiny} --size 64 --steps 3 --threads 1`;

t.test('medsyn-gen --backend onnx --model fixtures/sd-tiny | medsyn-shard out/ works through real pipes', async (t) => {
  const out = t.testdir({});
  const run = await sh(`${gen} ${reportsDir} ${onnx} --batch-size 4 --limit 6 | ${shard} ${JSON.stringify(out)}`);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stderr, /medsyn-gen: 6 samples, 0 rejected of 6 read .*onnx sd-tiny/);
  t.match(run.stderr, /medsyn-gen: quality: 6 passed/);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as ShardManifest;
  t.match(manifest, { complete: true, totals: { samples: 6 } });
  const samples = await samplesIn(readFileSync(join(out, 'shard-000000.tar')));
  t.equal(samples.length, 6);
  t.match(JSON.parse(Buffer.from(samples[0]!.parts.json!).toString()), {
    id: 's50000001',
    backend: 'onnx',
    model: 'sd-tiny',
    width: 64,
    height: 64,
    channels: 1,
    scheduler: 'pndm',
    steps: 3,
    unetCalls: 4,
    guidance: 4,
    negativePrompt: '',
    device: 'cpu',
    modelFolder: 'sd-tiny',
    quality: { passed: true },
  });
  const image = await sharp(Buffer.from(samples[0]!.parts.png!)).metadata();
  t.match(image, { width: 64, height: 64, channels: 1, format: 'png' });
});

t.test('medsyn-gen --backend onnx gives the same samples whatever the batch size; the flags reach the backend', async (t) => {
  const flags = `${onnx} --scheduler euler-a --guidance 3 --negative-prompt "lateral view" --channels 3 --skip-quality --limit 5 -q`;
  const a = await sh(`${gen} ${reportsDir} ${flags} --batch-size 2`);
  const b = await sh(`${gen} ${reportsDir} ${flags} --batch-size 5`);
  t.equal(a.code, 0, a.stderr);
  t.equal(b.code, 0, b.stderr);
  const fromA = (await samplesIn(a.stdout)).map(comparable);
  t.equal(fromA.length, 5);
  t.same((await samplesIn(b.stdout)).map(comparable), fromA);
  t.match(fromA[0]!.parts['json'], { scheduler: 'euler-a', guidance: 3, negativePrompt: 'lateral view', channels: 3 });
  const image = await sharp(Buffer.from(fromA[0]!.parts['png'] as string, 'base64')).metadata();
  t.equal(image.channels, 3);
});

t.test('medsyn-gen --backend onnx explains bad usage (exit 2), a bad folder and a missing device (exit 1)', async (t) => {
  for (const [args, pattern] of [
    ['--backend onnx', /--backend onnx needs --model DIR/],
    ['--steps 5', /--steps is for --backend onnx or http/],
    ['--scheduler ddim', /--scheduler is for --backend onnx \(/],
    ['--model x', /--model is for --backend onnx or http/],
    [`${onnx} --device tpu`, /Invalid --device: expected cpu, cuda, cuda:N or webgpu/],
    [`${onnx} --scheduler lms`, /Invalid --scheduler: expected one of pndm, ddim, dpmpp-2m, euler-a/],
    [`${onnx} --channels 2`, /Invalid --channels/],
    [`${onnx} --guidance=-1`, /Invalid --guidance: expected a number ≥ 0/],
    [`${onnx} --eta 2`, /Invalid --eta: expected a number in 0 … 1/],
  ] as const) {
    const run = await sh(`${gen} ${args} < /dev/null`);
    t.equal(run.code, 2, args);
    t.match(run.stderr, pattern, args);
    t.match(run.stderr, /\[MEDSYN_ERR_USAGE\]\n$/, args);
  }
  const missing = await sh(`${gen} ${reportsDir} --backend onnx --model no/such/model --limit 1`);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /medsyn-gen: Cannot load Stable Diffusion model no\/such\/model: no such folder.*\[MEDSYN_ERR_NOT_FOUND\]\n$/);
  const cuda = await sh(`${gen} ${reportsDir} ${onnx} --device cuda --limit 1 > /dev/null`);
  t.equal(cuda.code, 1, 'no silent fall-back to the CPU');
  t.match(cuda.stderr, /medsyn-gen: Cannot use device cuda: .*ONNXRUNTIME_NODE_INSTALL=cuda12.* \[MEDSYN_ERR_PROVIDER_UNAVAILABLE\]\n$/);
});
