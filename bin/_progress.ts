/**
 * Progress and summaries of the long-running commands: the `--progress MODE` line or
 * JSON lines on stderr, and the `--stats FILE` JSON summary written atomically when a
 * command ends, however it ends.
 *
 * Progress modes:
 * - `auto` (the default): the human line when stderr is a terminal, nothing otherwise;
 * - `tty`: the human line always (rewritten in place on a terminal, one line a second
 *   otherwise); a bare `--progress` means `tty`, as before modes existed;
 * - `json`: one JSON object a line, at most one a second and a final one, e.g.
 *   `{"type":"progress","command":"medsyn-gen","items":96,"rejects":2,"rate":41.2,"elapsedMs":2330,"etaMs":null}`;
 * - `none`.
 *
 * @module
 */
import { closeSync, openSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ErrorCodes, MedsynError } from '../errors.js';
import { VERSION } from '../version.js';

/** The values of `--progress`. */
export const PROGRESS_MODES = ['auto', 'tty', 'json', 'none'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

/** What a run shows: the human line, JSON lines, or nothing. */
export type ProgressOutput = 'line' | 'json' | 'none';

/** The `--progress` flag of the long-running commands. */
export const PROGRESS_FLAG = {
  type: 'string',
  arg: 'MODE',
  help: 'auto (default: a progress line on stderr when it is a terminal), tty (the line always), json (JSON lines on stderr), none; a bare --progress means tty',
} as const;

/** The `--stats` flag every command takes. */
export const STATS_FLAG = {
  type: 'string',
  arg: 'FILE',
  help: 'write the closing summary as JSON to FILE (atomically; also when interrupted or failed)',
} as const;

/** The paragraph of `--help` that describes `--progress` and `--stats`. */
export const PROGRESS_HELP = `
Progress: --progress auto (the default) shows items, rejects, rate and, when
the total is known (--limit, planned steps), the ETA on one line on stderr
when stderr is a terminal (not with -q); tty shows it always (one line a
second when stderr is not a terminal); json writes one object a line
instead, at most one a second and a last one with "final": true:
  {"type":"progress","command":"medsyn-gen","items":96,"rejects":2,
   "rate":41.2,"elapsedMs":2330,"etaMs":null,...}
none shows nothing. --progress alone (not followed by a mode) means tty.
Other stderr lines (summary, notices, errors) never start with "{".

Summary: one line on stderr ends the run (not with -q). --stats FILE writes
its figures as JSON: {"format":"medsyn-stats/1","command","medsyn","ok",
"exitCode","interrupted","error","startedAt","elapsedMs","unit","items",
"rejects","rejectsByReason","rate","details"}, through a temporary file
renamed into place. An unwritable FILE fails before the run starts
(MEDSYN_ERR_WRITE_FAILED). It is written however the run ends: after
SIGINT/SIGTERM with "interrupted": true (exit 130/143; also after a second
signal), after a failure with "ok": false, "error": {"code","message"} and
the figures reached so far (null where none).`;

/**
 * Rewrites a bare `--progress` (at the end, or followed by anything but a mode) as
 * `--progress=tty`, since `node:util` parseArgs has no optional values.
 *
 * @example
 * ```ts
 * normalizeProgressArgv(['--progress', '--limit', '8']); // ['--progress=tty', '--limit', '8']
 * normalizeProgressArgv(['--progress', 'json']); // unchanged
 * ```
 */
export function normalizeProgressArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (arg === '--progress' && (next === undefined || !(PROGRESS_MODES as readonly string[]).includes(next))) out.push('--progress=tty');
    else out.push(arg);
  }
  return out;
}

/**
 * What `--progress` resolves to for this run.
 *
 * @throws {MedsynError} `MEDSYN_ERR_USAGE` for a value that is not a mode
 */
export function progressOutput(value: unknown, stderrIsTTY = process.stderr.isTTY === true): ProgressOutput {
  if (value === undefined || value === true) return value === true ? 'line' : stderrIsTTY ? 'line' : 'none';
  if (typeof value !== 'string' || !(PROGRESS_MODES as readonly string[]).includes(value)) {
    throw new MedsynError(ErrorCodes.USAGE, `Invalid --progress: expected one of ${PROGRESS_MODES.join(', ')}, got '${String(value)}'`, { option: 'progress' });
  }
  const mode = value as ProgressMode;
  return mode === 'auto' ? (stderrIsTTY ? 'line' : 'none') : mode === 'tty' ? 'line' : mode;
}

