import t from 'tap';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Sample } from '../../streams/sample.js';
import type { ShardManifest } from '../../streams/shard_manifest.js';
import { listShards } from '../../streams/shard_reader.js';
import { ROOT, bin, comparable, mergedSamples, samplesIn, sh } from './_pipes.js';

const gen = bin('medsyn-gen');
const shard = bin('medsyn-shard');
const reportsDir = JSON.stringify(join(ROOT, 'fixtures', 'reports'));
const BIN = join(ROOT, 'dist', 'bin', 'medsyn-shard.js');
const SOURCES = ['bin/_shard_command.ts', 'streams/shard_writer.ts', 'streams/shard_merge.ts', 'streams/shard_manifest.ts', 'streams/shard_reader.ts'];


function registerTests(): void {
  t.test('medsyn-shard --help documents --partition and --merge', async (t) => {
    const help = await sh(`${shard} --help`);
    t.equal(help.code, 0);
    for (const expected of [/--partition I\/N/u, /--merge/u, /manifest-pIIII\.json/u, /shards\.txt/u, /--train-data/u, /SLURM_ARRAY_TASK_ID/u]) t.match(help.stdout.toString(), expected);
  });

  t.test('four partitions as four parallel gen | shard pipelines into one folder, merged, hold exactly the samples of one run', async (t) => {
    const dir = t.testdir({});
    const out = join(dir, 'out');
    const whole = await sh(`${gen} ${reportsDir} --size 48 -q`);
    t.equal(whole.code, 0, whole.stderr);
    const fromWhole = (await samplesIn(whole.stdout)).map(comparable);
    t.ok(fromWhole.length > 8, `${fromWhole.length} samples in one run`);

    // Partition 3 takes its index from a Slurm array's variables, as a real array task would.
    const pipeline = (index: number): string =>
      index === 3
        ? `export SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_COUNT=4; ${gen} ${reportsDir} --size 48 | ${shard} ${JSON.stringify(out)} --max-count 2`
        : `${gen} ${reportsDir} --size 48 --partition ${index}/4 -q | ${shard} ${JSON.stringify(out)} --partition ${index}/4 --max-count 2 -q`;
    const runs = await Promise.all([0, 1, 2, 3].map((index) => sh(pipeline(index))));
    for (const [index, run] of runs.entries()) t.equal(run.code, 0, `partition ${index}: ${run.stderr}`);
    t.equal(runs[0].stderr, '', '-q: nothing on stderr');
    t.match(runs[3].stderr, /medsyn-shard: partition 3\/4 \(from SLURM_ARRAY_TASK_ID\)/u);
    t.match(runs[3].stderr, /medsyn-shard: .*out \(partition 3\/4\): \d+ shards written, \d+ samples/u);
    const files = readdirSync(out);
    t.same(files.filter((name) => name.startsWith('manifest')).sort(), ['manifest-p0000.json', 'manifest-p0001.json', 'manifest-p0002.json', 'manifest-p0003.json']);
    t.notOk(files.includes('sizes.json') || files.includes('manifest.json'), 'no dataset files before the merge');
    t.ok(files.filter((name) => name.endsWith('.tar')).every((name) => /^shard-p000[0-3]-\d{6}\.tar$/u.test(name)));

    const merged = await sh(`${shard} --merge ${JSON.stringify(out)}`);
    t.equal(merged.code, 0, merged.stderr);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as ShardManifest;
    t.match(manifest, { complete: true, partitions: 4, totals: { samples: fromWhole.length } });
    t.match(merged.stderr, new RegExp(`^medsyn-shard: .*out: merged 4 partitions: ${manifest.totals.shards} shards, ${fromWhole.length} samples, .*; wrote manifest\\.json, sizes\\.json, shards\\.txt\\n$`, 'u'));
    const trainData = merged.stdout.toString().trim();
    t.match(trainData, /^.*out\/shard-p0000-\{000000\.\.\d{6}\}\.tar::.*out\/shard-p0001-/u, "open_clip's --train-data on stdout");
    t.same(await listShards(trainData), await listShards(out));
    t.same(await listShards(join(out, 'shards.txt')), await listShards(out));
    t.same(
      Object.keys(JSON.parse(readFileSync(join(out, 'sizes.json'), 'utf8')) as object),
      manifest.shards.map((record) => record.name),
    );

    const { twice, byKey: fromMerged } = await mergedSamples(out);
    t.same(twice, [], 'none twice');
    t.equal(fromMerged.size, fromWhole.length, 'none lost');
    t.same(fromWhole.map((sample) => fromMerged.get(sample.key)), fromWhole, 'every sample byte for byte but its timing');

    // A partition re-run resumes: it keeps its shards and writes nothing; the merge gives the same dataset.
    const before = manifest.shards.map((record) => statSync(join(out, record.name)).mtimeMs);
    const again = await sh(pipeline(1));
    t.equal(again.code, 0, again.stderr);
    t.same(manifest.shards.map((record) => statSync(join(out, record.name)).mtimeMs), before, 'no shard rewritten');
    const remerged = await sh(`${shard} --merge ${JSON.stringify(out)} -q`);
    t.equal(remerged.code, 0, remerged.stderr);
    t.equal(remerged.stderr, '');
    t.same((JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as ShardManifest).shards, manifest.shards);
  });

  t.test('medsyn-shard --merge refuses a missing partition and bad usage', async (t) => {
    const dir = t.testdir({});
    const out = join(dir, 'out');
    for (const index of [0, 2]) {
      const run = await sh(`${gen} ${reportsDir} --size 32 --partition ${index}/3 -q | ${shard} ${JSON.stringify(out)} --partition ${index}/3 -q`);
      t.equal(run.code, 0, run.stderr);
    }
    const merged = await sh(`${shard} --merge ${JSON.stringify(out)}`);
    t.equal(merged.code, 1);
    t.match(merged.stderr, /^medsyn-shard: Cannot merge .*out: partition 1 of 3 is missing .* \[MEDSYN_ERR_MERGE_CONFLICT\]\n$/u);
    t.equal(merged.stdout.length, 0);
    t.notOk(existsSync(join(out, 'manifest.json')));

    const single = await sh(`${gen} ${reportsDir} --size 32 -q | ${shard} ${JSON.stringify(out)}`);
    t.equal(single.code, 1);
    t.match(single.stderr, /partitioned run .* \[MEDSYN_ERR_OUTPUT_CONFLICT\]/u);

    for (const [args, message] of [
      ['--merge', /Missing OUTDIR/u],
      ['--merge a b', /Too many arguments/u],
      ['--merge out --partition 1/3', /--merge takes no --partition/u],
      ['out --partition 3/3', /Invalid partition index/u],
      ['out --partition x', /Invalid --partition/u],
    ] as const) {
      const run = await sh(`${shard} ${args} < /dev/null`, dir);
      t.equal(run.code, 2, args);
      t.match(run.stderr, message);
    }
  });
}

if (!existsSync(BIN) || SOURCES.some((source) => statSync(join(ROOT, source)).mtimeMs > statSync(BIN).mtimeMs)) {
  t.fail(`${BIN} is missing or older than its sources: run npx tsc -p tsconfig.json first`);
} else {
  registerTests();
}
