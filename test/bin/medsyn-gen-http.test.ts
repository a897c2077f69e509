import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ShardManifest } from '../../streams/shard_manifest.js';
import { startFakeInferenceServer } from '../models/_fake_inference_server.js';
import { ROOT, bin, comparable, samplesIn, sh } from './_pipes.js';

const gen = bin('medsyn-gen');
const shard = bin('medsyn-shard');
const reportsDir = JSON.stringify(join(ROOT, 'fixtures', 'reports'));
const TOKEN = 'Bearer s3cr3t-t0ken';

t.test('medsyn-gen --backend http | medsyn-shard out/ through real pipes, against a local Open Inference server', async (t) => {
  const server = await startFakeInferenceServer({ size: 32, binaryExtension: true, authorization: TOKEN, maxBatchSize: 2 });
  t.teardown(() => server.close());
  const out = t.testdir({});
  const flags = `--backend http --endpoint ${server.url} --model roentgen --header "Authorization: ${TOKEN}" --steps 7 --guidance 3 --size 32 --skip-quality`;
  const run = await sh(`${gen} ${reportsDir} ${flags} --batch-size 4 --limit 6 | ${shard} ${JSON.stringify(out)}`);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stderr, /medsyn-gen: 6 samples, 0 rejected of 6 read .*http roentgen/);
  t.notMatch(run.stderr, /s3cr3t/, 'the token is never printed');
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as ShardManifest;
  t.match(manifest, { complete: true, totals: { samples: 6 } });
  const samples = await samplesIn(readFileSync(join(out, 'shard-000000.tar')));
  t.equal(samples.length, 6);
  const json = Buffer.from(samples[0]!.parts.json!).toString();
  t.notMatch(json, /s3cr3t/, 'nor stored');
  t.match(JSON.parse(json), { backend: 'http', model: 'roentgen', width: 32, height: 32, channels: 1, endpoint: server.url, modelName: 'roentgen', steps: 7, guidance: 3 });
  t.ok(server.calls.length >= 3, `${server.calls.length} infer requests of at most 2 images`);
  t.ok(server.calls.every((call) => call.prompts.length <= 2 && call.binaryRequested));

  // The same samples from another batch size: seeds, not batches, decide the images.
  const again = await sh(`${gen} ${reportsDir} ${flags} --batch-size 1 --limit 6 -q`);
  t.equal(again.code, 0, again.stderr);
  t.same((await samplesIn(again.stdout)).map(comparable), samples.map(comparable));
});

t.test('medsyn-gen --backend http: bad usage exits 2, a server that is not there exits 1 naming the URL', async (t) => {
  for (const [args, pattern] of [
    ['--backend http --model roentgen', /--backend http needs --endpoint URL and --model NAME/],
    ['--backend http --endpoint http://127.0.0.1:9', /--backend http needs --endpoint URL and --model NAME/],
    ['--endpoint http://127.0.0.1:9', /--endpoint is for --backend http/],
    ['--backend onnx --model x --concurrency 2', /--concurrency is for --backend http/],
  ] as const) {
    const run = await sh(`${gen} ${args} < /dev/null`);
    t.equal(run.code, 2, args);
    t.match(run.stderr, pattern, args);
  }
  const server = await startFakeInferenceServer();
  const url = server.url;
  await server.close();
  const gone = await sh(`${gen} ${reportsDir} --backend http --endpoint ${url} --model roentgen --request-retries 0 --header "X-Api-Key: k3y-value" --limit 1 > /dev/null`);
  t.equal(gone.code, 1);
  t.match(gone.stderr, new RegExp(`${url.replace(/[.]/g, '\\.')}.*\\[MEDSYN_ERR_SERVER_UNAVAILABLE\\]\\n$`));
  t.notMatch(gone.stderr, /k3y-value/);
});