/** What one progress report says. */
export interface ProgressView {
  /** The main count: samples written, reports cleaned, steps done, ... */
  items: number;
  /** Rejects (or skipped samples) so far. */
  rejects: number;
  /** Progress towards `total`, in its unit (default `items`); with `total` it gives the ETA. */
  done?: number;
  /** The total `done` will reach, when known (a `--limit`, the planned steps). */
  total?: number;
  /** The human line after `prog: `; default `<items> <unit>, <rejects> rejected, <rate> <unit>/s`. */
  line?: string;
  /** Further fields for the JSON lines. */
  extra?: Record<string, unknown>;
}

/** A throttled progress reporter, from {@link startProgress}. */
export interface Progress<S> {
  /** Reports `state` if a second has passed since the last report (the first at once). */
  update(state: S): void;
  /** The final report: a last JSON line, or the end of the human line. Idempotent. */
  finish(state?: S): void;
}

/** `items` per second over `elapsedMs`. */
export function rateOf(items: number, elapsedMs: number): number {
  return elapsedMs > 0 ? Math.round((items / (elapsedMs / 1000)) * 100) / 100 : 0;
}

/** Milliseconds left at the rate so far, or null when the total is unknown. */
export function etaOf(done: number, total: number | undefined, elapsedMs: number): number | null {
  if (total === undefined || !(done > 0)) return null;
  return Math.max(0, Math.round((elapsedMs * (total - done)) / done));
}

/** `1:05`, `1:02:03`. */
export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/**
 * A progress reporter writing to `stream` (stderr) as `output` says: the human line
 * (rewritten in place on a terminal, one line each otherwise) or JSON lines, at most
 * one a second, the first at once.
 *
 * @example
 * ```ts
 * const progress = startProgress('medsyn-gen', 'json', 'samples', (s: GenerateSummary) => ({ items: s.samples, rejects: s.rejectedTotal }));
 * options.onProgress = (summary) => progress.update(summary);
 * // ... at the end:
 * progress.finish(summary);
 * ```
 */
