import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../../bin/_cli.js';
import { reportCommand } from '../../bin/_report_command.js';
import { makePhantomShards } from '../train/_phantom_shards.js';
import { bin, ROOT, sh } from './_pipes.js';

/** Runs the command in this process, as `medsyn report ARGV`, with what it writes to stderr. */
async function report(argv: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await runCommand(reportCommand, argv, 'medsyn report'), stderr };
  } finally {
    process.stderr.write = write;
  }
}

t.test('reportCommand writes the page, a summary line and --stats, and refuses bad usage', async (t) => {
  const dir = t.testdir({ 'rejects.ndjson': '{"id":"s1","source":"x","reason":"too_short","message":"m"}\n' });
  await makePhantomShards(dir, 40);
  const out = join(dir, 'report.html');
  const run = await report([join(dir, 'shards'), '--out', out, '--rejects', join(dir, 'rejects.ndjson'), '--thumbnails', '6', '--stats', join(dir, 'stats.json')]);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stderr, /^medsyn-report: 40 samples \(40 reports\) in 1 shard, [\d.]+ kB; 1 rejects \(too_short 1\); \d+ thumbnails in [\d.]+ s\nmedsyn-report: wrote .*report\.html\n$/);
  const html = readFileSync(out, 'utf8');
  t.equal((html.match(/data-sample="1"/g) ?? []).length, 6);
  t.match(html, /No sample carries quality scores/, 'shards made without checks say so');
  const stats = JSON.parse(readFileSync(join(dir, 'stats.json'), 'utf8'));
  t.match(stats, { format: 'medsyn-stats/1', command: 'medsyn-report', ok: true, unit: 'samples', items: 40, rejects: 1, rejectsByReason: { too_short: 1 } });
  t.match(stats.details, { samples: 40, labels: { pleuralEffusion: { positive: Number } } });

  const quiet = await report([join(dir, 'shards'), '-o', join(dir, 'quiet.html'), '-q', '--thumbnails', '0']);
  t.equal(quiet.code, 0);
  t.equal(quiet.stderr, '');
  t.notMatch(readFileSync(join(dir, 'quiet.html'), 'utf8'), /<img/);

  for (const [argv, pattern] of [
    [[join(dir, 'shards')], /--out FILE is required/],
    [['--out', out], /Expected SHARDS/],
    [[join(dir, 'shards'), '--out', out, '--thumbnails', 'x'], /Invalid --thumbnails: expected an integer ≥ 0/],
    [[join(dir, 'shards'), '--out', out, '--thumbnail-size', '2'], /Invalid --thumbnail-size/],
    [[join(dir, 'shards'), '--out', out, '--on-error', 'ignore'], /Invalid --on-error: expected one of skip, fail/],
    [[join(dir, 'shards'), '--out', out, '--bogus'], /Unknown option '--bogus'/],
  ] as const) {
    const bad = await report([...argv]);
    t.equal(bad.code, 2, pattern.source);
    t.match(bad.stderr, pattern);
  }
  const missing = await report([join(dir, 'nothing.tar'), '--out', join(dir, 'missing.html')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /MEDSYN_ERR_NOT_FOUND/);
  t.notOk(existsSync(join(dir, 'missing.html')), 'nothing under the final name');
  t.same(readdirSync(dir).filter((name) => name.endsWith('.tmp')), []);
});

// Through the installed CLI: needs `report` registered in bin/_commands.ts and dist/ built.
const registered = existsSync(join(ROOT, 'dist', 'bin', '_report_command.js')) && /reportCommand/.test(readFileSync(join(ROOT, 'dist', 'bin', '_commands.js'), 'utf8'));
t.test(
  'medsyn-gen | medsyn-shard, then medsyn report over the shards and the rejects, through real pipes',
  { skip: registered ? false : "'report' is not registered in dist/bin/_commands.js yet (add it to bin/_commands.ts, then npx tsc -p tsconfig.json)" },
  async (t) => {
    const dir = t.testdir({});
    const reports = JSON.stringify(join(ROOT, 'fixtures', 'reports'));
    const out = JSON.stringify(join(dir, 'out'));
    const rejects = JSON.stringify(join(dir, 'rejects.ndjson'));
    const made = await sh(`${bin('medsyn-gen')} ${reports} --size 64 -q --rejects ${rejects} | ${bin('medsyn-shard')} ${out} --max-count 10 -q`);
    t.equal(made.code, 0, made.stderr);
    const page = JSON.stringify(join(dir, 'report.html'));
    const run = await sh(`${bin('medsyn')} report ${out} --rejects ${rejects} --out ${page} --thumbnails 8`);
    t.equal(run.code, 0, run.stderr);
    t.equal(run.stdout.length, 0, 'nothing on stdout');
    t.match(run.stderr, /^medsyn-report: 23 samples \(23 reports\) in 3 shards, [\d.]+ kB; 3 rejects \((no_section 2, too_short 1|too_short 1, no_section 2)\); \d+ thumbnails in [\d.]+ s\nmedsyn-report: wrote .*report\.html\n$/);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    t.match(html, /data-chart="mean"/, 'medsyn-gen checks every image: histograms');
    t.equal((html.match(/data-sample="1"/g) ?? []).length, 8);
    const help = await sh(`${bin('medsyn')} report --help`);
    t.equal(help.code, 0);
    t.match(help.stdout.toString(), /--thumbnails N.*#label=Cardiomegaly/s);
    const usage = await sh(`${bin('medsyn')} report ${out}`);
    t.equal(usage.code, 2);
    t.match(usage.stderr, /--out FILE is required: the HTML file to write \(see medsyn report --help\) \[MEDSYN_ERR_USAGE\]/);
  },
);
