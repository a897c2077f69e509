import t from 'tap';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { isMiss, type GeneratedImage, type GenerationRequest } from '../../models/generator.js';
import { createHttpGenerator, type HttpGeneratorOptions } from '../../models/http_generator.js';
import { deriveSeed } from '../../models/seeded_random.js';
import { decodeImages, parseModelMetadata, planInference, seedFor, splitInferResponse } from '../../models/_open_inference.js';
import type { CleanReport, Reject } from '../../records.js';
import type { Sample } from '../../streams/sample.js';
import { generateSamples } from '../../transforms/generate_samples.js';
import { DEFAULT_INPUTS, fakeImage, startFakeInferenceServer, type FakeServer, type FakeServerOptions } from './_fake_inference_server.js';

const TOKEN = 'Bearer s3cret-t0ken-xyz';
/** What a helper needs of a tap test. */
type Teardown = { teardown: (fn: () => unknown) => void };

const FAST = { retryDelay: 1, maxRetryDelay: 5 } satisfies Partial<HttpGeneratorOptions>;

function report(id: string, prompt = `Impression of ${id}: no acute cardiopulmonary process.`): CleanReport {
  return { id, source: 'test', sections: {}, sectionUsed: 'impression', prompt, caption: prompt, labels: {}, attributes: {} };
}

function requests(count: number, offset = 0): GenerationRequest[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `s${1000 + offset + i}`;
    return { key: id, report: report(id), variant: 0, attempt: 0, seed: deriveSeed(7, id, 0, 0) };
  });
}

async function serve(t: Teardown, options: FakeServerOptions = {}): Promise<FakeServer> {
  const server = await startFakeInferenceServer(options);
  t.teardown(() => server.close());
  return server;
}

async function start(t: Teardown, server: FakeServer, options: Partial<HttpGeneratorOptions> = {}) {
  const generator = await createHttpGenerator({ endpoint: server.url, model: 'roentgen', ...FAST, ...options });
  t.teardown(() => generator.close());
  return generator;
}

/** The gray phantom the fake server draws for each request. */
function expected(batch: readonly GenerationRequest[], size = 16): Buffer[] {
  return batch.map((request) => Buffer.from(fakeImage(request.report.prompt, request.seed, size)));
}

function pixelsOf(results: ReadonlyArray<GeneratedImage | { miss: unknown }>): Buffer[] {
  return results.map((result) => Buffer.from((result as GeneratedImage).pixels));
}

t.test('createHttpGenerator checks the server and model, then sends prompts and seeds as JSON tensors', async (t) => {
  const server = await serve(t, { versions: ['3'] });
  const generator = await start(t, server, { steps: 20, guidance: 4.5 });
  t.equal(generator.backend, 'http');
  t.equal(generator.model, 'roentgen@3');
  t.same(server.paths.slice(0, 5), ['GET /v2/health/ready', 'GET /v2', 'GET /v2/models/roentgen', 'GET /v2/models/roentgen/ready', 'GET /v2/models/roentgen/config']);

  const batch = requests(5);
  const results = await generator.generate(batch);
  t.equal(results.length, 5);
  t.same(pixelsOf(results), expected(batch), 'the images of each request, in order');
  t.match(results[0], { width: 16, height: 16, channels: 1, meta: { endpoint: server.url, modelName: 'roentgen', modelVersion: '3', steps: 20, guidance: 4.5 } });
  t.equal(server.calls.length, 1, 'one request for the batch (no max_batch_size)');
  const [call] = server.calls;
  t.same(call!.prompts, batch.map((request) => request.report.prompt));
  t.same(call!.seeds, batch.map((request) => request.seed), "each image's own seed, in order");
  t.same(call!.inputs['num_inference_steps'], { name: 'num_inference_steps', shape: [5, 1], datatype: 'INT32', data: [20, 20, 20, 20, 20] });
  t.same(call!.inputs['guidance_scale']!.shape, [5, 1]);
  t.equal(call!.binaryRequested, false, 'no binary output from a server without the extension');
  t.same(await generator.generate([]), []);
});

