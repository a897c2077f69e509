import t from 'tap';
import { isFloat } from '../../train/dtype.js';
import { allocate, bytesPerElement, dtypeOfArray, fromNumbers, hostBytes, onnxDataType } from '../../train/_host_arrays.js';

t.test('isFloat and the host-array helpers map element types to arrays and ONNX codes', async (t) => {
  t.same(['float32', 'float64', 'int32', 'int64', 'bool'].map((d) => onnxDataType(d as never)), [1, 11, 6, 7, 9]);
  t.same(['float32', 'float64', 'int32', 'int64', 'bool'].map((d) => bytesPerElement(d as never)), [4, 8, 4, 8, 1]);
  t.same([isFloat('float32'), isFloat('float64'), isFloat('int64'), isFloat('bool')], [true, true, false, false]);
  t.ok(allocate('int64', 2) instanceof BigInt64Array);
  t.ok(allocate('bool', 2) instanceof Uint8Array);
  t.equal(dtypeOfArray(new Int32Array(1)), 'int32');
  t.equal(dtypeOfArray(new Uint8Array(1)), 'bool');
  t.same(Array.from(fromNumbers('int64', [1.7, -2])), [1n, -2n]);
  t.same(Array.from(fromNumbers('bool', [0, 2])), [0, 1]);
  t.same(Array.from(fromNumbers('float32', [0.5])), [0.5]);
  const array = Float32Array.of(1);
  t.same(Array.from(hostBytes(array)), [0, 0, 0x80, 0x3f], 'little-endian bytes');
});
