/**
 * `medsyn shard` / `medsyn-shard`: a sample tar stream in, WebDataset shards out.
 *
 * @module
 */
import { createReadStream, fstatSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ErrorCodes, MedsynError } from '../errors.js';
import { RejectsFile } from '../streams/rejects_file.js';
import { mergeShards, type MergeSummary } from '../streams/shard_merge.js';
import type { SampleReject } from '../streams/sample.js';
import { ShardWriter, type ShardSummary } from '../streams/shard_writer.js';
import { decodeSamples } from '../streams/tar_decoder.js';
import { choiceFlag, integerFlag, type Command, type RunContext } from './_cli.js';
import { PROGRESS_FLAG, rateOf, type CommandStats } from './_progress.js';
import { PARTITION_FLAGS, partitionFromFlags } from './_partition_flags.js';
import { catchInterrupts } from './_signals.js';

const ON_ERROR = ['skip', 'fail'] as const;

/** The `shard` command. */
export const shardCommand: Command = {
  name: 'shard',
  summary: 'Read a sample tar stream on stdin and write WebDataset shards, with stats and a manifest; re-run to resume.',
  usage: [
    'medsyn-shard [options] OUTDIR < samples.tar',
    'medsyn-gen ... | medsyn-shard [options] OUTDIR',
    'medsyn-gen --partition I/N ... | medsyn-shard [options] OUTDIR --partition I/N',
    'medsyn-shard --merge OUTDIR',
  ],
  readsStdin: true,
  flags: {
    'max-count': { type: 'string', arg: 'N', help: 'close a shard at N samples (default 1000)' },
    'max-size': { type: 'string', arg: 'BYTES', help: 'close a shard before it would pass BYTES: 1GB, 500MB, 64MiB or a number (default 1GB)' },
    prefix: { type: 'string', arg: 'NAME', help: 'name shards NAME-NNNNNN.tar (default shard)' },
    mtime: { type: 'string', arg: 'SECONDS', help: 'modification time of every tar entry, seconds since 1970 (default 0: reproducible shards)' },
    overwrite: { type: 'boolean', help: "delete an earlier run's shards, stats and manifest in OUTDIR and start afresh (with --partition: only this partition's files and the merged ones)" },
    'on-error': { type: 'string', arg: 'POLICY', help: 'skip (default): reject bad samples (counted, reported) and go on; fail: stop at the first' },
    rejects: { type: 'string', arg: 'FILE', help: 'write rejected samples as NDJSON (id, source, offset, reason, message) to FILE' },
    progress: PROGRESS_FLAG,
    quiet: { type: 'boolean', short: 'q', help: 'no summary line on stderr' },
    partition: {
      type: 'string',
      arg: 'I/N',
      help: 'write partition I of N into a folder shared with the other partitions: NAME-pIIII-NNNNNN.tar and manifest-pIIII.json (default: from JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or AWS_BATCH_JOB_ARRAY_INDEX, else unpartitioned)',
    },
    partitions: PARTITION_FLAGS['partitions'],
    merge: { type: 'boolean', help: "merge the finished partitions in OUTDIR into one dataset: write manifest.json, sizes.json and shards.txt, and print open_clip's --train-data value" },
  },
  details: `
Input: an uncompressed tar on stdin in WebDataset layout, as medsyn-gen writes
it: the files of a sample are adjacent and named <key>.<ext> (png/jpg/webp,
txt, json, ...). The key is the path up to the first dot of the base name.
Several tars concatenated read as one (cat a.tar b.tar | ...).

Output in OUTDIR:
  shard-000000.tar, shard-000001.tar, ...
      numbered from 0 without gaps; a shard closes at --max-count samples or
      before --max-size bytes, whichever comes first; a sample never spans two
      shards. Plain ustar, entries of a sample adjacent in sorted extension
      order, mode 0644, uid/gid 0, fixed mtime: the same input gives
      byte-identical shards, in the layout webdataset and open_clip
      --train-data read; GNU tar and Python tarfile read them too.
  shard-000000_stats.json
      img2dataset-style: count, successes, failed, bytes, first_key,
      last_key, sha256; written once the shard is complete.
  sizes.json      {"shard-000000.tar": 1000, ...} (open_clip reads it)
  manifest.json   shards (count, bytes, sha256, first/last key), totals,
                  rejects by reason, medsyn version, the options used;
                  "complete": true once the run ended.

Keys: ASCII letters, digits, _ and - only. Any other character becomes _
(p10/s5.v2 -> p10_s5_v2); an empty key or one over 200 characters is
rejected as bad_key; a key seen twice is rejected as duplicate_key (the first
sample is kept). Entries without key or extension and repeated parts are
rejected as bad_entry, samples without parts as empty_sample. Rejects are
counted in manifest.json and the summary line, and listed in --rejects.

Resume: a shard is written as NAME.tar.tmp, flushed to disk and renamed when
complete, so a run killed at any moment (even with SIGKILL) leaves only
complete shards under final names. Run the same command with
the same input again: complete shards are kept, a leftover .tmp is deleted,
input samples whose keys are in kept shards are skipped, and numbering goes
on. The result is the same as one uninterrupted run. A non-empty OUTDIR
without a medsyn manifest.json is refused; --overwrite starts afresh. A full
disk or another write error stops the run with a message and leaves no half
shard under a final name.

Partitions: N processes (an array job on N machines) each run
  medsyn-gen ... --partition I/N | medsyn-shard OUTDIR --partition I/N
into the same OUTDIR (a shared file system). Partition I writes
NAME-pIIII-000000.tar, ... (I in four digits), their _stats.json and its own
manifest-pIIII.json, and no sizes.json or manifest.json; it never touches the
other partitions' files, so they can write at the same time, and each resumes
as above. Without --partition the index comes from the array job's variables
(see medsyn-gen --help), so the same command line serves every task. Then
  medsyn-shard --merge OUTDIR
checks that all N partitions are there, finished ("complete": true) and made
with the same --prefix, --max-count, --max-size, --mtime, --on-error, N and
medsyn version, refusing and naming what differs otherwise; then writes
  manifest.json   every shard in partition order, totals, rejects summed,
                  "partitions": N (medsyn-train OUTDIR and readShards read it)
  sizes.json      samples per shard, for open_clip
  shards.txt      one shard name a line (medsyn-train OUTDIR/shards.txt)
and prints open_clip's --train-data value on stdout, one brace pattern per
partition joined by :: (OUTDIR/shard-p0000-{000000..000003}.tar::...).
Merge again after re-running a partition.

Exit status: 0 done, 1 failed (one line on stderr; --debug for a stack
trace), 2 bad usage.

Examples:
  medsyn-clean reports.csv | medsyn-gen | medsyn-shard out/
  medsyn-shard out/ --max-count 5000 --max-size 500MB < samples.tar
  cat out/shard-*.tar | medsyn-shard out2/ --max-count 10000   (reshard)
  medsyn-gen reports/ --partition 3/8 | medsyn-shard out/ --partition 3/8
  python -m open_clip_train.main --train-data "$(medsyn-shard --merge out/ -q)" ...
  tar tvf out/shard-000000.tar | head
`,
  async run(values, positionals, context) {
    if (values['merge'] === true) return merge(values, positionals, context);
    if (positionals.length !== 1) {
      throw new MedsynError(
        ErrorCodes.USAGE,
        positionals.length === 0 ? 'Missing OUTDIR: name the folder to write shards into (see --help)' : `Too many arguments: ${positionals.join(' ')} (medsyn-shard takes one OUTDIR and reads stdin; see --help)`,
      );
    }
    if (process.stdin.isTTY) {
      throw new MedsynError(ErrorCodes.USAGE, 'stdin is a terminal: pipe a sample tar stream in, e.g. medsyn-gen ... | medsyn-shard OUTDIR (see --help)');
    }
    const outDir = positionals[0];
    const onError = choiceFlag(values, 'on-error', ON_ERROR) ?? 'skip';
    const maxCount = integerFlag(values, 'max-count');
    const maxSize = byteSizeFlag(values, 'max-size');
    const mtime = integerFlag(values, 'mtime', 0);
    const prefix = values['prefix'] as string | undefined;
    const quiet = values['quiet'] === true;
    const partition = partitionFromFlags(values, 'medsyn-shard', quiet);

    // What progress and --stats count as the run goes; the writer's summary replaces it at the end.
    const live: ShardProgress = { read: 0, written: 0, skipped: 0, rejected: {}, rejectedTotal: 0, shards: 0, started: performance.now() };
    let final: ShardSummary | undefined;
    let interrupted: { shards: number; samples: number } | undefined;
    const progress = context.startProgress('samples', (state: ShardProgress) => ({
      items: state.written,
      rejects: state.rejectedTotal,
      line: `${state.written} samples in ${state.shards} complete shards, ${state.rejectedTotal} rejected${state.skipped > 0 ? `, ${state.skipped} skipped` : ''}, ${rateOf(state.written, performance.now() - state.started).toFixed(1)} samples/s`,
      extra: { read: state.read, skipped: state.skipped, shards: state.shards },
    }));
    context.stats(() => (final ? shardStats(final) : liveShardStats(live, interrupted)));

    const rejectsPath = values['rejects'] as string | undefined;
    const rejectsFile = rejectsPath === undefined ? undefined : new RejectsFile<SampleReject>(rejectsPath);
    let rejectWrites: Promise<void> = Promise.resolve();
    let rejectError: unknown;
    const onReject = (reject: SampleReject): void => {
      live.rejectedTotal++;
      live.rejected[reject.reason] = (live.rejected[reject.reason] ?? 0) + 1;
      progress.update(live);
      if (!rejectsFile) return;
      rejectWrites = rejectWrites
        .then(() => rejectsFile.write(reject))
        .catch((err: unknown) => {
          rejectError ??= err;
        });
    };

    let writer: ShardWriter | undefined;
    const input = openStdin();
    const interrupts = catchInterrupts('medsyn-shard', 'discarding the open shard, writing the manifest');
    // Stop reading at once: the decoder then ends, and what is complete is kept.
    interrupts.signal.addEventListener('abort', () => input.destroy());
    try {
      writer = await ShardWriter.open(outDir, {
        ...(maxCount === undefined ? {} : { maxCount }),
        ...(maxSize === undefined ? {} : { maxSize }),
        ...(mtime === undefined ? {} : { mtime }),
        ...(prefix === undefined ? {} : { prefix }),
        overwrite: values['overwrite'] === true,
        onError,
        ...(partition === undefined ? {} : { partition: { index: partition.index, count: partition.count } }),
        onReject,
        onShard: () => {
          live.shards++;
          progress.update(live);
        },
      });
      const samples = decodeSamples(readAhead(input), { source: '-', onError, onReject: writer.reject });
      try {
        for await (const sample of samples) {
          if (interrupts.signal.aborted) break;
          live.read++;
          const result = await writer.write(sample);
          if (result === 'written') live.written++;
          else if (result === 'skipped') live.skipped++;
          progress.update(live);
        }
      } catch (err) {
        // The stream cut short by the signal is not a broken tar.
        if (!interrupts.signal.aborted) throw err;
      }
      if (interrupts.signal.aborted) {
        const manifest = await writer.interrupt();
        interrupted = { shards: manifest?.totals.shards ?? 0, samples: manifest?.totals.samples ?? 0 };
        await rejectWrites;
        await rejectsFile?.close();
        progress.finish(live);
        if (!quiet) {
          process.stderr.write(
            `medsyn-shard: ${outDir}: interrupted; ${manifest?.totals.shards ?? 0} complete shards with ${manifest?.totals.samples ?? 0} samples kept (re-run the same command to resume)\n`,
          );
        }
        return interrupts.exitCode();
      }
      const summary = await writer.close();
      await rejectWrites;
      if (rejectError !== undefined) throw rejectError;
      await rejectsFile?.close();
      final = summary;
      progress.finish(live);
      if (!quiet) process.stderr.write(`${formatSummary(summary)}\n`);
      return 0;
    } catch (err) {
      progress.finish(live);
      await writer?.abort();
      await rejectWrites;
      rejectsFile?.discard();
      throw err;
    } finally {
      interrupts.dispose();
      // Let go of stdin even when the producer is still writing, so that a failed run exits now.
      input.destroy();
    }
  },
};

