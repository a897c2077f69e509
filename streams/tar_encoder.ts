/**
 * Samples to a WebDataset tar stream.
 *
 * @module
 */
import { ErrorCodes, MedsynError } from '../errors.js';
import { BLOCK, encodeSampleEntries, resolveMtime, sampleProblem } from './_tar_format.js';
import type { Sample } from './sample.js';

/** Options of {@link encodeSamples}. */
export interface TarEncoderOptions {
  /**
   * The modification time of every entry, in whole seconds since 1970. A fixed
   * value makes the same samples give byte-identical tars.
   * @default 0
   */
  mtime?: number;
}

/**
 * Encodes samples as one uncompressed tar in WebDataset layout: the parts of a
 * sample as adjacent regular files `<key>.<ext>`, extensions in sorted order,
 * plain ustar headers with mode 0644, uid/gid 0, no user or group names and a
 * fixed mtime (a PAX `path` record only for a name over 100 bytes), then the
 * end-of-archive marker. The same samples give the same bytes.
 *
 * Keys must already be safe (see `sanitizeKey`); the encoder does not rename or
 * deduplicate (the shard writer does).
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_SAMPLE` for a key or part name that breaks
 * the WebDataset naming rules, or a sample without parts;
 * `MEDSYN_ERR_INVALID_OPTION` for a bad `mtime`
 * @example
 * ```ts
 * import { Readable } from 'node:stream';
 * const samples = [{ key: 's1', parts: { txt: Buffer.from('No acute findings.'), json: Buffer.from('{}') } }];
 * Readable.from(encodeSamples(toAsync(samples))).pipe(process.stdout);
 * ```
 */
export async function* encodeSamples(samples: AsyncIterable<Sample> | Iterable<Sample>, options: TarEncoderOptions = {}): AsyncGenerator<Uint8Array> {
  const mtime = resolveMtime(options.mtime);
  for await (const sample of samples) {
    const problem = sampleProblem(sample);
    if (problem) {
      throw new MedsynError(ErrorCodes.BAD_SAMPLE, `Cannot encode sample: ${problem.message} (sanitize keys with sanitizeKey)`);
    }
    yield* encodeSampleEntries(sample, mtime).chunks;
  }
  yield new Uint8Array(2 * BLOCK);
}
