import t from 'tap';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import sharp from 'sharp';
import { OBSERVATIONS, type CleanReport } from '../../records.js';
import { readShards } from '../../streams/shard_reader.js';
import { ShardWriter } from '../../streams/shard_writer.js';
import { decodeSamples } from '../../streams/tar_decoder.js';
import { runGenerate } from '../../transforms/run_generate.js';
import { formatReportSummary, reportStats, summarizeDataset, writeDatasetReport } from '../../transforms/dataset_report.js';
import { BoundedCounter, DatasetTally, HISTOGRAM_BINS, OTHER, sampleMetadata } from '../../transforms/_report_tally.js';
import { findChromium, loadPage, NO_CHROMIUM } from '../_chromium.js';
import { phantomReports } from '../train/_phantom_shards.js';

const json = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));

t.test('DatasetTally counts labels, reports, sizes and fixed-bin histograms', async (t) => {
  const tally = new DatasetTally();
  const png = new Uint8Array(100);
  const sample = (id: string, extra: Record<string, unknown> = {}) => ({ id, backend: 'phantom', model: 'm1', medsyn: '0.1.0', width: 64, height: 64, attempt: 0, ...extra });
  tally.add({ png, txt: new Uint8Array(5), json: json(sample('a')) }, sample('a', { labels: { cardiomegaly: 1, edema: 0 }, quality: { mean: 0, contrast: 127.9, sharpness: 0, passed: true } }));
  tally.add({ png }, sample('a', { labels: { cardiomegaly: -1 }, quality: { mean: 255, contrast: 500, sharpness: 100_000, passed: false }, attempt: 2 }));
  tally.add({ jpg: new Uint8Array(10) }, sample('b', { labels: { noFinding: 1 }, width: 32, height: 32, model: 'm2' }));
  tally.add({ txt: new Uint8Array(3) }, undefined);
  tally.add({ png }, sample('c', { quality: { mean: 127.5, alignment: -1 } }));
  tally.add({ png }, sample('c'));
  tally.add({ png }, sample('c'));
  const totals = tally.totals();
  t.equal(totals.samples, 7);
  t.equal(totals.reports, 4, 'a, b, no id, c: a run of one id is one report');
  t.same(totals.imagesPerReport, { '1': 2, '2': 1, '3': 1 });
  t.equal(totals.sampleBytes, 100 * 5 + 5 + json(sample('a')).byteLength + 10 + 3);
  t.equal(totals.imageBytes, 100 * 5 + 10);
  t.same(totals.formats, { png: 5, jpg: 1, none: 1 });
  t.same(totals.sizes, { '64x64': 5, '32x32': 1 });
  t.same(totals.models, { m1: 5, m2: 1 });
  t.same(totals.attempts, { '1': 5, '3': 1 });
  t.equal(totals.withoutMetadata, 1);
  t.equal(totals.withQuality, 3);
  t.equal(totals.qualityFailed, 1);
  t.same(totals.labels.cardiomegaly, { positive: 1, negative: 0, uncertain: 1, absent: 5 });
  t.same(totals.labels.edema, { positive: 0, negative: 1, uncertain: 0, absent: 6 });
  t.same(totals.labels.noFinding, { positive: 1, negative: 0, uncertain: 0, absent: 6 });
  for (const observation of OBSERVATIONS) {
    const c = totals.labels[observation];
    t.equal(c.positive + c.negative + c.uncertain + c.absent, 7, `${observation} adds up`);
  }
  const mean = totals.scores.mean!;
  t.match(mean, { count: 3, min: 0, max: 255, mean: 127.5, low: 0, high: 255, log: false });
  t.equal(mean.bins.length, HISTOGRAM_BINS);
  t.equal(mean.bins[0], 1, '0 in the first bin');
  t.equal(mean.bins[HISTOGRAM_BINS / 2], 1, '127.5 in the middle bin');
  t.equal(mean.bins[HISTOGRAM_BINS - 1], 1, 'the top of the range in the last bin');
  t.same(totals.scores.contrast!.bins, [2], '127.9 and an out-of-range 500 both in the last bin, the only one drawn');
  t.match(totals.scores.contrast, { low: (128 * 479) / 480, high: 128 });
  t.equal(totals.scores.contrast!.max, 500, 'max stays exact');
  t.match(totals.scores.sharpness, { log: true, count: 2 });
  t.equal(totals.scores.sharpness!.bins[0], 1);
  t.equal(totals.scores.sharpness!.bins[HISTOGRAM_BINS - 1], 1);
  t.same(totals.scores.alignment!.bins, [1]);
  t.equal(totals.scores.entropy, undefined, 'a score no sample has is left out');

  // A score in a corner of its range is drawn over the part it occupies.
  const corner = new DatasetTally();
  for (const noise of [1, 2, 3]) corner.add({}, { quality: { noise } });
  const noise = corner.totals().scores.noise!;
  t.equal(noise.bins.length, 16, 'fine bins 7 to 22 of 480 over 0 … 64');
  t.same([noise.bins[0], noise.bins[8], noise.bins[15]], [1, 1, 1]);
  t.equal(noise.bins.reduce((a, b) => a + b, 0), 3);
  t.ok(Math.abs(noise.low - (7 * 64) / 480) < 1e-9 && Math.abs(noise.high - (23 * 64) / 480) < 1e-9, `${noise.low} … ${noise.high}`);

  tally.addReject('quality_failed', 'gen.ndjson', ['blurry', 'noisy']);
  tally.addReject('quality_failed', 'gen.ndjson', ['blurry']);
  tally.addReject('duplicate_key', 'out/manifest.json', [], 3);
  tally.addReject('bad_entry', 'shard read', [], 0);
  t.same(tally.totals().rejects, {
    total: 5,
    byReason: { duplicate_key: 3, quality_failed: 2 },
    qualityReasons: { blurry: 2, noisy: 1 },
    bySource: [
      { source: 'out/manifest.json', total: 3 },
      { source: 'gen.ndjson', total: 2 },
    ],
  });
});