/** `--merge OUTDIR`: the partitions made one dataset; open_clip's `--train-data` on stdout. */
async function merge(values: Record<string, unknown>, positionals: string[], context: RunContext): Promise<number> {
  if (positionals.length !== 1) {
    throw new MedsynError(
      ErrorCodes.USAGE,
      positionals.length === 0 ? 'Missing OUTDIR: name the folder whose partitions to merge (see --help)' : `Too many arguments: ${positionals.join(' ')} (--merge takes one OUTDIR; see --help)`,
    );
  }
  const writing = ['partition', 'partitions', 'max-count', 'max-size', 'prefix', 'mtime', 'overwrite', 'on-error', 'rejects'].filter((name) => values[name] !== undefined);
  if (writing.length > 0) {
    throw new MedsynError(ErrorCodes.USAGE, `--merge takes no ${writing.map((name) => `--${name}`).join(', ')}: it merges what the partitions wrote, with the options they recorded (see --help)`, {
      option: writing[0],
    });
  }
  const outDir = positionals[0];
  const started = performance.now();
  const summary = await mergeShards(outDir);
  context.stats(() => mergeStats(summary, performance.now() - started));
  const trainData = summary.patterns.map((pattern) => join(outDir, pattern)).join('::');
  if (trainData !== '') process.stdout.write(`${trainData}\n`);
  if (values['quiet'] !== true) process.stderr.write(`${formatMergeSummary(summary)}\n`);
  return 0;
}

