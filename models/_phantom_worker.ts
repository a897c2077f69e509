/**
 * The worker thread of the phantom generator: renders the images it is sent and sends
 * their pixels back without a copy. Private to models/.
 */
import { parentPort } from 'node:worker_threads';
import type { PhantomFindings } from './phantom_findings.js';
import { renderPhantom } from './render_phantom.js';

/** A share of a batch to render. */
export interface PhantomJob {
  job: number;
  size: number;
  images: Array<{ findings: PhantomFindings; seed: number }>;
}

/** The rendered pixels, in the order asked, or what went wrong. */
export interface PhantomReply {
  job: number;
  pixels?: Uint8Array[];
  error?: string;
}

const port = parentPort!;
port.on('message', (request: PhantomJob) => {
  try {
    const pixels = request.images.map(({ findings, seed }) => renderPhantom(findings, seed, request.size));
    port.postMessage({ job: request.job, pixels } satisfies PhantomReply, pixels.map((image) => image.buffer as ArrayBuffer));
  } catch (err) {
    port.postMessage({ job: request.job, error: err instanceof Error ? err.message : String(err) } satisfies PhantomReply);
  }
});
