import t from 'tap';
import { phantomFindings } from '../../models/phantom_findings.js';
import { renderPhantom } from '../../models/render_phantom.js';
import type { GrayImage } from '../../transforms/image_stats.js';
import { DEFAULT_THRESHOLDS, QualityFilter } from '../../transforms/quality_filter.js';

const SIZE = 256;
const gray = (pixels: Uint8Array): GrayImage => ({ pixels, width: SIZE, height: SIZE });
const phantom = (seed: number, labels = {}) => gray(renderPhantom(phantomFindings({ labels, attributes: {}, caption: '' }), seed, SIZE));
const map = (image: GrayImage, f: (value: number, i: number) => number): GrayImage => gray(image.pixels.map((value, i) => Math.min(255, Math.max(0, Math.round(f(value, i))))));

/** A box blur of radius r, done twice (close to a Gaussian). */
function blur(image: GrayImage, r: number): GrayImage {
  let pixels: Uint8Array = image.pixels;
  for (let pass = 0; pass < 2; pass++) {
    const out = new Uint8Array(pixels.length);
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        let sum = 0;
        let n = 0;
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) {
            const yy = Math.min(SIZE - 1, Math.max(0, y + dy));
            const xx = Math.min(SIZE - 1, Math.max(0, x + dx));
            sum += pixels[yy * SIZE + xx]!;
            n++;
          }
        }
        out[y * SIZE + x] = Math.round(sum / n);
      }
    }
    pixels = out;
  }
  return gray(pixels);
}

let state = 12345;
const noise = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;

t.test('QualityFilter passes the phantom’s images with the default thresholds', async (t) => {
  const filter = new QualityFilter();
  for (let seed = 1; seed <= 12; seed++) {
    const labels = [{}, { pleuralEffusion: 1 }, { cardiomegaly: 1 }, { supportDevices: 1 }][seed % 4]!;
    const scores = filter.score(phantom(seed, labels));
    const verdict = filter.decide(scores, `s${seed}`, `s${seed}`);
    t.same(verdict.reasons, [], `seed ${seed}: ${JSON.stringify(verdict)}`);
    filter.keep(scores, `s${seed}`, `s${seed}`);
  }
  t.equal(filter.kept, 12);
});

t.test('QualityFilter fails blank, saturated, dark, washed-out and blurred images with the right reasons', async (t) => {
  const filter = new QualityFilter();
  const base = phantom(3);
  const cases: Array<[string, GrayImage, string[]]> = [
    ['blank', gray(new Uint8Array(SIZE * SIZE).fill(128)), ['blank', 'low_contrast', 'low_entropy', 'blurry']],
    ['saturated', gray(new Uint8Array(SIZE * SIZE).fill(255)), ['blank', 'too_bright', 'low_contrast', 'low_entropy', 'blurry', 'saturated']],
    ['black', gray(new Uint8Array(SIZE * SIZE)), ['blank', 'too_dark', 'low_contrast', 'low_entropy', 'blurry', 'too_black']],
    ['washed out', map(base, (v) => 128 + (v - 128) * 0.15), ['low_contrast']],
    ['blurred', blur(base, 4), ['blurry']],
    ['too dark', map(base, (v) => v * 0.2), ['too_dark']],
  ];
  for (const [name, image, expected] of cases) {
    const verdict = filter.decide(filter.score(image), name, name);
    t.notOk(verdict.passed, name);
    for (const reason of expected) t.ok(verdict.reasons.includes(reason as never), `${name}: ${reason} in ${verdict.reasons.join(', ')}`);
  }
  t.ok(filter.decide(filter.score(base), 'ok', 'ok').passed, 'the original passes');
  const sized = new QualityFilter({ size: 512 });
  t.same(sized.decide(sized.score(base), 'x', 'x').reasons, ['wrong_size']);
  const noisy = map(base, (v) => v + 40 * noise());
  t.ok(filter.score(noisy).sharpness > filter.score(base).sharpness * 5, 'noise raises sharpness');
  const noisyVerdict = filter.decide(filter.score(noisy), 'noisy', 'noisy');
  t.ok(noisyVerdict.reasons.includes('noisy'), `noisy: ${noisyVerdict.reasons.join(', ')} (noise ${noisyVerdict.noise})`);
  t.ok(filter.score(base).noise < DEFAULT_THRESHOLDS.maxNoise / 2, 'the phantom is well under the noise limit');
});

t.test('QualityFilter finds near-duplicates of kept images, within a report and across reports', async (t) => {
  const filter = new QualityFilter();
  const a = phantom(5);
  const firstScores = filter.score(a);
  t.ok(filter.decide(firstScores, 's1_0', 's1').passed);
  filter.keep(firstScores, 's1_0', 's1');
  const noisy = filter.decide(filter.score(map(a, (v) => v + 3 * noise())), 's1_1', 's1');
  t.match(noisy, { passed: false, reasons: ['duplicate'], duplicateOf: 's1_0', duplicateKind: 'variant' });
  t.ok(noisy.duplicateDistance! <= DEFAULT_THRESHOLDS.dupDistance && noisy.duplicateFineDistance! <= DEFAULT_THRESHOLDS.dupFineDistance);
  // One pixel at 256, two at 512.
  const shifted = filter.decide(filter.score(map(a, (_, i) => a.pixels[Math.max(0, i - 1)]!)), 's2', 's2');
  t.match(shifted, { passed: false, duplicateOf: 's1_0', duplicateKind: 'report' });
  const other = filter.decide(filter.score(phantom(6, { cardiomegaly: 1 })), 's3', 's3');
  t.ok(other.passed, 'another image is not a duplicate');
  t.notOk(noisy.passed);
  const off = new QualityFilter({ dupDistance: -1 });
  off.keep(off.score(a), 'x', 'x');
  t.ok(off.decide(off.score(a), 'y', 'y').passed, 'dupDistance -1 turns the search off');
});

t.test('QualityFilter names a bad threshold', async (t) => {
  t.throws(() => new QualityFilter({ minContrast: Number.NaN }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'minContrast' });
  t.throws(() => new QualityFilter({ dupDistance: 2.5 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'dupDistance' });
  t.throws(() => new QualityFilter({ size: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'size' });
  t.throws(() => new QualityFilter({ dupFineDistance: 300 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'dupFineDistance' });
});