function formatMergeSummary(summary: MergeSummary): string {
  const { manifest } = summary;
  const rejected = Object.values(manifest.rejects).reduce((sum, count) => sum + (count ?? 0), 0);
  return `medsyn-shard: ${summary.outDir}: merged ${manifest.partitions ?? 0} partitions: ${manifest.totals.shards} shards, ${manifest.totals.samples} samples, ${(manifest.totals.bytes / 1e6).toFixed(1)} MB, ${rejected} rejected; wrote manifest.json, sizes.json, shards.txt`;
}

/** The `--stats` figures of a merge: those of its summary line. */
function mergeStats(summary: MergeSummary, elapsedMs: number): CommandStats {
  const { manifest } = summary;
  const rejected = Object.values(manifest.rejects).reduce((sum, count) => sum + (count ?? 0), 0);
  return {
    unit: 'samples',
    items: manifest.totals.samples,
    rejects: rejected,
    rejectsByReason: manifest.rejects,
    elapsedMs,
    details: { outDir: summary.outDir, merge: true, partitions: manifest.partitions ?? 0, shards: manifest.totals.shards, samples: manifest.totals.samples, bytes: manifest.totals.bytes, patterns: summary.patterns },
  };
}

/** What medsyn-shard counts as it writes. */
interface ShardProgress {
  read: number;
  written: number;
  skipped: number;
  rejected: Record<string, number>;
  rejectedTotal: number;
  /** Shards completed by this run. */
  shards: number;
  started: number;
}

