import t from 'tap';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../../train/safetensors.js';

function sample(): Map<string, NamedTensor> {
  return new Map<string, NamedTensor>([
    ['w', { dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ['scale', { dtype: 'float64', shape: [], data: Float64Array.of(Math.PI) }],
    ['ids', { dtype: 'int64', shape: [2], data: BigInt64Array.of(-1n, 2n ** 40n) }],
    ['count', { dtype: 'int32', shape: [1], data: Int32Array.of(7) }],
    ['mask', { dtype: 'bool', shape: [3], data: Uint8Array.of(1, 0, 1) }],
  ]);
}

/** A safetensors file built by hand, as the reference writer lays it out. */
function handMade(header: object, data: Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

t.test('encodeSafetensors and decodeSafetensors round-trip every dtype and the metadata', async (t) => {
  const bytes = encodeSafetensors(sample(), { step: '12', note: 'ünïcode' });
  const headerSize = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  t.equal((8 + headerSize) % 8, 0, 'the data starts 8-byte aligned');
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerSize)).toString());
  t.same(header.w, { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
  t.same(header.__metadata__, { step: '12', note: 'ünïcode' });
  const { tensors, metadata } = decodeSafetensors(bytes);
  t.same(metadata, { step: '12', note: 'ünïcode' });
  for (const [name, tensor] of sample()) {
    const got = tensors.get(name)!;
    t.same([got.dtype, got.shape, Array.from(got.data as ArrayLike<number | bigint>)], [tensor.dtype, tensor.shape, Array.from(tensor.data as ArrayLike<number | bigint>)], name);
  }
});

t.test('decodeSafetensors reads a file laid out by another writer, from an unaligned Buffer', async (t) => {
  const data = new Uint8Array(Float32Array.of(1.5, -2).buffer);
  const file = handMade({ __metadata__: { format: 'pt' }, x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data);
  const padded = Buffer.concat([Buffer.from([0, 0, 0]), Buffer.from(file)]).subarray(3);
  const { tensors } = decodeSafetensors(padded);
  t.same(Array.from(tensors.get('x')!.data as Float32Array), [1.5, -2]);
});

t.test('decodeSafetensors rejects truncated and hostile files with MEDSYN_ERR_BAD_CHECKPOINT', async (t) => {
  const good = encodeSafetensors(sample());
  const bad = (bytes: Uint8Array, message: RegExp) => t.throws(() => decodeSafetensors(bytes, 'x.safetensors'), { code: 'MEDSYN_ERR_BAD_CHECKPOINT', file: 'x.safetensors', message });
  bad(good.subarray(0, 5), /too short/);
  bad(good.subarray(0, 40), /does not fit/);
  bad(good.subarray(0, good.length - 1), /past the end|after the last/);
  bad(handMade({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(12)), /4 bytes after the last tensor/);
  bad(handMade({ x: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)), /dtype F16/);
  bad(handMade({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /8 bytes for shape \[3\]/);
  bad(handMade({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } }, new Uint8Array(8)), /bad shape/);
  bad(handMade({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /overlap or gap/);
  bad(handMade({ __metadata__: { step: 3 } }, new Uint8Array(0)), /not a string/);
  bad(handMade([1, 2] as unknown as object, new Uint8Array(0)), /not a JSON object/);
  const notJson = handMade({}, new Uint8Array(0));
  notJson[8] = 0x7b + 1;
  bad(notJson, /not JSON/);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
  bad(huge, /does not fit/);
});

t.test('encodeSafetensors refuses data that does not fill the shape', async (t) => {
  t.throws(() => encodeSafetensors(new Map([['w', { dtype: 'float32', shape: [3], data: new Float32Array(2) }]])), { code: 'MEDSYN_ERR_SHAPE_MISMATCH' });
});
