/**
 * `medsyn train` / `medsyn-train`: contrastive training of projection heads on
 * frozen towers, streaming pairs from shards.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, MedsynError } from '../errors.js';
import { HEAD_KINDS } from '../train/contrastive_heads.js';
import { trainContrastive, type ContrastiveTrainerOptions, type TrainSummary } from '../train/contrastive_trainer.js';
import type { TowerFolders } from '../train/frozen_encoders.js';
import { EXECUTION_DEVICES } from '../train/session.js';
import { choiceFlag, integerFlag, numberFlag, type Command } from './_cli.js';
import { PROGRESS_FLAG, type CommandStats } from './_progress.js';
import { catchInterrupts } from './_signals.js';

/** The bundled random-weight towers fixtures/vit-tiny and fixtures/bert-tiny, from dist/bin or from bin/. */
export function defaultEncoders(): TowerFolders {
  for (const candidate of ['../../fixtures', '../fixtures']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(join(dir, 'vit-tiny', 'preprocessor_config.json'))) return { image: join(dir, 'vit-tiny'), text: join(dir, 'bert-tiny') };
  }
  throw new MedsynError(ErrorCodes.NOT_FOUND, 'Cannot find the bundled encoders fixtures/vit-tiny and fixtures/bert-tiny: is the package installed whole? (or pass --image-encoder and --text-encoder)');
}

/** The towers the flags name: --encoders (one CLIP-style folder), or --image-encoder with --text-encoder, or the bundled ones. */
function encodersFrom(values: Record<string, unknown>): string | TowerFolders {
  const clip = values['encoders'];
  const image = values['image-encoder'];
  const text = values['text-encoder'];
  if (typeof clip === 'string') {
    if (image !== undefined || text !== undefined) throw new MedsynError(ErrorCodes.USAGE, '--encoders names a CLIP-style pair: it cannot go with --image-encoder or --text-encoder');
    return clip;
  }
  if ((typeof image === 'string') !== (typeof text === 'string')) throw new MedsynError(ErrorCodes.USAGE, '--image-encoder and --text-encoder go together (or use --encoders for a CLIP-style folder)');
  return typeof image === 'string' ? { image, text: text as string } : defaultEncoders();
}

/** Formats the end-of-run line. */
export function formatTrainSummary(summary: TrainSummary): string {
  const e = summary.lastEval;
  const evalText = e
    ? `, val loss ${e.valLoss.toFixed(4)}, R@1 image→text ${e.imageToText.r1.toFixed(3)} text→image ${e.textToImage.r1.toFixed(3)} (chance ${(1 / e.valCount).toFixed(3)})`
    : '';
  return (
    `${summary.stopped ? 'stopped' : 'trained'} ${summary.steps}/${summary.totalSteps} steps on ${summary.trainCount} pairs (${summary.valCount} held out), ` +
    `loss ${summary.lastLoss.toFixed(4)}${evalText}; ${summary.seconds.total.toFixed(1)} s (encoders ${summary.seconds.encoders.toFixed(1)} s, heads ${summary.seconds.heads.toFixed(1)} s)` +
    `${summary.model ? `; model in ${summary.model}` : `; resume with --resume`}`
  );
}

