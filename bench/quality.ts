/**
 * Benchmark of the quality scores, two figures:
 *
 * 1. Scoring throughput at 512×512 on all cores: imageStats + perceptualHash in
 *    worker threads (one per core, each scoring its share of the images), and the
 *    near-duplicate search (DuplicateIndex nearest + add) on the main thread over the
 *    hashes the workers send back, as they arrive — the index must see every image,
 *    and a query costs microseconds, so one index on the main thread keeps up with
 *    many scorers. The index starts each round holding 250 000 phantom-like hashes
 *    (see 2.), as it would at the end of a large run. Images are phantoms rendered from a synthetic MIMIC-CXR-like
 *    corpus (rendering is not timed). Reference in the same run: sharp's own `.stats()`
 *    (which computes entropy and sharpness too) on the same raw pixels, with the same
 *    parallelism (libvips threads); for context, the rate of decoding the same images
 *    from PNG with sharp. Target: at least 200 images/s.
 * 2. The duplicate index at 250 000 stored hashes: µs a query (median, p99) for
 *    `nearest(hash, 6)`, memory, and the same queries by a linear scan over the same
 *    hashes (typed arrays, no BigInt) — with a check that both answer the same.
 *    Two hash populations: uniform random bits (the index's best case), and
 *    phantom-like bits (each bit drawn with the frequency it has in the rendered
 *    phantoms' hashes, where many bits are nearly constant — crowded buckets).
 *
 *     npm run build && node dist/bench/quality.js [--images N --rounds R --stored S --queries Q]
 *
 * @module
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { syntheticReports } from './_mimic_corpus.js';
import { phantomFindings, type PhantomFindings } from '../models/phantom_findings.js';
import { renderPhantom } from '../models/render_phantom.js';
import { deriveSeed, SeededRandom } from '../models/seeded_random.js';
import { isReject } from '../records.js';
import { cleanReport } from '../transforms/clean_report.js';
import { QualityFilter } from '../transforms/quality_filter.js';
import { DuplicateIndex } from '../transforms/duplicate_index.js';
import { imageStats } from '../transforms/image_stats.js';
import { perceptualHash } from '../transforms/perceptual_hash.js';
import { reportFigures, type Figure } from './_figures.js';
import { median } from './_measure.js';

const SIZE = 512;
const DUP_DISTANCE = 6;

/** What the main thread sends a scoring worker. */
type WorkerRequest = { kind: 'render'; images: Array<{ findings: PhantomFindings; seed: number }> } | { kind: 'score'; round: number };

/** What a scoring worker sends back. */
type WorkerReply =
  | { kind: 'rendered'; pixels: Uint8Array[] }
  | { kind: 'scored'; round: number; first: number; high: Uint32Array; low: Uint32Array; contrast: Float64Array };

/** Scored images travel back in chunks of this many, so the duplicate search runs while scoring goes on. */
const CHUNK = 8;

function scoringWorker(): void {
  const port = parentPort!;
  let images: Uint8Array[] = [];
  port.on('message', (request: WorkerRequest) => {
    if (request.kind === 'render') {
      images = request.images.map(({ findings, seed }) => renderPhantom(findings, seed, SIZE));
      port.postMessage({ kind: 'rendered', pixels: images.map((pixels) => pixels.slice()) } satisfies WorkerReply);
      return;
    }
    for (let first = 0; first < images.length; first += CHUNK) {
      const count = Math.min(CHUNK, images.length - first);
      const high = new Uint32Array(count);
      const low = new Uint32Array(count);
      const contrast = new Float64Array(count);
      for (let k = 0; k < count; k++) {
        const image = { pixels: images[first + k]!, width: SIZE, height: SIZE };
        contrast[k] = imageStats(image).contrast;
        const hash = perceptualHash(image);
        high[k] = Number(hash >> 32n);
        low[k] = Number(hash & 0xffffffffn);
      }
      port.postMessage({ kind: 'scored', round: request.round, first, high, low, contrast } satisfies WorkerReply);
    }
  });
}

function quantile(sorted: ArrayLike<number>, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}


function load(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

/** Runs `task` on every item with at most `limit` in flight; resolves with the wall time in seconds. */
async function timedPool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
  return (performance.now() - started) / 1000;
}

/** A thread pool of scorers, each holding its own share of the rendered images. */
class ScoringPool {
  readonly workers: Worker[];
  readonly shares: number[][];

