/**
 * The linear probe: multi-label logistic regression on frozen embeddings (one
 * logit per observation, masked where a label is missing or uncertain),
 * trained full-batch with the engine (AdamW), scored by AUROC on held-out rows.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import { adamw } from './adamw.js';
import { Graph } from './graph.js';
import { zeros } from './init.js';
import * as nn from './nn.js';
import { auroc } from './retrieval_metrics.js';
import type { SessionOptions } from './session.js';
import { trainStep } from './train_step.js';

/** Options of {@link linearProbe}. */
export interface LinearProbeOptions extends SessionOptions {
  /** Full-batch AdamW steps. @default 300 */
  steps?: number;
  /** The learning rate. @default 0.05 */
  lr?: number;
  /** Decoupled weight decay. @default 1e-3 */
  weightDecay?: number;
}

/**
 * Trains a logistic regression per column of `labels` on the `train` rows and
 * returns each column's AUROC on the `test` rows (`null` where the test rows
 * lack a class or the training rows do).
 *
 * @param features one vector per row
 * @param labels one row per feature row, one column per observation: 1, 0, or anything else for unknown
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for mismatched sizes or an empty split; the engine's errors
 * @example
 * ```ts
 * const aurocs = await linearProbe(embeddings, labelRows, { train, test });
 * ```
 */
export async function linearProbe(
  features: readonly ArrayLike<number>[],
  labels: readonly (readonly number[])[],
  split: { train: readonly number[]; test: readonly number[] },
  options: LinearProbeOptions = {},
): Promise<(number | null)[]> {
  if (features.length !== labels.length) invalidOption('labels', `got ${labels.length} label rows for ${features.length} feature rows`);
  if (split.train.length === 0 || split.test.length === 0) invalidOption('split', 'both the train and the test rows must be non-empty');
  const steps = options.steps ?? 300;
  if (!Number.isSafeInteger(steps) || steps < 1) invalidOption('steps', `must be a whole number ≥ 1, got ${String(options.steps)}`);
  const size = features[0]!.length;
  const columns = labels[0]!.length;
  const n = split.train.length;
  const x = new Float32Array(n * size);
  const y = new Float32Array(n * columns);
  const mask = new Float32Array(n * columns);
  split.train.forEach((row, i) => {
    x.set(features[row]!, i * size);
    for (let c = 0; c < columns; c++) {
      const label = labels[row]![c];
      if (label === 1 || label === 0) {
        y[i * columns + c] = label;
        mask[i * columns + c] = 1;
      }
    }
  });
  const graph = new Graph({ name: 'medsyn-linear-probe' });
  const input = graph.input('x', 'float32', [n, size]);
  const target = graph.input('y', 'float32', [n, columns]);
  const weights = graph.input('mask', 'float32', [n, columns]);
  const w = graph.parameter('probe.weight', [size, columns], { init: zeros() });
  const b = graph.parameter('probe.bias', [columns], { init: zeros() });
  const loss = nn.sigmoidCrossEntropy(nn.linear(input, w, b), target, { weights });
  const { steps: _s, lr, weightDecay, ...session } = options;
  const step = await trainStep(graph, loss, { ...session, optimizer: adamw({ lr: lr ?? 0.05, weightDecay: weightDecay ?? 1e-3 }) });
  try {
    for (let s = 0; s < steps; s++) await step.run({ x, y, mask });
    const parameters = step.parameters();
    const weight = parameters.get('probe.weight')!;
    const bias = parameters.get('probe.bias')!;
    return Array.from({ length: columns }, (_, c) => {
      const trained = split.train.some((row) => labels[row]![c] === 1) && split.train.some((row) => labels[row]![c] === 0);
      if (!trained) return null;
      const scores = split.test.map((row) => {
        let z = bias[c]!;
        for (let k = 0; k < size; k++) z += features[row]![k]! * weight[k * columns + c]!;
        return z;
      });
      const value = auroc(scores, split.test.map((row) => labels[row]![c]!));
      return Number.isNaN(value) ? null : value;
    });
  } finally {
    await step.release();
  }
}
