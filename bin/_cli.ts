/**
 * What every medsyn CLI shares: flag parsing, `--help`, `--progress` and `--stats`
 * (see `_progress.ts`), and turning errors into one line on stderr and an exit code
 * (0 done, 1 failed, 2 bad usage; 130/143 after SIGINT/SIGTERM).
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ErrorCodes, MedsynError } from '../errors.js';
import { VERSION } from '../version.js';
import {
  checkStatsPath,
  normalizeProgressArgv,
  progressOutput,
  PROGRESS_HELP,
  startProgress,
  STATS_FLAG,
  statsFile,
  writeJsonAtomically,
  type CommandStats,
  type Progress,
  type ProgressOutput,
  type ProgressView,
} from './_progress.js';

/** The flag table of one command, in `node:util` parseArgs form, each flag with its help line. */
export type FlagSpec = Record<
  string,
  {
    type: 'string' | 'boolean';
    short?: string;
    multiple?: boolean;
    /** The value's placeholder in the help, e.g. `FILE`. */
    arg?: string;
    /** One line for `--help`, defaults included. */
    help: string;
  }
>;

/** One command of `medsyn <command>`, also installed as the alias `medsyn-<name>`. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The synopsis lines, e.g. `medsyn-clean [options] [INPUT]`. */
  usage: string[];
  /** Paragraphs after the flag table: formats, examples. */
  details: string;
  flags: FlagSpec;
  /** Whether the command reads data from stdin when no input is named (usage is shown on a bare terminal). */
  readsStdin: boolean;
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[], context: RunContext): Promise<number | void>;
}

/** What {@link runCommand} hands a command besides its flags: progress and `--stats`. */
export interface RunContext {
  /** `medsyn-<name>`, as progress lines and stats name the command. */
  readonly prog: string;
  /** What `--progress` resolved to (`none` for a command without the flag). */
  readonly progress: ProgressOutput;
  /** A progress reporter in the run's mode (see `startProgress`). */
  startProgress<S>(unit: string, view: (state: S) => ProgressView): Progress<S>;
  /**
   * Registers the figures `--stats` gets. `provider` is called once, when the run ends
   * however it ends (done, failed, interrupted), so a closure over live counters gives
   * the figures reached so far.
   */
  stats(provider: () => CommandStats | undefined): void;
}

/** Flags every command takes. */
export const COMMON_FLAGS: FlagSpec = {
  help: { type: 'boolean', short: 'h', help: 'show this help and exit' },
  version: { type: 'boolean', help: 'print the medsyn version and exit' },
  debug: { type: 'boolean', help: 'print a stack trace on failure' },
  stats: STATS_FLAG,
};

/** The paragraph on `--stats` for commands without `--progress`. */
const STATS_HELP = `
Summary: one line on stderr ends the run. --stats FILE writes its figures as
JSON: {"format":"medsyn-stats/1","command","medsyn","ok","exitCode",
"interrupted","error","startedAt","elapsedMs","unit","items","rejects",
"rejectsByReason","rate","details"}, through a temporary file renamed into
place. An unwritable FILE fails before the run starts
(MEDSYN_ERR_WRITE_FAILED). It is written however the run ends: after
SIGINT/SIGTERM with "interrupted": true (exit 130/143), after a failure
with "ok": false and "error": {"code","message"}.`;

/**
 * Renders the `--help` text of a command.
 *
 * @example
 * ```ts
 * process.stdout.write(helpText(cleanCommand));
 * ```
 */
export function helpText(command: Command): string {
  const rows = Object.entries({ ...command.flags, ...COMMON_FLAGS }).map(([name, flag]) => {
    const short = flag.short ? `-${flag.short}, ` : '    ';
    const value = flag.type === 'string' ? ` ${flag.arg ?? 'VALUE'}` : '';
    return [`  ${short}--${name}${value}`, flag.help] as const;
  });
  const width = Math.min(34, Math.max(...rows.map(([left]) => left.length)) + 2);
  const table = rows
    .map(([left, help]) => (left.length >= width ? `${left}\n${' '.repeat(width)}${help}` : left.padEnd(width) + help))
    .join('\n');
  return [
    `${command.usage.map((line, i) => (i === 0 ? `Usage: ${line}` : `       ${line}`)).join('\n')}`,
    '',
    command.summary,
    '',
    'Options:',
    table,
    '',
    command.details.trim(),
    '',
    ('progress' in command.flags ? PROGRESS_HELP : STATS_HELP).trim(),
    '',
  ].join('\n');
}

/**
 * Parses argv, handles `--help`/`--version`, runs the command, and maps what it
 * throws to a one-line message and an exit code. Resolves to the exit code;
 * it never throws. A bare `--progress` is read as `--progress tty`; `--stats FILE`
 * is checked before the run and written when it ends, however it ends (see
 * `_progress.ts`).
 *
 * @example
 * ```ts
 * process.exitCode = await runCommand(cleanCommand, process.argv.slice(2));
 * ```
 */