  constructor(count: number) {
    this.workers = Array.from({ length: count }, () => new Worker(new URL(import.meta.url), { workerData: { role: 'score' } }));
    this.shares = this.workers.map(() => []);
  }

  /** Deals the images out round-robin, renders them in the workers; resolves with every image's pixels, in order. */
  async render(images: Array<{ findings: PhantomFindings; seed: number }>): Promise<Uint8Array[]> {
    images.forEach((_, i) => this.shares[i % this.workers.length]!.push(i));
    const all: Uint8Array[] = new Array(images.length);
    await Promise.all(
      this.workers.map(
        (worker, w) =>
          new Promise<void>((resolve, reject) => {
            worker.once('error', reject);
            worker.once('message', (reply: WorkerReply) => {
              if (reply.kind !== 'rendered') return reject(new Error('unexpected reply'));
              reply.pixels.forEach((pixels, k) => (all[this.shares[w]![k]!] = pixels));
              resolve();
            });
            worker.postMessage({ kind: 'render', images: this.shares[w]!.map((i) => images[i]!) } satisfies WorkerRequest);
          }),
      ),
    );
    return all;
  }

  /**
   * One timed round: every worker scores its share; each chunk of hashes goes through
   * the duplicate search in `index` (nearest, then add) as it arrives. Resolves with
   * the seconds from the start to the last image searched.
   */
  async score(round: number, keys: string[], index: DuplicateIndex): Promise<number> {
    const total = keys.length;
    let done = 0;
    const started = performance.now();
    await new Promise<void>((resolve) => {
      for (const [w, worker] of this.workers.entries()) {
        const onMessage = (reply: WorkerReply): void => {
          if (reply.kind !== 'scored' || reply.round !== round) return;
          for (let k = 0; k < reply.high.length; k++) {
            const hash = (BigInt(reply.high[k]!) << 32n) | BigInt(reply.low[k]!);
            index.nearest(hash);
            index.add(hash, keys[this.shares[w]![reply.first + k]!]!);
          }
          done += reply.high.length;
          if (done === total) {
            for (const other of this.workers) other.removeAllListeners('message');
            resolve();
          }
        };
        worker.on('message', onMessage);
        worker.postMessage({ kind: 'score', round } satisfies WorkerRequest);
      }
    });
    return (performance.now() - started) / 1000;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}

/** 64-bit hashes as two Uint32 halves. */
interface HashSet {
  high: Uint32Array;
  low: Uint32Array;
}

function hashAt(set: HashSet, i: number): bigint {
  return (BigInt(set.high[i]!) << 32n) | BigInt(set.low[i]!);
}

/** `count` hashes whose bit b is set with probability `ones[b]` (bit 63 first), independently. */
function drawHashes(count: number, ones: number[], random: SeededRandom): HashSet {
  const high = new Uint32Array(count);
  const low = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    let h = 0;
    let l = 0;
    for (let b = 0; b < 32; b++) h = (h << 1) | (random.uniform() < ones[b]! ? 1 : 0);
    for (let b = 32; b < 64; b++) l = (l << 1) | (random.uniform() < ones[b]! ? 1 : 0);
    high[i] = h >>> 0;
    low[i] = l >>> 0;
  }
  return { high, low };
}

