/**
 * Joins two ONNX models into one: a frozen tower (any exporter's model: optimum,
 * torch.onnx, medsyn's fixtures) and a tail medsyn wrote (pooling, the trained
 * head, normalisation), so that the run's embedder is one file that any ONNX
 * runtime runs. The tower is kept byte for byte where possible; the tail's names
 * get a prefix so they cannot clash with the tower's, and its inputs are wired
 * to tower values.
 *
 * The joined model keeps the tower's IR version and opset imports, so the tail
 * must only use ops whose signature is the same at the tower's opset (13 or
 * later); {@link fuseOnnx} checks that.
 *
 * @module
 */
import { writeSync } from 'node:fs';
import { ErrorCodes, MedsynError } from '../errors.js';
import { ProtoWriter } from './_protobuf.js';
import { fieldString, firstField, readFields, type ProtoField } from './_protobuf_reader.js';

// Field numbers of onnx.proto.
const MODEL = { irVersion: 1, graph: 7, opsetImport: 8, metadataProps: 14 } as const;
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, domain: 7 } as const;
const TENSOR = { name: 8, dataLocation: 14 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;

/** The lowest default-domain opset a tower may have: the tails use ReduceSum and Unsqueeze with axes as an input. */
export const MIN_FUSE_OPSET = 13;

/**
 * Ops whose inputs, outputs and attributes did not change from opset 13 to 18
 * in the ways medsyn's tails use them. A tail with another op cannot be put
 * after an older tower.
 */
const TAIL_OPS = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Sqrt', 'Erf', 'Relu', 'Tanh', 'Sigmoid', 'Exp', 'Log', 'Neg', 'Abs', 'Pow',
  'MatMul', 'Gemm', 'Clip', 'Max', 'Min', 'Identity', 'Cast', 'Gather', 'Unsqueeze', 'ReduceSum', 'Transpose',
]);

/** A parsed model: its top-level fields and its graph's. */
interface ParsedModel {
  fields: ProtoField[];
  graph: ProtoField[];
  /** The default-domain opset version. */
  opset: number;
}

function badModel(what: string, message: string): never {
  throw new MedsynError(ErrorCodes.BAD_MODEL, `Cannot join ${what}: ${message}`);
}

function parseModel(bytes: Uint8Array, what: string): ParsedModel {
  const fields = readFields(bytes);
  const graphField = firstField(fields, MODEL.graph);
  if (!graphField?.bytes) badModel(what, 'it has no graph');
  let opset: number | undefined;
  for (const f of fields) {
    if (f.field !== MODEL.opsetImport || !f.bytes) continue;
    const entry = readFields(f.bytes);
    const domainField = firstField(entry, 1);
    const domain = domainField ? fieldString(domainField) : '';
    if (domain === '' || domain === 'ai.onnx') opset = Number(firstField(entry, 2)?.int ?? 0n);
  }
  if (opset === undefined) badModel(what, 'it imports no default-domain opset');
  return { fields, graph: readFields(graphField.bytes), opset };
}

/** The name of a graph input, output or value_info entry. */
function valueInfoName(field: ProtoField): string {
  return fieldString(firstField(readFields(field.bytes!), VALUE_INFO.name)!);
}

function strings(fields: readonly ProtoField[], number: number): string[] {
  return fields.filter((f) => f.field === number).map(fieldString);
}

/** A graph input or output: its name and ONNX element type (1 float, 6 int32, 7 int64, 10 float16, …; 0 when not a tensor). */
export interface OnnxValueSignature {
  name: string;
  elemType: number;
}

/** What a model takes and gives, read from its bytes without a runtime. */
export interface OnnxSignature {
  /** The default-domain opset version. */
  opset: number;
  inputs: OnnxValueSignature[];
  outputs: OnnxValueSignature[];
}

function valueSignature(field: ProtoField): OnnxValueSignature {
  const type = firstField(readFields(field.bytes!), VALUE_INFO.type);
  const tensor = type?.bytes ? firstField(readFields(type.bytes), 1) : undefined;
  const elemType = tensor?.bytes ? Number(firstField(readFields(tensor.bytes), 1)?.int ?? 0n) : 0;
  return { name: valueInfoName(field), elemType };
}

/**
 * The opset, inputs and outputs of an ONNX model's bytes.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_MODEL` for bytes that are not an ONNX model
 * @example
 * ```ts
 * const { inputs } = onnxSignature(readFileSync('bert/onnx/model.onnx'));
 * ```
 */
