import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHECK_UNETS, buildCheckFolder, formatTiming, timeDevice } from '../../bench/gpu.js';
import { SD15_UNET, SD15_UNET_PARAMETERS, sd15ParameterCount, writeSd15Unet, type Sd15UnetConfig } from '../../bench/_sd15_unet.js';
import type { GeneratedImage } from '../../models/generator.js';
import { createOnnxSdGenerator } from '../../models/onnx_sd_generator.js';
import { float16Bits, fromFloat16 } from '../../models/_sd_float16.js';
import type { CleanReport } from '../../records.js';
import { readFields, repeatedInts } from '../../train/_protobuf_reader.js';
import type { InferenceSession } from 'onnxruntime-node';
import { ort } from '../../train/session.js';

const fixtures = new URL('../../fixtures/', import.meta.url).pathname;

/** SD 1.5's layout at tiny widths: the same builder code, a megabyte. */
const TINY: Sd15UnetConfig = { ...SD15_UNET, blockChannels: [8, 16, 32, 32], heads: 2, crossAttentionDim: 16, groups: 4 };

/** Weight elements and element types in an ONNX file, read back with the project's protobuf reader. */
function initializersOf(file: string): { weights: number; constants: number; types: Set<number> } {
  const graph = readFields(readFileSync(file)).find((field) => field.field === 7)!.bytes!;
  let weights = 0;
  let constants = 0;
  const types = new Set<number>();
  for (const field of readFields(graph)) {
    if (field.field !== 5) continue;
    const tensor = readFields(field.bytes!);
    const dims = repeatedInts(tensor, 1).map(Number);
    const name = new TextDecoder().decode(tensor.find((f) => f.field === 8)!.bytes!);
    const raw = tensor.find((f) => f.field === 9)!.bytes!;
    const size = dims.reduce((a, b) => a * b, 1);
    if (name.startsWith('const_')) constants += size;
    else {
      weights += size;
      types.add(Number(tensor.find((f) => f.field === 2)!.int!));
      if (raw.length !== size * 2 && raw.length !== size * 4) throw new Error(`${name}: ${raw.length} bytes for ${size} values`);
    }
  }
  return { weights, constants, types };
}

function wave(length: number, phase: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => Math.sin(i * 0.37 + phase));
}

