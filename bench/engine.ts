/**
 * Benchmark of the training engine on the contrastive heads' step: batch 256,
 * two 768→512 linear heads, L2 normalisation, a learnable logit scale (exp,
 * clamped at 100), symmetric InfoNCE and AdamW, on both cores. The reference
 * is PyTorch on the CPU doing the same step from the same initial values on
 * the same batches (bench/engine_reference.py), measured in the same run in
 * alternating rounds so that both see the same machine load.
 *
 *     npm run bench:engine [-- --rounds 20 --steps 10 --threads 2 --python python3 --device cpu]
 *
 * The machine is shared, so short alternating rounds are compared pairwise: the
 * headline ratio is the median of the per-round ratios, and the best round of
 * each engine is printed too (its speed without interference).
 *
 * @module
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { adamw } from '../train/adamw.js';
import { Graph } from '../train/graph.js';
import { constant, linearUniform } from '../train/init.js';
import * as nn from '../train/nn.js';
import * as ops from '../train/ops.js';
import { warmupCosine } from '../train/schedule.js';
import { ort, type ExecutionDevice } from '../train/session.js';
import { trainStep } from '../train/train_step.js';
import { randomSource } from '../train/_random.js';
import { reportFigures } from './_figures.js';
import { median } from './_measure.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '10' },
    threads: { type: 'string', default: '2' },
    python: { type: 'string' },
    device: { type: 'string', default: 'cpu' },
  },
});
const ROUNDS = Number(values.rounds);
const STEPS = Number(values.steps);
const WARMUP = Number(values.warmup);
const THREADS = Number(values.threads);
const DEVICE = values.device as ExecutionDevice;
const BATCH = 256;
const FEATURES = 768;
const EMBEDDING = 512;
/** Distinct pairs, cycled in batches: 8 batches. */
const PAIRS = 8 * BATCH;
/** The issue's figure for PyTorch (OpenBLAS) on this machine, used only when PyTorch cannot run here. */
const RECORDED_PYTORCH_STEPS_PER_SECOND = 66;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outDir = join(root, 'bench', 'out', 'engine');
const config = {
  batch: BATCH,
  features: FEATURES,
  embedding: EMBEDDING,
  pairs: PAIRS,
  threads: THREADS,
  peak: 1e-3,
  warmupSteps: 20,
  totalSteps: WARMUP + ROUNDS * STEPS,
  beta1: 0.9,
  beta2: 0.98,
  epsilon: 1e-6,
  weightDecay: 0.1,
};

/** Paired features: each text vector is a signed permutation of its image vector plus noise, so the heads can learn to align them. */
function makeData(): { image: Float32Array; text: Float32Array } {
  const random = randomSource(2024, 'bench-engine');
  const image = Float32Array.from({ length: PAIRS * FEATURES }, () => random.normal());
  const permutation = Array.from({ length: FEATURES }, (_, i) => i);
  for (let i = FEATURES - 1; i > 0; i--) {
    const j = Math.floor(random.uniform() * (i + 1));
    [permutation[i], permutation[j]] = [permutation[j], permutation[i]];
  }
  const sign = permutation.map(() => (random.uniform() < 0.5 ? -1 : 1));
  const text = new Float32Array(PAIRS * FEATURES);
  for (let row = 0; row < PAIRS; row++) {
    for (let j = 0; j < FEATURES; j++) text[row * FEATURES + j] = sign[j] * image[row * FEATURES + permutation[j]] + 2 * random.normal();
  }
  return { image, text };
}

function buildStep() {
  const g = new Graph({ seed: 7 });
  const image = g.input('image', 'float32', [BATCH, FEATURES]);
  const text = g.input('text', 'float32', [BATCH, FEATURES]);
  const wi = g.parameter('wi', [FEATURES, EMBEDDING], { init: linearUniform() });
  const bi = g.parameter('bi', [EMBEDDING], { init: linearUniform({ fanIn: FEATURES }) });
  const wt = g.parameter('wt', [FEATURES, EMBEDDING], { init: linearUniform() });
  const bt = g.parameter('bt', [EMBEDDING], { init: linearUniform({ fanIn: FEATURES }) });
  const logitScale = g.parameter('logit_scale', [], { init: constant(Math.log(1 / 0.07)) });
  const zi = nn.l2Normalize(nn.linear(image, wi, bi));
  const zt = nn.l2Normalize(nn.linear(text, wt, bt));
  const scale = ops.clip(ops.exp(logitScale), { max: 100 });
  const logits = ops.mul(ops.gemm(zi, zt, { transB: true }), scale);
  const loss = nn.infoNce(logits);
  const optimizer = adamw({
    lr: warmupCosine({ peak: config.peak, warmupSteps: config.warmupSteps, totalSteps: config.totalSteps }),
    beta1: config.beta1,
    beta2: config.beta2,
    epsilon: config.epsilon,
    weightDecay: config.weightDecay,
  });
  return { g, loss, optimizer };
}

