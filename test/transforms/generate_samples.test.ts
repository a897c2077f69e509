import t from 'tap';
import type { GeneratedImage, GenerationMiss, GenerationRequest, Generator } from '../../models/generator.js';
import { createPhantomGenerator } from '../../models/phantom_generator.js';
import { deriveSeed } from '../../models/seeded_random.js';
import { isReject, type CleanReport, type Reject } from '../../records.js';
import type { Sample } from '../../streams/sample.js';
import { generateSamples, type SampleMetadata } from '../../transforms/generate_samples.js';

function report(id: string, labels: CleanReport['labels'] = {}, prompt = `Report ${id}.`): CleanReport {
  return { id, subjectId: 'p1', source: `in:${id}`, sections: { impression: prompt }, sectionUsed: 'impression', prompt, caption: `${prompt} Caption.`, labels, attributes: {} };
}

const REPORTS = [
  report('s1', { noFinding: 1 }),
  report('s2', { pleuralEffusion: 1 }),
  report('s3', { cardiomegaly: 1 }),
  report('s4', { pneumothorax: 1 }),
  report('s5', { edema: 1 }),
  report('s6', { supportDevices: 1 }, 'ET tube in place.'),
  report('s7', { consolidation: 1 }),
];

async function collect(items: AsyncIterable<Sample | Reject>) {
  const samples: Sample[] = [];
  const rejects: Reject[] = [];
  for await (const item of items) {
    if (isReject(item)) rejects.push(item);
    else samples.push(item);
  }
  return { samples, rejects };
}

const meta = (sample: Sample) => JSON.parse(Buffer.from(sample.parts.json!).toString('utf8')) as SampleMetadata;
/** A sample without its timing, which is the only part that differs between runs. */
const comparable = (sample: Sample) => ({ key: sample.key, png: Buffer.from(sample.parts.png!).toString('base64'), txt: Buffer.from(sample.parts.txt!).toString(), json: { ...meta(sample), generationMs: 0 } });

/** A generator that records its calls, can fail a batch and can miss an image. */
function fakeGenerator(options: { failOn?: string; missOn?: string; short?: boolean } = {}) {
  const calls: string[][] = [];
  const generator: Generator = {
    backend: 'fake',
    model: 'fake-1',
    async generate(requests: readonly GenerationRequest[]) {
      calls.push(requests.map((request) => `${request.key}/${request.variant}`));
      if (requests.some((request) => request.key === options.failOn)) throw new Error('device lost');
      const results: Array<GeneratedImage | GenerationMiss> = requests.map((request) =>
        request.key === options.missOn
          ? { miss: { reason: 'missing_image', message: 'no image' } }
          : { pixels: new Uint8Array(16).fill(request.seed % 256), width: 4, height: 4, channels: 1, meta: { device: 'test' } },
      );
      return options.short ? results.slice(1) : results;
    },
    async close() {},
  };
  return { generator, calls };
}

t.test('generateSamples gives the same samples whatever the batch size', async (t) => {
  const generator = await createPhantomGenerator({ size: 32, workers: 0 });
  const runs = [];
  for (const batchSize of [1, 3, 16]) {
    const { samples, rejects } = await collect(generateSamples(REPORTS, generator, { batchSize, imagesPerReport: 2, seed: 7 }));
    t.equal(rejects.length, 0);
    runs.push(samples.map(comparable));
  }
  t.equal(runs[0]!.length, 14);
  t.same(runs[1], runs[0]);
  t.same(runs[2], runs[0]);
  t.same(runs[0]!.slice(0, 3).map((sample) => sample.key), ['s1_0', 's1_1', 's2_0']);
  const first = runs[0]![0]!.json;
  t.match(first, {
    key: 's1_0', id: 's1', subjectId: 'p1', source: 'in:s1', variant: 0, attempt: 0, seed: deriveSeed(7, 's1', 0, 0), runSeed: 7,
    prompt: 'Report s1.', caption: 'Report s1. Caption.', sectionUsed: 'impression', labels: { noFinding: 1 }, attributes: {},
    backend: 'phantom', model: 'medsyn-phantom-1', width: 32, height: 32, channels: 1, format: 'png', medsyn: String,
  });
  t.equal(runs[0]![0]!.txt, 'Report s1. Caption.');
  t.not(runs[0]![0]!.png, runs[0]![1]!.png, 'two variants, two images');
  // Another seed, other images.
  const { samples } = await collect(generateSamples(REPORTS.slice(0, 1), generator, { seed: 8 }));
  t.equal(samples[0]!.key, 's1');
  t.not(comparable(samples[0]!).png, runs[0]![0]!.png);
});