/** The `--stats` figures of a writing run that did not finish: what it counted, and what an interruption kept. */
function liveShardStats(live: ShardProgress, interrupted: { shards: number; samples: number } | undefined): CommandStats {
  return {
    unit: 'samples',
    // Interrupted: the samples of the complete shards kept, as the closing line says.
    items: interrupted ? interrupted.samples : live.written,
    rejects: live.rejectedTotal,
    rejectsByReason: live.rejected,
    elapsedMs: performance.now() - live.started,
    interrupted: interrupted !== undefined,
    details: {
      read: live.read,
      samplesWritten: live.written,
      samplesSkipped: live.skipped,
      shardsWritten: live.shards,
      ...(interrupted ? { kept: interrupted } : {}),
    },
  };
}

/** The `--stats` figures of a finished writing run: those of its summary line. */
function shardStats(summary: ShardSummary): CommandStats {
  const { shards, samples } = summary.manifest.totals;
  return {
    unit: 'samples',
    items: summary.samplesWritten,
    rejects: Object.values(summary.rejects).reduce((sum, count) => sum + (count ?? 0), 0),
    rejectsByReason: summary.rejects,
    elapsedMs: summary.seconds * 1000,
    details: {
      outDir: summary.outDir,
      ...(summary.manifest.partition ? { partition: summary.manifest.partition } : {}),
      shardsWritten: summary.shardsWritten,
      shardsKept: summary.shardsKept,
      samplesWritten: summary.samplesWritten,
      samplesSkipped: summary.samplesSkipped,
      keysSanitized: summary.keysSanitized,
      bytesWritten: summary.bytesWritten,
      megabytesPerSecond: summary.bytesWritten / 1e6 / Math.max(summary.seconds, 1e-9),
      seconds: summary.seconds,
      totalShards: shards,
      totalSamples: samples,
    },
  };
}

