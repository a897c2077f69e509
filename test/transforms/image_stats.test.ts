import t, { type Test } from 'tap';
import sharp from 'sharp';
import { phantomFindings } from '../../models/phantom_findings.js';
import { renderPhantom } from '../../models/render_phantom.js';
import { SeededRandom } from '../../models/seeded_random.js';
import { imageStats, type GrayImage, type ImageStats } from '../../transforms/image_stats.js';

const SIZE = 256;

function phantom(seed: number): GrayImage {
  const pixels = renderPhantom(phantomFindings({ labels: { pleuralEffusion: 1 }, attributes: {}, caption: 'Small effusion.' }), seed, SIZE);
  return { pixels, width: SIZE, height: SIZE };
}

function filled(width: number, height: number, value: number): GrayImage {
  return { pixels: new Uint8Array(width * height).fill(value), width, height };
}

/** A (2·radius + 1)² box blur with the edges clamped. */
function boxBlur(image: GrayImage, radius: number): GrayImage {
  const { pixels, width, height } = image;
  const out = new Uint8Array(pixels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let dy = -radius; dy <= radius; dy++) {
        for (let dx = -radius; dx <= radius; dx++) {
          const yy = Math.min(height - 1, Math.max(0, y + dy));
          const xx = Math.min(width - 1, Math.max(0, x + dx));
          sum += pixels[yy * width + xx]!;
        }
      }
      out[y * width + x] = Math.round(sum / (2 * radius + 1) ** 2);
    }
  }
  return { pixels: out, width, height };
}

function withNoise(image: GrayImage, amplitude: number, seed: number): GrayImage {
  const random = new SeededRandom(seed);
  const pixels = image.pixels.map((value) => Math.min(255, Math.max(0, value + Math.round((random.uniform() * 2 - 1) * amplitude))));
  return { ...image, pixels };
}

/** The statistics straight from their definitions, in two passes, with 2-D indexing. */
function naiveStats(image: GrayImage): ImageStats {
  const { pixels, width, height } = image;
  const values = [...pixels];
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const contrast = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / n);
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let entropy = 0;
  for (const c of counts.values()) entropy -= (c / n) * Math.log2(c / n);
  const at = (x: number, y: number): number => pixels[y * width + x]!;
  const laplacians: number[] = [];
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) laplacians.push(at(x, y - 1) + at(x, y + 1) + at(x - 1, y) + at(x + 1, y) - 4 * at(x, y));
  }
  const lMean = laplacians.reduce((a, b) => a + b, 0) / Math.max(1, laplacians.length);
  const sharpness = laplacians.reduce((a, v) => a + (v - lMean) ** 2, 0) / Math.max(1, laplacians.length);
  const dominant = Math.max(...counts.values());
  // Immerkær's mask, applied directly.
  const mask = [1, -2, 1, -2, 4, -2, 1, -2, 1];
  let absolute = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      let sum = 0;
      for (let k = 0; k < 9; k++) sum += mask[k]! * at(x + (k % 3) - 1, y + Math.floor(k / 3) - 1);
      absolute += Math.abs(sum);
    }
  }
  const noise = laplacians.length > 0 ? (Math.sqrt(Math.PI / 2) / (6 * laplacians.length)) * absolute : 0;
  return {
    mean,
    contrast,
    entropy,
    sharpness,
    noise,
    blackShare: values.filter((v) => v <= 5).length / n,
    whiteShare: values.filter((v) => v >= 250).length / n,
    blank: contrast < 2 || dominant >= 0.99 * n,
  };
}

function closeTo(t: Test, actual: ImageStats, expected: ImageStats, label: string): void {
  for (const name of ['mean', 'contrast', 'entropy', 'sharpness', 'noise', 'blackShare', 'whiteShare'] as const) {
    t.ok(Math.abs(actual[name] - expected[name]) <= 1e-9 * Math.max(1, Math.abs(expected[name])), `${label}: ${name} ${actual[name]} ≈ ${expected[name]}`);
  }
  t.equal(actual.blank, expected.blank, `${label}: blank`);
}

