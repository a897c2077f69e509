import t from 'tap';
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { buildTinySd, TINY_SD_VARIANTS } from '../../fixtures/make_tiny_sd.js';
import type { GeneratedImage, GenerationRequest } from '../../models/generator.js';
import { createGenerator } from '../../models/create_generator.js';
import { createOnnxSdGenerator, parseDevice, type OnnxSdGeneratorOptions } from '../../models/onnx_sd_generator.js';
import { float16Bits, float16Value, fromFloat16, toFloat16 } from '../../models/_sd_float16.js';
import { loadSdModel, watchSdRuns, type SdRun } from '../../models/_sd_model.js';
import { SCHEDULER_NAMES } from '../../models/schedulers/scheduler.js';
import type { CleanReport } from '../../records.js';

const fixtures = new URL('../../fixtures/', import.meta.url).pathname;
const model = (name: string): string => join(fixtures, name);

function report(prompt: string): CleanReport {
  return { id: 's1', source: 'test', text: prompt, prompt, caption: prompt } as unknown as CleanReport;
}

function request(key: string, prompt: string, seed: number): GenerationRequest {
  return { key, report: report(prompt), variant: 0, attempt: 0, seed };
}

const PROMPTS = ['No acute cardiopulmonary process.', 'Small left pleural effusion.', 'Moderate cardiomegaly with pulmonary edema.'];
const requests = PROMPTS.map((prompt, i) => request(`s${i}`, prompt, 100 + i));

async function run(options: Partial<OnnxSdGeneratorOptions> & { model: string }, batch: readonly GenerationRequest[] = requests): Promise<GeneratedImage[]> {
  const generator = await createOnnxSdGenerator({ size: 64, steps: 4, threads: 1, ...options });
  try {
    return (await generator.generate(batch)) as GeneratedImage[];
  } finally {
    await generator.close();
  }
}

/** An image's bytes as a short string: tap compares those quickly, and a failure shows which image differs. */
function digest(image: GeneratedImage | undefined): string {
  return createHash('sha256').update(image!.pixels).digest('hex').slice(0, 16);
}

