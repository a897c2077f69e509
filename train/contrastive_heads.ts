/**
 * The trainable part of the contrastive model: a projection head per tower
 * (linear, or a 2-layer MLP with GELU) from the frozen features to a shared
 * embedding size, unit-normalised, and CLIP's learnable temperature. The same
 * builder makes the training graph, the evaluation graph and the exported
 * heads, so parameter names always agree.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import type { FloatArray } from './dtype.js';
import { Graph, type Value } from './graph.js';
import { GraphSession } from './graph_session.js';
import { linearUniform } from './init.js';
import * as nn from './nn.js';
import * as ops from './ops.js';
import type { SessionOptions } from './session.js';

/** The head kinds. */
export const HEAD_KINDS = ['linear', 'mlp'] as const;

/** The shape of the heads. */
export interface HeadShape {
  /** `linear`: one projection; `mlp`: linear → GELU → linear. */
  head: (typeof HEAD_KINDS)[number];
  /** Values per image feature vector (the image tower's output). */
  imageSize: number;
  /** Values per text feature vector (the text tower's output). */
  textSize: number;
  /** The shared embedding size. */
  embedDim: number;
  /** The MLP's hidden width (unused for `linear`). */
  hiddenDim: number;
}

/** The values {@link buildHeads} adds. */
export interface Heads {
  imageFeatures: Value;
  textFeatures: Value;
  /** Unit-length image embeddings [batch, embedDim]. */
  imageEmbeds: Value;
  /** Unit-length text embeddings [batch, embedDim]. */
  textEmbeds: Value;
  /** The learnable log of the logit scale (CLIP's `logit_scale`), initialised at log(1/0.07). */
  logitScale: Value;
}

/** The logit scale's ceiling, as CLIP clamps it. */
export const MAX_LOGIT_SCALE = 100;

/**
 * Checks a {@link HeadShape}.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` naming the bad field
 */
export function checkHeadShape(shape: HeadShape): void {
  if (!HEAD_KINDS.includes(shape.head)) invalidOption('head', `must be ${HEAD_KINDS.join(' or ')}, got ${String(shape.head)}`);
  for (const name of ['imageSize', 'textSize', 'embedDim', 'hiddenDim'] as const) {
    if (!Number.isSafeInteger(shape[name]) || shape[name] < 1) invalidOption(name, `must be a whole number ≥ 1, got ${String(shape[name])}`);
  }
}

function projection(graph: Graph, prefix: string, x: Value, shape: HeadShape): Value {
  const inSize = x.shape[1]!;
  const layer = (name: string, from: number, to: number, input: Value): Value => {
    const w = graph.parameter(`${prefix}.${name}.weight`, [from, to], { init: linearUniform() });
    const b = graph.parameter(`${prefix}.${name}.bias`, [to], { init: linearUniform({ fanIn: from }) });
    return nn.linear(input, w, b);
  };
  if (shape.head === 'linear') return layer('proj', inSize, shape.embedDim, x);
  return layer('fc2', shape.hiddenDim, shape.embedDim, nn.gelu(layer('fc1', inSize, shape.hiddenDim, x)));
}

/**
 * One head on `features` [batch, size]: the projection named `image_head` or
 * `text_head` (the checkpoint's parameter names) and unit length.
 *
 * @example
 * ```ts
 * const imageEmbeds = headEmbedding(g, 'image', pooled, shape);
 * ```
 */
export function headEmbedding(graph: Graph, which: 'image' | 'text', features: Value, shape: HeadShape): Value {
  return nn.l2Normalize(projection(graph, `${which}_head`, features, shape));
}

/**
 * Adds both heads for a batch of `batch` to `graph`: inputs `image_features`
 * and `text_features` (float32), unit-length embeddings out. Parameters:
 * `image_head.*`, `text_head.*`, `logit_scale`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a bad shape
 * @example
 * ```ts
 * const g = new Graph({ seed: 0 });
 * const heads = buildHeads(g, 32, { head: 'linear', imageSize: 32, textSize: 32, embedDim: 64, hiddenDim: 128 });
 * ```
 */
export function buildHeads(graph: Graph, batch: number, shape: HeadShape): Heads {
  checkHeadShape(shape);
  const imageFeatures = graph.input('image_features', 'float32', [batch, shape.imageSize]);
  const textFeatures = graph.input('text_features', 'float32', [batch, shape.textSize]);
  const imageEmbeds = headEmbedding(graph, 'image', imageFeatures, shape);
  const textEmbeds = headEmbedding(graph, 'text', textFeatures, shape);
  const logitScale = graph.parameter('logit_scale', [], { init: Math.log(1 / 0.07) });
  return { imageFeatures, textFeatures, imageEmbeds, textEmbeds, logitScale };
}

/**
 * The symmetric InfoNCE loss of a batch: cosine similarities times
 * `min(exp(logit_scale), 100)`.
 *
 * @example
 * ```ts
 * const loss = contrastiveLoss(buildHeads(g, 32, shape));
 * ```
 */
export function contrastiveLoss(heads: Heads): Value {
  const scale = ops.clip(ops.exp(heads.logitScale), { max: MAX_LOGIT_SCALE });
  return nn.infoNce(ops.mul(ops.gemm(heads.imageEmbeds, heads.textEmbeds, { transB: true }), scale));
}