async function runUnet(file: string, config: Sd15UnetConfig, batch: number, size: number, timestep: number, textPhase = 0): Promise<{ dims: readonly number[]; values: Float32Array }> {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  try {
    const float16 = config.dtype === 'float16';
    const tensor = (values: Float32Array, dims: number[]) => (float16 ? new ort.Tensor('float16', Uint16Array.from(values, float16Bits), dims) : new ort.Tensor('float32', values, dims));
    const result = await session.run({
      sample: tensor(wave(batch * 4 * size * size, 0), [batch, 4, size, size]),
      timestep: tensor(Float32Array.of(timestep), []),
      encoder_hidden_states: tensor(wave(batch * 77 * config.crossAttentionDim, textPhase), [batch, 77, config.crossAttentionDim]),
    });
    const out = result['out_sample']!;
    return { dims: out.dims, values: float16 ? fromFloat16(out.data as Uint16Array) : (out.data as Float32Array) };
  } finally {
    await session.release();
  }
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

t.test('sd15ParameterCount gives SD 1.5 UNet\'s 859,520,964 parameters', async (t) => {
  t.equal(sd15ParameterCount(SD15_UNET), SD15_UNET_PARAMETERS);
  t.equal(SD15_UNET_PARAMETERS, 859_520_964);
});

t.test('writeSd15Unet writes as many weights as the formula counts, streamed into one valid model', async (t) => {
  const dir = t.testdir();
  const configs: Sd15UnetConfig[] = [
    TINY,
    { ...TINY, dtype: 'float32' },
    // Another depth and attention split: the formula and the builder must agree beyond SD 1.5's shape.
    { ...TINY, blockChannels: [8, 16, 24], attentionBlocks: 2, layersPerBlock: 1, crossAttentionDim: 12 },
  ];
  for (const [i, config] of configs.entries()) {
    const file = join(dir, `unet-${i}.onnx`);
    const written = writeSd15Unet(file, config);
    const read = initializersOf(file);
    t.equal(written.parameters, sd15ParameterCount(config), `config ${i}: builder vs formula`);
    t.equal(read.weights, written.parameters, `config ${i}: weights in the file`);
    t.same([...read.types], [config.dtype === 'float16' ? 10 : 1], `config ${i}: weights are ${config.dtype}`);
    t.equal(written.bytes, readFileSync(file).length);
  }
  t.throws(() => writeSd15Unet(join(dir, 'bad.onnx'), { ...TINY, blockChannels: [6, 16, 32, 32] }), RangeError);
});

t.test('writeSd15Unet is deterministic per seed', async (t) => {
  const dir = t.testdir();
  writeSd15Unet(join(dir, 'a.onnx'), TINY);
  writeSd15Unet(join(dir, 'b.onnx'), TINY);
  writeSd15Unet(join(dir, 'c.onnx'), { ...TINY, seed: 16 });
  const [a, b, c] = ['a', 'b', 'c'].map((name) => readFileSync(join(dir, `${name}.onnx`)));
  t.ok(a!.equals(b!), 'same seed, same bytes');
  t.notOk(a!.equals(c!), 'another seed, other weights');
});

t.test('the UNet runs in onnxruntime with optimum\'s I/O signature, at any batch and latent size', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'unet.onnx');
  writeSd15Unet(file, TINY);
  const session = await ort.InferenceSession.create(file);
  const signature = (entries: readonly InferenceSession.ValueMetadata[]) =>
    entries.map((entry) => (entry.isTensor ? { name: entry.name, type: entry.type, shape: entry.shape } : { name: entry.name }));
  t.same(signature(session.inputMetadata), [
    { name: 'sample', type: 'float16', shape: ['batch_size', 4, 'height', 'width'] },
    { name: 'timestep', type: 'float16', shape: [] },
    { name: 'encoder_hidden_states', type: 'float16', shape: ['batch_size', 'sequence_length', 16] },
  ]);
  t.same(signature(session.outputMetadata), [{ name: 'out_sample', type: 'float16', shape: ['batch_size', 4, 'height', 'width'] }]);
  await session.release();

  const small = await runUnet(file, TINY, 2, 8, 981);
  t.same(small.dims, [2, 4, 8, 8]);
  t.ok(small.values.every(Number.isFinite), 'finite at 8 × 8');
  const rms = Math.sqrt(small.values.reduce((sum, v) => sum + v * v, 0) / small.values.length);
  t.ok(rms > 0.05 && rms < 20, `output of a sane size (rms ${rms.toFixed(3)})`);
  const larger = await runUnet(file, TINY, 3, 16, 981);
  t.same(larger.dims, [3, 4, 16, 16]);
  t.ok(larger.values.every(Number.isFinite), 'finite at 16 × 16');

  // Every input matters: the timestep (through the embedding) and the text (through cross-attention).
  t.ok(maxDifference(small.values, (await runUnet(file, TINY, 2, 8, 21)).values) > 1e-3, 'depends on the timestep');
  t.ok(maxDifference(small.values, (await runUnet(file, TINY, 2, 8, 981, 1)).values) > 1e-3, 'depends on encoder_hidden_states');

  // float32 and float16 builds draw the same weights: their outputs agree to float16's precision.
  const file32 = join(dir, 'unet32.onnx');
  writeSd15Unet(file32, { ...TINY, dtype: 'float32' });
  const small32 = await runUnet(file32, { ...TINY, dtype: 'float32' }, 2, 8, 981);
  t.ok(maxDifference(small.values, small32.values) < 0.05, `float16 ≈ float32 (max difference ${maxDifference(small.values, small32.values).toFixed(4)})`);
});

t.test('buildCheckFolder makes a folder the onnx backend runs end to end, and caches it', async (t) => {
  const dir = t.testdir();
  const folder = join(dir, 'tiny');
  const built = buildCheckFolder(folder, TINY, fixtures);
  t.equal(built.built, true);
  t.equal(built.parameters, sd15ParameterCount(TINY));
  t.equal(buildCheckFolder(folder, TINY, fixtures).built, false, 'the second call reuses the folder');
  t.equal(buildCheckFolder(folder, { ...TINY, seed: 3 }, fixtures).built, true, 'another config rebuilds it');

  const generator = await createOnnxSdGenerator({ model: folder, size: 64, steps: 3, scheduler: 'dpmpp-2m', threads: 1 });
  try {
    const report = (prompt: string) => ({ id: 'x', source: 'test', prompt, caption: prompt }) as unknown as CleanReport;
    const requests = ['No acute process.', 'Left pleural effusion.'].map((prompt, i) => ({ key: `k${i}`, report: report(prompt), variant: 0, attempt: 0, seed: 7 + i }));
    const images = (await generator.generate(requests)) as GeneratedImage[];
    t.equal(images.length, 2);
    for (const image of images) t.match(image, { width: 64, height: 64, channels: 1 });
    t.equal(images[0]!.pixels.length, 64 * 64);
    t.match(images[0]!.meta, { scheduler: 'dpmpp-2m', unetCalls: 3 });
    const again = (await generator.generate(requests)) as GeneratedImage[];
    t.ok(Buffer.from(again[0]!.pixels).equals(Buffer.from(images[0]!.pixels)), 'deterministic per seed');
  } finally {
    await generator.close();
  }
});

