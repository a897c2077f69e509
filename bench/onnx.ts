/**
 * Benchmark of the `onnx` backend (Stable Diffusion on onnxruntime-node) on the CPU,
 * with the tiny random-weight export in `fixtures/sd-tiny/`: how much of a run's wall
 * time is the UNet, and how close end to end gets to the UNet's own rate.
 *
 * Each configuration (image size × batch) runs `medsyn-gen --backend onnx --model
 * fixtures/sd-tiny --scheduler dpmpp-2m --steps 20` end to end in this process, as
 * `medsyn-gen reports.ndjson > /dev/null` does it: `runGenerate` reads and cleans
 * synthetic reports, generates with the backend (guidance 4: the unconditional and
 * conditional halves in one UNet call, so a call runs 2 × batch rows), PNG-encodes and
 * writes the WebDataset tar stream into a sink that discards it — once with the default
 * quality checks (and regeneration) and once with `--skip-quality`.
 *
 * The models run on worker threads, one per model (onnxruntime-node's `run()` blocks the
 * thread that calls it; microsoft/onnxruntime#19611), so the text encoder, the VAE and the
 * JavaScript can run while the UNet does. The generator reports every native run
 * (`watchSdRuns`); "UNet busy" is the sum of the UNet's runs, which never overlap each
 * other. Printed per run:
 *
 * - images/s: samples written / wall s (and images generated, regenerations included);
 * - UNet steps/s: UNet calls / wall s — one call is one scheduler step of a whole batch
 *   (2 × batch rows with guidance); image-steps/s = calls × images per call / wall s;
 * - outside the UNet: 1 − UNet busy / wall (target: under 10 % at batch 8), with the text
 *   encoder's and the VAE decoder's busy shares (they may overlap the UNet now), the main
 *   thread's event loop idle share and CPU time;
 * - the time outside the UNet per image generated, the figure that carries over to a
 *   real model: the share is that time / (that time + the UNet's time per image). It is
 *   split by what the UNet's thread does meanwhile: between the steps of a loop (the
 *   scheduler step, guidance and copies in JavaScript), between loops (waiting for the next
 *   group, a loop's set-up) and before the first run and after the last; and the UNet call
 *   above which that time per image would be under 10 % is printed. With the tiny UNet (a
 *   fraction of a millisecond per call at 64 px) the fixed per-image work of the pipeline
 *   — cleaning, quality checks, PNG, the VAE — outweighs the 20 UNet calls an image gets,
 *   so the 10 % target is read at 256 px, where a call takes milliseconds; a real
 *   Stable Diffusion UNet takes tens of milliseconds on a GPU and seconds on a CPU.
 *
 * Reference, measured in the same run: the UNet alone — the same model file in a session
 * on this thread with the generator's settings, run in a tight loop on zero feeds of the
 * run's shapes — as calls/s and
 * the images/s it would allow (calls/s × batch / calls per image); the ratio end to end /
 * alone says how close the pipeline gets to the UNet's own rate.
 *
 *     npm run bench:onnx [-- --quick] [-- --steps N --batch N --size PX --reports N --rounds R --threads T --only 256x8,64x1]
 *
 * @module
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { InferenceSession } from 'onnxruntime-node';
import { syntheticReports } from './_mimic_corpus.js';
import { reportFigures, type Figure } from './_figures.js';
import { median } from './_measure.js';
import type { GenerationRequest } from '../models/generator.js';
import { watchSdRuns } from '../models/_sd_model.js';
import { createOnnxSdGenerator } from '../models/onnx_sd_generator.js';
import { CPU_SESSION_OPTIONS } from '../models/_sd_protocol.js';
import { ort, sessionOptions } from '../train/session.js';
import { runGenerate } from '../transforms/run_generate.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    steps: { type: 'string', default: '20' },
    batch: { type: 'string', default: '8' },
    size: { type: 'string', default: '256' },
    reports: { type: 'string' },
    rounds: { type: 'string' },
    threads: { type: 'string', default: '0' },
    only: { type: 'string' },
  },
});
const QUICK = values.quick;
const STEPS = Number(values.steps);
const BATCH = Number(values.batch);
const LARGE = Number(values.size);
const REPORTS = Number(values.reports ?? (QUICK ? 64 : 192));
const ROUNDS = Number(values.rounds ?? (QUICK ? 1 : 3));
const THREADS = Number(values.threads);
/** `--only 256x8,64x1`: just these configurations (size x batch). */
const ONLY = values.only?.split(',').map((entry) => entry.trim());
const SCHEDULER = 'dpmpp-2m';
/** The UNet-alone loop runs at least this long (and at least half the calls of a run). */
const ALONE_MS = QUICK ? 400 : 1500;
const TARGET = 0.1;
for (const [name, value] of Object.entries({ steps: STEPS, batch: BATCH, size: LARGE, reports: REPORTS, rounds: ROUNDS })) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`bench/onnx: --${name} must be a positive integer, got ${String(value)}`);
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outRoot = join(root, 'bench', 'out', 'onnx');
const MODEL = join(root, 'fixtures', 'sd-tiny');


