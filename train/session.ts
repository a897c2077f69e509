/**
 * Opening onnxruntime sessions for training steps and exported models: the
 * execution provider (`cpu`, `cuda`, `webgpu`) and thread counts, with a
 * medsyn error (and a hint) when a provider cannot load instead of a silent
 * fall-back to the CPU.
 *
 * @module
 */
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';
import { IR_VERSION, OPSET } from './_emit_onnx.js';
import { encodeOnnxModel } from './_onnx_proto.js';

const require = createRequire(import.meta.url);
/** onnxruntime-node, loaded once (it is a CommonJS package). */
export const ort = require('onnxruntime-node') as typeof Ort;

/** Where a session runs. */
export type ExecutionDevice = 'cpu' | 'cuda' | 'webgpu';

/** The devices medsyn knows. */
export const EXECUTION_DEVICES: readonly ExecutionDevice[] = ['cpu', 'cuda', 'webgpu'];

/** Options of {@link openSession}. */
export interface SessionOptions {
  /** The execution provider: `cpu` (MLAS), `cuda` or `webgpu`. @default 'cpu' */
  device?: ExecutionDevice;
  /** The GPU index for `cuda`. @default 0 */
  deviceId?: number;
  /** Threads one op may use (matrix products, large elementwise ops); 0 lets onnxruntime use one per core. @default 0 */
  intraOpThreads?: number;
  /** Threads running independent ops at once; above 1 switches to onnxruntime's parallel executor. @default 1 */
  interOpThreads?: number;
  /** onnxruntime's graph optimisation level. @default 'all' */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** onnxruntime's log level for this session: 0 verbose … 4 fatal. @default 3 */
  logLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * Whether idle intra-op threads spin on their core for a while before they sleep
   * (`session.intra_op.allow_spinning`). Spinning saves a wake-up between ops; turn it off
   * where other threads need the cores between runs.
   * @default true (onnxruntime's default)
   */
  spinning?: boolean;
}

const HINTS: Record<ExecutionDevice, string> = {
  cpu: '',
  cuda:
    ' (onnxruntime-node ships CPU binaries only; install its CUDA 12 build with ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node, and the CUDA 12 and cuDNN 9 libraries, or use --device cpu)',
  webgpu: ' (no WebGPU adapter: a GPU with Vulkan drivers is needed on Linux; or use --device cpu)',
};

/**
 * Checks `options` and turns them into onnxruntime's session options.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` naming the bad option
 * @example
 * ```ts
 * sessionOptions({ device: 'cuda', intraOpThreads: 4 }).executionProviders; // [{ name: 'cuda', deviceId: 0 }]
 * ```
 */
export function sessionOptions(options: SessionOptions = {}): Ort.InferenceSession.SessionOptions {
  const device = options.device ?? 'cpu';
  if (!EXECUTION_DEVICES.includes(device)) invalidOption('device', `must be one of ${EXECUTION_DEVICES.join(', ')}, got ${String(device)}`);
  const intra = options.intraOpThreads ?? 0;
  const inter = options.interOpThreads ?? 1;
  const deviceId = options.deviceId ?? 0;
  if (!Number.isSafeInteger(intra) || intra < 0) invalidOption('intraOpThreads', `must be a whole number ≥ 0, got ${String(options.intraOpThreads)}`);
  if (!Number.isSafeInteger(inter) || inter < 1) invalidOption('interOpThreads', `must be a whole number ≥ 1, got ${String(options.interOpThreads)}`);
  if (!Number.isSafeInteger(deviceId) || deviceId < 0) invalidOption('deviceId', `must be a whole number ≥ 0, got ${String(options.deviceId)}`);
  const provider: Ort.InferenceSession.ExecutionProviderConfig = device === 'cuda' ? { name: 'cuda', deviceId } : device;
  return {
    executionProviders: [provider],
    intraOpNumThreads: intra,
    interOpNumThreads: inter,
    executionMode: inter > 1 ? 'parallel' : 'sequential',
    graphOptimizationLevel: options.optimization ?? 'all',
    logSeverityLevel: options.logLevel ?? 3,
    ...(options.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  };
}

/**
 * Opens an onnxruntime session on `model` (ONNX bytes or a file path).
 *
 * @throws {MedsynError} `MEDSYN_ERR_PROVIDER_UNAVAILABLE` when the device's provider cannot load,
 *   `MEDSYN_ERR_SESSION_FAILED` when onnxruntime refuses the model, `MEDSYN_ERR_INVALID_OPTION` for bad options
 * @example
 * ```ts
 * const session = await openSession(exportInference(g, { z }), { device: 'cuda' });
 * ```
 */
export async function openSession(model: Uint8Array | string, options: SessionOptions = {}): Promise<Ort.InferenceSession> {
  const settings = sessionOptions(options);
  const device = options.device ?? 'cpu';
  if (device !== 'cpu') await checkProvider(device, settings);
  try {
    return typeof model === 'string' ? await ort.InferenceSession.create(model, settings) : await ort.InferenceSession.create(model, settings);
  } catch (cause) {
    const file = typeof model === 'string' ? model : undefined;
    throw new MedsynError(ErrorCodes.SESSION_FAILED, `onnxruntime cannot load the model: ${firstLine(cause)}`, { cause, ...(file ? { file } : {}) });
  }
}

function firstLine(cause: unknown): string {
  return (cause instanceof Error ? cause.message : String(cause)).split('\n')[0];
}

const providerChecks = new Map<string, Promise<void>>();

/** Opens a one-node model on the provider once per device, so that a provider failure is told apart from a model failure. */
function checkProvider(device: ExecutionDevice, settings: Ort.InferenceSession.SessionOptions): Promise<void> {
  const key = JSON.stringify(settings.executionProviders);
  let check = providerChecks.get(key);
  if (!check) {
    const probe = encodeOnnxModel({
      irVersion: IR_VERSION,
      opsetImports: [{ domain: '', version: OPSET }],
      producerName: 'medsyn',
      producerVersion: 'probe',
      graph: {
        name: 'probe',
        nodes: [{ opType: 'Identity', name: 'identity', inputs: ['x'], outputs: ['y'], attributes: [] }],
        initializers: [],
        inputs: [{ name: 'x', dataType: 1, dims: [1] }],
        outputs: [{ name: 'y', dataType: 1, dims: [1] }],
      },
    });
    check = ort.InferenceSession.create(probe, settings).then(
      (session) => session.release(),
      (cause: unknown) => {
        providerChecks.delete(key);
        throw new MedsynError(ErrorCodes.PROVIDER_UNAVAILABLE, `Cannot use device ${device}: ${firstLine(cause)}${HINTS[device]}`, { option: 'device', cause });
      },
    );
    providerChecks.set(key, check);
  }
  return check;
}
