/**
 * A UNet of Stable Diffusion 1.5's layout (diffusers' `UNet2DConditionModel` as SD 1.x
 * configures it) with seeded random weights, written as ONNX for the GPU check
 * (`bench/gpu.ts`): conv_in 4 → C₀; down blocks of `blockChannels` (320, 640, 1280,
 * 1280), each with `layersPerBlock` ResNet blocks (GroupNorm(32) + SiLU + 3 × 3
 * convolution, the time embedding projected and added, a 1 × 1 shortcut where the
 * channels change) and, in the first `attentionBlocks`, a transformer after each
 * (GroupNorm, 1 × 1 proj_in, LayerNorm + self-attention, LayerNorm + cross-attention
 * on `encoder_hidden_states` [batch, 77, 768], LayerNorm + GEGLU feed-forward, 1 × 1
 * proj_out), a stride-2 convolution between blocks; a mid block (ResNet, transformer,
 * ResNet); up blocks of `layersPerBlock + 1` ResNet blocks on the skip concatenations,
 * transformers in the last `attentionBlocks`, nearest × 2 upsampling + 3 × 3
 * convolution between blocks; GroupNorm, SiLU and conv_out C₀ → 4. The timestep goes
 * through a sinusoidal embedding of width C₀ (cos first, as `flip_sin_to_cos`) and two
 * linear layers to 4·C₀. At SD 1.5's sizes that is 859,520,964 parameters, as the real
 * model has ({@link sd15ParameterCount} is the formula).
 *
 * The graph uses only ONNX opset-18 ops that onnxruntime's CPU, CUDA and WebGPU
 * providers all run: Conv, MatMul, Add, Mul, Div, Softmax, Transpose, Reshape, Shape,
 * Split, Concat, Resize (nearest), Sigmoid, Erf, Sin, Cos, Cast, LayerNormalization and
 * InstanceNormalization (GroupNorm as Reshape → InstanceNormalization → Reshape → scale
 * and shift, as PyTorch exports it). Weights and computation are float16 (or float32),
 * with the timestep embedding computed in float32 as diffusers does. The I/O is that of
 * optimum ≥ 1.24 exports: `sample` [batch, 4, height, width], a scalar `timestep`,
 * `encoder_hidden_states` [batch, sequence, 768] → `out_sample`.
 *
 * 860 M float16 weights are 1.7 GB, under protobuf's 2 GB limit; the file is written
 * in chunks as the weights are drawn (a fast xorshift over a table of float16 bit
 * patterns), so memory stays flat. Private to `bench/`.
 *
 * @module
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { float16Bits } from '../models/_sd_float16.js';
import { IR_VERSION, OPSET } from '../train/_emit_onnx.js';
import { encodeOnnxModel, OnnxDataType, type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor } from '../train/_onnx_proto.js';
import { readFields } from '../train/_protobuf_reader.js';
import { ProtoWriter } from '../train/_protobuf.js';

/** The layout and sizes of the UNet. */
export interface Sd15UnetConfig {
  /** Output channels of each down block (reversed for the up blocks). */
  blockChannels: readonly number[];
  /** ResNet blocks per down block (up blocks have one more). */
  layersPerBlock: number;
  /** How many down blocks, from the first, (and up blocks, from the last) have transformers. */
  attentionBlocks: number;
  /** Attention heads. */
  heads: number;
  /** Width of `encoder_hidden_states` (the text encoder's width). */
  crossAttentionDim: number;
  /** GroupNorm groups. */
  groups: number;
  /** Latent channels in and out. */
  latentChannels: number;
  /** Weights' and activations' element type. */
  dtype: 'float16' | 'float32';
  /** Seed of the random weights. */
  seed: number;
}

/** Stable Diffusion 1.5's UNet: 859,520,964 parameters. */
export const SD15_UNET: Readonly<Sd15UnetConfig> = {
  blockChannels: [320, 640, 1280, 1280],
  layersPerBlock: 2,
  attentionBlocks: 3,
  heads: 8,
  crossAttentionDim: 768,
  groups: 32,
  latentChannels: 4,
  dtype: 'float16',
  seed: 15,
};

/** Parameters of diffusers' SD 1.5 UNet (`sum(p.numel() for p in unet.parameters())`). */
export const SD15_UNET_PARAMETERS = 859_520_964;

