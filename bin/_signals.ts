/**
 * SIGINT and SIGTERM for the long-running commands: the first asks the run to stop
 * cleanly (stop reading, finish what is in flight, leave nothing half-written under a
 * final name); a second exits at once.
 *
 * @module
 */
import { isBrokenPipe } from './_cli.js';

/** What {@link catchInterrupts} hands the command. */
export interface Interrupts {
  /** Aborted at the first signal. */
  readonly signal: AbortSignal;
  /** 130 after SIGINT, 143 after SIGTERM (128 + the signal number), undefined before any. */
  exitCode(): number | undefined;
  /**
   * The exit code to end with when `err` is a closed reader after a signal (the next
   * stage of the pipe stopping too, which is expected); undefined for any other error.
   */
  exitAfter(err: unknown): number | undefined;
  /** Stops listening. */
  dispose(): void;
}

const CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/**
 * Listens for SIGINT and SIGTERM (spot-VM pre-emption sends SIGTERM). The first aborts
 * `signal` and says so on stderr; the second exits with its code at once.
 *
 * @example
 * ```ts
 * const interrupts = catchInterrupts('medsyn-gen');
 * try {
 *   await runGenerate(input, process.stdout, { signal: interrupts.signal });
 * } finally {
 *   interrupts.dispose();
 * }
 * return interrupts.exitCode() ?? 0;
 * ```
 */
export function catchInterrupts(prog: string, what = 'finishing what is in flight'): Interrupts {
  const controller = new AbortController();
  let code: number | undefined;
  const handler = (signal: keyof typeof CODES): void => {
    if (code !== undefined) {
      process.stderr.write(`${prog}: ${signal} again: stopping now\n`);
      process.exit(CODES[signal]);
    }
    code = CODES[signal];
    process.stderr.write(`${prog}: ${signal}: ${what} (send it again to stop at once)\n`);
    controller.abort(new Error(signal));
  };
  const onInt = (): void => handler('SIGINT');
  const onTerm = (): void => handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: controller.signal,
    exitCode: () => code,
    exitAfter: (err) => (code !== undefined && isBrokenPipe(err) ? code : undefined),
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}
