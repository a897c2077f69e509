/**
 * `medsyn shard` / `medsyn-shard`: a sample tar stream in, WebDataset shards out.
 *
 * @module
 */
import { createReadStream, fstatSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { ErrorCodes, MedsynError } from '../errors.js';
import { RejectsFile } from '../streams/rejects_file.js';
import type { SampleReject } from '../streams/sample.js';
import { ShardWriter, type ShardSummary } from '../streams/shard_writer.js';
import { decodeSamples } from '../streams/tar_decoder.js';
import { choiceFlag, integerFlag, type Command } from './_cli.js';
import { catchInterrupts } from './_signals.js';

const ON_ERROR = ['skip', 'fail'] as const;

/** The `shard` command. */
export const shardCommand: Command = {
  name: 'shard',
  summary: 'Read a sample tar stream on stdin and write WebDataset shards, with stats and a manifest; re-run to resume.',
  usage: ['medsyn-shard [options] OUTDIR < samples.tar', 'medsyn-gen ... | medsyn-shard [options] OUTDIR'],
  readsStdin: true,
  flags: {
    'max-count': { type: 'string', arg: 'N', help: 'close a shard at N samples (default 1000)' },
    'max-size': { type: 'string', arg: 'BYTES', help: 'close a shard before it would pass BYTES: 1GB, 500MB, 64MiB or a number (default 1GB)' },
    prefix: { type: 'string', arg: 'NAME', help: 'name shards NAME-NNNNNN.tar (default shard)' },
    mtime: { type: 'string', arg: 'SECONDS', help: 'modification time of every tar entry, seconds since 1970 (default 0: reproducible shards)' },
    overwrite: { type: 'boolean', help: "delete an earlier run's shards, stats and manifest in OUTDIR and start afresh" },
    'on-error': { type: 'string', arg: 'POLICY', help: 'skip (default): reject bad samples (counted, reported) and go on; fail: stop at the first' },
    rejects: { type: 'string', arg: 'FILE', help: 'write rejected samples as NDJSON (id, source, offset, reason, message) to FILE' },
    quiet: { type: 'boolean', short: 'q', help: 'no summary line on stderr' },
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

Exit status: 0 done, 1 failed (one line on stderr; --debug for a stack
trace), 2 bad usage.

Examples:
  medsyn-clean reports.csv | medsyn-gen | medsyn-shard out/
  medsyn-shard out/ --max-count 5000 --max-size 500MB < samples.tar
  cat out/shard-*.tar | medsyn-shard out2/ --max-count 10000   (reshard)
  tar tvf out/shard-000000.tar | head
`,
  async run(values, positionals) {
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

    const rejectsPath = values['rejects'] as string | undefined;
    const rejectsFile = rejectsPath === undefined ? undefined : new RejectsFile<SampleReject>(rejectsPath);
    let rejectWrites: Promise<void> = Promise.resolve();
    let rejectError: unknown;
    const onReject = rejectsFile
      ? (reject: SampleReject): void => {
          rejectWrites = rejectWrites
            .then(() => rejectsFile.write(reject))
            .catch((err: unknown) => {
              rejectError ??= err;
            });
        }
      : undefined;

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
        ...(onReject ? { onReject } : {}),
        ...(process.stderr.isTTY && !quiet
          ? { onShard: (shard) => process.stderr.write(`\rmedsyn-shard: ${shard.name} complete (${shard.count} samples)\u001b[K`) }
          : {}),
      });
      const samples = decodeSamples(readAhead(input), { source: '-', onError, onReject: writer.reject });
      try {
        for await (const sample of samples) {
          if (interrupts.signal.aborted) break;
          await writer.write(sample);
        }
      } catch (err) {
        // The stream cut short by the signal is not a broken tar.
        if (!interrupts.signal.aborted) throw err;
      }
      if (interrupts.signal.aborted) {
        const manifest = await writer.interrupt();
        await rejectWrites;
        await rejectsFile?.close();
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
      if (!quiet) process.stderr.write(`${process.stderr.isTTY ? '\r\u001b[K' : ''}${formatSummary(summary)}\n`);
      return 0;
    } catch (err) {
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
  return `medsyn-shard: ${summary.outDir}: ${parts.join(', ')}; ${shards} shard${shards === 1 ? '' : 's'}, ${samples} samples in total`;
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
