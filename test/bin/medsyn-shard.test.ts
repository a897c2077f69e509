import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeSamples } from '../../streams/tar_decoder.js';
import type { ShardManifest } from '../../streams/shard_manifest.js';
import { collect } from '../streams/_chunks.js';
import { END, digestSamples, encodeToBuffer, makeSamples, pieces, pythonWebdatasetView, rawEntry } from '../streams/_tar_fixtures.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'dist', 'bin', 'medsyn-shard.js');
const SOURCES = ['bin/_shard_command.ts', 'streams/shard_writer.ts', 'streams/tar_decoder.ts', 'streams/_hashed_file_writer.ts', 'streams/_tar_format.ts'];


interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** Stop writing stdin after this many bytes (and do not close it). */
  stopAfter?: number;
  /** SIGKILL the process this many ms after it has opened OUTDIR (its manifest.json appeared). */
  killAfter?: number;
  /** The OUTDIR to watch for `killAfter`. */
  outDir?: string;
}

/** Runs the compiled CLI with `input` written to its stdin through a real pipe, in 16 KiB writes. */
function run(args: string[], input: Buffer | undefined, options: RunOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.on('error', () => undefined); // EPIPE when the child is killed or exits early
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    if (options.killAfter !== undefined) {
      // The writer opens OUTDIR by writing a new manifest.json (a new file renamed over the old one).
      const manifest = join(options.outDir ?? '', 'manifest.json');
      const identity = (): number | undefined => (existsSync(manifest) ? statSync(manifest).ino : undefined);
      const before = identity();
      const watch = setInterval(() => {
        if (child.exitCode !== null || child.signalCode !== null) clearInterval(watch);
        else if (identity() !== undefined && identity() !== before) {
          clearInterval(watch);
          setTimeout(() => child.kill('SIGKILL'), options.killAfter);
        }
      }, 1);
    }
    void (async () => {
      const bytes = input ?? Buffer.alloc(0);
      const end = Math.min(bytes.byteLength, options.stopAfter ?? bytes.byteLength);
      for (let at = 0; at < end; at += 16384) {
        if (child.exitCode !== null || child.signalCode !== null) return;
        if (!child.stdin.write(bytes.subarray(at, Math.min(at + 16384, end)))) await new Promise((next) => child.stdin.once('drain', next));
      }
      if (options.stopAfter === undefined) child.stdin.end();
    })();
  });
}

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const tarNames = (dir: string): string[] => readdirSync(dir).filter((name) => name.endsWith('.tar')).sort();

/** The input of the CLI tests: 160 samples of varied size, two duplicates and an entry that is no sample. */
async function makeInput(): Promise<{ bytes: Buffer; unique: number }> {
  const samples = makeSamples(160, { pngBytes: (index) => 300 + ((index * 7919) % 6000) });
  const body = await encodeToBuffer([...samples.slice(0, 100), samples[3], ...samples.slice(100), samples[150]]);
  const bytes = Buffer.concat([body.subarray(0, body.byteLength - 1024), rawEntry('README', Buffer.from('not a sample')), END]);
  return { bytes, unique: 160 };
}