function meanAbsDifference(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

function spread(pixels: Uint8Array): number {
  let min = 255;
  let max = 0;
  for (const value of pixels) {
    min = Math.min(min, value);
    max = Math.max(max, value);
  }
  return max - min;
}

t.test('float16Bits rounds to the nearest half, ties to even, and float16Value reads every pattern back', async (t) => {
  t.equal(float16Bits(1), 0x3c00);
  t.equal(float16Bits(-2), 0xc000);
  t.equal(float16Bits(0.5), 0x3800);
  t.equal(float16Bits(65504), 0x7bff, 'the largest half');
  t.equal(float16Bits(65519), 0x7bff, 'below the midpoint to infinity');
  t.equal(float16Bits(65520), 0x7c00, 'the midpoint rounds to infinity (even)');
  t.equal(float16Bits(1e9), 0x7c00);
  t.equal(float16Bits(-Infinity), 0xfc00);
  t.equal(float16Bits(NaN) & 0x7e00, 0x7e00, 'NaN stays a quiet NaN');
  t.equal(float16Bits(-0), 0x8000);
  t.equal(float16Bits(1 + 2 ** -11), 0x3c00, 'a tie between 1 and the next half goes to the even 1');
  t.equal(float16Bits(1 + 3 * 2 ** -11), 0x3c02, 'a tie between odd and even goes to the even one');
  t.equal(float16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01, 'just above the tie rounds up');
  t.equal(float16Bits(2 ** -24), 0x0001, 'the smallest subnormal');
  t.equal(float16Bits(2 ** -25), 0x0000, 'half the smallest subnormal ties to zero');
  t.equal(float16Bits(1.5 * 2 ** -25), 0x0001);
  t.equal(float16Bits(3 * 2 ** -25), 0x0002, 'a subnormal tie goes to even');
  t.equal(float16Bits(2 ** -14 - 2 ** -26), 0x0400, 'rounding up out of the subnormals gives the smallest normal');
  t.equal(float16Value(0x3555), 0.333251953125);
  t.equal(float16Value(0x0001), 2 ** -24);
  t.equal(float16Value(0x7c00), Infinity);
  t.ok(Number.isNaN(float16Value(0x7e01)));

  let roundTrips = 0;
  for (let bits = 0; bits < 0x10000; bits++) {
    const value = float16Value(bits);
    if (Number.isNaN(value)) continue;
    if (float16Bits(value) === bits) roundTrips++;
  }
  t.equal(roundTrips, 0x10000 - 2 * 1023, 'every half but the NaNs round-trips, -0 included');

  // Against the definition: the nearest half, ties to the even pattern, for many random floats.
  let seed = 7;
  let wrong = 0;
  for (let i = 0; i < 20000; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const value = Math.fround(((seed / 2 ** 32) * 2 - 1) * 2 ** ((i % 40) - 26));
    const bits = float16Bits(value);
    const error = Math.abs(float16Value(bits) - value);
    for (const neighbour of [bits - 1, bits + 1]) {
      if ((neighbour & 0x7fff) >= 0x7c00 || neighbour < 0 || (neighbour & 0x8000) !== (bits & 0x8000)) continue;
      const other = Math.abs(float16Value(neighbour) - value);
      if (other < error || (other === error && (neighbour & 1) === 0)) wrong++;
    }
  }
  t.equal(wrong, 0, 'always the nearest half, ties to even');
  t.same(Array.from(fromFloat16(toFloat16([0, 1, -1.5, 1000, 2 ** -24]))), [0, 1, -1.5, 1000, 2 ** -24]);
});

t.test('parseDevice reads cpu, cuda, cuda:N and webgpu', async (t) => {
  t.same(parseDevice('cpu'), { device: 'cpu', deviceId: 0 });
  t.same(parseDevice('cuda'), { device: 'cuda', deviceId: 0 });
  t.same(parseDevice('cuda:3'), { device: 'cuda', deviceId: 3 });
  t.same(parseDevice('webgpu'), { device: 'webgpu', deviceId: 0 });
  for (const bad of ['gpu', 'cpu:1', 'cuda:', 'cuda:x', '']) t.throws(() => parseDevice(bad), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'device' }, bad);
});

t.test('createOnnxSdGenerator runs every scheduler on every export generation, with guidance on and off', async (t) => {
  for (const variant of TINY_SD_VARIANTS) {
    for (const scheduler of SCHEDULER_NAMES) {
      for (const guidance of [4, 1]) {
        const images = await run({ model: model(variant.folder), scheduler, guidance });
        const label = `${variant.folder} ${scheduler} guidance ${guidance}`;
        t.equal(images.length, 3, label);
        for (const image of images) {
          t.same([image.width, image.height, image.channels], [64, 64, 1], label);
          t.equal(image.pixels.length, 64 * 64);
          t.ok(spread(image.pixels) > 64, `${label}: an image with contrast`);
        }
        t.match(images[0]!.meta, { scheduler, steps: 4, guidance, negativePrompt: '', device: 'cpu', modelFolder: variant.folder }, label);
        t.notSame(digest(images[0]), digest(images[1]), `${label}: another prompt and seed, another image`);
      }
    }
  }
});

