/**
 * The HTTP side of the `http` backend: one undici `Pool` to the server the user named,
 * at most `concurrency` requests in flight, a timeout per request, and retries with
 * exponential back-off and full jitter on connection errors, timeouts, 429 (after its
 * Retry-After) and 5xx. Header values (auth tokens) go on every request and nowhere
 * else: error texts are scrubbed of them.
 *
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';

/** Settings of {@link OpenInferenceClient}, validated by the generator. */
export interface ClientSettings {
  headers: Record<string, string>;
  concurrency: number;
  /** Milliseconds to wait for the answer's headers, and then between chunks of its body. */
  timeout: number;
  /** Retries after the first attempt. */
  retries: number;
  /** Milliseconds: the back-off cap of retry k is retryDelay × 2^k. */
  retryDelay: number;
  maxRetryDelay: number;
  /** The longest Retry-After honoured, in milliseconds. */
  maxRetryAfter: number;
}

/** A final answer: any status, the body read whole. */
export interface ClientResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
  attempts: number;
}

/** A request that failed for good: the last status or connection error, with the attempts made. */
export class RequestFailure extends Error {
  override name = 'RequestFailure';
  constructor(
    message: string,
    readonly attempts: number,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Thrown by a `decode` callback for a 2xx body that should be fetched again (a truncated body). */
export class RetryableBody extends Error {
  override name = 'RetryableBody';
}

/** How a request ended after all its attempts. */
export type Outcome<T> = { ok: true; value: T; attempts: number } | { ok: false; response: ClientResponse };

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** A client of one inference server (see the module doc). */
export class OpenInferenceClient {
  readonly #pool: Pool;
  readonly #base: URL;
  readonly #settings: ClientSettings;
  readonly #secrets: string[];
  #inFlight = 0;
  readonly #waiting: Array<() => void> = [];

  /**
   * @param base the server's URL: origin, an optional path prefix and query (kept on every request), no credentials
   * @param secrets strings that must never appear in an error message (header values, credentials)
   */
  constructor(base: URL, settings: ClientSettings, secrets: readonly string[]) {
    this.#base = base;
    this.#settings = settings;
    this.#secrets = secrets.filter((secret) => secret.length >= 3).sort((a, b) => b.length - a.length);
    this.#pool = new Pool(base.origin, {
      connections: settings.concurrency,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: settings.timeout,
      bodyTimeout: settings.timeout,
      connect: { timeout: Math.min(settings.timeout, 30_000) },
    });
  }

  /**
   * Sends `method path` until it gets a final answer: a 2xx that `decode` accepts, or a
   * status that is not retried (4xx but 429), or the last attempt's status.
   *
   * @throws {RequestFailure} when every attempt ended without a status (connection errors, timeouts)
   *   or `decode` kept asking for a retry; what `decode` throws otherwise
   */
  async send<T>(
    method: 'GET' | 'POST',
    path: string,
    decode: (response: ClientResponse) => T,
    options: { body?: string; signal?: AbortSignal; retries?: number } = {},
  ): Promise<Outcome<T>> {
    const retries = options.retries ?? this.#settings.retries;
    for (let attempt = 0; ; attempt++) {
      const last = attempt === retries;
      let waitFor: number | undefined;
      let response: ClientResponse | undefined;
      try {
        response = await this.#once(method, path, options.body, options.signal, attempt + 1);
      } catch (err) {
        if (options.signal?.aborted) throw err;
        if (last || !isRetryable(err)) throw new RequestFailure(this.#describeError(err), attempt + 1);
      }
      if (response !== undefined) {
        if (response.status >= 200 && response.status < 300) {
          try {
            return { ok: true, value: decode(response), attempts: attempt + 1 };
          } catch (err) {
            if (!(err instanceof RetryableBody)) throw err;
            if (last) throw new RequestFailure(this.scrub(err.message), attempt + 1);
          }
        } else if (last || !(response.status === 429 || response.status >= 500)) {
          return { ok: false, response };
        } else {
          waitFor = retryAfter(response.headers['retry-after'], this.#settings.maxRetryAfter);
        }
      }
      // Full jitter: a uniform wait up to the exponential cap, so that clients that failed together do not retry together.
      const cap = Math.min(this.#settings.maxRetryDelay, this.#settings.retryDelay * 2 ** attempt);
      await sleep(waitFor ?? Math.random() * cap, undefined, options.signal ? { signal: options.signal } : {});
    }
  }

  /** `text` with every secret replaced by `[redacted]`. */
  scrub(text: string): string {
    let scrubbed = text;
    for (const secret of this.#secrets) scrubbed = scrubbed.split(secret).join('[redacted]');
    return scrubbed;
  }

  /** Closes the pool once the requests in flight are answered. */
  async close(): Promise<void> {
    if (!this.#pool.closed) await this.#pool.close();
  }

  async #once(method: 'GET' | 'POST', path: string, body: string | undefined, signal: AbortSignal | undefined, attempt: number): Promise<ClientResponse> {
    await this.#acquire(signal);
    try {
      const url = new URL(this.#base.pathname.replace(/\/+$/u, '') + path + this.#base.search, this.#base.origin);
      const headers: Record<string, string> = { ...this.#settings.headers };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const response = await this.#pool.request({
        method,
        path: url.pathname + url.search,
        headers,
        ...(body !== undefined ? { body } : {}),
        ...(signal ? { signal } : {}),
        headersTimeout: this.#settings.timeout,
        bodyTimeout: this.#settings.timeout,
      });
      const bytes = new Uint8Array(await response.body.arrayBuffer());
      return { status: response.statusCode, headers: response.headers, body: bytes, attempts: attempt };
    } finally {
      this.#release();
    }
  }

  async #acquire(signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    while (this.#inFlight >= this.#settings.concurrency) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
      if (signal?.aborted) {
        // Hand the wake-up on: another request may be waiting for this slot.
        if (this.#inFlight < this.#settings.concurrency) this.#waiting.shift()?.();
        signal.throwIfAborted();
      }
    }
    this.#inFlight++;
  }

  #release(): void {
    this.#inFlight--;
    this.#waiting.shift()?.();
  }

  #describeError(err: unknown): string {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    let detail = typeof code === 'string' ? `${message} (${code})` : message;
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') detail = `no answer within ${this.#settings.timeout} ms (${code}; raise --timeout?)`;
    if (code === 'ECONNREFUSED') detail = `connection refused (${code}; is the server running, and is the URL right?)`;
    return this.scrub(detail);
  }
}

function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  const causeCode = ((err as { cause?: { code?: unknown } }).cause ?? {}).code;
  return (typeof code === 'string' && RETRYABLE_CODES.has(code)) || (typeof causeCode === 'string' && RETRYABLE_CODES.has(causeCode));
}

/** Retry-After (seconds or an HTTP date) in milliseconds, at most `max`, or undefined when absent or unreadable. */
function retryAfter(header: string | string[] | undefined, max: number): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  let milliseconds: number;
  if (/^\d+(\.\d+)?$/u.test(trimmed)) milliseconds = Number(trimmed) * 1000;
  else {
    const date = Date.parse(trimmed);
    if (Number.isNaN(date)) return undefined;
    milliseconds = date - Date.now();
  }
  return Math.min(max, Math.max(0, milliseconds));
}
