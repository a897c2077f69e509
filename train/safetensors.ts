/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header size,
 * a JSON header naming each tensor's dtype, shape and byte range, an optional
 * `__metadata__` map of strings, then the raw little-endian data. A pure codec:
 * no files here.
 *
 * @module
 */
import { ErrorCodes, MedsynError } from '../errors.js';
import type { AnyHostArray, DType } from './dtype.js';
import { bytesPerElement, hostBytes } from './_host_arrays.js';

/** One tensor in a safetensors file. */
export interface NamedTensor {
  dtype: DType;
  shape: readonly number[];
  data: AnyHostArray;
}

/** A decoded safetensors file. */
export interface SafetensorsContent {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

const TO_CODE: Record<DType, string> = { float32: 'F32', float64: 'F64', int32: 'I32', int64: 'I64', bool: 'BOOL' };
const FROM_CODE: Record<string, DType> = { F32: 'float32', F64: 'float64', I32: 'int32', I64: 'int64', BOOL: 'bool' };
/** A header larger than this is not a safetensors file (the reference implementation's limit). */
const MAX_HEADER = 100_000_000;

/**
 * The bytes of a safetensors file holding `tensors` (in the order given) and `metadata`.
 *
 * @throws {MedsynError} `MEDSYN_ERR_SHAPE_MISMATCH` when a tensor's data does not fill its shape
 * @example
 * ```ts
 * const bytes = encodeSafetensors(new Map([['w', { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) }]]), { step: '10' });
 * ```
 */
export function encodeSafetensors(tensors: ReadonlyMap<string, NamedTensor>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, tensor] of tensors) {
    const size = tensor.shape.reduce((product, dim) => product * dim, 1);
    if (tensor.data.length !== size) {
      throw new MedsynError(ErrorCodes.SHAPE_MISMATCH, `Cannot write tensor ${name}: ${tensor.data.length} values for shape [${tensor.shape.join(', ')}]`);
    }
    const bytes = size * bytesPerElement(tensor.dtype);
    header[name] = { dtype: TO_CODE[tensor.dtype], shape: tensor.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  const padding = (8 - ((8 + json.length) % 8)) % 8;
  if (padding > 0) json = Buffer.concat([json, Buffer.alloc(padding, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let position = 8 + json.length;
  for (const tensor of tensors.values()) {
    const bytes = hostBytes(tensor.data);
    out.set(bytes, position);
    position += bytes.byteLength;
  }
  return out;
}

function corrupt(file: string | undefined, detail: string, offset?: number): never {
  throw new MedsynError(
    ErrorCodes.BAD_CHECKPOINT,
    `Cannot read safetensors${file ? ` ${file}` : ''}: ${detail}`,
    { ...(file ? { file } : {}), ...(offset !== undefined ? { offset } : {}) },
  );
}

/**
 * Decodes safetensors bytes. Tensors are copied out (aligned, independent of `bytes`).
 *
 * @param file the file name, for messages
 * @throws {MedsynError} `MEDSYN_ERR_BAD_CHECKPOINT` for a truncated file, a bad header, an unknown dtype or
 *   byte ranges that overlap, leave gaps or do not fit the shape
 * @example
 * ```ts
 * const { tensors, metadata } = decodeSafetensors(await readFile('run1/step-1000.safetensors'));
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array, file?: string): SafetensorsContent {
  if (bytes.byteLength < 8) corrupt(file, `${bytes.byteLength} bytes is too short for the header size (truncated?)`, 0);
  const headerSize = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (headerSize > BigInt(Math.min(MAX_HEADER, bytes.byteLength - 8))) {
    corrupt(file, `header size ${headerSize} does not fit in ${bytes.byteLength} bytes (not safetensors, or truncated)`, 0);
  }
  const dataStart = 8 + Number(headerSize);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, Number(headerSize)).toString('utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new MedsynError(ErrorCodes.BAD_CHECKPOINT, `Cannot read safetensors${file ? ` ${file}` : ''}: the header is not JSON`, { cause, offset: 8, ...(file ? { file } : {}) });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) corrupt(file, 'the header is not a JSON object', 8);
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const raw = header.__metadata__;
  if (raw !== undefined) {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) corrupt(file, '__metadata__ is not an object', 8);
    for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
      if (typeof value !== 'string') corrupt(file, `__metadata__.${key} is not a string`, 8);
      metadata[key] = value;
    }
  }
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype: code, shape, data_offsets: offsets } = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = typeof code === 'string' ? FROM_CODE[code] : undefined;
    if (!dtype) corrupt(file, `tensor ${name} has dtype ${String(code)}, medsyn reads ${Object.keys(FROM_CODE).join(', ')}`, 8);
    if (!Array.isArray(shape) || !shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) corrupt(file, `tensor ${name} has a bad shape`, 8);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      corrupt(file, `tensor ${name} has bad data_offsets`, 8);
    }
    const [begin, end] = offsets as number[];
    const size = (shape as number[]).reduce((product, dim) => product * dim, 1);
    if (end < begin || end - begin !== size * bytesPerElement(dtype)) corrupt(file, `tensor ${name}: ${end - begin} bytes for shape [${shape.join(', ')}] of ${dtype}`, 8);
    if (end > dataLength) corrupt(file, `tensor ${name} ends at byte ${dataStart + end}, past the end of the file (truncated?)`, dataStart + begin);
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  // The byte ranges must tile the data exactly: no overlap, no gap.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin);
  let expected = 0;
  for (const entry of sorted) {
    if (entry.begin !== expected) corrupt(file, `tensor ${entry.name} starts at data byte ${entry.begin}, expected ${expected} (overlap or gap)`, dataStart + entry.begin);
    expected = entry.end;
  }
  if (expected !== dataLength) corrupt(file, `${dataLength - expected} bytes after the last tensor`, dataStart + expected);
  const tensors = new Map<string, NamedTensor>();
  for (const entry of entries) {
    // A copy (Buffer#slice would give a view): aligned, and independent of the file's bytes.
    const copy = new Uint8Array(bytes.subarray(dataStart + entry.begin, dataStart + entry.end)).buffer;
    tensors.set(entry.name, { dtype: entry.dtype, shape: entry.shape, data: arrayOf(entry.dtype, copy) });
  }
  return { tensors, metadata };
}

function arrayOf(dtype: DType, buffer: ArrayBuffer): AnyHostArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer);
    case 'float64':
      return new Float64Array(buffer);
    case 'int32':
      return new Int32Array(buffer);
    case 'int64':
      return new BigInt64Array(buffer);
    case 'bool':
      return new Uint8Array(buffer);
  }
}
