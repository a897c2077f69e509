/**
 * Encodes an ONNX model (onnx/onnx.proto: ModelProto, GraphProto, NodeProto,
 * TensorProto, ValueInfoProto, AttributeProto) from plain objects. Only the
 * fields medsyn writes are covered; the field numbers are those of onnx.proto.
 *
 * @module
 */
import { ProtoWriter } from './_protobuf.js';

/** TensorProto.DataType values. */
export const OnnxDataType = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
} as const;

/** A tensor with its bytes already laid out little-endian, as `raw_data` holds them. */
export interface OnnxTensor {
  name: string;
  dataType: number;
  dims: readonly number[];
  raw: Uint8Array;
}

/** An attribute value; the attribute type follows from the JavaScript type (see {@link OnnxAttribute}). */
export type OnnxAttributeValue =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: readonly number[] }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'tensor'; value: OnnxTensor };

/** One named attribute of a node. */
export interface OnnxAttribute {
  name: string;
  value: OnnxAttributeValue;
}

/** One node of the graph. */
export interface OnnxNode {
  opType: string;
  name: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes: readonly OnnxAttribute[];
  domain?: string;
}

/** A graph input or output: name, element type and shape (a string is a symbolic dimension, `dim_param`). */
export interface OnnxValueInfo {
  name: string;
  dataType: number;
  dims: readonly (number | string)[];
}

/** A whole model. */
export interface OnnxModel {
  irVersion: number;
  opsetImports: readonly { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  docString?: string;
  metadata?: Readonly<Record<string, string>>;
  graph: {
    name: string;
    nodes: readonly OnnxNode[];
    initializers: readonly OnnxTensor[];
    inputs: readonly OnnxValueInfo[];
    outputs: readonly OnnxValueInfo[];
  };
}

// AttributeProto.AttributeType
const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function tensorProto(tensor: OnnxTensor): ProtoWriter {
  const w = new ProtoWriter();
  for (const dim of tensor.dims) w.varint(1, dim); // dims (repeated int64)
  w.varint(2, tensor.dataType); // data_type
  w.string(8, tensor.name); // name
  w.bytes(9, tensor.raw); // raw_data
  return w;
}

function attributeProto(attribute: OnnxAttribute): ProtoWriter {
  const w = new ProtoWriter();
  w.string(1, attribute.name); // name
  const { value } = attribute;
  w.varint(20, ATTRIBUTE_TYPE[value.type]); // type
  switch (value.type) {
    case 'float':
      w.float(2, value.value); // f
      break;
    case 'int':
      w.varint(3, value.value); // i
      break;
    case 'string':
      w.string(4, value.value); // s
      break;
    case 'tensor':
      w.message(5, tensorProto(value.value)); // t
      break;
    case 'floats':
      for (const f of value.value) w.float(7, f); // floats
      break;
    case 'ints':
      for (const i of value.value) w.varint(8, i); // ints
      break;
  }
  return w;
}

function nodeProto(node: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const input of node.inputs) w.string(1, input); // input
  for (const output of node.outputs) w.string(2, output); // output
  w.string(3, node.name); // name
  w.string(4, node.opType); // op_type
  for (const attribute of node.attributes) w.message(5, attributeProto(attribute)); // attribute
  if (node.domain) w.string(7, node.domain); // domain
  return w;
}

function valueInfoProto(info: OnnxValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const dim of info.dims) {
    // TensorShapeProto.dim { dim_value } or { dim_param }
    shape.message(1, typeof dim === 'string' ? new ProtoWriter().string(2, dim) : new ProtoWriter().varint(1, dim));
  }
  const tensorType = new ProtoWriter().varint(1, info.dataType).message(2, shape); // TypeProto.Tensor { elem_type, shape }
  const type = new ProtoWriter().message(1, tensorType); // TypeProto { tensor_type }
  return new ProtoWriter().string(1, info.name).message(2, type); // ValueInfoProto { name, type }
}

/** The bytes of `model` as an ONNX ModelProto. */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const graph = new ProtoWriter();
  for (const node of model.graph.nodes) graph.message(1, nodeProto(node)); // node
  graph.string(2, model.graph.name); // name
  for (const tensor of model.graph.initializers) graph.message(5, tensorProto(tensor)); // initializer
  for (const input of model.graph.inputs) graph.message(11, valueInfoProto(input)); // input
  for (const output of model.graph.outputs) graph.message(12, valueInfoProto(output)); // output

  const w = new ProtoWriter();
  w.varint(1, model.irVersion); // ir_version
  w.string(2, model.producerName); // producer_name
  w.string(3, model.producerVersion); // producer_version
  if (model.docString) w.string(6, model.docString); // doc_string
  w.message(7, graph); // graph
  for (const opset of model.opsetImports) {
    w.message(8, new ProtoWriter().string(1, opset.domain).varint(2, opset.version)); // opset_import
  }
  for (const [key, value] of Object.entries(model.metadata ?? {})) {
    w.message(14, new ProtoWriter().string(1, key).string(2, value)); // metadata_props
  }
  return w.finish().slice();
}
