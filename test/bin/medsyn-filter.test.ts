import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, ROOT, samplesIn, sh } from './_pipes.js';

const reportsDir = JSON.stringify(join(ROOT, 'fixtures', 'reports'));

t.test('medsyn-gen | medsyn-filter | medsyn-shard, then re-filtering the shards with new thresholds, through real pipes', async (t) => {
  const dir = t.testdir({});
  const out = JSON.stringify(join(dir, 'out'));
  const first = await sh(`${bin('medsyn-gen')} ${reportsDir} --size 96 --skip-quality -q | ${bin('medsyn-filter')} --rejects ${JSON.stringify(join(dir, 'r1.ndjson'))} | ${bin('medsyn-shard')} ${out} -q`);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stderr, /^medsyn-filter: 23 kept, 0 rejected of 23 read in [\d.]+ s .*\nquality: 23 passed, 0 failed of 23 checked\n  mean +min [\d.]+  q1 /);
  t.match(first.stderr, /  sharpness +min /);
  const shard = await samplesIn(readFileSync(join(dir, 'out', 'shard-000000.tar')));
  t.equal(shard.length, 23);
  t.match(JSON.parse(Buffer.from(shard[0]!.parts.json!).toString()), { id: 's50000001', backend: 'phantom', quality: { passed: true } });

  const again = await sh(`cat ${JSON.stringify(join(dir, 'out'))}/shard-*.tar | ${bin('medsyn-filter')} --min-contrast 60 --max-black 0.9 --rejects ${JSON.stringify(join(dir, 'r2.ndjson'))} -q | ${bin('medsyn-shard')} ${JSON.stringify(join(dir, 'out2'))} -q`);
  t.equal(again.code, 0, again.stderr);
  const rejects = readFileSync(join(dir, 'r2.ndjson'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  const kept = JSON.parse(readFileSync(join(dir, 'out2', 'manifest.json'), 'utf8')).totals.samples as number;
  t.equal(kept + rejects.length, 23);
  t.ok(rejects.length > 0, 'a stricter contrast rejects some');
  t.ok(rejects.every((reject) => reject.reason === 'quality_failed' && reject.reasons.includes('low_contrast')));
});

t.test('medsyn-filter explains bad usage with exit 2, and a broken tar with exit 1', async (t) => {
  const help = await sh(`${bin('medsyn-filter')} --help`);
  t.equal(help.code, 0);
  t.match(help.stdout.toString(), /--min-contrast V.*--dup-distance BITS.*quality_failed/s);
  for (const [args, pattern] of [
    ['--max-black 2', /Invalid --max-black: expected a number in 0 … 1/],
    ['--min-entropy x', /Invalid --min-entropy/],
    ['--dup-distance 1.5', /Invalid --dup-distance/],
    ['shards.tar', /reads stdin/],
  ] as const) {
    const run = await sh(`${bin('medsyn-filter')} ${args} < /dev/null`);
    t.equal(run.code, 2, args);
    t.match(run.stderr, pattern);
  }
  const broken = await sh(`head -c 700 ${JSON.stringify(join(ROOT, 'package.json'))} | ${bin('medsyn-filter')}`);
  t.equal(broken.code, 1);
  t.match(broken.stderr, /MEDSYN_ERR_CORRUPT_TAR/);
});
