/**
 * The `http` backend: images from a model served by an inference server that speaks the
 * KServe / Triton Open Inference Protocol v2 (Triton, KServe, Seldon MLServer, …).
 *
 * @module
 */
import { ErrorCodes, invalidOption, MedsynError } from '../errors.js';
import type { GeneratedImage, GenerationMiss, GenerationRequest, Generator } from './generator.js';
import {
  decodeImages,
  inferRequestBody,
  parseModelMetadata,
  planInference,
  serverErrorText,
  splitInferResponse,
  type InferencePlan,
  type InferenceSettings,
} from './_open_inference.js';
import { OpenInferenceClient, RequestFailure, RetryableBody, type ClientResponse } from './_open_inference_client.js';

/** Options of {@link createHttpGenerator}. */
export interface HttpGeneratorOptions {
  /** The server's base URL, e.g. `http://triton:8000` (a path prefix and query are kept; user:password@ becomes Basic auth). */
  endpoint: string;
  /** The model's name on the server. */
  model: string;
  /** A model version to use. @default undefined (the server's choice) */
  modelVersion?: string;
  /**
   * Headers sent on every request, e.g. `{ authorization: 'Bearer …' }` or lines
   * `'Authorization: Bearer …'`. Their values are never logged, put in an error message
   * or in sample metadata.
   * @default {}
   */
  headers?: Readonly<Record<string, string>> | readonly string[];
  /** Requests in flight at once (and connections in the pool). @default 4 */
  concurrency?: number;
  /** Milliseconds to wait for an answer's headers, and then between parts of its body, before the attempt counts as failed. @default 300000 */
  timeout?: number;
  /** Retries of a request after connection errors, timeouts, truncated bodies, 429 and 5xx; other 4xx are not retried. @default 4 */
  requestRetries?: number;
  /** Milliseconds: retry k waits a random time up to `retryDelay × 2^k` (full jitter). @default 500 */
  retryDelay?: number;
  /** Milliseconds: the cap of that back-off. @default 30000 */
  maxRetryDelay?: number;
  /** Milliseconds: the longest Retry-After (of a 429 or 503) honoured; a longer one is cut to it. @default 60000 */
  maxRetryAfter?: number;
  /** The most images in one infer request; a batch is split into requests of this size. @default the model config's max_batch_size where the server tells it, else the whole batch */
  maxBatch?: number;
  /** Ask for the image as binary tensor data (much smaller than JSON). @default whether the server lists the binary_tensor_data extension */
  binary?: boolean;
  /** Denoising steps, sent when the model takes a steps input. @default 50 */
  steps?: number;
  /** Classifier-free guidance scale, sent when the model takes a guidance input. @default 4 */
  guidance?: number;
  /** The unconditional prompt, sent when the model takes a negative prompt input. @default '' */
  negativePrompt?: string;
  /** Width and height in pixels, sent when the model takes width/height (or size) inputs; the image keeps the size the server returns. @default 512 */
  size?: number;
  /** 1 grayscale (RGB answers are converted, Rec. 601 luma), 3 RGB (grayscale answers are repeated). @default 1 */
  channels?: 1 | 3;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/u;
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect']);

/**
 * Starts the `http` backend: checks that the server is ready (`GET /v2/health/ready`),
 * reads its extensions (`GET /v2`), the model's metadata (`GET /v2/models/NAME`), that the
 * model is ready (`…/ready`) and, where the server has it (Triton), its configuration
 * (`…/config`, for `max_batch_size`), then maps the model's inputs and output (see
 * `_open_inference.ts` for the names and layouts it takes). Only `endpoint` is contacted.
 *
 * `generate` splits a batch into requests of at most `maxBatch` images, sends them with
 * at most `concurrency` in flight (across all calls), retries each as the options say,
 * and returns the images in request order whichever request finished first. A request
 * that still fails makes `generate` throw `MEDSYN_ERR_GENERATION_FAILED` with the
 * server's error text (its sibling requests are cancelled); an image whose pixels are
 * malformed is a `bad_image` miss for its request only. Each image's `meta` has
 * `endpoint` (no credentials or query), `modelName`, `modelVersion` and the `steps`,
 * `guidance` and `negativePrompt` sent, where the model takes them.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a bad option (a header is named, never shown),
 *   `MEDSYN_ERR_SERVER_UNAVAILABLE` when the server cannot be reached, is not ready or has no
 *   such model, `MEDSYN_ERR_BAD_RESPONSE` for metadata that is not the protocol's,
 *   `MEDSYN_ERR_BAD_MODEL` for a model whose inputs or output do not fit
 * @example
 * ```ts
 * const generator = await createHttpGenerator({
 *   endpoint: 'http://triton:8000',
 *   model: 'roentgen',
 *   headers: [`Authorization: Bearer ${process.env.TRITON_TOKEN}`],
 *   concurrency: 8,
 * });
 * try {
 *   const images = await generator.generate(requests);
 * } finally {
 *   await generator.close();
 * }
 * ```
 */
export async function createHttpGenerator(options: HttpGeneratorOptions): Promise<Generator> {
  const { base, display, secrets: urlSecrets, basicAuth } = parseEndpoint(options.endpoint);
  const modelName = options.model;
  if (typeof modelName !== 'string' || modelName.trim() === '') invalidOption('model', 'the http backend needs the model name on the server (--model NAME)');
  const modelVersion = options.modelVersion;
  if (modelVersion !== undefined && (typeof modelVersion !== 'string' || modelVersion.trim() === '')) invalidOption('modelVersion', 'must be a non-empty string');
  const headers = parseHeaders(options.headers ?? {});
  if (basicAuth !== undefined && headers['authorization'] === undefined) headers['authorization'] = basicAuth;
  const concurrency = positiveInteger('concurrency', options.concurrency ?? 4);
  const timeout = positiveInteger('timeout', options.timeout ?? 300_000);
  const retries = nonNegativeInteger('requestRetries', options.requestRetries ?? 4);
  const retryDelay = nonNegativeNumber('retryDelay', options.retryDelay ?? 500);
  const maxRetryDelay = nonNegativeNumber('maxRetryDelay', options.maxRetryDelay ?? 30_000);
  const maxRetryAfter = nonNegativeNumber('maxRetryAfter', options.maxRetryAfter ?? 60_000);
  const maxBatchOption = options.maxBatch === undefined ? undefined : positiveInteger('maxBatch', options.maxBatch);
  const steps = positiveInteger('steps', options.steps ?? 50);
  const guidance = options.guidance ?? 4;
  if (typeof guidance !== 'number' || !Number.isFinite(guidance) || guidance < 0) invalidOption('guidance', `must be a finite number ≥ 0, got ${guidance}`);
  const negativePrompt = options.negativePrompt ?? '';
  if (typeof negativePrompt !== 'string') invalidOption('negativePrompt', 'must be a string');
  const size = options.size ?? 512;
  if (!Number.isInteger(size) || size < 16 || size > 4096) invalidOption('size', `must be an integer in 16 … 4096, got ${size}`);
  const channels = options.channels ?? 1;
  if (channels !== 1 && channels !== 3) invalidOption('channels', `must be 1 or 3, got ${String(channels)}`);

  const client = new OpenInferenceClient(base, { headers, concurrency, timeout, retries, retryDelay, maxRetryDelay, maxRetryAfter }, [
    ...Object.values(headers),
    // The token alone too (`Bearer <token>`): a server may echo just that.
    ...Object.values(headers).flatMap((value) => value.split(/\s+/u).filter((part) => part.length >= 8)),
    ...urlSecrets,
  ]);
  const modelPath = `/v2/models/${encodeURIComponent(modelName)}${modelVersion !== undefined ? `/versions/${encodeURIComponent(modelVersion)}` : ''}`;
  const where = `${display} (model ${modelName}${modelVersion !== undefined ? ` version ${modelVersion}` : ''})`;

  let plan: InferencePlan;
  let binary: boolean;
  let metadataVersions: string[];
  try {
    ({ plan, binary, metadataVersions } = await connect());
  } catch (err) {
    await client.close();
    throw err;
  }
  const maxBatch = Math.min(plan.maxBatch, maxBatchOption ?? Infinity);
  const sent = new Set(plan.inputs.map((input) => input.role));
  const settings: InferenceSettings = { negativePrompt, steps, guidance, size };
  const pinnedVersion = modelVersion ?? (metadataVersions.length === 1 ? metadataVersions[0] : undefined);
  const baseMeta: Record<string, unknown> = {
    endpoint: display,
    modelName,
    ...(sent.has('steps') ? { steps } : {}),
    ...(sent.has('guidance') ? { guidance } : {}),
    ...(sent.has('negativePrompt') ? { negativePrompt } : {}),
  };

  async function connect(): Promise<{ plan: InferencePlan; binary: boolean; metadataVersions: string[] }> {
    await required('GET', '/v2/health/ready', 'the server is not ready');
    // Extensions and the model config are optional parts of the protocol: no answer means none.
    const server = await optionalJson('/v2');
    const extensions = Array.isArray(server?.['extensions']) ? server['extensions'].map(String) : [];
    const metadataResponse = await required('GET', modelPath, `it has no model ${modelName}${modelVersion !== undefined ? ` version ${modelVersion}` : ''} (is --model right?)`);
    const metadata = parseModelMetadata(parseJson(metadataResponse.body, `${display}${modelPath}`), `${display}${modelPath}`);
    await required('GET', `${modelPath}/ready`, `the model ${modelName} is not ready`);
    const config = await optionalJson(`${modelPath}/config`);
    const maxBatchSize = typeof config?.['max_batch_size'] === 'number' ? config['max_batch_size'] : undefined;
    return {
      plan: planInference(metadata, maxBatchSize, where),
      binary: options.binary ?? extensions.includes('binary_tensor_data'),
      metadataVersions: metadata.versions,
    };
  }

  /** A start-time request that must answer 2xx. */
  async function required(method: 'GET', path: string, meaning: string): Promise<ClientResponse> {
    let outcome;
    try {
      outcome = await client.send(method, path, (response) => response);
    } catch (err) {
      if (!(err instanceof RequestFailure)) throw err;
      throw new MedsynError(ErrorCodes.SERVER_UNAVAILABLE, `Cannot reach the inference server ${display}: ${method} ${path} failed after ${plural(err.attempts, 'attempt')}: ${err.message}`);
    }
    if (outcome.ok) return outcome.value;
    const { response } = outcome;
    throw new MedsynError(
      ErrorCodes.SERVER_UNAVAILABLE,
      client.scrub(`The inference server ${display} cannot be used: ${meaning}: ${method} ${path} answered HTTP ${response.status}${serverText(response)}`),
    );
  }

  async function optionalJson(path: string): Promise<Record<string, unknown> | undefined> {
    try {
      const outcome = await client.send('GET', path, (response) => response, { retries: 0 });
      if (!outcome.ok) return undefined;
      const parsed: unknown = JSON.parse(Buffer.from(outcome.value.body).toString('utf8'));
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }

  /** One infer request for `requests`, retried as the options say. */
  async function infer(requests: readonly GenerationRequest[], signal: AbortSignal): Promise<Array<GeneratedImage | GenerationMiss>> {
    const body = inferRequestBody(plan, requests, settings, binary);
    const decode = (response: ClientResponse): { images: Array<GeneratedImage | GenerationMiss>; version: string | undefined } => {
      const headerLength = response.headers['inference-header-content-length'];
      let parsed;
      try {
        parsed = splitInferResponse(response.body, Array.isArray(headerLength) ? headerLength[0] : headerLength, where);
      } catch (err) {
        // A body cut short is worth another try; anything it decodes to is not.
        throw new RetryableBody((err as Error).message);
      }
      const version = parsed.header['model_version'];
      return { images: decodeImages(parsed, plan, requests.length, channels, where), version: typeof version === 'string' ? version : undefined };
    };
    const count = plural(requests.length, 'image');
    let outcome;
    try {
      outcome = await client.send('POST', `${modelPath}/infer`, decode, { body, signal });
    } catch (err) {
      if (err instanceof RequestFailure) {
        throw new MedsynError(ErrorCodes.GENERATION_FAILED, `The inference server ${where} failed on ${count}: ${err.message} (after ${plural(err.attempts, 'attempt')})`);
      }
      if (err instanceof MedsynError) throw new MedsynError(err.code, client.scrub(err.message));
      throw err;
    }
    if (!outcome.ok) {
      const { response } = outcome;
      throw new MedsynError(
        ErrorCodes.GENERATION_FAILED,
        client.scrub(`The inference server ${where} failed on ${count}: HTTP ${response.status}${serverText(response)} (after ${plural(response.attempts, 'attempt')})`),
      );
    }
    const version = outcome.value.version ?? pinnedVersion;
    const meta = { ...baseMeta, ...(version !== undefined ? { modelVersion: version } : {}) };
    return outcome.value.images.map((image) => ('miss' in image ? image : { ...image, meta: { ...meta } }));
  }

  return {
    backend: 'http',
    // The next batch's requests go out while the last ones of this batch finish; the pool caps what is in flight.
    concurrentBatches: 2,
    model: pinnedVersion !== undefined ? `${modelName}@${pinnedVersion}` : modelName,
    async generate(requests) {
      if (requests.length === 0) return [];
      const chunks: GenerationRequest[][] = [];
      for (let start = 0; start < requests.length; start += maxBatch) chunks.push(requests.slice(start, start + maxBatch));
      const controller = new AbortController();
      let firstError: unknown;
      const settled = await Promise.allSettled(
        chunks.map((chunk) =>
          infer(chunk, controller.signal).catch((err: unknown) => {
            // The batch fails as a whole: stop its other requests at once.
            if (firstError === undefined) firstError = err;
            controller.abort();
            throw err;
          }),
        ),
      );
      if (firstError !== undefined) {
        if (firstError instanceof MedsynError) throw firstError;
        throw new MedsynError(ErrorCodes.GENERATION_FAILED, client.scrub(`The inference server ${where} failed: ${(firstError as Error).message}`), { cause: firstError });
      }
      return settled.flatMap((result) => (result.status === 'fulfilled' ? result.value : []));
    },
    close: () => client.close(),
  };
}

/** The endpoint URL, the form shown in messages and metadata, and the secrets it holds. */
function parseEndpoint(endpoint: string): { base: URL; display: string; secrets: string[]; basicAuth?: string } {
  if (typeof endpoint !== 'string' || endpoint.trim() === '') invalidOption('endpoint', 'the http backend needs the server URL (--endpoint http://HOST:PORT)');
  let url: URL;
  try {
    url = new URL(endpoint.trim());
  } catch {
    // The text may hold credentials: name the problem, not the value.
    return invalidOption('endpoint', 'not a URL (expected e.g. http://triton:8000)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') invalidOption('endpoint', `must be an http:// or https:// URL, got ${url.protocol}`);
  const secrets: string[] = [];
  let basicAuth: string | undefined;
  if (url.username !== '' || url.password !== '') {
    let user: string;
    let password: string;
    try {
      user = decodeURIComponent(url.username);
      password = decodeURIComponent(url.password);
    } catch {
      return invalidOption('endpoint', 'the user name or password in the URL is not percent-encoded correctly');
    }
    const token = Buffer.from(`${user}:${password}`, 'utf8').toString('base64');
    basicAuth = `Basic ${token}`;
    secrets.push(url.username, url.password, user, password, token);
  }
  for (const [, value] of url.searchParams) secrets.push(value);
  const base = new URL(url.href);
  base.username = '';
  base.password = '';
  base.hash = '';
  const display = `${base.origin}${base.pathname.replace(/\/+$/u, '')}`;
  return { base, display, secrets: secrets.filter((secret) => secret !== ''), ...(basicAuth !== undefined ? { basicAuth } : {}) };
}

/** Header lines or a record to a record of lower-case names; values are checked but never shown. */
function parseHeaders(headers: Readonly<Record<string, string>> | readonly string[]): Record<string, string> {
  const entries: Array<[string, string]> = [];
  if (Array.isArray(headers)) {
    for (const [i, line] of (headers as readonly string[]).entries()) {
      const colon = typeof line === 'string' ? line.indexOf(':') : -1;
      if (colon <= 0) invalidOption('headers', `header ${i + 1} is not 'Name: value'`);
      entries.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
    }
  } else {
    entries.push(...Object.entries(headers as Record<string, string>));
  }
  const parsed: Record<string, string> = {};
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name)) invalidOption('headers', `${JSON.stringify(name.slice(0, 40))} is not a header name`);
    if (RESERVED_HEADERS.has(lower)) invalidOption('headers', `${name} is set by medsyn itself`);
    if (typeof value !== 'string' || /[\r\n\0]/u.test(value)) invalidOption('headers', `the value of ${name} is not a one-line string`);
    if (parsed[lower] !== undefined) invalidOption('headers', `${name} is given twice`);
    parsed[lower] = value;
  }
  return parsed;
}

function parseJson(body: Uint8Array, where: string): unknown {
  try {
    return JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (err) {
    throw new MedsynError(ErrorCodes.BAD_RESPONSE, `Bad answer from ${where}: the body is not JSON (${(err as Error).message})`, { cause: err });
  }
}

/** `: <the server's error text>`, or nothing when the body is empty. */
function serverText(response: ClientResponse): string {
  const text = serverErrorText(response.body);
  return text === '' ? '' : `: ${text}`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function positiveInteger(option: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) invalidOption(option, `must be a positive integer, got ${value}`);
  return value;
}

function nonNegativeInteger(option: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) invalidOption(option, `must be an integer ≥ 0, got ${value}`);
  return value;
}

function nonNegativeNumber(option: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) invalidOption(option, `must be a number ≥ 0, got ${value}`);
  return value;
}
