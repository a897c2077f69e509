import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makePhantomShards } from '../train/_phantom_shards.js';
import { bin, ROOT, sh } from './_pipes.js';

const train = bin('medsyn-train');
const evaluate = bin('medsyn-eval');
const dir = t.testdir({});
const shards = join(dir, 'shards');
const q = (path: string): string => JSON.stringify(path);

t.before(async () => {
  await makePhantomShards(dir, 200);
});

t.test('medsyn-train then medsyn-eval work end to end through real processes', async (t) => {
  const run = join(dir, 'run1');
  const trained = await sh(`${train} ${q(join(shards, 'shard-{000000..000003}.tar'))} --out ${q(run)} --epochs 20 --batch-size 16 --lr 0.005 --val-fraction 0.2 --eval-every 50 --encoders ${q(join(ROOT, 'fixtures', 'clip-tiny'))} --cache ${q(join(dir, 'cache'))} --threads 1`);
  t.equal(trained.code, 0, trained.stderr);
  const summary = JSON.parse(trained.stdout.toString());
  t.match(summary, { stopped: false, trainCount: Number, valCount: Number, model: join(run, 'model') });
  t.match(trained.stderr, /medsyn-train: trained (\d+)\/\1 steps on \d+ pairs \(\d+ held out\), loss [\d.]+, val loss [\d.]+, R@1 image→text [\d.]+ text→image [\d.]+ \(chance [\d.]+\)/);
  t.ok(summary.lastEval.imageToText.r1 >= 5 / summary.valCount, `R@1 ${summary.lastEval.imageToText.r1}`);
  t.same(readdirSync(join(run, 'model')).sort(), ['encoder', 'image_embedder.onnx', 'image_head.onnx', 'model.json', 'text_embedder.onnx', 'text_head.onnx'], 'a CLIP-style pair is copied as encoder/');
  t.ok(readFileSync(join(run, 'log.ndjson'), 'utf8').split('\n').filter(Boolean).every((line) => typeof JSON.parse(line).event === 'string'), 'log.ndjson is NDJSON');

  const evaluated = await sh(`${evaluate} ${q(run)} --data ${q(shards)} --split val --threads 1`);
  t.equal(evaluated.code, 0, evaluated.stderr);
  const metrics = JSON.parse(evaluated.stdout.toString());
  t.same(metrics, JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8')), 'stdout is metrics.json');
  t.match(evaluated.stderr, /medsyn-eval: \d+ samples \(\d+ labelled\): zero-shot macro AUROC 0\.\d{3} over 4 observations, probe 0\.\d{3}; retrieval over \d+/);
  t.ok(metrics.observations.pleuralEffusion.zeroShotAuroc > 0.6, `effusion ${metrics.observations.pleuralEffusion.zeroShotAuroc}`);
  t.ok(existsSync(join(run, 'report.html')));

  const prompts = join(dir, 'prompts.json');
  const swapped = await sh(
    `echo '{"cardiomegaly":{"positive":"No cardiomegaly.","negative":"Cardiomegaly."}}' > ${q(prompts)} && ${evaluate} ${q(run)} --data ${q(shards)} --split val --skip-probe --prompts ${q(prompts)} --out ${q(join(dir, 'swapped'))} -q`,
  );
  t.equal(swapped.code, 0, swapped.stderr);
  t.equal(swapped.stderr, '', '-q: nothing on stderr');
  const flipped = JSON.parse(swapped.stdout.toString());
  t.ok(Math.abs(flipped.observations.cardiomegaly.zeroShotAuroc - (1 - metrics.observations.cardiomegaly.zeroShotAuroc)) < 1e-12, 'the prompts file is used');
  t.equal(flipped.probe, null);
});

t.test('medsyn-train stops on Ctrl-C with a checkpoint and --resume finishes the run', async (t) => {
  const run = join(dir, 'run2');
  const args = [join(ROOT, 'dist', 'bin', 'medsyn-train.js'), shards, '--out', run, '--steps', '400', '--batch-size', '16', '--eval-every', '1000', '--cache', join(dir, 'cache'), '--threads', '1'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const logFile = join(run, 'log.ndjson');
  const poll = setInterval(() => {
    if (existsSync(logFile) && readFileSync(logFile, 'utf8').includes('"event":"step"')) {
      clearInterval(poll);
      child.kill('SIGINT');
    }
  }, 5);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(poll);
  t.equal(code, 130, stderr);
  t.match(stderr, /SIGINT: stopping after this step/);
  const stopped = JSON.parse(stdout);
  t.equal(stopped.stopped, true);
  t.ok(stopped.steps < 400, `stopped at step ${stopped.steps}`);
  t.ok(existsSync(stopped.checkpoint), 'a checkpoint at the stop');

  const resumed = await sh(`${train} ${q(shards)} --out ${q(run)} --steps 400 --batch-size 16 --eval-every 1000 --cache ${q(join(dir, 'cache'))} --threads 1 --resume`);
  t.equal(resumed.code, 0, resumed.stderr);
  const done = JSON.parse(resumed.stdout.toString());
  t.match(done, { stopped: false, steps: 400, stepsRun: 400 - stopped.steps });
  t.same(readdirSync(join(run, 'model')).sort(), ['image_embedder.onnx', 'image_encoder', 'image_head.onnx', 'model.json', 'text_embedder.onnx', 'text_encoder', 'text_head.onnx'], 'the bundled ViT and BERT towers by default');
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  t.match(config.encoders, { image: /fixtures\/vit-tiny$/, text: /fixtures\/bert-tiny$/ });
});

t.test('medsyn-train and medsyn-eval: usage errors exit 2, failures exit 1, with one line', async (t) => {
  const noOut = await sh(`${train} ${q(shards)}`);
  t.equal(noOut.code, 2);
  t.match(noOut.stderr, /^medsyn-train: --out RUN is required.*\[MEDSYN_ERR_USAGE\]\n$/);
  const noShards = await sh(`${train} --out ${q(join(dir, 'x'))}`);
  t.equal(noShards.code, 2);
  const badHead = await sh(`${train} ${q(shards)} --out ${q(join(dir, 'x'))} --head deep`);
  t.equal(badHead.code, 2);
  t.match(badHead.stderr, /Invalid --head: expected one of linear, mlp/);
  const exists = await sh(`${train} ${q(shards)} --out ${q(join(dir, 'run1'))} --threads 1`);
  t.equal(exists.code, 1);
  t.match(exists.stderr, /it already holds a run.*\[MEDSYN_ERR_BAD_RUN\]/);
  const missing = await sh(`${train} ${q(join(dir, 'nothing-here.tar'))} --out ${q(join(dir, 'y'))} --threads 1`);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^medsyn-train: .*\[MEDSYN_ERR_NOT_FOUND\]\n$/);
  const half = await sh(`${train} ${q(shards)} --out ${q(join(dir, 'x'))} --image-encoder ${q(join(ROOT, 'fixtures', 'vit-tiny'))}`);
  t.equal(half.code, 2);
  t.match(half.stderr, /--image-encoder and --text-encoder go together/);
  const noData = await sh(`${evaluate} ${q(join(dir, 'run1'))}`);
  t.equal(noData.code, 2);
  t.match(noData.stderr, /--data SHARDS is required/);
  const notRun = await sh(`${evaluate} ${q(dir)} --data ${q(shards)}`);
  t.equal(notRun.code, 1);
  t.match(notRun.stderr, /no config\.json.*\[MEDSYN_ERR_BAD_RUN\]/);
  const help = await sh(`${train} --help && ${evaluate} --help`);
  t.equal(help.code, 0);
  t.match(help.stdout.toString(), /Usage: medsyn-train .*Usage: medsyn-eval/s);
});
