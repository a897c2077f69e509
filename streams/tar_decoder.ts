/**
 * A tar stream to WebDataset samples, on tar-stream's `extract()`.
 *
 * @module
 */
import tar from 'tar-stream';
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';
import { padding, splitEntryName } from './_tar_format.js';
import type { Sample, SampleReject } from './sample.js';

/** Options of {@link decodeSamples}. */
export interface TarDecoderOptions {
  /**
   * Names the input in errors, rejects and each sample's `url`: a shard path or
   * URL, `-` for stdin.
   * @default '-'
   */
  source?: string;
  /**
   * What to do with an entry that is not a sample part (no key or no extension,
   * like `README`) and with a sample whose part repeats: `skip` it, passing a
   * reject to `onReject`, or `fail` with `MEDSYN_ERR_REJECTED`. Broken structure
   * (bad headers, truncation, unsafe entries) always fails.
   * @default 'skip'
   */
  onError?: 'skip' | 'fail';
  /**
   * Receives every skipped entry or sample. Without it each one is reported with
   * `process.emitWarning`, so nothing is dropped silently.
   * @default undefined
   */
  onReject?: (reject: SampleReject) => void;
  /**
   * The largest part accepted, in bytes; an entry that declares more fails before
   * any of it is read (a hostile or corrupt size field).
   * @default 268435456 (256 MiB)
   */
  maxPartBytes?: number;
}

/** An entry as tar-stream yields it; `byteOffset` (where the data starts) is set but not in its types. */
interface ExtractEntry extends AsyncIterable<Buffer> {
  header: Omit<tar.Header, 'type'> & { type: string | null; byteOffset?: number };
  /** Byte offset of the entry's (last) header block. */
  offset?: number;
}

interface Pending {
  key: string;
  parts: Record<string, Uint8Array>;
  offset: number;
  problem?: string;
}

const UNSAFE_TYPES = new Set(['link', 'symlink', 'character-device', 'block-device', 'fifo']);

/**
 * Decodes an uncompressed tar (ustar, GNU or PAX, from medsyn or any other tool;
 * several tars concatenated read as one) and groups its entries into samples by
 * webdataset's rule: the key is the entry path up to the first dot of its base
 * name, the extension is the rest, and adjacent entries with the same key form
 * one sample. A leading `./` is dropped; directory entries are skipped. Chunks
 * may be split anywhere.
 *
 * @throws {MedsynError} `MEDSYN_ERR_CORRUPT_TAR` (bad header, truncated data, no
 * end-of-archive marker, a size over `maxPartBytes`) and `MEDSYN_ERR_UNSAFE_ENTRY`
 * (absolute name, `..` component, link, device, fifo, unknown entry type), each
 * naming `source` and the byte offset; `MEDSYN_ERR_EMPTY_INPUT` for no bytes at
 * all; `MEDSYN_ERR_READ_FAILED` when `bytes` fails; `MEDSYN_ERR_REJECTED` for a
 * bad entry under `onError: 'fail'`
 * @example
 * ```ts
 * for await (const sample of decodeSamples(createReadStream('shard-000000.tar'), { source: 'shard-000000.tar' })) {
 *   console.log(sample.key, Object.keys(sample.parts));
 * }
 * ```
 */