/** The `train` command. */
export const trainCommand: Command = {
  name: 'train',
  summary: 'Train contrastive projection heads on frozen image and text encoders from shards (InfoNCE, checkpoints, ONNX export).',
  usage: ['medsyn-train [options] SHARDS... --out RUN', "medsyn-train 'out/shard-{000000..000099}.tar' --out run1 --epochs 20 --cache cache/"],
  readsStdin: false,
  flags: {
    out: { type: 'string', arg: 'RUN', help: 'the run folder: config.json, log.ndjson, ckpt-NNNNNN.safetensors, model/ (required)' },
    'image-encoder': { type: 'string', arg: 'DIR', help: 'frozen image tower: a ViT/DINOv2-style ONNX folder (preprocessor_config.json, onnx/model.onnx) (default: the bundled fixtures/vit-tiny)' },
    'text-encoder': { type: 'string', arg: 'DIR', help: 'frozen text tower: a BERT-style ONNX folder (tokenizer.json, onnx/model.onnx) (default: the bundled fixtures/bert-tiny)' },
    encoders: { type: 'string', arg: 'DIR', help: 'instead: a CLIP-style folder with both towers (onnx/vision_model.onnx, onnx/text_model.onnx), e.g. fixtures/clip-tiny' },
    head: { type: 'string', arg: 'KIND', help: `projection head: ${HEAD_KINDS.join('|')} (default linear)` },
    'embed-dim': { type: 'string', arg: 'N', help: 'shared embedding size (default 64)' },
    'hidden-dim': { type: 'string', arg: 'N', help: 'hidden width of the mlp head (default 256)' },
    'batch-size': { type: 'string', arg: 'N', help: 'pairs per step (default 32)' },
    epochs: { type: 'string', arg: 'N', help: 'passes over the training split (default 10)' },
    steps: { type: 'string', arg: 'N', help: 'optimizer steps in all (overrides --epochs)' },
    lr: { type: 'string', arg: 'X', help: 'peak learning rate of the warm-up + cosine schedule (default 0.001)' },
    'warmup-steps': { type: 'string', arg: 'N', help: 'linear warm-up steps (default a tenth of the steps, at most 500)' },
    'weight-decay': { type: 'string', arg: 'X', help: "AdamW's decoupled weight decay on matrices (default 0.1)" },
    'val-fraction': { type: 'string', arg: 'X', help: 'share of keys held out for validation, by key hash (default 0.1)' },
    'eval-every': { type: 'string', arg: 'N', help: 'validation loss and R@1/5/10 every N steps (default 50)' },
    'checkpoint-every': { type: 'string', arg: 'N', help: 'checkpoint every N steps (default: --eval-every)' },
    seed: { type: 'string', arg: 'N', help: 'seed of the heads and of the shard and sample shuffles (default 0)' },
    'shuffle-buffer': { type: 'string', arg: 'N', help: 'samples in the shuffle buffer (default 1000)' },
    cache: { type: 'string', arg: 'DIR', help: 'feature cache folder: later epochs cost only the heads' },
    resume: { type: 'boolean', help: "continue the run in --out from its last checkpoint" },
    device: { type: 'string', arg: 'NAME', help: `onnxruntime device: ${EXECUTION_DEVICES.join('|')} (default cpu)` },
    threads: { type: 'string', arg: 'N', help: 'onnxruntime threads per op (default: one per core)' },
    progress: PROGRESS_FLAG,
    quiet: { type: 'boolean', short: 'q', help: 'no summary line on stderr' },
  },
  details: `
SHARDS are shard files, folders of shards, brace patterns
('out/shard-{000000..000099}.tar') or http(s) URLs, as medsyn-shard writes
them: per sample <key>.png (or .jpg/.webp) and <key>.txt (the caption).

Each epoch reads the shards in a new seeded order through a shuffle buffer.
Keys whose SHA-256("medsyn-split-v1\\n<key>") falls under --val-fraction are
held out; the rest train. Images are preprocessed as the image tower's
preprocessor_config.json says (the gray value in every channel). Features:
the image tower's pooler_output (else its [CLS] token), the mean of the text
tower's last_hidden_state over the attention mask; for a CLIP-style folder
(--encoders) image_embeds and text_embeds. The bundled towers
(fixtures/vit-tiny, fixtures/bert-tiny) have random weights: they make the
command run anywhere, and what is learnt is learnt by the heads. Heads: linear, or linear-GELU-linear, to
--embed-dim, unit length; symmetric InfoNCE with a learnable temperature
(initialised at 0.07, logit scale clamped at 100); AdamW with warm-up and
cosine decay; one onnxruntime run per step.

The run folder gets config.json (the settings; --resume refuses other ones),
log.ndjson (one JSON object per step, evaluation and skipped sample),
ckpt-NNNNNN.safetensors (parameters and optimizer state: --resume continues
exactly) and, when training ends, model/: image_embedder.onnx (pixel_values
-> unit image_embeds) and text_embedder.onnx (input_ids, attention_mask ->
unit text_embeds), each tower, pooling and head in one file for any ONNX
runtime; image_head.onnx and text_head.onnx (features -> unit embeddings,
batch 1); image_encoder/ and text_encoder/
(copies of the towers; encoder/ for a CLIP-style folder) and
model.json (how they chain). Ctrl-C stops after the current step with a
checkpoint. stdout: the summary as one JSON line.

Examples:
  medsyn-train shards/ --out run1 --epochs 20 --cache cache/
  medsyn-train shards/ --out run1 --resume
  medsyn-eval run1 --data test-shards/
`,
  async run(values, positionals, context) {
    if (positionals.length === 0) throw new MedsynError(ErrorCodes.USAGE, 'No shards: name the shards to train on (see medsyn-train --help)');
    const out = values['out'];
    if (typeof out !== 'string') throw new MedsynError(ErrorCodes.USAGE, '--out RUN is required: the folder the run is written to (see medsyn-train --help)');
    const interrupts = catchInterrupts('medsyn-train', 'stopping after this step with a checkpoint');
    const options: ContrastiveTrainerOptions = {
      encoders: encodersFrom(values),
      head: choiceFlag(values, 'head', HEAD_KINDS) ?? 'linear',
      resume: values['resume'] === true,
      signal: interrupts.signal,
      device: choiceFlag(values, 'device', EXECUTION_DEVICES) ?? 'cpu',
    };
    const integers = {
      embedDim: integerFlag(values, 'embed-dim'),
      hiddenDim: integerFlag(values, 'hidden-dim'),
      batchSize: integerFlag(values, 'batch-size', 2),
      epochs: integerFlag(values, 'epochs'),
      steps: integerFlag(values, 'steps'),
      warmupSteps: integerFlag(values, 'warmup-steps', 0),
      evalEvery: integerFlag(values, 'eval-every'),
      checkpointEvery: integerFlag(values, 'checkpoint-every'),
      seed: integerFlag(values, 'seed', 0),
      shuffleBuffer: integerFlag(values, 'shuffle-buffer', 0),
      intraOpThreads: integerFlag(values, 'threads', 0),
    };
    for (const [name, value] of Object.entries(integers)) if (value !== undefined) (options as unknown as Record<string, unknown>)[name] = value;
    const lr = numberFlag(values, 'lr', Number.MIN_VALUE);
    if (lr !== undefined) options.lr = lr;
    const weightDecay = numberFlag(values, 'weight-decay', 0);
    if (weightDecay !== undefined) options.weightDecay = weightDecay;
    const valFraction = numberFlag(values, 'val-fraction', 0, 1);
    if (valFraction !== undefined) options.valFraction = valFraction;
    if (typeof values['cache'] === 'string') options.cache = values['cache'];
    // Steps are the items (their ETA from the planned total); skipped samples the rejects.
    const live: TrainProgress = { step: 0, startStep: 0, totalSteps: undefined, loss: Number.NaN, skipped: {}, skippedTotal: 0, r1: '', started: performance.now() };
    let final: TrainSummary | undefined;
    const progress = context.startProgress('steps', (state: TrainProgress) => ({
      items: state.step - state.startStep,
      rejects: state.skippedTotal,
      done: state.step - state.startStep,
      ...(state.totalSteps !== undefined ? { total: state.totalSteps - state.startStep } : {}),
      line: `step ${state.step}${state.totalSteps !== undefined ? `/${state.totalSteps}` : ''}, loss ${state.loss.toFixed(4)}${state.r1}, ${state.skippedTotal} skipped`,
      extra: { step: state.step, ...(state.totalSteps !== undefined ? { totalSteps: state.totalSteps } : {}), loss: Number.isFinite(state.loss) ? state.loss : null },
    }));
    options.onStart = (plan) => {
      live.startStep = plan.startStep;
      live.step = plan.startStep;
      live.totalSteps = plan.totalSteps;
    };
    options.onLog = (entry) => {
      if (entry.event === 'skip') {
        live.skipped[entry.reason] = (live.skipped[entry.reason] ?? 0) + 1;
        live.skippedTotal++;
      } else if (entry.event === 'eval') {
        live.r1 = `, val R@1 ${entry.imageToText.r1.toFixed(3)}/${entry.textToImage.r1.toFixed(3)}`;
      } else {
        live.step = entry.step;
        live.loss = entry.loss;
      }
      progress.update(live);
    };
    context.stats(() => (final ? trainStats(final) : liveTrainStats(live)));
    try {
      const summary = await trainContrastive(positionals, out, options);
      final = summary;
      progress.finish(live);
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      if (values['quiet'] !== true) process.stderr.write(`medsyn-train: ${formatTrainSummary(summary)}\n`);
      return interrupts.exitCode() ?? 0;
    } finally {
      progress.finish(live);
      interrupts.dispose();
    }
  },
};

