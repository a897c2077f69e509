/**
 * `--partition i/n` and `--partitions N`, shared by the commands that read reports.
 *
 * @module
 */
import { resolvePartition, type Partition } from '../streams/partition.js';
import { integerFlag, type FlagSpec } from './_cli.js';

/** The partition flags. */
export const PARTITION_FLAGS: FlagSpec = {
  partition: {
    type: 'string',
    arg: 'I/N',
    help: 'keep the reports whose key hashes to I modulo N (default: from JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or AWS_BATCH_JOB_ARRAY_INDEX, else all)',
  },
  partitions: { type: 'string', arg: 'N', help: 'the number of partitions, for array jobs whose environment does not say it (Kubernetes, AWS Batch)' },
};

/**
 * The partition the flags and the environment give, said on stderr (unless `quiet`), or
 * `undefined` for the whole input.
 *
 * @throws {MedsynError} `MEDSYN_ERR_USAGE` as `resolvePartition`
 */
export function partitionFromFlags(values: Record<string, unknown>, prog: string, quiet: boolean): Partition | undefined {
  const partitions = integerFlag(values, 'partitions');
  const partition = resolvePartition({
    ...(typeof values['partition'] === 'string' ? { partition: values['partition'] } : {}),
    ...(partitions !== undefined ? { partitions } : {}),
  });
  if (partition && !quiet) process.stderr.write(`${prog}: partition ${partition.index}/${partition.count} (from ${partition.source})\n`);
  return partition;
}
