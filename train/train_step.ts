/**
 * The training step: forward, backward, gradient clipping and the optimizer
 * update in one ONNX graph, so that one onnxruntime run is one step. The
 * parameters and optimizer state live on the host as typed arrays; each run
 * feeds them with the batch and swaps in the updated arrays it gets back.
 *
 * @module
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';
import { modelInputs } from './_emit_onnx.js';
import { hostArrayOf, tensorsFor, type Feed } from './_feeds.js';
import { loadCheckpoint, saveCheckpoint, type Checkpoint, type CheckpointTensor } from './checkpoint.js';
import type { AnyHostArray, FloatArray, FloatDType } from './dtype.js';
import { allocate } from './_host_arrays.js';
import { exportInference, type ExportInferenceOptions } from './export_inference.js';
import { grad } from './grad.js';
import { formatShape, type Graph, type Value } from './graph.js';
import * as ops from './ops.js';
import type { Optimizer } from './optimizer.js';
import { openSession, ort, type SessionOptions } from './session.js';

/** Options of {@link trainStep}. */
export interface TrainStepOptions extends SessionOptions {
  /** The optimizer (`adamw`, `sgd`), with its learning-rate schedule. */
  optimizer: Optimizer;
  /** Scale gradients down so that their global L2 norm is at most this (PyTorch's `clip_grad_norm_`). @default none */
  clipGradNorm?: number;
  /** Further values to return from every step, by name (logits, embeddings). @default {} */
  outputs?: Readonly<Record<string, Value>>;
  /** The parameters to train; the others are fed unchanged (frozen). @default every parameter of the graph */
  parameters?: readonly Value[];
}

/** What one step returns. */
export interface StepResult {
  /** Optimizer updates done, this one included. */
  step: number;
  /** The loss before this update. */
  loss: number;
  /** The learning rate this update used. */
  learningRate: number;
  /** The global gradient norm before clipping (only with `clipGradNorm`). */
  gradNorm?: number;
  /** The values asked for in `outputs`, computed before this update. */
  outputs: Record<string, AnyHostArray>;
}

/** Options of {@link TrainStep.load}. */
export interface LoadOptions {
  /** Load only the parameters (a warm start): the step count and optimizer state start afresh. @default false */
  parametersOnly?: boolean;
  /** Accept a checkpoint made with other optimizer settings, schedule or clipping (fine-tuning on). @default false */
  allowConfigChange?: boolean;
}

/** Options of {@link TrainStep.save}. */
export interface SaveOptions {
  /** The caller's settings to keep with the checkpoint (JSON). @default {} */
  config?: Record<string, unknown>;
}

interface ParameterSlot {
  value: Value;
  trained: boolean;
  host: FloatArray;
  next?: Value;
  state: { slot: string; input: Value; next: Value; host: FloatArray }[];
}

function jsonEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * A compiled training step that owns an onnxruntime session and the training
 * state. Build it with {@link trainStep}.
 *
 * @example
 * ```ts
 * const step = await trainStep(g, loss, { optimizer: adamw({ lr: 1e-3 }), outputs: { logits } });
 * for (const batch of batches) {
 *   const { loss, step: n } = await step.run({ x: batch.features, labels: batch.labels });
 *   if (n % 1000 === 0) await step.save(`run1/step-${n}.safetensors`);
 * }
 * ```
 */
export class TrainStep {
  /** The graph inputs each run must feed (the batch), by name. */
  readonly inputs: readonly Value[];
  /** The optimizer. */
  readonly optimizer: Optimizer;
  /** The global-norm clip, or undefined. */
  readonly clipGradNorm: number | undefined;
  readonly #graph: Graph;
  readonly #session: InferenceSession;
  readonly #slots: ParameterSlot[];
  readonly #scalars: { name: string; dtype: FloatDType; input: Value }[];
  readonly #loss: Value;
  readonly #gradNorm: Value | undefined;
  readonly #outputs: Readonly<Record<string, Value>>;
  #step = 0;
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(parts: {
    graph: Graph;
    session: InferenceSession;
    inputs: readonly Value[];
    slots: ParameterSlot[];
    scalars: { name: string; dtype: FloatDType; input: Value }[];
    loss: Value;
    gradNorm: Value | undefined;
    outputs: Readonly<Record<string, Value>>;
    optimizer: Optimizer;
    clipGradNorm: number | undefined;
  }) {
    this.#graph = parts.graph;
    this.#session = parts.session;
    this.inputs = parts.inputs;
    this.#slots = parts.slots;
    this.#scalars = parts.scalars;
    this.#loss = parts.loss;
    this.#gradNorm = parts.gradNorm;
    this.#outputs = parts.outputs;
    this.optimizer = parts.optimizer;
    this.clipGradNorm = parts.clipGradNorm;
  }