t.test('timeDevice times each batch size, skips what would pass its time, and reports a device that cannot load', async (t) => {
  const dir = t.testdir();
  const folder = buildCheckFolder(join(dir, 'tiny'), TINY, fixtures).folder;
  const seen: string[] = [];
  const timings = await timeDevice({ model: folder, device: 'cpu', batches: [1, 2], size: 64, steps: 2, threads: 1, onResult: (timing) => seen.push(formatTiming(timing)) });
  t.equal(timings.length, 2);
  for (const timing of timings) {
    t.match(timing, { device: 'cpu', unetRows: 2 * timing.batch, unetCalls: 2 });
    t.ok(timing.imagesPerSecond! > 0 && timing.unetStepsPerSecond! > 0);
    t.ok(timing.warmSeconds !== undefined, 'a warm run when there is time');
    t.equal(timing.imagesPerSecond, timing.batch / timing.warmSeconds!);
  }
  t.match(seen[1], /^cpu batch 2 \(UNet batch 4, 2 calls\): cold [\d.]+ s, warm [\d.]+ s → [\d.]+ images\/s, [\d.]+ UNet steps\/s/);

  // No time at all: the first batch runs once (nothing to estimate from), the next is skipped.
  const hurried = await timeDevice({ model: folder, device: 'cpu', batches: [1, 2], size: 64, steps: 2, threads: 1, seconds: 0 });
  t.ok(hurried[0]!.coldSeconds! > 0);
  t.equal(hurried[0]!.warmSeconds, undefined);
  t.match(hurried[1], { batch: 2, skipped: /would take about/ });
  t.match(formatTiming(hurried[1]!), /skipped/);

  // A size the model cannot take fails before anything is timed.
  const failing = await timeDevice({ model: folder, device: 'cpu', batches: [1], size: 60, steps: 2, threads: 1 }).catch((err: unknown) => err);
  t.match(failing, { code: 'MEDSYN_ERR_INVALID_OPTION' });

  await t.rejects(timeDevice({ model: folder, device: 'cuda', batches: [1], size: 64, steps: 2 }), { code: 'MEDSYN_ERR_PROVIDER_UNAVAILABLE' });
});

t.test('CHECK_UNETS: sd15 is SD 1.5, tiny is its layout at small widths', async (t) => {
  t.equal(sd15ParameterCount(CHECK_UNETS.sd15), SD15_UNET_PARAMETERS);
  t.same(CHECK_UNETS.tiny.layersPerBlock, SD15_UNET.layersPerBlock);
  t.ok(sd15ParameterCount(CHECK_UNETS.tiny) < 10_000_000);
});

t.test('bench/gpu.sh --dry-run runs the whole check on the CPU with the tiny UNet', async (t) => {
  const cache = t.testdir();
  const root = new URL('../../', import.meta.url).pathname;
  const run = spawnSync('/bin/bash', [join(root, 'bench', 'gpu.sh'), '--dry-run'], {
    cwd: root,
    env: { ...process.env, MEDSYN_GPU_CHECK_CACHE: cache, MEDSYN_GPU_CHECK_DEVICES: 'cuda,cpu', NODE: process.execPath },
    encoding: 'utf8',
    timeout: 120_000,
  });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /UNet tiny: 8,605,284 parameters/);
  t.match(run.stdout, /probe cuda: unavailable: Cannot use device cuda/, 'a provider that cannot load is reported, not fatal');
  t.match(run.stdout, /\| cpu \| 1 \| 2 \| [\d.]+ \| [\d.]+ \|/);
  t.match(run.stdout, /\| cpu \| 2 \| 4 \| [\d.]+ \| [\d.]+ \|/);
  t.match(run.stdout, /gpu-check done in \d+ s/);
  t.ok(readFileSync(join(cache, 'tiny', 'unet', 'model.onnx')).length > 1e6, 'the model folder went to MEDSYN_GPU_CHECK_CACHE');
});