export function startProgress<S>(
  prog: string,
  output: ProgressOutput,
  unit: string,
  view: (state: S) => ProgressView,
  stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
  intervalMs = 1000,
): Progress<S> {
  const started = performance.now();
  let last = -Infinity;
  let lastState: S | undefined;
  let shown = false;
  let finished = false;
  const write = (state: S, final: boolean): void => {
    const elapsedMs = Math.round(performance.now() - started);
    const figures = view(state);
    const rate = rateOf(figures.items, elapsedMs);
    const etaMs = final ? 0 : etaOf(figures.done ?? figures.items, figures.total, elapsedMs);
    if (output === 'json') {
      const line = {
        type: 'progress',
        command: prog,
        items: figures.items,
        rejects: figures.rejects,
        rate,
        elapsedMs,
        etaMs: figures.total === undefined ? null : etaMs,
        ...(figures.total !== undefined ? { done: figures.done ?? figures.items, total: figures.total } : {}),
        ...(figures.extra ?? {}),
        ...(final ? { final: true } : {}),
      };
      stream.write(`${JSON.stringify(line)}\n`);
      return;
    }
    const text = figures.line ?? `${figures.items} ${unit}, ${figures.rejects} rejected, ${rate.toFixed(1)} ${unit}/s`;
    const line = `${prog}: ${text}${etaMs !== null && !final ? `, ETA ${formatDuration(etaMs)}` : ''}`;
    stream.write(stream.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
    shown = true;
  };
  return {
    update(state) {
      lastState = state;
      if (output === 'none' || finished) return;
      const now = performance.now();
      if (now - last < intervalMs) return;
      last = now;
      write(state, false);
    },
    finish(state) {
      if (finished) return;
      finished = true;
      const final = state ?? lastState;
      if (output === 'json' && final !== undefined) write(final, true);
      // The human line stays as it was; a terminal's cursor goes to the next line.
      else if (output === 'line' && shown && stream.isTTY) stream.write('\n');
    },
  };
}

/** What a command says about its run, for `--stats` (the figures of its summary line). */
export interface CommandStats {
  /** What `items` counts: `reports`, `samples`, `steps`, ... */
  unit: string;
  items: number;
  rejects: number;
  rejectsByReason?: Record<string, number | undefined>;
  /** The run's own wall time, as its summary line says it; default: from the start of the command. */
  elapsedMs?: number;
  /** The rate of the summary line, per second; default `items` over `elapsedMs`. */
  rate?: number;
  interrupted?: boolean;
  /** The command's own figures (those of its summary line and more). */
  details?: Record<string, unknown>;
}

/** What a stage's summary holds that every `--stats` file reports. */
export interface StageSummary {
  rejectedTotal: number;
  rejected: Record<string, number | undefined>;
  seconds: number;
  interrupted?: boolean;
}

/**
 * The `--stats` figures of a streaming stage (clean, gen, filter): `items` of `unit`,
 * its rejects by reason, its own wall time and `rated` per second over it.
 *
 * @example
 * ```ts
 * context.stats(() => stageStats('reports', summary.cleaned, summary.read, summary, { read: summary.read }));
 * ```
 */
export function stageStats(unit: string, items: number, rated: number, summary: StageSummary, details: Record<string, unknown>): CommandStats {
  return {
    unit,
    items,
    rejects: summary.rejectedTotal,
    rejectsByReason: summary.rejected,
    ...(summary.seconds > 0 ? { elapsedMs: summary.seconds * 1000, rate: rated / summary.seconds } : {}),
    interrupted: summary.interrupted === true,
    details,
  };
}

/** The JSON `--stats` writes. */
export interface StatsFile {
  format: 'medsyn-stats/1';
  command: string;
  medsyn: string;
  ok: boolean;
  exitCode: number;
  interrupted: boolean;
  error: { code: string; message: string } | null;
  startedAt: string;
  elapsedMs: number;
  unit: string | null;
  items: number | null;
  rejects: number | null;
  rejectsByReason: Record<string, number>;
  rate: number | null;
  details: Record<string, unknown>;
}

/**
 * Checks, before any work, that `path` can be written: its folder exists and takes a
 * new file, and it is not a folder itself.
 *
 * @throws {MedsynError} `MEDSYN_ERR_WRITE_FAILED` naming the path and why
 */
export function checkStatsPath(path: string): string {
  const target = resolve(path);
  const probe = join(dirname(target), `.${basename(target)}.${process.pid}.probe`);
  try {
    let isDirectory = false;
    try {
      isDirectory = statSync(target).isDirectory();
    } catch {
      // not there yet: fine
    }
    if (isDirectory) throw Object.assign(new Error('it is a folder'), { code: 'EISDIR' });
    closeSync(openSync(probe, 'wx'));
    rmSync(probe, { force: true });
  } catch (cause) {
    throw new MedsynError(ErrorCodes.WRITE_FAILED, `Cannot write --stats ${path}: ${(cause as Error).message.replace(/, open '.*'$/u, '')} (name a file in a folder that exists and is writable)`, {
      file: path,
      option: 'stats',
      cause,
    });
  }
  return target;
}

/** Builds the `--stats` JSON of a run that ended with `exitCode` (and `error` when it failed). */
export function statsFile(
  command: string,
  stats: CommandStats | undefined,
  run: { exitCode: number; startedAt: Date; elapsedMs: number; error?: unknown },
): StatsFile {
  // To the microsecond: the summary line's seconds round from the same figure.
  const elapsedMs = Math.round((stats?.elapsedMs ?? run.elapsedMs) * 1000) / 1000;
  const err = run.error as { code?: unknown; message?: unknown } | undefined;
  const rejectsByReason: Record<string, number> = {};
  for (const [reason, count] of Object.entries(stats?.rejectsByReason ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (count !== undefined) rejectsByReason[reason] = count;
  }
  return {
    format: 'medsyn-stats/1',
    command,
    medsyn: VERSION,
    ok: run.exitCode === 0 && run.error === undefined,
    exitCode: run.exitCode,
    interrupted: stats?.interrupted === true || run.exitCode === 130 || run.exitCode === 143,
    error:
      run.error === undefined
        ? null
        : { code: typeof err?.code === 'string' ? err.code : 'MEDSYN_ERR_UNEXPECTED', message: typeof err?.message === 'string' ? err.message : String(run.error) },
    startedAt: run.startedAt.toISOString(),
    elapsedMs,
    unit: stats?.unit ?? null,
    items: stats?.items ?? null,
    rejects: stats?.rejects ?? null,
    rejectsByReason,
    rate: stats ? (stats.rate ?? (elapsedMs > 0 ? stats.items / (elapsedMs / 1000) : 0)) : null,
    details: stats?.details ?? {},
  };
}

/**
 * Writes `json` to `path` through a temporary file in the same folder renamed into
 * place, so that a reader never sees half a file. Synchronous: it also runs from a
 * signal handler right before the process exits.
 *
 * @throws {MedsynError} `MEDSYN_ERR_WRITE_FAILED`
 */
export function writeJsonAtomically(path: string, json: unknown): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(temporary, `${JSON.stringify(json, null, 2)}\n`);
    renameSync(temporary, path);
  } catch (cause) {
    rmSync(temporary, { force: true });
    throw new MedsynError(ErrorCodes.WRITE_FAILED, `Cannot write --stats ${path}: ${(cause as Error).message}`, { file: path, option: 'stats', cause });
  }
}
