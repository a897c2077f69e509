import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StatsFile } from '../../bin/_progress.js';
import { makePhantomShards } from '../train/_phantom_shards.js';
import { bin, ROOT, samplesIn, sh } from './_pipes.js';

const q = (path: string): string => JSON.stringify(path);
const reports = q(join(ROOT, 'fixtures', 'reports'));
const readStats = (path: string): StatsFile => JSON.parse(readFileSync(path, 'utf8')) as StatsFile;

/** The `--progress json` lines of a stderr, each parsed. */
function progressLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** `no_section 2, too_short 1` as an object. */
function reasons(text: string | undefined): Record<string, number> {
  if (!text) return {};
  return Object.fromEntries(text.split(', ').map((pair) => [pair.split(' ')[0]!, Number(pair.split(' ')[1])]));
}

/** What every stats file holds. */
function checkShape(t: Test, stats: StatsFile, command: string): void {
  t.match(stats, {
    format: 'medsyn-stats/1',
    command,
    medsyn: String,
    ok: Boolean,
    exitCode: Number,
    interrupted: Boolean,
    startedAt: String,
    elapsedMs: Number,
    unit: String,
    items: Number,
    rejects: Number,
    rejectsByReason: Object,
    rate: Number,
    details: Object,
  });
  t.ok(!Number.isNaN(Date.parse(stats.startedAt)), 'startedAt is a date');
  t.equal(
    Object.values(stats.rejectsByReason).reduce((sum, count) => sum + count, 0),
    stats.rejects,
    'rejects by reason add up',
  );
}

