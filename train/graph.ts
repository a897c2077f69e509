/**
 * The graph builder: inputs, parameters, constants and op nodes with static
 * element types and shapes. Ops (`ops`, `nn`) add nodes; `grad` appends the
 * backward graph; `toOnnx` writes the part of the graph needed for chosen
 * outputs as an ONNX model that onnxruntime loads.
 *
 * @module
 */
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';
import { emitOnnx, type EmitOnnxOptions } from './_emit_onnx.js';
import type { OnnxAttributeValue } from './_onnx_proto.js';
import { randomSource } from './_random.js';
import { DTYPES, isFloat, type AnyHostArray, type DType, type FloatArray, type FloatDType } from './dtype.js';
import { allocate, dtypeOfArray, fromNumbers } from './_host_arrays.js';
import type { Initializer } from './init.js';

/** A static tensor shape: one size per dimension, `[]` for a scalar. */
export type Shape = readonly number[];

/** How a value came into the graph. */
export type ValueKind = 'input' | 'parameter' | 'constant' | 'node';

/** An ONNX attribute of a node, typed. */
export type NodeAttribute = OnnxAttributeValue;

/** One op in the graph. */
export interface GraphNode {
  /** Creation order: nodes only use values made before them. */
  readonly id: number;
  /** The medsyn op name: the ONNX op type, or `StopGradient`, or a custom op. */
  readonly op: string;
  /** The ONNX op type written for it. */
  readonly onnxOp: string;
  /** The ONNX domain, `''` for the default one. */
  readonly domain: string;
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly attributes: Readonly<Record<string, NodeAttribute>>;
  /** Static facts the gradient rule reads (axes, permutation, slice bounds). */
  readonly params: Readonly<Record<string, unknown>>;
}

/**
 * A symbolic tensor of a {@link Graph}: an input, a parameter, a constant or the
 * output of a node. It has no data; its element type and shape are static.
 * Values come from the graph's methods and the ops, never from `new`.
 *
 * @example
 * ```ts
 * const x = g.input('x', 'float32', [256, 768]);
 * x.shape; // [256, 768]
 * String(ops.transpose(x)); // 'Transpose_3 float32[768, 256]'
 * ```
 */
export class Value {
  /**
   * @param graph the graph it belongs to
   * @param name its unique name in the ONNX model
   * @param dtype its element type
   * @param shape its static shape
   * @param kind how it came into the graph
   * @param node the node that computes it, for kind `node`
   */
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly kind: ValueKind,
    readonly node?: GraphNode,
  ) {}

  /** The number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** The number of elements. */
  get size(): number {
    return shapeSize(this.shape);
  }

  /** `name float32[2, 3]`, for messages. */
  toString(): string {
    return `${this.name} ${this.dtype}${formatShape(this.shape)}`;
  }
}

/** Options of {@link Graph}. */
export interface GraphOptions {
  /** The model's graph name in the ONNX file. @default 'medsyn' */
  name?: string;
  /** The seed parameter initialisers draw from, with each parameter's name. @default 0 */
  seed?: number;
}

/** Options of {@link Graph.parameter}. */
export interface ParameterOptions {
  /**
   * The initial values: an {@link Initializer}, the values themselves (row-major,
   * as many as the shape holds) or one number for every element.
   * @default zeros
   */
  init?: Initializer | ArrayLike<number> | number;
  /** The element type. @default 'float32' */
  dtype?: FloatDType;
}

/** Options of {@link Graph.constant}. */
export interface ConstantOptions {
  /** The shape. @default `[values.length]`, or `[]` for a number */
  shape?: Shape;
  /** The element type. @default the typed array's, else 'float32' */
  dtype?: DType;
}

/** Options of {@link Graph.toOnnx}. */
export type ToOnnxOptions = EmitOnnxOptions;

/**
 * The number of elements of a shape.
 *
 * @example
 * ```ts
 * shapeSize([256, 768]); // 196608
 * shapeSize([]);         // 1 (a scalar)
 * ```
 */
export function shapeSize(shape: Shape): number {
  let size = 1;
  for (const dim of shape) size *= dim;
  return size;
}

/**
 * A shape as messages show it.
 *
 * @example
 * ```ts
 * formatShape([2, 3]); // '[2, 3]'
 * ```
 */
export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