/**
 * The parameter count of the UNet `config` describes, from the layout's formulas alone
 * (not from a built graph), to check the builder against.
 *
 * @example
 * ```ts
 * sd15ParameterCount(SD15_UNET); // 859520964
 * ```
 */
export function sd15ParameterCount(config: Sd15UnetConfig): number {
  const { blockChannels: channels, layersPerBlock: layers, attentionBlocks, crossAttentionDim: text, latentChannels } = config;
  const conv = (i: number, o: number, k: number): number => o * i * k * k + o;
  const norm = (c: number): number => 2 * c;
  const time = 4 * channels[0]!;
  const resnet = (i: number, o: number): number => norm(i) + conv(i, o, 3) + time * o + o + norm(o) + conv(o, o, 3) + (i !== o ? conv(i, o, 1) : 0);
  const transformer = (c: number): number =>
    norm(c) + conv(c, c, 1) + // norm, proj_in
    norm(c) + 3 * c * c + c * c + c + // self-attention
    norm(c) + c * c + 2 * text * c + c * c + c + // cross-attention
    norm(c) + c * 8 * c + 8 * c + 4 * c * c + c + // GEGLU feed-forward
    conv(c, c, 1); // proj_out
  const blocks = channels.length;
  let count = conv(latentChannels, channels[0]!, 3) + channels[0]! * time + time + time * time + time;
  let previous = channels[0]!;
  for (let b = 0; b < blocks; b++) {
    const out = channels[b]!;
    for (let l = 0; l < layers; l++) {
      count += resnet(l === 0 ? previous : out, out);
      if (b < attentionBlocks) count += transformer(out);
    }
    if (b < blocks - 1) count += conv(out, out, 3);
    previous = out;
  }
  const last = channels[blocks - 1]!;
  count += 2 * resnet(last, last) + transformer(last);
  const reversed = [...channels].reverse();
  for (let b = 0; b < blocks; b++) {
    const out = reversed[b]!;
    const prev = reversed[Math.max(b - 1, 0)]!;
    const input = reversed[Math.min(b + 1, blocks - 1)]!;
    for (let l = 0; l <= layers; l++) {
      count += resnet((l === 0 ? prev : out) + (l === layers ? input : out), out);
      if (b >= blocks - attentionBlocks) count += transformer(out);
    }
    if (b < blocks - 1) count += conv(out, out, 3);
  }
  return count + norm(channels[0]!) + conv(channels[0]!, latentChannels, 3);
}

/** How a weight's values are drawn: uniform in ±bound, or one value everywhere. */
type WeightInit = { uniform: number } | { fill: number };

/** A weight written after the graph: name, shape and how its values are drawn. */
interface WeightSpec {
  name: string;
  dims: number[];
  size: number;
  init: WeightInit;
}

/** The graph, without its weights' values. */
interface UnetPlan {
  nodes: OnnxNode[];
  constants: OnnxTensor[];
  weights: WeightSpec[];
  parameters: number;
}

type Attributes = Record<string, OnnxAttribute['value']>;

/** Collects nodes, constants and weight specs under unique names. */
class GraphPlan {
  readonly nodes: OnnxNode[] = [];
  readonly constants: OnnxTensor[] = [];
  readonly weights: WeightSpec[] = [];
  readonly #dtype: number;
  readonly #cache = new Map<string, string>();
  #count = 0;

  constructor(dtype: 'float16' | 'float32') {
    this.#dtype = dtype === 'float16' ? OnnxDataType.float16 : OnnxDataType.float32;
  }

  get dtype(): number {
    return this.#dtype;
  }

  op(opType: string, inputs: readonly string[], attributes: Attributes = {}, outputs = 1): string[] {
    const id = this.#count++;
    const names = Array.from({ length: outputs }, (_, i) => `${opType.toLowerCase()}_${id}${outputs > 1 ? `_${i}` : ''}`);
    this.nodes.push({
      opType,
      name: `${opType}_${id}`,
      inputs,
      outputs: names,
      attributes: Object.entries(attributes).map(([name, value]) => ({ name, value })),
    });
    return names;
  }

  one(opType: string, inputs: readonly string[], attributes: Attributes = {}): string {
    return this.op(opType, inputs, attributes)[0]!;
  }

  weight(name: string, dims: number[], init: WeightInit): string {
    this.weights.push({ name, dims, size: dims.reduce((a, b) => a * b, 1), init });
    return name;
  }