t.test('BoundedCounter names at most its limit of values; sampleMetadata refuses what is not a JSON object', async (t) => {
  const counter = new BoundedCounter(2);
  for (const value of ['a', 'b', 'c', 'a', 'd']) counter.add(value);
  t.same(counter.toJSON(), { a: 2, [OTHER]: 2, b: 1 });
  t.equal(sampleMetadata(undefined), undefined);
  t.equal(sampleMetadata(Buffer.from('{"key":')), undefined);
  t.equal(sampleMetadata(Buffer.from('[1]')), undefined);
  t.same(sampleMetadata(Buffer.from('{"id":"s1"}')), { id: 's1' });
});

/**
 * Phantom samples, two images per report, with the quality checks on, through
 * the project's ShardWriter (12 samples a shard); the first sample is written
 * twice so the manifest counts a `duplicate_key`. Two reports have no prompt:
 * the generator's rejects file has two `no_prompt` lines.
 */
async function makeDataset(dir: string, count: number) {
  const reports: CleanReport[] = phantomReports(count, 7);
  reports[3] = { ...reports[3]!, prompt: '', caption: '' };
  reports[9] = { ...reports[9]!, prompt: '', caption: '' };
  const cleanPath = join(dir, 'clean.ndjson');
  writeFileSync(cleanPath, reports.map((report) => JSON.stringify(report)).join('\n') + '\n');
  const tar = new PassThrough();
  const writer = await ShardWriter.open(join(dir, 'shards'), { maxCount: 12 });
  const [summary] = await Promise.all([
    runGenerate(cleanPath, tar, { size: 48, format: 'clean', workers: 0, imagesPerReport: 2, rejects: join(dir, 'gen-rejects.ndjson') }),
    (async () => {
      let first;
      for await (const sample of decodeSamples(tar)) {
        first ??= sample;
        await writer.write(sample);
      }
      await writer.write(first!);
      await writer.close();
    })(),
  ]);
  return { reports, summary };
}

