/**
 * Writes the part of a graph that chosen outputs need as an ONNX model.
 * Private to `train/`: `Graph.toOnnx` and `exportInference` call it.
 *
 * @module
 */
import { ErrorCodes, MedsynError } from '../errors.js';
import { VERSION } from '../version.js';
import { encodeOnnxModel, OnnxDataType, type OnnxAttribute, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './_onnx_proto.js';
import type { FloatArray } from './dtype.js';
import { hostBytes, onnxDataType } from './_host_arrays.js';
import type { Graph, GraphNode, Value } from './graph.js';

/** The ONNX opset medsyn writes (ReduceMean/ReduceMax take their axes as an input from 18 on). */
export const OPSET = 18;
/** The IR version that goes with opset 18. */
export const IR_VERSION = 8;

/** Options of `Graph.toOnnx`. */
export interface EmitOnnxOptions {
  /**
   * Where parameters go: `inputs` fed at every run (a training step) or
   * `initializers` that hold their values (an inference model).
   * @default 'inputs'
   */
  parameters?: 'inputs' | 'initializers';
  /** Parameter values for `initializers`, by name. @default the graph's initial values */
  values?: ReadonlyMap<string, FloatArray>;
  /** Key/value pairs written into the model's metadata. @default {} */
  metadata?: Readonly<Record<string, string>>;
  /** The model's doc string. @default none */
  docString?: string;
  /**
   * Inputs and outputs (by model name) declared otherwise than the graph values
   * are: symbolic dimensions, float16 at the boundary.
   * @default {} (as the graph has them)
   */
  boundary?: Readonly<Record<string, BoundaryDeclaration>>;
}

/**
 * How one model input or output is declared when it is not declared as its graph
 * value is (the graph has static shapes and no float16).
 */
export interface BoundaryDeclaration {
  /**
   * The declared dimensions: the graph's size, or a name for a symbolic (dynamic)
   * dimension such as `'batch_size'`. The graph was built at one size there, so
   * its ops must not bake that size in (reshape targets with 0 or −1, as ONNX
   * reads them; ops that broadcast).
   * @default the value's shape
   */
  dims?: readonly (number | string)[];
  /**
   * Declare a float32 value float16, as fp16 exports do: a Cast right after the
   * input, or right before the output.
   * @default false
   */
  float16?: boolean;
}

function tensorOf(name: string, value: Value, data: Uint8Array): OnnxTensor {
  return { name, dataType: onnxDataType(value.dtype), dims: value.shape, raw: data };
}

function infoOf(name: string, value: Value, declared?: BoundaryDeclaration): OnnxValueInfo {
  if (!declared) return { name, dataType: onnxDataType(value.dtype), dims: value.shape };
  const dims = declared.dims ?? value.shape;
  if (dims.length !== value.rank || dims.some((dim, i) => (typeof dim === 'number' ? dim !== value.shape[i] : dim.length === 0))) {
    throw new MedsynError(
      ErrorCodes.SHAPE_MISMATCH,
      `Cannot declare ${name} as ${JSON.stringify(dims)}: the graph has ${value.dtype}[${value.shape.join(', ')}] (one entry per dimension, the same size or a non-empty name)`,
    );
  }
  if (declared.float16 && value.dtype !== 'float32') {
    throw new MedsynError(ErrorCodes.DTYPE_MISMATCH, `Cannot declare ${name} float16: the graph value is ${value.dtype}, not float32`);
  }
  return { name, dataType: declared.float16 ? OnnxDataType.float16 : onnxDataType(value.dtype), dims };
}

function castNode(name: string, input: string, output: string, to: number): OnnxNode {
  return { opType: 'Cast', name, inputs: [input], outputs: [output], attributes: [{ name: 'to', value: { type: 'int', value: to } }] };
}

/** The values and nodes that `outputs` depend on (walking back through node inputs). */
export function reachable(outputs: readonly Value[]): { values: Set<Value>; nodes: Set<GraphNode> } {
  const nodes = new Set<GraphNode>();
  const values = new Set<Value>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const value = stack.pop()!;
    if (values.has(value)) continue;
    values.add(value);
    if (value.node && !nodes.has(value.node)) {
      nodes.add(value.node);
      for (const input of value.node.inputs) stack.push(input);
    }
  }
  return { values, nodes };
}

/** The inputs (and, when `parametersAsInputs`, the parameters) a model computing `outputs` must be fed, in graph order. */
export function modelInputs(graph: Graph, outputs: readonly Value[], parametersAsInputs: boolean): Value[] {
  const { values } = reachable(outputs);
  return [...graph.inputs, ...(parametersAsInputs ? graph.parameters : [])].filter((value) => values.has(value));
}

