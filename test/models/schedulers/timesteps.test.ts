import t from 'tap';
import { createScheduler } from '../../../models/schedulers/create_scheduler.js';
import type { SchedulerConfig, SchedulerName } from '../../../models/schedulers/scheduler.js';

// Stable Diffusion 1.x's scheduler_config.json (CompVis/stable-diffusion-v1-4, RoentGen).
const SD_CONFIG: SchedulerConfig = {
  _class_name: 'PNDMScheduler',
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  num_train_timesteps: 1000,
  steps_offset: 1,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  clip_sample: false,
  trained_betas: null,
};

// The lists diffusers' set_timesteps gives for SD_CONFIG with each timestep_spacing, worked
// out from its numpy arithmetic (np.linspace, float np.arange, half-to-even np.round) in an
// independent Python re-implementation; Euler's linspace timesteps are float32 values.
const EXPECTED: Record<SchedulerName, Record<'leading' | 'linspace' | 'trailing', Record<10 | 50, number[]>>> = {
  'pndm': {
    leading: { 10: [901, 801, 801, 701, 601, 501, 401, 301, 201, 101, 1], 50: [981, 961, 961, 941, 921, 901, 881, 861, 841, 821, 801, 781, 761, 741, 721, 701, 681, 661, 641, 621, 601, 581, 561, 541, 521, 501, 481, 461, 441, 421, 401, 381, 361, 341, 321, 301, 281, 261, 241, 221, 201, 181, 161, 141, 121, 101, 81, 61, 41, 21, 1] },
    linspace: { 10: [999, 888, 888, 777, 666, 555, 444, 333, 222, 111, 0], 50: [999, 979, 979, 958, 938, 917, 897, 877, 856, 836, 816, 795, 775, 754, 734, 714, 693, 673, 652, 632, 612, 591, 571, 550, 530, 510, 489, 469, 449, 428, 408, 387, 367, 347, 326, 306, 285, 265, 245, 224, 204, 183, 163, 143, 122, 102, 82, 61, 41, 20, 0] },
    trailing: { 10: [999, 899, 899, 799, 699, 599, 499, 399, 299, 199, 99], 50: [999, 979, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 499, 479, 459, 439, 419, 399, 379, 359, 339, 319, 299, 279, 259, 239, 219, 199, 179, 159, 139, 119, 99, 79, 59, 39, 19] },
  },
  'ddim': {
    leading: { 10: [901, 801, 701, 601, 501, 401, 301, 201, 101, 1], 50: [981, 961, 941, 921, 901, 881, 861, 841, 821, 801, 781, 761, 741, 721, 701, 681, 661, 641, 621, 601, 581, 561, 541, 521, 501, 481, 461, 441, 421, 401, 381, 361, 341, 321, 301, 281, 261, 241, 221, 201, 181, 161, 141, 121, 101, 81, 61, 41, 21, 1] },
    linspace: { 10: [999, 888, 777, 666, 555, 444, 333, 222, 111, 0], 50: [999, 979, 958, 938, 917, 897, 877, 856, 836, 816, 795, 775, 754, 734, 714, 693, 673, 652, 632, 612, 591, 571, 550, 530, 510, 489, 469, 449, 428, 408, 387, 367, 347, 326, 306, 285, 265, 245, 224, 204, 183, 163, 143, 122, 102, 82, 61, 41, 20, 0] },
    trailing: { 10: [999, 899, 799, 699, 599, 499, 399, 299, 199, 99], 50: [999, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 499, 479, 459, 439, 419, 399, 379, 359, 339, 319, 299, 279, 259, 239, 219, 199, 179, 159, 139, 119, 99, 79, 59, 39, 19] },
  },
  'dpmpp-2m': {
    leading: { 10: [901, 811, 721, 631, 541, 451, 361, 271, 181, 91], 50: [951, 932, 913, 894, 875, 856, 837, 818, 799, 780, 761, 742, 723, 704, 685, 666, 647, 628, 609, 590, 571, 552, 533, 514, 495, 476, 457, 438, 419, 400, 381, 362, 343, 324, 305, 286, 267, 248, 229, 210, 191, 172, 153, 134, 115, 96, 77, 58, 39, 20] },
    linspace: { 10: [999, 899, 799, 699, 599, 500, 400, 300, 200, 100], 50: [999, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 500, 480, 460, 440, 420, 400, 380, 360, 340, 320, 300, 280, 260, 240, 220, 200, 180, 160, 140, 120, 100, 80, 60, 40, 20] },
    trailing: { 10: [999, 899, 799, 699, 599, 499, 399, 299, 199, 99], 50: [999, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 499, 479, 459, 439, 419, 399, 379, 359, 339, 319, 299, 279, 259, 239, 219, 199, 179, 159, 139, 119, 99, 79, 59, 39, 19] },
  },
  'euler-a': {
    leading: { 10: [901, 801, 701, 601, 501, 401, 301, 201, 101, 1], 50: [981, 961, 941, 921, 901, 881, 861, 841, 821, 801, 781, 761, 741, 721, 701, 681, 661, 641, 621, 601, 581, 561, 541, 521, 501, 481, 461, 441, 421, 401, 381, 361, 341, 321, 301, 281, 261, 241, 221, 201, 181, 161, 141, 121, 101, 81, 61, 41, 21, 1] },
    linspace: { 10: [999, 888, 777, 666, 555, 444, 333, 222, 111, 0], 50: [999, 978.6122436523438, 958.2244873046875, 937.8367309570312, 917.448974609375, 897.0612182617188, 876.6734619140625, 856.2857055664062, 835.89794921875, 815.5101928710938, 795.1224365234375, 774.7346801757812, 754.346923828125, 733.9591674804688, 713.5714111328125, 693.1836547851562, 672.7958984375, 652.4081420898438, 632.0203857421875, 611.6326293945312, 591.244873046875, 570.8571166992188, 550.4693603515625, 530.0816040039062, 509.6938781738281, 489.3061218261719, 468.9183654785156, 448.5306091308594, 428.1428527832031, 407.7550964355469, 387.3673400878906, 366.9795837402344, 346.5918273925781, 326.2040710449219, 305.8163146972656, 285.4285583496094, 265.0408020019531, 244.65306091308594, 224.2653045654297, 203.87754821777344, 183.4897918701172, 163.10203552246094, 142.7142791748047, 122.32653045654297, 101.93877410888672, 81.55101776123047, 61.163265228271484, 40.775508880615234, 20.387754440307617, 0] },
    trailing: { 10: [999, 899, 799, 699, 599, 499, 399, 299, 199, 99], 50: [999, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 499, 479, 459, 439, 419, 399, 379, 359, 339, 319, 299, 279, 259, 239, 219, 199, 179, 159, 139, 119, 99, 79, 59, 39, 19] },
  },
};

