import t from 'tap';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { measureCommand } from '../../bench/_measure.js';
import { mimicEntryName, syntheticReports, writeZip } from '../../bench/_mimic_corpus.js';
import { makeZip } from '../streams/_zip.js';

const root = new URL('../../', import.meta.url).pathname;
const clean = join(root, 'dist/bin/medsyn-clean.js');
const medsyn = join(root, 'dist/bin/medsyn.js');
const reportsDir = join(root, 'fixtures/reports');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a CLI with `input` written to its stdin through a real pipe. */
function run(bin: string, args: string[], input?: string | Buffer, cwd = root): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

const records = (stdout: string): Array<Record<string, any>> => stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));

/** Every fixture report as [zip entry name, text]. */
function fixtureEntries(): Array<[string, string]> {
  const entries: Array<[string, string]> = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else entries.push([relative(reportsDir, path), readFileSync(path, 'utf8')]);
    }
  };
  walk(join(reportsDir, 'files'));
  return entries;
}

t.test('medsyn-clean cleans the fixture folder: records on stdout, rejects in a file, a summary on stderr', async (t) => {
  const dir = t.testdir({});
  const result = await run(clean, [reportsDir, '--rejects', join(dir, 'rejects.ndjson')]);
  t.equal(result.code, 0, result.stderr);
  const out = records(result.stdout);
  t.equal(out.length, 23);
  t.match(result.stderr, /^medsyn-clean: 23 cleaned, 3 rejected \(no_section 2, too_short 1\) of 26 read in /);
  const rejects = records(readFileSync(join(dir, 'rejects.ndjson'), 'utf8'));
  t.same(rejects.map((reject) => [reject.id, reject.reason]).sort(), [['s50000018', 'too_short'], ['s50000020', 'no_section'], ['s58235663', 'no_section']]);

  const byId = new Map(out.map((record) => [record.id, record]));
  const numbered = byId.get('s50000002')!;
  t.equal(numbered.subjectId, 'p10000002');
  t.equal(numbered.sectionUsed, 'impression');
  t.equal(numbered.caption, 'New left lower lobe consolidation, concerning for pneumonia. Small left pleural effusion. No pneumothorax.');
  t.equal(numbered.text, undefined, 'the raw text only with --keep-text');
  t.same(Object.keys(numbered), ['id', 'subjectId', 'source', 'sections', 'sectionUsed', 'prompt', 'caption', 'labels', 'attributes']);
  t.equal(byId.get('s50000007')!.caption, 'Large right pneumothorax with leftward mediastinal shift.');
  t.equal(byId.get('s50000010')!.caption, 'Left chest tube in place. Tiny residual left apical pneumothorax. Subcutaneous emphysema along the left chest wall.');
  t.equal(byId.get('s51491012')!.sectionUsed, 'custom', 'the official per-study correction');
  t.equal(byId.get('s50000009')!.caption, 'Moderate pulmonary edema and bilateral pleural effusions, larger on the right. Cardiomegaly is unchanged.', 'CRLF report');
  t.equal(byId.get('s50000007')!.labels.pneumothorax, 1);
});

t.test('medsyn-clean gives the same records from the zip, the folder and stdin', async (t) => {
  const dir = t.testdir({});
  const zipPath = join(dir, 'mimic-cxr-reports.zip');
  writeFileSync(zipPath, makeZip(fixtureEntries().map(([name, data]) => ({ name, data }))));
  const strip = (stdout: string): string => JSON.stringify(records(stdout).map(({ source: _source, ...record }) => record));
  const fromDir = await run(clean, [reportsDir, '-q']);
  const fromZip = await run(clean, [zipPath, '-q']);
  const fromStdin = await run(clean, ['-q'], readFileSync(zipPath));
  t.equal(fromZip.code, 0, fromZip.stderr);
  t.equal(fromStdin.code, 0, fromStdin.stderr);
  t.equal(strip(fromZip.stdout), strip(fromDir.stdout));
  t.equal(strip(fromStdin.stdout), strip(fromDir.stdout), 'a zip piped into stdin');
  t.equal(records(fromZip.stdout)[0]!.source, `${zipPath}:files/p10/p10000001/s50000001.txt`);
  t.equal(fromZip.stderr, '', '--quiet prints no summary');
});

t.test('medsyn-clean reads the official sectioned CSV and takes its sections as given', async (t) => {
  const result = await run(clean, [join(root, 'fixtures/official/mimic_cxr_sectioned.csv')]);
  t.equal(result.code, 0, result.stderr);
  const fromCsv = new Map(records(result.stdout).map((record) => [record.id, record]));
  const fromDir = new Map(records((await run(clean, [reportsDir, '-q'])).stdout).map((record) => [record.id, record]));
  t.ok(fromCsv.size >= 20);
  for (const [id, record] of fromCsv) {
    const other = fromDir.get(id);
    if (other && other.sectionUsed !== 'custom') t.equal(record.caption, other.caption, id);
  }
});