t.test('medsyn-gen --progress json: JSON lines at most a second apart, then a final one equal to the summary and --stats', async (t) => {
  const dir = t.testdir({});
  const stats = join(dir, 'gen.json');
  const run = await sh(`${bin('medsyn-gen')} ${reports} --size 32 --limit 20 --progress json --stats ${q(stats)} > ${q(join(dir, 'out.tar'))}`);
  t.equal(run.code, 0, run.stderr);
  t.notMatch(run.stderr, /\r/, 'no human progress line');
  const lines = progressLines(run.stderr);
  t.ok(lines.length >= 1);
  for (const line of lines) {
    t.match(line, { type: 'progress', command: 'medsyn-gen', items: Number, rejects: Number, rate: Number, elapsedMs: Number, total: 20 });
    t.ok(line['etaMs'] === null || typeof line['etaMs'] === 'number');
  }
  const final = lines.at(-1)!;
  t.equal(final['final'], true, 'the last JSON line is the final one');
  t.equal(lines.filter((line) => line['final']).length, 1);

  const summary = /^medsyn-gen: (\d+) samples, (\d+) rejected(?: \((.*?)\))? of (\d+) read in ([\d.]+) s \(([\d.]+) images\/s/mu.exec(run.stderr);
  t.ok(summary, run.stderr);
  const [, samples, rejected, byReason, read, seconds, rate] = summary!;
  const s = readStats(stats);
  checkShape(t, s, 'medsyn-gen');
  t.match(s, { ok: true, exitCode: 0, interrupted: false, error: null, unit: 'samples', items: Number(samples), rejects: Number(rejected) });
  t.same(s.rejectsByReason, reasons(byReason));
  t.equal(s.details['read'], Number(read));
  t.equal(Number(s.details['seconds']).toFixed(2), seconds);
  t.ok(Math.abs(s.elapsedMs / 1000 - Number(seconds)) <= 0.005 + 1e-9, 'elapsedMs is the summary\'s time');
  t.equal(s.rate?.toFixed(1), rate);
  t.equal(final['items'], s.items, 'final progress line = summary');
  t.equal(final['rejects'], s.rejects);
  t.equal((await samplesIn(readFileSync(join(dir, 'out.tar')))).length, s.items, 'the samples written');
  t.same(readdirSync(dir).sort(), ['gen.json', 'out.tar'], 'no temporary file left');
});

t.test('medsyn-clean: bare --progress (last, or before another flag) shows the line; --stats equals the summary line', async (t) => {
  const dir = t.testdir({});
  for (const [label, args] of [
    ['at the end', `--stats ${q(join(dir, 'a.json'))} --progress`],
    ['before a flag', `--progress --stats ${q(join(dir, 'a.json'))} --workers 0`],
    ['tty', `--progress tty --stats ${q(join(dir, 'a.json'))}`],
  ] as const) {
    const run = await sh(`${bin('medsyn-clean')} ${reports} ${args} > /dev/null`);
    t.equal(run.code, 0, `${label}: ${run.stderr}`);
    t.match(run.stderr, /^medsyn-clean: \d+ cleaned, \d+ rejected, \d+ read, \d+ reports\/s\n/u, `${label}: the progress line`);
    const summary = /^medsyn-clean: (\d+) cleaned, (\d+) rejected \((.*?)\) of (\d+) read in ([\d.]+) s \((\d+) reports\/s\)$/mu.exec(run.stderr);
    t.ok(summary, run.stderr);
    const s = readStats(join(dir, 'a.json'));
    checkShape(t, s, 'medsyn-clean');
    t.match(s, { ok: true, unit: 'reports', items: Number(summary![1]), rejects: Number(summary![2]), details: { read: Number(summary![4]) } });
    t.same(s.rejectsByReason, reasons(summary![3]));
    t.equal(Number(s.details['seconds']).toFixed(2), summary![5]);
    t.ok(Math.abs(s.elapsedMs / 1000 - Number(summary![5])) <= 0.005 + 1e-9, 'elapsedMs is the summary\'s time');
    t.equal(Math.round(s.rate ?? NaN), Number(summary![6]));
  }
  const quiet = await sh(`${bin('medsyn-clean')} ${reports} --progress tty -q > /dev/null`);
  t.match(quiet.stderr, /^(medsyn-clean: \d+ cleaned, \d+ rejected, \d+ read, \d+ reports\/s\n)+$/u, '-q: no summary, the progress asked for');
  const none = await sh(`${bin('medsyn-clean')} ${reports} --progress none > /dev/null`);
  t.equal(none.stderr.split('\n').filter(Boolean).length, 1, '--progress none: the summary only');
  const auto = await sh(`${bin('medsyn-clean')} ${reports} > /dev/null`);
  t.equal(auto.stderr.split('\n').filter(Boolean).length, 1, 'auto, stderr not a terminal: the summary only');
  const bad = await sh(`${bin('medsyn-clean')} ${reports} --progress=loud`);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /Invalid --progress: expected one of auto, tty, json, none, got 'loud' \[MEDSYN_ERR_USAGE\]/u);
  const help = await sh(`${bin('medsyn-clean')} --help`);
  t.match(help.stdout.toString(), /--progress MODE.*--stats FILE.*--progress alone \(not followed by a mode\) means tty.*"medsyn-stats\/1"/su);
});