/** The tests, registered only when the compiled CLI is there and newer than its sources. */
function registerTests(): void {
  t.test('medsyn-shard --help says what it writes, how resume works, and gives a pipeline', async (t) => {
    const help = await run(['--help'], undefined);
    t.equal(help.code, 0);
    for (const expected of [/Usage: medsyn-shard/u, /shard-000000_stats\.json/u, /sizes\.json/u, /manifest\.json/u, /Resume:/u, /cat out\/shard-\*\.tar \| medsyn-shard out2\//u, /--max-size BYTES/u, /Exit status/u]) {
      t.match(help.stdout, expected);
    }
  });

  t.test('medsyn-shard exits 2 on bad usage, naming the flag', async (t) => {
    for (const [args, message] of [
      [[], /Missing OUTDIR/u],
      [['a', 'b'], /Too many arguments/u],
      [['out', '--max-size', '1XB'], /Invalid --max-size/u],
      [['out', '--max-count', '0'], /Invalid --max-count/u],
      [['out', '--on-error', 'ignore'], /Invalid --on-error/u],
      [['out', '--prefix', 'a/b'], /Invalid option prefix/u],
      [['out', '--frobnicate'], /Unknown option '--frobnicate'/u],
    ] as const) {
      const result = await run([...args], Buffer.alloc(0));
      t.equal(result.code, 2, args.join(' '));
      t.match(result.stderr, message);
    }
  });

  t.test('medsyn-shard writes shards from a pipe, reports rejects, and the shards read everywhere', async (t) => {
    const dir = t.testdir({});
    const { bytes, unique } = await makeInput();
    const out = join(dir, 'out');
    const result = await run([out, '--max-count', '50', '--max-size', '1MB', '--rejects', join(dir, 'rejects.ndjson')], bytes);
    t.equal(result.code, 0, result.stderr);
    t.equal(result.stdout, '', 'nothing on stdout');
    t.match(result.stderr, /^medsyn-shard: .*out: 4 shards written, 160 samples, 3 rejected \(bad_entry 1, duplicate_key 2\), [\d.]+ MB in [\d.]+ s \([\d.]+ MB\/s\); 4 shards, 160 samples in total\n$/u);
    t.same(readJson(join(out, 'sizes.json')), { 'shard-000000.tar': 50, 'shard-000001.tar': 50, 'shard-000002.tar': 50, 'shard-000003.tar': 10 });
    const manifest = readJson(join(out, 'manifest.json')) as ShardManifest;
    t.match(manifest, { complete: true, totals: { samples: unique }, rejects: { bad_entry: 1, duplicate_key: 2 }, options: { maxCount: 50, maxSize: 1_000_000 } });
    const rejects = readFileSync(join(dir, 'rejects.ndjson'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { reason: string; id?: string; source: string });
    t.same(rejects.map((reject) => [reject.reason, reject.id]), [
      ['duplicate_key', 's0003'],
      ['duplicate_key', 's0150'],
      ['bad_entry', undefined],
    ]);
    const view = pythonWebdatasetView(tarNames(out).map((name) => join(out, name)));
    t.equal(view.samples.length, unique, 'Python reads every sample once');

    const resharded = join(dir, 'resharded');
    const all = Buffer.concat(tarNames(out).map((name) => readFileSync(join(out, name))));
    const again = await run([resharded, '--max-count', '50', '--max-size', '1MB'], all);
    t.equal(again.code, 0, again.stderr);
    for (const name of tarNames(out)) t.ok(readFileSync(join(resharded, name)).equals(readFileSync(join(out, name))), `cat out/shard-*.tar | medsyn-shard: ${name} identical`);
  });

  t.test('medsyn-shard refuses a foreign folder, a truncated stream, and with --on-error fail a duplicate', async (t) => {
    const dir = t.testdir({ foreign: { 'notes.txt': 'mine' } });
    const { bytes } = await makeInput();
    const foreign = await run([join(dir, 'foreign')], bytes);
    t.equal(foreign.code, 1);
    t.match(foreign.stderr, /not empty and holds no medsyn manifest\.json .*--overwrite.* \[MEDSYN_ERR_OUTPUT_CONFLICT\]\n$/u);
    const overwritten = await run([join(dir, 'foreign'), '--overwrite', '--quiet'], bytes);
    t.equal(overwritten.code, 0);
    t.equal(overwritten.stderr, '');

    const truncated = await run([join(dir, 'truncated')], bytes.subarray(0, 100_000));
    t.equal(truncated.code, 1);
    t.match(truncated.stderr, /Cannot read -: truncated at byte 100000.* \[MEDSYN_ERR_CORRUPT_TAR\]/u);
    t.notOk(readdirSync(join(dir, 'truncated')).some((name) => name.endsWith('.tmp')));

    const strict = await run([join(dir, 'strict'), '--on-error', 'fail', '--max-count', '30'], bytes);
    t.equal(strict.code, 1);
    t.match(strict.stderr, /Rejected sample s0003 \(duplicate_key\).* \[MEDSYN_ERR_REJECTED\]/u);
    t.same(tarNames(join(dir, 'strict')), ['shard-000000.tar', 'shard-000001.tar', 'shard-000002.tar'], 'shards completed before the reject stay');
  });

  t.test('medsyn-shard killed with SIGKILL at random points and re-run ends with exactly the samples of an uninterrupted run', async (t) => {
    const dir = t.testdir({});
    const { bytes } = await makeInput();
    const flags = ['--max-count', '11', '--max-size', '64KB'];
    const reference = join(dir, 'reference');
    let opened = 0;
    const watch = setInterval(() => {
      if (opened === 0 && existsSync(join(reference, 'manifest.json'))) opened = performance.now();
    }, 1);
    const whole = await run([reference, ...flags, '--quiet'], bytes);
    clearInterval(watch);
    // How long the run takes once OUTDIR is open: kills are spread over that time.
    const duration = Math.max(20, performance.now() - opened);
    t.comment(`an uninterrupted run writes for about ${duration.toFixed(0)} ms`);
    t.equal(whole.code, 0, whole.stderr);
    const referenceShards = tarNames(reference);
    t.ok(referenceShards.length > 15, `${referenceShards.length} shards`);
    const referenceSamples = digestSamples(
      (await Promise.all(referenceShards.map((name) => collect(decodeSamples(pieces(readFileSync(join(reference, name)), 65536)))))).flat(),
    );

    // A small seeded generator, so that a failing trial can be replayed.
    let state = Number(process.env['MEDSYN_KILL_SEED'] ?? 20240611);
    const random = (): number => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    const trials = 8;
    for (let trial = 0; trial < trials; trial++) {
      const out = join(dir, `trial-${trial}`);
      const kills: string[] = [];
      for (let attempt = 0; attempt < 1 + (trial % 3 === 2 ? 1 : 0); attempt++) {
        const byBytes = (trial + attempt) % 2 === 0;
        const options: RunOptions = byBytes
          ? { outDir: out, stopAfter: Math.floor(random() * bytes.byteLength), killAfter: 100 + Math.floor(random() * 100) }
          : { outDir: out, killAfter: Math.floor(random() * duration) };
        kills.push(byBytes ? `after ${options.stopAfter} bytes` : `after ${options.killAfter} ms`);
        const killed = await run([out, ...flags], bytes, options);
        const left = existsSync(out) ? readdirSync(out) : [];
        kills[kills.length - 1] += ` (${killed.signal ?? `exit ${killed.code}`}, ${left.filter((name) => name.endsWith('.tar')).length} shards and ${left.filter((name) => name.endsWith('.tmp')).length} temporary files left)`;
        t.ok(killed.signal === 'SIGKILL' || killed.code === 0, `trial ${trial}: killed ${kills.at(-1)}`);
        if (!existsSync(out)) continue;
        // Whatever the moment of the kill, every file under a final name is a whole shard of the reference.
        for (const name of tarNames(out)) {
          t.ok(readFileSync(join(out, name)).equals(readFileSync(join(reference, name))), `trial ${trial}: ${name} left by the kill is complete`);
        }
      }
      const resumed = await run([out, ...flags, '--quiet'], bytes);
      t.equal(resumed.code, 0, `trial ${trial}: the re-run succeeds ${resumed.stderr}`);
      t.same(tarNames(out), referenceShards, `trial ${trial}: the same shards`);
      const samples = digestSamples((await Promise.all(tarNames(out).map((name) => collect(decodeSamples(pieces(readFileSync(join(out, name)), 65536)))))).flat());
      t.same(samples, referenceSamples, `trial ${trial} (killed ${kills.join(', then ')}): sample by sample the uninterrupted run, none lost, none twice`);
      t.same(readdirSync(out).sort(), readdirSync(reference).sort(), `trial ${trial}: no leftover files`);
      for (const name of readdirSync(reference).filter((file) => file !== 'manifest.json')) {
        if (!readFileSync(join(out, name)).equals(readFileSync(join(reference, name)))) t.fail(`trial ${trial}: ${name} differs`);
      }
      const manifest = readJson(join(out, 'manifest.json')) as ShardManifest;
      const expected = readJson(join(reference, 'manifest.json')) as ShardManifest;
      t.same([manifest.shards, manifest.totals, manifest.rejects, manifest.complete], [expected.shards, expected.totals, expected.rejects, true], `trial ${trial}: the manifest`);
    }
  });
}

if (!existsSync(BIN) || SOURCES.some((source) => statSync(join(ROOT, source)).mtimeMs > statSync(BIN).mtimeMs)) {
  t.fail(`${BIN} is missing or older than its sources: run npx tsc -p tsconfig.json first`);
} else {
  registerTests();
}