t.test('medsyn-clean reads a generic CSV and NDJSON from stdin through a pipe', async (t) => {
  const csv = 'study_id,report\r\ns1,"FINAL REPORT\r\n IMPRESSION: Small left pleural effusion.\r\n"\r\ns2,"FINAL REPORT\n FINDINGS: Lungs are clear.\n"\r\n';
  const emptyStdin = await run(clean, ['--format', 'csv'], '');
  t.equal(emptyStdin.code, 1);
  t.match(emptyStdin.stderr, /\[MEDSYN_ERR_EMPTY_INPUT\]/, 'an empty pipe is an empty input');
  const withInput = await run(clean, ['--id-column', 'study_id', '--text-column', 'report'], `\ufeff${csv}`);
  t.equal(withInput.code, 0, withInput.stderr);
  t.same(records(withInput.stdout).map((record) => [record.id, record.caption, record.labels.pleuralEffusion]), [
    ['s1', 'Small left pleural effusion.', 1],
    ['s2', 'Lungs are clear.', undefined],
  ]);
  const ndjson = `${JSON.stringify({ id: 's9', text: 'R\n IMPRESSION: No acute process.\n' })}\nnot json\n`;
  const fromNdjson = await run(clean, ['-'], ndjson);
  t.equal(fromNdjson.code, 0);
  t.same(records(fromNdjson.stdout).map((record) => record.caption), ['No acute process.']);
  t.match(fromNdjson.stderr, /1 cleaned, 1 rejected \(bad_json 1\)/);
});

t.test('medsyn-clean --dedupe, --keep-text, --tokenizer and --max-tokens', async (t) => {
  const deduped = await run(clean, [reportsDir, '--dedupe']);
  t.match(deduped.stderr, /duplicate 1/, 's50000021 repeats the prompt of s50000001');
  const kept = records((await run(clean, [reportsDir, '--keep-text', '-q'])).stdout);
  t.match(kept[0]!.text, /FINAL REPORT/);
  const tight = records((await run(clean, [reportsDir, '--tokenizer', join(root, 'fixtures/tokenizer'), '--max-tokens', '12', '-q'])).stdout);
  const long = tight.find((record) => record.id === 's50000006')!;
  t.ok(long.prompt.length < long.caption.length, 'a long caption is cut');
  t.ok(long.caption.startsWith(long.prompt), 'at a sentence boundary from the start');
});

t.test('medsyn-clean gives the same output on worker threads and in one thread', async (t) => {
  const inOne = await run(clean, [reportsDir, '--workers', '0', '--dedupe', '-q']);
  const onTwo = await run(clean, [reportsDir, '--workers', '2', '--dedupe', '-q']);
  t.equal(onTwo.stdout, inOne.stdout);
  t.ok(inOne.stdout.length > 1000);
});

t.test('medsyn-clean gives the same output on worker threads across many batches, with --dedupe and --limit', async (t) => {
  const dir = t.testdir({});
  const zipPath = join(dir, 'corpus.zip');
  const encoder = new TextEncoder();
  await writeZip(
    zipPath,
    (function* () {
      for (const report of syntheticReports(3000, 3)) yield { name: mimicEntryName(report), data: encoder.encode(report.text) };
    })(),
  );
  for (const extra of [[], ['--dedupe'], ['--dedupe', '--limit', '1234']]) {
    const inOne = await run(clean, [zipPath, '--workers', '0', ...extra]);
    const onTwo = await run(clean, [zipPath, '--workers', '2', ...extra]);
    t.equal(onTwo.code, 0, onTwo.stderr);
    t.equal(onTwo.stdout, inOne.stdout, extra.join(' ') || 'defaults');
    t.equal(onTwo.stderr.replace(/ in .*$/s, ''), inOne.stderr.replace(/ in .*$/s, ''), 'the same counts');
  }
  const deduped = await run(clean, [zipPath, '--dedupe', '-q']);
  t.ok(records(deduped.stdout).length < 3000, 'the synthetic corpus repeats prompts, so dedupe drops some');
});

t.test('medsyn-clean fails on bad files with one line, an error code and exit 1', async (t) => {
  const dir = t.testdir({
    'empty.csv': '',
    'unbalanced.csv': 'id,text\ns1,"R\n IMPRESSION: ok.\ns2,oops\n',
    'columns.csv': 'study_id,body\ns1,x\n',
    'truncated.zip': makeZip([{ name: 'files/p10/p10000001/s50000001.txt', data: 'R\n IMPRESSION: Clear lungs.\n' }]).subarray(0, 40),
    'reports.zip': makeZip([{ name: 'files/p10/p10000001/s50000001.txt', data: 'R\n IMPRESSION: Clear lungs.\n' }]),
  });
  const cases: Array<[string[], RegExp]> = [
    [['/nonexistent/reports.zip'], /\[MEDSYN_ERR_NOT_FOUND\]$/],
    [[join(dir, 'empty.csv')], /\[MEDSYN_ERR_EMPTY_INPUT\]$/],
    [[join(dir, 'unbalanced.csv')], /\[MEDSYN_ERR_BAD_CSV\]$/],
    [[join(dir, 'columns.csv')], /\[MEDSYN_ERR_MISSING_COLUMN\]$/],
    [[join(dir, 'truncated.zip')], /\[MEDSYN_ERR_CORRUPT_ZIP\]$/],
    [[reportsDir, '--on-error', 'fail'], /\[MEDSYN_ERR_REJECTED\]$/],
    [[reportsDir, '--tokenizer', dir], /\[MEDSYN_ERR_BAD_TOKENIZER\]$/],
    [[join(dir, 'reports.zip'), '--tokenizer', dir], /\[MEDSYN_ERR_BAD_TOKENIZER\]$/],
  ];
  for (const [args, code] of cases) {
    const result = await run(clean, args);
    t.equal(result.code, 1, args.join(' '));
    const lines = result.stderr.trim().split('\n');
    t.equal(lines.length, 1, `one line: ${result.stderr}`);
    t.match(lines[0], /^medsyn-clean: /);
    t.match(lines[0], code);
  }
  const debug = await run(clean, ['/nonexistent/reports.zip', '--debug']);
  t.match(debug.stderr, /\n\s+at /, '--debug adds the stack');
});