t.test('createHttpGenerator reads binary tensor data in every layout and datatype the server declares', async (t) => {
  const cases: FakeServerOptions[] = [
    { layout: 'bhwc', channels: 3, datatype: 'UINT8' },
    { layout: 'bchw', channels: 3, datatype: 'FP32' },
    { layout: 'bhwc', channels: 1, datatype: 'FP16' },
    { layout: 'bchw', channels: 4, datatype: 'UINT8' },
    { layout: 'bhw', datatype: 'FP32', size: 20 },
  ];
  for (const options of cases) {
    const server = await serve(t, { ...options, binaryExtension: true });
    const generator = await start(t, server);
    const batch = requests(3);
    const results = await generator.generate(batch);
    const label = `${options.layout} ${options.datatype} ×${options.channels ?? 1}`;
    t.equal(server.calls[0]!.binaryRequested, true, `${label}: binary output asked for`);
    t.same(pixelsOf(results), expected(batch, options.size), `${label}: the same gray images`);
    t.match(results[0], { width: options.size ?? 16, height: options.size ?? 16, channels: 1 });
  }
  // JSON with an RGB answer, and RGB kept with channels: 3.
  const server = await serve(t, { layout: 'bhwc', channels: 3 });
  const rgb = await start(t, server, { channels: 3, binary: false });
  const [image] = (await rgb.generate(requests(1))) as GeneratedImage[];
  t.equal(image!.channels, 3);
  const gray = expected(requests(1))[0]!;
  t.same(Buffer.from(image!.pixels.filter((_, i) => i % 3 === 1)), gray, 'each channel holds the gray value');
});

t.test('createHttpGenerator splits a batch by max_batch_size, keeps at most `concurrency` requests in flight and the request order', async (t) => {
  // Later requests answer first.
  const server = await serve(t, { maxBatchSize: 2, delay: (call) => 200 - call * 30 });
  const generator = await start(t, server, { concurrency: 2 });
  const batch = requests(7);
  const results = await generator.generate(batch);
  t.same(pixelsOf(results), expected(batch));
  t.same(server.calls.map((call) => call.prompts.length).sort(), [1, 2, 2, 2]);
  t.same(server.calls.flatMap((call) => call.seeds).sort(), batch.map((request) => request.seed).sort(), 'each seed sent once');
  t.equal(server.maxInFlight(), 2, 'two in flight, never more');

  // Two batches at once (the pipeline regenerates while the next batch generates) share the limit.
  const shared = await serve(t, { delay: () => 30 });
  const limited = await start(t, shared, { concurrency: 3, maxBatch: 1 });
  const [a, b] = await Promise.all([limited.generate(requests(4)), limited.generate(requests(4, 10))]);
  t.same(pixelsOf(a), expected(requests(4)));
  t.same(pixelsOf(b), expected(requests(4, 10)));
  t.equal(shared.calls.length, 8);
  t.ok(shared.maxInFlight() <= 3, `at most 3 in flight across calls (saw ${shared.maxInFlight()})`);
});

t.test('createHttpGenerator sends a model without a batch dimension one image at a time', async (t) => {
  const server = await serve(t, {
    inputs: [
      { name: 'text_input', datatype: 'BYTES', shape: [1] },
      { name: 'random_seed', datatype: 'INT32', shape: [1] },
      { name: 'width', datatype: 'INT32', shape: [] },
      { name: 'height', datatype: 'INT32', shape: [] },
    ],
    outputs: [{ name: 'generated_image', datatype: 'UINT8', shape: [16, 16] }],
  });
  const generator = await start(t, server, { size: 16 });
  const batch = requests(3);
  const results = await generator.generate(batch);
  t.equal(server.calls.length, 3);
  t.same(server.calls.map((call) => call.inputs['width']), [0, 1, 2].map(() => ({ name: 'width', shape: [], datatype: 'INT32', data: [16] })));
  // INT32 seeds are the low 31 bits; the fake server draws from what it was sent.
  t.same(server.calls.map((call) => call.seeds[0]), batch.map((request) => request.seed % 2 ** 31));
  t.same(
    pixelsOf(results),
    batch.map((request) => Buffer.from(fakeImage(request.report.prompt, request.seed % 2 ** 31, 16))),
  );
  t.notMatch(results[0], { meta: { steps: Number } }, 'no steps recorded for a model that takes none');
});