/** What medsyn-train follows as it goes. */
interface TrainProgress {
  step: number;
  startStep: number;
  totalSteps: number | undefined;
  loss: number;
  skipped: Record<string, number>;
  skippedTotal: number;
  /** The last validation R@1, for the line. */
  r1: string;
  started: number;
}

/** The `--stats` figures of a run that failed before its summary: the steps it reached. */
function liveTrainStats(live: TrainProgress): CommandStats {
  return {
    unit: 'steps',
    items: live.step - live.startStep,
    rejects: live.skippedTotal,
    rejectsByReason: live.skipped,
    elapsedMs: performance.now() - live.started,
    details: { steps: live.step, ...(live.totalSteps !== undefined ? { totalSteps: live.totalSteps } : {}), lastLoss: Number.isFinite(live.loss) ? live.loss : null },
  };
}

/** The `--stats` figures of a training run: those of its summary line (the whole summary is on stdout too). */
export function trainStats(summary: TrainSummary): CommandStats {
  const skipped = Object.values(summary.skipped).reduce((sum, count) => sum + count, 0);
  return {
    unit: 'steps',
    items: summary.stepsRun,
    rejects: skipped,
    rejectsByReason: summary.skipped,
    elapsedMs: summary.seconds.total * 1000,
    interrupted: summary.stopped,
    details: {
      run: summary.run,
      steps: summary.steps,
      stepsRun: summary.stepsRun,
      totalSteps: summary.totalSteps,
      stopped: summary.stopped,
      trainCount: summary.trainCount,
      valCount: summary.valCount,
      lastLoss: summary.lastLoss,
      ...(summary.lastEval ? { lastEval: summary.lastEval } : {}),
      ...(summary.checkpoint ? { checkpoint: summary.checkpoint } : {}),
      ...(summary.model ? { model: summary.model } : {}),
      cache: summary.cache,
      seconds: summary.seconds,
    },
  };
}
