/**
 * Every error medsyn throws, in one place. Each has a stable `code` that tests
 * and callers match on; the message text may change, the code does not.
 *
 * @module
 */

/** The stable error codes. A code is never reused for another meaning. */
export const ErrorCodes = {
  /** A command line that cannot be run: unknown flag, missing argument. Exit 2. */
  USAGE: 'MEDSYN_ERR_USAGE',
  /** A library option with a wrong type or out of range. Exit 2. */
  INVALID_OPTION: 'MEDSYN_ERR_INVALID_OPTION',
  /** An input path that does not exist or cannot be opened. */
  NOT_FOUND: 'MEDSYN_ERR_NOT_FOUND',
  /** An input with no bytes at all. */
  EMPTY_INPUT: 'MEDSYN_ERR_EMPTY_INPUT',
  /** An input whose format could not be detected or is not supported. */
  UNKNOWN_FORMAT: 'MEDSYN_ERR_UNKNOWN_FORMAT',
  /** A CSV whose structure is broken (an unbalanced quote). */
  BAD_CSV: 'MEDSYN_ERR_BAD_CSV',
  /** A CSV header without a column the chosen mode needs. */
  MISSING_COLUMN: 'MEDSYN_ERR_MISSING_COLUMN',
  /** A zip archive that cannot be read: truncated, not a zip, bad central directory. */
  CORRUPT_ZIP: 'MEDSYN_ERR_CORRUPT_ZIP',
  /** A tokenizer folder that cannot be loaded. */
  BAD_TOKENIZER: 'MEDSYN_ERR_BAD_TOKENIZER',
  /** A record rejected while the stage runs with `onError: 'fail'`. */
  REJECTED: 'MEDSYN_ERR_REJECTED',
  /** Writing an output failed (full disk, closed pipe, permissions). */
  WRITE_FAILED: 'MEDSYN_ERR_WRITE_FAILED',
  /** Reading an input failed after it was opened. */
  READ_FAILED: 'MEDSYN_ERR_READ_FAILED',
  /** A worker thread crashed or exited (out of memory, a bug). */
  WORKER_FAILED: 'MEDSYN_ERR_WORKER_FAILED',
  /** A tar stream or shard that cannot be decoded: bad header, truncated, missing end-of-archive. */
  CORRUPT_TAR: 'MEDSYN_ERR_CORRUPT_TAR',
  /** A tar entry refused as unsafe: absolute name, `..` component, link, device or fifo. */
  UNSAFE_ENTRY: 'MEDSYN_ERR_UNSAFE_ENTRY',
  /** A sample that cannot be written as WebDataset: a key or part name that breaks the naming rules. */
  BAD_SAMPLE: 'MEDSYN_ERR_BAD_SAMPLE',
  /** An output folder that cannot be written or resumed: foreign files, another prefix, a gap in the shards. */
  OUTPUT_CONFLICT: 'MEDSYN_ERR_OUTPUT_CONFLICT',
  /** A generator backend failed on a batch (a render, a model run, a remote call). */
  GENERATION_FAILED: 'MEDSYN_ERR_GENERATION_FAILED',
  /** A training graph that cannot be built: a duplicate name, a value from another graph, a loss that is not a scalar. */
  BAD_GRAPH: 'MEDSYN_ERR_BAD_GRAPH',
  /** Tensor shapes that do not fit an op (inner dimensions of a product, broadcasting, a reshape). */
  SHAPE_MISMATCH: 'MEDSYN_ERR_SHAPE_MISMATCH',
  /** A tensor of an element type an op does not take (a float op given integers, mixed float32/float64). */
  DTYPE_MISMATCH: 'MEDSYN_ERR_DTYPE_MISMATCH',
  /** An op the engine cannot differentiate or onnxruntime cannot run. */
  UNSUPPORTED_OP: 'MEDSYN_ERR_UNSUPPORTED_OP',
  /** An onnxruntime execution provider (cuda, webgpu) that is not available or cannot load. */
  PROVIDER_UNAVAILABLE: 'MEDSYN_ERR_PROVIDER_UNAVAILABLE',
  /** onnxruntime refused a model or failed while running it. */
  SESSION_FAILED: 'MEDSYN_ERR_SESSION_FAILED',
  /** A batch fed to a graph with a missing, unknown or wrongly sized tensor. */
  BAD_FEED: 'MEDSYN_ERR_BAD_FEED',
  /** A checkpoint file that cannot be decoded: not safetensors, truncated, a tensor missing. */
  BAD_CHECKPOINT: 'MEDSYN_ERR_BAD_CHECKPOINT',
  /** A checkpoint made for another model or optimizer than the one loading it. */
  CHECKPOINT_MISMATCH: 'MEDSYN_ERR_CHECKPOINT_MISMATCH',
  /** A model folder whose files or whose inputs and outputs are not what medsyn expects (a missing input, a bad config). */
  BAD_MODEL: 'MEDSYN_ERR_BAD_MODEL',
  /** A feature cache file that is not a medsyn cache of the encoder and vector size asked for. */
  BAD_CACHE: 'MEDSYN_ERR_BAD_CACHE',
  /** A training run folder that cannot be used: no config or checkpoint, or made with other settings. */
  BAD_RUN: 'MEDSYN_ERR_BAD_RUN',
  /** Partitions of a shard folder that cannot be merged into one dataset: unfinished, missing, or made with other options or versions. */
  MERGE_CONFLICT: 'MEDSYN_ERR_MERGE_CONFLICT',
  /** An inference server that cannot be reached, or that is not ready or has no such model, when a backend starts. */
  SERVER_UNAVAILABLE: 'MEDSYN_ERR_SERVER_UNAVAILABLE',
  /** An inference server's answer that does not follow its protocol: not JSON, a missing field, a tensor of the wrong size. */
  BAD_RESPONSE: 'MEDSYN_ERR_BAD_RESPONSE',
} as const;

