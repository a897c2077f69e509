/**
 * What the in-process and the worker-thread cleaning paths share: the duplicate
 * index and the error for `onError: 'fail'`. Private to transforms/.
 */
import { createHash } from 'node:crypto';
import { ErrorCodes, invalidOption, MedsynError } from '../errors.js';
import type { Reject } from '../records.js';

/** A 128-bit digest of a prompt, as base64 (22 characters). */
export function promptDigest(prompt: string): string {
  return createHash('sha256').update(prompt).digest('base64').slice(0, 22);
}

/** The prompts kept so far, by digest, with the id that first had each. */
export class PromptIndex {
  readonly #first = new Map<string, string>();

  /** Records `digest` for `id`; returns the id that had it first, or undefined when it is new. */
  firstHolder(digest: string, id: string): string | undefined {
    const first = this.#first.get(digest);
    if (first === undefined) this.#first.set(digest, id);
    return first;
  }
}

/** The reject of a report whose prompt repeats an earlier one's. */
export function duplicateReject(id: string, source: string, firstId: string): Reject {
  return { id, source, reason: 'duplicate', message: `same prompt as ${firstId}` };
}

/** Checks an `onError` option. */
export function resolveOnError(onError: 'skip' | 'fail' | undefined): 'skip' | 'fail' {
  const policy = onError ?? 'skip';
  if (policy !== 'skip' && policy !== 'fail') invalidOption('onError', `must be 'skip' or 'fail', got '${String(policy)}'`);
  return policy;
}

/** The error `onError: 'fail'` throws at a reject. */
export function rejectedError(reject: Reject): MedsynError {
  return new MedsynError(ErrorCodes.REJECTED, `Rejected ${reject.id ?? reject.source} (${reject.reason}): ${reject.message} (use --on-error skip to go on)`, {
    file: reject.source,
  });
}