t.test('generateSamples passes rejects on, rejects reports without a prompt or key, and writes jpg parts', async (t) => {
  const { generator } = fakeGenerator();
  const upstream: Reject = { id: 's0', source: 'in:0', reason: 'no_section', message: 'no section' };
  const items = [upstream, report('s1'), report('', {}, 'x'), report('s2', {}, ' '), report('p10/s5.v2')];
  const { samples, rejects } = await collect(generateSamples(items, generator, { imageFormat: 'jpg' }));
  t.match(rejects, [upstream, { reason: 'missing_id', source: 'in:' }, { id: 's2', reason: 'no_prompt' }]);
  t.same(samples.map((sample) => sample.key), ['s1', 'p10_s5_v2']);
  t.same(Object.keys(samples[0]!.parts).sort(), ['jpg', 'json', 'txt']);
  t.match(meta(samples[1]!), { id: 'p10/s5.v2', key: 'p10_s5_v2', format: 'jpg', device: 'test', backend: 'fake' });
});

t.test('generateSamples rejects a failed batch and goes on, or stops under onError fail', async (t) => {
  const skipping = fakeGenerator({ failOn: 's2' });
  const { samples, rejects } = await collect(generateSamples(REPORTS.slice(0, 5), skipping.generator, { batchSize: 2 }));
  t.same(skipping.calls, [['s1/0', 's2/0'], ['s3/0', 's4/0'], ['s5/0']]);
  t.same(samples.map((sample) => sample.key), ['s3', 's4', 's5']);
  t.match(rejects, [
    { id: 's1', reason: 'generation_failed', message: /device lost/ },
    { id: 's2', reason: 'generation_failed' },
  ]);
  const failing = fakeGenerator({ failOn: 's2' });
  await t.rejects(collect(generateSamples(REPORTS, failing.generator, { batchSize: 2, onError: 'fail' })), {
    code: 'MEDSYN_ERR_GENERATION_FAILED',
    message: /device lost/,
  });
  const short = fakeGenerator({ short: true });
  const shortRun = await collect(generateSamples(REPORTS.slice(0, 2), short.generator, { batchSize: 2 }));
  t.match(shortRun.rejects, [{ reason: 'generation_failed', message: /returned 1 images for 2 requests/ }, { reason: 'generation_failed' }]);
});

t.test('generateSamples turns an image the backend could not make into a reject with its reason', async (t) => {
  const { generator } = fakeGenerator({ missOn: 's2' });
  const { samples, rejects } = await collect(generateSamples(REPORTS.slice(0, 3), generator, { imagesPerReport: 2 }));
  t.same(samples.map((sample) => sample.key), ['s1_0', 's1_1', 's3_0', 's3_1']);
  t.match(rejects, [{ id: 's2_0', reason: 'missing_image', source: 'in:s2' }, { id: 's2_1', reason: 'missing_image' }]);
});

t.test('generateSamples generates at most lookahead batches ahead of the consumer, and lets go of the input on an early stop', async (t) => {
  for (const lookahead of [1, 2]) {
    const { generator, calls } = fakeGenerator();
    let read = 0;
    let closed = false;
    async function* input() {
      try {
        for (let i = 0; i < 100; i++) {
          read++;
          yield report(`s${i}`);
        }
      } finally {
        closed = true;
      }
    }
    const settle = () => new Promise((resolve) => setTimeout(resolve, 50));
    const stage = generateSamples(input(), generator, { batchSize: 4, lookahead });
    await stage.next();
    await settle();
    // The batch being taken, `lookahead` checked and waiting, and one generated but not yet checked.
    t.equal(calls.length, 2 + lookahead, `lookahead ${lookahead}: the batch being taken and ${1 + lookahead} more`);
    t.equal(read, 4 * (2 + lookahead));
    for (let i = 0; i < 3; i++) await stage.next();
    await settle();
    t.equal(calls.length, 2 + lookahead, `lookahead ${lookahead}: nothing more until the first batch is taken whole`);
    await stage.next();
    await settle();
    t.equal(calls.length, 3 + lookahead);
    await stage.return(undefined);
    t.ok(closed, 'the input was closed');
    t.ok(read <= 4 * (3 + lookahead));
  }
});

