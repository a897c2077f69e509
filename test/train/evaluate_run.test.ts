import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findChromium, NO_CHROMIUM } from '../_chromium.js';
import { makePhantomShards } from './_phantom_shards.js';
import { trainContrastive } from '../../train/contrastive_trainer.js';
import { DEFAULT_PROMPTS, evaluateRun } from '../../train/evaluate_run.js';
import { readChexpertLabelCsv, studyKey } from '../../train/chexpert_label_csv.js';
import { OBSERVATIONS, OBSERVATION_NAMES } from '../../records.js';

const clipTiny = new URL('../../fixtures/clip-tiny', import.meta.url).pathname;
const dir = t.testdir({});
const shards = join(dir, 'shards');
const run = join(dir, 'run');
let reports: Awaited<ReturnType<typeof makePhantomShards>>;

t.before(async () => {
  reports = await makePhantomShards(dir, 240);
  await trainContrastive(shards, run, { encoders: clipTiny, batchSize: 16, lr: 5e-3, valFraction: 0.2, epochs: 30, evalEvery: 60, intraOpThreads: 1 });
});

t.test('evaluateRun: zero-shot AUROC well above 0.5 for the findings phantoms draw, retrieval above chance, a probe', async (t) => {
  const metrics = await evaluateRun(run, shards, { split: 'val', intraOpThreads: 1 });
  t.equal(metrics.format, 'medsyn-eval/1');
  t.equal(metrics.samples, metrics.labelled);
  t.ok(metrics.samples > 30 && metrics.samples < 70, `${metrics.samples} held-out samples`);
  const effusion = metrics.observations['pleuralEffusion']!;
  const cardiomegaly = metrics.observations['cardiomegaly']!;
  t.ok(effusion.zeroShotAuroc! > 0.7, `pleural effusion zero-shot AUROC ${effusion.zeroShotAuroc!.toFixed(3)}`);
  t.ok(cardiomegaly.zeroShotAuroc! > 0.7, `cardiomegaly zero-shot AUROC ${cardiomegaly.zeroShotAuroc!.toFixed(3)}`);
  t.ok(metrics.zeroShot.macroAuroc! > 0.6, `macro ${metrics.zeroShot.macroAuroc!.toFixed(3)} over ${metrics.zeroShot.counted.join(', ')}`);
  t.same(metrics.zeroShot.counted, ['cardiomegaly', 'edema', 'pneumothorax', 'pleuralEffusion'], 'only observations with both classes count');
  t.equal(metrics.observations['fracture']!.zeroShotAuroc, null);
  t.ok(metrics.probe && metrics.probe.macroAuroc! > 0.7, `probe macro ${metrics.probe?.macroAuroc?.toFixed(3)}`);
  t.ok(metrics.retrieval.imageToText.r1 >= 5 / metrics.retrieval.count, `image→text R@1 ${metrics.retrieval.imageToText.r1.toFixed(3)}`);
  t.same(JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8')), metrics, 'metrics.json holds the result');
  const html = readFileSync(join(run, 'report.html'), 'utf8');
  t.match(html, /<svg[^>]*>.*<path class="series" d="M[\d.]+,[\d.]+ L/s, 'curves drawn');
  t.equal((html.match(/data-chart=/g) ?? []).length, 2, 'loss and retrieval charts');
  t.ok((html.match(/<img src="data:image\/png;base64,/g) ?? []).length >= 10, 'thumbnails inline');
  t.notMatch(html, /(src|href|url)\s*[=(]\s*["']?https?:/, 'nothing from the network');
  t.notMatch(html, /<script/, 'no scripts');
  t.match(html, /Pleural Effusion<\/td><td>\d+<\/td><td>\d+<\/td><td>0\.\d{3}/);
});

const chromium = findChromium();
t.test('report.html renders in headless Chromium: curves drawn, every thumbnail decoded', { skip: chromium ? false : NO_CHROMIUM }, async (t) => {
  const folder = t.testdir({});
  // A copy with a probe script: the report itself has none.
  const probe =
    '<script>addEventListener("load",()=>{const paths=[...document.querySelectorAll("path.series")].filter((p)=>p.getTotalLength()>0).length;' +
    'const images=[...document.images];const decoded=images.filter((i)=>i.complete&&i.naturalWidth>0).length;' +
    'const o=document.createElement("pre");o.id="render-check";o.textContent=JSON.stringify({paths,decoded,images:images.length});document.body.append(o);});</script>';
  writeFileSync(join(folder, 'report.html'), readFileSync(join(run, 'report.html'), 'utf8').replace('</body>', `${probe}</body>`));
  const result = spawnSync(chromium!, ['--headless', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=5000', '--dump-dom', `file://${join(folder, 'report.html')}`], { encoding: 'utf8', timeout: 60_000 });
  const found = /<pre id="render-check">([^<]*)<\/pre>/.exec(result.stdout);
  t.ok(found, `chromium dumped the checked DOM (status ${result.status})`);
  const check = JSON.parse(found![1]!.replace(/&quot;/g, '"')) as { paths: number; decoded: number; images: number };
  t.equal(check.paths, 6, 'train loss, validation loss and four R@K curves have length');
  t.ok(check.images >= 10 && check.decoded === check.images, `${check.decoded} of ${check.images} thumbnails decoded`);
});

t.test('evaluateRun takes labels from a CheXpert CSV, matched by study id, and prompts that override', async (t) => {
  const header = ['subject_id', 'study_id', ...OBSERVATIONS.map((o) => OBSERVATION_NAMES[o])].join(',');
  // Every label of the CSV says the opposite for effusion: the AUROC flips.
  const lines = reports.map((report) => {
    const cells = OBSERVATIONS.map((o) => {
      const value = report.labels[o];
      if (o === 'pleuralEffusion') return value === 1 ? '0.0' : '1.0';
      return value === undefined ? '' : `${value}.0`;
    });
    return ['10000032', report.id.slice(1), ...cells].join(',');
  });
  writeFileSync(join(dir, 'chexpert.csv'), `${header}\n${lines.join('\n')}\n`);
  const fromJson = await evaluateRun(run, shards, { split: 'val', probe: false, report: false, out: join(dir, 'json-labels'), intraOpThreads: 1 });
  const fromCsv = await evaluateRun(run, shards, { split: 'val', probe: false, report: false, out: join(dir, 'csv-labels'), labels: join(dir, 'chexpert.csv'), intraOpThreads: 1 });
  t.equal(fromCsv.probe, null);
  t.ok(Math.abs(fromCsv.observations['pleuralEffusion']!.zeroShotAuroc! - (1 - fromJson.observations['pleuralEffusion']!.zeroShotAuroc!)) < 1e-12, 'flipped labels, flipped AUROC');
  t.equal(fromCsv.observations['cardiomegaly']!.zeroShotAuroc, fromJson.observations['cardiomegaly']!.zeroShotAuroc);
  const swapped = await evaluateRun(run, shards, {
    split: 'val',
    probe: false,
    report: false,
    out: join(dir, 'swapped'),
    prompts: { cardiomegaly: { positive: DEFAULT_PROMPTS.cardiomegaly.negative, negative: DEFAULT_PROMPTS.cardiomegaly.positive } },
    intraOpThreads: 1,
  });
  t.ok(Math.abs(swapped.observations['cardiomegaly']!.zeroShotAuroc! - (1 - fromJson.observations['cardiomegaly']!.zeroShotAuroc!)) < 1e-12, 'swapped prompts, flipped AUROC');
  t.same(swapped.observations['cardiomegaly']!.prompts, { positive: 'No cardiomegaly.', negative: 'Cardiomegaly.' });
});

t.test('readChexpertLabelCsv reads 1/0/-1/blank and refuses other values', async (t) => {
  const folder = t.testdir({
    'good.csv': 'subject_id,study_id,Cardiomegaly,Pleural Effusion\n1,50000001,1.0,\n1,50000002,-1.0,0.0\n',
    'bad.csv': 'subject_id,study_id,Cardiomegaly\n1,50000001,2.0\n',
    'nostudy.csv': 'subject_id,Cardiomegaly\n1,1.0\n',
  });
  const labels = await readChexpertLabelCsv(join(folder, 'good.csv'));
  t.same(labels.get('s50000001'), { cardiomegaly: 1 });
  t.same(labels.get('s50000002'), { cardiomegaly: -1, pleuralEffusion: 0 });
  await t.rejects(readChexpertLabelCsv(join(folder, 'bad.csv')), { code: 'MEDSYN_ERR_BAD_CSV', line: 2 });
  await t.rejects(readChexpertLabelCsv(join(folder, 'nostudy.csv')), { code: 'MEDSYN_ERR_MISSING_COLUMN' });
  await t.rejects(readChexpertLabelCsv(join(folder, 'missing.csv')), { code: 'MEDSYN_ERR_NOT_FOUND' });
  t.equal(studyKey('50414267.0'), 's50414267');
  t.equal(studyKey('s50414267'), 's50414267');
  t.equal(studyKey('x'), undefined);
});

t.test('evaluateRun refuses a folder that is not a run', async (t) => {
  await t.rejects(evaluateRun(t.testdir({}), shards), { code: 'MEDSYN_ERR_BAD_RUN' });
  await t.rejects(evaluateRun(run, shards, { split: 'some' as 'val' }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});