  /**
   * Appends the backward pass, clipping and optimizer update for `loss` to
   * `graph`, writes the model and opens it.
   *
   * @throws {MedsynError} `MEDSYN_ERR_BAD_GRAPH` for a loss that is not a float scalar or a parameter it does not
   *   depend on, `MEDSYN_ERR_UNSUPPORTED_OP` for an op without gradient on the way, `MEDSYN_ERR_PROVIDER_UNAVAILABLE`
   *   when the device cannot be used, `MEDSYN_ERR_INVALID_OPTION` for bad options
   */
  static async create(graph: Graph, loss: Value, options: TrainStepOptions): Promise<TrainStep> {
    const optimizer = options.optimizer;
    if (!optimizer || typeof optimizer.update !== 'function') invalidOption('optimizer', 'must be an optimizer such as adamw() or sgd()');
    const clip = options.clipGradNorm;
    if (clip !== undefined && !(clip > 0 && Number.isFinite(clip))) invalidOption('clipGradNorm', `must be a number > 0, got ${String(clip)}`);
    graph.owns(loss, 'trainStep');
    if (loss.rank !== 0) {
      throw new MedsynError(ErrorCodes.BAD_GRAPH, `Cannot train on ${loss}: the loss must be a scalar, got shape ${formatShape(loss.shape)} (reduce it with ops.reduceMean)`);
    }
    const trained = options.parameters ?? graph.parameters;
    for (const parameter of trained) {
      graph.owns(parameter, 'trainStep parameters');
      if (parameter.kind !== 'parameter') invalidOption('parameters', `${parameter.name} is not a parameter of the graph`);
    }
    if (trained.length === 0) invalidOption('parameters', 'there is nothing to train');
    const userOutputs = options.outputs ?? {};
    for (const [key, value] of Object.entries(userOutputs)) graph.owns(value, `output ${key}`);

    let gradients = grad(loss, trained);
    let gradNorm: Value | undefined;
    if (clip !== undefined) {
      const dtype = trained[0].dtype;
      const squares = gradients.map((gradient) => ops.cast(ops.reduceSumSquare(gradient), dtype));
      gradNorm = ops.sqrt(squares.reduce((sum, square) => ops.add(sum, square)));
      // PyTorch: coefficient = max_norm / (norm + 1e-6), clamped to 1.
      const coefficient = ops.clip(ops.div(clip, ops.add(gradNorm, 1e-6)), { max: 1 });
      gradients = gradients.map((gradient) => ops.mul(gradient, ops.cast(coefficient, gradient.dtype)));
    }

    const scalars: { name: string; dtype: FloatDType; input: Value }[] = [];
    const scalarInput = (name: string, dtype: FloatDType): Value => {
      if (!optimizer.scalars.includes(name)) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Optimizer ${optimizer.name} asked for scalar ${name} it does not declare`);
      let entry = scalars.find((s) => s.name === name && s.dtype === dtype);
      if (!entry) {
        entry = { name, dtype, input: graph.input(graph.uniqueName(`medsyn:${optimizer.name}:${name}:${dtype}`), dtype, []) };
        scalars.push(entry);
      }
      return entry.input;
    };

    const slots: ParameterSlot[] = [];
    trained.forEach((parameter, index) => {
      const dtype = parameter.dtype as FloatDType;
      const state = optimizer.slots.map((slot) => graph.input(graph.uniqueName(`medsyn:${slot}:${parameter.name}`), dtype, parameter.shape));
      const update = optimizer.update({
        parameter,
        gradient: gradients[index],
        state,
        decay: optimizer.decays(parameter),
        scalar: (name) => scalarInput(name, dtype),
      });
      slots.push({
        value: parameter,
        trained: true,
        host: graph.initialValue(parameter).slice(),
        next: update.parameter,
        state: optimizer.slots.map((slot, i) => ({ slot, input: state[i], next: update.state[i], host: allocate(dtype, parameter.size) })),
      });
    });

    // Outputs go by their value names: no renaming nodes in the step's model.
    const wanted = new Set<Value>([loss, ...Object.values(userOutputs)]);
    if (gradNorm) wanted.add(gradNorm);
    for (const slot of slots) {
      wanted.add(slot.next!);
      for (const s of slot.state) wanted.add(s.next);
    }
    const outputs = Object.fromEntries([...wanted].map((value) => [value.name, value]));
    // Parameters the model reads but does not train are fed as they are (frozen).
    const reached = modelInputs(graph, [...wanted], true);
    for (const value of reached) {
      if (value.kind === 'parameter' && !slots.some((slot) => slot.value === value)) {
        slots.push({ value, trained: false, host: graph.initialValue(value).slice(), state: [] });
      }
    }
    const internal = new Set<Value>([...scalars.map((s) => s.input), ...slots.flatMap((slot) => slot.state.map((s) => s.input))]);
    const inputs = reached.filter((value) => value.kind === 'input' && !internal.has(value));

    const model = graph.toOnnx(outputs, { parameters: 'inputs' });
    const session = await openSession(model, options);
    return new TrainStep({ graph, session, inputs, slots, scalars, loss, gradNorm, outputs: userOutputs, optimizer, clipGradNorm: clip });
  }

  /** Optimizer updates done so far. */
  get step(): number {
    return this.#step;
  }

  /** The learning rate the next update will use. */
  get learningRate(): number {
    return this.optimizer.schedule.at(this.#step);
  }

  /**
   * Runs one training step on `batch` (every input of {@link inputs}, by name)
   * and swaps in the updated parameters and optimizer state. Runs queue up: a
   * second call waits for the first.
   *
   * @throws {MedsynError} `MEDSYN_ERR_BAD_FEED` for a missing, unknown or mis-sized input,
   *   `MEDSYN_ERR_SESSION_FAILED` when onnxruntime fails
   */
  run(batch: Readonly<Record<string, Feed>>): Promise<StepResult> {
    const result = this.#tail.then(() => this.#run(batch));
    this.#tail = result.catch(() => undefined);
    return result;
  }

  async #run(batch: Readonly<Record<string, Feed>>): Promise<StepResult> {
    const feeds: Record<string, Tensor> = tensorsFor(this.inputs, batch, 'the training step');
    for (const slot of this.#slots) {
      feeds[slot.value.name] = new ort.Tensor(slot.value.dtype, slot.host, slot.value.shape);
      for (const s of slot.state) feeds[s.input.name] = new ort.Tensor(s.input.dtype, s.host, s.input.shape);
    }
    const values = this.optimizer.scalarValues(this.#step);
    for (const scalar of this.#scalars) {
      const array = scalar.dtype === 'float64' ? Float64Array.of(values[scalar.name]) : Float32Array.of(values[scalar.name]);
      feeds[scalar.input.name] = new ort.Tensor(scalar.dtype, array, []);
    }
    let results: InferenceSession.OnnxValueMapType;
    try {
      results = await this.#session.run(feeds);
    } catch (cause) {
      throw new MedsynError(ErrorCodes.SESSION_FAILED, `onnxruntime failed running training step ${this.#step + 1}: ${(cause as Error).message.split('\n')[0]}`, { cause });
    }
    const learningRate = this.optimizer.schedule.at(this.#step);
    for (const slot of this.#slots) {
      if (!slot.next) continue;
      slot.host = hostArrayOf(results[slot.next.name] as Tensor) as FloatArray;
      for (const s of slot.state) s.host = hostArrayOf(results[s.next.name] as Tensor) as FloatArray;
    }
    this.#step += 1;
    const outputs: Record<string, AnyHostArray> = {};
    for (const [key, value] of Object.entries(this.#outputs)) outputs[key] = hostArrayOf(results[value.name] as Tensor);
    const result: StepResult = { step: this.#step, loss: Number(hostArrayOf(results[this.#loss.name] as Tensor)[0]), learningRate, outputs };
    if (this.#gradNorm) result.gradNorm = Number(hostArrayOf(results[this.#gradNorm.name] as Tensor)[0]);
    return result;
  }

  /** The current parameter values by name (the arrays themselves: a run replaces them, it does not write into them). */
  parameters(): Map<string, FloatArray> {
    return new Map(this.#slots.map((slot) => [slot.value.name, slot.host]));
  }

  /** The current optimizer state by slot (`exp_avg`, …), then parameter name. */
  optimizerState(): Map<string, Map<string, FloatArray>> {
    const state = new Map<string, Map<string, FloatArray>>(this.optimizer.slots.map((slot) => [slot, new Map()]));
    for (const slot of this.#slots) for (const s of slot.state) state.get(s.slot)!.set(slot.value.name, s.host);
    return state;
  }

  /**
   * Replaces a parameter's values (a pretrained initialisation); the optimizer state is left as it is.
   *
   * @throws {MedsynError} `MEDSYN_ERR_BAD_GRAPH` for an unknown name, `MEDSYN_ERR_SHAPE_MISMATCH` for the wrong size
   */
  setParameter(name: string, values: ArrayLike<number>): void {
    const slot = this.#slots.find((s) => s.value.name === name);
    if (!slot) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Cannot set parameter ${name}: the step has no parameter of that name`);
    if (values.length !== slot.value.size) {
      throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Cannot set parameter ${slot.value}: got ${values.length} values for ${slot.value.size} elements`);
    }
    const host = allocate(slot.value.dtype as FloatDType, slot.value.size);
    host.set(values);
    slot.host = host;
  }

  /** The training state as a {@link Checkpoint} (copies of the arrays). */
  checkpoint(options: SaveOptions = {}): Checkpoint {
    const tensor = (value: Value, data: FloatArray): CheckpointTensor => ({ dtype: value.dtype as FloatDType, shape: value.shape, data: data.slice() });
    const state = new Map<string, Map<string, CheckpointTensor>>(this.optimizer.slots.map((slot) => [slot, new Map()]));
    for (const slot of this.#slots) for (const s of slot.state) state.get(s.slot)!.set(slot.value.name, tensor(slot.value, s.host));
    return {
      step: this.#step,
      parameters: new Map(this.#slots.map((slot) => [slot.value.name, tensor(slot.value, slot.host)])),
      state,
      optimizer: { name: this.optimizer.name, config: { ...this.optimizer.config } },
      schedule: { name: this.optimizer.schedule.name, config: { ...this.optimizer.schedule.config } },
      clipGradNorm: this.clipGradNorm ?? null,
      config: options.config ?? {},
    };
  }

  /**
   * Writes a safetensors checkpoint (atomically) that {@link load} continues from exactly.
   *
   * @throws {MedsynError} `MEDSYN_ERR_WRITE_FAILED` when the file cannot be written
   */
  async save(path: string, options: SaveOptions = {}): Promise<void> {
    await this.#tail;
    await saveCheckpoint(path, this.checkpoint(options));
  }

  /**
   * Restores a checkpoint: parameters, optimizer state and step (or only the
   * parameters). Returns the checkpoint, with the config it was saved with.
   *
   * @throws {MedsynError} `MEDSYN_ERR_CHECKPOINT_MISMATCH` when its parameters, optimizer or settings differ from
   *   this step's, `MEDSYN_ERR_BAD_CHECKPOINT` or `MEDSYN_ERR_NOT_FOUND` when it cannot be read
   */
  async load(source: string | Checkpoint, options: LoadOptions = {}): Promise<Checkpoint> {
    await this.#tail;
    const checkpoint = typeof source === 'string' ? await loadCheckpoint(source) : source;
    const where = typeof source === 'string' ? source : 'the checkpoint';
    const mismatch = (detail: string, hint = ''): never => {
      throw new MedsynError(ErrorCodes.CHECKPOINT_MISMATCH, `Cannot resume from ${where}: ${detail}${hint}`, typeof source === 'string' ? { file: source } : {});
    };
    const names = new Set(this.#slots.map((slot) => slot.value.name));
    const missing = [...names].filter((name) => !checkpoint.parameters.has(name));
    if (missing.length > 0) mismatch(`it has no parameter ${missing.join(', ')}`);
    const extra = [...checkpoint.parameters.keys()].filter((name) => !names.has(name));
    if (extra.length > 0) mismatch(`it has parameter ${extra.join(', ')} the model does not`);
    for (const slot of this.#slots) {
      const tensor = checkpoint.parameters.get(slot.value.name)!;
      if (tensor.dtype !== slot.value.dtype || tensor.shape.join() !== slot.value.shape.join()) {
        mismatch(`parameter ${slot.value.name} is ${tensor.dtype}${formatShape(tensor.shape)} there and ${slot.value.dtype}${formatShape(slot.value.shape)} here`);
      }
    }
    if (!options.parametersOnly) {
      if (checkpoint.optimizer.name !== this.optimizer.name) {
        mismatch(`it was trained with ${checkpoint.optimizer.name}, this step uses ${this.optimizer.name}`, ' (load with parametersOnly to start the optimizer afresh)');
      }
      if (!options.allowConfigChange) {
        const here = this.checkpoint();
        for (const key of ['optimizer', 'schedule', 'clipGradNorm'] as const) {
          if (!jsonEqual(checkpoint[key], here[key])) {
            mismatch(`its ${key} ${JSON.stringify(checkpoint[key])} differs from this step's ${JSON.stringify(here[key])}`, ' (pass allowConfigChange to continue with the new settings)');
          }
        }
      }
      for (const slot of this.#slots) {
        for (const s of slot.state) {
          const tensor = checkpoint.state.get(s.slot)?.get(slot.value.name);
          if (!tensor || tensor.data.length !== slot.value.size || tensor.dtype !== slot.value.dtype) mismatch(`optimizer state ${s.slot} of ${slot.value.name} is missing or mis-sized`);
        }
      }
    }
    for (const slot of this.#slots) {
      slot.host = checkpoint.parameters.get(slot.value.name)!.data.slice();
      for (const s of slot.state) {
        s.host = options.parametersOnly ? allocate(slot.value.dtype as FloatDType, slot.value.size) : checkpoint.state.get(s.slot)!.get(slot.value.name)!.data.slice();
      }
    }
    this.#step = options.parametersOnly ? 0 : checkpoint.step;
    return checkpoint;
  }

  /**
   * An ONNX model computing `outputs` forward only, with the current parameters
   * as initializers: for use outside medsyn (onnxruntime, Python).
   *
   * @throws {MedsynError} `MEDSYN_ERR_BAD_GRAPH` for outputs of another graph
   */
  exportInference(outputs: Readonly<Record<string, Value>>, options: Omit<ExportInferenceOptions, 'parameters'> = {}): Uint8Array {
    return exportInference(this.#graph, outputs, {
      ...options,
      parameters: this.parameters(),
      metadata: { medsyn_step: String(this.#step), ...(options.metadata ?? {}) },
    });
  }

  /** Frees the onnxruntime session. */
  async release(): Promise<void> {
    await this.#tail;
    await this.#session.release();
  }
}

/**
 * Builds the training step of `loss`: its gradient with respect to the
 * parameters, optional clipping and the optimizer update, in one onnxruntime
 * session.
 *
 * @throws {MedsynError} as {@link TrainStep.create}
 * @example
 * ```ts
 * const g = new Graph({ seed: 0 });
 * const x = g.input('x', 'float32', [64, 768]);
 * const y = g.input('y', 'float32', [64, 14]);
 * const w = g.parameter('w', [768, 14], { init: zeros() });
 * const b = g.parameter('b', [14]);
 * const loss = nn.sigmoidCrossEntropy(nn.linear(x, w, b), y);
 * const step = await trainStep(g, loss, { optimizer: adamw({ lr: 1e-3, weightDecay: 0 }) });
 * const { loss: value } = await step.run({ x: features, y: labels });
 * ```
 */
export function trainStep(graph: Graph, loss: Value, options: TrainStepOptions): Promise<TrainStep> {
  return TrainStep.create(graph, loss, options);
}