t.test('medsyn-gen | medsyn-filter | medsyn-shard, then --merge: each --stats equals its summary line', async (t) => {
  const dir = t.testdir({});
  const out = join(dir, 'out');
  const pipeline = (index: number): string =>
    `${bin('medsyn-gen')} ${reports} --size 48 --skip-quality --partition ${index}/2 -q | ` +
    `${bin('medsyn-filter')} --progress json --stats ${q(join(dir, `filter-${index}.json`))} | ` +
    `${bin('medsyn-shard')} ${q(out)} --partition ${index}/2 --max-count 3 --progress json --stats ${q(join(dir, `shard-${index}.json`))}`;
  const runs = await Promise.all([sh(pipeline(0)), sh(pipeline(1))]);
  for (const [index, run] of runs.entries()) {
    t.equal(run.code, 0, run.stderr);
    const filter = readStats(join(dir, `filter-${index}.json`));
    checkShape(t, filter, 'medsyn-filter');
    const filtered = /^medsyn-filter: (\d+) kept, (\d+) rejected of (\d+) read in ([\d.]+) s \(([\d.]+) samples\/s\)$/mu.exec(run.stderr);
    t.ok(filtered, run.stderr);
    t.match(filter, { ok: true, items: Number(filtered![1]), rejects: Number(filtered![2]), details: { read: Number(filtered![3]), quality: { checked: Number(filtered![3]) } } });
    t.equal(filter.rate?.toFixed(1), filtered![5]);
    const filterFinal = progressLines(run.stderr).filter((line) => line['command'] === 'medsyn-filter').at(-1)!;
    t.match(filterFinal, { final: true, items: filter.items, rejects: filter.rejects });

    const shard = readStats(join(dir, `shard-${index}.json`));
    checkShape(t, shard, 'medsyn-shard');
    const sharded = new RegExp(`^medsyn-shard: .*out \\(partition ${index}/2\\): (\\d+) shards? written, (\\d+) samples, (\\d+) rejected, ([\\d.]+) MB in ([\\d.]+) s \\(([\\d.]+) MB/s\\); (\\d+) shards?, (\\d+) samples in total$`, 'mu').exec(run.stderr);
    t.ok(sharded, run.stderr);
    t.match(shard, {
      ok: true,
      items: Number(sharded![2]),
      rejects: Number(sharded![3]),
      details: { shardsWritten: Number(sharded![1]), partition: { index, count: 2 }, totalShards: Number(sharded![7]), totalSamples: Number(sharded![8]) },
    });
    t.equal(shard.items, filter.items, 'what the filter kept was sharded');
    t.equal(Number(shard.details['seconds']).toFixed(2), sharded![5]);
    t.ok(Math.abs(shard.elapsedMs / 1000 - Number(sharded![5])) <= 0.005 + 1e-9);
    t.equal((Number(shard.details['bytesWritten']) / 1e6).toFixed(1), sharded![4]);
    t.equal(Number(shard.details['megabytesPerSecond']).toFixed(1), sharded![6]);
    const shardFinal = progressLines(run.stderr).filter((line) => line['command'] === 'medsyn-shard').at(-1)!;
    t.match(shardFinal, { final: true, items: shard.items, rejects: shard.rejects });
  }

  const merged = await sh(`${bin('medsyn-shard')} --merge ${q(out)} --stats ${q(join(dir, 'merge.json'))}`);
  t.equal(merged.code, 0, merged.stderr);
  const line = /^medsyn-shard: .*out: merged (\d+) partitions: (\d+) shards, (\d+) samples, ([\d.]+) MB, (\d+) rejected; wrote/mu.exec(merged.stderr);
  t.ok(line, merged.stderr);
  const merge = readStats(join(dir, 'merge.json'));
  checkShape(t, merge, 'medsyn-shard');
  t.match(merge, { ok: true, items: Number(line![3]), rejects: Number(line![5]), details: { merge: true, partitions: Number(line![1]), shards: Number(line![2]) } });
  t.equal(merge.items, runs.map((_, index) => readStats(join(dir, `shard-${index}.json`)).items ?? NaN).reduce((a, b) => a + b));
});

