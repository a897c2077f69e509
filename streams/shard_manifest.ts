/**
 * `manifest.json`: what a shard folder holds, as the shard writer records it and
 * the shard reader finds its shards.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, MedsynError } from '../errors.js';
import type { SampleRejectReason } from './sample.js';

/** The file name of the manifest in a shard folder: a single run's, or a merged dataset's. */
export const MANIFEST_FILE = 'manifest.json';

/** The file name of `sizes.json`: samples per shard, as open_clip reads it. */
export const SIZES_FILE = 'sizes.json';

/** The file name of the shard list a merge writes: one shard name a line, relative to the folder. */
export const SHARD_LIST_FILE = 'shards.txt';

/** `manifest-pIIII.json`: the manifest of one partition of a partitioned run. */
export const PARTITION_MANIFEST = /^manifest-p(?<index>\d{4,})\.json$/u;

/**
 * The manifest file name of partition `index` (four digits, more past 9999).
 *
 * @example
 * ```ts
 * partitionManifestName(3); // 'manifest-p0003.json'
 * ```
 */
export function partitionManifestName(index: number): string {
  return `manifest-p${String(index).padStart(4, '0')}.json`;
}

/**
 * One complete shard, as the manifest and its `<shard>_stats.json` describe it.
 *
 * @example
 * ```ts
 * for (const shard of (await readShardManifest('out')).shards) console.log(shard.name, shard.count, shard.sha256);
 * ```
 */
export interface ShardRecord {
  /** File name in the folder, e.g. `shard-000000.tar`. */
  name: string;
  /** Samples in the shard. */
  count: number;
  /** Size of the tar file in bytes. */
  bytes: number;
  /** SHA-256 of the tar file, lower-case hex. */
  sha256: string;
  /** Key of the first sample. */
  firstKey: string;
  /** Key of the last sample. */
  lastKey: string;
}

/** The options a shard run used, as recorded in the manifest (see `ShardWriterOptions`). */
export interface ShardRunOptions {
  /** Shards are `<prefix>-NNNNNN.tar`. */
  prefix: string;
  /** Samples per shard at most. */
  maxCount: number;
  /** Bytes per shard at most, unless one sample is bigger. */
  maxSize: number;
  /** The mtime of every entry, seconds since 1970. */
  mtime: number;
  /** The reject policy. */
  onError: 'skip' | 'fail';
}

/**
 * The content of `manifest.json`.
 *
 * @example
 * ```ts
 * const manifest: ShardManifest = JSON.parse(readFileSync('out/manifest.json', 'utf8'));
 * if (manifest.complete) console.log(`${manifest.totals.samples} samples in ${manifest.totals.shards} shards`);
 * ```
 */
export interface ShardManifest {
  /** Always `medsyn-shards`: tells a medsyn shard folder from anything else. */
  format: 'medsyn-shards';
  /** The medsyn version that wrote the manifest. */
  medsyn: string;
  /** `false` while a run is going on or after it was killed; `true` once it ended. */
  complete: boolean;
  options: ShardRunOptions;
  /** Set in the manifest of one partition of a partitioned run (`manifest-pIIII.json`). */
  partition?: { index: number; count: number };
  /** Set in a merged manifest: the number of partitions merged. */
  partitions?: number;
  /** Every complete shard, in order (in a merged manifest, partition by partition). */
  shards: ShardRecord[];
  totals: { shards: number; samples: number; bytes: number };
  /** Input samples rejected by the last run, by reason. */
  rejects: Partial<Record<SampleRejectReason, number>>;
  /** What the last run did (in a merged manifest, summed over the last run of each partition). */
  lastRun: {
    shardsWritten: number;
    shardsKept: number;
    samplesWritten: number;
    /** Input samples skipped because a kept shard already holds their key. */
    samplesSkipped: number;
    /** Keys that `sanitizeKey` changed. */
    keysSanitized: number;
  };
}