for (const name of Object.keys(EXPECTED) as SchedulerName[]) {
  t.test(`createScheduler('${name}') gives diffusers' timesteps for the SD 1.x config with each spacing`, async (t) => {
    for (const spacing of ['leading', 'linspace', 'trailing'] as const) {
      for (const steps of [10, 50] as const) {
        const scheduler = createScheduler(name, { ...SD_CONFIG, timestep_spacing: spacing }, { steps });
        t.same(scheduler.timesteps, EXPECTED[name][spacing][steps], `${spacing}, ${steps} steps`);
      }
    }
  });
}

t.test('createScheduler without timestep_spacing uses each diffusers class default: leading for PNDM and DDIM, linspace for the others', async (t) => {
  t.same(createScheduler('pndm', SD_CONFIG, { steps: 10 }).timesteps, EXPECTED.pndm.leading[10]);
  t.same(createScheduler('ddim', SD_CONFIG, { steps: 50 }).timesteps, EXPECTED.ddim.leading[50]);
  t.same(createScheduler('dpmpp-2m', SD_CONFIG, { steps: 10 }).timesteps, EXPECTED['dpmpp-2m'].linspace[10]);
  t.same(createScheduler('euler-a', SD_CONFIG, { steps: 50 }).timesteps, EXPECTED['euler-a'].linspace[50]);
});

t.test('pndm makes N + 1 denoiser calls with skip_prk_steps (the second timestep twice) and N + 9 without', async (t) => {
  const skip = createScheduler('pndm', SD_CONFIG, { steps: 50 });
  t.equal(skip.timesteps.length, 51);
  t.equal(skip.timesteps[1], skip.timesteps[2]);
  // diffusers' test_steps_offset: the Runge–Kutta warm-up then PLMS, 10 steps, steps_offset 1.
  const prk = createScheduler('pndm', { steps_offset: 1 }, { steps: 10 });
  t.same(prk.timesteps, [901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1]);
});

