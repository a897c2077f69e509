/**
 * A minimal protocol-buffers writer: just the wire types the ONNX model format
 * needs (varint, 64-bit, length-delimited, 32-bit). Messages are written
 * inside-out: a nested message is finished into bytes and then embedded as a
 * length-delimited field, which keeps the writer free of back-patching.
 *
 * @module
 */

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

const textEncoder = new TextEncoder();

/** Builds one protobuf message; `finish()` returns its bytes. */
export class ProtoWriter {
  #buffer = new Uint8Array(256);
  #length = 0;

  #reserve(bytes: number): void {
    if (this.#length + bytes <= this.#buffer.length) return;
    let size = this.#buffer.length * 2;
    while (size < this.#length + bytes) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }

  #rawVarint(value: number | bigint): void {
    this.#reserve(10);
    if (typeof value === 'number' && value >= 0 && value <= 0x7fffffff) {
      let v = value;
      while (v > 0x7f) {
        this.#buffer[this.#length++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.#buffer[this.#length++] = v;
      return;
    }
    // Negative int64 values are written as their 64-bit two's complement (10 bytes).
    let v = BigInt.asUintN(64, BigInt(value));
    while (v > 0x7fn) {
      this.#buffer[this.#length++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buffer[this.#length++] = Number(v);
  }

  #tag(field: number, wireType: number): void {
    this.#rawVarint(field * 8 + wireType);
  }

  /** An int32/int64/enum/bool field. Integers beyond ±2^53 must be passed as bigint. */
  varint(field: number, value: number | bigint): this {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`protobuf varint field ${field}: ${value} is not an integer`);
    this.#tag(field, WIRE_VARINT);
    this.#rawVarint(value);
    return this;
  }

  /** A `float` field (32-bit, little-endian). */
  float(field: number, value: number): this {
    this.#tag(field, WIRE_FIXED32);
    this.#reserve(4);
    new DataView(this.#buffer.buffer, this.#buffer.byteOffset).setFloat32(this.#length, value, true);
    this.#length += 4;
    return this;
  }

  /** A `bytes` field, or an embedded message already finished into bytes. */
  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, WIRE_LENGTH_DELIMITED);
    this.#rawVarint(value.byteLength);
    this.#reserve(value.byteLength);
    this.#buffer.set(value, this.#length);
    this.#length += value.byteLength;
    return this;
  }

  /** A `string` field, UTF-8 encoded. */
  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  /** An embedded message. */
  message(field: number, value: ProtoWriter): this {
    return this.bytes(field, value.finish());
  }

  /** A packed repeated varint field (`[packed = true]`, or any repeated scalar in proto3). */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const value of values) inner.#rawVarint(value);
    return this.bytes(field, inner.finish());
  }

  /** The message's bytes so far (a view: copy it before writing more). */
  finish(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }
}
