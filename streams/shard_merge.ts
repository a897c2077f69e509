/**
 * `medsyn-shard --merge`: the partitions of a partitioned run, written into one
 * folder, made into one dataset (`manifest.json`, `sizes.json`, `shards.txt`).
 *
 * @module
 */
import { open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, MedsynError } from '../errors.js';
import type { SampleRejectReason } from './sample.js';
import {
  MANIFEST_FILE,
  PARTITION_MANIFEST,
  SHARD_LIST_FILE,
  SIZES_FILE,
  parseShardManifest,
  runDifferences,
  runSettings,
  type ShardManifest,
  type ShardRecord,
} from './shard_manifest.js';

/** Options of {@link mergeShards}. */
export interface MergeShardsOptions {
  /** Check that every listed shard is in the folder with the size its manifest records (one `stat` per shard). @default true */
  checkFiles?: boolean;
}

/** What {@link mergeShards} wrote. */
export interface MergeSummary {
  /** The folder merged. */
  outDir: string;
  /** The merged manifest, as written to `manifest.json`. */
  manifest: ShardManifest;
  /**
   * The shards as brace patterns relative to the folder, one per partition with
   * shards (`shard-p0000-{000000..000003}.tar`, or the name alone for one shard).
   */
  patterns: string[];
}

/**
 * Merges the partitions of a partitioned run in `outDir` (each written by a
 * `ShardWriter` with `partition`): reads every `manifest-pIIII.json`, checks that
 * all N partitions are there, finished, and made with the same prefix, max
 * count, max size, mtime, reject policy, partition count and medsyn version,
 * then writes the dataset's `sizes.json`, `shards.txt` (one shard name a line)
 * and, last, `manifest.json` (every shard in partition order, totals, rejects
 * summed, `partitions: N`, `complete: true`), which `readShards(outDir)` reads.
 * Merging again rewrites the three files.
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` when the folder holds no partition
 * manifest; `MEDSYN_ERR_READ_FAILED` for a manifest that is not one;
 * `MEDSYN_ERR_MERGE_CONFLICT` naming every partition that is missing,
 * unfinished, made with other options or version, or whose shards are not all
 * there; `MEDSYN_ERR_WRITE_FAILED` when the files cannot be written
 * @example
 * ```ts
 * const { manifest, patterns } = await mergeShards('out');
 * console.log(`${manifest.totals.samples} samples; --train-data ${patterns.map((p) => `out/${p}`).join('::')}`);
 * ```
 */
