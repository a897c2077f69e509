/**
 * Training checkpoints as safetensors files: the parameters under their own
 * names (so other tools read them as a plain state dict), the optimizer state
 * under `optimizer.<slot>.<parameter>`, and the step, optimizer, schedule,
 * clipping and the caller's config in `__metadata__`.
 *
 * @module
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { ErrorCodes, MedsynError } from '../errors.js';
import { VERSION } from '../version.js';
import type { FloatArray } from './dtype.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from './safetensors.js';

/** The value of `__metadata__.format` in medsyn checkpoints. */
export const CHECKPOINT_FORMAT = 'medsyn-train-checkpoint/1';

/** One float tensor of a checkpoint. */
export interface CheckpointTensor {
  dtype: 'float32' | 'float64';
  shape: readonly number[];
  data: FloatArray;
}

/** Everything a training step needs to continue exactly where it stopped. */
export interface Checkpoint {
  /** Optimizer updates done. */
  step: number;
  /** Parameters by name (trained and frozen). */
  parameters: Map<string, CheckpointTensor>;
  /** Optimizer state by slot, then parameter name. */
  state: Map<string, Map<string, CheckpointTensor>>;
  /** The optimizer's kind and hyper-parameters. */
  optimizer: { name: string; config: Record<string, unknown> };
  /** The learning-rate schedule's kind and settings. */
  schedule: { name: string; config: Record<string, unknown> };
  /** The global-norm clip, or null. */
  clipGradNorm: number | null;
  /** The caller's own settings (model shape, data, seed), as JSON. */
  config: Record<string, unknown>;
}

const STATE_PREFIX = 'optimizer.';

/**
 * The safetensors bytes of `checkpoint`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_GRAPH` when a parameter name clashes with the optimizer-state names
 * @example
 * ```ts
 * await writeFile('ckpt.safetensors', encodeCheckpoint(checkpoint));
 * ```
 */
export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, tensor] of checkpoint.parameters) {
    if (name.startsWith(STATE_PREFIX) || name === '__metadata__') {
      throw new MedsynError(ErrorCodes.BAD_GRAPH, `Cannot checkpoint parameter ${name}: names starting with ${STATE_PREFIX} hold optimizer state (rename the parameter)`);
    }
    tensors.set(name, tensor);
  }
  for (const [slot, byName] of checkpoint.state) for (const [name, tensor] of byName) tensors.set(`${STATE_PREFIX}${slot}.${name}`, tensor);
  return encodeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    medsyn_version: VERSION,
    step: String(checkpoint.step),
    optimizer: JSON.stringify(checkpoint.optimizer),
    schedule: JSON.stringify(checkpoint.schedule),
    clip_grad_norm: JSON.stringify(checkpoint.clipGradNorm),
    slots: JSON.stringify([...checkpoint.state.keys()]),
    config: JSON.stringify(checkpoint.config),
  });
}

function parseJson(metadata: Record<string, string>, key: string, file: string | undefined): unknown {
  const text = metadata[key];
  if (text === undefined) throw new MedsynError(ErrorCodes.BAD_CHECKPOINT, `Cannot read checkpoint${file ? ` ${file}` : ''}: no ${key} in its metadata`, file ? { file } : {});
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new MedsynError(ErrorCodes.BAD_CHECKPOINT, `Cannot read checkpoint${file ? ` ${file}` : ''}: metadata ${key} is not JSON`, { cause, ...(file ? { file } : {}) });
  }
}

/**
 * Decodes checkpoint bytes.
 *
 * @param file the file name, for messages
 * @throws {MedsynError} `MEDSYN_ERR_BAD_CHECKPOINT` for bytes that are not a medsyn checkpoint
 * @example
 * ```ts
 * const { parameters, step } = decodeCheckpoint(await readFile('ckpt.safetensors'));
 * ```
 */
export function decodeCheckpoint(bytes: Uint8Array, file?: string): Checkpoint {
  const { tensors, metadata } = decodeSafetensors(bytes, file);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new MedsynError(
      ErrorCodes.BAD_CHECKPOINT,
      `Cannot read checkpoint${file ? ` ${file}` : ''}: its metadata format is ${JSON.stringify(metadata.format)}, expected ${CHECKPOINT_FORMAT} (a safetensors file not written by medsyn?)`,
      file ? { file } : {},
    );
  }
  const step = Number(metadata.step);
  if (!Number.isSafeInteger(step) || step < 0) throw new MedsynError(ErrorCodes.BAD_CHECKPOINT, `Cannot read checkpoint${file ? ` ${file}` : ''}: bad step ${metadata.step}`, file ? { file } : {});
  const slots = parseJson(metadata, 'slots', file) as string[];
  const parameters = new Map<string, CheckpointTensor>();
  const state = new Map<string, Map<string, CheckpointTensor>>(slots.map((slot) => [slot, new Map()]));
  for (const [key, tensor] of tensors) {
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'float64') {
      throw new MedsynError(ErrorCodes.BAD_CHECKPOINT, `Cannot read checkpoint${file ? ` ${file}` : ''}: tensor ${key} is ${tensor.dtype}, not float`, file ? { file } : {});
    }
    const float = tensor as CheckpointTensor;
    if (!key.startsWith(STATE_PREFIX)) {
      parameters.set(key, float);
      continue;
    }
    const rest = key.slice(STATE_PREFIX.length);
    const slot = slots.find((candidate) => rest.startsWith(`${candidate}.`));
    if (!slot) throw new MedsynError(ErrorCodes.BAD_CHECKPOINT, `Cannot read checkpoint${file ? ` ${file}` : ''}: tensor ${key} belongs to no optimizer slot`, file ? { file } : {});
    state.get(slot)!.set(rest.slice(slot.length + 1), float);
  }
  return {
    step,
    parameters,
    state,
    optimizer: parseJson(metadata, 'optimizer', file) as Checkpoint['optimizer'],
    schedule: parseJson(metadata, 'schedule', file) as Checkpoint['schedule'],
    clipGradNorm: parseJson(metadata, 'clip_grad_norm', file) as number | null,
    config: parseJson(metadata, 'config', file) as Record<string, unknown>,
  };
}

/**
 * Writes a checkpoint file: to a temporary name first, then renamed, so a crash
 * never leaves a half-written checkpoint under the real name.
 *
 * @throws {MedsynError} `MEDSYN_ERR_WRITE_FAILED` when the file cannot be written
 * @example
 * ```ts
 * await saveCheckpoint('run1/last.safetensors', checkpoint);
 * ```
 */
export async function saveCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  const bytes = encodeCheckpoint(checkpoint);
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  } catch (cause) {
    await rm(temporary, { force: true });
    throw new MedsynError(ErrorCodes.WRITE_FAILED, `Cannot write checkpoint ${path}: ${(cause as Error).message}`, { file: path, cause });
  }
}

/**
 * Reads a checkpoint file.
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` for a missing file, `MEDSYN_ERR_BAD_CHECKPOINT` for one that is not a medsyn checkpoint
 * @example
 * ```ts
 * const checkpoint = await loadCheckpoint('run1/last.safetensors');
 * ```
 */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? ErrorCodes.NOT_FOUND : ErrorCodes.READ_FAILED;
    throw new MedsynError(code, `Cannot read checkpoint ${path}: ${(cause as Error).message}`, { file: path, cause });
  }
  return decodeCheckpoint(bytes, path);
}