t.test('ddim with steps_offset 1 gives the list in diffusers test_steps_offset', async (t) => {
  t.same(createScheduler('ddim', { steps_offset: 1 }, { steps: 5 }).timesteps, [801, 601, 401, 201, 1]);
});

t.test('dpmpp-2m with Karras sigmas takes the rounded timesteps of the Karras sigma ramp', async (t) => {
  t.same(createScheduler('dpmpp-2m', SD_CONFIG, { steps: 10, karras: true }).timesteps, [999, 916, 815, 687, 523, 327, 146, 41, 7, 0]);
  t.same(createScheduler('dpmpp-2m', { ...SD_CONFIG, use_karras_sigmas: true }, { steps: 10 }).timesteps, [999, 916, 815, 687, 523, 327, 146, 41, 7, 0]);
  t.same(createScheduler('dpmpp-2m', { ...SD_CONFIG, use_karras_sigmas: true }, { steps: 10, karras: false }).timesteps, EXPECTED['dpmpp-2m'].linspace[10]);
  const fifty = createScheduler('dpmpp-2m', SD_CONFIG, { steps: 50, karras: true }).timesteps;
  t.same(fifty.slice(0, 8), [999, 985, 970, 955, 940, 924, 907, 890]);
  t.same(fifty.slice(-8), [12, 8, 6, 4, 2, 1, 1, 0]);
});

t.test('euler-a starts from the largest sigma, or √(σ² + 1) with leading spacing', async (t) => {
  // float32 values from the Python re-implementation (torch's float32 betas): within one float32 ulp.
  const close = (actual: number, expected: number, what: string): void => {
    t.ok(Math.abs(actual - expected) <= 2e-7 * expected, `${what}: ${actual} ≈ ${expected}`);
  };
  close(createScheduler('euler-a', SD_CONFIG, { steps: 50 }).initNoiseSigma, 14.614645004272461, 'linspace');
  close(createScheduler('euler-a', { ...SD_CONFIG, timestep_spacing: 'trailing' }, { steps: 10 }).initNoiseSigma, 14.614645004272461, 'trailing');
  close(createScheduler('euler-a', { ...SD_CONFIG, timestep_spacing: 'leading' }, { steps: 10 }).initNoiseSigma, 8.450066566467285, 'leading 10');
  close(createScheduler('euler-a', { ...SD_CONFIG, timestep_spacing: 'leading' }, { steps: 50 }).initNoiseSigma, 13.158468246459961, 'leading 50');
  for (const name of ['pndm', 'ddim', 'dpmpp-2m'] as const) t.equal(createScheduler(name, SD_CONFIG, { steps: 10 }).initNoiseSigma, 1);
});

t.test('trailing spacing drops the extra ≈0 value numpy’s float arange gives for some step counts', async (t) => {
  // np.arange(1000, 0, -1000/61) has 62 values, the last ≈ 1e-13: diffusers would step to timestep −1.
  for (const name of ['pndm', 'ddim', 'dpmpp-2m', 'euler-a'] as const) {
    const timesteps = createScheduler(name, { ...SD_CONFIG, timestep_spacing: 'trailing' }, { steps: 61 }).timesteps;
    t.equal(timesteps.length, name === 'pndm' ? 62 : 61, name);
    t.equal(timesteps.at(-1), 15, name);
    t.equal(timesteps[0], 999, name);
  }
});

t.test('trailing spacing rounds numpy’s float arange exactly (start + i × ((start + step) − start))', async (t) => {
  // With 144 steps, i × (−1000/144) and i × ((1000 − 1000/144) − 1000) round differently at i = 9 and 45.
  for (const name of ['ddim', 'dpmpp-2m', 'euler-a'] as const) {
    const timesteps = createScheduler(name, { ...SD_CONFIG, timestep_spacing: 'trailing' }, { steps: 144 }).timesteps;
    t.equal(timesteps.length, 144);
    t.same(timesteps.slice(0, 12), [999, 992, 985, 978, 971, 964, 957, 950, 943, 936, 930, 923], name);
    t.same(timesteps.slice(40, 50), [721, 714, 707, 700, 693, 686, 680, 673, 666, 659], name);
  }
});

t.test('leading timesteps past the schedule are refused with a hint', async (t) => {
  t.throws(() => createScheduler('ddim', SD_CONFIG, { steps: 1000 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'steps', message: /timestep 1000.*fewer steps/ });
  t.equal(createScheduler('ddim', { ...SD_CONFIG, steps_offset: 0 }, { steps: 1000 }).timesteps.length, 1000);
});