export async function mergeShards(outDir: string, options: MergeShardsOptions = {}): Promise<MergeSummary> {
  let entries: string[];
  try {
    entries = await readdir(outDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MedsynError(
      code === 'ENOENT' || code === 'ENOTDIR' ? ErrorCodes.NOT_FOUND : ErrorCodes.READ_FAILED,
      `Cannot merge ${outDir}: ${code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'not a folder' : (err as Error).message}`,
      { file: outDir, cause: err },
    );
  }
  const names = entries.filter((name) => PARTITION_MANIFEST.test(name)).sort();
  if (names.length === 0) {
    throw new MedsynError(
      ErrorCodes.NOT_FOUND,
      `Cannot merge ${outDir}: it holds no partition manifest (manifest-pIIII.json) (write it with medsyn-shard OUTDIR --partition I/N first)`,
      { file: outDir },
    );
  }
  const partitions: { name: string; manifest: ShardManifest }[] = [];
  for (const name of names) {
    const path = join(outDir, name);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new MedsynError(ErrorCodes.READ_FAILED, `Cannot read ${path}: ${(err as Error).message}`, { file: path, cause: err });
    }
    partitions.push({ name, manifest: parseShardManifest(text, path) });
  }

  const problems: string[] = [];
  for (const { name, manifest } of partitions) {
    const index = Number(PARTITION_MANIFEST.exec(name)?.groups?.['index']);
    const partition = manifest.partition;
    if (partition === undefined || partition.index !== index || !(partition.count > index)) {
      problems.push(`${name} is not the manifest of partition ${index} (it says ${JSON.stringify(partition ?? null)})`);
    }
  }
  const reference = partitions[0];
  const settings = runSettings(reference.manifest);
  for (const { name, manifest } of partitions.slice(1)) {
    const differences = runDifferences(settings, runSettings(manifest));
    if (differences.length > 0) problems.push(`${name} was made with ${differences.join(', ')} (as ${reference.name})`);
  }
  const count = settings.partitions;
  const present = new Set(partitions.map(({ manifest }) => manifest.partition?.index));
  const missing = Array.from({ length: count }, (_, index) => index).filter((index) => !present.has(index));
  if (missing.length > 0) problems.push(`partition${missing.length === 1 ? '' : 's'} ${joinWithAnd(missing)} of ${count} ${missing.length === 1 ? 'is' : 'are'} missing`);
  const unfinished = partitions.filter(({ manifest }) => manifest.complete !== true).map(({ manifest, name }) => manifest.partition?.index ?? name);
  if (unfinished.length > 0) {
    problems.push(`partition${unfinished.length === 1 ? '' : 's'} ${joinWithAnd(unfinished)} ${unfinished.length === 1 ? 'has' : 'have'} not finished ("complete": false)`);
  }
  if (problems.length === 0 && (options.checkFiles ?? true)) problems.push(...(await missingShards(outDir, partitions)));
  if (problems.length > 0) {
    throw new MedsynError(
      ErrorCodes.MERGE_CONFLICT,
      `Cannot merge ${outDir}: ${problems.join('; ')} (run every partition I/N to the end with the same options and medsyn version, re-running a stopped one with the same command, then merge again)`,
      { file: outDir },
    );
  }

  partitions.sort((a, b) => (a.manifest.partition?.index ?? 0) - (b.manifest.partition?.index ?? 0));
  const shards: ShardRecord[] = partitions.flatMap(({ manifest }) => manifest.shards);
  const rejects = new Map<SampleRejectReason, number>();
  for (const { manifest } of partitions) {
    for (const [reason, number] of Object.entries(manifest.rejects ?? {})) rejects.set(reason as SampleRejectReason, (rejects.get(reason as SampleRejectReason) ?? 0) + (number ?? 0));
  }
  const sum = (pick: (manifest: ShardManifest) => number | undefined): number => partitions.reduce((total, { manifest }) => total + (pick(manifest) ?? 0), 0);
  const manifest: ShardManifest = {
    format: 'medsyn-shards',
    medsyn: settings.medsyn,
    complete: true,
    options: reference.manifest.options,
    partitions: count,
    shards,
    totals: {
      shards: shards.length,
      samples: shards.reduce((total, shard) => total + shard.count, 0),
      bytes: shards.reduce((total, shard) => total + shard.bytes, 0),
    },
    rejects: Object.fromEntries([...rejects].sort(([a], [b]) => (a < b ? -1 : 1))),
    lastRun: {
      shardsWritten: sum((m) => m.lastRun?.shardsWritten),
      shardsKept: sum((m) => m.lastRun?.shardsKept),
      samplesWritten: sum((m) => m.lastRun?.samplesWritten),
      samplesSkipped: sum((m) => m.lastRun?.samplesSkipped),
      keysSanitized: sum((m) => m.lastRun?.keysSanitized),
    },
  };
  const sizes = Object.fromEntries(shards.map((shard) => [shard.name, shard.count]));
  await writeFileAtomic(join(outDir, SIZES_FILE), `${JSON.stringify(sizes, null, 2)}\n`);
  await writeFileAtomic(join(outDir, SHARD_LIST_FILE), shards.map((shard) => `${shard.name}\n`).join(''));
  // Last: readers go by manifest.json, so it names only shards whose sizes are written.
  await writeFileAtomic(join(outDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return { outDir, manifest, patterns: partitions.flatMap(({ manifest: part }) => bracePatterns(part.shards.map((shard) => shard.name))) };
}

/** The problems of listed shards that are not in the folder with their recorded size. */
async function missingShards(outDir: string, partitions: { name: string; manifest: ShardManifest }[]): Promise<string[]> {
  const problems: string[] = [];
  for (const { name, manifest } of partitions) {
    for (const shard of manifest.shards) {
      const size = await stat(join(outDir, shard.name)).then(
        (stats) => stats.size,
        () => undefined,
      );
      if (size === undefined) problems.push(`${shard.name}, listed in ${name}, is missing`);
      else if (size !== shard.bytes) problems.push(`${shard.name} has ${size} bytes, ${name} says ${shard.bytes}`);
    }
  }
  return problems;
}

/**
 * `['s-p0000-000000.tar', 's-p0000-000001.tar']` → `['s-p0000-{000000..000001}.tar']`:
 * one pattern when the names are numbered from 0 without gaps (as a writer names
 * them), else the names themselves.
 */
function bracePatterns(names: string[]): string[] {
  if (names.length <= 1) return names;
  const match = /^(?<stem>.*)-(?<index>\d{6})\.tar$/u.exec(names[0]);
  const stem = match?.groups?.['stem'];
  const contiguous =
    stem !== undefined && names.length <= 1_000_000 && names.every((name, index) => name === `${stem}-${String(index).padStart(6, '0')}.tar`);
  return contiguous ? [`${stem}-{000000..${String(names.length - 1).padStart(6, '0')}}.tar`] : names;
}

function joinWithAnd(items: readonly (number | string)[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** Writes a file under a temporary name, flushed, and renames it, so a reader sees the old file or the whole new one. */
async function writeFileAtomic(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp`;
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new MedsynError(ErrorCodes.WRITE_FAILED, `Cannot write ${path}: ${(err as Error).message} (check the folder and its permissions, then merge again)`, {
      file: path,
      cause: err,
    });
  }
}