  /** An int64 constant (shapes, axes), shared by value. */
  ints(values: readonly number[]): string {
    return this.#constant(`ints[${values.join(',')}]`, OnnxDataType.int64, [values.length], () => {
      const raw = new BigInt64Array(values.map((v) => BigInt(v)));
      return new Uint8Array(raw.buffer);
    });
  }

  /** A constant of the model's element type (or float32 when `float32`), shared by value. */
  floats(values: readonly number[], dims: readonly number[], float32 = false): string {
    const type = float32 ? OnnxDataType.float32 : this.#dtype;
    return this.#constant(`f${type}[${dims.join('x')}](${values.join(',')})`, type, dims, () => {
      if (type === OnnxDataType.float16) return new Uint8Array(Uint16Array.from(values, float16Bits).buffer);
      return new Uint8Array(Float32Array.from(values).buffer);
    });
  }

  #constant(key: string, dataType: number, dims: readonly number[], raw: () => Uint8Array): string {
    let name = this.#cache.get(key);
    if (!name) {
      name = `const_${this.#cache.size}`;
      this.#cache.set(key, name);
      this.constants.push({ name, dataType, dims, raw: raw() });
    }
    return name;
  }
}

const ints = (value: readonly number[]): OnnxAttribute['value'] => ({ type: 'ints', value });
const int = (value: number): OnnxAttribute['value'] => ({ type: 'int', value });
const float = (value: number): OnnxAttribute['value'] => ({ type: 'float', value });

