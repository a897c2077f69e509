/**
 * Host arrays for graph tensors: allocation, conversion from plain numbers,
 * their bytes, and the ONNX type codes. Private to `train/`.
 *
 * @module
 */
import { OnnxDataType } from './_onnx_proto.js';
import type { AnyHostArray, DType, HostArray } from './dtype.js';

/** The ONNX TensorProto.DataType of `dtype`. */
export function onnxDataType(dtype: DType): number {
  return OnnxDataType[dtype];
}

/** Bytes per element of `dtype`. */
export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case 'float64':
    case 'int64':
      return 8;
    case 'float32':
    case 'int32':
      return 4;
    case 'bool':
      return 1;
  }
}

/** A zero-filled host array of `dtype` with `length` elements. */
export function allocate<D extends DType>(dtype: D, length: number): HostArray<D> {
  switch (dtype) {
    case 'float32':
      return new Float32Array(length) as HostArray<D>;
    case 'float64':
      return new Float64Array(length) as HostArray<D>;
    case 'int32':
      return new Int32Array(length) as HostArray<D>;
    case 'int64':
      return new BigInt64Array(length) as HostArray<D>;
    default:
      return new Uint8Array(length) as HostArray<D>;
  }
}

/** The dtype a host array holds: Uint8Array is read as bool. */
export function dtypeOfArray(array: AnyHostArray): DType {
  if (array instanceof Float32Array) return 'float32';
  if (array instanceof Float64Array) return 'float64';
  if (array instanceof Int32Array) return 'int32';
  if (array instanceof BigInt64Array) return 'int64';
  return 'bool';
}

/** A host array of `dtype` filled from plain numbers (booleans as 0/1, int64 through BigInt). */
export function fromNumbers<D extends DType>(dtype: D, values: ArrayLike<number>): HostArray<D> {
  const out = allocate(dtype, values.length);
  if (out instanceof BigInt64Array) {
    for (let i = 0; i < values.length; i++) out[i] = BigInt(Math.trunc(values[i]));
  } else if (out instanceof Uint8Array) {
    for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
  } else {
    (out as Float32Array).set(values);
  }
  return out;
}

/** The little-endian bytes of a host array (a view, no copy, on little-endian machines). */
export function hostBytes(array: AnyHostArray): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}
