/**
 * Hand-written ONNX models for the alignment tests: what medsyn's engine cannot
 * write (a batch dimension left open, as optimum exports have) and models with
 * wrong input names. A minimal protobuf writer, enough for these graphs.
 */

type Dim = number | string;

/** One field of a protobuf message, already encoded. */
class Message {
  readonly #bytes: number[] = [];

  #varint(value: number): void {
    let v = value;
    while (v > 0x7f) {
      this.#bytes.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.#bytes.push(v);
  }

  int(field: number, value: number): this {
    this.#varint(field << 3);
    this.#varint(value);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.#varint((field << 3) | 2);
    this.#varint(value.length);
    this.#bytes.push(...value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, value: Message): this {
    return this.bytes(field, value.encode());
  }

  encode(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}

const FLOAT = 1;
const INT64 = 7;

export interface ToyNode {
  op: string;
  inputs: string[];
  outputs: string[];
  /** Integer attributes. */
  ints?: Record<string, number>;
}

export interface ToyTensor {
  name: string;
  type: 'float32' | 'int64';
  dims: number[];
  values: number[];
}

export interface ToyModel {
  inputs: { name: string; type: 'float32' | 'int64'; dims: Dim[] }[];
  outputs: { name: string; type: 'float32' | 'int64'; dims: Dim[] }[];
  nodes: ToyNode[];
  initializers?: ToyTensor[];
  /** The default-domain opset. @default 18 */
  opset?: number;
}

function valueInfo(name: string, type: 'float32' | 'int64', dims: Dim[]): Message {
  const shape = new Message();
  for (const dim of dims) shape.message(1, typeof dim === 'number' ? new Message().int(1, dim) : new Message().string(2, dim));
  const tensorType = new Message().int(1, type === 'float32' ? FLOAT : INT64).message(2, shape);
  return new Message().string(1, name).message(2, new Message().message(1, tensorType));
}

function tensor(t: ToyTensor): Message {
  const message = new Message();
  for (const dim of t.dims) message.int(1, dim);
  message.int(2, t.type === 'float32' ? FLOAT : INT64).string(8, t.name);
  const raw = t.type === 'float32' ? new Uint8Array(Float32Array.from(t.values).buffer) : new Uint8Array(BigInt64Array.from(t.values, (v) => BigInt(v)).buffer);
  return message.bytes(9, raw);
}

/** The bytes of an ONNX model (opset 18 unless `model.opset` says). */
export function toyOnnx(model: ToyModel): Uint8Array {
  const graph = new Message();
  model.nodes.forEach((node, index) => {
    const message = new Message();
    for (const input of node.inputs) message.string(1, input);
    for (const output of node.outputs) message.string(2, output);
    message.string(3, `${node.op}_${index}`).string(4, node.op);
    for (const [name, value] of Object.entries(node.ints ?? {})) message.message(5, new Message().string(1, name).int(3, value).int(20, 2));
    graph.message(1, message);
  });
  graph.string(2, 'toy');
  for (const initializer of model.initializers ?? []) graph.message(5, tensor(initializer));
  for (const input of model.inputs) graph.message(11, valueInfo(input.name, input.type, input.dims));
  for (const output of model.outputs) graph.message(12, valueInfo(output.name, output.type, output.dims));
  return new Message()
    .int(1, 8)
    .string(2, 'medsyn-test')
    .message(7, graph)
    .message(8, new Message().string(1, '').int(2, model.opset ?? 18))
    .encode();
}

/**
 * A toy vision model with an open batch: `image_embeds` [N, 64] = the column
 * means of `pixel_values` [N, 3, 64, 64] over channels and rows.
 */
export function toyVisionModel(inputName = 'pixel_values'): Uint8Array {
  return toyOnnx({
    inputs: [{ name: inputName, type: 'float32', dims: ['batch_size', 3, 64, 64] }],
    outputs: [{ name: 'image_embeds', type: 'float32', dims: ['batch_size', 64] }],
    initializers: [{ name: 'axes', type: 'int64', dims: [2], values: [1, 2] }],
    nodes: [{ op: 'ReduceMean', inputs: [inputName, 'axes'], outputs: ['image_embeds'], ints: { keepdims: 0 } }],
  });
}

/**
 * A toy text model with an open batch: `text_embeds` [N, 64] = the masked ids
 * (as floats) times a fixed [77, 64] matrix.
 */
export function toyTextModel(idsName = 'input_ids'): Uint8Array {
  const weights = Array.from({ length: 77 * 64 }, (_, i) => Math.sin(i * 12.9898) * 0.01);
  return toyOnnx({
    inputs: [
      { name: idsName, type: 'int64', dims: ['batch_size', 77] },
      { name: 'attention_mask', type: 'int64', dims: ['batch_size', 77] },
    ],
    outputs: [{ name: 'text_embeds', type: 'float32', dims: ['batch_size', 64] }],
    initializers: [{ name: 'weights', type: 'float32', dims: [77, 64], values: weights }],
    nodes: [
      { op: 'Mul', inputs: [idsName, 'attention_mask'], outputs: ['masked'] },
      { op: 'Cast', inputs: ['masked'], outputs: ['masked_float'], ints: { to: FLOAT } },
      { op: 'MatMul', inputs: ['masked_float', 'weights'], outputs: ['text_embeds'] },
    ],
  });
}