export async function runCommand(command: Command, argv: string[], prog = `medsyn-${command.name}`): Promise<number> {
  const debug = argv.includes('--debug');
  const name = `medsyn-${command.name}`;
  const startedAt = new Date();
  const started = performance.now();
  let statsPath: string | undefined;
  let provider: (() => CommandStats | undefined) | undefined;
  let written = false;
  // The stats file, once: at the end, from a signal that the command does not handle, or at exit.
  const writeStats = (exitCode: number, error?: unknown): void => {
    if (statsPath === undefined || written) return;
    written = true;
    let stats: CommandStats | undefined;
    try {
      stats = provider?.();
    } catch {
      stats = undefined;
    }
    writeJsonAtomically(statsPath, statsFile(name, stats, { exitCode, startedAt, elapsedMs: performance.now() - started, ...(error === undefined ? {} : { error }) }));
  };
  const onExit = (code: number): void => {
    try {
      writeStats(code);
    } catch {
      // exiting anyway
    }
  };
  // A command that catches SIGINT/SIGTERM itself (catchInterrupts) stops cleanly and returns 130/143;
  // for one that does not, the first signal writes the stats and exits at once. Listeners there
  // before the command ran (a preloaded module's) do not count as the command's.
  const before = { SIGINT: new Set<unknown>(), SIGTERM: new Set<unknown>() };
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    const own = signal === 'SIGINT' ? onInt : onTerm;
    if (process.listeners(signal).some((listener) => listener !== own && !before[signal].has(listener))) return;
    const code = signal === 'SIGINT' ? 130 : 143;
    process.stderr.write(`${prog}: ${signal}: stopping\n`);
    onExit(code);
    process.exit(code);
  };
  const onInt = (): void => onSignal('SIGINT');
  const onTerm = (): void => onSignal('SIGTERM');
  try {
    const options: ParseArgsConfig['options'] = {};
    for (const [name, flag] of Object.entries({ ...command.flags, ...COMMON_FLAGS })) {
      options[name] = { type: flag.type, ...(flag.short ? { short: flag.short } : {}), ...(flag.multiple ? { multiple: true } : {}) };
    }
    let parsed;
    try {
      parsed = parseArgs({ args: normalizeProgressArgv(argv), options, allowPositionals: true, strict: true });
    } catch (err) {
      throw new MedsynError(ErrorCodes.USAGE, `${(err as Error).message.replace(/\. To specify.*$/s, '')} (see ${prog} --help)`, {
        cause: err,
      });
    }
    const { values, positionals } = parsed;
    if (values.help) {
      process.stdout.write(helpText(command));
      return 0;
    }
    if (values.version) {
      process.stdout.write(`medsyn ${VERSION}\n`);
      return 0;
    }
    if (command.readsStdin && positionals.length === 0 && process.stdin.isTTY) {
      process.stderr.write(helpText(command));
      return 2;
    }
    // -q quiets the automatic line too; an explicit --progress tty or json still shows.
    const progressFlag = values['quiet'] === true && (values['progress'] === undefined || values['progress'] === 'auto') ? 'none' : values['progress'];
    const progress = 'progress' in command.flags ? progressOutput(progressFlag) : 'none';
    if (typeof values['stats'] === 'string') {
      statsPath = checkStatsPath(values['stats']);
      for (const signal of ['SIGINT', 'SIGTERM'] as const) for (const listener of process.listeners(signal)) before[signal].add(listener);
      process.on('exit', onExit);
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
    }
    const context: RunContext = {
      prog: name,
      progress,
      startProgress: (unit, view) => startProgress(name, progress, unit, view),
      stats(next) {
        provider = next;
      },
    };
    const code = (await command.run(values as Record<string, string | boolean | string[] | undefined>, positionals, context)) ?? 0;
    writeStats(code);
    return code;
  } catch (err) {
    const code = reportFailure(prog, err, debug);
    try {
      writeStats(code, code === 0 ? undefined : err);
    } catch (statsError) {
      return reportFailure(prog, statsError, debug) || code;
    }
    return code;
  } finally {
    process.off('exit', onExit);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

/**
 * Writes one line for a failure (a stack trace too with `debug`) and returns its exit code.
 * A closed stdout (`medsyn-clean big.csv | head`) is not a failure: exit 0 quietly.
 */
export function reportFailure(prog: string, err: unknown, debug: boolean): number {
  if (isBrokenPipe(err)) return 0;
  if (err instanceof MedsynError) {
    process.stderr.write(`${prog}: ${err.message} [${err.code}]\n`);
    if (debug) process.stderr.write(`${err.stack ?? ''}\n${err.cause ? `cause: ${String((err.cause as Error).stack ?? err.cause)}\n` : ''}`);
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${prog}: unexpected error: ${message}${debug ? '' : ' (run with --debug for a stack trace)'}\n`);
  if (debug && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
  return 1;
}

/** Whether `err` is a write to a reader that went away (`EPIPE`). */
export function isBrokenPipe(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'EPIPE';
}

/**
 * Reads a flag as a positive integer, or throws a usage error naming it.
 *
 * @example
 * ```ts
 * const limit = integerFlag(values, 'limit');
 * ```
 */
export function integerFlag(values: Record<string, unknown>, name: string, min = 1): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw new MedsynError(ErrorCodes.USAGE, `Invalid --${name}: expected an integer ≥ ${min}, got '${String(raw)}'`, { option: name });
  }
  return value;
}

/**
 * Reads a flag as a finite number within [min, max], or throws a usage error naming it.
 *
 * @example
 * ```ts
 * const maxBlack = numberFlag(values, 'max-black', 0, 1);
 * ```
 */
export function numberFlag(values: Record<string, unknown>, name: string, min = -Infinity, max = Infinity): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(value) || value < min || value > max) {
    const range = Number.isFinite(min) && Number.isFinite(max) ? ` in ${min} … ${max}` : Number.isFinite(min) ? ` ≥ ${min}` : '';
    throw new MedsynError(ErrorCodes.USAGE, `Invalid --${name}: expected a number${range}, got '${String(raw)}'`, { option: name });
  }
  return value;
}

/**
 * Reads a flag that must be one of `choices`, or throws a usage error listing them.
 */
export function choiceFlag<T extends string>(values: Record<string, unknown>, name: string, choices: readonly T[]): T | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !(choices as readonly string[]).includes(raw)) {
    throw new MedsynError(ErrorCodes.USAGE, `Invalid --${name}: expected one of ${choices.join(', ')}, got '${String(raw)}'`, { option: name });
  }
  return raw as T;
}
