/**
 * Runs a command and measures its wall time and peak resident memory, for
 * benchmarks and scale tests. Linux only: peak RSS is the kernel's high-water mark
 * (`VmHWM` in /proc/PID/status), sampled until the process exits. Also the median
 * the benchmarks report repeated runs by.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';

/** What {@link measureCommand} found. */
export interface Measured {
  code: number | null;
  seconds: number;
  /** Peak resident set size in bytes (0 where /proc is unavailable). */
  peakRss: number;
  stderr: string;
}

function highWaterMark(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Spawns `command args`, optionally piping `stdin` into it, discards its stdout
 * unless `stdout` is given, and resolves when it exits.
 */
export async function measureCommand(
  command: string,
  args: string[],
  options: { stdin?: Readable; stdout?: number | 'ignore'; env?: NodeJS.ProcessEnv } = {},
): Promise<Measured> {
  const stdio: StdioOptions = [options.stdin ? 'pipe' : 'ignore', options.stdout ?? 'ignore', 'pipe'];
  const started = performance.now();
  const child = spawn(command, args, { stdio, env: options.env ?? process.env });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  if (options.stdin) {
    options.stdin.pipe(child.stdin!);
    child.stdin!.on('error', () => undefined);
  }
  let peakRss = 0;
  const timer = setInterval(() => {
    peakRss = Math.max(peakRss, highWaterMark(child.pid!));
  }, 20);
  // 'close' (all stdio flushed) can follow 'exit' in the same tick: listen for it from the start.
  const closed = new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)));
  const code = await closed;
  clearInterval(timer);
  return { code, seconds: (performance.now() - started) / 1000, peakRss, stderr };
}

/**
 * The median of `numbers`: the middle one, or the mean of the two middle ones.
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(numbers: readonly number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