/** A Python that can import torch: --python, then python3, then the system's /usr/bin/python3. */
function findTorchPython(): { python?: string; why: string } {
  const candidates = values.python ? [values.python] : ['python3', '/usr/bin/python3'];
  const tried: string[] = [];
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
    if (probe.status === 0) return { python, why: '' };
    tried.push(`${python}: ${(probe.error?.message ?? probe.stderr.trim().split('\n').pop() ?? 'failed').slice(0, 120)}`);
  }
  return { why: tried.join('; ') };
}

/** The PyTorch process, driven one JSON line at a time. */
class Reference {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;

  constructor(python: string) {
    this.#child = spawn(python, [join(root, 'bench', 'engine_reference.py'), outDir], {
      // PyTorch's fastest setting here: its own THREADS threads, single-threaded BLAS calls inside them
      // (OpenBLAS's threads nested in PyTorch's oversubscribe the cores: 2+2 threads ran 4-25 steps/s, 2+1 ran 50-60).
      env: { ...process.env, OMP_NUM_THREADS: String(THREADS), OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
    });
    this.#child.stderr.pipe(process.stderr);
    this.#lines = createInterface({ input: this.#child.stdout })[Symbol.asyncIterator]();
  }

  async receive<T>(): Promise<T> {
    const { value, done } = await this.#lines.next();
    if (done) throw new Error('the PyTorch reference exited early (see its stderr above)');
    return JSON.parse(value) as T;
  }

  async run(steps: number): Promise<{ seconds: number; losses: number[] }> {
    this.#child.stdin.write(`${JSON.stringify({ run: steps })}\n`);
    return this.receive();
  }

  close(): void {
    this.#child.stdin.end(`${JSON.stringify({ quit: true })}\n`);
  }
}