/**
 * Reads and checks `DIR/manifest.json`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` when there is none;
 * `MEDSYN_ERR_READ_FAILED` when it is not a medsyn shard manifest
 * @example
 * ```ts
 * const manifest = await readShardManifest('out');
 * console.log(manifest.totals.samples, manifest.shards.map((shard) => shard.name));
 * ```
 */
export async function readShardManifest(dir: string): Promise<ShardManifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new MedsynError(ErrorCodes.NOT_FOUND, `Cannot read shard folder ${dir}: it has no ${MANIFEST_FILE} (is it a medsyn-shard output folder?)`, {
        file: path,
        cause: err,
      });
    }
    throw new MedsynError(ErrorCodes.READ_FAILED, `Cannot read ${path}: ${(err as Error).message}`, { file: path, cause: err });
  }
  return parseShardManifest(text, path);
}

/**
 * Parses manifest text; `path` names it in errors.
 *
 * @throws {MedsynError} `MEDSYN_ERR_READ_FAILED` when it is not JSON or not a medsyn shard manifest
 * @example
 * ```ts
 * const manifest = parseShardManifest(await response.body.text(), url);
 * ```
 */
export function parseShardManifest(text: string, path: string): ShardManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new MedsynError(ErrorCodes.READ_FAILED, `Cannot read ${path}: not valid JSON (${(err as Error).message})`, { file: path, cause: err });
  }
  const manifest = value as Partial<ShardManifest> | null;
  if (manifest === null || typeof manifest !== 'object' || manifest.format !== 'medsyn-shards' || !Array.isArray(manifest.shards)) {
    throw new MedsynError(ErrorCodes.READ_FAILED, `Cannot read ${path}: not a medsyn shard manifest (no "format": "medsyn-shards")`, { file: path });
  }
  return manifest as ShardManifest;
}

/**
 * What a shard run was made with that every partition of one dataset must share.
 *
 * @example
 * ```ts
 * const differences = runDifferences(runSettings(manifestA), runSettings(manifestB));
 * ```
 */
export interface ShardRunSettings {
  prefix: string;
  maxCount: number;
  maxSize: number;
  mtime: number;
  onError: 'skip' | 'fail';
  /** The number of partitions; 1 for an unpartitioned run. */
  partitions: number;
  /** The medsyn version. */
  medsyn: string;
}

/**
 * The settings a manifest records (see {@link ShardRunSettings}).
 *
 * @example
 * ```ts
 * runSettings(await readShardManifest('out')).maxCount;
 * ```
 */
export function runSettings(manifest: ShardManifest): ShardRunSettings {
  const options: Partial<ShardRunOptions> = manifest.options ?? {};
  return {
    prefix: String(options.prefix),
    maxCount: Number(options.maxCount),
    maxSize: Number(options.maxSize),
    mtime: Number(options.mtime),
    onError: options.onError === 'fail' ? 'fail' : 'skip',
    partitions: manifest.partition?.count ?? manifest.partitions ?? 1,
    medsyn: String(manifest.medsyn),
  };
}

const SETTING_NAMES: Record<keyof ShardRunSettings, string> = {
  prefix: '--prefix',
  maxCount: '--max-count',
  maxSize: '--max-size',
  mtime: '--mtime',
  onError: '--on-error',
  partitions: 'the partition count N',
  medsyn: 'the medsyn version',
};

/**
 * The settings in which `theirs` differs from `ours`, one phrase each
 * (`--max-count 10, not 20`); empty when they agree.
 *
 * @example
 * ```ts
 * runDifferences(ours, theirs); // ['--max-count 10, not 20']
 * ```
 */
export function runDifferences(ours: ShardRunSettings, theirs: ShardRunSettings): string[] {
  return (Object.keys(SETTING_NAMES) as (keyof ShardRunSettings)[])
    .filter((name) => ours[name] !== theirs[name])
    .map((name) => `${SETTING_NAMES[name]} ${String(theirs[name])}, not ${String(ours[name])}`);
}
