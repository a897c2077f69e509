/**
 * A KServe / Triton Open Inference Protocol v2 server for the http backend's tests, on
 * 127.0.0.1: it draws the phantom for each prompt and seed, answers in JSON or with
 * binary tensor data, in the image layout and datatype asked for, checks every infer
 * request against its own metadata, records what it was sent, and injects failures.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { phantomFindings } from '../../models/phantom_findings.js';
import { renderPhantom } from '../../models/render_phantom.js';

export interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
}

/** A failure to inject instead of an answer. */
export type Fault =
  | { status: number; body?: string; headers?: Record<string, string> }
  /** Destroy the connection without an answer. */
  | 'reset'
  /** Never answer. */
  | 'hang'
  /** 200 with a body cut short (JSON that does not parse). */
  | 'truncate'
  /** 200 whose image for this index (in the request) has a value out of range (JSON mode only). */
  | { badPixel: number };

export interface FakeServerOptions {
  model?: string;
  versions?: string[];
  inputs?: Tensor[];
  outputs?: Tensor[];
  /** Triton's max_batch_size, served on …/config; undefined: no config endpoint (404). */
  maxBatchSize?: number;
  /** Advertise binary_tensor_data in GET /v2. @default false */
  binaryExtension?: boolean;
  /** How the image is laid out. @default 'bhw' */
  layout?: 'bhw' | 'bhwc' | 'bchw';
  /** Channels for bhwc/bchw: the gray phantom repeated. @default 3 */
  channels?: number;
  datatype?: 'UINT8' | 'FP32' | 'FP16';
  size?: number;
  /** GET /v2/health/ready answers 503 this many times first (Infinity: never ready). @default 0 */
  notReadyFor?: number;
  modelReady?: boolean;
  /** Require this exact authorization header, else 401 (with the header echoed in the error, as a careless server would). */
  authorization?: string;
  /** Milliseconds before answering infer call `n` (0-based, in arrival order). */
  delay?: (call: number, prompts: string[]) => number;
  /** A failure for infer call `n`, or undefined to answer. */
  fault?: (call: number, prompts: string[]) => Fault | undefined;
  /** Replace the metadata body (e.g. with text that is not JSON). */
  metadataBody?: string;
}

export interface InferCall {
  prompts: string[];
  seeds: number[];
  inputs: Record<string, { shape: number[]; datatype: string; data: unknown[] }>;
  binaryRequested: boolean;
  headers: IncomingMessage['headers'];
}

export interface FakeServer {
  url: string;
  /** Every infer request that parsed, in arrival order (retries included). */
  calls: InferCall[];
  /** Every request's method and path, in arrival order. */
  paths: string[];
  /** Every request's headers. */
  headers: Array<IncomingMessage['headers']>;
  /** The most infer requests in flight at once. */
  maxInFlight: () => number;
  close: () => Promise<void>;
}

/** The phantom the server draws for a prompt and seed, 8-bit gray. */
export function fakeImage(prompt: string, seed: number, size: number): Uint8Array {
  return renderPhantom(phantomFindings({ labels: {}, attributes: {}, caption: prompt }), seed, size);
}

export const DEFAULT_INPUTS: Tensor[] = [
  { name: 'prompt', datatype: 'BYTES', shape: [-1] },
  { name: 'seed', datatype: 'INT64', shape: [-1] },
  { name: 'num_inference_steps', datatype: 'INT32', shape: [-1, 1] },
  { name: 'guidance_scale', datatype: 'FP32', shape: [-1, 1] },
];

