/**
 * Layers and losses built from the primitive ops (PyTorch's
 * `torch.nn.functional`): their gradients come from the primitives' rules.
 *
 * @example
 * ```ts
 * import { Graph, nn, ops } from 'medsyn';
 * const g = new Graph();
 * const x = g.input('x', 'float32', [256, 768]);
 * const w = g.parameter('w', [768, 512], { init: linearUniform() });
 * const b = g.parameter('b', [512], { init: linearUniform({ fanIn: 768 }) });
 * const z = nn.l2Normalize(nn.linear(x, w, b));
 * ```
 *
 * @module
 */
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';
import { isFloat } from './dtype.js';
import { formatShape, type Value } from './graph.js';
import * as ops from './ops.js';

/**
 * `x @ weight + bias` with `weight` laid out `[in, out]`; one Gemm for a batch of vectors.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when the sizes do not fit
 * @example
 * ```ts
 * const h = nn.linear(x, w1, b1);
 * ```
 */
export function linear(x: Value, weight: Value, bias?: Value): Value {
  if (x.rank === 2 && weight.rank === 2 && (!bias || bias.rank <= 1)) return ops.gemm(x, weight, bias ? { c: bias } : {});
  const product = ops.matmul(x, weight);
  return bias ? ops.add(product, bias) : product;
}

/** Options of {@link layerNorm}. */
export interface LayerNormOptions {
  /** The learnable gain γ, shaped as the normalised dimensions. @default none (1) */
  scale?: Value;
  /** The learnable shift β, shaped as the normalised dimensions. @default none (0) */
  bias?: Value;
  /** How many trailing dimensions are normalised together. @default 1 */
  dims?: number;
  /** Added to the variance. @default 1e-5 */
  epsilon?: number;
}

/**
 * Layer normalisation, written out as means, a variance and a division (so that
 * its gradient is the composition of checked primitive gradients):
 * `(x − mean) / √(var + ε) · γ + β` over the trailing `dims` dimensions.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` for a scale or bias of the wrong shape
 * @example
 * ```ts
 * const y = nn.layerNorm(x, { scale: gamma, bias: beta });
 * ```
 */