const dir = t.testdir({});
let dataset: Awaited<ReturnType<typeof makeDataset>>;
t.before(async () => {
  dataset = await makeDataset(dir, 60);
});

t.test('summarizeDataset counts the samples, labels, scores and rejects of shards the ShardWriter wrote', async (t) => {
  const shards = join(dir, 'shards');
  const summary = await summarizeDataset(shards, { rejects: [join(dir, 'gen-rejects.ndjson')], thumbnails: 10 });
  const byId = new Map(dataset.reports.map((report) => [report.id, report]));
  // What the shards hold, read independently of the report code.
  const ids: string[] = [];
  for await (const sample of readShards(shards)) ids.push(JSON.parse(Buffer.from(sample.parts['json']!).toString()).id as string);
  t.equal(summary.samples, dataset.summary.samples);
  t.equal(summary.samples, ids.length);
  t.ok(summary.samples >= 100, `${summary.samples} samples`);
  t.equal(summary.reports, new Set(ids).size);
  t.equal(summary.imagesPerReport['2'], ids.length - summary.reports, 'two images for each report but those with a rejected variant');
  const files = readdirSync(shards).filter((name) => name.endsWith('.tar'));
  t.match(summary.shards, { listed: files.length, read: files.length, skipped: 0, manifests: 1 });
  t.equal(summary.shards.bytes, files.reduce((sum, name) => sum + statSync(join(shards, name)).size, 0));
  t.same(summary.backends, { phantom: summary.samples });
  t.same(summary.sizes, { '48x48': summary.samples });
  t.same(summary.formats, { png: summary.samples });
  for (const observation of OBSERVATIONS) {
    const expected = { positive: 0, negative: 0, uncertain: 0, absent: 0 };
    for (const id of ids) {
      const value = byId.get(id)!.labels[observation];
      expected[value === 1 ? 'positive' : value === 0 ? 'negative' : value === -1 ? 'uncertain' : 'absent']++;
    }
    t.same(summary.labels[observation], expected, `${observation} as the reports say`);
  }
  t.ok(summary.labels.pleuralEffusion.positive > 10 && summary.labels.pleuralEffusion.negative > 10);
  t.equal(summary.withQuality, summary.samples, 'every sample was checked');
  for (const name of ['mean', 'contrast', 'entropy', 'sharpness', 'noise', 'blackShare', 'whiteShare'] as const) {
    const histogram = summary.scores[name]!;
    t.equal(histogram.count, summary.samples, `${name} counted for every sample`);
    t.equal(histogram.bins.reduce((a, b) => a + b, 0), summary.samples, `${name} bins add up`);
  }
  t.equal(summary.scores.alignment, undefined, 'no alignment without an alignment model');
  const genRejects = readFileSync(join(dir, 'gen-rejects.ndjson'), 'utf8').trim().split('\n');
  t.equal(summary.rejects.byReason['no_prompt'], 2, 'two reports without a prompt, one reject each');
  t.equal(summary.rejects.byReason['duplicate_key'], 1, 'from the manifest');
  t.equal(summary.rejects.total, genRejects.length + 1);
  t.same(
    summary.rejects.bySource.map((row) => row.source).sort(),
    ['gen-rejects.ndjson', 'shards/manifest.json'],
  );
  t.match(formatReportSummary(summary), new RegExp(`^${summary.samples} samples \\(${summary.reports} reports\\) in ${files.length} shards, [\\d.]+ kB; ${summary.rejects.total} rejects \\(.*no_prompt 2.*\\); \\d+ thumbnails in \\d+\\.\\d\\d s$`));
  const stats = reportStats(summary);
  t.equal(stats.thumbnails, summary.thumbnails.length);
  t.notMatch(JSON.stringify(stats), /data:image/, 'the stats JSON holds no images');
});

