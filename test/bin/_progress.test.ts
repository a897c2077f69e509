import t from 'tap';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  checkStatsPath,
  etaOf,
  formatDuration,
  normalizeProgressArgv,
  progressOutput,
  startProgress,
  statsFile,
  writeJsonAtomically,
} from '../../bin/_progress.js';
import { MedsynError } from '../../errors.js';

/** A stream that keeps what is written, a terminal or not. */
function sink(isTTY: boolean): Writable & { isTTY: boolean; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  }) as Writable & { isTTY: boolean; text: () => string };
  stream.isTTY = isTTY;
  stream.text = () => chunks.join('');
  return stream;
}

t.test('a bare --progress becomes --progress=tty; a mode after it is its value', async (t) => {
  t.same(normalizeProgressArgv(['in.csv', '--progress']), ['in.csv', '--progress=tty']);
  t.same(normalizeProgressArgv(['--progress', '--limit', '8']), ['--progress=tty', '--limit', '8']);
  t.same(normalizeProgressArgv(['--progress', 'in.csv']), ['--progress=tty', 'in.csv'], 'a positional is not a mode');
  t.same(normalizeProgressArgv(['--progress', 'json', 'in.csv']), ['--progress', 'json', 'in.csv']);
  t.same(normalizeProgressArgv(['--progress=none']), ['--progress=none']);
  t.same(normalizeProgressArgv(['--', '--progress']), ['--', '--progress'], 'after -- nothing is a flag');
});

t.test('progressOutput resolves auto by the terminal, and refuses other values', async (t) => {
  t.equal(progressOutput(undefined, true), 'line');
  t.equal(progressOutput(undefined, false), 'none');
  t.equal(progressOutput('auto', false), 'none');
  t.equal(progressOutput('tty', false), 'line');
  t.equal(progressOutput('json', true), 'json');
  t.equal(progressOutput('none', true), 'none');
  t.throws(() => progressOutput('yes', true), { code: 'MEDSYN_ERR_USAGE', message: /expected one of auto, tty, json, none/ });
});

t.test('ETA and durations', async (t) => {
  t.equal(etaOf(25, 100, 1000), 3000);
  t.equal(etaOf(0, 100, 1000), null, 'no rate yet');
  t.equal(etaOf(25, undefined, 1000), null, 'no total');
  t.equal(etaOf(120, 100, 1000), 0, 'past the total: 0');
  t.equal(formatDuration(65_000), '1:05');
  t.equal(formatDuration(3_723_000), '1:02:03');
});

t.test('the human line: rewritten in place on a terminal, a line each otherwise, throttled, ETA with a total', async (t) => {
  const tty = sink(true);
  const progress = startProgress('medsyn-x', 'line', 'items', (n: number) => ({ items: n, rejects: 1, total: 10 }), tty, 50);
  progress.update(1);
  progress.update(2); // within the interval: not shown
  await new Promise((resolve) => setTimeout(resolve, 70));
  progress.update(5);
  progress.finish(10);
  const text = tty.text();
  t.match(text, /^\rmedsyn-x: 1 items, 1 rejected, [\d.]+ items\/s, ETA \d+:\d\d\x1b\[K\rmedsyn-x: 5 items, 1 rejected, [\d.]+ items\/s, ETA \d+:\d\d\x1b\[K\n$/u);
  t.notMatch(text, /2 items/u);

  const pipe = sink(false);
  const lines = startProgress('medsyn-x', 'line', 'items', (n: number) => ({ items: n, rejects: 0, line: `${n} things` }), pipe, 0);
  lines.update(1);
  lines.update(2);
  lines.finish(2);
  t.equal(pipe.text(), 'medsyn-x: 1 things\nmedsyn-x: 2 things\n', 'no \\r, no trailing newline of its own');

  const none = sink(true);
  const quiet = startProgress('medsyn-x', 'none', 'items', (n: number) => ({ items: n, rejects: 0 }), none, 0);
  quiet.update(1);
  quiet.finish(1);
  t.equal(none.text(), '');
});

t.test('JSON lines: one object a line, etaMs null without a total, a single final line', async (t) => {
  const out = sink(true);
  const progress = startProgress('medsyn-x', 'json', 'samples', (s: { n: number; r: number }) => ({ items: s.n, rejects: s.r, extra: { read: s.n + s.r } }), out, 0);
  progress.update({ n: 1, r: 0 });
  progress.update({ n: 3, r: 1 });
  progress.finish({ n: 4, r: 1 });
  progress.finish({ n: 9, r: 9 });
  const lines = out.text().trimEnd().split('\n').map((line) => JSON.parse(line));
  t.equal(lines.length, 3);
  t.match(lines[0], { type: 'progress', command: 'medsyn-x', items: 1, rejects: 0, rate: Number, elapsedMs: Number, etaMs: null, read: 1 });
  t.match(lines[2], { items: 4, rejects: 1, read: 5, final: true });
  t.notOk('final' in lines[1]);
});

t.test('stats files: checked before the run, built from the figures, written atomically', async (t) => {
  const dir = t.testdir({ file: 'x', sub: {} });
  t.equal(checkStatsPath(join(dir, 'stats.json')), join(dir, 'stats.json'));
  t.same(readdirSync(dir).sort(), ['file', 'sub'], 'the probe is gone');
  for (const bad of [join(dir, 'missing', 'stats.json'), join(dir, 'file', 'stats.json'), join(dir, 'sub')]) {
    t.throws(() => checkStatsPath(bad), { code: 'MEDSYN_ERR_WRITE_FAILED', message: `Cannot write --stats ${bad}: ` }, bad);
  }
  const startedAt = new Date('2026-01-01T00:00:00Z');
  const done = statsFile('medsyn-x', { unit: 'reports', items: 20, rejects: 3, rejectsByReason: { too_short: 1, empty: 2, other: undefined }, elapsedMs: 2000 }, { exitCode: 0, startedAt, elapsedMs: 2500 });
  t.match(done, { format: 'medsyn-stats/1', command: 'medsyn-x', ok: true, exitCode: 0, interrupted: false, error: null, elapsedMs: 2000, items: 20, rejects: 3, rate: 10, startedAt: '2026-01-01T00:00:00.000Z' });
  t.same(Object.keys(done.rejectsByReason), ['empty', 'too_short'], 'sorted, undefined counts left out');
  const failed = statsFile('medsyn-x', undefined, { exitCode: 1, startedAt, elapsedMs: 10, error: new MedsynError('MEDSYN_ERR_NOT_FOUND', 'No such input') });
  t.match(failed, { ok: false, exitCode: 1, items: null, rate: null, error: { code: 'MEDSYN_ERR_NOT_FOUND', message: 'No such input' }, elapsedMs: 10 });
  t.match(statsFile('medsyn-x', { unit: 'steps', items: 1, rejects: 0 }, { exitCode: 143, startedAt, elapsedMs: 10 }), { ok: false, interrupted: true });

  const target = join(dir, 'stats.json');
  writeFileSync(target, 'old');
  writeJsonAtomically(target, done);
  t.same(JSON.parse(readFileSync(target, 'utf8')), done);
  t.same(readdirSync(dir).sort(), ['file', 'stats.json', 'sub'], 'no temporary file left');
  mkdirSync(join(dir, 'taken'));
  t.throws(() => writeJsonAtomically(join(dir, 'taken'), done), { code: 'MEDSYN_ERR_WRITE_FAILED' });
  t.same(readdirSync(dir).sort(), ['file', 'stats.json', 'sub', 'taken'], 'a failed write leaves no temporary file');
});