export function onnxSignature(bytes: Uint8Array): OnnxSignature {
  const { graph, opset } = parseModel(bytes, 'the model');
  return {
    opset,
    inputs: graph.filter((f) => f.field === GRAPH.input).map(valueSignature),
    outputs: graph.filter((f) => f.field === GRAPH.output).map(valueSignature),
  };
}

/** A GraphProto.node field with the node's inputs, outputs and name passed through `rename`. */
function renamedNode(node: ProtoField, rename: (name: string) => string): Uint8Array {
  const fields = readFields(node.bytes!);
  let changed = false;
  const parts = fields.map((f) => {
    if (f.field !== NODE.input && f.field !== NODE.output && f.field !== NODE.name) return f.raw;
    const name = fieldString(f);
    // An omitted optional input is written as '' and stays ''.
    const next = name === '' ? name : rename(name);
    if (next === name) return f.raw;
    changed = true;
    return new ProtoWriter().string(f.field, next).finish().slice();
  });
  return changed ? withHeader(node.field, parts) : node.raw;
}

/** A message whose name field (`nameField`) is passed through `rename`, as field `field` of its parent. */
function renamedNamed(field: ProtoField, nameField: number, rename: (name: string) => string): Uint8Array {
  const fields = readFields(field.bytes!);
  const nameAt = fields.find((f) => f.field === nameField);
  if (!nameAt) return field.raw;
  const name = fieldString(nameAt);
  const next = rename(name);
  if (next === name) return field.raw;
  return withHeader(field.field, fields.map((f) => (f === nameAt ? new ProtoWriter().string(nameField, next).finish().slice() : f.raw)));
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** A length-delimited field `field` holding `parts`, one after the other. */
function withHeader(field: number, parts: readonly Uint8Array[]): Uint8Array {
  return concat([lengthHeader(field, parts.reduce((n, p) => n + p.byteLength, 0)), ...parts]);
}

/** The tag and length of a length-delimited field of `length` bytes. */
function lengthHeader(field: number, length: number): Uint8Array {
  const bytes: number[] = [];
  const varint = (value: number): void => {
    let v = value;
    while (v > 0x7f) {
      bytes.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    bytes.push(v);
  };
  varint(field * 8 + 2);
  varint(length);
  return Uint8Array.from(bytes);
}

/** The first dimension (a TensorShapeProto.Dimension's bytes) of a graph input, if it declares one. */
function firstDim(valueInfo: ProtoField): Uint8Array | undefined {
  const type = firstField(readFields(valueInfo.bytes!), VALUE_INFO.type);
  const tensor = type?.bytes ? firstField(readFields(type.bytes), 1) : undefined;
  const shape = tensor?.bytes ? firstField(readFields(tensor.bytes), 2) : undefined;
  const dim = shape?.bytes ? firstField(readFields(shape.bytes), 1) : undefined;
  return dim?.bytes;
}

/** A graph output's ValueInfoProto with its first dimension replaced by `dim` (type → tensor_type → shape → dim). */
function withFirstDim(valueInfo: ProtoField, dim: Uint8Array): Uint8Array {
  const replaceIn = (message: ProtoField, path: readonly number[]): Uint8Array => {
    const [next, ...rest] = path;
    const fields = readFields(message.bytes!);
    const first = fields.findIndex((f) => f.field === next && f.bytes);
    const parts = fields.map((f, i) => (i !== first ? f.raw : rest.length === 0 ? withHeader(next!, [dim]) : replaceIn(f, rest)));
    return withHeader(message.field, parts);
  };
  return replaceIn(valueInfo, [VALUE_INFO.type, 1, 2, 1]);
}

/** Options of {@link fuseOnnx}. */
export interface FuseOptions {
  /** For each tail input, the tower value it reads: a tower output or a tower input (e.g. `attention_mask`). */
  connect: Readonly<Record<string, string>>;
  /** Metadata entries added to the joined model. @default {} */
  metadata?: Readonly<Record<string, string>>;
  /** The prefix given to the tail's internal names. @default 'medsyn_head/' */
  prefix?: string;
}

/**
 * One ONNX model computing the tail's outputs from the tower's inputs: the
 * tower's nodes and initializers, then the tail's, its inputs wired as
 * `connect` says. The outputs are the tail's, their first (batch) dimension
 * taken from the tower's first input. Returned as a list of byte chunks to
 * write one after the other (a tower of hundreds of MB is never copied into
 * one buffer).
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_MODEL` for a tower with external data, without a value `connect`
 *   names, with an opset below {@link MIN_FUSE_OPSET}, or a tail with an op that changed since the tower's opset
 * @example
 * ```ts
 * const chunks = fuseOnnx(readFileSync('vit/onnx/model.onnx'), tailBytes, { connect: { features: 'pooler_output' } });
 * ```
 */
export function fuseOnnx(towerBytes: Uint8Array, tailBytes: Uint8Array, options: FuseOptions): Uint8Array[] {
  const tower = parseModel(towerBytes, 'the tower');
  const tail = parseModel(tailBytes, 'the head');
  if (tower.opset < MIN_FUSE_OPSET) badModel('the tower', `its opset ${tower.opset} is older than ${MIN_FUSE_OPSET}`);
  const prefix = options.prefix ?? 'medsyn_head/';

  const towerInputs = tower.graph.filter((f) => f.field === GRAPH.input);
  const towerInputNames = new Set(towerInputs.map(valueInfoName));
  const towerValues = new Set(towerInputNames);
  for (const f of tower.graph) {
    if (f.field === GRAPH.node) for (const name of strings(readFields(f.bytes!), NODE.output)) towerValues.add(name);
    if (f.field === GRAPH.initializer) {
      const tensor = readFields(f.bytes!);
      if (firstField(tensor, TENSOR.dataLocation)?.int === 1n) {
        badModel('the tower', 'it keeps its weights in external data files (models over 2 GB); join it with onnx.compose in Python instead');
      }
      towerValues.add(fieldString(firstField(tensor, TENSOR.name)!));
    }
  }

  const tailOutputs = tail.graph.filter((f) => f.field === GRAPH.output);
  const tailOutputNames = new Set(tailOutputs.map(valueInfoName));
  for (const name of tailOutputNames) if (towerInputNames.has(name)) badModel('the head', `its output ${name} is also an input of the tower`);
  // Tower values named like the joined model's outputs (a CLIP tower's image_embeds) move aside.
  const renameTower = (name: string): string => (tailOutputNames.has(name) ? `tower/${name}` : name);

  const tailInputNames = tail.graph.filter((f) => f.field === GRAPH.input).map(valueInfoName);
  const wired = new Map<string, string>();
  for (const input of tailInputNames) {
    const source = options.connect[input];
    if (source === undefined) badModel('the head', `its input ${input} is not connected to a tower value`);
    if (!towerValues.has(source)) badModel('the tower', `it has no value ${source} for the head's input ${input}`);
    wired.set(input, renameTower(source));
  }
  const renameTail = (name: string): string => wired.get(name) ?? (tailOutputNames.has(name) ? name : `${prefix}${name}`);

  const graph: Uint8Array[] = [];
  for (const f of tower.graph) {
    if (f.field === GRAPH.output) continue;
    if (f.field === GRAPH.node) graph.push(renamedNode(f, renameTower));
    else if (f.field === GRAPH.initializer) graph.push(renamedNamed(f, TENSOR.name, renameTower));
    else if (f.field === GRAPH.valueInfo) graph.push(renamedNamed(f, VALUE_INFO.name, renameTower));
    else graph.push(f.raw);
  }
  for (const f of tail.graph) {
    if (f.field === GRAPH.node) {
      const node = readFields(f.bytes!);
      const domain = firstField(node, NODE.domain);
      const op = fieldString(firstField(node, NODE.opType)!);
      if ((domain && fieldString(domain) !== '') || !TAIL_OPS.has(op)) badModel('the head', `its op ${op} may differ at the tower's opset ${tower.opset}`);
      graph.push(renamedNode(f, renameTail));
    } else if (f.field === GRAPH.initializer) graph.push(renamedNamed(f, TENSOR.name, renameTail));
    else if (f.field === GRAPH.valueInfo) graph.push(renamedNamed(f, VALUE_INFO.name, renameTail));
  }
  const batchDim = towerInputs[0] ? firstDim(towerInputs[0]) : undefined;
  for (const output of tailOutputs) graph.push(batchDim ? withFirstDim(output, batchDim) : output.raw);

  const model: Uint8Array[] = [];
  for (const f of tower.fields) {
    if (f.field === MODEL.graph) {
      model.push(lengthHeader(MODEL.graph, graph.reduce((n, part) => n + part.byteLength, 0)), ...graph);
    } else model.push(f.raw);
  }
  for (const [key, value] of Object.entries(options.metadata ?? {})) {
    model.push(new ProtoWriter().message(MODEL.metadataProps, new ProtoWriter().string(1, key).string(2, value)).finish().slice());
  }
  return model;
}

/** Writes chunks to an open file descriptor. */
export function writeChunks(fd: number, chunks: readonly Uint8Array[]): void {
  for (const chunk of chunks) {
    let at = 0;
    while (at < chunk.byteLength) at += writeSync(fd, chunk, at);
  }
}
