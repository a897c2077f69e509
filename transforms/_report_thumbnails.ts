/**
 * The thumbnails of the dataset report: a bounded, order-independent random
 * sample of the dataset (bottom-k by a seeded hash of the key), plus a few
 * positives of each observation so that filtering by a rare label still shows
 * images. Each kept image is downscaled with sharp when it is kept, so memory
 * holds only small JPEGs.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { OBSERVATIONS, type Observation } from '../records.js';
import { IMAGE_PARTS, labelOf, REPORT_SCORES, type ReportScore } from './_report_tally.js';

/** One card of the report's grid. */
export interface Thumbnail {
  key: string;
  /** The shard it came from. */
  shard: string;
  /** `data:image/jpeg;base64,…`. */
  src: string;
  width: number;
  height: number;
  caption: string;
  /** Observations labelled positive. */
  positives: Observation[];
  /** The quality scores the sample's JSON holds. */
  scores: Partial<Record<ReportScore, number>>;
  /** The attempt kept (1 for the first), when the JSON says. */
  attempt?: number;
  /** Whether the card belongs to the uniform sample (`true`) or was kept only as a positive of some observation. */
  inSample: boolean;
}

/** Options of {@link ThumbnailReservoir}. */
export interface ThumbnailReservoirOptions {
  /** Cards of the uniform sample. @default 48 */
  count?: number;
  /** Extra positives kept per observation. @default max(4, ceil(count / 8)), 0 when count is 0 */
  perLabel?: number;
  /** The longer side of a thumbnail in pixels. @default 96 */
  size?: number;
  /** Seeds the hash that picks the sample: another seed, another sample. @default 0 */
  seed?: number;
  /** Longest caption kept, in characters. @default 240 */
  captionChars?: number;
}

interface Entry {
  rank: number;
  thumbnail: Thumbnail;
}

/** Keeps the `capacity` entries of lowest rank; at most one entry per key. */
class BottomK {
  readonly entries: Entry[] = [];
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Whether an entry of this rank would be kept now. */
  wants(rank: number): boolean {
    return this.capacity > 0 && (this.entries.length < this.capacity || rank < this.#worst().rank);
  }

  offer(entry: Entry): void {
    if (!this.wants(entry.rank)) return;
    if (this.entries.length >= this.capacity) this.entries.splice(this.entries.indexOf(this.#worst()), 1);
    this.entries.push(entry);
  }

  #worst(): Entry {
    return this.entries.reduce((worst, entry) => (entry.rank > worst.rank ? entry : worst));
  }
}

/** A rank in [0, 2^48) from the seed, a salt and the key. */
function rankOf(seed: number, salt: string, key: string): number {
  return createHash('sha256').update(`${seed}\0${salt}\0${key}`).digest().readUIntBE(0, 6);
}

/**
 * A random sample of thumbnails of bounded size, the same whatever the order
 * the samples come in (each sample's rank is a hash of its key).
 *
 * @example
 * ```ts
 * const thumbnails = new ThumbnailReservoir({ count: 48 });
 * for await (const sample of readShards('out/')) await thumbnails.offer(sample, sampleMetadata(sample.parts.json));
 * const cards = thumbnails.cards();
 * ```
 */
export class ThumbnailReservoir {
  readonly #sample: BottomK;
  readonly #byLabel: Map<Observation, BottomK>;
  readonly #size: number;
  readonly #seed: number;
  readonly #captionChars: number;
  /** Images that sharp could not decode. */
  undecodable = 0;

  constructor(options: ThumbnailReservoirOptions = {}) {
    const count = options.count ?? 48;
    this.#sample = new BottomK(count);
    const perLabel = options.perLabel ?? (count === 0 ? 0 : Math.max(4, Math.ceil(count / 8)));
    this.#byLabel = new Map(OBSERVATIONS.map((o) => [o, new BottomK(perLabel)]));
    this.#size = options.size ?? 96;
    this.#seed = options.seed ?? 0;
    this.#captionChars = options.captionChars ?? 240;
  }

  /** Considers one sample; makes its thumbnail only when some reservoir keeps it. */
  async offer(sample: { key: string; url?: string; parts: Record<string, Uint8Array> }, metadata: Record<string, unknown> | undefined): Promise<void> {
    const format = IMAGE_PARTS.find((extension) => sample.parts[extension] !== undefined);
    if (!format) return;
    const sampleRank = rankOf(this.#seed, '', sample.key);
    const positives = OBSERVATIONS.filter((o) => labelOf(metadata, o) === 1);
    const labelRanks = positives.map((o) => [o, rankOf(this.#seed, o, sample.key)] as const).filter(([o, rank]) => this.#byLabel.get(o)!.wants(rank));
    const inSample = this.#sample.wants(sampleRank);
    if (!inSample && labelRanks.length === 0) return;

    let image: { data: Buffer; info: { width: number; height: number } };
    try {
      image = await sharp(sample.parts[format]!)
        .resize(this.#size, this.#size, { fit: 'inside', withoutEnlargement: true })
        .jpeg({ quality: 80 })
        .toBuffer({ resolveWithObject: true });
    } catch {
      this.undecodable++;
      return;
    }
    const quality = metadata?.['quality'];
    const scores: Thumbnail['scores'] = {};
    if (quality && typeof quality === 'object') {
      for (const name of Object.keys(REPORT_SCORES) as ReportScore[]) {
        const value = (quality as Record<string, unknown>)[name];
        if (typeof value === 'number') scores[name] = value;
      }
    }
    const txt = sample.parts['txt'];
    const text = txt ? Buffer.from(txt.buffer, txt.byteOffset, txt.byteLength).toString('utf8') : typeof metadata?.['caption'] === 'string' ? (metadata['caption'] as string) : '';
    const caption = text.length > this.#captionChars ? `${text.slice(0, this.#captionChars - 1)}…` : text;
    const attempt = metadata?.['attempt'];
    const thumbnail: Thumbnail = {
      key: sample.key,
      shard: sample.url ?? '',
      src: `data:image/jpeg;base64,${image.data.toString('base64')}`,
      width: image.info.width,
      height: image.info.height,
      caption,
      positives,
      scores,
      ...(typeof attempt === 'number' ? { attempt: attempt + 1 } : {}),
      inSample: false,
    };
    if (inSample) this.#sample.offer({ rank: sampleRank, thumbnail });
    for (const [observation, rank] of labelRanks) this.#byLabel.get(observation)!.offer({ rank, thumbnail });
  }

  /** The kept cards, each once, sorted by key; `inSample` marks those of the uniform sample. */
  cards(): Thumbnail[] {
    const inSample = new Set(this.#sample.entries.map((entry) => entry.thumbnail.key));
    const byKey = new Map<string, Thumbnail>();
    for (const entry of [...this.#sample.entries, ...[...this.#byLabel.values()].flatMap((k) => k.entries)]) {
      byKey.set(entry.thumbnail.key, { ...entry.thumbnail, inSample: inSample.has(entry.thumbnail.key) });
    }
    return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}
