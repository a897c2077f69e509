/**
 * Turning host arrays into onnxruntime tensors for a graph's inputs, with one
 * clear error for a missing, unknown, mistyped or wrongly sized feed.
 * Private to `train/`.
 *
 * @module
 */
import type { Tensor } from 'onnxruntime-node';
import { ErrorCodes, MedsynError } from '../errors.js';
import type { AnyHostArray } from './dtype.js';
import { dtypeOfArray, fromNumbers } from './_host_arrays.js';
import { formatShape, type Value } from './graph.js';
import { ort } from './session.js';

/** What a graph input can be fed from: a host array of its type, or plain numbers. */
export type Feed = AnyHostArray | readonly number[];

/** The onnxruntime tensor for input `value` holding `data` (no copy for a host array of the right type). */
export function tensorFor(value: Value, data: Feed): Tensor {
  let array: AnyHostArray;
  if (Array.isArray(data)) array = fromNumbers(value.dtype, data as readonly number[]);
  else if (ArrayBuffer.isView(data)) {
    array = data as AnyHostArray;
    const given = dtypeOfArray(array);
    if (given !== value.dtype) {
      throw new MedsynError(ErrorCodes.BAD_FEED, `Cannot feed ${value}: got a ${array.constructor.name} (${given}), it needs ${value.dtype}`);
    }
  } else throw new MedsynError(ErrorCodes.BAD_FEED, `Cannot feed ${value}: got ${typeof data}, it needs a typed array or an array of numbers`);
  if (array.length !== value.size) {
    throw new MedsynError(ErrorCodes.BAD_FEED, `Cannot feed ${value}: got ${array.length} elements, shape ${formatShape(value.shape)} holds ${value.size}`);
  }
  return new ort.Tensor(value.dtype, array, value.shape);
}

/** Checks that `feeds` names exactly `expected`; returns the tensors by input name. */
export function tensorsFor(expected: readonly Value[], feeds: Readonly<Record<string, Feed>>, what: string): Record<string, Tensor> {
  const known = new Set(expected.map((value) => value.name));
  const unknown = Object.keys(feeds).filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new MedsynError(ErrorCodes.BAD_FEED, `Cannot run ${what}: it has no input named ${unknown.join(', ')} (inputs: ${[...known].join(', ') || 'none'})`);
  }
  const missing = expected.filter((value) => feeds[value.name] === undefined).map((value) => value.name);
  if (missing.length > 0) throw new MedsynError(ErrorCodes.BAD_FEED, `Cannot run ${what}: input ${missing.join(', ')} not fed`);
  const tensors: Record<string, Tensor> = {};
  for (const value of expected) tensors[value.name] = tensorFor(value, feeds[value.name]);
  return tensors;
}

/** The host array inside an onnxruntime output tensor. */
export function hostArrayOf(tensor: Tensor): AnyHostArray {
  return tensor.data as AnyHostArray;
}
