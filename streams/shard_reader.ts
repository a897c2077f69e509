/**
 * Reads WebDataset shards for training: local paths, shard folders, brace
 * patterns and http(s) URLs; shard shuffle per epoch, a sample shuffle buffer,
 * and a split between several readers.
 *
 * @module
 */
import { open, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getGlobalDispatcher, interceptors, request, type Dispatcher } from 'undici';
import { ErrorCodes, MedsynError, invalidOption } from '../errors.js';
import { seededRandom, shuffleInPlace } from './_seeded_random.js';
import { expandBraces } from './expand_braces.js';
import type { Sample, SampleReject } from './sample.js';
import { MANIFEST_FILE, parseShardManifest, readShardManifest } from './shard_manifest.js';
import { shuffleBuffer } from './shuffle_buffer.js';
import { decodeSamples } from './tar_decoder.js';

/** Options of {@link readShards} and {@link listShards}. */
export interface ShardReaderOptions {
  /** The epoch: with `shuffleShards`, each epoch gets its own shard order. @default 0 */
  epoch?: number;
  /** Seeds the shard order and the sample shuffle buffer; the same seed, epoch and split give the same order. @default 0 */
  seed?: number;
  /** Shuffle the shard order, per epoch (all readers of a split shuffle alike). @default false */
  shuffleShards?: boolean;
  /** Size of the sample shuffle buffer ({@link shuffleBuffer}); 0 reads samples in shard order. @default 0 */
  shuffleBuffer?: number;
  /**
   * `i/n`: this reader takes every n-th shard starting at the i-th (after the
   * epoch's shuffle), so n readers with `0/n` ... `n-1/n` read each shard once.
   * @default '0/1'
   */
  partition?: string;
  /**
   * A shard that cannot be read (missing, corrupt, truncated, unsafe, HTTP
   * error): `fail` the read, or `skip` it, reporting it to `onShardError` and
   * counting it in the summary. Samples read from it before the fault have
   * already been yielded.
   * @default 'fail'
   */
  onError?: 'skip' | 'fail';
  /** Receives each skipped shard's error; without it each is reported with `process.emitWarning`. @default undefined */
  onShardError?: (error: MedsynError) => void;
  /** Receives entries that are not sample parts (see `decodeSamples`); without it they are reported with `process.emitWarning`. @default undefined */
  onReject?: (reject: SampleReject) => void;
  /** The largest part accepted, in bytes. @default 268435456 (256 MiB) */
  maxPartBytes?: number;
  /** The undici dispatcher for http(s) sources (timeouts, proxies, pools). @default undici's global dispatcher, following up to 5 redirects */
  dispatcher?: Dispatcher;
}

/** What a {@link readShards} generator returns when it is done. */
export interface ShardReadSummary {
  /** Shards this reader read to the end. */
  shards: number;
  /** Shards skipped under `onError: 'skip'`. */
  shardsSkipped: number;
  /** Samples yielded. */
  samples: number;
  /** The errors of the skipped shards. */
  errors: MedsynError[];
}

const URL_PATTERN = /^https?:\/\//iu;

/**
 * Resolves sources to the list of shards, in order: several sources in one
 * string joined by `::` (as open_clip's `--train-data` takes them) split, brace
 * patterns expanded, a folder replaced by the shards its `manifest.json` lists
 * (local folders, and http(s) URLs ending in `/`), a local `.txt` file replaced
 * by the shards it lists one a line (relative to its folder; `shards.txt` of a
 * merge), `-` for stdin, anything else kept as a path or URL.
 *
 * @throws {MedsynError} `MEDSYN_ERR_NOT_FOUND` for a folder without manifest or
 * a missing list file; `MEDSYN_ERR_READ_FAILED` for a manifest of a run that did
 * not finish; `MEDSYN_ERR_INVALID_OPTION` for a bad brace pattern or no sources
 * @example
 * ```ts
 * await listShards('out/shard-{000000..000002}.tar'); // ['out/shard-000000.tar', ...]
 * await listShards('out/');                           // the shards of out/manifest.json
 * await listShards('out/shards.txt');                 // the shards it lists, under out/
 * ```
 */
