import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import sharp from 'sharp';
import { phantomFindings } from '../../models/phantom_findings.js';
import { renderPhantom } from '../../models/render_phantom.js';
import type { Sample } from '../../streams/sample.js';
import { decodeSamples } from '../../streams/tar_decoder.js';
import { encodeSamples } from '../../streams/tar_encoder.js';
import { formatFilterSummary, runFilter } from '../../transforms/run_filter.js';

const SIZE = 128;
const png = (pixels: Uint8Array) => sharp(pixels, { raw: { width: SIZE, height: SIZE, channels: 1 } }).toColourspace('b-w').png().toBuffer();
const phantom = (seed: number) => renderPhantom(phantomFindings({ labels: {}, attributes: {}, caption: '' }), seed, SIZE);
const json = (value: object) => Buffer.from(JSON.stringify(value));

async function tarOf(samples: Sample[]): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of encodeSamples(samples)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function filter(tar: Buffer, options: Parameters<typeof runFilter>[2] = {}) {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  const summary = await runFilter(Readable.from([tar]), out, options);
  const kept: Sample[] = [];
  for await (const sample of decodeSamples(Readable.from([Buffer.concat(chunks)]))) kept.push(sample);
  return { summary, kept };
}

t.test('runFilter keeps samples that pass, records the verdict in their JSON and rejects the rest with reasons', async (t) => {
  const first = phantom(1);
  const noisyCopy = first.map((value, i) => Math.min(255, Math.max(0, value + ((i * 7919) % 5) - 2)));
  const samples: Sample[] = [
    { key: 's1', parts: { png: await png(first), txt: Buffer.from('No acute process.'), json: json({ id: 's1', variant: 0, quality: { old: true } }) } },
    { key: 's2', parts: { png: await png(phantom(2)), txt: Buffer.from('Effusion.') } },
    { key: 's3', parts: { png: await png(new Uint8Array(SIZE * SIZE).fill(200)), json: json({ id: 's3' }) } },
    { key: 's4', parts: { png: await png(noisyCopy), json: json({ id: 's4' }) } },
    { key: 's5', parts: { txt: Buffer.from('no image') } },
    { key: 's6', parts: { png: Buffer.from('not a png at all') } },
    { key: 's7', parts: { png: await png(phantom(7)), json: Buffer.from('{broken') } },
    { key: 's8', parts: { jpg: await sharp(phantom(8), { raw: { width: SIZE, height: SIZE, channels: 1 } }).jpeg({ quality: 95 }).toBuffer(), json: json({ id: 's8' }) } },
  ];
  const dir = t.testdir({});
  const rejectsPath = join(dir, 'rejects.ndjson');
  const { summary, kept } = await filter(await tarOf(samples), { rejects: rejectsPath });
  t.same(kept.map((sample) => sample.key), ['s1', 's2', 's8']);
  const s1 = JSON.parse(Buffer.from(kept[0]!.parts.json!).toString());
  t.match(s1, { id: 's1', variant: 0, quality: { passed: true, reasons: [], width: SIZE, phash: /^[0-9a-f]{16}$/ } });
  t.notOk('old' in s1.quality, 'an earlier verdict is replaced');
  t.same(Buffer.from(kept[0]!.parts.png!), samples[0]!.parts.png, 'the image is passed on unchanged');
  t.match(JSON.parse(Buffer.from(kept[1]!.parts.json!).toString()), { key: 's2', quality: { passed: true } }, 'a sample without JSON gets one');
  t.match(summary, { read: 8, kept: 3, rejectedTotal: 5, rejected: { quality_failed: 2, bad_image: 2, bad_json: 1 }, quality: { checked: 5, passed: 3, failed: 2 } });
  const rejects = readFileSync(rejectsPath, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  t.match(rejects, [
    { id: 's3', reason: 'quality_failed', reasons: ['blank', 'low_contrast', 'low_entropy', 'blurry'], quality: { mean: 200 }, source: '-', offset: Number },
    { id: 's4', reason: 'quality_failed', reasons: ['duplicate'], quality: { duplicateOf: 's1', duplicateKind: 'report' } },
    { id: 's5', reason: 'bad_image', message: /no image/ },
    { id: 's6', reason: 'bad_image', message: /cannot decode s6\.png/ },
    { id: 's7', reason: 'bad_json' },
  ]);
  t.match(formatFilterSummary(summary), /^3 kept, 5 rejected \(bad_image 2, bad_json 1, quality_failed 2\) of 8 read in .*\nquality: 3 passed, 2 failed \(blank 1, blurry 1, duplicate 1, low_contrast 1, low_entropy 1\) of 5 checked\n  mean +min/);
});

t.test('runFilter applies new thresholds, so shards can be re-filtered', async (t) => {
  const samples: Sample[] = [];
  for (let seed = 1; seed <= 4; seed++) samples.push({ key: `s${seed}`, parts: { png: await png(phantom(seed)) } });
  const tar = await tarOf(samples);
  t.equal((await filter(tar)).kept.length, 4);
  const strict = await filter(tar, { minContrast: 200 });
  t.equal(strict.kept.length, 0);
  t.match(strict.summary.quality.reasons, { low_contrast: 4 });
  t.equal((await filter(tar, { size: 64 })).summary.quality.reasons.wrong_size, 4);
  await t.rejects(filter(tar, { concurrency: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'concurrency' });
});

t.test('runFilter scores image–caption alignment with a CLIP-style model folder and rejects misaligned samples', async (t) => {
  const clip = new URL('../../fixtures/clip-tiny', import.meta.url).pathname;
  const samples: Sample[] = [];
  for (let seed = 1; seed <= 3; seed++) samples.push({ key: `s${seed}`, parts: { png: await png(phantom(seed)), txt: Buffer.from('No acute cardiopulmonary process.') } });
  const tar = await tarOf(samples);
  const scored = await filter(tar, { alignModel: clip, minAlignment: -1 });
  t.equal(scored.kept.length, 3);
  for (const sample of scored.kept) {
    const alignment = JSON.parse(Buffer.from(sample.parts.json!).toString()).quality.alignment as number;
    t.ok(alignment >= -1 && alignment <= 1, `alignment ${alignment}`);
  }
  t.match(scored.summary.quality.scores, { alignment: { count: 3 } });
  const strict = await filter(tar, { alignModel: clip, minAlignment: 0.999 });
  t.equal(strict.kept.length, 0);
  t.match(strict.summary.quality.reasons, { misaligned: 3 });
  await t.rejects(filter(tar, { alignModel: '/no/such/model' }), { code: 'MEDSYN_ERR_NOT_FOUND' });
});
