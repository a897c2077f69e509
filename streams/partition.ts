/**
 * Scale-out: which records a partition of a run keeps, and which partition this process
 * is, from `--partition i/n` or the array-job variables of Kubernetes, Slurm and AWS Batch.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { ErrorCodes, MedsynError } from '../errors.js';
import { sanitizeKey } from './sample.js';

/** One partition of `count`, and where that was read from. */
export interface Partition {
  /** 0 … count − 1. */
  index: number;
  count: number;
  /** `--partition`, `JOB_COMPLETION_INDEX`, `SLURM_ARRAY_TASK_ID` or `AWS_BATCH_JOB_ARRAY_INDEX`. */
  source: string;
}

/**
 * The partition a record belongs to among `count`: the first four bytes of SHA-256 of
 * its key (UTF-8), as a big-endian unsigned integer, modulo `count`. Every process of a
 * run computes the same, so partitions are disjoint and together hold every record.
 *
 * @example
 * ```ts
 * partitionOf('s50414267', 4); // the same number on every machine, 0 … 3
 * ```
 */
export function partitionOf(key: string, count: number): number {
  return createHash('sha256').update(key, 'utf8').digest().readUInt32BE(0) % count;
}

/**
 * Whether a record (a report, a clean report or a reject) belongs to `partition`: by its
 * sample key (the id after `sanitizeKey`), or, for a reject without an id, by its source.
 *
 * @example
 * ```ts
 * const mine = reports.filter((report) => belongsTo(report, { index: 0, count: 4 }));
 * ```
 */
export function belongsTo(record: { id?: string; source: string }, partition: Pick<Partition, 'index' | 'count'>): boolean {
  if (partition.count === 1) return true;
  const key = record.id === undefined ? record.source : (sanitizeKey(record.id) ?? record.id);
  return partitionOf(key, partition.count) === partition.index;
}

/**
 * The records of `records` that belong to `partition`, in order.
 *
 * @example
 * ```ts
 * for await (const report of keepPartition(readReports('reports.zip'), { index: 3, count: 8 })) console.log(report.source);
 * ```
 */
export async function* keepPartition<T extends { id?: string; source: string }>(
  records: AsyncIterable<T>,
  partition: Pick<Partition, 'index' | 'count'>,
): AsyncGenerator<T> {
  for await (const record of records) if (belongsTo(record, partition)) yield record;
}

/** Options of {@link resolvePartition}. */
export interface ResolvePartitionOptions {
  /** `--partition i/n`. @default undefined */
  partition?: string;
  /** `--partitions n`: the count for a job array that does not say it (Kubernetes, AWS Batch). @default undefined */
  partitions?: number;
  /** The environment to read. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/**
 * This process's partition: `--partition i/n` when given; else, in this order, a
 * Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, count from `--partitions`), a Slurm
 * array (`SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_COUNT`, or `--partitions`; the
 * task ids must be 0 … n − 1, as `--array=0-N` makes them), an AWS Batch array
 * (`AWS_BATCH_JOB_ARRAY_INDEX` with `--partitions`); else `undefined` (the whole input).
 * `--partitions` alone, without an index from anywhere, is an error.
 *
 * @throws {MedsynError} `MEDSYN_ERR_USAGE` for a malformed `--partition`, an index out
 *   of range, or an array index without a count
 * @example
 * ```ts
 * resolvePartition({ partition: '3/8' }); // { index: 3, count: 8, source: '--partition' }
 * resolvePartition({ env: { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '4' } }); // { index: 2, count: 4, source: 'SLURM_ARRAY_TASK_ID' }
 * ```
 */
export function resolvePartition(options: ResolvePartitionOptions = {}): Partition | undefined {
  const env = options.env ?? process.env;
  if (options.partition !== undefined) {
    const match = /^(\d+)\/(\d+)$/u.exec(options.partition.trim());
    if (!match) throw usage(`Invalid --partition: expected i/n (e.g. 3/8), got '${options.partition}'`);
    return checked(Number(match[1]), Number(match[2]), '--partition');
  }
  const count = options.partitions;
  const fromEnv = (name: string, countName?: string): Partition | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const fromCount = countName !== undefined && env[countName] !== undefined && env[countName] !== '' ? Number(env[countName]) : undefined;
    const total = count ?? fromCount;
    if (total === undefined) {
      throw usage(`${name}=${raw} is set but the number of partitions is not: give --partitions N${countName ? ` (or set ${countName})` : ''}`);
    }
    return checked(Number(raw), total, name);
  };
  const found =
    fromEnv('JOB_COMPLETION_INDEX') ?? fromEnv('SLURM_ARRAY_TASK_ID', 'SLURM_ARRAY_TASK_COUNT') ?? fromEnv('AWS_BATCH_JOB_ARRAY_INDEX');
  if (found) return found;
  if (count !== undefined) {
    throw usage('--partitions N needs an index: --partition i/n, or JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or AWS_BATCH_JOB_ARRAY_INDEX');
  }
  return undefined;
}

function checked(index: number, count: number, source: string): Partition {
  if (!Number.isSafeInteger(count) || count < 1) throw usage(`Invalid partition count from ${source}: expected an integer ≥ 1, got ${count}`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw usage(`Invalid partition index from ${source}: expected 0 … ${count - 1}, got ${index}`);
  }
  return { index, count, source };
}

function usage(message: string): MedsynError {
  return new MedsynError(ErrorCodes.USAGE, message, { option: 'partition' });
}