/**
 * The symmetric InfoNCE loss of unit embeddings computed on the host in double
 * precision (validation over a whole set at once, as open_clip evaluates).
 *
 * @example
 * ```ts
 * const valLoss = hostContrastiveLoss(imageEmbeds, textEmbeds, Math.exp(logitScale));
 * ```
 */
export function hostContrastiveLoss(images: readonly ArrayLike<number>[], texts: readonly ArrayLike<number>[], scale: number): number {
  const n = images.length;
  if (n === 0) return Number.NaN;
  const logits = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0;
      const u = images[i]!;
      const v = texts[j]!;
      for (let k = 0; k < u.length; k++) dot += u[k]! * v[k]!;
      logits[i * n + j] = dot * Math.min(scale, MAX_LOGIT_SCALE);
    }
  }
  const logSumExp = (at: (k: number) => number): number => {
    let max = -Infinity;
    for (let k = 0; k < n; k++) max = Math.max(max, at(k));
    let sum = 0;
    for (let k = 0; k < n; k++) sum += Math.exp(at(k) - max);
    return max + Math.log(sum);
  };
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += logSumExp((k) => logits[i * n + k]!) - logits[i * n + i]!;
    total += logSumExp((k) => logits[k * n + i]!) - logits[i * n + i]!;
  }
  return total / (2 * n);
}

/**
 * Runs the heads forward with given parameters, in chunks of a fixed batch
 * (the engine's shapes are static; the last chunk is padded and the padding dropped).
 *
 * @example
 * ```ts
 * const embedder = await HeadEmbedder.create(shape, step.parameters(), { batch: 32 });
 * const imageEmbeds = await embedder.embedImages(imageFeatures);
 * await embedder.release();
 * ```
 */
export class HeadEmbedder {
  readonly #image: GraphSession;
  readonly #text: GraphSession;
  readonly #batch: number;
  readonly #shape: HeadShape;

  private constructor(image: GraphSession, text: GraphSession, batch: number, shape: HeadShape) {
    this.#image = image;
    this.#text = text;
    this.#batch = batch;
    this.#shape = shape;
  }

  /**
   * Opens the two head sessions.
   *
   * @throws {MedsynError} as {@link GraphSession.create}
   */
  static async create(shape: HeadShape, parameters: ReadonlyMap<string, FloatArray>, options: SessionOptions & { batch?: number } = {}): Promise<HeadEmbedder> {
    const batch = options.batch ?? 32;
    const graph = new Graph({ name: 'medsyn-heads' });
    const heads = buildHeads(graph, batch, shape);
    const image = await GraphSession.create(graph, { image_embeds: heads.imageEmbeds }, { ...options, parameters });
    const text = await GraphSession.create(graph, { text_embeds: heads.textEmbeds }, { ...options, parameters });
    return new HeadEmbedder(image, text, batch, shape);
  }

  /** Unit image embeddings of image features. */
  embedImages(features: readonly ArrayLike<number>[]): Promise<Float32Array[]> {
    return this.#run(this.#image, 'image_features', 'image_embeds', this.#shape.imageSize, features);
  }

  /** Unit text embeddings of text features. */
  embedTexts(features: readonly ArrayLike<number>[]): Promise<Float32Array[]> {
    return this.#run(this.#text, 'text_features', 'text_embeds', this.#shape.textSize, features);
  }

  async #run(session: GraphSession, input: string, output: string, size: number, features: readonly ArrayLike<number>[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    const dim = this.#shape.embedDim;
    for (let start = 0; start < features.length; start += this.#batch) {
      const count = Math.min(this.#batch, features.length - start);
      const feed = new Float32Array(this.#batch * size);
      for (let i = 0; i < count; i++) feed.set(features[start + i]!, i * size);
      const result = (await session.run({ [input]: feed }))[output] as Float32Array;
      for (let i = 0; i < count; i++) out.push(Float32Array.from(result.subarray(i * dim, (i + 1) * dim)));
    }
    return out;
  }

  /** Frees both sessions. */
  async release(): Promise<void> {
    await Promise.all([this.#image.release(), this.#text.release()]);
  }
}

/**
 * The ONNX bytes of the two heads for a batch of `batch` (inputs
 * `image_features` / `text_features`, outputs `image_embeds` / `text_embeds`,
 * unit length), with the given parameters written in.
 *
 * @example
 * ```ts
 * const { image, text } = exportHeads(shape, step.parameters());
 * ```
 */
export function exportHeads(shape: HeadShape, parameters: ReadonlyMap<string, FloatArray>, options: { batch?: number; metadata?: Record<string, string> } = {}): { image: Uint8Array; text: Uint8Array } {
  const make = (which: 'image' | 'text'): Uint8Array => {
    const graph = new Graph({ name: `medsyn-${which}-head` });
    const heads = buildHeads(graph, options.batch ?? 1, shape);
    const output: Record<string, Value> = which === 'image' ? { image_embeds: heads.imageEmbeds } : { text_embeds: heads.textEmbeds };
    return graph.toOnnx(output, { parameters: 'initializers', values: parameters, metadata: options.metadata ?? {} });
  };
  return { image: make('image'), text: make('text') };
}