t.test('the legacy and new export generations give the same images; fp16 gives nearly the same', async (t) => {
  for (const scheduler of ['pndm', 'dpmpp-2m'] as const) {
    const fresh = await run({ model: model('sd-tiny'), scheduler });
    const legacy = await run({ model: model('sd-tiny-legacy'), scheduler });
    const half = await run({ model: model('sd-tiny-fp16'), scheduler });
    for (let i = 0; i < fresh.length; i++) {
      // int64 timesteps are the float ones rounded: the same for PNDM's integer timesteps, close for DPM-Solver's.
      if (scheduler === 'pndm') t.same(digest(legacy[i]), digest(fresh[i]), `${scheduler} image ${i}: legacy = new`);
      else t.ok(meanAbsDifference(legacy[i]!.pixels, fresh[i]!.pixels) < 2, `${scheduler} image ${i}: legacy ≈ new`);
      const difference = meanAbsDifference(half[i]!.pixels, fresh[i]!.pixels);
      t.ok(difference < 2, `${scheduler} image ${i}: fp16 within ${difference.toFixed(3)} gray levels of fp32`);
    }
  }
});

t.test('guidance: at most 1 runs the conditional half only; above 1 mixes in the negative prompt', async (t) => {
  const conditional = await run({ model: model('sd-tiny'), guidance: 1 });
  const none = await run({ model: model('sd-tiny'), guidance: 0.5 });
  t.same(none.map(digest), conditional.map(digest), 'guidance 0.5 and 1 both use the conditional prediction alone');
  const guided = await run({ model: model('sd-tiny'), guidance: 4 });
  const negative = await run({ model: model('sd-tiny'), guidance: 4, negativePrompt: 'lateral view' });
  t.notSame(digest(guided[0]), digest(conditional[0]));
  t.notSame(digest(negative[0]), digest(guided[0]), 'the negative prompt changes the image');
  t.equal(negative[0]!.meta!['negativePrompt'], 'lateral view');
  const otherPrompt = await run({ model: model('sd-tiny') }, [request('s0', 'Right upper lobe pneumonia.', 100)]);
  t.notSame(digest(otherPrompt[0]), digest(guided[0]), 'the prompt changes the image (same seed)');
});

t.test('an image depends on its seed only: not on the batch, its place in it, the UNet batch or concurrent calls', async (t) => {
  for (const [scheduler, eta] of [['euler-a', 0], ['ddim', 1], ['pndm', 0]] as const) {
    const options = { model: model('sd-tiny'), scheduler, eta };
    const together = await run(options);
    const alone = await run(options, [requests[2]!]);
    t.same(digest(alone[0]), digest(together[2]), `${scheduler}: alone = third of three`);
    const reordered = await run(options, [requests[2]!, requests[0]!]);
    t.same(digest(reordered[0]), digest(together[2]), `${scheduler}: first of two = third of three`);
    t.same(digest(reordered[1]), digest(together[0]));
    const grouped = await run({ ...options, unetBatch: 2 });
    t.same(grouped.map(digest), together.map(digest), `${scheduler}: UNet groups of 2`);
    const again = await run(options);
    t.same(again.map(digest), together.map(digest), `${scheduler}: the same bytes again`);
    t.notSame(digest((await run(options, [request('s2', PROMPTS[2]!, 999)]))[0]), digest(together[2]), `${scheduler}: another seed, another image`);
  }
  const generator = await createOnnxSdGenerator({ model: model('sd-tiny'), size: 64, steps: 3, threads: 1, unetBatch: 1, scheduler: 'euler-a' });
  t.teardown(() => generator.close());
  const [first, second] = await Promise.all([generator.generate(requests.slice(0, 2)), generator.generate(requests.slice(2))]);
  const sequential = await generator.generate(requests);
  t.same([...first!, ...second!].map((image) => digest(image as GeneratedImage)), sequential.map((image) => digest(image as GeneratedImage)), 'overlapping calls give the same images');
});