t.test('medsyn-train and medsyn-eval: --progress json and --stats equal their summary lines', async (t) => {
  const dir = t.testdir({});
  await makePhantomShards(dir, 48);
  const shards = join(dir, 'shards');
  const run = join(dir, 'run');
  const trained = await sh(
    `${bin('medsyn-train')} ${q(shards)} --out ${q(run)} --steps 6 --batch-size 8 --eval-every 3 --val-fraction 0.25 --encoders ${q(join(ROOT, 'fixtures', 'clip-tiny'))} --threads 1 --progress json --stats ${q(join(dir, 'train.json'))}`,
  );
  t.equal(trained.code, 0, trained.stderr);
  const summary = /^medsyn-train: trained (\d+)\/(\d+) steps on (\d+) pairs \((\d+) held out\), loss ([\d.]+).*; ([\d.]+) s \(encoders/mu.exec(trained.stderr);
  t.ok(summary, trained.stderr);
  const train = readStats(join(dir, 'train.json'));
  checkShape(t, train, 'medsyn-train');
  t.match(train, { ok: true, unit: 'steps', items: Number(summary![1]), details: { steps: Number(summary![1]), totalSteps: Number(summary![2]), trainCount: Number(summary![3]), valCount: Number(summary![4]) } });
  t.equal(Number(train.details['lastLoss']).toFixed(4), summary![5]);
  t.ok(Math.abs(train.elapsedMs / 1000 - Number(summary![6])) <= 0.05 + 1e-9, 'elapsedMs is the summary\'s time');
  const trainLines = progressLines(trained.stderr);
  t.match(trainLines.at(-1), { type: 'progress', command: 'medsyn-train', final: true, items: train.items, rejects: train.rejects, total: 6, totalSteps: 6 });
  t.same(JSON.parse(trained.stdout.toString()).steps, train.items, 'stdout summary agrees');

  const evaluated = await sh(`${bin('medsyn-eval')} ${q(run)} --data ${q(shards)} --skip-probe --threads 1 --progress json --stats ${q(join(dir, 'eval.json'))}`);
  t.equal(evaluated.code, 0, evaluated.stderr);
  const line = /^medsyn-eval: (\d+) samples \((\d+) labelled\): zero-shot macro AUROC ([\d.]+|n\/a) over (\d+) observations; retrieval over (\d+): image→text R@1 ([\d.]+)/mu.exec(evaluated.stderr);
  t.ok(line, evaluated.stderr);
  const evaluation = readStats(join(dir, 'eval.json'));
  checkShape(t, evaluation, 'medsyn-eval');
  t.match(evaluation, { ok: true, items: Number(line![1]), details: { labelled: Number(line![2]), zeroShotCounted: Number(line![4]), probeMacroAuroc: null, retrieval: { count: Number(line![5]) } } });
  const auroc = evaluation.details['zeroShotMacroAuroc'] as number | null;
  t.equal(auroc === null ? 'n/a' : auroc.toFixed(3), line![3]);
  t.match(progressLines(evaluated.stderr).at(-1), { command: 'medsyn-eval', final: true, items: evaluation.items });
});

t.test('an unwritable --stats fails at once with MEDSYN_ERR_WRITE_FAILED, before any work', async (t) => {
  const dir = t.testdir({ 'a-file': 'x' });
  for (const [label, path] of [
    ['a missing folder', join(dir, 'missing', 'stats.json')],
    ['under a file', join(dir, 'a-file', 'stats.json')],
    ['a folder', dir],
  ] as const) {
    const clean = await sh(`${bin('medsyn-clean')} ${reports} --stats ${q(path)}`);
    t.equal(clean.code, 1, label);
    t.match(clean.stderr, /^medsyn-clean: Cannot write --stats .*\[MEDSYN_ERR_WRITE_FAILED\]\n$/u, label);
    t.equal(clean.stdout.length, 0, `${label}: nothing cleaned`);
  }
  const out = join(dir, 'out');
  const shard = await sh(`${bin('medsyn-gen')} ${reports} --size 32 --limit 2 -q | ${bin('medsyn-shard')} ${q(out)} --stats ${q(join(dir, 'missing', 's.json'))}`);
  t.equal(shard.code, 1);
  t.match(shard.stderr, /MEDSYN_ERR_WRITE_FAILED/u);
  t.notOk(existsSync(out), 'no shard folder made');
  t.same(readdirSync(dir), ['a-file']);
});

/** Spawns `node dist/bin/NAME.js args`, collecting its stderr; `onStderr` sees it as it comes. */
function start(name: string, args: string[], onStderr: (stderr: string, kill: (signal: NodeJS.Signals) => void) => void) {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'bin', `${name}.js`), ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    onStderr(stderr, (signal) => child.kill(signal));
  });
  return {
    child,
    done: new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr }))),
  };
}

