import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ShardManifest } from '../../streams/shard_manifest.js';
import type { Sample } from '../../streams/sample.js';
import { ROOT, bin, comparable, samplesIn, sh } from './_pipes.js';

const gen = bin('medsyn-gen');
const shard = bin('medsyn-shard');
const clean = bin('medsyn-clean');
const sectioned = join(ROOT, 'fixtures', 'official', 'mimic_cxr_sectioned.csv');
const reportsDir = join(ROOT, 'fixtures', 'reports');


t.test('cat reports.csv | medsyn-gen | medsyn-shard out/ works end to end through real processes', async (t) => {
  const out = t.testdir({});
  const run = await sh(`cat ${JSON.stringify(sectioned)} | ${gen} --size 64 --batch-size 5 | ${shard} ${JSON.stringify(out)}`);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stderr, /medsyn-gen: 22 samples, 2 rejected \(empty 1, too_short 1\) of 24 read/);
  t.match(run.stderr, /medsyn-shard: .*22 samples/);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as ShardManifest;
  t.match(manifest, { complete: true, totals: { samples: 22 } });
  const samples = await samplesIn(readFileSync(join(out, 'shard-000000.tar')));
  t.equal(samples.length, 22);
  t.match(JSON.parse(Buffer.from(samples[0]!.parts.json!).toString()), { id: 's50000001', backend: 'phantom', width: 64, format: 'png' });
});

t.test('medsyn-clean | medsyn-gen | medsyn-shard gives the same samples as medsyn-gen alone, whatever the batch size', async (t) => {
  const a = await sh(`${clean} ${JSON.stringify(reportsDir)} -q | ${gen} --size 48 --batch-size 3 --images-per-report 2 --seed 5 -q`);
  const b = await sh(`${gen} ${JSON.stringify(reportsDir)} --size 48 --batch-size 16 --images-per-report 2 --seed 5 --workers 1 -q`);
  t.equal(a.code, 0, a.stderr);
  t.equal(b.code, 0, b.stderr);
  const fromA = (await samplesIn(a.stdout)).map(comparable);
  t.equal(fromA.length, 46);
  t.equal(fromA[0]!.key, 's50000001_0');
  t.same((await samplesIn(b.stdout)).map(comparable), fromA);
});

t.test('medsyn-gen ends quietly when stdout closes early, and writes jpg with --image-format', async (t) => {
  const run = await sh(`${gen} ${JSON.stringify(reportsDir)} --size 64 | head -c 2000 > /dev/null`);
  t.equal(run.code, 0);
  t.equal(run.stderr, '');
  const jpg = await sh(`${gen} ${JSON.stringify(reportsDir)} --size 32 --image-format jpg --quality 70 --limit 2 -q | tar tf -`);
  t.equal(jpg.code, 0, jpg.stderr);
  t.same(jpg.stdout.toString().trim().split('\n'), ['s50000001.jpg', 's50000001.json', 's50000001.txt', 's50000002.jpg', 's50000002.json', 's50000002.txt']);
});

t.test('medsyn-gen --rejects lists rejects, and --progress reports on stderr', async (t) => {
  const dir = t.testdir({});
  const rejects = join(dir, 'rejects.ndjson');
  const run = await sh(`${gen} ${JSON.stringify(reportsDir)} --size 32 --rejects ${JSON.stringify(rejects)} --progress > /dev/null`);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stderr, /medsyn-gen: \d+ samples, \d+ rejected, \d+ read, [\d.]+ images\/s\n/);
  t.same(readFileSync(rejects, 'utf8').trim().split('\n').map((line) => JSON.parse(line).reason).sort(), ['no_section', 'no_section', 'too_short']);
  t.same(readdirSync(dir), ['rejects.ndjson']);
});

