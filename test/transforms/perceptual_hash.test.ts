import t from 'tap';
import sharp from 'sharp';
import { phantomFindings } from '../../models/phantom_findings.js';
import { renderPhantom } from '../../models/render_phantom.js';
import { SeededRandom } from '../../models/seeded_random.js';
import type { Labels } from '../../records.js';
import type { GrayImage } from '../../transforms/image_stats.js';
import { hammingDistance, hashFromHex, hashToHex, perceptualHash } from '../../transforms/perceptual_hash.js';

const REPORTS: Array<{ labels: Labels; caption: string }> = [
  { labels: {}, caption: 'No acute cardiopulmonary process.' },
  { labels: { pleuralEffusion: 1 }, caption: 'Large left pleural effusion.' },
  { labels: { cardiomegaly: 1, edema: 1 }, caption: 'Cardiomegaly with pulmonary edema.' },
  { labels: { pneumothorax: 1 }, caption: 'Right pneumothorax.' },
  { labels: { supportDevices: 1 }, caption: 'Endotracheal tube and right PICC line. Pacemaker.' },
];

function phantom(index: number, seed: number, size = 512): GrayImage {
  const report = REPORTS[index % REPORTS.length]!;
  const pixels = renderPhantom(phantomFindings({ ...report, attributes: {} }), seed, size);
  return { pixels, width: size, height: size };
}

function shifted(image: GrayImage, dx: number, dy: number): GrayImage {
  const { pixels, width, height } = image;
  const out = new Uint8Array(pixels.length);
  for (let y = 0; y < height; y++) {
    const from = Math.min(height - 1, Math.max(0, y - dy));
    for (let x = 0; x < width; x++) out[y * width + x] = pixels[from * width + Math.min(width - 1, Math.max(0, x - dx))]!;
  }
  return { pixels: out, width, height };
}

function withNoise(image: GrayImage, amplitude: number, seed: number): GrayImage {
  const random = new SeededRandom(seed);
  const pixels = image.pixels.map((value) => Math.min(255, Math.max(0, value + (random.uint32() % (2 * amplitude + 1)) - amplitude)));
  return { ...image, pixels };
}

/** A smooth random picture: bilinear interpolation of a random 6×6 lattice — unrelated to any other seed's. */
function smoothRandom(seed: number, size: number): GrayImage {
  const random = new SeededRandom(seed);
  const lattice = Array.from({ length: 36 }, () => random.uniform() * 255);
  const pixels = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const gx = (x / (size - 1)) * 5;
      const gy = (y / (size - 1)) * 5;
      const ix = Math.min(4, Math.floor(gx));
      const iy = Math.min(4, Math.floor(gy));
      const fx = gx - ix;
      const fy = gy - iy;
      const at = (cx: number, cy: number): number => lattice[cy * 6 + cx]!;
      const top = at(ix, iy) * (1 - fx) + at(ix + 1, iy) * fx;
      const bottom = at(ix, iy + 1) * (1 - fx) + at(ix + 1, iy + 1) * fx;
      pixels[y * size + x] = Math.round(top * (1 - fy) + bottom * fy);
    }
  }
  return { pixels, width: size, height: size };
}

/**
 * pHash straight from the definitions, independent of the implementation: the area
 * average as the integral of the piecewise-constant image over each cell (floating
 * point), the full 32×32 2-D DCT-II by the quadruple sum, the 8×8 corner, the median
 * of all 64 with the DC term, bits written as a binary string, first coefficient first.
 */