// --- Session timing -------------------------------------------------------------------

type Kind = 'text' | 'unet' | 'vae';

/**
 * Time inside each model, as the worker threads report their native runs (each timed
 * around `session.run()` on the model's own thread). One model's runs never overlap each
 * other (a thread runs one at a time), so a model's busy time is the sum of its runs; the
 * three models' runs do overlap. The UNet's runs are kept, in order, to split the time its
 * thread spends between them.
 */
class SessionClock {
  readonly busy: Record<Kind, number> = { text: 0, unet: 0, vae: 0 };
  readonly calls: Record<Kind, number> = { text: 0, unet: 0, vae: 0 };
  readonly unetRuns: Array<{ start: number; end: number }> = [];
  readonly #loop = performance.eventLoopUtilization();

  add(kind: Kind, start: number, end: number): void {
    this.busy[kind] += end - start;
    this.calls[kind]++;
    if (kind === 'unet') this.unetRuns.push({ start, end });
  }

  /**
   * The UNet thread's wall time outside its runs, in ms: `steps` between two runs of one
   * denoising loop (the scheduler step, guidance, copies, tensors — JavaScript on that
   * thread, or waiting for a core), `loops` between the last run of one group's loop and the
   * first of the next (waiting for the next group, the loop's set-up, the answer), `ends`
   * before the first run and after the last (`from` … `to`: reading and encoding the first
   * group; decoding, PNG-encoding and writing the last).
   */
  unetGaps(callsPerLoop: number, from: number, to: number): { steps: number; loops: number; ends: number } {
    const runs = [...this.unetRuns].sort((a, b) => a.start - b.start);
    let steps = 0;
    let loops = 0;
    for (let i = 1; i < runs.length; i++) {
      const gap = runs[i]!.start - runs[i - 1]!.end;
      if (i % callsPerLoop === 0) loops += gap;
      else steps += gap;
    }
    const ends = runs.length === 0 ? to - from : runs[0]!.start - from + (to - runs[runs.length - 1]!.end);
    return { steps, loops, ends };
  }

