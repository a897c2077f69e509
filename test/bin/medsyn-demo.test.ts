import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ShardManifest } from '../../streams/shard_manifest.js';

const medsyn = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bin', 'medsyn.js');

t.test('medsyn demo runs clean -> generate -> shard on the fixtures and says what it wrote', async (t) => {
  const dir = t.testdir({});
  const result = spawnSync(process.execPath, [medsyn, 'demo', '--out', join(dir, 'out'), '--size', '64'], { encoding: 'utf8' });
  t.equal(result.status, 0, result.stderr);
  t.match(result.stdout, /clean: +23 cleaned, 3 rejected/);
  t.match(result.stdout, /generate: 23 samples, 0 rejected of 23 read .*phantom medsyn-phantom-1/);
  t.match(result.stdout, /shard: +1 shard\(s\), 23 samples/);
  t.match(result.stdout, /quality: +23 passed, 0 failed of 23 checked/);
  t.match(result.stdout, /Pleural Effusion\s+\d+\s+\d+\s+\d+/);
  t.equal(readFileSync(join(dir, 'out/clean.ndjson'), 'utf8').trim().split('\n').length, 23);
  t.same(readdirSync(join(dir, 'out/shards')).sort(), ['manifest.json', 'shard-000000.tar', 'shard-000000_stats.json', 'sizes.json']);
  const manifest = JSON.parse(readFileSync(join(dir, 'out/shards/manifest.json'), 'utf8')) as ShardManifest;
  t.match(manifest, { complete: true, totals: { samples: 23 } });
  // Run again: the shards are made afresh.
  const again = spawnSync(process.execPath, [medsyn, 'demo', '--out', join(dir, 'out'), '--size', '64'], { encoding: 'utf8' });
  t.equal(again.status, 0, again.stderr);
  t.match(JSON.parse(readFileSync(join(dir, 'out/shards/manifest.json'), 'utf8')), { complete: true, totals: { samples: 23 } });
});