function checkShape(shape: Shape, option: string): void {
  if (!Array.isArray(shape) || !shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) {
    throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Invalid shape for ${option}: ${JSON.stringify(shape)} (each dimension must be a whole number ≥ 0)`, { option });
  }
}

/**
 * A training or inference graph under construction.
 *
 * @example
 * ```ts
 * const g = new Graph({ seed: 1 });
 * const x = g.input('x', 'float32', [256, 768]);
 * const w = g.parameter('w', [768, 512], { init: linearUniform() });
 * const y = ops.matmul(x, w);
 * ```
 */
export class Graph {
  /** The graph name written into ONNX files. */
  readonly name: string;
  /** The seed initialisers draw from. */
  readonly seed: number;
  readonly #values = new Map<string, Value>();
  readonly #inputs: Value[] = [];
  readonly #parameters: Value[] = [];
  readonly #nodes: GraphNode[] = [];
  readonly #initialValues = new Map<Value, FloatArray>();
  readonly #constants = new Map<Value, AnyHostArray>();
  readonly #constantCache = new Map<string, Value>();
  #counter = 0;

  constructor(options: GraphOptions = {}) {
    this.name = options.name ?? 'medsyn';
    this.seed = options.seed ?? 0;
    if (!Number.isFinite(this.seed)) invalidOption('seed', `must be a number, got ${String(options.seed)}`);
  }

  /** The inputs fed at every run, in creation order. */
  get inputs(): readonly Value[] {
    return this.#inputs;
  }

  /** The parameters, in creation order. */
  get parameters(): readonly Value[] {
    return this.#parameters;
  }

  /** The nodes, in creation (topological) order. */
  get nodes(): readonly GraphNode[] {
    return this.#nodes;
  }

  /** The value named `name`, if any. */
  value(name: string): Value | undefined {
    return this.#values.get(name);
  }

  /**
   * Declares an input fed at every run (a batch of features, labels).
   *
   * @throws {MedsynError} `MEDSYN_ERR_BAD_GRAPH` for a name already used, `MEDSYN_ERR_SHAPE_MISMATCH` for a bad shape
   * @example
   * ```ts
   * const labels = g.input('labels', 'int64', [256]);
   * ```
   */
  input(name: string, dtype: DType, shape: Shape): Value {
    if (!DTYPES.includes(dtype)) invalidOption('dtype', `must be one of ${DTYPES.join(', ')}, got ${String(dtype)}`);
    checkShape(shape, `input ${name}`);
    const value = this.#register(new Value(this, this.#claim(name), dtype, Object.freeze([...shape]), 'input'));
    this.#inputs.push(value);
    return value;
  }

  /**
   * Declares a trainable parameter with its initial values.
   *
   * @throws {MedsynError} `MEDSYN_ERR_BAD_GRAPH` for a name already used, `MEDSYN_ERR_SHAPE_MISMATCH` when
   *   the initial values do not fill the shape
   * @example
   * ```ts
   * const w = g.parameter('head.w', [768, 512], { init: linearUniform() });
   * const t = g.parameter('logit_scale', [], { init: Math.log(1 / 0.07) });
   * ```
   */
  parameter(name: string, shape: Shape, options: ParameterOptions = {}): Value {
    const dtype = options.dtype ?? 'float32';
    if (!isFloat(dtype)) invalidOption('dtype', `a parameter must be float32 or float64, got ${String(dtype)}`);
    checkShape(shape, `parameter ${name}`);
    const size = shapeSize(shape);
    const init = options.init ?? 0;
    let values: ArrayLike<number>;
    if (typeof init === 'number') values = new Float64Array(size).fill(init);
    else if (typeof init === 'function') values = init(shape, randomSource(this.seed, name));
    else values = init;
    if (values.length !== size) {
      throw new MedsynError(
        ErrorCodes.SHAPE_MISMATCH,
        `Cannot initialise parameter ${name}${formatShape(shape)}: got ${values.length} values for ${size} elements`,
        { option: 'init' },
      );
    }
    const value = this.#register(new Value(this, this.#claim(name), dtype, Object.freeze([...shape]), 'parameter'));
    this.#parameters.push(value);
    const array = allocate(dtype, size);
    array.set(values);
    this.#initialValues.set(value, array);
    return value;
  }

  /**
   * Adds a constant tensor (written into the model as an initializer).
   *
   * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when the values do not fill the shape
   * @example
   * ```ts
   * const eye = g.constant(identity, { shape: [256, 256] });
   * ```
   */
  constant(values: AnyHostArray | ArrayLike<number> | number, options: ConstantOptions = {}): Value {
    const isHost = ArrayBuffer.isView(values);
    const dtype = options.dtype ?? (isHost ? dtypeOfArray(values as AnyHostArray) : 'float32');
    const list = typeof values === 'number' ? [values] : values;
    const shape = options.shape ?? (typeof values === 'number' ? [] : [list.length]);
    checkShape(shape, 'constant');
    if (shapeSize(shape) !== list.length) {
      throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Cannot make a constant of shape ${formatShape(shape)}: got ${list.length} values`, { option: 'shape' });
    }
    let data: AnyHostArray;
    if (isHost && dtypeOfArray(values as AnyHostArray) === dtype) data = (values as AnyHostArray).slice();
    else if (list instanceof BigInt64Array) data = fromNumbers(dtype, Array.from(list, Number));
    else data = fromNumbers(dtype, list as ArrayLike<number>);
    const value = this.#register(new Value(this, this.#claim(this.#unique(`const_${this.#counter++}`)), dtype, Object.freeze([...shape]), 'constant'));
    this.#constants.set(value, data);
    return value;
  }

  /**
   * A scalar constant of `dtype`, shared by every op that asks for the same one.
   *
   * @example
   * ```ts
   * const half = g.scalar(0.5, x.dtype);
   * ```
   */
  scalar(value: number, dtype: DType = 'float32'): Value {
    return this.#cached(`${dtype}:${value}`, () => this.constant([value], { shape: [], dtype }));
  }

  /**
   * A constant of `shape` with every element `value`, shared by equal ones.
   *
   * @example
   * ```ts
   * const ones = g.filled(1, [1, 256], 'float32');
   * ```
   */
  filled(value: number, shape: Shape, dtype: DType = 'float32'): Value {
    return this.#cached(`filled:${dtype}:${value}:${shape.join(',')}`, () => this.constant(new Float64Array(shapeSize(shape)).fill(value), { shape, dtype }));
  }

  /** A one-dimensional int64 constant (axes, shapes, slice bounds), shared by equal ones. */
  int64s(values: readonly number[]): Value {
    return this.#cached(`int64s:${values.join(',')}`, () => this.constant(values, { shape: [values.length], dtype: 'int64' }));
  }

  /** The initial values of a parameter, as given or drawn. */
  initialValue(parameter: Value | string): FloatArray {
    const value = typeof parameter === 'string' ? this.#values.get(parameter) : parameter;
    const array = value && this.#initialValues.get(value);
    if (!array) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Unknown parameter: ${String(typeof parameter === 'string' ? parameter : parameter.name)}`);
    return array;
  }

  /** The data of a constant, or undefined for any other value. */
  constantValue(value: Value): AnyHostArray | undefined {
    return this.#constants.get(value);
  }

  /**
   * Adds a node and returns its outputs. Ops call this after checking types and
   * shapes; use `ops.custom` for an op medsyn does not know.
   *
   * @internal
   */
  addNode(
    op: string,
    inputs: readonly Value[],
    outputs: readonly { dtype: DType; shape: Shape; name?: string }[],
    options: { attributes?: Record<string, NodeAttribute>; params?: Record<string, unknown>; onnxOp?: string; domain?: string } = {},
  ): Value[] {
    for (const input of inputs) this.owns(input, op);
    const id = this.#counter++;
    const values: Value[] = [];
    const node: GraphNode = {
      id,
      op,
      onnxOp: options.onnxOp ?? op,
      domain: options.domain ?? '',
      inputs: [...inputs],
      outputs: values,
      attributes: options.attributes ?? {},
      params: options.params ?? {},
    };
    outputs.forEach((output, index) => {
      const name = output.name ?? this.#unique(`${op}_${id}${outputs.length > 1 ? `_${index}` : ''}`);
      values.push(this.#register(new Value(this, this.#claim(name), output.dtype, Object.freeze([...output.shape]), 'node', node)));
    });
    this.#nodes.push(node);
    return values;
  }

  /**
   * Checks that `value` belongs to this graph.
   *
   * @throws {MedsynError} `MEDSYN_ERR_BAD_GRAPH` for a value of another graph or not a value at all
   */
  owns(value: Value, where: string): void {
    if (!(value instanceof Value)) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Invalid operand of ${where}: ${String(value)} is not a graph value`);
    if (value.graph !== this) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Invalid operand of ${where}: ${value.name} belongs to another graph`);
  }

  /** A name not used yet, from `base`, `base_1`, `base_2`, … */
  uniqueName(base: string): string {
    return this.#unique(base);
  }

  /**
   * The ONNX model that computes `outputs`: only the nodes they need, parameters
   * as inputs (training) or initializers (inference).
   *
   * @throws {MedsynError} `MEDSYN_ERR_BAD_GRAPH` for outputs of another graph or clashing output names
   * @example
   * ```ts
   * const bytes = g.toOnnx({ embedding: z }, { parameters: 'initializers' });
   * ```
   */
  toOnnx(outputs: Readonly<Record<string, Value>>, options: ToOnnxOptions = {}): Uint8Array {
    return emitOnnx(this, outputs, options);
  }

  #cached(key: string, make: () => Value): Value {
    let value = this.#constantCache.get(key);
    if (!value) {
      value = make();
      this.#constantCache.set(key, value);
    }
    return value;
  }

  #unique(base: string): string {
    if (!this.#values.has(base)) return base;
    for (let i = 1; ; i++) if (!this.#values.has(`${base}_${i}`)) return `${base}_${i}`;
  }

  #register(value: Value): Value {
    this.#values.set(value.name, value);
    return value;
  }

  #claim(name: string): string {
    if (typeof name !== 'string' || name.length === 0) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Invalid name: ${JSON.stringify(name)} (names are non-empty strings)`);
    if (this.#values.has(name)) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Cannot add ${name}: the graph already has a value of that name`);
    this.#values.set(name, undefined as unknown as Value);
    return name;
  }
}
