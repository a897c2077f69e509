import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { syntheticReports } from '../../bench/_mimic_corpus.js';
import type { Sample } from '../../streams/sample.js';
import { bin, comparable, samplesIn, sh } from './_pipes.js';


async function samplesOf(dir: string): Promise<Map<string, string>> {
  const samples = new Map<string, string>();
  for (const name of readdirSync(dir).filter((file) => /^shard-\d{6}\.tar$/.test(file)).sort()) {
    for (const sample of await samplesIn(readFileSync(join(dir, name)))) {
      if (samples.has(sample.key)) throw new Error(`${sample.key} twice`);
      samples.set(sample.key, JSON.stringify(comparable(sample)));
    }
  }
  return samples;
}

/** Starts the pipeline in its own process group, as a shell job is, and sends `signal` to the whole group after `delay` ms. */
function killedRun(script: string, signal: NodeJS.Signals, delay: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/bash', ['-c', `set -o pipefail; ${script}`], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already done
      }
    }, delay);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

t.test('medsyn-gen | medsyn-shard killed at random moments (SIGTERM, SIGINT, SIGKILL) and re-run gives exactly the samples of an uninterrupted run', async (t) => {
  const dir = t.testdir({});
  const input = join(dir, 'reports.ndjson');
  writeFileSync(input, [...syntheticReports(150, 5)].map((report) => JSON.stringify({ id: report.studyId, text: report.text })).join('\n') + '\n');
  const command = (out: string) => `${bin('medsyn-gen')} ${JSON.stringify(input)} --size 64 --batch-size 4 -q | ${bin('medsyn-shard')} ${JSON.stringify(out)} --max-count 20 -q`;

  const reference = await sh(command(join(dir, 'reference')));
  t.equal(reference.code, 0, reference.stderr);
  const expected = await samplesOf(join(dir, 'reference'));
  t.ok(expected.size > 100);

  // A seeded spread of moments over the run.
  let state = 7;
  const next = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (const [trial, signal] of (['SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGINT'] as const).entries()) {
    const out = join(dir, `trial-${trial}`);
    const delay = 50 + Math.floor(next() * 1000);
    const killed = await killedRun(command(out), signal, delay);
    // The shell of the job gets the signal too; what the commands said is what counts.
    if (signal !== 'SIGKILL') t.notMatch(killed.stderr, /unexpected|MEDSYN_ERR/, `trial ${trial}: a clean stop at ${delay} ms: ${killed.stderr}`);
    const leftovers = existsSync(out) ? readdirSync(out).filter((file) => file.endsWith('.tmp')) : [];
    if (signal !== 'SIGKILL') t.same(leftovers, [], `trial ${trial}: no half shard left after ${signal}`);
    const again = await sh(command(out));
    t.equal(again.code, 0, `trial ${trial}: the re-run succeeds: ${again.stderr}`);
    const got = await samplesOf(out);
    t.equal(got.size, expected.size, `trial ${trial} (${signal} at ${delay} ms): as many samples`);
    t.ok([...expected].every(([key, value]) => got.get(key) === value), `trial ${trial}: every sample the same`);
    t.match(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')), { complete: true });
  }
});

t.test('SIGTERM: medsyn-shard keeps its complete shards, writes the manifest and exits 143; medsyn-gen ends its tar stream and exits 143; a second signal stops at once', async (t) => {
  const dir = t.testdir({});
  const input = join(dir, 'reports.ndjson');
  writeFileSync(input, [...syntheticReports(400, 9)].map((report) => JSON.stringify({ id: report.studyId, text: report.text })).join('\n') + '\n');
  // medsyn-gen alone: its output is a whole tar however early it stops.
  const gen = spawn(process.execPath, [...bin('medsyn-gen').split(' ').slice(1).map((part) => JSON.parse(part) as string), input, '--size', '64', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  gen.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  let genErr = '';
  gen.stderr.on('data', (chunk: Buffer) => (genErr += chunk.toString()));
  // Stopped once it has written something: a slow machine may take a while to start.
  for (let waited = 0; waited < 20_000 && chunks.length === 0; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  gen.kill('SIGTERM');
  const genCode = await new Promise<number | null>((resolve) => gen.on('close', resolve));
  t.equal(genCode, 143, genErr);
  t.match(genErr, /SIGTERM: reading no more reports/);
  const samples = await samplesIn(Buffer.concat(chunks));
  t.ok(samples.length > 0 && samples.length < 400, `${samples.length} whole samples before the stop`);

  // medsyn-shard alone, fed part of that stream, stopped once it has completed a shard.
  const out = join(dir, 'out');
  const shard = spawn(process.execPath, [...bin('medsyn-shard').split(' ').slice(1).map((part) => JSON.parse(part) as string), out, '--max-count', '1'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let shardErr = '';
  shard.stderr.on('data', (chunk: Buffer) => (shardErr += chunk.toString()));
  const tar = Buffer.concat(chunks);
  shard.stdin.on('error', () => undefined);
  shard.stdin.write(tar.subarray(0, Math.floor(tar.length / 2)));
  for (let waited = 0; waited < 20_000 && !existsSync(join(out, 'shard-000000.tar')); waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  shard.kill('SIGTERM');
  const shardCode = await new Promise<number | null>((resolve) => shard.on('close', resolve));
  t.equal(shardCode, 143, shardErr);
  t.match(shardErr, /interrupted; \d+ complete shards with \d+ samples kept \(re-run the same command to resume\)/);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  t.match(manifest, { complete: false });
  t.ok(manifest.totals.shards > 0, `${manifest.totals.shards} complete shards kept`);
  t.same(readdirSync(out).filter((file) => file.endsWith('.tmp')), []);

  // Two signals: out at once, with the signal's code.
  const twice = spawn(process.execPath, [...bin('medsyn-gen').split(' ').slice(1).map((part) => JSON.parse(part) as string), input, '--size', '256', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Once it writes, its handlers are in place (before that, a signal ends Node the default way).
  let started = false;
  twice.stdout.on('data', () => (started = true));
  for (let waited = 0; waited < 20_000 && !started; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  twice.kill('SIGINT');
  await new Promise((resolve) => setTimeout(resolve, 50));
  twice.kill('SIGINT');
  t.equal(await new Promise<number | null>((resolve) => twice.on('close', resolve)), 130);
});