export async function* decodeSamples(bytes: AsyncIterable<Uint8Array>, options: TarDecoderOptions = {}): AsyncGenerator<Sample> {
  const source = options.source ?? '-';
  const onError = options.onError ?? 'skip';
  if (onError !== 'skip' && onError !== 'fail') invalidOption('onError', `must be 'skip' or 'fail', got ${String(onError)}`);
  const maxPartBytes = options.maxPartBytes ?? 256 * 1024 * 1024;
  if (!Number.isSafeInteger(maxPartBytes) || maxPartBytes < 0) {
    invalidOption('maxPartBytes', `must be a whole number of bytes, got ${String(options.maxPartBytes)}`);
  }
  const onReject =
    options.onReject ??
    ((reject: SampleReject) => process.emitWarning(`skipped ${reject.reason} in ${reject.source} at byte ${reject.offset}: ${reject.message}`));

  // v7 tars have no magic; the header checksum is still checked.
  const extract = tar.extract({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0]);
  const input = bytes[Symbol.asyncIterator]();
  let fed = 0;
  let firstBytes: Uint8Array | undefined;
  let feedError: unknown;
  /** Where the block after the last entry's data starts: the next header, or the end-of-archive marker. */
  let entriesEnd = 0;
  let entryCount = 0;

  const feeding = (async () => {
    try {
      for (;;) {
        const { value, done } = await input.next();
        if (done || extract.destroyed) break;
        const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
        if (chunk.byteLength === 0) continue;
        firstBytes ??= chunk.subarray(0, 4);
        fed += chunk.byteLength;
        if (!extract.write(chunk)) await drainOrClose(extract);
      }
      if (!extract.destroyed) extract.end(null);
    } catch (err) {
      feedError = err;
      extract.destroy(err as Error);
    }
  })();

  const fail = (err: unknown): MedsynError => {
    if (err instanceof MedsynError) return err;
    if (feedError !== undefined) {
      if (feedError instanceof MedsynError) return feedError;
      return new MedsynError(ErrorCodes.READ_FAILED, `Cannot read ${source}: ${(feedError as Error).message ?? String(feedError)}`, {
        file: source,
        offset: fed,
        cause: feedError,
      });
    }
    return corruption(source, err, fed, entriesEnd, firstBytes);
  };

  const reject = (problem: Omit<SampleReject, 'source'>): void => {
    const full: SampleReject = { ...problem, source };
    if (onError === 'fail') {
      throw new MedsynError(
        ErrorCodes.REJECTED,
        `Rejected ${full.reason} in ${source} at byte ${full.offset}: ${full.message} (skip such samples with --on-error skip)`,
        { file: source, ...(full.offset === undefined ? {} : { offset: full.offset }) },
      );
    }
    onReject(full);
  };

  let current: Pending | undefined;
  const finish = (pending: Pending): Sample | undefined => {
    if (pending.problem !== undefined) {
      reject({ id: pending.key, offset: pending.offset, reason: 'bad_entry', message: pending.problem });
      return undefined;
    }
    return { key: pending.key, parts: pending.parts, url: source, offset: pending.offset };
  };

  try {
    for await (const item of extract as AsyncIterable<unknown>) {
      const entry = item as ExtractEntry;
      const header = entry.header;
      const headerOffset = entry.offset ?? entriesEnd;
      const dataOffset = header.byteOffset ?? headerOffset + 512;
      const size = header.size ?? 0;
      const name = checkName(source, header.name, headerOffset);
      const type = header.type;
      if (type !== 'file' && type !== 'contiguous-file' && type !== 'directory') {
        const what =
          type !== null && UNSAFE_TYPES.has(type)
            ? `a ${type} (only regular files are samples)`
            : `not a regular file (type ${type ?? 'unknown: sparse, volume label or other'}; only regular files are samples)`;
        throw new MedsynError(ErrorCodes.UNSAFE_ENTRY, `Cannot read ${source}: entry ${JSON.stringify(name)} at byte ${headerOffset} is ${what}`, {
          file: source,
          offset: headerOffset,
        });
      }
      if (size > maxPartBytes) {
        throw new MedsynError(
          ErrorCodes.CORRUPT_TAR,
          `Cannot read ${source}: entry ${JSON.stringify(name)} at byte ${headerOffset} declares ${size} bytes, more than the ${maxPartBytes} allowed (a corrupt size field? raise maxPartBytes for parts this big)`,
          { file: source, offset: headerOffset },
        );
      }
      const data = await readEntry(entry, size);
      entriesEnd = dataOffset + size + padding(size);
      entryCount++;
      if (type === 'directory') continue;

      const split = splitEntryName(name);
      if (split === undefined) {
        if (current) {
          const done = finish(current);
          current = undefined;
          if (done) yield done;
        }
        reject({ offset: headerOffset, reason: 'bad_entry', message: `entry ${JSON.stringify(name)} has no key or no extension (expected <key>.<ext>)` });
        continue;
      }
      if (current && current.key === split.key) {
        if (Object.hasOwn(current.parts, split.extension)) {
          current.problem ??= `part ${split.extension} of sample ${split.key} appears twice (second at byte ${headerOffset})`;
        } else {
          current.parts[split.extension] = data;
        }
        continue;
      }
      if (current) {
        const done = finish(current);
        current = undefined;
        if (done) yield done;
      }
      // No prototype: a hostile entry named `a.__proto__` must stay a part.
      const parts = Object.create(null) as Record<string, Uint8Array>;
      parts[split.extension] = data;
      current = { key: split.key, parts, offset: headerOffset };
    }
    if (feedError !== undefined) throw feedError;
  } catch (err) {
    throw fail(err);
  } finally {
    if (!extract.destroyed) extract.destroy(null);
    // Stop the source too (a file stream, an HTTP body) when the consumer stopped early. Not awaited:
    // a source waiting for bytes that will never come must not hold the consumer; the feeder ends on its own.
    input.return?.()?.catch(() => undefined);
    void feeding;
  }
  if (fed === 0) {
    throw new MedsynError(ErrorCodes.EMPTY_INPUT, `Cannot read ${source}: it is empty (expected a tar stream of samples)`, { file: source });
  }
  if (fed - entriesEnd < 1024) {
    throw new MedsynError(
      ErrorCodes.CORRUPT_TAR,
      `Cannot read ${source}: truncated at byte ${fed}, no end-of-archive marker after ${entryCount} entries (was the writer killed before it finished?)`,
      { file: source, offset: fed },
    );
  }
  if (current) {
    const done = finish(current);
    if (done) yield done;
  }
}

