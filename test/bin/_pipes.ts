/** Helpers for CLI tests: run a bash pipeline of the real binaries, read the tar they write. */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Sample } from '../../streams/sample.js';
import { readShards } from '../../streams/shard_reader.js';
import { decodeSamples } from '../../streams/tar_decoder.js';

/** The project root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `node dist/bin/NAME.js`, quoted for a shell. */
export function bin(name: string): string {
  return `${JSON.stringify(process.execPath)} ${JSON.stringify(join(ROOT, 'dist', 'bin', `${name}.js`))}`;
}

/** What a pipeline left: its exit status (with pipefail), stdout and stderr. */
export interface PipeRun {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `script` in bash with pipefail, from the project root, through real pipes. */
export function sh(script: string, cwd = ROOT): Promise<PipeRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/bash', ['-c', `set -o pipefail; ${script}`], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(stdout), stderr }));
  });
}

/** The samples of a tar stream held in memory. */
export async function samplesIn(tar: Buffer): Promise<Sample[]> {
  const samples: Sample[] = [];
  for await (const sample of decodeSamples(Readable.from([tar]))) samples.push(sample);
  return samples;
}

/** What must not change between runs: every byte of every part, but the timing in the JSON. */
export const comparable = (sample: Sample) => ({
  key: sample.key,
  parts: Object.fromEntries(
    Object.entries(sample.parts)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([extension, bytes]) =>
        extension === 'json'
          ? [extension, { ...JSON.parse(Buffer.from(bytes).toString()), generationMs: 0 }]
          : [extension, Buffer.from(bytes).toString('base64')],
      ),
  ),
});

/** What {@link mergedSamples} found in a merged shard folder. */
export interface MergedSamples {
  /** Keys met more than once. */
  twice: string[];
  /** Each key's sample, comparable. */
  byKey: Map<string, ReturnType<typeof comparable>>;
}

/** Every sample of a (merged) shard folder by key, and the keys met twice: to check it against one whole run. */
export async function mergedSamples(dir: string): Promise<MergedSamples> {
  const byKey = new Map<string, ReturnType<typeof comparable>>();
  const twice: string[] = [];
  for await (const sample of readShards(dir)) {
    if (byKey.has(sample.key)) twice.push(sample.key);
    byKey.set(sample.key, comparable(sample));
  }
  return { twice, byKey };
}

/**
 * Puts `commands` (names from package.json's `bin`) in folder `dir` as npm's bin shims
 * would: small executable scripts that run node on `dist/bin/<name>.js`. (tsc does not
 * make its output executable, so a link to it would not run from a fresh build.)
 */
export function installCommands(dir: string, commands: readonly string[]): void {
  mkdirSync(dir, { recursive: true });
  for (const command of commands) {
    const path = join(dir, command);
    writeFileSync(path, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(ROOT, 'dist', 'bin', `${command}.js`))} "$@"\n`);
    chmodSync(path, 0o755);
  }
}