t.test('createHttpGenerator retries 503s, dropped connections, timeouts and truncated bodies', async (t) => {
  for (const [label, fault] of [
    ['503', { status: 503, body: '{"error": "overloaded"}' }],
    ['connection reset', 'reset'],
    ['truncated body', 'truncate'],
  ] as const) {
    const server = await serve(t, { fault: (call) => (call < 2 ? fault : undefined) });
    const generator = await start(t, server);
    const batch = requests(3);
    t.same(pixelsOf(await generator.generate(batch)), expected(batch), `${label}: the images after 2 failures`);
    t.equal(server.calls.length, 3, `${label}: three attempts`);
    t.same(server.calls[2]!.seeds, server.calls[0]!.seeds, `${label}: the same request again`);
  }
  const hanging = await serve(t, { fault: (call) => (call === 0 ? 'hang' : undefined) });
  const generator = await start(t, hanging, { timeout: 300 });
  const started = performance.now();
  t.same(pixelsOf(await generator.generate(requests(2))), expected(requests(2)));
  t.ok(performance.now() - started >= 290, 'waited for the timeout');
  t.equal(hanging.calls.length, 2);
});

t.test('createHttpGenerator honours Retry-After on 429', async (t) => {
  const server = await serve(t, { fault: (call) => (call === 0 ? { status: 429, headers: { 'retry-after': '1' } } : undefined) });
  const generator = await start(t, server);
  const started = performance.now();
  await generator.generate(requests(1));
  t.ok(performance.now() - started >= 950, `waited about a second (${Math.round(performance.now() - started)} ms)`);
  t.equal(server.calls.length, 2);
});

t.test('createHttpGenerator does not retry a 400, gives up after requestRetries, and cancels the rest of the batch', async (t) => {
  const bad = await serve(t, { fault: () => ({ status: 400, body: '{"error": "unexpected shape for input prompt"}' }) });
  const generator = await start(t, bad);
  await t.rejects(generator.generate(requests(2)), {
    code: 'MEDSYN_ERR_GENERATION_FAILED',
    message: /HTTP 400: unexpected shape for input prompt \(after 1 attempt\)/,
  });
  t.equal(bad.calls.length, 1, 'sent once');

  const down = await serve(t, { fault: () => ({ status: 503 }) });
  const retrying = await start(t, down, { requestRetries: 2 });
  await t.rejects(retrying.generate(requests(1)), { code: 'MEDSYN_ERR_GENERATION_FAILED', message: /HTTP 503: injected 503 \(after 3 attempts\)/ });
  t.equal(down.calls.length, 3);

  // One sub-request fails for good: the batch fails, and the slow sibling is not waited for.
  const mixed = await serve(t, { maxBatchSize: 1, delay: (call) => (call === 1 ? 5000 : 0), fault: (call) => (call === 0 ? { status: 400 } : undefined) });
  const split = await start(t, mixed, { concurrency: 2 });
  const started = performance.now();
  await t.rejects(split.generate(requests(2)), { code: 'MEDSYN_ERR_GENERATION_FAILED' });
  t.ok(performance.now() - started < 3000, 'the sibling request was cancelled');
});

t.test('createHttpGenerator makes a malformed image a miss for its request only', async (t) => {
  const server = await serve(t, { fault: () => ({ badPixel: 1 }) });
  const generator = await start(t, server);
  const batch = requests(3);
  const results = await generator.generate(batch);
  t.notOk(isMiss(results[0]!));
  t.match(results[1], { miss: { reason: 'bad_image', message: /pixel 3 is 300/ } });
  t.same(pixelsOf([results[2]!]), expected(batch).slice(2));
});

