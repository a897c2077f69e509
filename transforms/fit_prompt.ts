/**
 * Fits a prompt into a text encoder's context length by cutting at sentence
 * boundaries.
 *
 * @module
 */
import type { TokenCounter } from '../models/clip_tokenizer.js';
import { splitSentences } from './_sentences.js';

/**
 * A token count estimated without a tokenizer, for when no `--tokenizer` is given.
 * It follows CLIP's pre-tokenizer (each digit and each punctuation run is its own
 * piece) and estimates the BPE pieces of a word from its length: a word of up to 7
 * letters is taken as one token and each further 4 letters as one more
 * ("pneumothorax" → 3). Real CLIP splits common words less, so the estimate errs
 * on the long side and fitted prompts stay within the limit.
 *
 * @example
 * ```ts
 * const counter = wordCountApproximation();
 * counter.countTokens('Small left effusion.'); // BOS + small + left + effu·sion + '.' + EOS = 7
 * ```
 */
export function wordCountApproximation(maxTokens = 77): TokenCounter {
  return { maxTokens, id: 'approx:clip-words', countTokens: approximateTokens };
}

/**
 * The count {@link wordCountApproximation} makes, by a scan that follows CLIP's
 * pre-tokenizer pattern without allocating a match per piece (it runs on every report).
 */
function approximateTokens(text: string): number {
  let count = 2; // BOS and EOS
  const length = text.length;
  let i = 0;
  while (i < length) {
    const kind = charKind(text, i);
    if (kind === SPACE) {
      i++;
    } else if (kind === LETTER) {
      const start = i;
      while (i < length && charKind(text, i) === LETTER) i++;
      count += 1 + Math.max(0, Math.ceil((i - start - 7) / 4));
    } else if (kind === DIGIT) {
      i++;
      count++;
    } else {
      const contraction = text.charCodeAt(i) === 39 ? contractionLength(text, i) : 0;
      if (contraction > 0) {
        i += contraction;
        count++;
        continue;
      }
      // A punctuation run such as "..." or ").": pairs merge.
      const start = i;
      while (i < length && charKind(text, i) === OTHER) i++;
      count += Math.ceil((i - start) / 2);
    }
  }
  return count;
}

const SPACE = 0;
const LETTER = 1;
const DIGIT = 2;
const OTHER = 3;
const NON_ASCII_LETTER = /\p{L}/u;
/** The kind of each ASCII character: letters, digits, the white space CLIP's pattern takes, the rest. */
const ASCII_KINDS = Uint8Array.from({ length: 128 }, (_, code) => {
  if ((code >= 97 && code <= 122) || (code >= 65 && code <= 90)) return LETTER;
  if (code >= 48 && code <= 57) return DIGIT;
  if (code === 32 || (code >= 9 && code <= 13)) return SPACE;
  return OTHER;
});
const NON_ASCII_DIGIT = /\p{N}/u;
const NON_ASCII_SPACE = /\s/;

/** The class of the character at `i`, as CLIP's pattern sees it (a surrogate pair counts as OTHER). */
function charKind(text: string, i: number): number {
  const code = text.charCodeAt(i);
  if (code < 128) return ASCII_KINDS[code]!;
  const char = text[i]!;
  if (NON_ASCII_LETTER.test(char)) return LETTER;
  if (NON_ASCII_DIGIT.test(char)) return DIGIT;
  if (NON_ASCII_SPACE.test(char)) return SPACE;
  return OTHER;
}

/** The length of the contraction ('s 't 're 've 'm 'll 'd) that starts at the apostrophe at `i`, or 0. */
function contractionLength(text: string, i: number): number {
  const next = text[i + 1];
  if (next === 's' || next === 't' || next === 'm' || next === 'd') return 2;
  const two = text.slice(i + 1, i + 3);
  return two === 're' || two === 've' || two === 'll' ? 3 : 0;
}

/** What {@link fitPrompt} returns. */
export interface FittedPrompt {
  /** The prompt: the longest run of whole leading sentences that fits. */
  prompt: string;
  /** Tokens the prompt takes, BOS and EOS included. */
  tokens: number;
  /** Whether sentences (or words) were cut off. */
  truncated: boolean;
}

/**
 * Keeps the longest run of leading sentences of `text` that fits
 * `counter.maxTokens`. When even the first sentence is too long, it is cut at the
 * last word boundary that fits (the only case that cuts inside a sentence).
 *
 * @example
 * ```ts
 * fitPrompt('Small left effusion. No pneumothorax.', wordCountApproximation(8));
 * // { prompt: 'Small left effusion.', tokens: 7, truncated: true }
 * ```
 */
export function fitPrompt(text: string, counter: TokenCounter): FittedPrompt {
  const whole = counter.countTokens(text);
  if (whole <= counter.maxTokens) return { prompt: text, tokens: whole, truncated: false };

  const sentences = splitSentences(text);
  let prompt = '';
  let tokens = 2;
  for (const sentence of sentences) {
    const candidate = prompt === '' ? sentence : `${prompt} ${sentence}`;
    const count = counter.countTokens(candidate);
    if (count > counter.maxTokens) break;
    prompt = candidate;
    tokens = count;
  }
  if (prompt !== '') return { prompt, tokens, truncated: true };

  // Even the first sentence is too long: cut it at a word boundary, found by bisection.
  const words = sentences[0]!.split(' ');
  let low = 0;
  let high = words.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (counter.countTokens(words.slice(0, mid).join(' ')) <= counter.maxTokens) low = mid;
    else high = mid - 1;
  }
  prompt = words.slice(0, low).join(' ');
  return { prompt, tokens: counter.countTokens(prompt), truncated: true };
}
