/**
 * The worker thread of {@link cleanInWorkers}: inflates zip batches, cleans records and
 * sends back each result serialised, so the main thread only reads, joins and writes.
 * Private to transforms/.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadClipTokenizer } from '../models/clip_tokenizer.js';
import { MedsynError } from '../errors.js';
import { isReject } from '../records.js';
import { decodeZipBatch } from '../streams/zip_reports.js';
import { belongsTo } from '../streams/partition.js';
import { createCleaner } from './clean_report.js';
import { wordCountApproximation } from './fit_prompt.js';
import { promptDigest } from './_clean_policy.js';
import type { Reject } from '../records.js';
import type { CleanBatchReply, CleanBatchRequest, CleanWorkerData } from './_clean_messages.js';

const data = workerData as CleanWorkerData;
const port = parentPort!;

async function start(): Promise<void> {
  let tokenCounter = wordCountApproximation(data.maxTokens ?? 77);
  if (data.tokenizer !== undefined) {
    const tokenizer = await loadClipTokenizer(data.tokenizer);
    tokenCounter = data.maxTokens === undefined ? tokenizer : { ...tokenizer, maxTokens: data.maxTokens };
  }
  const clean = createCleaner({ ...data.clean, tokenCounter });
  port.on('message', (request: CleanBatchRequest) => {
    try {
      const decoded = request.zip ? decodeZipBatch(request.zip) : request.items!;
      const partition = data.partition;
      const records = partition ? decoded.filter((record) => belongsTo(record, partition)) : decoded;
      const results: Array<string | Reject> = new Array(records.length);
      const digests: Array<string | undefined> | undefined = data.dedupe ? new Array(records.length) : undefined;
      const ids: Array<string | undefined> | undefined = data.dedupe ? new Array(records.length) : undefined;
      for (let i = 0; i < records.length; i++) {
        const record = records[i]!;
        const result = isReject(record) ? record : clean(record);
        if (isReject(result)) results[i] = result;
        else {
          results[i] = JSON.stringify(result);
          if (digests && ids) {
            digests[i] = promptDigest(result.prompt);
            ids[i] = result.id;
          }
        }
      }
      port.postMessage((digests ? { batch: request.batch, results, digests, ids } : { batch: request.batch, results }) satisfies CleanBatchReply);
    } catch (err) {
      port.postMessage({ batch: request.batch, error: serializeError(err) } satisfies CleanBatchReply);
    }
  });
  port.postMessage({ ready: true });
}

function serializeError(err: unknown): NonNullable<CleanBatchReply['error']> {
  if (err instanceof MedsynError) return { message: err.message, code: err.code };
  return { message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
}

start().catch((err: unknown) => port.postMessage({ startError: serializeError(err) }));