function popcount32(value: number): number {
  let v = value - ((value >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** The reference: the nearest stored hash within `maxDistance` by a scan, ties to the first; −1 for none. */
function scanNearest(stored: HashSet, count: number, high: number, low: number, maxDistance: number): { id: number; distance: number } {
  let best = -1;
  let bestDistance = maxDistance + 1;
  const { high: storedHigh, low: storedLow } = stored;
  for (let id = 0; id < count; id++) {
    const distance = popcount32(high ^ storedHigh[id]!) + popcount32(low ^ storedLow[id]!);
    if (distance < bestDistance) {
      bestDistance = distance;
      best = id;
    }
  }
  return { id: best, distance: bestDistance };
}

const collectGarbage: (() => void) | undefined = (() => {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
})();

function heapInUse(): number {
  collectGarbage?.();
  collectGarbage?.();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

function storedKey(i: number): string {
  return `s${50_000_000 + i}_0`;
}

/** An index holding the first `count` hashes of `stored`. */
function filledIndex(stored: HashSet, count: number): DuplicateIndex {
  const index = new DuplicateIndex({ maxDistance: DUP_DISTANCE });
  for (let i = 0; i < count; i++) index.add(hashAt(stored, i), storedKey(i));
  return index;
}

/** Part 2 on one population: build, query through the index and by the scan, compare. */
function indexFigures(label: string, stored: HashSet, storedCount: number, queries: HashSet, scanQueries: number): Figure {
  // The keys are made inside the measured window: the index holds them, memoryBytes counts them.
  const before = heapInUse();
  const built = performance.now();
  const index = new DuplicateIndex({ maxDistance: DUP_DISTANCE });
  let slowestAdd = 0;
  for (let i = 0; i < storedCount; i++) {
    const started = performance.now();
    index.add(hashAt(stored, i), storedKey(i));
    slowestAdd = Math.max(slowestAdd, performance.now() - started);
  }
  const buildSeconds = (performance.now() - built) / 1000;
  const measured = heapInUse() - before;

  const queryCount = queries.high.length;
  const queryHashes = Array.from({ length: queryCount }, (_, i) => hashAt(queries, i));
  for (let i = 0; i < Math.min(200, queryCount); i++) index.nearest(queryHashes[i]!); // warm up
  const indexTimes = new Float64Array(queryCount);
  const answers: Array<{ key: string; distance: number } | undefined> = new Array(queryCount);
  for (let i = 0; i < queryCount; i++) {
    const started = process.hrtime.bigint();
    answers[i] = index.nearest(queryHashes[i]!);
    indexTimes[i] = Number(process.hrtime.bigint() - started) / 1000;
  }
  const scanTimes = new Float64Array(scanQueries);
  let disagreements = 0;
  let found = 0;
  for (let i = 0; i < scanQueries; i++) {
    const started = process.hrtime.bigint();
    const best = scanNearest(stored, storedCount, queries.high[i]!, queries.low[i]!, DUP_DISTANCE);
    scanTimes[i] = Number(process.hrtime.bigint() - started) / 1000;
    const answer = answers[i];
    if (best.id >= 0) found++;
    const same = best.id < 0 ? answer === undefined : answer !== undefined && answer.key === storedKey(best.id) && answer.distance === best.distance;
    if (!same) disagreements++;
  }
  indexTimes.sort();
  scanTimes.sort();
  const indexMedian = quantile(indexTimes, 0.5);
  const scanMedian = quantile(scanTimes, 0.5);
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
  console.log(`  ${label}`);
  console.log(`    build: ${storedCount} adds in ${buildSeconds.toFixed(2)} s (${(storedCount / buildSeconds / 1000).toFixed(0)}k adds/s; slowest add, a re-sort: ${slowestAdd.toFixed(1)} ms)`);
  console.log(`    memoryBytes ${mib(index.memoryBytes())} MiB (${(index.memoryBytes() / storedCount).toFixed(1)} B/hash); measured heap + array buffers after GC: ${collectGarbage ? `${mib(measured)} MiB` : 'n/a'}`);
  console.log(`    nearest(hash, ${DUP_DISTANCE}), ${queryCount} queries:  median ${indexMedian.toFixed(1)} µs, p99 ${quantile(indexTimes, 0.99).toFixed(1)} µs`);
  console.log(`    linear scan, ${scanQueries} of them:      median ${scanMedian.toFixed(1)} µs, p99 ${quantile(scanTimes, 0.99).toFixed(1)} µs`);
  console.log(`    scan / index (median)                  ${(scanMedian / indexMedian).toFixed(0)}×   answers identical: ${disagreements === 0 ? 'yes' : `NO, ${disagreements} differ`} (${found} of ${scanQueries} had a match)`);
  // A time: the ratio is how many times faster than the scan.
  return {
    figure: `DuplicateIndex nearest at ${storedCount} hashes, ${label.replace(/ \(.*$/u, '')}`,
    value: indexMedian,
    unit: 'µs/query',
    reference: { label: 'linear scan', value: scanMedian },
    ratio: scanMedian / indexMedian,
    note: `speed-up; answers ${disagreements === 0 ? 'identical' : `DIFFER in ${disagreements}`}`,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      images: { type: 'string', default: '512' },
      rounds: { type: 'string', default: '3' },
      stored: { type: 'string', default: '250000' },
      queries: { type: 'string', default: '5000' },
      'scan-queries': { type: 'string', default: '300' },
    },
  });
  const imageCount = Number(values.images);
  const rounds = Number(values.rounds);
  const storedCount = Number(values.stored);
  const queryCount = Number(values.queries);
  const scanQueries = Math.min(queryCount, Number(values['scan-queries']));
  const threads = availableParallelism();
  console.log(`bench/quality: ${imageCount} phantom images ${SIZE}×${SIZE}, ${rounds} rounds (median); index at ${storedCount} hashes`);
  console.log(`machine: ${threads} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, sharp ${sharp.versions.sharp ?? '?'}, load average ${load()}`);

  // The images: phantoms drawn from cleaned synthetic reports, rendered in the workers.
  const requests: Array<{ findings: PhantomFindings; seed: number }> = [];
  const keys: string[] = [];
  for (const raw of syntheticReports(imageCount * 2, 21)) {
    if (requests.length === imageCount) break;
    const report = cleanReport({ id: raw.studyId, subjectId: raw.subjectId, source: 'bench', text: raw.text });
    if (isReject(report)) continue;
    requests.push({ findings: phantomFindings(report), seed: deriveSeed(0, report.id, 0, 0) });
    keys.push(`${report.id}_0`);
  }
  const pool = new ScoringPool(threads);
  const images = await pool.render(requests);

  // The hashes once on this thread: the single-core figures, the near-duplicates among
  // the phantoms, and the bit frequencies of the phantom-like population.
  const part = (task: (pixels: Uint8Array) => unknown): number => {
    for (let i = 0; i < Math.min(16, images.length); i++) task(images[i]!);
    const started = performance.now();
    for (const pixels of images) task(pixels);
    return (performance.now() - started) / images.length;
  };
  const statsMs = part((pixels) => imageStats({ pixels, width: SIZE, height: SIZE }));
  const hashMs = part((pixels) => perceptualHash({ pixels, width: SIZE, height: SIZE }));
  const hashes = images.map((pixels) => perceptualHash({ pixels, width: SIZE, height: SIZE }));
  const phantomIndex = new DuplicateIndex({ maxDistance: DUP_DISTANCE });
  const nearDuplicates = [0, 0];
  hashes.forEach((hash, i) => {
    const near = phantomIndex.nearest(hash);
    if (near) nearDuplicates[near.distance <= 4 ? 0 : 1]!++;
    phantomIndex.add(hash, keys[i]!);
  });
  const phantomOnes = Array.from({ length: 64 }, (_, b) => hashes.filter((hash) => ((hash >> BigInt(63 - b)) & 1n) === 1n).length / hashes.length);
  const random = new SeededRandom(77);
  const phantomLike = drawHashes(storedCount, phantomOnes, random);

  // 1a. Scoring on every core, duplicate search on the main thread in an index that
  // already holds `storedCount` phantom-like hashes, as at the end of a large run.
  const prefilled = (): DuplicateIndex => filledIndex(phantomLike, storedCount);
  await pool.score(-1, keys, prefilled()); // warm up the JIT in every thread
  const rates: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const index = prefilled();
    collectGarbage?.(); // the garbage of building the index, not the round's
    rates.push(images.length / (await pool.score(round, keys, index)));
  }
  await pool.close();
  const rate = median(rates);

  // 1b. The search alone, one core, in the same pre-filled index.
  const searchIndex = prefilled();
  const searchStarted = performance.now();
  hashes.forEach((hash, i) => {
    searchIndex.nearest(hash);
    searchIndex.add(hash, keys[i]!);
  });
  const searchUs = ((performance.now() - searchStarted) * 1000) / images.length;

  // 1d. What medsyn-gen and medsyn-filter run: QualityFilter.score + decide + keep on one
  // thread (stats, both hashes, candidates by pHash confirmed by the fine hash), its index
  // pre-filled with `storedCount` phantom-like entries.
  const qualityFilter = new QualityFilter();
  const fineRandom = new SeededRandom(78);
  for (let i = 0; i < storedCount; i++) {
    const fine = Uint32Array.from({ length: 8 }, () => fineRandom.uint32());
    qualityFilter.keep({ hash: hashAt(phantomLike, i), fine }, `stored-${i}`, `stored-${i}`);
  }
  const filterRates: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    images.forEach((pixels, i) => {
      const scores = qualityFilter.score({ pixels, width: SIZE, height: SIZE });
      if (qualityFilter.decide(scores, `${keys[i]}-${round}`, keys[i]!).passed) qualityFilter.keep(scores, `${keys[i]}-${round}`, keys[i]!);
    });
    filterRates.push(images.length / ((performance.now() - started) / 1000));
  }
  const filterRate = median(filterRates);

  // 1c. The reference: sharp's stats on the same raw pixels; PNG decoding for context.
  const inFlight = threads * 2;
  const raw = { raw: { width: SIZE, height: SIZE, channels: 1 as const } };
  await timedPool(images.slice(0, 16), inFlight, (pixels) => sharp(pixels, raw).stats());
  const sharpRates: number[] = [];
  for (let round = 0; round < rounds; round++) sharpRates.push(images.length / (await timedPool(images, inFlight, (pixels) => sharp(pixels, raw).stats())));
  const sharpRate = median(sharpRates);
  const pngs = await Promise.all(images.map((pixels) => sharp(pixels, raw).png().toBuffer()));
  const decodeRates: number[] = [];
  for (let round = 0; round < rounds; round++) decodeRates.push(images.length / (await timedPool(pngs, inFlight, (png) => sharp(png).raw().toBuffer())));
  const decodeRate = median(decodeRates);

  console.log('');
  console.log(`1. scoring ${SIZE}×${SIZE}: imageStats + perceptualHash in ${threads} worker threads, DuplicateIndex nearest + add on the main thread`);
  console.log(`   (the index starts each round holding ${storedCount} phantom-like hashes)`);
  console.log(`  images/s, all cores                           ${rate.toFixed(0)}   (rounds: ${rates.map((r) => r.toFixed(0)).join(', ')}; target ≥ 200: ${rate >= 200 ? 'met' : 'NOT met'})`);
  console.log(`  sharp .stats() on the same raw pixels         ${sharpRate.toFixed(0)} images/s   (${inFlight} in flight, libvips threads)`);
  console.log(`  ours / sharp .stats()                         ${(rate / sharpRate).toFixed(2)}`);
  console.log(`  for context: sharp PNG decode, same images    ${decodeRate.toFixed(0)} images/s   (${(pngs.reduce((sum, png) => sum + png.length, 0) / pngs.length / 1024).toFixed(0)} KiB a PNG)`);
  console.log(`  one core, each alone: imageStats ${statsMs.toFixed(2)} ms, perceptualHash ${hashMs.toFixed(2)} ms, nearest + add ${searchUs.toFixed(1)} µs an image`);
  console.log(`  QualityFilter score + decide + keep, ONE thread, ${storedCount} kept before: ${filterRate.toFixed(0)} images/s (what medsyn-gen and medsyn-filter run per image)`);
  console.log(
    `  distinct phantoms with a near-duplicate among the earlier ones: ${nearDuplicates[0]! + nearDuplicates[1]!} of ${images.length} within ${DUP_DISTANCE}, ${nearDuplicates[0]} within 4`,
  );

  const figures: Figure[] = [
    { figure: `scoring ${SIZE}², ${threads} threads`, value: rate, unit: 'images/s', reference: { label: 'sharp .stats(), same pixels', value: sharpRate }, note: 'target ≥ 200 images/s' },
    // No like-for-like reference in this run (sharp decoding is printed for context only).
    { figure: `QualityFilter score + decide + keep, one thread, ${storedCount} kept before`, value: filterRate, unit: 'images/s', reference: null },
  ];

  // 2. The index at 250k hashes.
  const uniform = Array.from({ length: 64 }, () => 0.5);
  console.log('');
  console.log(`2. DuplicateIndex at ${storedCount} stored hashes; queries: half stored hashes with 0–${DUP_DISTANCE + 2} bits flipped, half fresh; load average ${load()}`);
  for (const [label, ones] of [
    ['uniform random bits', uniform],
    [`phantom-like bits (${phantomOnes.filter((p) => p < 0.03 || p > 0.97).length} of 64 bits nearly constant)`, phantomOnes],
  ] as const) {
    const stored = ones === phantomOnes ? phantomLike : drawHashes(storedCount, ones, random);
    const fresh = drawHashes(queryCount, ones, random);
    for (let i = 0; i < queryCount; i += 2) {
      // Even queries: a stored hash with a few bits flipped.
      const source = random.uint32() % storedCount;
      let high = stored.high[source]!;
      let low = stored.low[source]!;
      for (let flip = random.uint32() % (DUP_DISTANCE + 3); flip > 0; flip--) {
        const bit = random.uint32() % 64;
        if (bit < 32) high = (high ^ (1 << bit)) >>> 0;
        else low = (low ^ (1 << (bit - 32))) >>> 0;
      }
      fresh.high[i] = high;
      fresh.low[i] = low;
    }
    figures.push(indexFigures(label, stored, storedCount, fresh, scanQueries));
  }
  reportFigures('quality', figures);
  console.log(`\nload average at the end: ${load()}`);
}

if (isMainThread) await main();
else if ((workerData as { role?: string } | null)?.role === 'score') scoringWorker();