t.test('groups move through the three stages together, each model on its own thread: text encoding runs ahead, decoding overlaps the UNet', async (t) => {
  // The models run on worker threads: their native runs, as the workers report them, overlap in time.
  const runs: SdRun[] = [];
  const stop = watchSdRuns((run) => runs.push(run));
  t.teardown(stop);
  const batch = [...requests, request('s3', PROMPTS[0]!, 7), request('s4', PROMPTS[1]!, 8), request('s5', PROMPTS[2]!, 9)];
  // 256 px: the decoder takes long enough for the next group's UNet steps to start beside it.
  const images = await run({ model: model('sd-tiny'), unetBatch: 1, steps: 10, size: 256 }, batch);
  t.equal(images.length, 6);
  const of = (kind: SdRun['kind']): SdRun[] => runs.filter((run) => run.kind === kind);
  t.equal(of('unet').length, 6 * Number(images[0]!.meta!['unetCalls']), 'one UNet run per call and group');
  t.equal(of('vae').length, 6, 'one decoder run per group');
  t.equal(of('text').length, 6 + 1, 'one text encoder run per group, and one for the negative prompt');
  // Text runs are short (the tiny encoder's are over before the UNet's thread starts its first
  // step): the next groups' prompts are encoded without waiting for the first group's denoising.
  const unetCalls = Number(images[0]!.meta!['unetCalls']);
  const firstGroupEnd = of('unet').sort((a, b) => a.start - b.start)[unetCalls - 1]!.end;
  const encodedEarly = of('text').filter((text) => text.start < firstGroupEnd).length;
  t.ok(encodedEarly > 2, `later groups are encoded before the first is denoised (${encodedEarly} of ${of('text').length} text runs, 2 for the first group)`);
  // Decoding at 256 px takes several UNet steps: the native runs overlap in time.
  const overlapping = of('vae').filter((vae) => of('unet').some((unet) => vae.start < unet.end && unet.start < vae.end)).length;
  t.ok(overlapping > 0, `decoding runs while the UNet runs (${overlapping} of ${of('vae').length})`);
});

t.test('--channels 3 keeps the decoder RGB; grayscale is the mean of R, G and B', async (t) => {
  const [gray] = await run({ model: model('sd-tiny') }, [requests[0]!]);
  const [rgb] = await run({ model: model('sd-tiny'), channels: 3 }, [requests[0]!]);
  t.same([rgb!.width, rgb!.height, rgb!.channels], [64, 64, 3]);
  t.equal(rgb!.pixels.length, 64 * 64 * 3);
  let worst = 0;
  let colour = 0;
  for (let p = 0; p < 64 * 64; p++) {
    const [r, g, b] = [rgb!.pixels[3 * p]!, rgb!.pixels[3 * p + 1]!, rgb!.pixels[3 * p + 2]!];
    worst = Math.max(worst, Math.abs((r + g + b) / 3 - gray!.pixels[p]!));
    colour += Math.abs(r - g) + Math.abs(g - b);
  }
  t.ok(worst <= 1, `gray within rounding of the RGB mean (worst ${worst})`);
  t.ok(colour > 0, 'the tiny decoder makes colour, which RGB keeps');
});

t.test('a model with a fixed batch and size is run that many rows at a time, with the same images', async (t) => {
  const dir = t.testdir({});
  const fixedVariant = { ...TINY_SD_VARIANTS[0]!, folder: 'sd-tiny-static', fixedShapes: true };
  for (const [name, bytes] of buildTinySd(join(fixtures, 'tokenizer'), [fixedVariant])) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  }
  const staticImages = await run({ model: join(dir, 'sd-tiny-static') });
  const dynamicImages = await run({ model: model('sd-tiny') });
  // Batch-1 runs take onnxruntime's matrix-vector kernels, whose last bits differ: the same images up to a gray level here and there.
  staticImages.forEach((image, i) => t.ok(meanAbsDifference(image.pixels, dynamicImages[i]!.pixels) < 0.05, `image ${i} as with the symbolic batch`));
  const alone = await run({ model: join(dir, 'sd-tiny-static') }, [requests[1]!]);
  t.same(digest(alone[0]), digest(staticImages[1]), 'a fixed batch gives the same bytes whatever the batch around it');
  await t.rejects(createOnnxSdGenerator({ model: join(dir, 'sd-tiny-static'), size: 128, threads: 1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'size', message: /latents of height 8, so images of 64 px/ });
});