/** Refuses names that would escape a folder on extraction; returns the name without a leading `./`. */
function checkName(source: string, raw: string, offset: number): string {
  let name = raw;
  while (name.startsWith('./')) name = name.slice(2);
  const unsafe = name.startsWith('/')
    ? 'is absolute'
    : name.split('/').includes('..')
      ? 'has a .. component'
      : /^[A-Za-z]:[\\/]/u.test(name)
        ? 'has a drive letter'
        : undefined;
  if (unsafe) {
    throw new MedsynError(ErrorCodes.UNSAFE_ENTRY, `Cannot read ${source}: entry ${JSON.stringify(raw)} at byte ${offset} ${unsafe} (refused: it could write outside a folder)`, {
      file: source,
      offset,
    });
  }
  return name;
}

async function readEntry(entry: ExtractEntry, size: number): Promise<Uint8Array> {
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  for await (const chunk of entry) {
    if (first === undefined) first = chunk;
    else (chunks ??= [first]).push(chunk);
  }
  if (chunks) return Buffer.concat(chunks, size);
  return first ?? new Uint8Array(0);
}

function drainOrClose(stream: tar.Extract): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** Turns what tar-stream throws into a message that names the input and the byte. */
function corruption(source: string, err: unknown, fed: number, entriesEnd: number, firstBytes: Uint8Array | undefined): MedsynError {
  const message = (err as Error)?.message ?? String(err);
  const data = (offset: number) => ({ file: source, offset, cause: err });
  if (/Unexpected end of data/u.test(message)) {
    return new MedsynError(ErrorCodes.CORRUPT_TAR, `Cannot read ${source}: truncated at byte ${fed}, in the middle of an entry (was the writer killed before it finished?)`, data(fed));
  }
  if (/Invalid tar header|unknown format/u.test(message)) {
    const gzipped = firstBytes !== undefined && firstBytes[0] === 0x1f && firstBytes[1] === 0x8b;
    const hint = gzipped ? 'it is gzip-compressed: decompress it first, e.g. gunzip -c' : 'not a tar, or corrupt';
    return new MedsynError(ErrorCodes.CORRUPT_TAR, `Cannot read ${source}: bad tar header at byte ${entriesEnd} (${hint})`, data(entriesEnd));
  }
  if (/Header exceeds max size/u.test(message)) {
    return new MedsynError(ErrorCodes.CORRUPT_TAR, `Cannot read ${source}: a PAX or long-name header at byte ${entriesEnd} is over 4 MiB (corrupt or hostile)`, data(entriesEnd));
  }
  if (/Invalid header/u.test(message)) {
    return new MedsynError(ErrorCodes.CORRUPT_TAR, `Cannot read ${source}: the header at byte ${entriesEnd} has an invalid size field`, data(entriesEnd));
  }
  return new MedsynError(ErrorCodes.CORRUPT_TAR, `Cannot read ${source}: ${message} (after byte ${entriesEnd})`, data(entriesEnd));
}
