/**
 * Fits a prompt into a text encoder's context length by cutting at sentence
 * boundaries.
 *
 * @module
 */
import type { TokenCounter } from '../models/clip_tokenizer.js';
import { splitSentences } from './_sentences.js';

/** CLIP's pre-tokenizer, as a global regex: contractions, letter runs, single digits, punctuation runs. */
const PRETOKEN = /'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/gu;

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
  return {
    maxTokens,
    id: 'approx:clip-words',
    countTokens(text: string): number {
      let count = 2; // BOS and EOS
      for (const [piece] of text.matchAll(PRETOKEN)) {
        if (/^\p{L}/u.test(piece)) count += 1 + Math.max(0, Math.ceil((piece.length - 7) / 4));
        else if (piece.length === 1 || piece.startsWith("'")) count += 1;
        else count += Math.ceil(piece.length / 2); // a punctuation run such as "..." or ").": pairs merge
      }
      return count;
    },
  };
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
