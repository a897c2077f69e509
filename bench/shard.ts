/**
 * Benchmark of the shard writer and reader: 2000 samples of about 250 KB (a
 * 512×512 "PNG", a caption, metadata) from a tar stream into shards and back,
 * against references measured in the same run on the same bytes.
 *
 *     npm run bench:shard [-- --samples N --rounds R]
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import tar from 'tar-stream';
import { measureCommand } from './_measure.js';
import { reportFigures, type Figure } from './_figures.js';
import { readShards } from '../streams/shard_reader.js';
import { writeShards } from '../streams/shard_writer.js';
import { decodeSamples } from '../streams/tar_decoder.js';
import { encodeSamples } from '../streams/tar_encoder.js';
import type { Sample } from '../streams/sample.js';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    'png-bytes': { type: 'string', default: String(250 * 1024) },
  },
});
const SAMPLES = Number(values.samples);
const ROUNDS = Number(values.rounds);
const PNG_BYTES = Number(values['png-bytes']);
/** Distinct payloads, cycled: the stream is SAMPLES × 250 KB, the memory to hold them is not. */
const POOL = 64;
/** What one read of a pipe gives on Linux. */
const PIPE_CHUNK = 64 * 1024;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outRoot = join(root, 'bench', 'out', 'shard');
const pool = Array.from({ length: POOL }, () => randomBytes(PNG_BYTES));
const caption = Buffer.from(
  'Heart size is normal. The mediastinal and hilar contours are within normal limits. No focal consolidation, pleural effusion or pneumothorax.',
);

function sample(index: number): Sample {
  const key = `s${String(50_000_000 + index)}`;
  const json = JSON.stringify({
    id: key,
    subjectId: `p${10_000_000 + index}`,
    prompt: caption.toString(),
    seed: index * 7919,
    model: 'roentgen-onnx-fp16',
    modelSha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    scheduler: 'pndm',
    steps: 50,
    guidance: 4,
    size: [512, 512],
    timings: { unetMs: 812.5, vaeMs: 41.2 },
    quality: { mean: 0.41, contrast: 0.22, entropy: 7.1, sharpness: 0.03, blank: false },
    attempt: 1,
  });
  return { key, parts: { png: pool[index % POOL], txt: caption, json: Buffer.from(json) } };
}

function* samples(): Generator<Sample> {
  for (let i = 0; i < SAMPLES; i++) yield sample(i);
}

/** The input tar stream in 64 KiB chunks, as a pipe delivers it (each chunk a fresh copy, as a read() makes). */
async function* input(): AsyncGenerator<Uint8Array> {
  let chunk = Buffer.allocUnsafe(PIPE_CHUNK);
  let used = 0;
  for await (const piece of encodeSamples(samples())) {
    let offset = 0;
    while (offset < piece.byteLength) {
      const take = Math.min(PIPE_CHUNK - used, piece.byteLength - offset);
      chunk.set(piece.subarray(offset, offset + take), used);
      used += take;
      offset += take;
      if (used === PIPE_CHUNK) {
        yield chunk;
        chunk = Buffer.allocUnsafe(PIPE_CHUNK);
        used = 0;
      }
    }
  }
  if (used > 0) yield chunk.subarray(0, used);
}

async function drain(chunks: AsyncIterable<Uint8Array>): Promise<number> {
  let bytes = 0;
  for await (const chunk of chunks) bytes += chunk.byteLength;
  return bytes;
}

/** Writes chunks to a file in large writes, then fsyncs it; resolves to the bytes written. */
async function writeFileDurably(path: string, chunks: AsyncIterable<Uint8Array>): Promise<number> {
  const handle = await open(path, 'w');
  let bytes = 0;
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  for await (const chunk of chunks) {
    batch.push(chunk);
    batchBytes += chunk.byteLength;
    if (batchBytes >= 8 << 20) {
      await handle.writev(batch);
      bytes += batchBytes;
      batch = [];
      batchBytes = 0;
    }
  }
  if (batch.length > 0) await handle.writev(batch);
  bytes += batchBytes;
  await handle.sync();
  await handle.close();
  return bytes;
}

/** Reference: the input bytes copied to a file with large writes, then fsynced: what the disk allows. */
function fsCopy(path: string): Promise<number> {
  return writeFileDurably(path, input());
}

/**
 * Reference: the same job with tar-stream alone: extract() the input, pack() each
 * entry again, write the tar to one file and fsync it. No grouping into samples,
 * no key checks, no hashing, no stats, no shard boundaries.
 */