t.test('imageStats agrees with the definitions on random images of odd sizes', async (t) => {
  const random = new SeededRandom(5);
  for (const [width, height] of [[1, 1], [2, 7], [3, 3], [17, 5], [64, 48], [5, 101]] as const) {
    const pixels = Uint8Array.from({ length: width * height }, () => random.uint32() & 0xff);
    const image = { pixels, width, height };
    closeTo(t, imageStats(image), naiveStats(image), `${width}×${height}`);
  }
  const image = phantom(3);
  closeTo(t, imageStats(image), naiveStats(image), 'phantom');
});

t.test('imageStats gives the entropy and mean sharp computes, and the population standard deviation', async (t) => {
  const image = phantom(4);
  const reference = await sharp(image.pixels, { raw: { width: SIZE, height: SIZE, channels: 1 } }).stats();
  const stats = imageStats(image);
  t.ok(Math.abs(stats.entropy - reference.entropy) < 1e-5, `entropy ${stats.entropy} vs sharp ${reference.entropy}`);
  t.ok(Math.abs(stats.mean - reference.channels[0]!.mean) < 1e-9);
  const n = SIZE * SIZE;
  // sharp divides by n − 1.
  t.ok(Math.abs(stats.contrast - reference.channels[0]!.stdev * Math.sqrt((n - 1) / n)) < 1e-6);
});

t.test('imageStats: a hand-checked 4×3 image', async (t) => {
  // Interior pixels (1,1) = 10 and (2,1) = 250 with all neighbours 0 but each other:
  // Laplacians 250 − 40 = 210 and 10 − 1000 = −990; mean −390, variance 600².
  const pixels = Uint8Array.from([0, 0, 0, 0, 0, 10, 250, 0, 0, 0, 0, 0]);
  const stats = imageStats({ pixels, width: 4, height: 3 });
  t.equal(stats.mean, 260 / 12);
  t.equal(stats.sharpness, 360000);
  t.equal(stats.blackShare, 10 / 12);
  t.equal(stats.whiteShare, 1 / 12);
  t.equal(stats.blank, false);
  t.ok(Math.abs(stats.entropy - (-(10 / 12) * Math.log2(10 / 12) - 2 * (1 / 12) * Math.log2(1 / 12))) < 1e-12);
});

t.test('imageStats flags a blank frame: flat, flat with specks, and all white', async (t) => {
  const gray = imageStats(filled(64, 64, 128));
  t.match(gray, { mean: 128, contrast: 0, entropy: 0, sharpness: 0, blackShare: 0, whiteShare: 0, blank: true });
  t.ok(Object.is(gray.entropy, 0), 'entropy is +0, not −0');

  const white = imageStats(filled(64, 64, 255));
  t.match(white, { mean: 255, whiteShare: 1, blackShare: 0, blank: true }, 'saturated: all white');
  t.match(imageStats(filled(64, 64, 0)), { blackShare: 1, blank: true });

  // Almost flat: ±1 noise, contrast under 2 with no value dominant.
  const nearlyFlat = imageStats(withNoise(filled(64, 64, 100), 1, 1));
  t.ok(nearlyFlat.contrast < 2 && nearlyFlat.contrast > 0.5);
  t.equal(nearlyFlat.blank, true, 'contrast below 2');

  // 0.5 % white specks on black: contrast 18, but one value holds 99.5 %.
  const specks = filled(100, 100, 0);
  for (let i = 0; i < 50; i++) specks.pixels[i * 197] = 255;
  const speckled = imageStats(specks);
  t.ok(speckled.contrast > 2, `contrast ${speckled.contrast} passes alone`);
  t.equal(speckled.blank, true, 'one value holds ≥ 99 %');
  // 2 % specks: no longer blank.
  for (let i = 0; i < 200; i++) specks.pixels[i * 49] = 255;
  t.equal(imageStats(specks).blank, false);

  const real = imageStats(phantom(1));
  t.equal(real.blank, false, 'a phantom is not blank');
  t.ok(real.contrast > 30 && real.entropy > 5, `phantom contrast ${real.contrast}, entropy ${real.entropy}`);
});

