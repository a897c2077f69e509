/**
 * A minimal protocol-buffers reader: splits a message into its fields without
 * a schema, keeping each field's exact bytes so that a message can be written
 * back with some fields dropped, renamed or added (`train/_onnx_fuse.ts` joins
 * two ONNX models this way). Payloads are views into the input, not copies, so
 * a large model is read without doubling it in memory.
 *
 * @module
 */
import { ErrorCodes, MedsynError } from '../errors.js';

/** One field of a message as it lies in the bytes. */
export interface ProtoField {
  /** The field number. */
  readonly field: number;
  /** The wire type: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
  readonly wire: 0 | 1 | 2 | 5;
  /** The whole field, tag included (a view into the message). */
  readonly raw: Uint8Array;
  /** The value of a varint field. */
  readonly int?: bigint;
  /** The payload of a length-delimited field: a string, bytes, an embedded message or a packed array. */
  readonly bytes?: Uint8Array;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

function truncated(what: string): never {
  throw new MedsynError(ErrorCodes.BAD_MODEL, `Cannot read the ONNX model: ${what}`);
}

function varintAt(bytes: Uint8Array, at: number): [bigint, number] {
  let value = 0n;
  let shift = 0n;
  for (let i = at; i < bytes.length && shift < 70n; i++) {
    const byte = bytes[i]!;
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [value, i + 1];
    shift += 7n;
  }
  return truncated(`a varint at byte ${at} runs past the end of its message`);
}

/**
 * The fields of one message, in the order they appear.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_MODEL` for bytes that are not a protobuf message
 * @example
 * ```ts
 * const graph = readFields(modelBytes).find((f) => f.field === 7)!.bytes!;
 * ```
 */
export function readFields(bytes: Uint8Array): ProtoField[] {
  const fields: ProtoField[] = [];
  let at = 0;
  while (at < bytes.length) {
    const start = at;
    const [tag, afterTag] = varintAt(bytes, at);
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (field === 0) truncated(`field number 0 at byte ${start}`);
    switch (wire) {
      case 0: {
        const [value, end] = varintAt(bytes, afterTag);
        fields.push({ field, wire, raw: bytes.subarray(start, end), int: value });
        at = end;
        break;
      }
      case 1:
      case 5: {
        const end = afterTag + (wire === 1 ? 8 : 4);
        if (end > bytes.length) truncated(`a fixed-size field at byte ${start} runs past the end`);
        fields.push({ field, wire, raw: bytes.subarray(start, end) });
        at = end;
        break;
      }
      case 2: {
        const [length, payloadStart] = varintAt(bytes, afterTag);
        const end = payloadStart + Number(length);
        if (end > bytes.length) truncated(`a field of ${length} bytes at byte ${start} runs past the end`);
        fields.push({ field, wire, raw: bytes.subarray(start, end), bytes: bytes.subarray(payloadStart, end) });
        at = end;
        break;
      }
      default:
        truncated(`wire type ${wire} at byte ${start} (groups are not used by ONNX)`);
    }
  }
  return fields;
}

/** A length-delimited field's payload as UTF-8 text. */
export function fieldString(field: ProtoField): string {
  if (!field.bytes) truncated(`field ${field.field} is not a string`);
  return textDecoder.decode(field.bytes);
}

/** The first field numbered `number`, if any. */
export function firstField(fields: readonly ProtoField[], number: number): ProtoField | undefined {
  return fields.find((f) => f.field === number);
}

/** The values of a repeated varint field, packed or not. */
export function repeatedInts(fields: readonly ProtoField[], number: number): bigint[] {
  const values: bigint[] = [];
  for (const f of fields) {
    if (f.field !== number) continue;
    if (f.wire === 0) values.push(f.int!);
    else if (f.wire === 2) {
      let at = 0;
      while (at < f.bytes!.length) {
        const [value, next] = varintAt(f.bytes!, at);
        values.push(value);
        at = next;
      }
    }
  }
  return values;
}
