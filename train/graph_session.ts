/**
 * Runs chosen outputs of a graph forward (no training): for evaluation, for
 * checking gradients, for using a trained model in-process.
 *
 * @module
 */
import type { InferenceSession } from 'onnxruntime-node';
import { ErrorCodes, MedsynError } from '../errors.js';
import { modelInputs } from './_emit_onnx.js';
import { hostArrayOf, tensorsFor, type Feed } from './_feeds.js';
import type { AnyHostArray, FloatArray } from './dtype.js';
import type { Graph, Value } from './graph.js';
import { openSession, type SessionOptions } from './session.js';

/** Options of {@link GraphSession.create}. */
export interface GraphSessionOptions extends SessionOptions {
  /** Parameter values by name, written into the model. @default the graph's initial values */
  parameters?: ReadonlyMap<string, FloatArray>;
}

/**
 * An onnxruntime session computing some outputs of a graph, with its
 * parameters fixed inside the model.
 *
 * @example
 * ```ts
 * const session = await GraphSession.create(g, { probability }, { parameters: step.parameters() });
 * const { probability: p } = await session.run({ x: features });
 * ```
 */
export class GraphSession {
  /** The inputs each run must feed, by name. */
  readonly inputs: readonly Value[];
  readonly #session: InferenceSession;
  readonly #outputs: Readonly<Record<string, Value>>;

  private constructor(session: InferenceSession, inputs: readonly Value[], outputs: Readonly<Record<string, Value>>) {
    this.#session = session;
    this.inputs = inputs;
    this.#outputs = outputs;
  }

  /**
   * Writes the model for `outputs` and opens it.
   *
   * @throws {MedsynError} `MEDSYN_ERR_BAD_GRAPH` for values of another graph, `MEDSYN_ERR_SESSION_FAILED` or
   *   `MEDSYN_ERR_PROVIDER_UNAVAILABLE` when onnxruntime cannot load it
   */
  static async create(graph: Graph, outputs: Readonly<Record<string, Value>>, options: GraphSessionOptions = {}): Promise<GraphSession> {
    const model = graph.toOnnx(outputs, { parameters: 'initializers', values: options.parameters });
    const session = await openSession(model, options);
    return new GraphSession(session, modelInputs(graph, Object.values(outputs), false), outputs);
  }

  /**
   * Runs once: `feeds` names every input; the result has every output, by name.
   *
   * @throws {MedsynError} `MEDSYN_ERR_BAD_FEED` for missing, unknown or mis-sized feeds, `MEDSYN_ERR_SESSION_FAILED` when the run fails
   */
  async run(feeds: Readonly<Record<string, Feed>>): Promise<Record<string, AnyHostArray>> {
    const tensors = tensorsFor(this.inputs, feeds, 'the graph');
    let results;
    try {
      results = await this.#session.run(tensors);
    } catch (cause) {
      throw new MedsynError(ErrorCodes.SESSION_FAILED, `onnxruntime failed running the graph: ${(cause as Error).message.split('\n')[0]}`, { cause });
    }
    const out: Record<string, AnyHostArray> = {};
    for (const key of Object.keys(this.#outputs)) out[key] = hostArrayOf(results[key]);
    return out;
  }

  /** Frees the session. */
  async release(): Promise<void> {
    await this.#session.release();
  }
}