t.test('generateSamples keeps up to concurrentBatches generate calls in flight and still emits in input order', async (t) => {
  const run = async (concurrentBatches: number | undefined) => {
    let inFlight = 0;
    let most = 0;
    const generator: Generator = {
      backend: 'fake',
      model: 'fake-1',
      ...(concurrentBatches !== undefined ? { concurrentBatches } : {}),
      async generate(requests: readonly GenerationRequest[]) {
        inFlight++;
        most = Math.max(most, inFlight);
        // Later batches finish sooner: the order must come from the pipeline, not from timing.
        await new Promise((resolve) => setTimeout(resolve, 40 - Math.min(30, Number(requests[0]!.key.slice(1)))));
        inFlight--;
        return requests.map((request) => ({ pixels: new Uint8Array(16).fill(request.seed % 256), width: 4, height: 4, channels: 1 as const }));
      },
      async close() {},
    };
    const reports = Array.from({ length: 24 }, (_, i) => report(`s${i}`));
    const { samples, rejects } = await collect(generateSamples(reports, generator, { batchSize: 4, seed: 3 }));
    t.equal(rejects.length, 0);
    return { most, samples: samples.map(comparable) };
  };
  const one = await run(undefined);
  t.equal(one.most, 1, 'one call at a time by default');
  const three = await run(3);
  t.equal(three.most, 3, 'three calls in flight when the backend takes three');
  t.same(three.samples.map((s) => ({ ...s, json: { ...s.json, generationMs: 0 } })), one.samples.map((s) => ({ ...s, json: { ...s.json, generationMs: 0 } })), 'the same samples in the same order');
});

t.test('generateSamples checks its options', async (t) => {
  const { generator } = fakeGenerator();
  for (const [options, option] of [
    [{ batchSize: 0 }, 'batchSize'],
    [{ imagesPerReport: 1.5 }, 'imagesPerReport'],
    [{ seed: -1 }, 'seed'],
    [{ onError: 'retry' }, 'onError'],
    [{ lookahead: 0 }, 'lookahead'],
    [{ imageFormat: 'bmp' }, 'imageFormat'],
  ] as const) {
    await t.rejects(collect(generateSamples([], generator, options as never)), { code: 'MEDSYN_ERR_INVALID_OPTION', option });
  }
  t.same(await collect(generateSamples([], generator)), { samples: [], rejects: [] });
});

t.test('generateSamples with quality checks regenerates failures with the next seed and records the verdict and attempts', async (t) => {
  const { QualityFilter } = await import('../../transforms/quality_filter.js');
  const { renderPhantom } = await import('../../models/render_phantom.js');
  const { phantomFindings } = await import('../../models/phantom_findings.js');
  const SIZE = 64;
  const calls: string[][] = [];
  // s2 is blank at its first attempt, s3 always, s5 repeats s1's image at its first attempt.
  const generator: Generator = {
    backend: 'flaky',
    model: 'flaky-1',
    async generate(requests) {
      calls.push(requests.map((request) => `${request.key}@${request.attempt}`));
      return requests.map((request) => {
        const blank = (request.key === 's2' && request.attempt === 0) || request.key === 's3';
        const seed = request.key === 's5' && request.attempt === 0 ? deriveSeed(0, 's1', 0, 0) : request.seed;
        const pixels = blank ? new Uint8Array(SIZE * SIZE).fill(90) : renderPhantom(phantomFindings({ labels: {}, attributes: {}, caption: '' }), seed, SIZE);
        return { pixels, width: SIZE, height: SIZE, channels: 1 as const };
      });
    },
    async close() {},
  };
  const runs = [];
  for (const batchSize of [1, 2, 8]) {
    const verdicts: unknown[] = [];
    const { samples, rejects } = await collect(
      generateSamples(REPORTS.slice(0, 6), generator, { batchSize, qualityFilter: new QualityFilter(), retries: 2, onVerdict: (verdict) => verdicts.push(verdict) }),
    );
    t.same(samples.map((sample) => [sample.key, meta(sample).attempt, meta(sample).attempts]), [
      ['s1', 0, 1],
      ['s2', 1, 2],
      ['s4', 0, 1],
      ['s5', 1, 2],
      ['s6', 0, 1],
    ], `batch size ${batchSize}`);
    t.match(rejects, [{ id: 's3', reason: 'quality_failed', message: /after 3 attempts: blank, .*low_contrast/ }]);
    t.equal(verdicts.length, 6);
    const s2 = meta(samples[1]!);
    t.match(s2.quality, { passed: true, reasons: [], phash: /^[0-9a-f]{16}$/ });
    t.equal(s2.seed, deriveSeed(0, 's2', 0, 1), 'the kept attempt’s seed');
    runs.push(samples.map(comparable));
  }
  t.same(runs[1], runs[0]);
  t.same(runs[2], runs[0]);
  t.ok(calls.flat().includes('s3@2') && !calls.flat().includes('s3@3'), 'two retries, no more');
  const noRetry = await collect(generateSamples(REPORTS.slice(1, 2), generator, { qualityFilter: new QualityFilter(), retries: 0 }));
  t.match(noRetry.rejects, [{ id: 's2', reason: 'quality_failed', message: /after 1 attempt: / }]);
  const fixed = await collect(generateSamples(REPORTS.slice(2, 3), { ...generator, usesSeed: false }, { qualityFilter: new QualityFilter() }));
  t.match(fixed.rejects, [{ id: 's3', reason: 'quality_failed', message: /after 1 attempt/ }], 'a backend whose images do not depend on the seed is not retried');
});