/** Standard input; a file (`< samples.tar`) is read in 1 MiB reads rather than 64 KiB ones. */
function openStdin(): Readable {
  let file = false;
  try {
    file = fstatSync(0).isFile();
  } catch {
    // not a file: a pipe, a socket or a terminal
  }
  return file ? createReadStream('', { fd: 0, autoClose: false, highWaterMark: 1 << 20 }) : process.stdin;
}

/** How many bytes of stdin may wait in memory for the decoder. */
const READ_AHEAD = 16 * 1024 * 1024;

/**
 * The chunks of `stream`, read ahead up to {@link READ_AHEAD} bytes while the
 * shards are written. A Readable read with `for await` stops the pipe after each
 * 16 KiB until the consumer asks again; reading ahead keeps the producer writing.
 */
async function* readAhead(stream: Readable): AsyncGenerator<Uint8Array> {
  const queue: Uint8Array[] = [];
  let queued = 0;
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  stream.on('data', (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.byteLength;
    if (queued >= READ_AHEAD) stream.pause();
    notify();
  });
  stream.once('end', () => {
    ended = true;
    notify();
  });
  stream.once('error', (err) => {
    failure = err;
    notify();
  });
  // Destroyed before its end (a signal stops the reading): what was queued is still read, then it ends.
  const cutShort = (): void => {
    if (!ended && failure === undefined) failure = new Error('stdin was closed before its end');
    notify();
  };
  stream.once('close', cutShort);
  // Destroyed before this reader started: no event will come.
  if (stream.destroyed) cutShort();
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        queued -= chunk.byteLength;
        if (stream.isPaused() && queued < READ_AHEAD / 2) stream.resume();
        yield chunk;
        continue;
      }
      if (failure) throw failure;
      if (ended) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stream.destroy();
  }
}

/** The summary line: what was written, kept, skipped and rejected, and how fast. */
function formatSummary(summary: ShardSummary): string {
  const rejects = Object.entries(summary.rejects);
  const rejected = rejects.reduce((sum, [, count]) => sum + (count ?? 0), 0);
  const megabytes = summary.bytesWritten / 1e6;
  const parts = [
    `${summary.shardsWritten} shard${summary.shardsWritten === 1 ? '' : 's'} written${summary.shardsKept > 0 ? ` (${summary.shardsKept} kept from an earlier run)` : ''}`,
    `${summary.samplesWritten} samples${summary.samplesSkipped > 0 ? ` (${summary.samplesSkipped} skipped: already in kept shards)` : ''}`,
    `${rejected} rejected${rejected > 0 ? ` (${rejects.map(([reason, count]) => `${reason} ${count}`).join(', ')})` : ''}`,
    `${megabytes.toFixed(1)} MB in ${summary.seconds.toFixed(2)} s (${(megabytes / Math.max(summary.seconds, 1e-9)).toFixed(1)} MB/s)`,
  ];
  if (summary.keysSanitized > 0) parts.push(`${summary.keysSanitized} keys sanitized`);
  const { shards, samples } = summary.manifest.totals;
  const partition = summary.manifest.partition;
  const where = partition === undefined ? summary.outDir : `${summary.outDir} (partition ${partition.index}/${partition.count})`;
  return `medsyn-shard: ${where}: ${parts.join(', ')}; ${shards} shard${shards === 1 ? '' : 's'}, ${samples} samples in total`;
}

const UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40 };

/** Reads a size flag: a number of bytes, or with a unit (`500MB`, `1GB`, `64MiB`, `2g`). */
function byteSizeFlag(values: Record<string, unknown>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const match = typeof raw === 'string' ? /^(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?$/iu.exec(raw.trim()) : null;
  const bytes = match ? Math.floor(Number(match[1]) * (UNITS[(match[2] ?? '').toLowerCase()] ?? NaN)) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new MedsynError(ErrorCodes.USAGE, `Invalid --${name}: expected a size like 1GB, 500MB, 64MiB or a number of bytes, got '${String(raw)}'`, {
      option: name,
    });
  }
  return bytes;
}