/** One of the values of {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Data fields an error may carry to say where it happened. */
export interface MedsynErrorData {
  /** The file, archive entry or stream the error is about. */
  file?: string;
  /** 1-based line or row number in `file`. */
  line?: number;
  /** Byte offset in `file`. */
  offset?: number;
  /** The option or column the error is about. */
  option?: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * Base class of every error medsyn throws on purpose.
 *
 * @example
 * ```ts
 * try { await run(); } catch (err) {
 *   if (err instanceof MedsynError && err.code === ErrorCodes.NOT_FOUND) console.error(err.message);
 * }
 * ```
 */
export class MedsynError extends Error {
  override name = 'MedsynError';
  /** The stable code, one of {@link ErrorCodes}. */
  readonly code: ErrorCode;
  readonly file?: string;
  readonly line?: number;
  readonly offset?: number;
  readonly option?: string;

  /**
   * @param code one of {@link ErrorCodes}
   * @param message what failed, then the detail after a colon, then a hint
   * @param data where it happened and the underlying cause
   */
  constructor(code: ErrorCode, message: string, data: MedsynErrorData = {}) {
    super(message, data.cause === undefined ? undefined : { cause: data.cause });
    this.code = code;
    if (data.file !== undefined) this.file = data.file;
    if (data.line !== undefined) this.line = data.line;
    if (data.offset !== undefined) this.offset = data.offset;
    if (data.option !== undefined) this.option = data.option;
  }

  /** The process exit code a CLI uses for this error: 2 for bad usage, else 1. */
  get exitCode(): 1 | 2 {
    return this.code === ErrorCodes.USAGE || this.code === ErrorCodes.INVALID_OPTION ? 2 : 1;
  }
}

/**
 * Throws a {@link MedsynError} with code `MEDSYN_ERR_INVALID_OPTION` naming `option`.
 *
 * @throws {MedsynError} always
 * @example
 * ```ts
 * if (!(batchSize > 0)) invalidOption('batchSize', `must be a positive integer, got ${batchSize}`);
 * ```
 */
export function invalidOption(option: string, detail: string): never {
  throw new MedsynError(ErrorCodes.INVALID_OPTION, `Invalid option ${option}: ${detail}`, { option });
}