t.test('createHttpGenerator fails at start with a clear error', async (t) => {
  const notReady = await serve(t, { notReadyFor: Infinity });
  await t.rejects(createHttpGenerator({ endpoint: notReady.url, model: 'roentgen', ...FAST, requestRetries: 1 }), {
    code: 'MEDSYN_ERR_SERVER_UNAVAILABLE',
    message: new RegExp(`${notReady.url.replace(/[.]/g, '\\.')}.*not ready.*HTTP 503: server is starting`),
  });
  const slowStart = await serve(t, { notReadyFor: 2 });
  await start(t, slowStart);
  t.pass('a server that becomes ready within the retries is used');

  const modelMissing = await serve(t, { model: 'other' });
  await t.rejects(createHttpGenerator({ endpoint: modelMissing.url, model: 'roentgen', ...FAST }), { code: 'MEDSYN_ERR_SERVER_UNAVAILABLE', message: /no model roentgen.*HTTP 404/ });
  const modelLoading = await serve(t, { modelReady: false });
  await t.rejects(createHttpGenerator({ endpoint: modelLoading.url, model: 'roentgen', ...FAST }), { code: 'MEDSYN_ERR_SERVER_UNAVAILABLE', message: /model roentgen is not ready/ });

  // A port nobody listens on.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  await t.rejects(createHttpGenerator({ endpoint: `http://127.0.0.1:${port}`, model: 'roentgen', ...FAST, requestRetries: 1 }), {
    code: 'MEDSYN_ERR_SERVER_UNAVAILABLE',
    message: /Cannot reach .*connection refused/,
  });

  const noSeed = await serve(t, { inputs: DEFAULT_INPUTS.filter((input) => input.name !== 'seed') });
  await t.rejects(createHttpGenerator({ endpoint: noSeed.url, model: 'roentgen', ...FAST }), { code: 'MEDSYN_ERR_BAD_MODEL', message: /no seed input/ });
  const unknown = await serve(t, { inputs: [...DEFAULT_INPUTS, { name: 'latents', datatype: 'FP32', shape: [-1, 4, 64, 64] }] });
  await t.rejects(createHttpGenerator({ endpoint: unknown.url, model: 'roentgen', ...FAST }), { code: 'MEDSYN_ERR_BAD_MODEL', message: /input latents/ });
  const tokens = await serve(t, { inputs: [{ name: 'prompt', datatype: 'BYTES', shape: [-1, 77] }, DEFAULT_INPUTS[1]!] });
  await t.rejects(createHttpGenerator({ endpoint: tokens.url, model: 'roentgen', ...FAST }), { code: 'MEDSYN_ERR_BAD_MODEL', message: /shape \[-1,77\]/ });
  const badOutput = await serve(t, { outputs: [{ name: 'image', datatype: 'BYTES', shape: [-1] }] });
  await t.rejects(createHttpGenerator({ endpoint: badOutput.url, model: 'roentgen', ...FAST }), { code: 'MEDSYN_ERR_BAD_MODEL', message: /output image is BYTES/ });
  const garbage = await serve(t, { metadataBody: '<html>proxy error</html>' });
  await t.rejects(createHttpGenerator({ endpoint: garbage.url, model: 'roentgen', ...FAST }), { code: 'MEDSYN_ERR_BAD_RESPONSE' });
});

t.test('createHttpGenerator sends headers on every request and never shows them', async (t) => {
  const server = await serve(t, { authorization: TOKEN, fault: (call) => (call === 0 ? { status: 500, body: JSON.stringify({ error: `boom while serving ${TOKEN} (token ${TOKEN.split(' ')[1]})` }) } : undefined) });
  const generator = await start(t, server, { headers: [`Authorization: ${TOKEN}`, 'X-Team: imaging'], requestRetries: 0 });
  const error = await generator.generate(requests(1)).catch((err: Error) => err);
  t.match(error, { code: 'MEDSYN_ERR_GENERATION_FAILED', message: /HTTP 500: boom while serving \[redacted\] \(token \[redacted\]\)/ });
  t.notMatch(String((error as Error).message), /s3cret/, 'the token is not in the message');
  t.notMatch(String((error as Error).stack), /s3cret/, 'nor in the stack');
  t.ok(server.headers.every((headers) => headers.authorization === TOKEN && headers['x-team'] === 'imaging'), 'on every request');
  const [image] = await generator.generate(requests(1));
  t.notMatch(JSON.stringify((image as GeneratedImage).meta), /s3cret/);

  // A wrong token at start: the server echoes it, the message does not.
  const wrong = await createHttpGenerator({ endpoint: server.url, model: 'roentgen', headers: { Authorization: 'Bearer wr0ng-t0ken' }, ...FAST }).catch((err: Error) => err);
  t.match(wrong, { code: 'MEDSYN_ERR_SERVER_UNAVAILABLE', message: /HTTP 401/ });
  t.notMatch((wrong as Error).message, /wr0ng/);

  // Credentials and query in the URL: used, and not shown.
  const basic = await serve(t, { authorization: `Basic ${Buffer.from('alice:pa ss').toString('base64')}` });
  const withCredentials = await start(t, basic, { endpoint: `${basic.url.replace('http://', 'http://alice:pa%20ss@')}/?api-key=k3y-value` });
  const [fromBasic] = await withCredentials.generate(requests(1));
  t.match((fromBasic as GeneratedImage).meta, { endpoint: basic.url });
  t.ok(basic.paths.every((path) => path.endsWith('?api-key=k3y-value')), 'the query on every request');
  t.notMatch(JSON.stringify((fromBasic as GeneratedImage).meta), /alice|k3y/);

  await t.rejects(createHttpGenerator({ endpoint: server.url, model: 'roentgen', headers: ['Authorization Bearer s3cret'] }), { code: 'MEDSYN_ERR_INVALID_OPTION', message: /header 1 is not 'Name: value'/ });
  const invalid = await createHttpGenerator({ endpoint: server.url, model: 'roentgen', headers: { Authorization: 'Bearer s3cret\r\nX: y' } }).catch((err: Error) => err);
  t.match(invalid, { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'headers' });
  t.notMatch((invalid as Error).message, /s3cret/);
});

