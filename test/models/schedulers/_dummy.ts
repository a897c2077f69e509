/**
 * The fixtures of diffusers' scheduler tests (`tests/schedulers/test_schedulers.py`),
 * rebuilt: the deterministic sample and noise of shape [4, 3, 8, 8] and the dummy
 * denoiser `sample × t / (t + 1)`, plus the loop those tests run.
 */
import type { Scheduler } from '../../../models/schedulers/scheduler.js';

const BATCH = 4;
const CHANNELS = 3;
const SIZE = 8;
const COUNT = BATCH * CHANNELS * SIZE * SIZE;

/**
 * `torch.arange(768)` reshaped to [3, 8, 8, 4], divided by 768 and permuted to
 * [4, 3, 8, 8]; `reversed` is `dummy_noise_deter` (the arange flipped first).
 */
function deterministic(reversed: boolean): Float32Array {
  const out = new Float32Array(COUNT);
  let position = 0;
  for (let b = 0; b < BATCH; b++) {
    for (let c = 0; c < CHANNELS; c++) {
      for (let h = 0; h < SIZE; h++) {
        for (let w = 0; w < SIZE; w++) {
          const k = ((c * SIZE + h) * SIZE + w) * BATCH + b;
          out[position++] = (reversed ? COUNT - 1 - k : k) / COUNT;
        }
      }
    }
  }
  return out;
}

/** diffusers' `dummy_sample_deter`. */
export const dummySampleDeter = (): Float32Array => deterministic(false);
/** diffusers' `dummy_noise_deter`. */
export const dummyNoiseDeter = (): Float32Array => deterministic(true);

/** diffusers' `dummy_model`: `sample × t / (t + 1)` in float32. */
export function dummyModel(sample: Float32Array, timestep: number): Float32Array {
  const t = Math.fround(timestep);
  return sample.map((value) => Math.fround(value * t) / (t + 1));
}

/** `torch.sum(torch.abs(x))` and `torch.mean(torch.abs(x))`. */
export function absStats(values: ArrayLike<number>): { sum: number; mean: number } {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.abs(values[i]);
  return { sum, mean: sum / values.length };
}

/** The elementwise map `f(x, noise)`; for building `add_noise` in tests. */
export function combine(a: Float32Array, b: Float32Array, f: (x: number, y: number) => number): Float32Array {
  return a.map((x, i) => f(x, b[i]));
}

/**
 * The loop of diffusers' full-loop tests from call `from` on: the denoiser sees
 * `scaleModelInput(sample)`; when `stepScaled` (the Euler tests reassign `sample` to the
 * scaled input before stepping) `step` gets the scaled sample too.
 */
export function runLoop(
  scheduler: Scheduler,
  sample: Float32Array,
  options: { from?: number; stepScaled?: boolean; noise?: (index: number) => Float32Array | undefined } = {},
): Float32Array {
  let x = sample;
  for (let i = options.from ?? 0; i < scheduler.timesteps.length; i++) {
    const input = scheduler.scaleModelInput(x, i);
    const output = dummyModel(input, scheduler.timesteps[i]);
    x = scheduler.step(output, i, options.stepScaled ? input : x, options.noise?.(i));
  }
  return x;
}