t.test('medsyn-gen explains bad usage with exit 2 and a failure with exit 1', async (t) => {
  const help = await sh(`${gen} --help`);
  t.equal(help.code, 0);
  t.match(help.stdout.toString(), /Usage: medsyn-gen .*--backend NAME.*--images-per-report N.*SHA-256/s);
  for (const [args, pattern] of [
    ['--batch-size 0', /Invalid --batch-size/],
    ['--backend dalle', /Invalid --backend: expected one of phantom, images/],
    ['--backend images', /--backend images needs --images DIR/],
    ['--images somewhere', /--images is for --backend images/],
    ['--image-format gif', /Invalid --image-format/],
    ['a b', /Too many inputs/],
  ] as const) {
    const run = await sh(`${gen} ${args} < /dev/null`);
    t.equal(run.code, 2, args);
    t.match(run.stderr, pattern);
    t.match(run.stderr, /\[MEDSYN_ERR_USAGE\]\n$/);
  }
  const missing = await sh(`${gen} no/such/file.csv`);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^medsyn-gen: Cannot open no\/such\/file\.csv: .* \[MEDSYN_ERR_NOT_FOUND\]\n$/);
  const images = await sh(`${gen} ${JSON.stringify(reportsDir)} --backend images --images no/such/dir`);
  t.equal(images.code, 1);
  t.match(images.stderr, /MEDSYN_ERR_NOT_FOUND/);
});

t.test('medsyn-gen checks quality by default, scores alignment with --align-model, and --skip-quality turns the checks off', async (t) => {
  const clip = JSON.stringify(join(ROOT, 'fixtures', 'clip-tiny'));
  const checked = await sh(`${gen} ${JSON.stringify(reportsDir)} --size 64 --limit 4 --align-model ${clip} --min-alignment=-1`);
  t.equal(checked.code, 0, checked.stderr);
  t.match(checked.stderr, /medsyn-gen: quality: \d+ passed, 0 failed of \d+ checked\n(.*\n)*  alignment +min /);
  const json = JSON.parse(Buffer.from((await samplesIn(checked.stdout))[0]!.parts.json!).toString());
  t.match(json, { attempt: 0, attempts: 1, quality: { passed: true, reasons: [], alignment: Number, phash: /^[0-9a-f]{16}$/ } });
  const skipped = await sh(`${gen} ${JSON.stringify(reportsDir)} --size 64 --limit 2 --skip-quality`);
  t.equal(skipped.code, 0, skipped.stderr);
  t.notMatch(skipped.stderr, /quality:/);
  t.notOk('quality' in JSON.parse(Buffer.from((await samplesIn(skipped.stdout))[0]!.parts.json!).toString()));
  const both = await sh(`${gen} --skip-quality --align-model ${clip} < /dev/null`);
  t.equal(both.code, 2);
});

t.test('four partitions as four parallel processes give exactly the samples of one run: none lost, none twice, the same bytes', async (t) => {
  const whole = await sh(`${gen} ${JSON.stringify(reportsDir)} --size 48 --images-per-report 2 -q`);
  t.equal(whole.code, 0, whole.stderr);
  const parts = await Promise.all([0, 1, 2, 3].map((index) => sh(`${gen} ${JSON.stringify(reportsDir)} --size 48 --images-per-report 2 --partition ${index}/4`)));
  const fromParts = new Map<string, ReturnType<typeof comparable>>();
  for (const [index, part] of parts.entries()) {
    t.equal(part.code, 0, part.stderr);
    t.match(part.stderr, new RegExp(`medsyn-gen: partition ${index}/4 \\(from --partition\\)`));
    for (const sample of await samplesIn(part.stdout)) {
      t.notOk(fromParts.has(sample.key), `${sample.key} in one partition only`);
      fromParts.set(sample.key, comparable(sample));
    }
  }
  const fromWhole = (await samplesIn(whole.stdout)).map(comparable);
  t.equal(fromParts.size, fromWhole.length);
  t.same(fromWhole.map((sample) => fromParts.get(sample.key)), fromWhole, 'every sample identical but for its timing');
  const slurm = await sh(`SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_COUNT=4 ${gen} ${JSON.stringify(reportsDir)} --size 48 --images-per-report 2 --skip-quality | tar t | wc -l`);
  t.match(slurm.stderr, /partition 2\/4 \(from SLURM_ARRAY_TASK_ID\)/);
  t.equal(Number(slurm.stdout.toString().trim()), 3 * [...fromParts.keys()].filter((key) => parts[2]!.stdout.includes(Buffer.from(`${key}.json`))).length);
});
