/**
 * What the main thread and the model threads of the `onnx` backend send each other
 * (`_sd_model.ts` ↔ `_sd_worker.ts`): the models' signatures, the jobs and the
 * replies. Private to models/.
 *
 * @module
 */
import type { InferenceSession } from 'onnxruntime-node';
import type { ErrorCode } from '../errors.js';
import type { SessionOptions } from '../train/session.js';
import type { SchedulerConfig, SchedulerName } from './schedulers/scheduler.js';

/**
 * The session options the three models get on the CPU: their intra-op threads sleep as
 * soon as they run out of work instead of spinning on a core for a while
 * (`session.intra_op.allow_spinning`, on by default). The models'
 * thread pools, the main thread and sharp's share the cores, and a pool spinning through
 * the scheduler step between two UNet runs, or idle between two decodes, takes a core the
 * others need (measured on 2 loaded cores with the tiny model: a third less CPU per image,
 * and more images per second). A real model's ops run long enough that waking the threads
 * costs nothing measurable.
 */
export const CPU_SESSION_OPTIONS: Readonly<SessionOptions> = { spinning: false };

/** The element types a float input or output may have. */
export const FLOAT_TYPES = ['float32', 'float16', 'float64'] as const;
export type FloatType = (typeof FLOAT_TYPES)[number];

/** What the text encoder takes and gives. */
export interface TextSignature {
  ids: { name: string; type: 'int32' | 'int64'; length: number };
  output: { name: string; type: FloatType };
  batch: number | undefined;
}

/** What the UNet takes and gives. */
export interface UnetSignature {
  sample: { name: string; type: FloatType };
  /** `scalar`: shape []; `fixed`: [n]; `rows`: [batch] (one per row). */
  timestep: { name: string; type: FloatType | 'int32' | 'int64'; form: 'scalar' | 'rows' | 'fixed'; length: number };
  text: { name: string; type: FloatType };
  output: { name: string; type: FloatType };
  batch: number | undefined;
  /** The latent height and width when the model fixes them. */
  height: number | undefined;
  width: number | undefined;
  /** Tokens per prompt of the text states. */
  contextLength: number;
}

/** What the VAE decoder takes and gives. */
export interface VaeSignature {
  latent: { name: string; type: FloatType };
  output: { name: string; type: FloatType };
  batch: number | undefined;
}

/** A model's inputs and outputs as the session reads them (plain data). */
export interface SessionDescription {
  inputNames: string[];
  inputs: InferenceSession.TensorValueMetadata[];
  outputs: InferenceSession.TensorValueMetadata[];
}

/** One denoising loop: the group's seeds and text states, and how to step. */
export interface DenoiseJob {
  seeds: number[];
  /** Hidden states of the UNet's rows: unconditional ones first when guided. */
  textStates: Float32Array;
  /**
   * The starting latents, drawn ahead (`latents` op) for a deterministic scheduler; without
   * them, or for a stochastic scheduler, the UNet's thread draws them.
   */
  latents?: Float32Array;
  latentShape: [number, number, number];
  scheduler: { name: SchedulerName; config: SchedulerConfig; steps: number; eta: number; karras: boolean | undefined };
  guidance: number;
  guided: boolean;
}

/** What the main thread asks of a worker. */
export type SdRequest =
  | { op: 'open'; id: number; file: string; session: SessionOptions }
  | { op: 'text'; id: number; signature: TextSignature; ids: number[][] }
  | { op: 'latents'; id: number; seeds: number[]; latentSize: number; sigma: number }
  | { op: 'denoise'; id: number; signature: UnetSignature; job: DenoiseJob }
  | { op: 'decode'; id: number; signature: VaeSignature; latents: Float32Array; rows: number; latentShape: [number, number, number]; scale: number; channels: 1 | 3 }
  | { op: 'release'; id: number };

/** An error as it crosses threads: a {@link MedsynError}'s code and fields, or a plain message. */
export interface SdWorkerError {
  code?: ErrorCode;
  message: string;
  file?: string;
  option?: string;
  stack?: string;
}

/**
 * A worker's answer: `runs` holds the start and end (ms since the epoch) of each native
 * session run the job made, pairwise.
 */
export interface SdReply {
  id: number;
  error?: SdWorkerError;
  runs?: number[];
  description?: SessionDescription;
  states?: Float32Array;
  latents?: Float32Array;
  images?: Uint8Array[];
  width?: number;
  height?: number;
}