export async function listShards(sources: string | readonly string[], options: Pick<ShardReaderOptions, 'dispatcher'> = {}): Promise<string[]> {
  const list = typeof sources === 'string' ? [sources] : [...sources];
  if (list.length === 0) invalidOption('sources', 'name at least one shard, folder, pattern or URL');
  const shards: string[] = [];
  // `::` inside [...] is an IPv6 address, not a separator.
  for (const source of list.flatMap((joined) => joined.split(/::(?![^[]*\])/u).filter((part) => part !== ''))) {
    for (const expanded of expandBraces(source)) {
      if (expanded === '-') shards.push('-');
      else if (URL_PATTERN.test(expanded)) shards.push(...(expanded.endsWith('/') ? await remoteFolder(expanded, options.dispatcher) : [expanded]));
      else {
        const path = expanded.startsWith('file:') ? fileURLToPath(expanded) : expanded;
        shards.push(...((await isFolder(path)) ? await localFolder(path) : path.endsWith('.txt') ? await shardListFile(path) : [path]));
      }
    }
  }
  return shards;
}

/**
 * Reads samples from shards (see {@link listShards} for the sources), each with
 * `url` (the shard, webdataset's `__url__`) and `key` (`__key__`). With
 * `shuffleShards` the shard order is shuffled per `epoch` with `seed`; with
 * `partition: 'i/n'` this reader takes its share of the shards; with
 * `shuffleBuffer` the samples pass through a seeded shuffle buffer. Local files
 * are streamed; http(s) URLs are streamed with undici. The generator returns a
 * {@link ShardReadSummary}.
 *
 * @throws {MedsynError} `MEDSYN_ERR_CORRUPT_TAR` or `MEDSYN_ERR_UNSAFE_ENTRY`
 * naming the shard and the byte offset, `MEDSYN_ERR_NOT_FOUND` or
 * `MEDSYN_ERR_READ_FAILED` for a shard that cannot be fetched — unless
 * `onError: 'skip'`; `MEDSYN_ERR_INVALID_OPTION` for bad options
 * @example
 * ```ts
 * for await (const sample of readShards('out/shard-{000000..000099}.tar', { shuffleShards: true, epoch, shuffleBuffer: 5000, partition: '0/4' })) {
 *   const caption = Buffer.from(sample.parts.txt).toString('utf8');
 * }
 * ```
 */
export async function* readShards(sources: string | readonly string[], options: ShardReaderOptions = {}): AsyncGenerator<Sample, ShardReadSummary> {
  const epoch = options.epoch ?? 0;
  if (!Number.isSafeInteger(epoch) || epoch < 0) invalidOption('epoch', `must be a whole number ≥ 0, got ${String(options.epoch)}`);
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed)) invalidOption('seed', `must be a whole number, got ${String(options.seed)}`);
  const bufferSize = options.shuffleBuffer ?? 0;
  if (!Number.isSafeInteger(bufferSize) || bufferSize < 0) invalidOption('shuffleBuffer', `must be a whole number ≥ 0, got ${String(options.shuffleBuffer)}`);
  const onError = options.onError ?? 'fail';
  if (onError !== 'skip' && onError !== 'fail') invalidOption('onError', `must be 'skip' or 'fail', got ${String(options.onError)}`);
  const { index, count } = parsePartition(options.partition ?? '0/1');

  const all = await listShards(sources, options);
  // Every reader of a split shuffles with the same seed and epoch, then takes its own slice.
  if (options.shuffleShards) shuffleInPlace(all, seededRandom(seed, epoch));
  const mine = all.filter((_, position) => position % count === index);

  const summary: ShardReadSummary = { shards: 0, shardsSkipped: 0, samples: 0, errors: [] };
  const samples = readEach(mine, options, onError, summary);
  if (bufferSize > 1) {
    const bufferSeed = Math.floor(seededRandom(seed, epoch, index)() * 2 ** 32);
    yield* shuffleBuffer(samples, { size: bufferSize, seed: bufferSeed });
  } else {
    yield* samples;
  }
  return summary;
}