/** Draws the UNet's graph for `config`. */
function planUnet(config: Sd15UnetConfig): UnetPlan & { output: string } {
  const { blockChannels: channels, layersPerBlock: layers, attentionBlocks, heads, crossAttentionDim: text, groups, latentChannels } = config;
  for (const c of channels) {
    if (c % groups !== 0 || c % heads !== 0) throw new RangeError(`block channels ${c} must be a multiple of groups (${groups}) and heads (${heads})`);
  }
  const g = new GraphPlan(config.dtype);
  const time = 4 * channels[0]!;
  // Weights: uniform with the variance of N(0, gain² / fanIn); biases as PyTorch's defaults.
  const weightInit = (fanIn: number, gain = 1): WeightInit => ({ uniform: (gain * Math.sqrt(3)) / Math.sqrt(fanIn) });
  const biasInit = (fanIn: number): WeightInit => ({ uniform: 1 / Math.sqrt(fanIn) });

  const conv = (x: string, name: string, i: number, o: number, k: number, options: { stride?: number; gain?: number } = {}): string => {
    const w = g.weight(`${name}.weight`, [o, i, k, k], weightInit(i * k * k, options.gain));
    const b = g.weight(`${name}.bias`, [o], biasInit(i * k * k));
    const pad = (k - 1) / 2;
    return g.one('Conv', [x, w, b], { kernel_shape: ints([k, k]), pads: ints([pad, pad, pad, pad]), strides: ints([options.stride ?? 1, options.stride ?? 1]) });
  };
  const linear = (x: string, name: string, i: number, o: number, options: { bias?: boolean; gain?: number } = {}): string => {
    const y = g.one('MatMul', [x, g.weight(`${name}.weight`, [i, o], weightInit(i, options.gain))]);
    return options.bias === false ? y : g.one('Add', [y, g.weight(`${name}.bias`, [o], biasInit(i))]);
  };
  const silu = (x: string): string => g.one('Mul', [x, g.one('Sigmoid', [x])]);
  const groupNorm = (x: string, name: string, c: number, epsilon: number): string => {
    const grouped = g.one('Reshape', [x, g.ints([0, groups, -1])]);
    const normed = g.one('InstanceNormalization', [grouped, g.floats(new Array(groups).fill(1), [groups]), g.floats(new Array(groups).fill(0), [groups])], { epsilon: float(epsilon) });
    const back = g.one('Reshape', [normed, g.one('Shape', [x])]);
    const scaled = g.one('Mul', [back, g.weight(`${name}.weight`, [c, 1, 1], { fill: 1 })]);
    return g.one('Add', [scaled, g.weight(`${name}.bias`, [c, 1, 1], { fill: 0 })]);
  };
  const layerNorm = (x: string, name: string, c: number): string =>
    g.one('LayerNormalization', [x, g.weight(`${name}.weight`, [c], { fill: 1 }), g.weight(`${name}.bias`, [c], { fill: 0 })], { axis: int(-1), epsilon: float(1e-5) });

  const resnet = (x: string, temb: string, name: string, i: number, o: number): string => {
    let h = conv(silu(groupNorm(x, `${name}.norm1`, i, 1e-5)), `${name}.conv1`, i, o, 3);
    const t = g.one('Reshape', [linear(silu(temb), `${name}.time_emb_proj`, time, o), g.ints([1, o, 1, 1])]);
    h = g.one('Add', [h, t]);
    h = conv(silu(groupNorm(h, `${name}.norm2`, o, 1e-5)), `${name}.conv2`, o, o, 3, { gain: 0.5 });
    const shortcut = i !== o ? conv(x, `${name}.conv_shortcut`, i, o, 1) : x;
    return g.one('Add', [shortcut, h]);
  };
  const attention = (x: string, context: string, name: string, c: number, contextDim: number): string => {
    const d = c / heads;
    const q = g.one('Mul', [linear(x, `${name}.to_q`, c, c, { bias: false }), g.floats([1 / Math.sqrt(d)], [])]);
    const k = linear(context, `${name}.to_k`, contextDim, c, { bias: false });
    const v = linear(context, `${name}.to_v`, contextDim, c, { bias: false });
    const split = (y: string, perm: number[]): string => g.one('Transpose', [g.one('Reshape', [y, g.ints([0, 0, heads, d])])], { perm: ints(perm) });
    const scores = g.one('MatMul', [split(q, [0, 2, 1, 3]), split(k, [0, 2, 3, 1])]);
    const weights = g.one('Softmax', [scores], { axis: int(-1) });
    const mixed = g.one('MatMul', [weights, split(v, [0, 2, 1, 3])]);
    const merged = g.one('Reshape', [g.one('Transpose', [mixed], { perm: ints([0, 2, 1, 3]) }), g.ints([0, 0, c])]);
    return linear(merged, `${name}.to_out.0`, c, c, { gain: 0.5 });
  };
  const gelu = (x: string): string => {
    const erf = g.one('Erf', [g.one('Div', [x, g.floats([Math.SQRT2], [])])]);
    return g.one('Mul', [g.one('Mul', [x, g.one('Add', [erf, g.floats([1], [])])]), g.floats([0.5], [])]);
  };
  const transformer = (x: string, context: string, name: string, c: number): string => {
    const normed = groupNorm(x, `${name}.norm`, c, 1e-6);
    const projected = conv(normed, `${name}.proj_in`, c, c, 1);
    // [B, C, H, W] → [B, H·W, C]
    let h = g.one('Transpose', [g.one('Reshape', [projected, g.ints([0, c, -1])])], { perm: ints([0, 2, 1]) });
    const block = `${name}.transformer_blocks.0`;
    const n1 = layerNorm(h, `${block}.norm1`, c);
    h = g.one('Add', [h, attention(n1, n1, `${block}.attn1`, c, c)]);
    h = g.one('Add', [h, attention(layerNorm(h, `${block}.norm2`, c), context, `${block}.attn2`, c, text)]);
    const projection = linear(layerNorm(h, `${block}.norm3`, c), `${block}.ff.net.0.proj`, c, 8 * c);
    const [hidden, gate] = g.op('Split', [projection, g.ints([4 * c, 4 * c])], { axis: int(-1) }, 2) as [string, string];
    h = g.one('Add', [h, linear(g.one('Mul', [hidden, gelu(gate)]), `${block}.ff.net.2`, 4 * c, c, { gain: 0.5 })]);
    // [B, H·W, C] → [B, C, H, W]
    const back = g.one('Reshape', [g.one('Transpose', [h], { perm: ints([0, 2, 1]) }), g.one('Shape', [x])]);
    return g.one('Add', [conv(back, `${name}.proj_out`, c, c, 1, { gain: 0.5 }), x]);
  };

  // Timestep (a scalar of the model's type) → [1, C₀] sinusoid in float32, cos first → [1, 4·C₀].
  const half = channels[0]! / 2;
  const frequencies = g.floats(Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half)), [1, half], true);
  const t = g.one('Reshape', [g.one('Cast', ['timestep'], { to: int(OnnxDataType.float32) }), g.ints([1, 1])]);
  const angles = g.one('Mul', [t, frequencies]);
  const sinusoid = g.one('Cast', [g.one('Concat', [g.one('Cos', [angles]), g.one('Sin', [angles])], { axis: int(-1) })], { to: int(g.dtype) });
  const temb = linear(silu(linear(sinusoid, 'time_embedding.linear_1', channels[0]!, time)), 'time_embedding.linear_2', time, time);

  let h = conv('sample', 'conv_in', latentChannels, channels[0]!, 3);
  const skips: Array<{ value: string; channels: number }> = [{ value: h, channels: channels[0]! }];
  let previous = channels[0]!;
  const blocks = channels.length;
  for (let b = 0; b < blocks; b++) {
    const out = channels[b]!;
    for (let l = 0; l < layers; l++) {
      h = resnet(h, temb, `down_blocks.${b}.resnets.${l}`, l === 0 ? previous : out, out);
      if (b < attentionBlocks) h = transformer(h, 'encoder_hidden_states', `down_blocks.${b}.attentions.${l}`, out);
      skips.push({ value: h, channels: out });
    }
    if (b < blocks - 1) {
      h = conv(h, `down_blocks.${b}.downsamplers.0.conv`, out, out, 3, { stride: 2 });
      skips.push({ value: h, channels: out });
    }
    previous = out;
  }
  const last = channels[blocks - 1]!;
  h = resnet(h, temb, 'mid_block.resnets.0', last, last);
  h = transformer(h, 'encoder_hidden_states', 'mid_block.attentions.0', last);
  h = resnet(h, temb, 'mid_block.resnets.1', last, last);
  const reversed = [...channels].reverse();
  let hChannels = last;
  for (let b = 0; b < blocks; b++) {
    const out = reversed[b]!;
    for (let l = 0; l <= layers; l++) {
      const skip = skips.pop()!;
      const joined = g.one('Concat', [h, skip.value], { axis: int(1) });
      h = resnet(joined, temb, `up_blocks.${b}.resnets.${l}`, hChannels + skip.channels, out);
      hChannels = out;
      if (b >= blocks - attentionBlocks) h = transformer(h, 'encoder_hidden_states', `up_blocks.${b}.attentions.${l}`, out);
    }
    if (b < blocks - 1) {
      const upsampled = g.one('Resize', [h, '', g.floats([1, 1, 2, 2], [4], true)], {
        mode: { type: 'string', value: 'nearest' },
        coordinate_transformation_mode: { type: 'string', value: 'asymmetric' },
        nearest_mode: { type: 'string', value: 'floor' },
      });
      h = conv(upsampled, `up_blocks.${b}.upsamplers.0.conv`, out, out, 3);
    }
  }
  const output = conv(silu(groupNorm(h, 'conv_norm_out', channels[0]!, 1e-5)), 'conv_out', channels[0]!, latentChannels, 3);
  const parameters = g.weights.reduce((sum, w) => sum + w.size, 0);
  return { nodes: g.nodes, constants: g.constants, weights: g.weights, parameters, output };
}