t.test('the thumbnails: a bounded random sample, the same in any shard order, plus positives per label, downscaled', async (t) => {
  const shards = readdirSync(join(dir, 'shards'))
    .filter((name) => name.endsWith('.tar'))
    .map((name) => join(dir, 'shards', name));
  const forward = await summarizeDataset(shards, { thumbnails: 8, thumbnailSize: 32 });
  const backward = await summarizeDataset([...shards].reverse(), { thumbnails: 8, thumbnailSize: 32 });
  const sampled = forward.thumbnails.filter((card) => card.inSample);
  t.equal(sampled.length, 8);
  t.same(
    backward.thumbnails.map((card) => [card.key, card.inSample]),
    forward.thumbnails.map((card) => [card.key, card.inSample]),
    'the same cards whatever the order',
  );
  const perLabel = 4; // max(4, ceil(8 / 8))
  t.ok(forward.thumbnails.length <= 8 + perLabel * OBSERVATIONS.length);
  for (const observation of OBSERVATIONS) {
    const positives = forward.labels[observation].positive;
    const cards = forward.thumbnails.filter((card) => card.positives.includes(observation)).length;
    t.ok(cards >= Math.min(positives, perLabel), `${observation}: ${cards} cards for ${positives} positives`);
  }
  const other = await summarizeDataset(shards, { thumbnails: 8, thumbnailSize: 32, seed: 1 });
  t.not(other.thumbnails.filter((card) => card.inSample).map((card) => card.key).join(), sampled.map((card) => card.key).join(), 'another seed, another sample');
  const card = forward.thumbnails[0]!;
  t.match(card, { src: /^data:image\/jpeg;base64,/, width: 32, height: 32, caption: /\S/, scores: { mean: Number, contrast: Number } });
  const meta = await sharp(Buffer.from(card.src.split(',')[1]!, 'base64')).metadata();
  t.match(meta, { format: 'jpeg', width: 32, height: 32 });
  const none = await summarizeDataset(shards, { thumbnails: 0 });
  t.equal(none.thumbnails.length, 0);
});

