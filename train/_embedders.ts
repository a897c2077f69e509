/**
 * The run's single-file embedders: each frozen tower joined with the pooling
 * the trainer applied to it and the trained head, so that
 * `model/image_embedder.onnx` maps `pixel_values` to unit `image_embeds` and
 * `model/text_embedder.onnx` maps the tokenizer's tensors to unit
 * `text_embeds`, in any ONNX runtime. Pooling is the one `loadFrozenEncoders`
 * documents: a CLIP-style tower's `image_embeds` / `text_embeds`; an image
 * tower's `pooler_output` or `image_embeds`, else `last_hidden_state` at the
 * first token; a text tower's `sentence_embedding` or `text_embeds`, else the
 * mean of `last_hidden_state` over `attention_mask`.
 *
 * @module
 */
import { closeSync, openSync, readFileSync, renameSync } from 'node:fs';
import { ErrorCodes, MedsynError } from '../errors.js';
import { headEmbedding, type HeadShape } from './contrastive_heads.js';
import type { FloatArray } from './dtype.js';
import { Graph, type Value } from './graph.js';
import { fuseOnnx, onnxSignature, writeChunks, type OnnxSignature } from './_onnx_fuse.js';
import * as ops from './ops.js';

/** ONNX element types the text tower's `attention_mask` may have. */
const MASK_TYPES: Record<number, 'int64' | 'int32'> = { 7: 'int64', 6: 'int32' };

/** The towers of a run: their model files and whether they are one CLIP-style pair. */
export interface EmbedderTowers {
  imageModel: string;
  textModel: string;
  /** A CLIP-style pair: the towers' outputs are `image_embeds` and `text_embeds`. */
  clip: boolean;
}

/** What one joined embedder reads from its tower. */
export interface EmbedderPooling {
  /** The tower output pooled. */
  output: string;
  /** How: the output as it is, its first token, or its mean over `attention_mask`. */
  pooling: 'as-is' | 'first-token' | 'masked-mean';
}

/** How the tower's output is pooled, the same choice `loadFrozenEncoders` makes. */
export function poolingOf(signature: OnnxSignature, which: 'image' | 'text', clip: boolean): EmbedderPooling {
  const names = signature.outputs.map((o) => o.name);
  const pooled = clip ? [`${which}_embeds`] : which === 'image' ? ['pooler_output', 'image_embeds'] : ['sentence_embedding', 'text_embeds'];
  const found = pooled.find((name) => names.includes(name));
  if (found) return { output: found, pooling: 'as-is' };
  if (!clip && names.includes('last_hidden_state')) return { output: 'last_hidden_state', pooling: which === 'image' ? 'first-token' : 'masked-mean' };
  throw new MedsynError(ErrorCodes.BAD_MODEL, `Cannot join the ${which} tower: it has none of the outputs ${[...pooled, 'last_hidden_state'].join(', ')}`);
}

/** The tail's ONNX bytes (pooling, head, unit length) and how its inputs wire to the tower. */
function tailOf(which: 'image' | 'text', signature: OnnxSignature, pooling: EmbedderPooling, shape: HeadShape, parameters: ReadonlyMap<string, FloatArray>, metadata: Record<string, string>) {
  const graph = new Graph({ name: `medsyn-${which}-embedder` });
  const size = which === 'image' ? shape.imageSize : shape.textSize;
  const connect: Record<string, string> = {};
  let features: Value;
  if (pooling.pooling === 'as-is') {
    features = graph.input('features', 'float32', [1, size]);
    connect['features'] = pooling.output;
  } else {
    // The sequence length is left to the runtime: no op below depends on it.
    const hidden = graph.input('hidden', 'float32', [1, 1, size]);
    connect['hidden'] = pooling.output;
    if (pooling.pooling === 'first-token') {
      features = ops.gather(hidden, graph.constant(0, { dtype: 'int64', shape: [] }), { axis: 1 });
    } else {
      const maskType = MASK_TYPES[signature.inputs.find((i) => i.name === 'attention_mask')?.elemType ?? 0];
      if (!maskType) throw new MedsynError(ErrorCodes.BAD_MODEL, 'Cannot join the text tower: it has no int64 or int32 input attention_mask to pool over');
      const mask = ops.cast(graph.input('mask', maskType, [1, 1]), 'float32');
      const [column] = ops.custom('Unsqueeze', [mask, graph.constant([2], { dtype: 'int64' })], { outputs: [{ dtype: 'float32', shape: [1, 1, 1] }] });
      const sum = ops.reduceSum(ops.mul(hidden, column!), { axes: 1 });
      const tokens = ops.clip(ops.reduceSum(mask, { axes: 1, keepDims: true }), { min: 1 });
      features = ops.div(sum, tokens);
      connect['mask'] = 'attention_mask';
    }
  }
  const embeds = headEmbedding(graph, which, features, shape);
  const bytes = graph.toOnnx({ [`${which}_embeds`]: embeds }, { parameters: 'initializers', values: parameters, metadata });
  return { bytes, connect };
}

/** Where the joined embedders were written, and how each pools. */
export interface WrittenEmbedders {
  image: EmbedderPooling & { file: string };
  text: EmbedderPooling & { file: string };
}

/**
 * Writes `image_embedder.onnx` and `text_embedder.onnx` into `dir`: each tower
 * with its pooling and trained head in one model (see the module description).
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_MODEL` for a tower that cannot be joined (external data,
 *   an opset before 13, no output to pool)
 * @example
 * ```ts
 * writeEmbedders('run/model', { imageModel, textModel, clip: false }, shape, step.parameters(), { medsyn_step: '480' });
 * ```
 */
export function writeEmbedders(dir: string, towers: EmbedderTowers, shape: HeadShape, parameters: ReadonlyMap<string, FloatArray>, metadata: Record<string, string> = {}): WrittenEmbedders {
  const write = (which: 'image' | 'text', model: string): EmbedderPooling & { file: string } => {
    const towerBytes = readFileSync(model);
    const signature = onnxSignature(towerBytes);
    const pooling = poolingOf(signature, which, towers.clip);
    const tail = tailOf(which, signature, pooling, shape, parameters, metadata);
    const chunks = fuseOnnx(towerBytes, tail.bytes, { connect: tail.connect, metadata });
    const file = `${which}_embedder.onnx`;
    const path = `${dir}/${file}`;
    const fd = openSync(`${path}.tmp`, 'w');
    try {
      writeChunks(fd, chunks);
    } finally {
      closeSync(fd);
    }
    renameSync(`${path}.tmp`, path);
    return { ...pooling, file };
  };
  return { image: write('image', towers.imageModel), text: write('text', towers.textModel) };
}