async function* readEach(shards: string[], options: ShardReaderOptions, onError: 'skip' | 'fail', summary: ShardReadSummary): AsyncGenerator<Sample> {
  const dispatcher = options.dispatcher ?? defaultDispatcher();
  for (const shard of shards) {
    try {
      const decoded = decodeSamples(openShard(shard, dispatcher), {
        source: shard,
        ...(options.onReject ? { onReject: options.onReject } : {}),
        ...(options.maxPartBytes === undefined ? {} : { maxPartBytes: options.maxPartBytes }),
      });
      for await (const sample of decoded) {
        summary.samples++;
        yield sample;
      }
      summary.shards++;
    } catch (err) {
      if (onError === 'fail' || !(err instanceof MedsynError)) throw err;
      summary.shardsSkipped++;
      summary.errors.push(err);
      if (options.onShardError) options.onShardError(err);
      else process.emitWarning(`skipped shard: ${err.message} [${err.code}]`);
    }
  }
}

async function* openShard(shard: string, dispatcher: Dispatcher): AsyncGenerator<Uint8Array> {
  if (shard === '-') {
    yield* process.stdin;
    return;
  }
  if (URL_PATTERN.test(shard)) {
    const response = await fetchOrFail(shard, dispatcher);
    yield* response.body;
    return;
  }
  let handle;
  try {
    handle = await open(shard, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MedsynError(
      code === 'ENOENT' ? ErrorCodes.NOT_FOUND : ErrorCodes.READ_FAILED,
      `Cannot read shard ${shard}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      { file: shard, cause: err },
    );
  }
  // The stream owns the handle: it closes it at the end, on error, and when the decoder stops early.
  yield* handle.createReadStream({ highWaterMark: 1 << 20 });
}

async function fetchOrFail(url: string, dispatcher: Dispatcher): Promise<Dispatcher.ResponseData> {
  let response: Dispatcher.ResponseData;
  try {
    response = await request(url, { dispatcher, method: 'GET' });
  } catch (err) {
    throw new MedsynError(ErrorCodes.READ_FAILED, `Cannot fetch ${url}: ${(err as Error).message}`, { file: url, cause: err });
  }
  if (response.statusCode !== 200) {
    await response.body.dump().catch(() => undefined);
    throw new MedsynError(
      response.statusCode === 404 || response.statusCode === 410 ? ErrorCodes.NOT_FOUND : ErrorCodes.READ_FAILED,
      `Cannot fetch ${url}: HTTP ${response.statusCode}`,
      { file: url },
    );
  }
  return response;
}

async function remoteFolder(url: string, dispatcher: Dispatcher | undefined): Promise<string[]> {
  const manifestUrl = new URL(MANIFEST_FILE, url).href;
  const response = await fetchOrFail(manifestUrl, dispatcher ?? defaultDispatcher());
  const manifest = parseShardManifest(await response.body.text(), manifestUrl);
  checkComplete(manifest.complete, url);
  return manifest.shards.map((shard) => new URL(shard.name, url).href);
}

async function localFolder(dir: string): Promise<string[]> {
  const manifest = await readShardManifest(dir);
  checkComplete(manifest.complete, dir);
  return manifest.shards.map((shard) => join(dir, shard.name));
}

/** The shards a list file names, one a line (blank lines and `#` comments skipped), relative paths taken from its folder. */
async function shardListFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MedsynError(
      code === 'ENOENT' ? ErrorCodes.NOT_FOUND : ErrorCodes.READ_FAILED,
      `Cannot read shard list ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      { file: path, cause: err },
    );
  }
  return text
    .split(/\r?\n/u)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => (URL_PATTERN.test(line) || isAbsolute(line) ? line : join(dirname(path), line)));
}

function checkComplete(complete: boolean, folder: string): void {
  if (!complete) {
    throw new MedsynError(
      ErrorCodes.READ_FAILED,
      `Cannot read shard folder ${folder}: its ${MANIFEST_FILE} says the run has not finished (re-run the same medsyn-shard command to finish it, or name the shard files)`,
      { file: folder },
    );
  }
}

async function isFolder(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false; // a missing file is reported when it is read, under the onError policy
  }
}

function parsePartition(partition: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/u.exec(String(partition).trim());
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!(count >= 1) || !(index >= 0) || index >= count) {
    invalidOption('partition', `must be i/n with 0 ≤ i < n, e.g. 0/4, got ${JSON.stringify(partition)}`);
  }
  return { index, count };
}

let redirecting: Dispatcher | undefined;
function defaultDispatcher(): Dispatcher {
  redirecting ??= getGlobalDispatcher().compose(interceptors.redirect({ maxRedirections: 5 }));
  return redirecting;
}