async function tarStreamAlone(path: string): Promise<number> {
  const extract = tar.extract();
  const pack = tar.pack();
  const feeding = (async () => {
    for await (const chunk of input()) if (!extract.write(chunk)) await new Promise<void>((resolve) => extract.once('drain', () => resolve()));
    extract.end(null);
  })();
  const packing = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      await new Promise<void>((resolve, reject) =>
        pack.entry({ name: entry.header.name, mtime: new Date(0) }, Buffer.concat(chunks), (err) => (err ? reject(err) : resolve())),
      );
    }
    pack.finalize();
  })();
  const bytes = await writeFileDurably(path, pack as AsyncIterable<Uint8Array>);
  await Promise.all([feeding, packing]);
  return bytes;
}

/** Reference for the CLI: the same bytes through a pipe into a node process that only reads them. */
async function pipeDrain(): Promise<number> {
  return runChild(['-e', "process.stdin.on('data', () => {})"]);
}

async function medsynWrite(outDir: string): Promise<number> {
  const summary = await writeShards(decodeSamples(input()), outDir);
  return summary.bytesWritten;
}

/** The same through the real CLI and a real pipe. */
async function medsynCli(outDir: string): Promise<number> {
  return runChild([join(root, 'dist', 'bin', 'medsyn-shard.js'), outDir, '--quiet']);
}

/** Peak RSS of the last child of each kind, by its first argument. */
const childPeakRss = new Map<string, number>();

/** Pipes the input into `node args`, waits for it to exit 0, records its peak RSS; resolves to the bytes piped. */
async function runChild(args: string[]): Promise<number> {
  let bytes = 0;
  async function* counted(): AsyncGenerator<Uint8Array> {
    for await (const chunk of input()) {
      bytes += chunk.byteLength;
      yield chunk;
    }
  }
  const measured = await measureCommand(process.execPath, args, { stdin: Readable.from(counted(), { objectMode: false }) });
  if (measured.code !== 0) throw new Error(`node ${args.join(' ')} exited with ${measured.code}: ${measured.stderr}`);
  childPeakRss.set(args[0], Math.max(childPeakRss.get(args[0]) ?? 0, measured.peakRss));
  return bytes;
}

/** Reference: tar-stream's `extract()` over the shard files, each entry gathered into one buffer. */
async function tarStreamExtract(paths: string[]): Promise<number> {
  let bytes = 0;
  for (const path of paths) {
    const extract = tar.extract();
    createReadStream(path, { highWaterMark: 1 << 20 }).pipe(extract as unknown as NodeJS.WritableStream);
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      bytes += Buffer.concat(chunks).byteLength;
    }
  }
  return bytes;
}

async function medsynRead(outDir: string): Promise<number> {
  let bytes = 0;
  for await (const { parts } of readShards(outDir)) for (const part of Object.values(parts)) bytes += part.byteLength;
  return bytes;
}

interface Row {
  name: string;
  mbPerSecond: number;
}

/**
 * Runs `run` ROUNDS times and prints the median rate. `output` is deleted before
 * each round, outside the timing, so that no run pays for freeing the last one's
 * blocks (the disk here is mounted with `discard`).
 */
async function measure(name: string, run: () => Promise<number>, output?: string): Promise<Row> {
  const rates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    if (output !== undefined) await rm(output, { recursive: true, force: true });
    const started = performance.now();
    const bytes = await run();
    rates.push(bytes / 1e6 / ((performance.now() - started) / 1000));
  }
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)];
  console.log(`  ${name.padEnd(44)} ${median.toFixed(0).padStart(6)} MB/s   (rounds: ${rates.map((rate) => rate.toFixed(0)).join(', ')})`);
  return { name, mbPerSecond: median };
}

function rss(): string {
  return `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`;
}