/** What {@link writeSd15Unet} wrote. */
export interface WrittenUnet {
  file: string;
  /** Parameters (weight elements) in the file. */
  parameters: number;
  bytes: number;
  seconds: number;
}

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v > 0x7f) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** A length-delimited field's tag and length prefix. */
function prefix(field: number, length: number): Uint8Array {
  return Uint8Array.from([...varint(field * 8 + 2), ...varint(length)]);
}

/** Values drawn per chunk written. */
const CHUNK = 1 << 22;
/** Entries of the table a weight's values are drawn from (10 random bits each). */
const TABLE = 1024;

/**
 * Fills `out` with `init`'s values: for `uniform`, three 10-bit draws per xorshift32
 * step, each picking one of {@link TABLE} evenly spaced values in ±bound (as bit
 * patterns of the element type). `state` carries the generator across chunks.
 */
function draw(out: Uint16Array | Float32Array, table: Uint16Array | Float32Array, state: { s: number }): void {
  let s = state.s;
  const n = out.length;
  let i = 0;
  while (i < n) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i++] = table[s & 1023]!;
    if (i < n) out[i++] = table[(s >>> 10) & 1023]!;
    if (i < n) out[i++] = table[(s >>> 20) & 1023]!;
  }
  state.s = s;
}

/** A graph plan with its I/O, ready to be written. */
interface OnnxPlan {
  nodes: readonly OnnxNode[];
  constants: readonly OnnxTensor[];
  weights: readonly WeightSpec[];
  inputs: OnnxModel['graph']['inputs'];
  outputs: OnnxModel['graph']['outputs'];
  /** Element type of the weights. */
  dtype: 'float16' | 'float32';
  name: string;
  docString: string;
  metadata: Record<string, string>;
  seed: number;
}

