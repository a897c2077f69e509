/**
 * WebDataset shards on disk: `<prefix>-NNNNNN.tar` files closed at a sample count
 * or a size, each with a `_stats.json`, and `sizes.json` and `manifest.json` for
 * the folder; re-running the same command resumes. A partition of a partitioned
 * run writes `<prefix>-pIIII-NNNNNN.tar` and `manifest-pIIII.json` into a folder
 * it shares with the other partitions (see `mergeShards`).
 *
 * @module
 */
import { mkdir, open, readFile, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';
import { VERSION } from '../version.js';
import { HashedFileWriter } from './_hashed_file_writer.js';
import { hashFile, scanShard } from './_shard_scan.js';
import { END_OF_ARCHIVE, encodeSampleEntries, resolveMtime, sampleProblem } from './_tar_format.js';
import { MAX_KEY_LENGTH, sanitizeKey, type Sample, type SampleReject, type SampleRejectReason } from './sample.js';
import {
  MANIFEST_FILE,
  PARTITION_MANIFEST,
  SHARD_LIST_FILE,
  SIZES_FILE,
  parseShardManifest,
  partitionManifestName,
  runDifferences,
  runSettings,
  type ShardManifest,
  type ShardRecord,
  type ShardRunOptions,
} from './shard_manifest.js';

/** Options of {@link ShardWriter.open} and {@link writeShards}. */
export interface ShardWriterOptions {
  /** Close a shard when it holds this many samples. @default 1000 */
  maxCount?: number;
  /**
   * Close a shard before a sample would take it over this many bytes (the tar
   * file, end-of-archive marker included). A sample bigger than this gets a
   * shard of its own; a sample never spans two shards.
   * @default 1000000000 (1 GB)
   */
  maxSize?: number;
  /** Shard names are `<prefix>-NNNNNN.tar`. @default 'shard' */
  prefix?: string;
  /** The mtime of every tar entry, in seconds since 1970; fixed so that runs are reproducible. @default 0 */
  mtime?: number;
  /** Delete the shards, stats and manifest of an earlier run in the folder and start afresh. @default false */
  overwrite?: boolean;
  /**
   * What to do with a sample that cannot be written (`duplicate_key`, `bad_key`,
   * `bad_entry`, `empty_sample`): `skip` it, counting it and passing it to
   * `onReject`, or `fail` with `MEDSYN_ERR_REJECTED`.
   * @default 'skip'
   */
  onError?: 'skip' | 'fail';
  /** Receives every reject, the writer's own and those passed to {@link ShardWriter.reject}. @default undefined */
  onReject?: (reject: SampleReject) => void;
  /** Called after each shard is complete (renamed, stats written). @default undefined */
  onShard?: (shard: ShardRecord) => void;
  /**
   * Write partition `index` of `count` of a partitioned run: shards are
   * `<prefix>-pIIII-NNNNNN.tar`, the manifest is `manifest-pIIII.json`, no
   * `sizes.json` is written (`mergeShards` writes the dataset's), and the folder
   * may hold the other partitions' files, which this writer never touches. With
   * `overwrite`, only this partition's files and a merged manifest are deleted.
   * @default undefined (an unpartitioned run)
   */
  partition?: { index: number; count: number };
}

/** What a run did; {@link ShardWriter.close} resolves to it. */
export interface ShardSummary {
  /** The folder written. */
  outDir: string;
  /** The manifest as written to `manifest.json` (`manifest-pIIII.json` for a partition). */
  manifest: ShardManifest;
  /** Shards this run wrote. */
  shardsWritten: number;
  /** Complete shards of an earlier run that were kept. */
  shardsKept: number;
  /** Samples this run wrote. */
  samplesWritten: number;
  /** Input samples skipped because a kept shard holds their key. */
  samplesSkipped: number;
  /** Keys that {@link sanitizeKey} changed. */
  keysSanitized: number;
  /** Rejects of this run by reason. */
  rejects: Partial<Record<SampleRejectReason, number>>;
  /** Bytes of the shards this run wrote. */
  bytesWritten: number;
  /** Seconds from open to close. */
  seconds: number;
}

/** The outcome of {@link ShardWriter.write} for one sample. */
export type ShardWriteResult = 'written' | 'skipped' | 'rejected';

interface OpenShard {
  name: string;
  temporary: string;
  handle: FileHandle;
  count: number;
  /** Bytes of entries so far (the end-of-archive marker not included). */
  bytes: number;
  firstKey: string;
  lastKey: string;
}

const SHARD_FILE = /^(?<prefix>[A-Za-z0-9_][A-Za-z0-9_.-]*)-(?<index>\d{6,})(?<rest>\.tar|\.tar\.tmp|_stats\.json|_stats\.json\.tmp)$/u;
/** A shard file of one partition: `<prefix>-pIIII-NNNNNN…`. */
const PARTITION_SHARD_FILE = /^(?<prefix>[A-Za-z0-9_][A-Za-z0-9_.-]*)-p(?<partition>\d{4,})-(?<index>\d{6,})(?<rest>\.tar|\.tar\.tmp|_stats\.json|_stats\.json\.tmp)$/u;
/** The files of the dataset as a whole, which a merge writes. */
const DATASET_FILES = [MANIFEST_FILE, SIZES_FILE, SHARD_LIST_FILE];
const PREFIX = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/u;

/**
 * Owns a shard folder for one run: writes samples into `<prefix>-NNNNNN.tar`
 * shards, each under `<name>.tmp` until it is complete, then fsynced and renamed
 * (the folder fsynced too), then described by `<prefix>-NNNNNN_stats.json`. At
 * {@link close} it writes `sizes.json` (samples per shard, as open_clip reads it)
 * and `manifest.json`.
 *
 * Resume: opening a folder that an earlier run of the same prefix wrote keeps
 * every complete shard, deletes leftover temporary files, skips input samples
 * whose keys a kept shard holds, and numbers new shards after the kept ones. A
 * run killed at any moment and run again on the same input ends with the shards
 * an uninterrupted run writes, byte for byte.
 *
 * Keys go through {@link sanitizeKey}; a key seen twice in a run is rejected as
 * `duplicate_key`. Only one {@link write} may be pending at a time.
 *
 * @example
 * ```ts
 * const writer = await ShardWriter.open('out', { maxCount: 1000 });
 * try {
 *   for await (const sample of decodeSamples(process.stdin, { onReject: writer.reject })) await writer.write(sample);
 *   console.error(await writer.close());
 * } catch (err) {
 *   await writer.abort();
 *   throw err;
 * }
 * ```
 */
export class ShardWriter {
  /** The folder written. */
  readonly outDir: string;
  readonly #options: ShardRunOptions;
  readonly #partition: { index: number; count: number } | undefined;
  /** Shard names are `<stem>-NNNNNN.tar`: the prefix, and `-pIIII` for a partition. */
  readonly #stem: string;
  readonly #manifestName: string;
  readonly #onReject: ((reject: SampleReject) => void) | undefined;
  readonly #onShard: ((shard: ShardRecord) => void) | undefined;
  readonly #shards: ShardRecord[];
  readonly #keptKeys: Set<string>;
  readonly #seenKeys = new Set<string>();
  readonly #rejects = new Map<SampleRejectReason, number>();
  readonly #started = performance.now();
  readonly #shardsKept: number;
  /** Writes the open shard in large writes and hashes it on another thread. */
  readonly #file = HashedFileWriter.create();
  #current: OpenShard | undefined;
  /** The number the next shard gets. */
  #nextIndex: number;
  /** The shard sealed last, being made durable and renamed behind the writing of the next one. */
  #completing: Promise<void> = Promise.resolve();
  #completeError: unknown;
  #state: 'open' | 'closed' | 'failed' = 'open';
  #samplesWritten = 0;
  #samplesSkipped = 0;
  #keysSanitized = 0;
  #bytesWritten = 0;

  private constructor(outDir: string, options: ResolvedOptions, hooks: ShardWriterOptions, kept: ShardRecord[], keptKeys: Set<string>) {
    this.outDir = outDir;
    this.#options = options.run;
    this.#partition = options.partition;
    this.#stem = options.stem;
    this.#manifestName = options.manifestName;
    this.#onReject = hooks.onReject;
    this.#onShard = hooks.onShard;
    this.#shards = kept;
    this.#keptKeys = keptKeys;
    this.#shardsKept = kept.length;
    this.#nextIndex = kept.length;
  }

  /**
   * Opens `outDir` for a run (creating it): a new folder, or the folder of an
   * earlier run with the same prefix to resume, or any medsyn folder with
   * `overwrite`. With `partition`: a new folder, or one holding other
   * partitions of a run with the same options (or a merge of them), or this
   * partition's earlier run to resume.
   *
   * @throws {MedsynError} `MEDSYN_ERR_OUTPUT_CONFLICT` for a non-empty folder
   * without a medsyn manifest, a manifest of another prefix, a gap in the
   * shard numbers, a partitioned run in a folder of an unpartitioned one or the
   * reverse, or other partitions made with other options;
   * `MEDSYN_ERR_CORRUPT_TAR` for a complete shard that does not read;
   * `MEDSYN_ERR_WRITE_FAILED` when the folder cannot be written;
   * `MEDSYN_ERR_INVALID_OPTION` for a bad option
   */
  static async open(outDir: string, options: ShardWriterOptions = {}): Promise<ShardWriter> {
    const resolved = resolveOptions(options);
    const entries = await prepareFolder(outDir, resolved, options.overwrite ?? false);
    const { kept, keptKeys } = await keepCompleteShards(outDir, resolved.stem, entries);
    const writer = new ShardWriter(outDir, resolved, options, kept, keptKeys);
    try {
      // The manifest marks the folder as medsyn's before any shard exists, so a killed run can be resumed.
      await writer.#writeManifest(false);
    } catch (err) {
      await writer.#file.close();
      throw err;
    }
    return writer;
  }

  /**
   * Writes one sample, closing the current shard first when the sample would
   * take it over `maxCount` or `maxSize`. Resolves to `skipped` when a kept shard
   * already holds the key, `rejected` when the sample cannot be written. The
   * bytes are copied before it resolves: the caller may reuse its buffers.
   *
   * @throws {MedsynError} `MEDSYN_ERR_WRITE_FAILED` (full disk, permissions);
   * `MEDSYN_ERR_REJECTED` for a reject under `onError: 'fail'`
   */
  async write(sample: Sample): Promise<ShardWriteResult> {
    this.#checkOpen();
    const key = typeof sample.key === 'string' ? sanitizeKey(sample.key) : undefined;
    if (key === undefined) {
      return this.#reject({
        id: String(sample.key),
        source: sample.url ?? '-',
        ...(sample.offset === undefined ? {} : { offset: sample.offset }),
        reason: 'bad_key',
        message: `key ${JSON.stringify(sample.key)} is empty or longer than ${MAX_KEY_LENGTH} characters after sanitizing`,
      });
    }
    const renamed = key !== sample.key;
    const candidate: Sample = renamed ? { ...sample, key } : sample;
    const problem = sampleProblem(candidate);
    if (problem) {
      return this.#reject({ id: key, source: sample.url ?? '-', ...(sample.offset === undefined ? {} : { offset: sample.offset }), ...problem });
    }
    if (this.#seenKeys.has(key)) {
      return this.#reject({
        id: key,
        source: sample.url ?? '-',
        ...(sample.offset === undefined ? {} : { offset: sample.offset }),
        reason: 'duplicate_key',
        message: `key ${key}${renamed ? ` (from ${JSON.stringify(sample.key)})` : ''} was already seen in this run; the first sample is kept`,
      });
    }
    this.#seenKeys.add(key);
    if (renamed) this.#keysSanitized++;
    if (this.#keptKeys.has(key)) {
      this.#samplesSkipped++;
      return 'skipped';
    }

    const encoded = encodeSampleEntries(candidate, this.#options.mtime);
    let shard = this.#current;
    if (shard && (shard.count >= this.#options.maxCount || shard.bytes + encoded.size + END_OF_ARCHIVE.byteLength > this.#options.maxSize)) {
      await this.#sealShard(shard);
      shard = undefined;
    }
    shard ??= await this.#startShard();
    try {
      await this.#file.append(encoded.chunks);
    } catch (err) {
      throw writeFailure(join(this.outDir, shard.name), err);
    }
    shard.bytes += encoded.size;
    if (shard.count === 0) shard.firstKey = key;
    shard.lastKey = key;
    shard.count++;
    this.#samplesWritten++;
    return 'written';
  }

  /**
   * Records a sample that an earlier stage rejected (a decoder's `onReject`),
   * so the manifest counts it; passes it on to `onReject`.
   */
  readonly reject = (reject: SampleReject): void => {
    this.#rejects.set(reject.reason, (this.#rejects.get(reject.reason) ?? 0) + 1);
    this.#onReject?.(reject);
  };

  /**
   * Completes the current shard, writes `sizes.json` and the final
   * `manifest.json`, and resolves to what the run did.
   *
   * @throws {MedsynError} `MEDSYN_ERR_WRITE_FAILED`
   */
  async close(): Promise<ShardSummary> {
    this.#checkOpen();
    try {
      if (this.#current) await this.#sealShard(this.#current);
      await this.#completing;
      if (this.#completeError !== undefined) throw this.#completeError;
      if (this.#partition === undefined) {
        // A partition's sizes belong to the merged dataset's sizes.json.
        const sizes = Object.fromEntries(this.#shards.map((shard) => [shard.name, shard.count]));
        await writeFileAtomic(join(this.outDir, SIZES_FILE), `${JSON.stringify(sizes, null, 2)}\n`, false);
      }
      const manifest = await this.#writeManifest(true);
      this.#state = 'closed';
      await this.#file.close();
      return {
        outDir: this.outDir,
        manifest,
        shardsWritten: this.#shards.length - this.#shardsKept,
        shardsKept: this.#shardsKept,
        samplesWritten: this.#samplesWritten,
        samplesSkipped: this.#samplesSkipped,
        keysSanitized: this.#keysSanitized,
        rejects: manifest.rejects,
        bytesWritten: this.#bytesWritten,
        seconds: (performance.now() - this.#started) / 1000,
      };
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /**
   * Stops the run early, as after a signal: deletes the open shard's temporary file and
   * writes the manifest of the complete shards with `complete: false`, so a re-run of
   * the same command resumes where this one stopped. Resolves to that manifest
   * (`undefined` when the writer was no longer open).
   *
   * @throws {MedsynError} `MEDSYN_ERR_WRITE_FAILED` when the manifest cannot be written
   */
  async interrupt(): Promise<ShardManifest | undefined> {
    if (this.#state !== 'open') return undefined;
    await this.#discardOpenShard();
    this.#state = 'closed';
    try {
      return await this.#writeManifest(false);
    } finally {
      await this.#file.close();
    }
  }

  /**
   * Stops the run: deletes the current shard's temporary file. Complete shards
   * stay, for the next run to resume from. Never throws.
   */
  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'failed';
    await this.#discardOpenShard();
    await this.#file.close();
  }

  /** Deletes the open shard's temporary file (complete shards stay) and waits for the shard being completed. */
  async #discardOpenShard(): Promise<void> {
    const shard = this.#current;
    this.#current = undefined;
    if (shard) {
      await this.#file.abandon();
      await shard.handle.close().catch(() => undefined);
      await rm(shard.temporary, { force: true }).catch(() => undefined);
    }
    await this.#completing;
  }

  #checkOpen(): void {
    if (this.#completeError !== undefined && this.#state === 'open') throw this.#completeError;
    if (this.#state !== 'open') {
      throw new MedsynError(ErrorCodes.WRITE_FAILED, `Cannot write shards to ${this.outDir}: the writer is ${this.#state === 'closed' ? 'closed' : 'stopped after a failure'}`, {
        file: this.outDir,
      });
    }
  }

  #reject(reject: SampleReject): ShardWriteResult {
    if (this.#options.onError === 'fail') {
      throw new MedsynError(
        ErrorCodes.REJECTED,
        `Rejected sample ${reject.id ?? ''} (${reject.reason}): ${reject.message} (skip such samples with --on-error skip)`,
        { file: reject.source, ...(reject.offset === undefined ? {} : { offset: reject.offset }) },
      );
    }
    this.reject(reject);
    return 'rejected';
  }

  async #startShard(): Promise<OpenShard> {
    const name = shardName(this.#stem, this.#nextIndex++);
    const temporary = join(this.outDir, `${name}.tmp`);
    let handle: FileHandle;
    try {
      handle = await open(temporary, 'w');
    } catch (err) {
      throw writeFailure(temporary, err);
    }
    this.#file.begin(handle);
    const shard: OpenShard = { name, temporary, handle, count: 0, bytes: 0, firstKey: '', lastKey: '' };
    this.#current = shard;
    return shard;
  }

  /**
   * Ends a full shard: the end-of-archive marker and the last write here; the
   * fsync, rename and stats go on behind the next shard's writing. Only one
   * shard completes at a time, so shards become complete in order.
   */
  async #sealShard(shard: OpenShard): Promise<void> {
    let sha256: string;
    try {
      await this.#file.append([END_OF_ARCHIVE]);
      sha256 = await this.#file.seal();
    } catch (err) {
      throw writeFailure(join(this.outDir, shard.name), err);
    }
    this.#current = undefined;
    // At most one shard completes behind the writing: a slow disk holds the writer back instead of a queue growing.
    await this.#completing;
    const record: ShardRecord = {
      name: shard.name,
      count: shard.count,
      bytes: shard.bytes + END_OF_ARCHIVE.byteLength,
      sha256,
      firstKey: shard.firstKey,
      lastKey: shard.lastKey,
    };
    if (this.#completeError !== undefined) {
      await shard.handle.close().catch(() => undefined);
      await rm(shard.temporary, { force: true }).catch(() => undefined);
      throw this.#completeError;
    }
    this.#completing = this.#completeShard(shard, record).catch((err: unknown) => {
      this.#completeError = err;
    });
  }

  async #completeShard(shard: OpenShard, record: ShardRecord): Promise<void> {
    const final = join(this.outDir, shard.name);
    try {
      await shard.handle.sync();
      await shard.handle.close();
      // The shard becomes complete exactly here: a reader or a resume never sees a half shard under this name.
      await rename(shard.temporary, final);
      await syncFolder(this.outDir);
    } catch (err) {
      await shard.handle.close().catch(() => undefined);
      await rm(shard.temporary, { force: true }).catch(() => undefined);
      throw writeFailure(final, err);
    }
    this.#shards.push(record);
    this.#bytesWritten += record.bytes;
    await writeStats(this.outDir, record);
    this.#onShard?.(record);
  }

  async #writeManifest(complete: boolean): Promise<ShardManifest> {
    const manifest: ShardManifest = {
      format: 'medsyn-shards',
      medsyn: VERSION,
      complete,
      options: this.#options,
      ...(this.#partition === undefined ? {} : { partition: this.#partition }),
      shards: this.#shards,
      totals: {
        shards: this.#shards.length,
        samples: this.#shards.reduce((sum, shard) => sum + shard.count, 0),
        bytes: this.#shards.reduce((sum, shard) => sum + shard.bytes, 0),
      },
      rejects: Object.fromEntries([...this.#rejects].sort(([a], [b]) => (a < b ? -1 : 1))),
      lastRun: {
        shardsWritten: this.#shards.length - this.#shardsKept,
        shardsKept: this.#shardsKept,
        samplesWritten: this.#samplesWritten,
        samplesSkipped: this.#samplesSkipped,
        keysSanitized: this.#keysSanitized,
      },
    };
    await writeFileAtomic(join(this.outDir, this.#manifestName), `${JSON.stringify(manifest, null, 2)}\n`, true);
    return manifest;
  }
}

/**
 * Writes `samples` into shards in `outDir` ({@link ShardWriter} for the files,
 * the resume and the options) and resolves to what the run did. On failure the
 * current shard's temporary file is deleted; complete shards stay for a resume.
 *
 * @throws {MedsynError} as {@link ShardWriter.open}, {@link ShardWriter.write} and {@link ShardWriter.close}
 * @example
 * ```ts
 * const summary = await writeShards(decodeSamples(process.stdin), 'out', { maxCount: 1000 });
 * console.error(`${summary.samplesWritten} samples in ${summary.shardsWritten} shards`);
 * ```
 */
export async function writeShards(samples: AsyncIterable<Sample> | Iterable<Sample>, outDir: string, options: ShardWriterOptions = {}): Promise<ShardSummary> {
  const writer = await ShardWriter.open(outDir, options);
  try {
    for await (const sample of samples) await writer.write(sample);
    return await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

interface ResolvedOptions {
  /** What the manifest records. */
  run: ShardRunOptions;
  partition: { index: number; count: number } | undefined;
  stem: string;
  manifestName: string;
}

function resolveOptions(options: ShardWriterOptions): ResolvedOptions {
  const maxCount = options.maxCount ?? 1000;
  if (!Number.isSafeInteger(maxCount) || maxCount < 1) invalidOption('maxCount', `must be a whole number ≥ 1, got ${String(options.maxCount)}`);
  const maxSize = options.maxSize ?? 1_000_000_000;
  if (!Number.isSafeInteger(maxSize) || maxSize < 1) invalidOption('maxSize', `must be a whole number of bytes ≥ 1, got ${String(options.maxSize)}`);
  const prefix = options.prefix ?? 'shard';
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    invalidOption('prefix', `must be ASCII letters, digits, _, - and . (not first), got ${JSON.stringify(options.prefix)}`);
  }
  const onError = options.onError ?? 'skip';
  if (onError !== 'skip' && onError !== 'fail') invalidOption('onError', `must be 'skip' or 'fail', got ${String(options.onError)}`);
  const partition = options.partition;
  if (partition !== undefined) {
    const { index, count } = partition ?? {};
    if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(index) || index < 0 || index >= count) {
      invalidOption('partition', `must be { index, count } with whole numbers 0 ≤ index < count, got ${JSON.stringify(partition)}`);
    }
  }
  return {
    run: { prefix, maxCount, maxSize, mtime: resolveMtime(options.mtime), onError },
    partition: partition === undefined ? undefined : { index: partition.index, count: partition.count },
    stem: partition === undefined ? prefix : partitionStem(prefix, partition.index),
    manifestName: partition === undefined ? MANIFEST_FILE : partitionManifestName(partition.index),
  };
}

/** `<prefix>-pIIII`: four digits, more past 9999. */
function partitionStem(prefix: string, index: number): string {
  return `${prefix}-p${String(index).padStart(4, '0')}`;
}

/** `<stem>-NNNNNN.tar`: six digits, more past 999999. */
function shardName(stem: string, index: number): string {
  return `${stem}-${String(index).padStart(6, '0')}.tar`;
}

function statsName(shard: string): string {
  return `${shard.slice(0, -'.tar'.length)}_stats.json`;
}

/** Whether a file name is one medsyn writes into a shard folder (any prefix, any partition). */
function isOwnFile(name: string): boolean {
  const base = name.endsWith('.tmp') ? name.slice(0, -'.tmp'.length) : name;
  return DATASET_FILES.includes(base) || PARTITION_MANIFEST.test(base) || SHARD_FILE.test(name);
}

/** Whether a file name belongs to partition `index`: its shards, their stats, its manifest. */
function isPartitionFile(name: string, index: number): boolean {
  const base = name.endsWith('.tmp') ? name.slice(0, -'.tmp'.length) : name;
  const manifest = PARTITION_MANIFEST.exec(base)?.groups;
  if (manifest) return Number(manifest['index']) === index;
  const shard = PARTITION_SHARD_FILE.exec(name)?.groups;
  return shard !== undefined && Number(shard['partition']) === index;
}

/** Creates the folder, checks it is one this run may write, clears what `overwrite` or a killed run left; resolves to the files left. */
async function prepareFolder(outDir: string, options: ResolvedOptions, overwrite: boolean): Promise<string[]> {
  let entries: string[];
  try {
    await mkdir(outDir, { recursive: true });
    entries = await readdir(outDir);
  } catch (err) {
    throw writeFailure(outDir, err);
  }
  const conflict = (detail: string): MedsynError =>
    new MedsynError(ErrorCodes.OUTPUT_CONFLICT, `Cannot write shards into ${outDir}: ${detail}`, { file: outDir });
  const remove = async (names: string[]): Promise<void> => {
    try {
      for (const name of names) await rm(join(outDir, name), { force: true });
    } catch (err) {
      throw writeFailure(outDir, err);
    }
  };
  const readManifest = async (name: string): Promise<ShardManifest> => {
    try {
      return parseShardManifest(await readFile(join(outDir, name), 'utf8'), join(outDir, name));
    } catch (err) {
      throw conflict(`its ${name} is not a medsyn shard manifest: ${(err as Error).message} (use another folder, or --overwrite)`);
    }
  };
  if (options.partition !== undefined) return preparePartition(outDir, options, options.partition.index, overwrite, entries, { conflict, remove, readManifest });
  if (overwrite) {
    await remove(entries.filter(isOwnFile));
    return entries.filter((name) => !isOwnFile(name));
  }
  const partitionManifests = entries.filter((name) => PARTITION_MANIFEST.test(name));
  if (partitionManifests.length > 0) {
    throw conflict(
      `it holds a partitioned run (${partitionManifests.join(', ')}) (write into it with --partition I/N, merge it with --merge, or use another folder, or --overwrite)`,
    );
  }
  if (!entries.includes(MANIFEST_FILE)) {
    // A run killed before its first manifest left at most temporary files.
    const leftovers = entries.filter((name) => name.endsWith('.tmp') && isOwnFile(name));
    if (entries.length > leftovers.length) {
      throw conflict(
        `it is not empty and holds no medsyn ${MANIFEST_FILE} (use an empty or new folder, or --overwrite to write there anyway)`,
      );
    }
    await remove(leftovers);
    return [];
  }
  const manifest = await readManifest(MANIFEST_FILE);
  if (manifest.partitions !== undefined) {
    throw conflict(`it holds a merged dataset of ${manifest.partitions} partitions (write into it with --partition I/${manifest.partitions}, or use another folder, or --overwrite)`);
  }
  if (manifest.options?.prefix !== options.run.prefix) {
    throw conflict(
      `it holds a run with prefix '${String(manifest.options?.prefix)}' (resume it with --prefix ${String(manifest.options?.prefix)}, use another folder, or --overwrite)`,
    );
  }
  const temporary = entries.filter((name) => name.endsWith('.tmp') && isOwnFile(name));
  await remove(temporary);
  return entries.filter((name) => !temporary.includes(name));
}

interface FolderTools {
  conflict: (detail: string) => MedsynError;
  remove: (names: string[]) => Promise<void>;
  readManifest: (name: string) => Promise<ShardManifest>;
}

/**
 * The folder check of one partition. Other partitions may be writing into the
 * folder at this very moment: only this partition's files are ever deleted, and
 * their files (temporary ones included) are no conflict.
 */
async function preparePartition(
  outDir: string,
  options: ResolvedOptions,
  index: number,
  overwrite: boolean,
  entries: string[],
  { conflict, remove, readManifest }: FolderTools,
): Promise<string[]> {
  if (overwrite) {
    // The merged files describe this partition's old shards too: they go with them.
    const stale = entries.filter((name) => isPartitionFile(name, index) || DATASET_FILES.includes(name.replace(/\.tmp$/u, '')));
    // So do the files of an unpartitioned run, which no partition owns.
    const unpartitioned = entries.filter((name) => SHARD_FILE.test(name) && !PARTITION_SHARD_FILE.test(name));
    await remove([...stale, ...unpartitioned]);
    return entries.filter((name) => !stale.includes(name) && !unpartitioned.includes(name));
  }
  const own = partitionManifestName(index);
  const manifests = entries.filter((name) => name === MANIFEST_FILE || PARTITION_MANIFEST.test(name));
  if (manifests.length === 0 && entries.some((name) => !isOwnFile(name))) {
    throw conflict(`it is not empty and holds no medsyn manifest (use an empty or new folder, or --overwrite to write there anyway)`);
  }
  const count = options.partition?.count ?? 1;
  if (entries.includes(MANIFEST_FILE)) {
    const merged = await readManifest(MANIFEST_FILE);
    if (merged.partitions === undefined) {
      throw conflict(`it holds an unpartitioned run with prefix '${String(merged.options?.prefix)}' (use another folder, or --overwrite)`);
    }
    if (merged.partitions !== count) {
      throw conflict(`it holds a merged dataset of ${merged.partitions} partitions, not ${count} (use --partition I/${merged.partitions}, another folder, or --overwrite in every partition)`);
    }
  }
  const ours = { ...options.run, partitions: count, medsyn: VERSION };
  for (const name of manifests.filter((file) => file !== MANIFEST_FILE)) {
    const manifest = await readManifest(name);
    if (name === own) {
      if (manifest.options?.prefix !== options.run.prefix) {
        throw conflict(
          `its ${own} is of a run with prefix '${String(manifest.options?.prefix)}' (resume it with --prefix ${String(manifest.options?.prefix)}, use another folder, or --overwrite)`,
        );
      }
      continue;
    }
    // Checked now rather than at the merge, hours of work later.
    const differences = runDifferences(ours, runSettings(manifest));
    if (differences.length > 0) {
      throw conflict(
        `${name} was made with ${differences.join(', ')} (give every partition the same options and medsyn version, use another folder, or --overwrite in every partition)`,
      );
    }
  }
  const temporary = entries.filter((name) => name.endsWith('.tmp') && isPartitionFile(name, index));
  await remove(temporary);
  return entries.filter((name) => !temporary.includes(name));
}

/** Finds the complete shards named `<stem>-NNNNNN.tar`, checks them and their stats, and collects their keys. */
async function keepCompleteShards(outDir: string, stem: string, entries: string[]): Promise<{ kept: ShardRecord[]; keptKeys: Set<string> }> {
  const indexes = entries
    .map((name) => SHARD_FILE.exec(name)?.groups)
    .filter((groups) => groups !== undefined && groups['prefix'] === stem && groups['rest'] === '.tar')
    .map((groups) => Number(groups!['index']))
    .sort((a, b) => a - b);
  const kept: ShardRecord[] = [];
  const keptKeys = new Set<string>();
  for (const [position, index] of indexes.entries()) {
    const name = shardName(stem, position);
    if (index !== position) {
      throw new MedsynError(
        ErrorCodes.OUTPUT_CONFLICT,
        `Cannot resume in ${outDir}: ${name} is missing but ${shardName(stem, index)} exists (shards must be numbered from 0 without gaps; move the later ones away or use --overwrite)`,
        { file: join(outDir, name) },
      );
    }
    const path = join(outDir, name);
    const scanned = await scanShard(path, `delete it and every later shard, then re-run the same command to write them again`);
    const keys = scanned.keys;
    if (keys.length === 0) {
      throw new MedsynError(ErrorCodes.CORRUPT_TAR, `Cannot resume in ${outDir}: ${name} holds no samples (delete it and every later shard, then re-run)`, {
        file: path,
      });
    }
    for (const key of keys) keptKeys.add(key);
    const record: ShardRecord = { name, count: keys.length, bytes: scanned.bytes, sha256: '', firstKey: keys[0], lastKey: keys[keys.length - 1] };
    const stats = await readStats(join(outDir, statsName(name)));
    if (stats && stats.count === record.count && stats.bytes === record.bytes && typeof stats.sha256 === 'string' && /^[0-9a-f]{64}$/u.test(stats.sha256)) {
      record.sha256 = stats.sha256;
    } else {
      // Killed between the rename and the stats file: the shard is complete, its stats are not.
      record.sha256 = await hashFile(path);
      await writeStats(outDir, record);
    }
    kept.push(record);
  }
  return { kept, keptKeys };
}

interface StatsFile {
  count?: number;
  bytes?: number;
  sha256?: string;
}

async function readStats(path: string): Promise<StatsFile | undefined> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as unknown;
    return value !== null && typeof value === 'object' ? (value as StatsFile) : undefined;
  } catch {
    return undefined;
  }
}

/** `<shard>_stats.json`, in img2dataset's layout (`count`, `successes`, `failed`) plus size, keys and hash. */
async function writeStats(outDir: string, record: ShardRecord): Promise<void> {
  const stats = {
    shard: record.name,
    count: record.count,
    successes: record.count,
    failed: 0,
    bytes: record.bytes,
    first_key: record.firstKey,
    last_key: record.lastKey,
    sha256: record.sha256,
  };
  await writeFileAtomic(join(outDir, statsName(record.name)), `${JSON.stringify(stats, null, 2)}\n`, false);
}

/** Writes a small file under a temporary name and renames it, so a reader sees the old file or the whole new one. */
async function writeFileAtomic(path: string, text: string, durable: boolean): Promise<void> {
  const temporary = `${path}.tmp`;
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(text, 'utf8');
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw writeFailure(path, err);
  }
}

async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function writeFailure(path: string, err: unknown): MedsynError {
  if (err instanceof MedsynError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const [detail, hint] =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? [`no space left on the device (${code})`, 'free some space, then re-run the same command to resume']
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? [`not allowed to write there (${code})`, 'check the folder and its permissions']
        : [(err as Error).message ?? String(err), 're-run the same command to resume once it is fixed'];
  return new MedsynError(ErrorCodes.WRITE_FAILED, `Cannot write ${path}: ${detail} (${hint})`, { file: path, cause: err });
}
