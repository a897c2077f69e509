/**
 * The WebDataset sample: a key plus named parts, and the rule that makes any
 * string a safe key.
 *
 * @module
 */

/**
 * One WebDataset sample: the files `<key>.<ext>` of a tar that sit next to each
 * other, as `{ key, parts: { ext: bytes } }`. medsyn writes `png` (or `jpg`/`webp`),
 * `txt` (the caption) and `json` (everything else); any other extension is kept.
 *
 * A decoded sample also says where it came from: `url` is what webdataset
 * calls `__url__` (as `key` is its `__key__`), `offset` where the sample starts
 * in it.
 *
 * @example
 * ```ts
 * const sample: Sample = {
 *   key: 's50414267',
 *   parts: { png: pngBytes, txt: Buffer.from('No acute process.'), json: Buffer.from('{"seed":1}') },
 * };
 * ```
 */
export interface Sample {
  /** The key (`__key__`): for samples medsyn writes, ASCII letters, digits, `_` and `-` only. */
  key: string;
  /** The parts by extension (`png`, `txt`, `json`, `seg.png`, ...), without the leading dot. */
  parts: Record<string, Uint8Array>;
  /** The shard path or URL a decoded sample was read from (`__url__`); `-` for stdin. */
  url?: string;
  /** Byte offset in `url` of the header of the sample's first entry (after any PAX or long-name header). */
  offset?: number;
}

/**
 * Why a sample was not written or not read. Stable strings: scripts count them.
 *
 * - `duplicate_key`: the key was already seen in this run; the later sample is
 *   rejected, never written twice.
 * - `bad_key`: the key is empty after {@link sanitizeKey}, or longer than
 *   {@link MAX_KEY_LENGTH}.
 * - `bad_entry`: a tar entry whose name gives no key or no extension, a part
 *   that repeats within a sample, a part name that is not allowed.
 * - `empty_sample`: a sample with no parts at all.
 */
export type SampleRejectReason = 'duplicate_key' | 'bad_key' | 'bad_entry' | 'empty_sample';

/**
 * A sample that did not make it through a stage, and why; one NDJSON line of `--rejects`.
 *
 * @example
 * ```ts
 * const reject: SampleReject = { id: 's1', source: '-', offset: 1536, reason: 'duplicate_key', message: 'key s1 was already seen' };
 * ```
 */
export interface SampleReject {
  /** The sample key where it is known (as in `Reject.id` of the report stages). */
  id?: string;
  /** Where the sample came from: a shard path or URL, `-` for stdin. */
  source: string;
  /** Byte offset of the offending tar entry in `source`, where known. */
  offset?: number;
  reason: SampleRejectReason;
  /** A human-readable detail. */
  message: string;
}

/** The longest key medsyn writes; longer keys are rejected as `bad_key` rather than cut (cutting could collide). */
export const MAX_KEY_LENGTH = 200;

const UNSAFE_KEY_CHARACTERS = /[^A-Za-z0-9_-]/gu;

/**
 * Makes `key` safe for a WebDataset tar by the documented rule: every character
 * (code point) that is not an ASCII letter, digit, `_` or `-` becomes one `_`.
 * So `p10/s5.v2` becomes `p10_s5_v2`: no `/` (it would make a folder) and no `.`
 * (readers split the key from the extension at the first dot of the base name).
 *
 * The rule can map two keys to one (`a.b` and `a_b`); the shard writer then
 * rejects the later one as `duplicate_key`. Returns `undefined` when nothing is
 * left to use: an empty key, or one longer than {@link MAX_KEY_LENGTH}.
 *
 * @example
 * ```ts
 * sanitizeKey('s50414267');        // 's50414267'
 * sanitizeKey('p10/s5.v2');        // 'p10_s5_v2'
 * sanitizeKey('');                 // undefined
 * ```
 */
export function sanitizeKey(key: string): string | undefined {
  const safe = key.replace(UNSAFE_KEY_CHARACTERS, '_');
  return safe.length === 0 || safe.length > MAX_KEY_LENGTH ? undefined : safe;
}