  /** Milliseconds the event loop was idle (waiting on I/O, sharp's threads, timers) since the clock started. */
  idle(): number {
    return performance.eventLoopUtilization(this.#loop).idle;
  }
}

let clock: SessionClock | undefined;

/**
 * CPU milliseconds of this process's main thread (user + system, from
 * /proc/self/task/PID/stat in clock ticks of 10 ms); NaN where /proc is unavailable.
 */
function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

// Every native run of the generator's models, as its worker threads report them.
watchSdRuns((run) => clock?.add(run.kind, run.start, run.end));

/** The UNet alone: its model file in a session on this thread, with zero feeds of a batch's shapes. */
async function unetAlone(size: number, batch: number): Promise<{ session: InferenceSession; feeds: Record<string, InstanceType<typeof ort.Tensor>> }> {
  // The session settings of the generator's UNet thread (its threads never spin).
  const session = await ort.InferenceSession.create(join(MODEL, 'unet', 'model.onnx'), sessionOptions({ intraOpThreads: THREADS, ...CPU_SESSION_OPTIONS }));
  const rows = 2 * batch;
  const meta = (name: string) => {
    const entry = session.inputMetadata.find((m) => m.name === name);
    if (!entry?.isTensor) throw new Error(`bench/onnx: the UNet has no tensor input ${name}`);
    return entry;
  };
  const hidden = Number(meta('encoder_hidden_states').shape[2]);
  const latent = size / 8;
  const timestep = meta('timestep');
  const timeDims = timestep.shape.length === 0 ? [] : [rows];
  const timeCount = timeDims.length === 0 ? 1 : rows;
  const feeds = {
    sample: new ort.Tensor('float32', new Float32Array(rows * 4 * latent * latent), [rows, 4, latent, latent]),
    timestep:
      timestep.type === 'int64'
        ? new ort.Tensor('int64', new BigInt64Array(timeCount).fill(500n), timeDims)
        : new ort.Tensor('float32', new Float32Array(timeCount).fill(500), timeDims),
    encoder_hidden_states: new ort.Tensor('float32', new Float32Array(rows * 77 * hidden), [rows, 77, hidden]),
  };
  return { session, feeds };
}

// --- Runs -----------------------------------------------------------------------------

/** The corpus as raw-report NDJSON (cleaned by the run, as part of what is timed). */
function corpus(): string {
  const file = join(outRoot, `reports-${REPORTS}.ndjson`);
  if (!existsSync(file)) {
    const lines = [...syntheticReports(REPORTS, 13)].map((report) => JSON.stringify({ id: report.studyId, subjectId: report.subjectId, text: report.text }));
    writeFileSync(file, `${lines.join('\n')}\n`);
  }
  return file;
}

/** A tar stream's destination that keeps nothing (`> /dev/null`). */
function sink(): Writable {
  return new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
}

interface EndToEnd {
  seconds: number;
  /** Start and end of the run, in ms since the epoch (the clock of the workers' runs). */
  from: number;
  to: number;
  samples: number;
  generated: number;
  clock: SessionClock;
  /** Milliseconds the event loop was idle. */
  idle: number;
  /** CPU milliseconds of the main thread, and of the whole process (all threads). */
  mainCpu: number;
  processCpu: number;
}

interface Config {
  size: number;
  batch: number;
}

const warmupPrompts = ['No acute cardiopulmonary process.', 'Small left pleural effusion.', 'Moderate cardiomegaly with pulmonary edema.'];

interface Measured {
  /** UNet calls/s of the loop, and the native milliseconds per call in it. */
  alone: number;
  aloneMsPerCall: number;
  callsPerImage: number;
  runs: { on: EndToEnd[]; off: EndToEnd[] };
}

async function measureConfig(file: string, { size, batch }: Config): Promise<Measured> {
  const generator = await createOnnxSdGenerator({ model: MODEL, size, steps: STEPS, scheduler: SCHEDULER, threads: THREADS });
  try {
    // Warm-up (session first runs, allocations), untimed; it leaves the UNet feeds of a full batch.
    const warm: GenerationRequest[] = Array.from({ length: batch }, (_, i) => {
      const prompt = warmupPrompts[i % warmupPrompts.length]!;
      return { key: `warm${i}`, report: { id: `warm${i}`, source: 'bench', text: prompt, prompt, caption: prompt } as unknown as GenerationRequest['report'], variant: 0, attempt: 0, seed: i };
    });
    const [image] = await generator.generate(warm);
    const meta = image && 'meta' in image ? image.meta : undefined;
    const callsPerImage = Number(meta?.['unetCalls'] ?? STEPS);
    const unet = await unetAlone(size, batch);
    await unet.session.run(unet.feeds);

    const runs = { on: [] as EndToEnd[], off: [] as EndToEnd[] };
    const alone: number[] = [];
    const aloneMs: number[] = [];
    const loopCalls = Math.max(callsPerImage, Math.ceil((REPORTS / batch) * callsPerImage / 2));
    for (let round = 0; round < ROUNDS; round++) {
      // The UNet alone: the same session, the same feeds, back to back.
      const started = performance.now();
      let done = 0;
      while (done < loopCalls || performance.now() - started < ALONE_MS) {
        await unet.session.run(unet.feeds);
        done++;
      }
      const aloneSeconds = (performance.now() - started) / 1000;
      alone.push(done / aloneSeconds);
      aloneMs.push((1000 * aloneSeconds) / done);
      for (const checks of ['on', 'off'] as const) {
        clock = new SessionClock();
        const mainBefore = mainThreadCpuMs();
        const processBefore = process.cpuUsage();
        const begun = performance.now();
        const summary = await runGenerate(file, sink(), { generator, batchSize: batch, size, ...(checks === 'off' ? { checks: false } : {}) });
        const ended = performance.now();
        const seconds = (ended - begun) / 1000;
        const processUsed = process.cpuUsage(processBefore);
        runs[checks].push({
          seconds,
          from: performance.timeOrigin + begun,
          to: performance.timeOrigin + ended,
          samples: summary.samples,
          generated: summary.generated,
          clock,
          idle: clock.idle(),
          mainCpu: mainThreadCpuMs() - mainBefore,
          processCpu: (processUsed.user + processUsed.system) / 1000,
        });
        clock = undefined;
      }
    }
    clock = undefined;
    await unet.session.release();
    return { alone: median(alone), aloneMsPerCall: median(aloneMs), callsPerImage, runs };
  } finally {
    await generator.close();
  }
}

function pct(fraction: number): string {
  return `${(100 * fraction).toFixed(1)} %`;
}

function pad(label: string): string {
  return `    ${label}`.padEnd(58);
}

async function main(): Promise<void> {
  await mkdir(outRoot, { recursive: true });
  const file = corpus();
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const configs: Config[] = [
    { size: 64, batch: BATCH },
    { size: 64, batch: 1 },
    { size: LARGE, batch: BATCH },
    ...(QUICK || LARGE === 64 ? [] : [{ size: LARGE, batch: 1 }]),
  ]
    .filter((config, i, all) => all.findIndex((other) => other.size === config.size && other.batch === config.batch) === i)
    .filter((config) => !ONLY || ONLY.includes(`${config.size}x${config.batch}`));
  console.log(`bench/onnx: fixtures/sd-tiny on the CPU, ${SCHEDULER} ${STEPS} steps, guidance 4, ${REPORTS} synthetic reports per run, ${ROUNDS} round(s) (median)`);
  console.log(`machine: ${availableParallelism()} × ${cpu}, Node ${process.version}, onnxruntime threads ${THREADS === 0 ? 'one per core' : THREADS}, load ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  console.log('end to end: runGenerate (read, clean, generate, PNG, tar) into a discarding sink, as medsyn-gen --backend onnx > /dev/null');
  console.log('UNet steps/s: UNet calls per wall second; a call is one scheduler step of the whole batch (2 × batch rows with guidance)');

  const figures: Figure[] = [];
  for (const config of configs) {
    const { alone, aloneMsPerCall, callsPerImage, runs } = await measureConfig(file, config);
    const aloneImages = (alone * config.batch) / callsPerImage;
    console.log('');
    console.log(`${config.size}×${config.size} px, batch ${config.batch} (${callsPerImage} UNet calls per batch, ${2 * config.batch} rows each; load after it ${loadavg().map((v) => v.toFixed(2)).join(' ')})`);
    console.log(`${pad('UNet alone (same session, same feeds, a loop)')}${alone.toFixed(1)} calls/s = ${aloneImages.toFixed(2)} images/s   (${aloneMsPerCall.toFixed(2)} ms in the model per call)`);
    for (const [checks, label] of [['on', 'default quality checks'], ['off', '--skip-quality']] as const) {
      const measured = runs[checks];
      const pick = measured.find((run) => run.seconds === median(measured.map((r) => r.seconds)))!;
      const wallMs = pick.seconds * 1000;
      const c = pick.clock;
      const images = pick.samples / pick.seconds;
      const calls = c.calls.unet / pick.seconds;
      const outside = 1 - c.busy.unet / wallMs;
      const idle = pick.idle / wallMs;
      console.log(`  end to end, ${label}:`);
      console.log(`${pad('images/s (written; generated incl. regenerations)')}${images.toFixed(2)} (${(pick.generated / pick.seconds).toFixed(2)} generated)   ${(images / aloneImages).toFixed(2)} × UNet alone`);
      console.log(`${pad('UNet steps/s (calls / wall s)')}${calls.toFixed(1)}   (${((calls * config.batch)).toFixed(0)} image-steps/s; ${(c.busy.unet / c.calls.unet).toFixed(2)} ms in the model per call)`);
      const verdict = config.batch === BATCH ? `   (target < 10 % at batch ${BATCH}: ${outside < TARGET ? 'met' : 'NOT met'})` : '';
      console.log(`${pad('share of wall time outside the UNet')}${pct(outside)}${verdict}`);
      console.log(`${pad('  text encoder busy (its own thread)')}${pct(c.busy.text / wallMs)}   (${c.calls.text} calls)`);
      console.log(`${pad('  VAE decoder busy (its own thread)')}${pct(c.busy.vae / wallMs)}   (${c.calls.vae} calls)`);
      console.log(`${pad('  main thread event loop idle')}${pct(idle)}`);
      const perImage = (ms: number): string => `${(ms / pick.generated).toFixed(2)} ms`;
      const outsideMs = (wallMs - c.busy.unet) / pick.generated;
      console.log(`${pad('outside the UNet, per image generated')}${perImage(wallMs - c.busy.unet)}   (text busy ${perImage(c.busy.text)}, VAE busy ${perImage(c.busy.vae)})`);
      const gaps = c.unetGaps(callsPerImage, pick.from, pick.to);
      console.log(
        `${pad('  = UNet thread between steps + between loops + ends')}${perImage(gaps.steps)} + ${perImage(gaps.loops)} + ${perImage(gaps.ends)}   (${(gaps.steps / Math.max(1, c.calls.unet - c.calls.unet / callsPerImage)).toFixed(3)} ms per step)`,
      );
      // The UNet call (ms in the model) above which this time per image would be under 10 %.
      const callFor10 = (((1 - TARGET) / TARGET) * outsideMs * config.batch) / callsPerImage;
      console.log(`${pad('  under 10 % with a UNet call of at least')}${callFor10.toFixed(2)} ms   (this time per image held; here ${(c.busy.unet / c.calls.unet).toFixed(2)} ms)`);
      console.log(
        `${pad('main thread on a CPU / wall (rest: waiting for one)')}${pct(pick.mainCpu / wallMs)}   (idle ${pct(idle)}; the process used ${(pick.processCpu / wallMs).toFixed(2)} cores, ${perImage(pick.processCpu)} of CPU per image)`,
      );
      console.log(`${pad('wall')}${pick.seconds.toFixed(2)} s for ${pick.samples} samples, ${c.calls.unet} UNet calls`);
      // The table gets every figure of batch BATCH and the default-checks ones of batch 1.
      const full = config.batch === BATCH;
      if (!full && checks === 'off') continue;
      const name = `sd-tiny ${config.size}² batch ${config.batch}, ${checks === 'on' ? 'checks on' : '--skip-quality'}`;
      figures.push({
        figure: `${name}: end to end`,
        value: images,
        unit: 'images/s',
        reference: { label: 'the UNet alone, same session and shapes', value: aloneImages },
      });
      if (full && checks === 'on') {
        figures.push({ figure: `${name}: UNet steps (calls per wall s)`, value: calls, unit: 'calls/s', reference: { label: 'the UNet alone', value: alone } });
      }
      figures.push({
        figure: `${name}: wall time outside the UNet`,
        value: 100 * outside,
        unit: '%',
        reference: null,
        ...(full ? { note: `target < 10 at batch ${BATCH}` } : {}),
      });
      if (full && checks === 'on') {
        figures.push({ figure: `${name}: time outside the UNet per image`, value: (wallMs - c.busy.unet) / pick.generated, unit: 'ms', reference: null });
      }
    }
  }
  reportFigures('onnx', figures);
}

await main();
