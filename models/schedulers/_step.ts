/**
 * The argument checks every `Scheduler.step` makes, in one place.
 *
 * @module
 */
import { invalidOption } from '../../errors.js';
import type { SchedulerName } from './scheduler.js';

/**
 * Throws unless `index` is a position in `timesteps`, `modelOutput` (and `noise` when
 * given or `needsNoise`) have `sample`'s length.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` naming `index`, `modelOutput` or `noise`
 */
export function checkStep(
  name: SchedulerName,
  timesteps: readonly number[],
  modelOutput: Float32Array,
  index: number,
  sample: Float32Array,
  noise: Float32Array | undefined,
  needsNoise: boolean,
): void {
  if (!Number.isInteger(index) || index < 0 || index >= timesteps.length) {
    invalidOption('index', `${name}: must be an integer in [0, ${timesteps.length - 1}], got ${index}`);
  }
  if (modelOutput.length !== sample.length) {
    invalidOption('modelOutput', `${name}: has ${modelOutput.length} values but the sample has ${sample.length}`);
  }
  if (noise === undefined) {
    if (needsNoise) invalidOption('noise', `${name}: step ${index} adds noise: pass ${sample.length} N(0, 1) draws`);
  } else if (noise.length !== sample.length) {
    invalidOption('noise', `${name}: has ${noise.length} values but the sample has ${sample.length}`);
  }
}

/**
 * For schedulers that keep a history (PNDM, DPM-Solver++): the loop may start at any
 * index (as diffusers' img2img does), then must call `step` for consecutive indices.
 *
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` naming `index` when a call is out of order
 */
export class StepOrder {
  #next: number | undefined;
  constructor(private readonly name: SchedulerName) {}

  /** Records call `index`, checking it follows the previous one. */
  advance(index: number): void {
    if (this.#next !== undefined && index !== this.#next) {
      invalidOption('index', `${this.name}: steps must be taken in order, expected index ${this.#next}, got ${index} (make a new scheduler for each loop)`);
    }
    this.#next = index + 1;
  }
}