t.test('a folder that does not fit gets an error naming the file or input', async (t) => {
  await t.rejects(createOnnxSdGenerator({ model: 'no/such/model' }), { code: 'MEDSYN_ERR_NOT_FOUND', message: /no such folder/ });
  const copy = (): string => {
    const dir = t.testdir({});
    cpSync(model('sd-tiny'), dir, { recursive: true });
    return dir;
  };
  let dir = copy();
  rmSync(join(dir, 'unet', 'model.onnx'));
  await t.rejects(createOnnxSdGenerator({ model: dir }), { code: 'MEDSYN_ERR_NOT_FOUND', file: join(dir, 'unet', 'model.onnx'), message: /unet\/model\.onnx is missing/ });
  dir = copy();
  rmSync(join(dir, 'model_index.json'));
  await t.rejects(createOnnxSdGenerator({ model: dir }), { code: 'MEDSYN_ERR_NOT_FOUND', message: /model_index\.json is missing/ });
  dir = copy();
  copyFileSync(join(dir, 'vae_decoder', 'model.onnx'), join(dir, 'unet', 'model.onnx'));
  await t.rejects(createOnnxSdGenerator({ model: dir }), { code: 'MEDSYN_ERR_BAD_MODEL', file: join(dir, 'unet', 'model.onnx'), message: /takes input latent_sample that medsyn cannot feed/ });
  dir = copy();
  copyFileSync(join(fixtures, 'clip-tiny', 'onnx', 'text_model.onnx'), join(dir, 'text_encoder', 'model.onnx'));
  await t.rejects(createOnnxSdGenerator({ model: dir }), { code: 'MEDSYN_ERR_BAD_MODEL', message: /text_encoder\/model\.onnx: it takes input attention_mask/ });
  dir = copy();
  copyFileSync(join(fixtures, 'vit-tiny', 'onnx', 'model.onnx'), join(dir, 'vae_decoder', 'model.onnx'));
  await t.rejects(createOnnxSdGenerator({ model: dir }), { code: 'MEDSYN_ERR_BAD_MODEL', message: /vae_decoder\/model\.onnx: .*pixel_values/ });
  dir = copy();
  writeFileSync(join(dir, 'vae_decoder', 'config.json'), '{"scaling_factor": -1}');
  await t.rejects(createOnnxSdGenerator({ model: dir }), { code: 'MEDSYN_ERR_BAD_MODEL', message: /scaling_factor must be a positive number/ });
  dir = copy();
  writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), 'not json');
  await t.rejects(createOnnxSdGenerator({ model: dir }), { code: 'MEDSYN_ERR_BAD_MODEL', message: /scheduler_config\.json/ });
  dir = copy();
  rmSync(join(dir, 'tokenizer', 'vocab.json'));
  await t.rejects(createOnnxSdGenerator({ model: dir }), { code: 'MEDSYN_ERR_BAD_TOKENIZER', message: /vocab\.json is missing/ });
  t.equal(readFileSync(join(model('sd-tiny'), 'model_index.json'), 'utf8').length > 0, true, 'the fixture is untouched');
});

