/**
 * The CLIP BPE tokenizer of a Stable Diffusion export, loaded from a local folder
 * through @huggingface/transformers. Never touches the network.
 *
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCodes, MedsynError } from '../errors.js';

/** Counts the tokens a text takes in a text encoder, BOS and EOS included. */
export interface TokenCounter {
  /** The encoder's context length, BOS and EOS included (77 for CLIP). */
  readonly maxTokens: number;
  /** Tokens of `text` with BOS and EOS, before any truncation. */
  countTokens(text: string): number;
  /** What the counter is, for summaries and sample metadata (`clip:/models/roentgen/tokenizer`). */
  readonly id: string;
}

/** A CLIP tokenizer loaded from a folder. */
export interface ClipTokenizer extends TokenCounter {
  /** Token ids of `text` with BOS and EOS, untruncated and unpadded. */
  encode(text: string): number[];
  /** Token ids padded (with the pad token) or truncated to `maxTokens`, EOS kept last when truncated. */
  encodePadded(text: string): number[];
}

/** The minimum of what `@huggingface/transformers`' tokenizer classes offer that medsyn uses. */
interface LoadedTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  model_max_length: number;
  pad_token_id?: number | null;
  eos_token_id?: number | null;
}

/** CLIP's pre-tokenizer: special tokens, contractions, letter runs, single digits, punctuation runs. */
const CLIP_SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/**
 * Loads the CLIP tokenizer in `dir`: `tokenizer.json` with `tokenizer_config.json`
 * when present, else the slow-tokenizer files a Stable Diffusion export has
 * (`vocab.json`, `merges.txt`, `tokenizer_config.json`), from which the equivalent
 * fast-tokenizer definition is built in memory.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_TOKENIZER` naming the missing or unreadable file
 * @example
 * ```ts
 * const tokenizer = await loadClipTokenizer('models/roentgen/tokenizer');
 * tokenizer.countTokens('Small left pleural effusion.'); // 8 or so, BOS and EOS included
 * ```
 */
export async function loadClipTokenizer(dir: string): Promise<ClipTokenizer> {
  const folder = resolve(dir);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new MedsynError(ErrorCodes.BAD_TOKENIZER, `Cannot load tokenizer ${dir}: no such folder`, { file: dir });
  }
  const transformers = await import('@huggingface/transformers');
  // Local folders only: medsyn never downloads a model at run time.
  transformers.env.allowRemoteModels = false;
  transformers.env.allowLocalModels = true;
  transformers.env.useFSCache = false;

  const config = readJson(folder, 'tokenizer_config.json', false) ?? {};
  let tokenizer: LoadedTokenizer;
  try {
    if (existsSync(join(folder, 'tokenizer.json'))) {
      tokenizer = (await transformers.AutoTokenizer.from_pretrained(folder, { local_files_only: true })) as unknown as LoadedTokenizer;
    } else {
      const vocab = readJson(folder, 'vocab.json', true)!;
      const merges = readMerges(folder);
      const definition = clipTokenizerDefinition(vocab as Record<string, number>, merges, config);
      tokenizer = new transformers.CLIPTokenizer(definition, { model_max_length: 77, ...config }) as unknown as LoadedTokenizer;
    }
  } catch (err) {
    if (err instanceof MedsynError) throw err;
    throw new MedsynError(ErrorCodes.BAD_TOKENIZER, `Cannot load tokenizer ${dir}: ${(err as Error).message}`, { file: dir, cause: err });
  }
  const maxTokens = Number.isFinite(tokenizer.model_max_length) && tokenizer.model_max_length < 100_000 ? tokenizer.model_max_length : 77;
  const padId = tokenizer.pad_token_id ?? tokenizer.eos_token_id ?? 0;
  const eosId = tokenizer.eos_token_id ?? padId;
  return {
    maxTokens,
    id: `clip:${folder}`,
    encode: (text) => tokenizer.encode(text),
    countTokens: (text) => tokenizer.encode(text).length,
    encodePadded(text) {
      const ids = tokenizer.encode(text);
      if (ids.length > maxTokens) return [...ids.slice(0, maxTokens - 1), eosId];
      return ids.concat(new Array<number>(maxTokens - ids.length).fill(padId));
    },
  };
}

function readJson(folder: string, name: string, required: boolean): Record<string, unknown> | undefined {
  const path = join(folder, name);
  if (!existsSync(path)) {
    if (!required) return undefined;
    throw new MedsynError(
      ErrorCodes.BAD_TOKENIZER,
      `Cannot load tokenizer ${folder}: ${name} is missing (a CLIP tokenizer folder has tokenizer.json, or vocab.json and merges.txt)`,
      { file: path },
    );
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new MedsynError(ErrorCodes.BAD_TOKENIZER, `Cannot load tokenizer ${folder}: ${name} is not valid JSON`, { file: path, cause: err });
  }
}

function readMerges(folder: string): string[] {
  const path = join(folder, 'merges.txt');
  if (!existsSync(path)) {
    throw new MedsynError(ErrorCodes.BAD_TOKENIZER, `Cannot load tokenizer ${folder}: merges.txt is missing (it sits beside vocab.json)`, {
      file: path,
    });
  }
  // The first line is the "#version" header; the rest are "left right" pairs.
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line, index) => line.trim() !== '' && !(index === 0 && line.startsWith('#version')));
}

/**
 * The fast-tokenizer (`tokenizer.json`) definition equivalent to CLIP's slow
 * tokenizer files, as `transformers`' CLIPTokenizerFast conversion writes it.
 *
 * @example
 * ```ts
 * const definition = clipTokenizerDefinition(vocab, merges, {});
 * ```
 */
export function clipTokenizerDefinition(
  vocab: Record<string, number>,
  merges: string[],
  config: Record<string, unknown>,
): Record<string, unknown> {
  const bos = tokenName(config['bos_token']) ?? '<|startoftext|>';
  const eos = tokenName(config['eos_token']) ?? '<|endoftext|>';
  const unk = tokenName(config['unk_token']) ?? eos;
  const special = (content: string) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  });
  for (const token of [bos, eos]) {
    if (vocab[token] === undefined) {
      throw new MedsynError(ErrorCodes.BAD_TOKENIZER, `Cannot load tokenizer: vocab.json has no special token ${token}`);
    }
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(bos), special(eos)],
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'RobertaProcessing', sep: [eos, vocab[eos]], cls: [bos, vocab[bos]], trim_offsets: false, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

function tokenName(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}
