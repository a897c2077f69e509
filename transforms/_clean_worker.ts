/**
 * The worker thread of {@link cleanInWorkers}: inflates zip batches, cleans records and
 * sends back the clean reports as one transferred buffer of JSON lines (see
 * `_clean_batch.ts`), so the main thread only reads and writes. Private to transforms/.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { CleanBatchRequest, CleanWorkerData } from './_clean_messages.js';
import { cleanBatch, serializeError } from './_clean_batch.js';
import { createBatchCleaner } from './_clean_setup.js';

const data = workerData as CleanWorkerData;
const port = parentPort!;

async function start(): Promise<void> {
  const clean = await createBatchCleaner(data);
  port.on('message', (request: CleanBatchRequest) => {
    const { reply, transfer } = cleanBatch(request, clean, data);
    port.postMessage(reply, transfer);
  });
  port.postMessage({ ready: true });
}

start().catch((err: unknown) => port.postMessage({ startError: serializeError(err) }));