t.test('createHttpGenerator checks its options', async (t) => {
  const base = { endpoint: 'http://127.0.0.1:1', model: 'm' };
  await t.rejects(createHttpGenerator({ ...base, endpoint: 'ftp://host' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'endpoint' });
  await t.rejects(createHttpGenerator({ ...base, endpoint: 'not a url' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'endpoint' });
  await t.rejects(createHttpGenerator({ ...base, model: '' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'model' });
  await t.rejects(createHttpGenerator({ ...base, concurrency: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'concurrency' });
  await t.rejects(createHttpGenerator({ ...base, requestRetries: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'requestRetries' });
  await t.rejects(createHttpGenerator({ ...base, guidance: Number.NaN }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'guidance' });
  await t.rejects(createHttpGenerator({ ...base, headers: { Host: 'x' } }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'headers' });
});

t.test('createHttpGenerator in generateSamples: a batch that fails is rejected, the run goes on, nothing is lost or repeated', async (t) => {
  // Calls are batches of 2; the second batch's request always fails.
  const failing = new Set(['s1002', 's1003']);
  const server = await serve(t, {
    fault: (_, prompts) => (prompts.some((prompt) => [...failing].some((id) => prompt.includes(id))) ? { status: 400, body: '{"error": "prompt rejected"}' } : undefined),
    delay: (call) => (call % 2 === 0 ? 20 : 0),
  });
  const generator = await start(t, server, { headers: [`Authorization: ${TOKEN}`] });
  const items: Array<Sample | Reject> = [];
  for await (const item of generateSamples(requests(6).map((request) => request.report), generator, { batchSize: 2, seed: 7 })) items.push(item);
  t.same(
    items.map((item) => ('key' in item ? item.key : `${item.id}:${item.reason}`)),
    ['s1000', 's1001', 's1002:generation_failed', 's1003:generation_failed', 's1004', 's1005'],
  );
  const reject = items[2] as Reject;
  t.match(reject.message, /HTTP 400: prompt rejected/);
  const sample = items[0] as Sample;
  const meta = JSON.parse(Buffer.from(sample.parts['json']!).toString('utf8'));
  t.match(meta, { backend: 'http', model: 'roentgen@1', endpoint: server.url, modelName: 'roentgen', modelVersion: '1', steps: 50, guidance: 4, seed: deriveSeed(7, 's1000', 0, 0) });
  t.notMatch(JSON.stringify(items.map((item) => ('parts' in item ? Buffer.from(item.parts['json']!).toString() : item.message))), /s3cret/);
});

t.test('the Open Inference codec reads layouts, datatypes and broken answers on its own', async (t) => {
  const plan = planInference(
    { name: 'm', versions: [], inputs: DEFAULT_INPUTS, outputs: [{ name: 'image', datatype: 'FP32', shape: [-1, -1, -1, -1] }] },
    undefined,
    'here',
  );
  const answer = (output: Record<string, unknown>, binary?: Uint8Array) => ({ header: { outputs: [{ name: 'image', datatype: 'FP32', ...output }] }, ...(binary ? { binary } : {}) });
  // Channels last when the last dimension can be channels, first when only the first can.
  const hwc = decodeImages(answer({ shape: [1, 2, 5, 3], data: Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? 1 : 0)) }), plan, 1, 3, 'here');
  t.match(hwc[0], { width: 5, height: 2, channels: 3 });
  t.same([...(hwc[0] as GeneratedImage).pixels.slice(0, 3)], [255, 0, 0]);
  const chw = decodeImages(answer({ shape: [1, 3, 2, 5], data: [...Array(10).fill(1), ...Array(20).fill(0)] }), plan, 1, 3, 'here');
  t.match(chw[0], { width: 5, height: 2 });
  t.same([...(chw[0] as GeneratedImage).pixels.slice(0, 3)], [255, 0, 0]);
  // Values outside [0, 1] are clipped; a NaN makes a miss for that image only.
  const clipped = decodeImages(answer({ shape: [2, 1, 2], data: [-0.5, 1.5, 0.5, Number.NaN] }), plan, 2, 1, 'here');
  t.same([...(clipped[0] as GeneratedImage).pixels], [0, 255]);
  t.match(clipped[1], { miss: { reason: 'bad_image' } });
  // Half floats: 0, 0.5, 1, a subnormal; and an unbatched [H, W] for one image.
  const halfPlan = { ...plan, output: { ...plan.output, datatype: 'FP16' } };
  const halves = Buffer.alloc(8);
  [0x0000, 0x3800, 0x3c00, 0x0001].forEach((bits, i) => halves.writeUInt16LE(bits, i * 2));
  const half = decodeImages({ header: { outputs: [{ name: 'image', datatype: 'FP16', shape: [2, 2], parameters: { binary_data_size: 8 } }] }, binary: halves }, halfPlan, 1, 1, 'here');
  t.same([...(half[0] as GeneratedImage).pixels], [0, 128, 255, 0]);

  for (const [label, response, count] of [
    ['wrong batch size', answer({ shape: [3, 2, 2], data: Array(12).fill(0) }), 2],
    ['too few values', answer({ shape: [1, 2, 2], data: [0, 0, 0] }), 1],
    ['no such output', { header: { outputs: [{ name: 'other', shape: [1, 2, 2], data: [0, 0, 0, 0] }] } }, 1],
    ['binary size past the end', answer({ shape: [1, 2, 2], parameters: { binary_data_size: 64 } }, new Uint8Array(16)), 1],
    ['binary size without binary', answer({ shape: [1, 2, 2], parameters: { binary_data_size: 16 } }), 1],
    ['odd binary length', answer({ shape: [1, 1, 1], parameters: { binary_data_size: 3 } }, new Uint8Array(3)), 1],
    ['no outputs', { header: {} }, 1],
  ] as const) {
    t.throws(() => decodeImages(response, plan, count, 1, 'here'), { code: 'MEDSYN_ERR_BAD_RESPONSE' }, label);
  }

  const body = Buffer.concat([Buffer.from('{"outputs":[]}'), Buffer.from([1, 2, 3])]);
  t.same(splitInferResponse(body, '14', 'here').binary, new Uint8Array([1, 2, 3]));
  t.throws(() => splitInferResponse(body, '99', 'here'), { code: 'MEDSYN_ERR_BAD_RESPONSE' });
  t.throws(() => splitInferResponse(body, undefined, 'here'), { code: 'MEDSYN_ERR_BAD_RESPONSE', message: /not JSON/ });

  // A lone BYTES input is the prompt whatever its name; duplicates, scalars and wrong types are refused.
  const seed = DEFAULT_INPUTS[1]!;
  const lone = planInference({ name: 'm', versions: [], inputs: [{ name: 'TEXT_IN', datatype: 'BYTES', shape: [-1, 1] }, seed], outputs: [plan.output] }, 4, 'here');
  t.match(lone, { inputs: [{ role: 'prompt', tensor: { name: 'TEXT_IN' } }, { role: 'seed' }], maxBatch: 4 });
  const refuse = (inputs: typeof DEFAULT_INPUTS, pattern: RegExp) =>
    t.throws(() => planInference({ name: 'm', versions: [], inputs, outputs: [plan.output] }, undefined, 'here'), { code: 'MEDSYN_ERR_BAD_MODEL', message: pattern });
  refuse([DEFAULT_INPUTS[0]!, seed, { name: 'seeds', datatype: 'INT64', shape: [-1] }], /two inputs take the seed/);
  refuse([{ name: 'prompt', datatype: 'BYTES', shape: [] }, seed], /prompt input prompt is a scalar/);
  refuse([DEFAULT_INPUTS[0]!, { name: 'seed', datatype: 'FP32', shape: [-1] }], /seed input seed is FP32/);
  refuse([DEFAULT_INPUTS[0]!, { name: 'seed', datatype: 'INT64', shape: [8] }], /fixed batch dimension of 8/);
  refuse([seed], /no prompt input/);
  t.equal(seedFor('INT64', 2 ** 53 - 1), 2 ** 53 - 1);
  t.equal(seedFor('UINT32', 2 ** 40 + 5), 5);
  t.equal(seedFor('INT32', 2 ** 31 + 5), 5);
  t.throws(() => parseModelMetadata({ inputs: [{ name: 'x' }], outputs: [] }, 'here'), { code: 'MEDSYN_ERR_BAD_RESPONSE', message: /inputs\[0\]/ });
});
