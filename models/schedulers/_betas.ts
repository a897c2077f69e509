/**
 * The training noise schedule every scheduler starts from: betas and the cumulative
 * products of the alphas, as diffusers builds them, plus the few numpy operations
 * (`linspace`, float `arange`, `round`, `interp`) whose exact rounding decides the
 * timestep lists.
 *
 * diffusers keeps betas and `alphas_cumprod` in float32 tensors; the values here are
 * rounded to float32 the same way (`Math.fround`) and held in float64, so later
 * arithmetic runs in float64 on the same inputs. torch's vectorised `linspace` kernel
 * may round a beta one float32 ulp differently on some CPUs; that is far below what any
 * result depends on. `cumprod` is torch's: a float64 running product, each element
 * rounded to float32.
 *
 * @module
 */

/** The training schedule fields of a resolved config. */
export interface TrainingScheduleConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
  trained_betas: readonly number[] | null;
  rescale_betas_zero_snr: boolean;
}

/** The spacing fields of a resolved config. */
export interface SpacingConfig {
  num_train_timesteps: number;
  timestep_spacing: 'leading' | 'linspace' | 'trailing';
  steps_offset: number;
}

/** Betas, alphas and their cumulative products over the training timesteps (float32 values). */
export interface TrainingSchedule {
  readonly betas: Float64Array;
  readonly alphasCumprod: Float64Array;
}

/**
 * Builds the training schedule of `config`.
 * `squaredcos_cap_v2` is Nichol and Dhariwal's cosine schedule, each beta capped at 0.999.
 */
export function trainingSchedule(config: TrainingScheduleConfig): TrainingSchedule {
  const count = config.trained_betas ? config.trained_betas.length : config.num_train_timesteps;
  let betas: Float64Array = new Float64Array(count);
  if (config.trained_betas) {
    config.trained_betas.forEach((beta, i) => (betas[i] = Math.fround(beta)));
  } else if (config.beta_schedule === 'linear') {
    betas = float32Linspace(config.beta_start, config.beta_end, count);
  } else if (config.beta_schedule === 'scaled_linear') {
    betas = float32Linspace(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), count).map((root) => Math.fround(root * root));
  } else {
    const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (let i = 0; i < count; i++) {
      betas[i] = Math.fround(Math.min(1 - alphaBar((i + 1) / count) / alphaBar(i / count), 0.999));
    }
  }
  if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
  return { betas, alphasCumprod: cumprodOfAlphas(betas) };
}

/** `torch.cumprod(1 - betas)` in float32: a float64 running product, each element rounded to float32. */
function cumprodOfAlphas(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let product = 1;
  for (let i = 0; i < betas.length; i++) {
    product *= Math.fround(1 - betas[i]);
    out[i] = Math.fround(product);
  }
  return out;
}

/**
 * Lin, Liu, Li and Yang's rescaling to zero terminal SNR ("Common Diffusion Noise
 * Schedules and Sample Steps are Flawed", Algorithm 1).
 */
function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const roots: Float64Array = cumprodOfAlphas(betas).map((value) => Math.fround(Math.sqrt(value)));
  const first = roots[0];
  const last = roots[roots.length - 1];
  const scale = Math.fround(first / (first - last));
  const alphasBar = roots.map((root) => Math.fround(Math.fround(Math.fround(root - last) * scale) ** 2));
  return alphasBar.map((value, i) => Math.fround(1 - (i === 0 ? value : Math.fround(value / alphasBar[i - 1]))));
}

/** `torch.linspace(start, end, count, dtype=float32)`, up to the ulp noted in the module doc. */
function float32Linspace(start: number, end: number, count: number): Float64Array {
  const from = Math.fround(start);
  const to = Math.fround(end);
  const out = new Float64Array(count);
  if (count === 1) return out.fill(from);
  const step = Math.fround((to - from) / (count - 1));
  const halfway = Math.floor(count / 2);
  for (let i = 0; i < count; i++) {
    out[i] = Math.fround(i < halfway ? from + step * i : to - step * (count - i - 1));
  }
  return out;
}

/** `np.linspace(start, stop, count)` in float64, bit for bit: `i × step + start`, the last value `stop`. */
export function numpyLinspace(start: number, stop: number, count: number): number[] {
  const out: number[] = [];
  if (count === 1) return [start];
  const step = (stop - start) / (count - 1);
  for (let i = 0; i < count; i++) out.push(i * step + start);
  out[count - 1] = stop;
  return out;
}

/**
 * `np.arange(start, stop, step)` for a float step, bit for bit: the length is
 * `ceil((stop − start) / step)` and element i is `start + i × delta` with
 * `delta = (start + step) − start`.
 */
export function numpyArange(start: number, stop: number, step: number): number[] {
  const length = Math.max(0, Math.ceil((stop - start) / step));
  if (length === 0) return [];
  const delta = start + step - start;
  const out = [start];
  if (length > 1) out.push(start + step);
  for (let i = 2; i < length; i++) out.push(start + i * delta);
  return out;
}

/** `np.round` (and `np.rint`): to the nearest integer, halves to even. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction < 0.5) return floor;
  if (fraction > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** `np.interp(x, [0, 1, …, values.length − 1], values)`: linear interpolation between integer positions. */
export function interpolateAt(x: number, values: ArrayLike<number>): number {
  const last = values.length - 1;
  if (x <= 0) return values[0];
  if (x >= last) return values[last];
  const low = Math.floor(x);
  if (x === low) return values[low];
  const slope = values[low + 1] - values[low];
  return slope * (x - low) + values[low];
}

/**
 * PNDM's and DDIM's inference timesteps, ascending (DDIM runs them reversed):
 * `linspace` rounds N points of [0, T − 1]; `leading` is i⌊T/N⌋ + `steps_offset`;
 * `trailing` rounds T, T − T/N, … (down to > 0) and subtracts 1.
 */
export function spacedTimesteps(config: SpacingConfig, steps: number): number[] {
  const total = config.num_train_timesteps;
  switch (config.timestep_spacing) {
    case 'linspace':
      return numpyLinspace(0, total - 1, steps).map(roundHalfEven);
    case 'leading': {
      const ratio = Math.floor(total / steps);
      return Array.from({ length: steps }, (_, i) => i * ratio + config.steps_offset);
    }
    case 'trailing':
      return trailingTimesteps(total, total, steps).reverse();
  }
}

/**
 * `trailing` spacing, descending: `np.arange(start, 0, -total/steps)` rounded, minus 1.
 * For some step counts (61, 103, 121, … with 1000 training steps) numpy's float arange
 * yields one more value, ≈ 0, which becomes timestep −1 (diffusers then indexes the
 * schedule from its end); it is dropped here.
 */
export function trailingTimesteps(start: number, total: number, steps: number): number[] {
  return numpyArange(start, 0, -total / steps)
    .map((t) => roundHalfEven(t) - 1)
    .filter((t) => t >= 0);
}