export async function startFakeInferenceServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  const model = options.model ?? 'roentgen';
  const size = options.size ?? 16;
  const layout = options.layout ?? 'bhw';
  const channels = layout === 'bhw' ? 1 : (options.channels ?? 3);
  const datatype = options.datatype ?? 'UINT8';
  const inputs = options.inputs ?? DEFAULT_INPUTS;
  const imageShape = layout === 'bhw' ? [size, size] : layout === 'bhwc' ? [size, size, channels] : [channels, size, size];
  const outputs = options.outputs ?? [{ name: 'image', datatype, shape: [-1, ...imageShape] }];
  let notReady = options.notReadyFor ?? 0;
  const calls: InferCall[] = [];
  const paths: string[] = [];
  const headers: Array<IncomingMessage['headers']> = [];
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let maxInFlight = 0;
  let inferCount = 0;

  const json = (response: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void => {
    const text = JSON.stringify(body);
    response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
    response.end(text);
  };

  async function infer(request: IncomingMessage, response: ServerResponse, body: Buffer): Promise<void> {
    const call = inferCount++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      let parsed: { inputs: Array<{ name: string; shape: number[]; datatype: string; data: unknown[] }>; outputs?: Array<{ name: string; parameters?: { binary_data?: boolean } }> };
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return json(response, 400, { error: 'request body is not JSON' });
      }
      const byName = Object.fromEntries(parsed.inputs.map((input) => [input.name, input]));
      // Check the request as Triton would: every declared input, with its type, and one batch size.
      let batch: number | undefined;
      for (const declared of inputs) {
        const given = byName[declared.name];
        if (given === undefined) return json(response, 400, { error: `expected input ${declared.name}` });
        if (given.datatype !== declared.datatype) return json(response, 400, { error: `input ${declared.name}: expected ${declared.datatype}, got ${given.datatype}` });
        if (given.shape.length !== declared.shape.length) return json(response, 400, { error: `input ${declared.name}: bad rank ${JSON.stringify(given.shape)}` });
        const count = given.shape.reduce((a, b) => a * b, 1);
        if (given.data.length !== count) return json(response, 400, { error: `input ${declared.name}: ${given.data.length} values for shape ${JSON.stringify(given.shape)}` });
        if (declared.shape.length > 0) {
          if (batch !== undefined && given.shape[0] !== batch) return json(response, 400, { error: 'inputs disagree on the batch size' });
          batch = given.shape[0];
        }
      }
      const prompts = (byName['prompt'] ?? byName[inputs[0]!.name])!.data.map(String);
      const seedInput = inputs.find((input) => /seed/u.test(input.name));
      const seeds = (seedInput ? byName[seedInput.name]!.data : prompts.map(() => 0)).map(Number);
      const binaryRequested = parsed.outputs?.[0]?.parameters?.binary_data === true;
      calls.push({ prompts, seeds, inputs: byName, binaryRequested, headers: request.headers });
      if (options.maxBatchSize !== undefined && options.maxBatchSize > 0 && prompts.length > options.maxBatchSize) {
        return json(response, 400, { error: `batch of ${prompts.length} over max_batch_size ${options.maxBatchSize}` });
      }
      const wait = options.delay?.(call, prompts) ?? 0;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const fault = options.fault?.(call, prompts);
      if (fault === 'hang') return;
      if (fault === 'reset') {
        request.socket.destroy();
        return;
      }
      if (fault === 'truncate') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{"model_name": "roentgen", "outputs": [{"name": "ima');
        return;
      }
      if (typeof fault === 'object' && 'status' in fault) {
        response.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
        response.end(fault.body ?? JSON.stringify({ error: `injected ${fault.status}` }));
        return;
      }
      const perImage = size * size * channels;
      const values = new Float64Array(prompts.length * perImage);
      prompts.forEach((prompt, i) => {
        const gray = fakeImage(prompt, seeds[i]!, size);
        for (let p = 0; p < size * size; p++) {
          for (let c = 0; c < channels; c++) {
            const index = layout === 'bchw' ? c * size * size + p : p * channels + c;
            values[i * perImage + index] = datatype === 'UINT8' ? gray[p]! : gray[p]! / 255;
          }
        }
      });
      const shape = [prompts.length, ...imageShape];
      const header: Record<string, unknown> = { model_name: model, model_version: options.versions?.[0] ?? '1' };
      if (binaryRequested) {
        const bytes = datatype === 'UINT8' ? Buffer.from(Uint8Array.from(values)) : datatype === 'FP32' ? Buffer.from(Float32Array.from(values).buffer) : halves(values);
        header['outputs'] = [{ name: outputs[0]!.name, datatype, shape, parameters: { binary_data_size: bytes.byteLength } }];
        const head = Buffer.from(JSON.stringify(header));
        response.writeHead(200, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.byteLength) });
        response.end(Buffer.concat([head, bytes]));
        return;
      }
      const data: unknown[] = Array.from(values);
      if (typeof fault === 'object' && 'badPixel' in fault) data[fault.badPixel * perImage + 3] = 300;
      header['outputs'] = [{ name: outputs[0]!.name, datatype, shape, data }];
      json(response, 200, header);
    } finally {
      inFlight--;
    }
  }

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://x');
      const path = url.pathname;
      paths.push(`${request.method} ${request.url}`);
      headers.push(request.headers);
      if (options.authorization !== undefined && request.headers.authorization !== options.authorization) {
        return json(response, 401, { error: `authorization ${String(request.headers.authorization)} is not valid` });
      }
      const modelPath = new RegExp(`^/(?:[^/]+/)*v2/models/${model}(?:/versions/[^/]+)?`, 'u');
      const rest = modelPath.test(path) ? path.replace(modelPath, '') : undefined;
      if (request.method === 'GET' && path.endsWith('/v2/health/ready')) {
        if (notReady > 0) {
          notReady--;
          return json(response, 503, { error: 'server is starting' });
        }
        return json(response, 200, {});
      }
      if (request.method === 'GET' && path.endsWith('/v2')) {
        return json(response, 200, { name: 'fake', version: '2.0', extensions: options.binaryExtension ? ['classification', 'binary_tensor_data'] : [] });
      }
      if (request.method === 'GET' && rest === '') {
        if (options.metadataBody !== undefined) {
          response.writeHead(200, { 'content-type': 'application/json' });
          return response.end(options.metadataBody);
        }
        return json(response, 200, { name: model, versions: options.versions ?? ['1'], platform: 'python', inputs, outputs });
      }
      if (request.method === 'GET' && rest === '/ready') return json(response, options.modelReady === false ? 400 : 200, options.modelReady === false ? { error: 'model is loading' } : {});
      if (request.method === 'GET' && rest === '/config' && options.maxBatchSize !== undefined) return json(response, 200, { name: model, max_batch_size: options.maxBatchSize });
      if (request.method === 'POST' && rest === '/infer') {
        void infer(request, response, Buffer.concat(chunks));
        return;
      }
      json(response, 404, { error: `no route ${request.method} ${path}` });
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    paths,
    headers,
    maxInFlight: () => maxInFlight,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Values as little-endian IEEE 754 half floats (round to nearest). */
function halves(values: Float64Array): Buffer {
  const out = Buffer.alloc(values.length * 2);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  values.forEach((value, i) => {
    f32[0] = value;
    const bits = u32[0]!;
    const sign = (bits >>> 16) & 0x8000;
    const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
    const mantissa = bits & 0x7fffff;
    let half: number;
    if (value === 0) half = sign;
    else if (exponent <= 0) half = sign | Math.round((mantissa | 0x800000) / 2 ** (14 - exponent));
    else {
      half = sign | (exponent << 10) | (mantissa >>> 13);
      if (mantissa & 0x1000) half++;
    }
    out.writeUInt16LE(half, i * 2);
  });
  return out;
}