/** The ONNX bytes of `graph` computing `outputs` (by output name). */
export function emitOnnx(graph: Graph, outputs: Readonly<Record<string, Value>>, options: EmitOnnxOptions = {}): Uint8Array {
  const entries = Object.entries(outputs);
  if (entries.length === 0) throw new MedsynError(ErrorCodes.BAD_GRAPH, 'Cannot write an ONNX model: no outputs were asked for');
  for (const [key, value] of entries) graph.owns(value, `output ${key}`);

  const { values: reached, nodes: needed } = reachable(entries.map(([, value]) => value));

  const boundary = options.boundary ?? {};
  for (const name of Object.keys(boundary)) {
    if (!entries.some(([key]) => key === name) && !graph.inputs.some((input) => input.name === name && reached.has(input))) {
      throw new MedsynError(ErrorCodes.BAD_GRAPH, `Cannot declare ${name}: the model has no input or output of that name`);
    }
  }
  // Names of values that a float16 boundary puts a Cast next to, and the float32 names they get inside.
  const renamed = new Map<string, string>();
  const boundaryCasts: OnnxNode[] = [];

  const asInitializers = options.parameters === 'initializers';
  const inputs: OnnxValueInfo[] = [];
  const initializers: OnnxTensor[] = [];
  for (const input of graph.inputs) {
    if (!reached.has(input)) continue;
    inputs.push(infoOf(input.name, input, boundary[input.name]));
    if (boundary[input.name]?.float16) {
      const inner = graph.uniqueName(`${input.name}_float32`);
      renamed.set(input.name, inner);
      boundaryCasts.push(castNode(`cast_${input.name}`, input.name, inner, OnnxDataType.float32));
    }
  }
  for (const parameter of graph.parameters) {
    if (!reached.has(parameter)) continue;
    if (!asInitializers) {
      inputs.push(infoOf(parameter.name, parameter));
      continue;
    }
    const data = options.values?.get(parameter.name) ?? graph.initialValue(parameter);
    if (data.length !== parameter.size) {
      throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Cannot write parameter ${parameter.name}: got ${data.length} values for ${parameter.size} elements`);
    }
    initializers.push(tensorOf(parameter.name, parameter, hostBytes(data)));
  }
  for (const value of reached) {
    const data = graph.constantValue(value);
    if (data) initializers.push(tensorOf(value.name, value, hostBytes(data)));
  }

  const nodes: OnnxNode[] = [...needed]
    .sort((a, b) => a.id - b.id)
    .map((node) => ({
      opType: node.onnxOp,
      name: `${node.op}_${node.id}`,
      domain: node.domain,
      inputs: node.inputs.map((input) => input.name),
      outputs: node.outputs.map((output) => output.name),
      attributes: Object.entries(node.attributes).map(([name, value]): OnnxAttribute => ({ name, value })),
    }));

  // Outputs are renamed with Identity nodes where the wanted name is not the value's own.
  const outputInfos: OnnxValueInfo[] = [];
  const outputNames = new Set<string>();
  const outputNodes: OnnxNode[] = [];
  for (const [key, value] of entries) {
    if (outputNames.has(key)) throw new MedsynError(ErrorCodes.BAD_GRAPH, `Cannot write output ${key} twice`);
    outputNames.add(key);
    const declared = boundary[key];
    if (declared?.float16) {
      const existing = graph.value(key);
      if (existing && existing !== value) {
        throw new MedsynError(ErrorCodes.BAD_GRAPH, `Cannot name output ${key}: the graph has another value of that name (pick another output name)`);
      }
      if (value.name === key) renamed.set(key, graph.uniqueName(`${key}_float32`));
      outputNodes.push(castNode(`output_${key}`, value.name, key, OnnxDataType.float16));
      outputInfos.push(infoOf(key, value, declared));
      continue;
    }
    if (key === value.name) {
      outputInfos.push(infoOf(key, value, declared));
      continue;
    }
    const existing = graph.value(key);
    if (existing && existing !== value) {
      throw new MedsynError(ErrorCodes.BAD_GRAPH, `Cannot name output ${key}: the graph has another value of that name (pick another output name)`);
    }
    outputNodes.push({ opType: 'Identity', name: `output_${key}`, inputs: [value.name], outputs: [key], attributes: [] });
    outputInfos.push(infoOf(key, value, declared));
  }
  if (renamed.size > 0) {
    const rename = (name: string): string => renamed.get(name) ?? name;
    nodes.forEach((node, i) => (nodes[i] = { ...node, inputs: node.inputs.map(rename), outputs: node.outputs.map(rename) }));
    outputNodes.forEach((node, i) => (outputNodes[i] = { ...node, inputs: node.inputs.map(rename) }));
  }
  nodes.unshift(...boundaryCasts);
  nodes.push(...outputNodes);

  return encodeOnnxModel({
    irVersion: IR_VERSION,
    opsetImports: [{ domain: '', version: OPSET }],
    producerName: 'medsyn',
    producerVersion: VERSION,
    docString: options.docString,
    metadata: options.metadata,
    graph: { name: graph.name, nodes, initializers, inputs, outputs: outputInfos },
  });
}