async function main(): Promise<void> {
  await rm(outRoot, { recursive: true, force: true });
  await mkdir(outRoot, { recursive: true });
  const shardDir = join(outRoot, 'shards');
  const inputBytes = await drain(input());
  console.log(`bench/shard: ${SAMPLES} samples, ${(inputBytes / 1e6).toFixed(1)} MB tar stream in ${PIPE_CHUNK / 1024} KiB chunks`);
  console.log(`  "png": ${PNG_BYTES} bytes of incompressible pseudo-random data (sharp is not installed; ${POOL} distinct payloads, cycled), txt ${caption.byteLength} B, json ~500 B`);
  console.log(`  node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, median of ${ROUNDS} rounds, MB = 10^6 bytes, load average ${loadavg().map((load) => load.toFixed(1)).join(' ')}`);
  console.log('writing (to files on the disk; each run fsyncs what it writes)');
  const copy = await measure('reference: fs copy of the tar + fsync', () => fsCopy(join(outRoot, 'copy.tar')), join(outRoot, 'copy.tar'));
  await rm(join(outRoot, 'copy.tar'), { force: true });
  const alone = await measure('reference: tar-stream extract → pack + fsync', () => tarStreamAlone(join(outRoot, 'tar-stream.tar')), join(outRoot, 'tar-stream.tar'));
  await rm(join(outRoot, 'tar-stream.tar'), { force: true });
  const write = await measure('medsyn decodeSamples → writeShards', () => medsynWrite(shardDir), shardDir);
  const drainPipe = await measure('reference: a pipe into node, read only', pipeDrain);
  const cli = await measure('medsyn-shard CLI through a pipe', () => medsynCli(join(outRoot, 'cli')), join(outRoot, 'cli'));
  await rm(join(outRoot, 'cli'), { recursive: true, force: true });
  let memory: Row | undefined;
  if (existsSync('/dev/shm')) {
    const shm = join('/dev/shm', `medsyn-bench-${process.pid}`);
    memory = await measure('medsyn writeShards into /dev/shm (no disk)', () => medsynWrite(shm), shm);
    await rm(shm, { recursive: true, force: true });
  }
  const afterWrite = rss();
  console.log('reading (the shards just written, from the page cache)');
  const shardPaths = (await readdir(shardDir)).filter((name) => name.endsWith('.tar')).map((name) => join(shardDir, name));
  const extract = await measure('reference: tar-stream extract of the shards', () => tarStreamExtract(shardPaths));
  const read = await measure('medsyn readShards (folder)', () => medsynRead(shardDir));
  console.log('ratios (same run, same bytes)');
  console.log(`  writeShards / fs copy + fsync              ${(write.mbPerSecond / copy.mbPerSecond).toFixed(2)}`);
  console.log(`  writeShards / tar-stream extract → pack    ${(write.mbPerSecond / alone.mbPerSecond).toFixed(2)}`);
  console.log(`  CLI / pipe read only                       ${(cli.mbPerSecond / drainPipe.mbPerSecond).toFixed(2)}`);
  if (memory) console.log(`  writeShards disk / writeShards /dev/shm    ${(write.mbPerSecond / memory.mbPerSecond).toFixed(2)}`);
  console.log(`  readShards / tar-stream extract            ${(read.mbPerSecond / extract.mbPerSecond).toFixed(2)}`);
  console.log(`peak RSS: this process ${afterWrite} after writing, ${rss()} after reading; the medsyn-shard CLI ${((childPeakRss.get(join(root, 'dist', 'bin', 'medsyn-shard.js')) ?? 0) / 2 ** 20).toFixed(0)} MB`);
  console.log(`target: writing ≥ 500 MB/s — ${write.mbPerSecond >= 500 ? 'met' : 'NOT met'} (${write.mbPerSecond.toFixed(0)} MB/s; the disk's own fs copy: ${copy.mbPerSecond.toFixed(0)} MB/s)`);
  const mbps = (row: Row, label: string): Figure['reference'] => ({ label, value: row.mbPerSecond });
  reportFigures('shard', [
    { figure: `writeShards, ${SAMPLES} samples`, value: write.mbPerSecond, unit: 'MB/s', reference: mbps(copy, 'fs copy + fsync'), note: 'target ≥ 500 MB/s' },
    { figure: 'writeShards', value: write.mbPerSecond, unit: 'MB/s', reference: mbps(alone, 'tar-stream extract → pack') },
    { figure: 'medsyn-shard CLI through a pipe', value: cli.mbPerSecond, unit: 'MB/s', reference: mbps(drainPipe, 'a pipe into node, read only') },
    ...(memory ? [{ figure: 'writeShards to disk', value: write.mbPerSecond, unit: 'MB/s', reference: mbps(memory, 'writeShards into /dev/shm') }] : []),
    { figure: 'readShards', value: read.mbPerSecond, unit: 'MB/s', reference: mbps(extract, 'tar-stream extract') },
  ]);
  await rm(outRoot, { recursive: true, force: true });
}

await main();
