/**
 * Quality checks of a generated batch with regeneration: failed images are made again
 * with the next attempt's seed, up to the retry limit. Private to transforms/.
 */
import { isMiss, type GeneratedImage, type GenerationMiss, type GenerationRequest, type Generator } from '../models/generator.js';
import { deriveSeed } from '../models/seeded_random.js';
import type { GrayImage } from './image_stats.js';
import type { AlignmentScorer, ImageScores, QualityFilter, QualityVerdict } from './quality_filter.js';

/** What {@link assessBatch} needs besides the batch. */
export interface AssessContext {
  filter: QualityFilter;
  alignment?: AlignmentScorer;
  /** Regenerations allowed per image after its first attempt. */
  retries: number;
  runSeed: number;
  generator: Generator;
  sampleKey(request: GenerationRequest): string;
  /** Called for each regeneration call with its size and time. */
  onBatch?: (images: number, milliseconds: number) => void;
}

/**
 * Scores every image of a batch, regenerates failures, and decides in input order.
 * Replaces `requests[i]` and `results[i]` by the attempt that was kept (or the last one
 * tried) and returns the verdict of each image (`undefined` for a miss).
 *
 * Scores that depend on the image alone are retried for the whole batch at once, round
 * by round; the duplicate search then runs image by image in input order, each kept
 * image joining the index before the next is looked up, and a duplicate is regenerated
 * on its own. So the decisions do not depend on how the input was cut into batches.
 */
export async function assessBatch(
  requests: GenerationRequest[],
  results: Array<GeneratedImage | GenerationMiss>,
  context: AssessContext,
): Promise<Array<QualityVerdict | undefined>> {
  const { filter, generator, retries } = context;
  const canRetry = generator.usesSeed !== false;
  const scores: Array<ImageScores | undefined> = await scoreAll(results, requests, context);

  // Round by round: everything that failed on its own scores and has attempts left.
  for (;;) {
    const failing = requests.flatMap((request, i) =>
      canRetry && scores[i] !== undefined && scores[i]!.reasons.length > 0 && request.attempt < retries ? [i] : [],
    );
    if (failing.length === 0) break;
    if (!(await regenerate(failing, requests, results, scores, context))) break;
  }

  const verdicts: Array<QualityVerdict | undefined> = new Array(requests.length);
  for (let i = 0; i < requests.length; i++) {
    for (;;) {
      const scored = scores[i];
      if (scored === undefined) break;
      const request = requests[i]!;
      const verdict = filter.decide(scored, context.sampleKey(request), request.key);
      verdicts[i] = verdict;
      if (verdict.passed) {
        filter.keep(scored, context.sampleKey(request), request.key);
        break;
      }
      if (!canRetry || request.attempt >= retries || !(await regenerate([i], requests, results, scores, context))) break;
    }
  }
  return verdicts;
}

/** Makes `indices` again with their next attempt; false when the backend failed (the last attempts stand). */
async function regenerate(
  indices: number[],
  requests: GenerationRequest[],
  results: Array<GeneratedImage | GenerationMiss>,
  scores: Array<ImageScores | undefined>,
  context: AssessContext,
): Promise<boolean> {
  const again = indices.map((i) => {
    const request = requests[i]!;
    const attempt = request.attempt + 1;
    return { ...request, attempt, seed: deriveSeed(context.runSeed, request.key, request.variant, attempt) };
  });
  const started = performance.now();
  let made: Array<GeneratedImage | GenerationMiss>;
  try {
    made = await context.generator.generate(again);
    if (made.length !== again.length) return false;
  } catch {
    return false;
  }
  context.onBatch?.(again.length, performance.now() - started);
  const rescored = await scoreAll(made, again, context);
  indices.forEach((i, k) => {
    const result = made[k]!;
    // A backend that cannot make the image again leaves the last attempt standing.
    if (isMiss(result)) {
      requests[i] = { ...requests[i]!, attempt: again[k]!.attempt };
      return;
    }
    requests[i] = again[k]!;
    results[i] = result;
    scores[i] = rescored[k];
  });
  return true;
}

async function scoreAll(
  results: ReadonlyArray<GeneratedImage | GenerationMiss>,
  requests: readonly GenerationRequest[],
  context: AssessContext,
): Promise<Array<ImageScores | undefined>> {
  const grays = results.map((result) => (isMiss(result) ? undefined : toGray(result)));
  let alignments: Array<number | undefined> = grays.map(() => undefined);
  if (context.alignment) {
    const present = grays.flatMap((gray, i) => (gray ? [i] : []));
    const similarities = await context.alignment.score(
      present.map((i) => grays[i]!),
      present.map((i) => requests[i]!.report.caption),
    );
    alignments = grays.map(() => undefined);
    present.forEach((i, k) => (alignments[i] = similarities[k]));
  }
  return grays.map((gray, i) => (gray === undefined ? undefined : context.filter.score(gray, alignments[i])));
}

/** The image as 8-bit gray: as it is, or RGB weighted as ITU-R BT.601 luma. */
export function toGray(image: GeneratedImage): GrayImage {
  if (image.channels === 1) return { pixels: image.pixels, width: image.width, height: image.height };
  const gray = new Uint8Array(image.width * image.height);
  const rgb = image.pixels;
  for (let i = 0, j = 0; i < gray.length; i++, j += 3) gray[i] = Math.round(0.299 * rgb[j]! + 0.587 * rgb[j + 1]! + 0.114 * rgb[j + 2]!);
  return { pixels: gray, width: image.width, height: image.height };
}
