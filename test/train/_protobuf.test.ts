import t from 'tap';
import { ProtoWriter } from '../../train/_protobuf.js';
import { encodeOnnxModel, OnnxDataType } from '../../train/_onnx_proto.js';
import { ort } from '../../train/session.js';

/** A protobuf wire-format reader for the tests: field number → list of raw values. */
function decodeFields(bytes: Uint8Array): Map<number, (bigint | Uint8Array | number)[]> {
  const fields = new Map<number, (bigint | Uint8Array | number)[]>();
  let position = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = bytes[position++];
      if (byte === undefined) throw new Error('truncated varint');
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (position < bytes.length) {
    const tag = Number(varint());
    const field = tag >> 3;
    const wire = tag & 7;
    let value: bigint | Uint8Array | number;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const length = Number(varint());
      value = bytes.subarray(position, position + length);
      position += length;
    } else if (wire === 5) {
      value = new DataView(bytes.buffer, bytes.byteOffset + position, 4).getFloat32(0, true);
      position += 4;
    } else throw new Error(`unexpected wire type ${wire}`);
    const list = fields.get(field) ?? [];
    list.push(value);
    fields.set(field, list);
  }
  return fields;
}

const text = (value: unknown): string => new TextDecoder().decode(value as Uint8Array);

t.test('ProtoWriter writes varints, negative int64s, floats, strings and nested messages', async (t) => {
  const inner = new ProtoWriter().varint(1, 300);
  const bytes = new ProtoWriter().varint(1, 0).varint(2, 2 ** 40).varint(3, -1).float(4, 1.5).string(5, 'héllo').message(6, inner).packedVarints(7, [1, 128, -2]).finish();
  const fields = decodeFields(bytes);
  t.same(fields.get(1), [0n]);
  t.same(fields.get(2), [2n ** 40n]);
  t.same(fields.get(3), [2n ** 64n - 1n], 'a negative int64 is its 64-bit two’s complement');
  t.same(fields.get(4), [1.5]);
  t.equal(text(fields.get(5)![0]), 'héllo');
  t.same(decodeFields(fields.get(6)![0] as Uint8Array).get(1), [300n]);
  const packed = fields.get(7)![0] as Uint8Array;
  t.same(Array.from(packed), [0x01, 0x80, 0x01, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  t.throws(() => new ProtoWriter().varint(1, 0.5), RangeError);
});

t.test('ProtoWriter grows past its first buffer', async (t) => {
  const big = new Uint8Array(100_000).fill(7);
  const fields = decodeFields(new ProtoWriter().bytes(1, big).varint(2, 5).finish());
  t.equal((fields.get(1)![0] as Uint8Array).length, 100_000);
  t.same(fields.get(2), [5n]);
});

t.test('encodeOnnxModel uses the onnx.proto field numbers, and onnxruntime runs the model', async (t) => {
  const weights = new Float32Array([1, 2, 3, 4]);
  const bytes = encodeOnnxModel({
    irVersion: 8,
    opsetImports: [{ domain: '', version: 18 }],
    producerName: 'medsyn',
    producerVersion: 'test',
    docString: 'doc',
    metadata: { key: 'value' },
    graph: {
      name: 'g',
      nodes: [
        { opType: 'MatMul', name: 'mm', inputs: ['x', 'w'], outputs: ['xw'], attributes: [] },
        { opType: 'Gemm', name: 'gemm', inputs: ['xw', 'w'], outputs: ['y'], attributes: [{ name: 'alpha', value: { type: 'float', value: 0.5 } }, { name: 'transB', value: { type: 'int', value: 1 } }] },
        { opType: 'Transpose', name: 't', inputs: ['y'], outputs: ['z'], attributes: [{ name: 'perm', value: { type: 'ints', value: [1, 0] } }] },
      ],
      initializers: [{ name: 'w', dataType: OnnxDataType.float32, dims: [2, 2], raw: new Uint8Array(weights.buffer) }],
      inputs: [{ name: 'x', dataType: OnnxDataType.float32, dims: [1, 2] }],
      outputs: [{ name: 'z', dataType: OnnxDataType.float32, dims: [2, 1] }],
    },
  });
  const model = decodeFields(bytes);
  t.same(model.get(1), [8n], 'ir_version = 1');
  t.equal(text(model.get(2)![0]), 'medsyn', 'producer_name = 2');
  t.equal(text(model.get(6)![0]), 'doc', 'doc_string = 6');
  const opset = decodeFields(model.get(8)![0] as Uint8Array);
  t.same(opset.get(2), [18n], 'opset_import.version = 2');
  const meta = decodeFields(model.get(14)![0] as Uint8Array);
  t.equal(text(meta.get(1)![0]), 'key', 'metadata_props = 14');
  const graph = decodeFields(model.get(7)![0] as Uint8Array);
  t.equal(graph.get(1)!.length, 3, 'graph.node = 1');
  t.equal(text(graph.get(2)![0]), 'g', 'graph.name = 2');
  const node = decodeFields(graph.get(1)![1] as Uint8Array);
  t.same([text(node.get(1)![0]), text(node.get(1)![1]), text(node.get(2)![0]), text(node.get(4)![0])], ['xw', 'w', 'y', 'Gemm']);
  const alpha = decodeFields(node.get(5)![0] as Uint8Array);
  t.same([text(alpha.get(1)![0]), alpha.get(2), alpha.get(20)], ['alpha', [0.5], [1n]], 'attribute name = 1, f = 2, type = 20 (FLOAT)');
  const perm = decodeFields(decodeFields(graph.get(1)![2] as Uint8Array).get(5)![0] as Uint8Array);
  t.same([perm.get(8), perm.get(20)], [[1n, 0n], [7n]], 'ints = 8, type = 20 (INTS)');
  const initializer = decodeFields(graph.get(5)![0] as Uint8Array);
  t.same([initializer.get(1), initializer.get(2), text(initializer.get(8)![0])], [[2n, 2n], [1n], 'w'], 'dims = 1, data_type = 2, name = 8');
  t.equal((initializer.get(9)![0] as Uint8Array).length, 16, 'raw_data = 9');

  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 1]), [1, 2]) });
  // x·w = [4, 6]; ·wᵀ·0.5 = [0.5·(4+12), 0.5·(12+24)] = [8, 18].
  t.same(Array.from(out.z.data as Float32Array), [8, 18]);
  t.same(out.z.dims, [2, 1]);
  await session.release();
});
