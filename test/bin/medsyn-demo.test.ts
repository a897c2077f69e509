import t from 'tap';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ShardManifest } from '../../streams/shard_manifest.js';
import type { EvalMetrics } from '../../train/evaluate_run.js';

const medsyn = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bin', 'medsyn.js');
const SAMPLES = 23 + 600;

function demo(out: string, ...flags: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [medsyn, 'demo', '--out', out, '--size', '64', ...flags], { encoding: 'utf8' });
}

t.test('medsyn demo runs clean -> generate -> shard -> train -> evaluate and says what it wrote', async (t) => {
  const dir = t.testdir({});
  const out = join(dir, 'out');
  const result = demo(out);
  t.equal(result.status, 0, result.stderr);
  t.match(result.stdout, /shard -> train -> evaluate/);
  t.match(result.stdout, /clean: +23 cleaned, 3 rejected .*\(reports\/\)/);
  t.match(result.stdout, /600 cleaned, 0 rejected of 600 read .*\(demo-reports\.ndjson\)/);
  t.match(result.stdout, new RegExp(`generate: ${SAMPLES} samples, 0 rejected of ${SAMPLES} read .*phantom medsyn-phantom-1`));
  t.match(result.stdout, new RegExp(`shard: +1 shard\\(s\\), ${SAMPLES} samples`));
  t.match(result.stdout, new RegExp(`quality: +${SAMPLES} passed, 0 failed of ${SAMPLES} checked`));
  t.match(result.stdout, /Pleural Effusion\s+\d+\s+\d+\s+\d+/);
  t.equal(readFileSync(join(out, 'clean.ndjson'), 'utf8').trim().split('\n').length, SAMPLES);
  t.same(readdirSync(join(out, 'shards')).sort(), ['manifest.json', 'shard-000000.tar', 'shard-000000_stats.json', 'sizes.json']);
  t.match(JSON.parse(readFileSync(join(out, 'shards/manifest.json'), 'utf8')) as ShardManifest, { complete: true, totals: { samples: SAMPLES } });

  // Training and evaluation: the figures printed are the ones in metrics.json, and well above chance.
  const train = /train: +(\d+) steps \(30 epochs, batch 16\) on (\d+) pairs, (\d+) held out; loss ([\d.]+) in [\d.]+ s/.exec(result.stdout);
  t.ok(train, 'a train line');
  const [steps, trainCount, valCount] = [Number(train![1]), Number(train![2]), Number(train![3])];
  t.equal(trainCount + valCount, SAMPLES);
  t.equal(steps, 30 * Math.floor(trainCount / 16));
  const retrieval = /R@1 image→text ([\d.]+), text→image ([\d.]+) \(chance ([\d.]+)\)/.exec(result.stdout);
  t.ok(retrieval, 'a retrieval line');
  const [imageToText, textToImage, chance] = [Number(retrieval![1]), Number(retrieval![2]), Number(retrieval![3])];
  t.ok(imageToText >= 5 * chance && textToImage >= 5 * chance, `held-out R@1 ${imageToText} / ${textToImage} at least 5 × chance ${chance}`);
  const zeroShot = /zero-shot macro AUROC ([\d.]+) over (\d+) observations; linear probe ([\d.]+)/.exec(result.stdout);
  t.ok(zeroShot, 'a zero-shot and probe line');
  t.match(result.stdout, /Held out +positive +negative +zero-shot +probe\n  Cardiomegaly +\d+ +\d+ +[\d.]+ +[\d.]+/);

  const datasetPath = join(out, 'dataset.html');
  t.match(result.stdout, /  report: +\d+ samples \(\d+ reports\) in 1 shard, [\d.]+ MB; 3 rejects \(no_section 2, too_short 1\); \d+ thumbnails/);
  t.match(result.stdout, `the dataset's page: ${datasetPath}`);
  t.match(readFileSync(datasetPath, 'utf8'), /<figure class="card"/, "the dataset's page has its grid");
  const metricsPath = join(out, 'run', 'metrics.json');
  const reportPath = join(out, 'run', 'report.html');
  t.match(result.stdout, `wrote ${metricsPath}`);
  t.match(result.stdout, `Open the report: ${reportPath}`);
  const metrics = JSON.parse(readFileSync(metricsPath, 'utf8')) as EvalMetrics;
  t.match(metrics, { format: 'medsyn-eval/1', split: 'val', samples: valCount, step: steps });
  t.equal(metrics.retrieval.count, valCount);
  t.equal(metrics.retrieval.imageToText.r1.toFixed(3), retrieval![1]);
  t.equal(metrics.zeroShot.macroAuroc!.toFixed(3), zeroShot![1]);
  t.equal(metrics.zeroShot.counted.length, Number(zeroShot![2]));
  t.equal(metrics.probe!.macroAuroc!.toFixed(3), zeroShot![3]);
  t.ok(metrics.zeroShot.macroAuroc! > 0.55 && metrics.probe!.macroAuroc! > 0.6, 'zero-shot and probe above chance');
  const report = readFileSync(reportPath, 'utf8');
  t.ok(report.includes('<svg') || report.includes('<canvas'), 'report.html draws curves');
  t.ok(report.includes('data:image/png;base64,'), 'report.html holds its thumbnails');
  t.ok(existsSync(join(out, 'run', 'model', 'model.json')), 'the exported model');

  // Run again: everything is made afresh, the run included (the trainer refuses an existing run).
  const before = statSync(metricsPath).mtimeMs;
  const again = demo(out);
  t.equal(again.status, 0, again.stderr);
  t.match(JSON.parse(readFileSync(join(out, 'shards/manifest.json'), 'utf8')), { complete: true, totals: { samples: SAMPLES } });
  t.ok(statSync(metricsPath).mtimeMs > before, 'metrics.json rewritten');
  t.ok(again.stdout.includes(`train:    ${steps} steps (30 epochs, batch 16) on ${trainCount} pairs, ${valCount} held out;`), 'the same training split and steps');

  // --skip-train stops after shard and leaves no stale run beside the new shards.
  const skipped = demo(out, '--skip-train');
  t.equal(skipped.status, 0, skipped.stderr);
  t.match(skipped.stdout, /shard on the fixture reports/);
  t.match(skipped.stdout, /Training skipped \(--skip-train\)\./);
  t.notMatch(skipped.stdout, /report\.html/);
  t.notOk(existsSync(join(out, 'run')), 'no run folder');
});

t.test('medsyn demo --help names the stages and the flags', async (t) => {
  const result = spawnSync(process.execPath, [medsyn, 'demo', '--help'], { encoding: 'utf8' });
  t.equal(result.status, 0, result.stderr);
  t.match(result.stdout, /--skip-train/);
  t.match(result.stdout, /medsyn-train DIR\/shards --out DIR\/run --cache DIR\/cache/);
  t.match(result.stdout, /medsyn-eval DIR\/run --data DIR\/shards --split val/);
});
