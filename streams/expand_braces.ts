/**
 * Brace patterns for shard lists, as webdataset and the shell write them:
 * `shard-{000000..000099}.tar`.
 *
 * @module
 */
import { invalidOption } from '../errors.js';

/** Options of {@link expandBraces}. */
export interface ExpandBracesOptions {
  /** Refuse patterns that expand to more names than this (a typo like `{0..99999999}`). @default 1000000 */
  maxResults?: number;
}

const NUMERIC_RANGE = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/u;
const LETTER_RANGE = /^([A-Za-z])\.\.([A-Za-z])$/u;

/**
 * Expands brace groups the way bash and Python's `braceexpand` do:
 * `{a,b}` gives each alternative, `{0..9}` each integer (with the zero padding
 * of the wider end when either end starts with `0`, and an optional step
 * `{0..10..2}`), `{a..e}` each letter; groups nest and several groups give every
 * combination, left to right. A group without `,` or `..` stays as written.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for an unbalanced brace or
 * more than `maxResults` names
 * @example
 * ```ts
 * expandBraces('out/shard-{000000..000002}.tar');
 * // ['out/shard-000000.tar', 'out/shard-000001.tar', 'out/shard-000002.tar']
 * expandBraces('{train,val}-{0..1}.tar'); // ['train-0.tar', 'train-1.tar', 'val-0.tar', 'val-1.tar']
 * ```
 */
export function expandBraces(pattern: string, options: ExpandBracesOptions = {}): string[] {
  return expand(pattern, pattern, options.maxResults ?? 1_000_000);
}

function expand(pattern: string, whole: string, maxResults: number): string[] {
  const open = pattern.indexOf('{');
  if (open === -1) {
    if (pattern.includes('}')) invalidOption('pattern', `unbalanced '}' in ${JSON.stringify(whole)}`);
    return [pattern];
  }
  if (pattern.slice(0, open).includes('}')) invalidOption('pattern', `unbalanced '}' in ${JSON.stringify(whole)}`);
  const close = matchingBrace(pattern, open);
  if (close === -1) invalidOption('pattern', `unbalanced '{' in ${JSON.stringify(whole)}`);
  const head = pattern.slice(0, open);
  const body = pattern.slice(open + 1, close);
  const tails = expand(pattern.slice(close + 1), whole, maxResults);
  const alternatives = groupAlternatives(body, whole, maxResults);
  if (alternatives.length * tails.length > maxResults) {
    invalidOption('pattern', `${JSON.stringify(whole)} expands to more than ${maxResults} names`);
  }
  const results: string[] = [];
  for (const alternative of alternatives) for (const tail of tails) results.push(head + alternative + tail);
  return results;
}

function groupAlternatives(body: string, whole: string, maxResults: number): string[] {
  const numeric = NUMERIC_RANGE.exec(body);
  if (numeric) return numericRange(numeric[1], numeric[2], numeric[3], whole, maxResults);
  const letters = LETTER_RANGE.exec(body);
  if (letters) {
    const from = letters[1].charCodeAt(0);
    const to = letters[2].charCodeAt(0);
    const step = from <= to ? 1 : -1;
    const out: string[] = [];
    for (let code = from; step > 0 ? code <= to : code >= to; code += step) out.push(String.fromCharCode(code));
    return out;
  }
  const parts = splitTopLevel(body);
  if (parts.length === 1) return expand(body, whole, maxResults).map((inner) => `{${inner}}`);
  const out: string[] = [];
  for (const part of parts) {
    out.push(...expand(part, whole, maxResults));
    if (out.length > maxResults) invalidOption('pattern', `${JSON.stringify(whole)} expands to more than ${maxResults} names`);
  }
  return out;
}

function numericRange(fromText: string, toText: string, stepText: string | undefined, whole: string, maxResults: number): string[] {
  const from = Number(fromText);
  const to = Number(toText);
  const stepSize = Math.abs(Number(stepText ?? 1)) || 1;
  const count = Math.floor(Math.abs(to - from) / stepSize) + 1;
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || count > maxResults) {
    invalidOption('pattern', `${JSON.stringify(whole)} expands to more than ${maxResults} names`);
  }
  const padded = /^-?0\d/u.test(fromText) || /^-?0\d/u.test(toText);
  const width = padded ? Math.max(fromText.replace('-', '').length, toText.replace('-', '').length) : 0;
  const step = from <= to ? stepSize : -stepSize;
  const out: string[] = [];
  for (let i = 0, value = from; i < count; i++, value += step) {
    const digits = String(Math.abs(value)).padStart(width, '0');
    out.push(value < 0 ? `-${digits}` : digits);
  }
  return out;
}

function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

function splitTopLevel(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '{') depth++;
    else if (body[i] === '}') depth--;
    else if (body[i] === ',' && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(body.slice(start));
  return parts;
}