t.test('interrupted runs write --stats with "interrupted": true', async (t) => {
  const dir = t.testdir({});
  // medsyn-gen stops cleanly on SIGTERM (exit 143): its stats are those of the closing line.
  let sent = false;
  const gen = start('medsyn-gen', [join(ROOT, 'fixtures', 'demo-reports.ndjson'), '--size', '128', '--progress', 'json', '--stats', join(dir, 'gen.json')], (stderr, kill) => {
    if (!sent && stderr.includes('"type":"progress"')) {
      sent = true;
      kill('SIGTERM');
    }
  });
  const generated = await gen.done;
  t.equal(generated.code, 143, generated.stderr);
  const genStats = readStats(join(dir, 'gen.json'));
  checkShape(t, genStats, 'medsyn-gen');
  t.match(genStats, { ok: false, exitCode: 143, interrupted: true, error: null });
  const line = /^medsyn-gen: interrupted: (\d+) samples, (\d+) rejected/mu.exec(generated.stderr);
  t.ok(line, generated.stderr);
  t.equal(genStats.items, Number(line![1]));
  t.ok((genStats.items ?? Infinity) < 600, `stopped early at ${genStats.items}`);

  // medsyn demo does not catch signals: the first one writes the stats so far and exits.
  const demo = start('medsyn', ['demo', '--out', join(dir, 'demo'), '--stats', join(dir, 'demo.json')], () => undefined);
  // Once it is at work (its modules loaded, its handlers in place): clean.ndjson appears.
  const poll = setInterval(() => {
    if (existsSync(join(dir, 'demo', 'clean.ndjson'))) {
      clearInterval(poll);
      demo.child.kill('SIGINT');
    }
  }, 20);
  const stopped = await demo.done;
  clearInterval(poll);
  t.equal(stopped.code, 130, stopped.stderr);
  t.match(stopped.stderr, /SIGINT: stopping/u);
  t.match(readStats(join(dir, 'demo.json')), { command: 'medsyn-demo', ok: false, exitCode: 130, interrupted: true });

  // medsyn-clean on a stdin left open: the second signal exits at once, and the stats are still written.
  // Signal once it is at work: it has written cleaned reports (its handlers are in place by then).
  const clean = spawn(process.execPath, [join(ROOT, 'dist', 'bin', 'medsyn-clean.js'), '--stats', join(dir, 'clean.json')], { stdio: ['pipe', 'pipe', 'pipe'] });
  let cleanErr = '';
  clean.stderr.on('data', (chunk: Buffer) => (cleanErr += chunk.toString()));
  const working = new Promise<void>((resolve) => clean.stdout.once('data', () => resolve()));
  clean.stdout.resume();
  // More than one batch of reports (a batch goes out whole), the input left open.
  clean.stdin.on('error', () => undefined); // what is still unread when it stops
  const demoReports = readFileSync(join(ROOT, 'fixtures', 'demo-reports.ndjson'));
  for (let i = 0; i < 8; i++) clean.stdin.write(demoReports);
  await working;
  clean.kill('SIGINT');
  setTimeout(() => clean.kill('SIGINT'), 500);
  const cleaned = await new Promise<{ code: number | null; stderr: string }>((resolve) => clean.on('close', (code) => resolve({ code, stderr: cleanErr })));
  clean.stdin.destroy();
  t.equal(cleaned.code, 130, cleaned.stderr);
  t.match(readStats(join(dir, 'clean.json')), { command: 'medsyn-clean', exitCode: 130, interrupted: true });
});

t.test('a failed run writes --stats with the error and the figures so far', async (t) => {
  const dir = t.testdir({});
  const stats = join(dir, 'clean.json');
  const run = await sh(`${bin('medsyn-clean')} ${reports} --on-error fail --workers 0 --stats ${q(stats)} > /dev/null`);
  t.equal(run.code, 1);
  const s = readStats(stats);
  checkShape(t, s, 'medsyn-clean');
  t.match(s, { ok: false, exitCode: 1, interrupted: false, error: { code: 'MEDSYN_ERR_REJECTED', message: /Rejected/u } });
  t.ok((s.items ?? 0) > 0, `${s.items} reports cleaned before the failure`);
  const usage = await sh(`${bin('medsyn-gen')} ${reports} --batch-size 0 --stats ${q(join(dir, 'gen.json'))}`);
  t.equal(usage.code, 2);
  t.match(readStats(join(dir, 'gen.json')), { ok: false, exitCode: 2, items: null, error: { code: 'MEDSYN_ERR_USAGE' } });
});