export function layerNorm(x: Value, options: LayerNormOptions = {}): Value {
  const dims = options.dims ?? 1;
  const epsilon = options.epsilon ?? 1e-5;
  if (!Number.isSafeInteger(dims) || dims < 1 || dims > x.rank) invalidOption('dims', `must be in [1, ${x.rank}], got ${String(options.dims)}`);
  if (!(epsilon >= 0)) invalidOption('epsilon', `must be ≥ 0, got ${String(options.epsilon)}`);
  const axes = Array.from({ length: dims }, (_, i) => x.rank - dims + i);
  const normalised = x.shape.slice(x.rank - dims);
  for (const [name, value] of [['scale', options.scale], ['bias', options.bias]] as const) {
    if (value && value.shape.join() !== normalised.join()) {
      throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Invalid ${name} of layerNorm: ${value} must have shape ${formatShape(normalised)}`, { option: name });
    }
  }
  const mean = ops.reduceMean(x, { axes, keepDims: true });
  const centred = ops.sub(x, mean);
  const variance = ops.reduceMean(ops.mul(centred, centred), { axes, keepDims: true });
  let y = ops.div(centred, ops.sqrt(ops.add(variance, epsilon)));
  if (options.scale) y = ops.mul(y, options.scale);
  if (options.bias) y = ops.add(y, options.bias);
  return y;
}

/**
 * GELU in its exact (erf) form: `x · ½ · (1 + erf(x / √2))`.
 *
 * @example
 * ```ts
 * const h = nn.gelu(nn.linear(x, w1, b1));
 * ```
 */
export function gelu(x: Value): Value {
  return ops.mul(ops.mul(x, 0.5), ops.add(ops.erf(ops.mul(x, Math.SQRT1_2)), 1));
}

/** Options of {@link l2Normalize}. */
export interface L2NormalizeOptions {
  /** The axis along which vectors get unit length. @default -1 */
  axis?: number;
  /** The smallest norm divided by (PyTorch's `F.normalize`). @default 1e-12 */
  epsilon?: number;
}

/**
 * Scales vectors to unit Euclidean length: `x / max(‖x‖, ε)`, as PyTorch's `F.normalize`.
 *
 * @example
 * ```ts
 * const z = nn.l2Normalize(nn.linear(features, w, b));
 * ```
 */
export function l2Normalize(x: Value, options: L2NormalizeOptions = {}): Value {
  const epsilon = options.epsilon ?? 1e-12;
  if (!(epsilon >= 0)) invalidOption('epsilon', `must be ≥ 0, got ${String(options.epsilon)}`);
  const norm = ops.sqrt(ops.reduceSum(ops.mul(x, x), { axes: options.axis ?? -1, keepDims: true }));
  return ops.div(x, ops.clip(norm, { min: epsilon }));
}

/** Options of {@link logSumExp}. */
export interface LogSumExpOptions {
  /** The axis summed over. @default -1 */
  axis?: number;
  /** Keep the axis with size 1. @default false */
  keepDims?: boolean;
}

/**
 * `log(Σ exp(x))` along `axis`, shifted by the (stop-gradient) maximum so it never overflows.
 *
 * @example
 * ```ts
 * const logNormaliser = nn.logSumExp(logits);
 * ```
 */
export function logSumExp(x: Value, options: LogSumExpOptions = {}): Value {
  const axis = ops.normalizeAxis('logSumExp', options.axis ?? -1, x.rank);
  const shift = ops.stopGradient(ops.reduceMax(x, { axes: axis, keepDims: true }));
  const value = ops.add(shift, ops.log(ops.reduceSum(ops.exp(ops.sub(x, shift)), { axes: axis, keepDims: true })));
  return options.keepDims ? value : ops.reshape(value, x.shape.filter((_, i) => i !== axis));
}

/**
 * The mean cross-entropy of `logits [N, C]` against `labels`: class indices
 * `[N]` (int32/int64) or target probabilities `[N, C]`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when the shapes do not fit
 * @example
 * ```ts
 * const loss = nn.softmaxCrossEntropy(logits, g.input('labels', 'int64', [256]));
 * ```
 */
export function softmaxCrossEntropy(logits: Value, labels: Value): Value {
  if (logits.rank !== 2) throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Invalid logits of softmaxCrossEntropy: ${logits} must be [N, C]`);
  const [n, c] = logits.shape;
  let targets: Value;
  if (isFloat(labels.dtype)) {
    if (labels.shape.join() !== logits.shape.join()) {
      throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Invalid labels of softmaxCrossEntropy: probabilities ${labels} must have the logits' shape ${formatShape(logits.shape)}`);
    }
    targets = labels;
  } else {
    if (labels.rank !== 1 || labels.shape[0] !== n) {
      throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Invalid labels of softmaxCrossEntropy: class indices ${labels} must have shape [${n}]`);
    }
    const classes = logits.graph.constant(Array.from({ length: c }, (_, i) => i), { shape: [1, c], dtype: labels.dtype });
    targets = ops.cast(ops.equal(ops.reshape(labels, [n, 1]), classes), logits.dtype);
  }
  return ops.mul(ops.reduceSum(ops.mul(targets, ops.logSoftmax(logits, { axis: 1 }))), -1 / n);
}

/** Options of {@link sigmoidCrossEntropy}. */
export interface SigmoidCrossEntropyOptions {
  /** Per-element weights (0 masks a label out), broadcast to the logits. @default none (1) */
  weights?: Value;
}

/**
 * The mean binary cross-entropy of `logits` against `targets` in [0, 1]
 * (PyTorch's `binary_cross_entropy_with_logits`), computed stably as
 * `max(z, 0) − z·y + log(1 + e^−|z|)`. Multi-label logistic regression (a
 * linear probe on the 14 CheXpert labels) uses it.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when targets do not have the logits' shape
 * @example
 * ```ts
 * const loss = nn.sigmoidCrossEntropy(ops.matmul(features, w), targets, { weights: mask });
 * ```
 */
export function sigmoidCrossEntropy(logits: Value, targets: Value, options: SigmoidCrossEntropyOptions = {}): Value {
  if (targets.shape.join() !== logits.shape.join()) {
    throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Invalid targets of sigmoidCrossEntropy: ${targets} must have the logits' shape ${formatShape(logits.shape)}`);
  }
  const perElement = ops.add(ops.sub(ops.relu(logits), ops.mul(logits, targets)), ops.log(ops.add(ops.exp(ops.neg(ops.abs(logits))), 1)));
  return ops.reduceMean(options.weights ? ops.mul(perElement, options.weights) : perElement);
}

/**
 * The mean squared error.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when the shapes do not broadcast
 * @example
 * ```ts
 * const loss = nn.meanSquaredError(prediction, target);
 * ```
 */
export function meanSquaredError(prediction: Value, target: Value | number): Value {
  const difference = ops.sub(prediction, target);
  return ops.reduceMean(ops.mul(difference, difference));
}

/**
 * The symmetric InfoNCE loss of CLIP/ConVIRT from similarity `logits [N, N]`
 * whose row i is image i against every text (the matching text on the
 * diagonal): the mean of the image→text and text→image cross-entropies.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` for logits that are not square
 * @example
 * ```ts
 * const scale = ops.clip(ops.exp(logitScale), { max: 100 });
 * const logits = ops.mul(ops.gemm(imageEmbeddings, textEmbeddings, { transB: true }), scale);
 * const loss = nn.infoNce(logits);
 * ```
 */
export function infoNce(logits: Value): Value {
  if (logits.rank !== 2 || logits.shape[0] !== logits.shape[1]) {
    throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Invalid logits of infoNce: ${logits} must be square [N, N], image i matching text i`);
  }
  const n = logits.shape[0];
  const eye = new Float64Array(n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  const diagonal = logits.graph.constant(eye, { shape: [n, n], dtype: logits.dtype });
  // Image→text normalises each row, text→image each column: no transpose needed.
  const both = ops.add(ops.logSoftmax(logits, { axis: 1 }), ops.logSoftmax(logits, { axis: 0 }));
  return ops.mul(ops.reduceSum(ops.mul(both, diagonal)), -1 / (2 * n));
}
