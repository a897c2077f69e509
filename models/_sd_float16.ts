/**
 * IEEE 754 half precision (binary16) to and from float32, bit by bit: Node 20 has
 * no Float16Array, and onnxruntime-node hands float16 tensors over as the raw
 * 16-bit patterns in a Uint16Array. Private to the onnx backend.
 *
 * @module
 */

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/**
 * The binary16 bit pattern nearest to `value`, ties to even (as NumPy's
 * `astype(np.float16)` and PyTorch's `.half()` round): overflow gives ±∞, NaN
 * stays NaN (quiet), values below half the smallest subnormal give ±0.
 *
 * @example
 * ```ts
 * float16Bits(1);        // 0x3c00
 * float16Bits(65520);    // 0x7c00 (rounds up to ∞)
 * float16Bits(1 + 2 ** -11); // 0x3c00 (a tie, to even)
 * ```
 */
export function float16Bits(value: number): number {
  scratch[0] = value;
  const bits = scratchBits[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // A subnormal half: the value in units of 2^-24, from the full 24-bit significand.
    if (halfExponent < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    const kept = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    return sign | (rest > halfway || (rest === halfway && (kept & 1) === 1) ? kept + 1 : kept);
  }
  const half = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa moves into the exponent, which is the right result (up to ∞).
  return sign | (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1) ? half + 1 : half);
}

/**
 * The number a binary16 bit pattern stands for (exact: every half is a float32).
 *
 * @example
 * ```ts
 * float16Value(0x3c00); // 1
 * float16Value(0x0001); // 2 ** -24
 * ```
 */
export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa !== 0 ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

let table: Float32Array | undefined;

/**
 * float32 values to binary16 bit patterns, as onnxruntime takes a float16 tensor.
 *
 * @example
 * ```ts
 * new ort.Tensor('float16', toFloat16(latents), [1, 4, 64, 64]);
 * ```
 */
export function toFloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float16Bits(values[i]!);
  return out;
}

/**
 * binary16 bit patterns (a float16 tensor's data) to float32 values.
 *
 * @example
 * ```ts
 * const noise = fromFloat16(result.out_sample.data as Uint16Array);
 * ```
 */
export function fromFloat16(bits: Uint16Array): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) table[i] = float16Value(i);
  }
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}