t.test('bad options are named', async (t) => {
  const sd = model('sd-tiny');
  for (const [options, option] of [
    [{ size: 60 }, 'size'],
    [{ steps: 0 }, 'steps'],
    [{ guidance: -1 }, 'guidance'],
    [{ channels: 2 }, 'channels'],
    [{ scheduler: 'lms' }, 'scheduler'],
    [{ device: 'tpu' }, 'device'],
    [{ unetBatch: 0 }, 'unetBatch'],
  ] as const) {
    await t.rejects(createOnnxSdGenerator({ model: sd, ...(options as object) }), { code: 'MEDSYN_ERR_INVALID_OPTION', option }, JSON.stringify(options));
  }
  await t.rejects(createGenerator({ backend: 'onnx' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'model' });
  const generator = await createGenerator({ backend: 'onnx', model: sd, size: 64, steps: 2 });
  t.match(generator, { backend: 'onnx', model: 'sd-tiny' });
  await generator.close();
});

t.test('--device cuda without the CUDA provider fails with what to install, never falling back to the CPU', async (t) => {
  for (const device of ['cuda', 'cuda:1']) {
    await t.rejects(createOnnxSdGenerator({ model: model('sd-tiny'), device }), {
      code: 'MEDSYN_ERR_PROVIDER_UNAVAILABLE',
      option: 'device',
      message: /Cannot use device cuda: .*ONNXRUNTIME_NODE_INSTALL=cuda12/,
    });
  }
});

t.test('the model threads: runs are reported per model, and a closed generator fails its calls instead of hanging', async (t) => {
  const runs: SdRun[] = [];
  const stop = watchSdRuns((run) => runs.push(run));
  const generator = await createOnnxSdGenerator({ model: model('sd-tiny'), size: 64, steps: 2, threads: 1, scheduler: 'ddim' });
  const images = await generator.generate(requests.slice(0, 2));
  stop();
  t.equal(images.length, 2);
  t.same([...new Set(runs.map((run) => run.kind))].sort(), ['text', 'unet', 'vae']);
  t.ok(runs.every((run) => run.end >= run.start && Math.abs(run.start - Date.now()) < 60_000), 'runs are times since the epoch, start before end');
  await generator.close();
  await generator.close();
  await t.rejects(generator.generate(requests.slice(0, 1)), { code: 'MEDSYN_ERR_SESSION_FAILED', message: /text_encoder\/model\.onnx: the model was released/ });
  const again = await createOnnxSdGenerator({ model: model('sd-tiny'), size: 64, steps: 2, threads: 1, scheduler: 'ddim' });
  t.teardown(() => again.close());
  t.same((await again.generate(requests.slice(0, 2))).map((image) => digest(image as GeneratedImage)), images.map((image) => digest(image as GeneratedImage)), 'a generator opened on the released threads gives the same images');
});

t.test('the UNet thread queues the jobs it is sent, and starting latents drawn on the text thread give the same loop', async (t) => {
  const sd = await loadSdModel(model('sd-tiny'), { intraOpThreads: 1 });
  t.teardown(() => sd.release());
  const states = await sd.encodeText(PROMPTS.slice(0, 2).map((prompt) => sd.tokenizer.encodePadded(prompt)));
  const latentShape: [number, number, number] = [4, 8, 8];
  const job = (seeds: number[], latents?: Float32Array) => ({
    seeds,
    textStates: states.slice(),
    ...(latents ? { latents } : {}),
    latentShape,
    scheduler: { name: 'dpmpp-2m' as const, config: sd.schedulerConfig, steps: 3, eta: 0, karras: undefined },
    guidance: 1,
    guided: false,
  });
  const drawn = await sd.drawLatents([5, 6], 4 * 8 * 8, 1);
  t.equal(drawn.length, 2 * 4 * 8 * 8);
  const doubled = await sd.drawLatents([5, 6], 4 * 8 * 8, 2);
  t.same(doubled, drawn.map((value) => value * 2), 'times the initial sigma');
  const own = await sd.denoise(job([5, 6]));
  const fromText = await sd.denoise(job([5, 6], drawn.slice()));
  t.same(fromText, own, 'latents drawn on the text thread = the UNet thread\'s own draws');
  // Three jobs sent at once run one after another on the UNet's thread, each as alone.
  const other = await sd.denoise(job([7, 8]));
  const together = await Promise.all([sd.denoise(job([5, 6])), sd.denoise(job([7, 8])), sd.denoise(job([5, 6], drawn.slice()))]);
  t.same(together, [own, other, own], 'queued jobs give what each gives alone');
  await t.rejects(sd.denoise(job([5, 6], new Float32Array(3))), /3 starting latents/, 'starting latents of the wrong size are refused');
});
