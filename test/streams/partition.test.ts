import t from 'tap';
import { createHash } from 'node:crypto';
import { belongsTo, keepPartition, partitionOf, resolvePartition } from '../../streams/partition.js';
import { collect } from './_chunks.js';

t.test('partitionOf is the documented hash, spreads keys evenly and is the same for every process', async (t) => {
  t.equal(partitionOf('s50414267', 7), createHash('sha256').update('s50414267').digest().readUInt32BE(0) % 7);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 40_000; i++) counts[partitionOf(`s${50_000_000 + i}`, 4)]!++;
  for (const count of counts) t.ok(Math.abs(count - 10_000) < 400, `about a quarter each: ${counts.join(', ')}`);
  t.equal(partitionOf('anything', 1), 0);
});

t.test('belongsTo and keepPartition split records by key, rejects without an id by source, disjoint and complete', async (t) => {
  const records = [
    ...Array.from({ length: 50 }, (_, i) => ({ id: `s${i}`, source: `in:${i}` })),
    { source: 'in:no-id' },
    { id: 'p10/s5.v2', source: 'in:odd' },
  ];
  const seen = new Map<string, number>();
  for (let index = 0; index < 3; index++) {
    for (const record of await collect(keepPartition(toAsync(records), { index, count: 3 }))) {
      seen.set(record.source, (seen.get(record.source) ?? 0) + 1);
    }
  }
  t.equal(seen.size, records.length, 'every record in some partition');
  t.ok([...seen.values()].every((count) => count === 1), 'none in two');
  t.equal(belongsTo({ id: 'p10/s5.v2', source: 'x' }, { index: partitionOf('p10_s5_v2', 3), count: 3 }), true, 'by the sanitized key');
  t.equal(belongsTo({ source: 'in:no-id' }, { index: partitionOf('in:no-id', 3), count: 3 }), true);
});

t.test('resolvePartition reads --partition, then Kubernetes, Slurm and AWS Batch, and names what is wrong', async (t) => {
  t.same(resolvePartition({ partition: '3/8', env: { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2' } }), { index: 3, count: 8, source: '--partition' });
  t.same(resolvePartition({ env: { JOB_COMPLETION_INDEX: '2' }, partitions: 4 }), { index: 2, count: 4, source: 'JOB_COMPLETION_INDEX' });
  t.same(resolvePartition({ env: { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '4' } }), { index: 1, count: 4, source: 'SLURM_ARRAY_TASK_ID' });
  t.same(resolvePartition({ env: { AWS_BATCH_JOB_ARRAY_INDEX: '0' }, partitions: 2 }), { index: 0, count: 2, source: 'AWS_BATCH_JOB_ARRAY_INDEX' });
  t.equal(resolvePartition({ env: {} }), undefined);
  for (const [options, pattern] of [
    [{ partition: '3' }, /expected i\/n/],
    [{ partition: '8/8' }, /expected 0 … 7, got 8/],
    [{ partition: '0/0' }, /count/],
    [{ env: { JOB_COMPLETION_INDEX: '1' } }, /give --partitions N/],
    [{ env: { AWS_BATCH_JOB_ARRAY_INDEX: '5' }, partitions: 4 }, /expected 0 … 3, got 5/],
    [{ env: {}, partitions: 4 }, /needs an index/],
  ] as const) {
    t.throws(() => resolvePartition(options as Parameters<typeof resolvePartition>[0]), { code: 'MEDSYN_ERR_USAGE', message: pattern });
  }
});

async function* toAsync<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}
