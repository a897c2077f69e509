/**
 * The `phantom` backend: {@link renderPhantom} behind the {@link Generator} interface,
 * on worker threads.
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ErrorCodes, invalidOption, MedsynError } from '../errors.js';
import type { GeneratedImage, GenerationRequest, Generator } from './generator.js';
import { phantomFindings } from './phantom_findings.js';
import { PHANTOM_MODEL, renderPhantom } from './render_phantom.js';
import type { PhantomJob, PhantomReply } from './_phantom_worker.js';

/** Options of {@link createPhantomGenerator}. */
export interface PhantomGeneratorOptions {
  /** Width and height of the images in pixels, 16 … 4096. @default 512 */
  size?: number;
  /**
   * Worker threads that render; a batch is split between them. 0 renders on the
   * calling thread (blocking it). The images are the same either way.
   * @default os.availableParallelism()
   */
  workers?: number;
}

/**
 * Starts the phantom backend: a deterministic procedural chest radiograph per request,
 * drawn from the report's labels, sides and sizes (see {@link phantomFindings} and
 * {@link renderPhantom}) and the request's seed. A test double for real generators: it
 * needs no weights and no GPU.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a bad size or worker count
 * @example
 * ```ts
 * const generator = await createPhantomGenerator({ size: 256, workers: 2 });
 * const [image] = await generator.generate([{ key: 's1', report, variant: 0, attempt: 0, seed: 42 }]);
 * await generator.close();
 * ```
 */
export async function createPhantomGenerator(options: PhantomGeneratorOptions = {}): Promise<Generator> {
  const size = options.size ?? 512;
  if (!Number.isInteger(size) || size < 16 || size > 4096) invalidOption('size', `must be an integer in 16 … 4096, got ${size}`);
  const workerCount = options.workers ?? availableParallelism();
  if (!Number.isInteger(workerCount) || workerCount < 0) invalidOption('workers', `must be an integer ≥ 0, got ${workerCount}`);
  const pool = Array.from({ length: workerCount }, () => new RenderWorker());

  const image = (pixels: Uint8Array): GeneratedImage => ({ pixels, width: size, height: size, channels: 1 });

  return {
    backend: 'phantom',
    model: PHANTOM_MODEL,
    async generate(requests: readonly GenerationRequest[]) {
      const jobs = requests.map((request) => ({ findings: phantomFindings(request.report), seed: request.seed }));
      if (pool.length === 0) return jobs.map(({ findings, seed }) => image(renderPhantom(findings, seed, size)));
      // Contiguous shares, as even as they can be: worker w takes images [start_w, start_{w+1}).
      const used = Math.min(pool.length, jobs.length);
      const shares = await Promise.all(
        Array.from({ length: used }, (_, w) => {
          const start = Math.floor((w * jobs.length) / used);
          const end = Math.floor(((w + 1) * jobs.length) / used);
          return pool[w]!.render(size, jobs.slice(start, end));
        }),
      );
      return shares.flat().map(image);
    },
    async close() {
      await Promise.all(pool.map((worker) => worker.close()));
    },
  };
}

/** One render thread, started on first use and again after a crash. */
class RenderWorker {
  #worker: Worker | undefined;
  #waiting = new Map<number, { resolve: (pixels: Uint8Array[]) => void; reject: (err: Error) => void }>();
  #jobs = 0;
  #closing = false;

  render(size: number, images: PhantomJob['images']): Promise<Uint8Array[]> {
    const worker = this.#worker ?? this.#start();
    const job = this.#jobs++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(job, { resolve, reject });
      worker.postMessage({ job, size, images } satisfies PhantomJob);
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    await this.#worker?.terminate();
    this.#worker = undefined;
  }

  #start(): Worker {
    const worker = new Worker(new URL('./_phantom_worker.js', import.meta.url));
    worker.on('message', (reply: PhantomReply) => {
      const waiting = this.#waiting.get(reply.job);
      this.#waiting.delete(reply.job);
      if (reply.error !== undefined) {
        waiting?.reject(new MedsynError(ErrorCodes.GENERATION_FAILED, `The phantom renderer failed: ${reply.error}`));
      } else {
        waiting?.resolve(reply.pixels!.map((pixels) => new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength)));
      }
    });
    const fail = (err: Error): void => {
      this.#worker = undefined;
      for (const { reject } of this.#waiting.values()) reject(err);
      this.#waiting.clear();
    };
    worker.on('error', (err) => fail(new MedsynError(ErrorCodes.GENERATION_FAILED, `A phantom render thread failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (!this.#closing) fail(new MedsynError(ErrorCodes.GENERATION_FAILED, `A phantom render thread exited with code ${code} (out of memory?)`));
    });
    this.#worker = worker;
    return worker;
  }
}
