/**
 * Element types of graph tensors and the host arrays that hold them.
 *
 * @module
 */
/** The element type of a graph tensor. */
export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'bool';

/** The element types that gradients flow through. */
export type FloatDType = 'float32' | 'float64';

/** The host array type that holds tensors of element type `D`. */
export type HostArray<D extends DType = DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'int32'
      ? Int32Array
      : D extends 'int64'
        ? BigInt64Array
        : Uint8Array;

/** Any host array a graph tensor can be fed from or read into. */
export type AnyHostArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** Float32Array or Float64Array: what parameters and optimizer state live in. */
export type FloatArray = Float32Array | Float64Array;

/** All element types, for validation. */
export const DTYPES: readonly DType[] = ['float32', 'float64', 'int32', 'int64', 'bool'];

/**
 * Whether `dtype` is a float type (gradients flow through it).
 *
 * @example
 * ```ts
 * isFloat('float64'); // true
 * isFloat('int64');   // false
 * ```
 */
export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'float32' || dtype === 'float64';
}