t.test('writeDatasetReport writes one self-contained page and nothing under the final name on failure', async (t) => {
  const out = join(dir, 'report.html');
  const summary = await writeDatasetReport(join(dir, 'shards'), out, { rejects: [join(dir, 'gen-rejects.ndjson')], thumbnails: 12, title: 'Phantom <test>' });
  const html = readFileSync(out, 'utf8');
  t.same(readdirSync(dir).filter((name) => name.endsWith('.tmp')), [], 'no temporary file left');
  t.match(html, /^<!doctype html>/);
  t.match(html, /<title>Phantom &lt;test&gt;<\/title>/, 'escaped');
  t.notMatch(html, /(src|href)\s*=\s*["']?\s*(https?:)?\/\//i, 'no src or href to the network');
  t.notMatch(html, /url\(/i, 'no CSS url()');
  t.match(html, /Content-Security-Policy" content="default-src 'none'/);
  t.equal((html.match(/<img src="data:image\/jpeg;base64,/g) ?? []).length, summary.thumbnails.length);
  t.equal((html.match(/<figure class="card"/g) ?? []).length, summary.thumbnails.length);
  t.equal((html.match(/data-sample="1"/g) ?? []).length, 12);
  for (const chart of ['rejects', 'labels', 'mean', 'contrast', 'entropy', 'sharpness', 'noise']) t.match(html, `data-chart="${chart}"`, `${chart} chart`);
  const effusion = summary.labels.pleuralEffusion;
  t.match(html, `<tr data-observation="pleuralEffusion"><td>Pleural Effusion</td><td>${effusion.positive}</td><td>${effusion.uncertain}</td><td>${effusion.negative}</td><td>${effusion.absent}</td></tr>`);
  const data = JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]!);
  t.equal(data.samples, summary.samples);
  t.same(data.labels, summary.labels);

  // Failures: the final name is never written half.
  const failed = join(dir, 'failed.html');
  await t.rejects(writeDatasetReport(join(dir, 'missing-shard.tar'), failed), { code: 'MEDSYN_ERR_NOT_FOUND' });
  t.throws(() => statSync(failed), { code: 'ENOENT' });
  await t.rejects(writeDatasetReport(join(dir, 'shards'), join(dir, 'shards'), { thumbnails: 0 }), { code: 'MEDSYN_ERR_WRITE_FAILED' });
  t.same(readdirSync(dir).filter((name) => name.endsWith('.tmp')), [], 'no temporary file left');
});

t.test('summarizeDataset: rejects files, unreadable shards, bad options', async (t) => {
  const folder = t.testdir({
    'filter.ndjson': [
      '{"id":"s1","source":"a.tar","reason":"quality_failed","reasons":["blurry","too_dark"],"message":"x"}',
      '',
      '{"id":"s2","source":"a.tar","reason":"bad_image","message":"y"}',
      '',
    ].join('\n'),
    'bad.ndjson': '{"reason":"too_short"}\nnot json\n',
    'noreason.ndjson': '{"id":"s1"}\n',
  });
  const shards = join(dir, 'shards');
  const summary = await summarizeDataset(shards, { rejects: [join(folder, 'filter.ndjson')], thumbnails: 0 });
  t.same(summary.rejects.byReason, { quality_failed: 1, bad_image: 1, duplicate_key: 1 });
  t.same(summary.rejects.qualityReasons, { blurry: 1, too_dark: 1 });
  await t.rejects(summarizeDataset(shards, { rejects: [join(folder, 'bad.ndjson')] }), { code: 'MEDSYN_ERR_READ_FAILED', line: 2 });
  await t.rejects(summarizeDataset(shards, { rejects: [join(folder, 'noreason.ndjson')] }), { code: 'MEDSYN_ERR_READ_FAILED', line: 1 });
  await t.rejects(summarizeDataset(shards, { rejects: [join(folder, 'missing.ndjson')] }), { code: 'MEDSYN_ERR_NOT_FOUND' });

  // A truncated copy of a shard: fatal by default, counted under skip.
  const first = join(shards, 'shard-000000.tar');
  const truncated = join(folder, 'truncated.tar');
  writeFileSync(truncated, readFileSync(first).subarray(0, 3000));
  await t.rejects(summarizeDataset([first, truncated]), { code: 'MEDSYN_ERR_CORRUPT_TAR' });
  const skipped = await summarizeDataset([first, truncated], { onError: 'skip', thumbnails: 0 });
  t.match(skipped.shards, { listed: 2, read: 1, skipped: 1, errors: [/truncated\.tar/] });
  t.equal(skipped.rejects.byReason['unreadable_shard'], 1);
  t.ok(skipped.samples >= 12, 'the samples before the fault count');

  await t.rejects(summarizeDataset(shards, { thumbnails: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'thumbnails' });
  await t.rejects(summarizeDataset(shards, { thumbnailSize: 4 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'thumbnailSize' });
  await t.rejects(summarizeDataset(shards, { onError: 'ignore' as 'skip' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'onError' });
});

const chromium = findChromium();
t.test('the report in headless Chromium: charts and grid render, the label filter works, no network request', { skip: chromium ? false : NO_CHROMIUM }, async (t) => {
  const folder = t.testdir({});
  const out = join(folder, 'report.html');
  const summary = await writeDatasetReport(join(dir, 'shards'), out, { rejects: [join(dir, 'gen-rejects.ndjson')], thumbnails: 12 });
  // A copy with a probe that measures what was drawn; the report's own script runs first.
  const probe =
    '<script>addEventListener("load",()=>{const charts={};for(const f of document.querySelectorAll("figure.chart")){' +
    'charts[f.dataset.chart]=[...f.querySelectorAll("rect.bar")].filter((r)=>{const b=r.getBBox();return b.width>0&&b.height>0;}).length;}' +
    'const images=[...document.querySelectorAll("#grid img")];const visible=images.filter((i)=>i.complete&&i.naturalWidth>0&&i.getBoundingClientRect().width>0);' +
    'const o=document.createElement("pre");o.id="render-check";o.textContent=JSON.stringify({charts,images:images.length,decodedVisible:visible.length,filter:document.body.dataset.filter,shown:document.getElementById("shown").textContent});document.body.append(o);});</script>';
  const probed = join(folder, 'probed.html');
  writeFileSync(probed, readFileSync(out, 'utf8').replace('</body>', `${probe}</body>`));

  const check = (hash: string) => {
    const page = loadPage(chromium!, `file://${probed}${hash}`);
    const found = /<pre id="render-check">([^<]*)<\/pre>/.exec(page.dom);
    t.ok(found, `chromium dumped the checked DOM (status ${page.status})`);
    const cards = [...page.dom.matchAll(/<figure class="card" data-key="([^"]*)" data-labels="([^"]*)" data-sample="([01])"( hidden(?:="")?)?>/g)].map((m) => ({
      key: m[1]!,
      labels: m[2]!.split(' '),
      inSample: m[3] === '1',
      hidden: m[4] !== undefined,
    }));
    return { page, cards, check: JSON.parse(found![1]!.replace(/&quot;/g, '"')) as { charts: Record<string, number>; images: number; decodedVisible: number; filter: string; shown: string } };
  };

  const all = check('');
  t.same(all.page.networkRequests, [], 'the page made no network request');
  t.equal(all.check.filter, 'all', 'the filter script ran');
  t.equal(all.check.images, summary.thumbnails.length);
  t.equal(all.check.decodedVisible, 12, 'the 12 cards of the random sample show, their images decoded');
  t.same(
    all.cards.filter((card) => !card.hidden).map((card) => card.key),
    all.cards.filter((card) => card.inSample).map((card) => card.key),
  );
  t.equal(all.check.charts['labels'], OBSERVATIONS.reduce((n, o) => n + (['positive', 'uncertain', 'negative', 'absent'] as const).filter((k) => summary.labels[o][k] > 0).length, 0), 'one drawn bar per non-zero label count');
  t.equal(all.check.charts['rejects'], Object.keys(summary.rejects.byReason).length, 'one bar per reject reason');
  for (const name of ['mean', 'contrast', 'entropy', 'sharpness', 'noise'] as const) {
    t.equal(all.check.charts[name], summary.scores[name]!.bins.filter((count) => count > 0).length, `${name} histogram: one drawn bar per non-empty bin`);
  }

  const cardiomegaly = check('#label=Cardiomegaly');
  const positives = cardiomegaly.cards.filter((card) => card.labels.includes('cardiomegaly'));
  t.equal(cardiomegaly.check.filter, 'cardiomegaly', '#label= applied at load, by display name');
  t.ok(positives.length >= 4, `${positives.length} cardiomegaly cards`);
  t.same(
    cardiomegaly.cards.filter((card) => !card.hidden).map((card) => card.key),
    positives.map((card) => card.key),
    'only the cards positive for cardiomegaly show',
  );
  t.equal(cardiomegaly.check.decodedVisible, positives.length);
  t.equal(cardiomegaly.check.shown, `${positives.length} of ${summary.thumbnails.length} thumbnails shown`);
  const effusion = check('#label=pleuralEffusion');
  t.equal(effusion.check.filter, 'pleuralEffusion', 'by observation key too');
  t.ok(effusion.cards.filter((card) => !card.hidden).every((card) => card.labels.includes('pleuralEffusion')));

  const shot = loadPage(chromium!, `file://${out}`, { screenshot: [1200, 2400] });
  t.ok(shot.screenshot, 'a screenshot was written');
  const { channels } = await sharp(shot.screenshot!).stats();
  t.ok(channels[0]!.stdev > 20, `the screenshot is not blank (standard deviation ${channels[0]!.stdev.toFixed(1)})`);
  t.same(shot.networkRequests, []);

  // The detector sees a request when there is one.
  const control = join(folder, 'control.html');
  writeFileSync(control, '<!doctype html><img src="http://medsyn-report-test.invalid/x.png">');
  t.same(loadPage(chromium!, `file://${control}`).networkRequests, ['http://medsyn-report-test.invalid/x.png'], 'a page that fetches is caught');
});