t.test('imageStats: a washed-out copy has lower contrast and entropy, is still not blank', async (t) => {
  const image = phantom(2);
  const original = imageStats(image);
  const pixels = image.pixels.map((value) => Math.round(120 + (value - original.mean) / 16));
  const washed = imageStats({ ...image, pixels });
  t.ok(Math.abs(washed.contrast - original.contrast / 16) < 0.5, `contrast ${washed.contrast} ≈ ${original.contrast} / 16`);
  t.ok(washed.entropy < original.entropy - 2, `entropy ${washed.entropy} < ${original.entropy} − 2`);
  t.equal(washed.blank, false);
  t.ok(washed.contrast < 20, 'fails a min-contrast of 20');
});

t.test('imageStats: blur lowers sharpness, noise raises sharpness and entropy', async (t) => {
  const image = phantom(3);
  const original = imageStats(image);
  const blurred = imageStats(boxBlur(image, 2));
  t.ok(blurred.sharpness < original.sharpness / 4, `blurred ${blurred.sharpness} < ${original.sharpness} / 4`);
  t.ok(Math.abs(blurred.mean - original.mean) < 1, 'blur keeps the mean');
  const sharpBlurred = await sharp(image.pixels, { raw: { width: SIZE, height: SIZE, channels: 1 } }).blur(3).toColourspace('b-w').raw().toBuffer();
  t.ok(imageStats({ ...image, pixels: sharpBlurred }).sharpness < original.sharpness / 4, "sharp's Gaussian blur too");

  const noisy = imageStats(withNoise(image, 20, 9));
  t.ok(noisy.sharpness > original.sharpness * 4, `noisy ${noisy.sharpness} > ${original.sharpness} × 4`);
  t.ok(noisy.entropy > original.entropy, `entropy ${noisy.entropy} > ${original.entropy}`);
});

t.test('imageStats takes a Buffer and refuses malformed images', async (t) => {
  const buffer = Buffer.alloc(6, 7);
  t.match(imageStats({ pixels: buffer, width: 3, height: 2 }), { mean: 7, blank: true });
  const invalid = { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'image' };
  t.throws(() => imageStats({ pixels: new Uint8Array(10), width: 3, height: 3 }), invalid, 'wrong length');
  t.throws(() => imageStats({ pixels: new Uint8Array(9 * 3), width: 3, height: 3 }), invalid, 'RGB');
  t.throws(() => imageStats({ pixels: new Uint8Array(0), width: 0, height: 0 }), invalid, 'empty');
  t.throws(() => imageStats({ pixels: new Uint8Array(4), width: 1.5, height: 2 }), invalid, 'fractional width');
  t.throws(() => imageStats({ pixels: new Uint16Array(4) as unknown as Uint8Array, width: 2, height: 2 }), invalid, '16-bit');
});

t.test('imageStats estimates the noise standard deviation, whatever the structure and size', async (t) => {
  let state = 99;
  const uniform = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
  // Approximately normal noise (sum of 12 uniforms) of σ 6 on a smooth ramp with an edge.
  for (const size of [128, 512]) {
    const pixels = new Uint8Array(size * size);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let gaussian = -6;
        for (let k = 0; k < 12; k++) gaussian += uniform();
        const base = 60 + (100 * x) / size + (x > size / 2 ? 40 : 0);
        pixels[y * size + x] = Math.round(base + 6 * gaussian);
      }
    }
    const { noise } = imageStats({ pixels, width: size, height: size });
    t.ok(Math.abs(noise - 6) < 0.8, `σ 6 at ${size}: estimated ${noise.toFixed(2)}`);
    const clean = pixels.map((_, i) => Math.round(60 + (100 * (i % size)) / size + (i % size > size / 2 ? 40 : 0)));
    t.ok(imageStats({ pixels: clean, width: size, height: size }).noise < 0.6, 'a ramp with an edge has next to no noise');
  }
});