async function main(): Promise<void> {
  const { image, text } = makeData();
  const { g, loss, optimizer } = buildStep();
  await mkdir(outDir, { recursive: true });
  const raw = (array: Float32Array): Uint8Array => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  await writeFile(join(outDir, 'image.f32'), raw(image));
  await writeFile(join(outDir, 'text.f32'), raw(text));
  for (const parameter of g.parameters) await writeFile(join(outDir, `${parameter.name}.f32`), raw(Float32Array.from(g.initialValue(parameter))));
  await writeFile(join(outDir, 'config.json'), JSON.stringify(config, null, 2));

  const step = await trainStep(g, loss, { optimizer, intraOpThreads: THREADS, device: DEVICE });
  const batches = PAIRS / BATCH;
  const view = (array: Float32Array, k: number): Float32Array => array.subarray(k * BATCH * FEATURES, (k + 1) * BATCH * FEATURES);
  const ours: number[] = [];
  const runOurs = async (steps: number): Promise<number> => {
    const started = performance.now();
    for (let i = 0; i < steps; i++) {
      const k = step.step % batches;
      ours.push((await step.run({ image: view(image, k), text: view(text, k) })).loss);
    }
    return (performance.now() - started) / 1000;
  };

  const found = findTorchPython();
  const reference = found.python ? new Reference(found.python) : undefined;
  let torchVersion = '';
  if (reference) torchVersion = (await reference.receive<{ torch: string }>()).torch;
  const theirs: number[] = [];

  await runOurs(WARMUP);
  if (reference) theirs.push(...(await reference.run(WARMUP)).losses);
  const ourRates: number[] = [];
  const theirRates: number[] = [];
  let ourSeconds = 0;
  let theirSeconds = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which engine goes first, so neither always follows the other's cache state.
    const order = round % 2 === 0 ? ['ours', 'theirs'] : ['theirs', 'ours'];
    for (const engine of order) {
      if (engine === 'ours') {
        const seconds = await runOurs(STEPS);
        ourSeconds += seconds;
        ourRates.push(STEPS / seconds);
      } else if (reference) {
        const result = await reference.run(STEPS);
        theirs.push(...result.losses);
        theirSeconds += result.seconds;
        theirRates.push(STEPS / result.seconds);
      }
    }
  }
  reference?.close();
  await step.release();

  const cpu = cpus()[0]?.model ?? 'cpu';
  console.log(
    `bench/engine: batch ${BATCH}, 2 × Linear(${FEATURES}→${EMBEDDING}), L2 normalisation, logit scale (exp, clamped at 100), symmetric InfoNCE, AdamW (β ${config.beta1}/${config.beta2}, wd ${config.weightDecay} on the weights), warm-up ${config.warmupSteps} + cosine`,
  );
  console.log(
    `  node ${process.version}, ${cpus().length} × ${cpu}, onnxruntime-node ${ort.env.versions.common ?? ''} (${DEVICE}, ${THREADS} intra-op threads); ${ROUNDS} alternating rounds of ${STEPS} steps after ${WARMUP} warm-up steps; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
  );
  const ourRate = (ROUNDS * STEPS) / ourSeconds;
  console.log(`  medsyn engine (onnxruntime)   ${ourRate.toFixed(1).padStart(6)} steps/s   (rounds: ${ourRates.map((r) => r.toFixed(1)).join(', ')})`);
  let referenceRate: number;
  let referenceLabel: string;
  let ratio: number;
  if (reference) {
    referenceRate = (ROUNDS * STEPS) / theirSeconds;
    referenceLabel = `PyTorch ${torchVersion} on the CPU, measured in this run`;
    console.log(`  PyTorch ${torchVersion} (CPU, ${THREADS} threads)   ${referenceRate.toFixed(1).padStart(6)} steps/s   (rounds: ${theirRates.map((r) => r.toFixed(1)).join(', ')})`);
    // The median of per-round ratios: a round slowed by another process on the machine counts once.
    const perRound = ourRates.map((r, i) => r / theirRates[i]);
    ratio = median(perRound);
    console.log(`ratio medsyn / PyTorch: ${median(perRound).toFixed(2)} (median of the rounds: ${perRound.map((r) => r.toFixed(2)).join(', ')}; over the total time ${(ourRate / referenceRate).toFixed(2)})`);
    const ourBest = Math.max(...ourRates);
    const theirBest = Math.max(...theirRates);
    console.log(`best rounds: medsyn ${ourBest.toFixed(1)}, PyTorch ${theirBest.toFixed(1)} steps/s, ratio ${(ourBest / theirBest).toFixed(2)}`);
  } else {
    referenceRate = RECORDED_PYTORCH_STEPS_PER_SECOND;
    referenceLabel = 'FALLBACK: the issue\'s recorded PyTorch figure, NOT measured in this run';
    console.log(`  PyTorch: not run (${found.why}); install python3-torch, or pass --python`);
    ratio = ourRate / referenceRate;
    console.log(`ratio medsyn / recorded PyTorch figure (${RECORDED_PYTORCH_STEPS_PER_SECOND} steps/s, FALLBACK, not measured here): ${(ourRate / referenceRate).toFixed(2)}`);
  }
  console.log(`loss curve (step: medsyn${reference ? ' / PyTorch' : ''}); the same math must learn`);
  const every = Math.max(1, Math.floor(ours.length / 20));
  for (let i = 0; i < ours.length; i += every) {
    console.log(`  ${String(i + 1).padStart(4)}: ${ours[i].toFixed(4)}${reference ? ` / ${theirs[i].toFixed(4)}` : ''}`);
  }
  console.log(`  ${String(ours.length).padStart(4)}: ${ours[ours.length - 1].toFixed(4)}${reference ? ` / ${theirs[theirs.length - 1].toFixed(4)}` : ''} (last)`);
  if (reference) {
    const gap = Math.max(...ours.map((value, i) => Math.abs(value - theirs[i])));
    console.log(`  largest |medsyn − PyTorch| loss difference over ${ours.length} steps: ${gap.toExponential(2)}`);
  }
  const learned = ours[ours.length - 1] < ours[0] * 0.5;
  console.log(`learns: ${learned ? 'yes' : 'NO'} (loss ${ours[0].toFixed(3)} → ${ours[ours.length - 1].toFixed(3)}; chance is ln ${BATCH} = ${Math.log(BATCH).toFixed(3)})`);
  console.log(`target: at least the speed of ${referenceLabel} — ${ratio >= 1 ? 'met' : 'NOT met'} (ratio ${ratio.toFixed(2)}; ${ourRate.toFixed(1)} vs ${referenceRate.toFixed(1)} steps/s)`);
  reportFigures('engine', [
    {
      figure: `contrastive step, batch ${BATCH}, ${THREADS} threads`,
      value: ourRate,
      unit: 'steps/s',
      reference: {
        label: reference ? `PyTorch ${torchVersion} CPU, same run` : `PyTorch NOT RUN here (${found.why.slice(0, 60)}): the issue's recorded figure`,
        value: referenceRate,
      },
      ratio,
      note: reference ? 'median of per-round ratios' : 'FALLBACK reference: install python3-torch',
    },
    { figure: 'loss, last / first step', value: ours[ours.length - 1] / ours[0], unit: '', reference: null, ratio: null, note: `learns: ${learned ? 'yes' : 'NO'}` },
  ]);
}

await main();