function referenceHash(image: GrayImage): bigint {
  const { pixels, width, height } = image;
  const cover = (cell: number, pixel: number, size: number): number => {
    const lo = Math.max((cell * size) / 32, pixel);
    const hi = Math.min(((cell + 1) * size) / 32, pixel + 1);
    return Math.max(0, hi - lo);
  };
  const reduced: number[][] = [];
  for (let cy = 0; cy < 32; cy++) {
    reduced.push([]);
    for (let cx = 0; cx < 32; cx++) {
      let sum = 0;
      for (let y = 0; y < height; y++) {
        const wy = cover(cy, y, height);
        if (wy === 0) continue;
        for (let x = 0; x < width; x++) sum += pixels[y * width + x]! * wy * cover(cx, x, width);
      }
      reduced[cy]!.push(sum / ((width / 32) * (height / 32)));
    }
  }
  const dct: number[] = [];
  for (let u = 0; u < 32; u++) {
    for (let v = 0; v < 32; v++) {
      let sum = 0;
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) sum += reduced[y]![x]! * Math.cos((Math.PI * u * (2 * y + 1)) / 64) * Math.cos((Math.PI * v * (2 * x + 1)) / 64);
      }
      dct.push(sum);
    }
  }
  const low: number[] = [];
  for (let u = 0; u < 8; u++) for (let v = 0; v < 8; v++) low.push(dct[u * 32 + v]!);
  const sorted = [...low].sort((a, b) => a - b);
  const median = (sorted[31]! + sorted[32]!) / 2;
  return BigInt(`0b${low.map((value) => (value > median ? '1' : '0')).join('')}`);
}

t.test('perceptualHash matches a direct DCT from the definitions, at several sizes', async (t) => {
  const image = phantom(1, 11, 256);
  t.equal(hashToHex(perceptualHash(image)), hashToHex(referenceHash(image)), '256×256');
  // Sizes that do not divide by 32, not square, smaller than 32.
  const random = new SeededRandom(3);
  for (const [width, height] of [[100, 70], [45, 33], [20, 13]] as const) {
    const pixels = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) pixels[y * width + x] = (x * 3 + y * 2 + (random.uint32() % 40)) % 256;
    const small = { pixels, width, height };
    t.equal(hashToHex(perceptualHash(small)), hashToHex(referenceHash(small)), `${width}×${height}`);
  }
});

t.test('perceptualHash is the same for the same pixels and sets the DC bit', async (t) => {
  const image = phantom(0, 1);
  const hash = perceptualHash(image);
  t.equal(perceptualHash({ ...image, pixels: Buffer.from(image.pixels) }), hash);
  t.equal(perceptualHash(image), hash);
  t.equal(hash >> 63n, 1n, 'DC above the median');
  t.ok(hash >= 0n && hash < 1n << 64n);
  t.equal((perceptualHash({ pixels: Uint8Array.of(200), width: 1, height: 1 }) >> 63n), 1n, '1×1 works');
});

t.test('perceptualHash: slight noise, a shift, a crop and a resize stay near; unrelated pictures do not', async (t) => {
  const originals = Array.from({ length: 10 }, (_, i) => phantom(i, 100 + i));
  const hashes = originals.map(perceptualHash);
  const noise: number[] = [];
  const shift: number[] = [];
  for (const [i, image] of originals.entries()) {
    noise.push(hammingDistance(hashes[i]!, perceptualHash(withNoise(image, 3, i))));
    const moved = perceptualHash(shifted(image, 3, 2));
    shift.push(hammingDistance(hashes[i]!, moved));
    const nearest = hashes.reduce((best, hash, j) => (hammingDistance(moved, hash) < hammingDistance(moved, hashes[best]!) ? j : best), 0);
    t.equal(nearest, i, `shifted copy ${i}: its own original is the nearest hash`);
  }
  t.ok(Math.max(...noise) <= 6, `±3 noise: distances ${noise.join(' ')} ≤ 6`);
  const sortedShift = [...shift].sort((a, b) => a - b);
  t.ok(sortedShift[5]! <= 6 && sortedShift[9]! <= 10, `3-pixel right, 2-pixel down shift: distances ${shift.join(' ')}, median ≤ 6, all ≤ 10`);

  // Crop 8 pixels off each side, resize back to 512.
  const image = originals[0]!;
  const cropped = await sharp(image.pixels, { raw: { width: 512, height: 512, channels: 1 } })
    .extract({ left: 8, top: 8, width: 496, height: 496 })
    .resize(512, 512)
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  const crop = hammingDistance(hashes[0]!, perceptualHash({ pixels: cropped, width: 512, height: 512 }));
  t.ok(crop <= 6, `crop and resize: ${crop} ≤ 6`);

  // The phantom is one anatomy drawn with small variations, so different phantoms are
  // nearer than unrelated pictures: far above the near-duplicates, not near 32.
  const different: number[] = [];
  for (let i = 0; i < hashes.length; i++) for (let j = i + 1; j < hashes.length; j++) different.push(hammingDistance(hashes[i]!, hashes[j]!));
  different.sort((a, b) => a - b);
  const median = different[different.length >> 1]!;
  t.ok(median >= 10, `different phantoms: median distance ${median} ≥ 10 (min ${different[0]}, max ${different.at(-1)})`);

  const unrelated = Array.from({ length: 8 }, (_, i) => perceptualHash(smoothRandom(i, 128)));
  const far: number[] = [];
  for (let i = 0; i < unrelated.length; i++) for (let j = i + 1; j < unrelated.length; j++) far.push(hammingDistance(unrelated[i]!, unrelated[j]!));
  far.sort((a, b) => a - b);
  t.ok(far[far.length >> 1]! >= 20, `unrelated pictures: median distance ${far[far.length >> 1]} ≥ 20`);
  const inverted = perceptualHash({ ...image, pixels: image.pixels.map((value) => 255 - value) });
  t.ok(hammingDistance(hashes[0]!, inverted) >= 40, 'an inverted image is far');
});