/**
 * Writes `plan` to `file`: the graph's nodes, I/O and small constants (encoded by the
 * project's ONNX encoder), then each weight as one graph.initializer TensorProto whose
 * raw data is drawn and written in chunks. Returns the bytes written.
 */
function writePlan(file: string, plan: OnnxPlan): number {
  const float16 = plan.dtype === 'float16';
  const dataType = float16 ? OnnxDataType.float16 : OnnxDataType.float32;
  const head = encodeOnnxModel({
    irVersion: IR_VERSION,
    opsetImports: [{ domain: '', version: OPSET }],
    producerName: 'medsyn',
    producerVersion: 'bench/_sd15_unet',
    docString: plan.docString,
    metadata: plan.metadata,
    graph: { name: plan.name, nodes: plan.nodes, initializers: plan.constants, inputs: plan.inputs, outputs: plan.outputs },
  });
  // TensorProto { dims (1), data_type (2), name (8), raw_data (9) }: all but the raw bytes, per weight.
  const elementBytes = float16 ? 2 : 4;
  const headers = plan.weights.map((weight) => {
    const w = new ProtoWriter();
    for (const dim of weight.dims) w.varint(1, dim);
    w.varint(2, dataType);
    w.string(8, weight.name);
    const rawBytes = weight.size * elementBytes;
    const header = Uint8Array.from([...w.finish(), ...prefix(9, rawBytes)]);
    return { header, tensorBytes: header.length + rawBytes };
  });
  const weightBytes = headers.reduce((sum, { tensorBytes }) => sum + prefix(5, tensorBytes).length + tensorBytes, 0);

  // The model's fields as encoded, with the graph (field 7) lengthened by the weights.
  const fields = readFields(head);
  const graphField = fields.find((field) => field.field === 7)!;
  const graph = graphField.bytes!;
  const graphBytes = graph.length + weightBytes;
  const total = head.length - graphField.raw.length + prefix(7, graphBytes).length + graphBytes;
  if (total >= 2 ** 31) throw new RangeError(`${plan.name} would be ${total} bytes, past protobuf's 2 GB limit (use float16)`);

  const fd = openSync(file, 'w');
  let written = 0;
  const put = (bytes: Uint8Array): void => {
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    written += bytes.length;
  };
  try {
    for (const field of fields) {
      if (field.field !== 7) {
        put(field.raw);
        continue;
      }
      put(prefix(7, graphBytes));
      put(graph);
      const buffer = float16 ? new Uint16Array(CHUNK) : new Float32Array(CHUNK);
      plan.weights.forEach((weight, index) => {
        const { header, tensorBytes } = headers[index]!;
        put(prefix(5, tensorBytes));
        put(header);
        const table = float16 ? new Uint16Array(TABLE) : new Float32Array(TABLE);
        for (let i = 0; i < TABLE; i++) {
          const value = 'fill' in weight.init ? weight.init.fill : ((2 * (i + 0.5)) / TABLE - 1) * weight.init.uniform;
          table[i] = float16 ? float16Bits(value) : value;
        }
        // One generator per weight, from the seed and the weight's index: chunking never changes a value.
        const state = { s: (Math.imul(plan.seed + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) | 1 };
        for (let start = 0; start < weight.size; start += CHUNK) {
          const chunk = buffer.subarray(0, Math.min(CHUNK, weight.size - start));
          if ('fill' in weight.init) chunk.fill(table[0]!);
          else draw(chunk, table, state);
          put(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        }
      });
    }
  } finally {
    closeSync(fd);
  }
  if (written !== total) throw new Error(`wrote ${written} bytes of ${plan.name}, expected ${total}`);
  return written;
}

/**
 * Writes the UNet `config` describes to `file` as ONNX, streaming its weights (memory
 * stays flat: a few MB whatever the model's size).
 *
 * @throws {RangeError} when channels do not divide by groups and heads, or the model would pass protobuf's 2 GB
 * @example
 * ```ts
 * const { parameters, bytes } = writeSd15Unet('bench/out/gpu/sd15/unet/model.onnx', SD15_UNET);
 * ```
 */
export function writeSd15Unet(file: string, config: Sd15UnetConfig = SD15_UNET): WrittenUnet {
  const started = performance.now();
  const plan = planUnet(config);
  const dataType = config.dtype === 'float16' ? OnnxDataType.float16 : OnnxDataType.float32;
  const { latentChannels: latent, crossAttentionDim: text } = config;
  const bytes = writePlan(file, {
    nodes: [...plan.nodes, { opType: 'Identity', name: 'output_out_sample', inputs: [plan.output], outputs: ['out_sample'], attributes: [] }],
    constants: plan.constants,
    weights: plan.weights,
    inputs: [
      { name: 'sample', dataType, dims: ['batch_size', latent, 'height', 'width'] },
      { name: 'timestep', dataType, dims: [] },
      { name: 'encoder_hidden_states', dataType, dims: ['batch_size', 'sequence_length', text] },
    ],
    outputs: [{ name: 'out_sample', dataType, dims: ['batch_size', latent, 'height', 'width'] }],
    dtype: config.dtype,
    name: 'unet',
    docString: "A UNet of Stable Diffusion 1.5's layout with seeded random weights, for timing (bench/gpu.ts); not a trained model.",
    metadata: { medsyn_bench: 'bench/_sd15_unet.ts', weights: `random, seed ${config.seed}`, config: JSON.stringify(config) },
    seed: config.seed,
  });
  return { file, parameters: plan.parameters, bytes, seconds: (performance.now() - started) / 1000 };
}

/** Options of {@link writeTextEncoderStandIn}. */
export interface TextEncoderStandInOptions {
  /** Output width (the UNet's `crossAttentionDim`). */
  width: number;
  /** Token ids the embedding covers (the tokenizer's vocabulary size). */
  vocabSize: number;
  /** Tokens per prompt. @default 77 */
  contextLength?: number;
  /** @default 15 */
  seed?: number;
}

/**
 * Writes a stand-in for CLIP's text encoder with the real one's I/O (`input_ids` int64
 * [batch, sequence] → `last_hidden_state` float32 [batch, sequence, width]) but none of
 * its 12 layers: token + position embeddings → LayerNorm. It costs next to nothing, so
 * a timing with it is the UNet's (CLIP ViT-L/14's text tower is about 6 GFLOP a prompt).
 *
 * @example
 * ```ts
 * writeTextEncoderStandIn('bench/out/gpu/sd15/text_encoder/model.onnx', { width: 768, vocabSize: 1000 });
 * ```
 */
export function writeTextEncoderStandIn(file: string, options: TextEncoderStandInOptions): number {
  const { width, vocabSize, contextLength = 77, seed = 15 } = options;
  const g = new GraphPlan('float32');
  const tokens = g.one('Gather', [g.weight('embeddings.token_embedding.weight', [vocabSize, width], { uniform: Math.sqrt(3) }), 'input_ids'], { axis: int(0) });
  const positions = g.weight('embeddings.position_embedding.weight', [contextLength, width], { uniform: 0.5 });
  const embedded = g.one('Add', [tokens, positions]);
  const normed = g.one('LayerNormalization', [embedded, g.weight('final_layer_norm.weight', [width], { fill: 1 }), g.weight('final_layer_norm.bias', [width], { fill: 0 })], {
    axis: int(-1),
    epsilon: float(1e-5),
  });
  return writePlan(file, {
    nodes: [...g.nodes, { opType: 'Identity', name: 'output_last_hidden_state', inputs: [normed], outputs: ['last_hidden_state'], attributes: [] }],
    constants: g.constants,
    weights: g.weights,
    inputs: [{ name: 'input_ids', dataType: OnnxDataType.int64, dims: ['batch_size', contextLength] }],
    outputs: [{ name: 'last_hidden_state', dataType: OnnxDataType.float32, dims: ['batch_size', contextLength, width] }],
    dtype: 'float32',
    name: 'text_encoder',
    docString: 'A stand-in for CLIP\'s text encoder (embeddings and a LayerNorm, random weights), for timing the UNet (bench/gpu.ts).',
    metadata: { medsyn_bench: 'bench/_sd15_unet.ts', weights: `random, seed ${seed}` },
    seed,
  });
}