t.test('medsyn-clean fails on a tokenizer it cannot load while stdin is still open', async (t) => {
  const dir = t.testdir({});
  const child = spawn(process.execPath, [clean, '-', '--tokenizer', dir], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.on('error', () => undefined);
  child.stdin.write('id,text\n');
  // stdin is left open: the workers' start error must not wait for the input to end.
  const timer = setTimeout(() => child.kill(), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  child.stdin.destroy();
  t.equal(code, 1);
  t.match(stderr, /\[MEDSYN_ERR_BAD_TOKENIZER\]$/m);
});

t.test('medsyn-clean exits 2 on bad usage and 0 on --help', async (t) => {
  const unknown = await run(clean, ['--frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /Unknown option '--frobnicate'.*\[MEDSYN_ERR_USAGE\]/);
  const badNumber = await run(clean, ['--limit', 'ten']);
  t.equal(badNumber.code, 2);
  t.match(badNumber.stderr, /Invalid --limit/);
  const badFormat = await run(clean, ['--format', 'xlsx']);
  t.equal(badFormat.code, 2);
  const help = await run(clean, ['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: medsyn-clean/);
  t.match(help.stdout, /--rejects FILE/);
  t.match(help.stdout, /Examples:/);
});

t.test('medsyn clean is the same command as medsyn-clean; medsyn lists its commands', async (t) => {
  const viaMedsyn = await run(medsyn, ['clean', reportsDir, '-q']);
  const viaAlias = await run(clean, [reportsDir, '-q']);
  t.equal(viaMedsyn.stdout, viaAlias.stdout);
  const overview = await run(medsyn, ['--help']);
  t.match(overview.stdout, /clean\s+Read radiology reports/);
  const unknown = await run(medsyn, ['frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command 'frobnicate'/);
});

t.test('medsyn-clean stops quietly when the reader of its stdout goes away', async (t) => {
  const result = await new Promise<Run>((resolve) => {
    const child = spawn(process.execPath, [clean, reportsDir, '--workers', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdout.once('data', () => child.stdout.destroy());
    child.on('close', (code) => resolve({ code, stdout: '', stderr }));
  });
  t.equal(result.code, 0);
  t.notMatch(result.stderr, /EPIPE|unexpected/);
});

t.test('medsyn-clean streams 200k reports through a pipe with peak RSS under 200 MB', async (t) => {
  const count = 200_000;
  async function* ndjson() {
    let chunk = '';
    for (const report of syntheticReports(count, 7)) {
      chunk += `${JSON.stringify({ id: report.studyId, subjectId: report.subjectId, text: report.text })}\n`;
      if (chunk.length > 1 << 16) {
        yield chunk;
        chunk = '';
      }
    }
    yield chunk;
  }
  const devNull = openSync('/dev/null', 'w');
  // As a user runs it: tap's process-info plugin hooks spawn() to add its coverage hooks to
  // every child (NODE_OPTIONS --import, NODE_V8_COVERAGE), which hold ~50 MB more. `exec env -i`
  // starts node with a clean environment under the same PID, so /proc still measures it.
  const run = await measureCommand('/bin/sh', ['-c', 'exec env -i PATH="$PATH" "$0" "$@"', process.execPath, clean, '-'], {
    stdin: Readable.from(ndjson()),
    stdout: devNull,
  });
  closeSync(devNull);
  t.equal(run.code, 0, run.stderr);
  const summary = /^medsyn-clean: (\d+) cleaned, (\d+) rejected.* of (\d+) read/.exec(run.stderr);
  t.ok(summary, run.stderr);
  t.equal(Number(summary![3]), count, 'every report read');
  t.equal(Number(summary![1]) + Number(summary![2]), count, 'each cleaned or rejected');
  t.ok(Number(summary![2]) < 10, 'nearly all cleaned');
  t.ok(run.peakRss > 0, 'peak RSS measured from /proc');
  t.ok(run.peakRss < 200 * 2 ** 20, `peak RSS ${(run.peakRss / 2 ** 20).toFixed(0)} MB < 200 MB`);
});