t.test('perceptualHash is stable across sizes: the same scene at 256 and 512', async (t) => {
  for (let i = 0; i < 5; i++) {
    const distance = hammingDistance(perceptualHash(phantom(i, 40 + i, 512)), perceptualHash(phantom(i, 40 + i, 256)));
    t.ok(distance <= 6, `scene ${i}: ${distance} ≤ 6`);
  }
  const image = phantom(2, 7);
  const half = await sharp(image.pixels, { raw: { width: 512, height: 512, channels: 1 } }).resize(200, 200).toColourspace('b-w').raw().toBuffer();
  const distance = hammingDistance(perceptualHash(image), perceptualHash({ pixels: half, width: 200, height: 200 }));
  t.ok(distance <= 4, `sharp resize to 200×200: ${distance} ≤ 4`);
});

t.test('hammingDistance counts differing bits over all 64', async (t) => {
  t.equal(hammingDistance(0n, 0n), 0);
  t.equal(hammingDistance(0b1011n, 0b0010n), 2);
  t.equal(hammingDistance(0n, (1n << 64n) - 1n), 64);
  t.equal(hammingDistance(1n << 63n, 1n), 2, 'high and low halves');
  t.equal(hammingDistance(0xffff_0000_0000_0000n, 0x0000_0000_0000_ffffn), 32);
  t.equal(hammingDistance(-1n, 0n), 64, 'taken modulo 2^64');
  const random = new SeededRandom(8);
  for (let k = 0; k < 50; k++) {
    const a = (BigInt(random.uint32()) << 32n) | BigInt(random.uint32());
    const b = (BigInt(random.uint32()) << 32n) | BigInt(random.uint32());
    const expected = [...(a ^ b).toString(2)].filter((bit) => bit === '1').length;
    t.equal(hammingDistance(a, b), expected);
    t.equal(hammingDistance(b, a), expected);
  }
});

t.test('hashToHex and hashFromHex: 16 lowercase digits, round trip, bad input named', async (t) => {
  t.equal(hashToHex(0xffn), '00000000000000ff');
  t.equal(hashToHex(0n), '0000000000000000');
  t.equal(hashToHex((1n << 64n) - 1n), 'ffffffffffffffff');
  t.equal(hashToHex(0xabcdef0123456789n), 'abcdef0123456789');
  t.equal(hashFromHex('ABCDEF0123456789'), 0xabcdef0123456789n);
  const hash = perceptualHash(phantom(3, 5, 64));
  t.equal(hashFromHex(hashToHex(hash)), hash);
  const invalid = { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'hash' };
  t.throws(() => hashToHex(-1n), invalid);
  t.throws(() => hashToHex(1n << 64n), invalid);
  t.throws(() => hashToHex(5 as unknown as bigint), invalid);
  for (const bad of ['ff', '0x00000000000000ff', '00000000000000fg', ' 00000000000000ff', '000000000000000ff']) t.throws(() => hashFromHex(bad), invalid, JSON.stringify(bad));
});

t.test('perceptualHash refuses malformed images', async (t) => {
  t.throws(() => perceptualHash({ pixels: new Uint8Array(10), width: 4, height: 4 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'image' });
});
