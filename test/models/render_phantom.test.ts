import t from 'tap';
import { phantomFindings, type PhantomFindings } from '../../models/phantom_findings.js';
import { renderPhantom } from '../../models/render_phantom.js';
import type { Labels, Attributes } from '../../records.js';

const SIZE = 256;
const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];

function findings(labels: Labels, caption = '', attributes: Attributes = {}): PhantomFindings {
  return phantomFindings({ labels, attributes, caption });
}

/** Mean intensity of the box [x0, x1) × [y0, y1), in image-width units. */
function mean(pixels: Uint8Array, x0: number, x1: number, y0: number, y1: number): number {
  let sum = 0;
  let count = 0;
  for (let row = Math.floor(y0 * SIZE); row < Math.floor(y1 * SIZE); row++) {
    for (let col = Math.floor(x0 * SIZE); col < Math.floor(x1 * SIZE); col++) {
      sum += pixels[row * SIZE + col]!;
      count++;
    }
  }
  return sum / count;
}

/**
 * The heart's width on the rows where it is widest: the run of bright pixels around the
 * midline, each side ending where a 5-pixel average falls below halfway between the
 * heart's middle and the lung beside it.
 */
function heartWidth(pixels: Uint8Array): number {
  let widest = 0;
  for (let row = Math.floor(0.5 * SIZE); row < Math.floor(0.64 * SIZE); row++) {
    const at = (col: number) => {
      let sum = 0;
      for (let k = -2; k <= 2; k++) sum += pixels[row * SIZE + col + k]!;
      return sum / 5;
    };
    const centre = at(Math.floor(0.52 * SIZE));
    const lung = Math.min(at(Math.floor(0.2 * SIZE)), at(Math.floor(0.8 * SIZE)));
    const threshold = (centre + lung) / 2;
    let left = Math.floor(0.52 * SIZE);
    while (left > 3 && at(left) > threshold) left--;
    let right = Math.floor(0.52 * SIZE);
    while (right < SIZE - 4 && at(right) > threshold) right++;
    widest = Math.max(widest, right - left);
  }
  return widest / SIZE;
}

t.test('renderPhantom gives the same bytes for the same findings, seed and size, and other bytes for another seed', async (t) => {
  const f = findings({ pleuralEffusion: 1, cardiomegaly: 1 }, 'Effusion.');
  const a = renderPhantom(f, 42, SIZE);
  t.equal(a.length, SIZE * SIZE);
  t.same(Buffer.from(renderPhantom(f, 42, SIZE)), Buffer.from(a));
  t.not(Buffer.from(renderPhantom(f, 43, SIZE)).toString('hex'), Buffer.from(a).toString('hex'));
  t.equal(renderPhantom(f, 42, 64).length, 64 * 64);
  t.throws(() => renderPhantom(f, 42, 8), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'size' });
  t.throws(() => renderPhantom(f, -1, SIZE), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});

t.test('renderPhantom draws a chest: dark lungs, bright mediastinum and abdomen, dark air outside the body', async (t) => {
  for (const seed of SEEDS) {
    const pixels = renderPhantom(findings({ noFinding: 1 }), seed, SIZE);
    const rightLung = mean(pixels, 0.25, 0.35, 0.35, 0.5);
    const leftLung = mean(pixels, 0.65, 0.75, 0.35, 0.5);
    const mediastinum = mean(pixels, 0.48, 0.53, 0.3, 0.45);
    const abdomen = mean(pixels, 0.3, 0.7, 0.85, 0.95);
    const outside = Math.min(mean(pixels, 0, 0.1, 0, 0.04), mean(pixels, 0.9, 1, 0, 0.04));
    t.ok(mediastinum > rightLung + 40 && mediastinum > leftLung + 40, `seed ${seed}: mediastinum ${mediastinum} brighter than lungs ${rightLung}, ${leftLung}`);
    t.ok(abdomen > rightLung + 40, `seed ${seed}: abdomen ${abdomen}`);
    t.ok(outside < 20, `seed ${seed}: outside ${outside}`);
  }
});

t.test('renderPhantom: a left effusion raises the left lower zone against the same seed without it', async (t) => {
  for (const seed of SEEDS) {
    const without = renderPhantom(findings({ noFinding: 1 }), seed, SIZE);
    const left = renderPhantom(findings({ pleuralEffusion: 1 }, 'Left effusion.', { pleuralEffusion: { laterality: 'left', size: 'moderate' } }), seed, SIZE);
    // The patient's left is the image's right (PA view).
    const leftLowerRise = mean(left, 0.72, 0.84, 0.66, 0.74) - mean(without, 0.72, 0.84, 0.66, 0.74);
    const rightLowerRise = mean(left, 0.16, 0.28, 0.66, 0.74) - mean(without, 0.16, 0.28, 0.66, 0.74);
    t.ok(leftLowerRise > 25, `seed ${seed}: left lower zone +${leftLowerRise.toFixed(1)}`);
    t.ok(Math.abs(rightLowerRise) < 1, `seed ${seed}: right lower zone unchanged (${rightLowerRise.toFixed(2)})`);
    // A larger effusion rises higher.
    const large = renderPhantom(findings({ pleuralEffusion: 1 }, 'Left effusion.', { pleuralEffusion: { laterality: 'left', size: 'large' } }), seed, SIZE);
    t.ok(mean(large, 0.72, 0.84, 0.5, 0.6) > mean(left, 0.72, 0.84, 0.5, 0.6) + 10, `seed ${seed}: a large effusion reaches the mid zone`);
  }
});

t.test('renderPhantom: cardiomegaly widens the measured heart', async (t) => {
  for (const seed of SEEDS) {
    const normal = heartWidth(renderPhantom(findings({ noFinding: 1 }), seed, SIZE));
    const enlarged = heartWidth(renderPhantom(findings({ cardiomegaly: 1 }, 'Cardiomegaly.'), seed, SIZE));
    t.ok(enlarged > normal * 1.1, `seed ${seed}: heart width ${normal.toFixed(3)} → ${enlarged.toFixed(3)}`);
    t.ok(normal > 0.2 && normal < 0.4, `seed ${seed}: a normal heart is about 0.45 of the thorax (${normal.toFixed(3)} of the image)`);
  }
});

t.test('renderPhantom: a right pneumothorax darkens the right lateral lung and removes its markings', async (t) => {
  for (const seed of SEEDS) {
    const without = renderPhantom(findings({ noFinding: 1 }), seed, SIZE);
    const ptx = renderPhantom(findings({ pneumothorax: 1 }, 'Large right pneumothorax.', { pneumothorax: { laterality: 'right', size: 'large' } }), seed, SIZE);
    // Between the chest wall and the pleural line, on the right (image left).
    const box = [0.1, 0.45, 0.2, 0.6] as const;
    const darker = (x0: number, x1: number, y0: number, y1: number) => {
      let count = 0;
      let all = 0;
      for (let row = Math.floor(y0 * SIZE); row < Math.floor(y1 * SIZE); row++) {
        for (let col = Math.floor(x0 * SIZE); col < Math.floor(x1 * SIZE); col++) {
          all++;
          if (ptx[row * SIZE + col]! < without[row * SIZE + col]! - 4) count++;
        }
      }
      return count / all;
    };
    t.ok(darker(...box) > 0.03, `seed ${seed}: ${(100 * darker(...box)).toFixed(1)}% of the right upper chest darker`);
    const other = [0.6, 0.9, 0.2, 0.6] as const;
    t.ok(Math.abs(mean(ptx, ...other) - mean(without, ...other)) < 0.5, `seed ${seed}: the left side is unchanged`);
    // The pleural line: a thin bright ridge in (with − without), the dark space lateral to it.
    const diff = Array.from({ length: Math.floor(0.2 * SIZE) }, (_, k) => {
      const col = Math.floor(0.18 * SIZE) + k;
      let sum = 0;
      for (let row = Math.floor(0.36 * SIZE); row < Math.floor(0.44 * SIZE); row++) sum += ptx[row * SIZE + col]! - without[row * SIZE + col]!;
      return sum / (Math.floor(0.44 * SIZE) - Math.floor(0.36 * SIZE));
    });
    const ridge = diff.indexOf(Math.max(...diff));
    t.ok(diff[ridge]! > 3, `seed ${seed}: a pleural line (+${diff[ridge]!.toFixed(1)})`);
    t.ok(Math.min(...diff.slice(0, ridge)) < -3, `seed ${seed}: air without markings lateral to the line`);
  }
});

t.test('renderPhantom: consolidation, edema, a mass and devices each add density where they belong', async (t) => {
  for (const seed of SEEDS) {
    const without = renderPhantom(findings({ noFinding: 1 }), seed, SIZE);
    const gain = (pixels: Uint8Array, ...box: [number, number, number, number]) => mean(pixels, ...box) - mean(without, ...box);
    const consolidation = renderPhantom(findings({ consolidation: 1 }, 'Right consolidation.', { consolidation: { laterality: 'right' } }), seed, SIZE);
    t.ok(gain(consolidation, 0.1, 0.45, 0.15, 0.75) > 2, `seed ${seed}: right lung denser with consolidation`);
    t.ok(Math.abs(gain(consolidation, 0.55, 0.9, 0.15, 0.75)) < 0.5, `seed ${seed}: left lung unchanged`);
    const edema = renderPhantom(findings({ edema: 1 }, 'Pulmonary edema.'), seed, SIZE);
    t.ok(gain(edema, 0.3, 0.4, 0.35, 0.5) > 5 && gain(edema, 0.6, 0.7, 0.35, 0.5) > 5, `seed ${seed}: perihilar haze on both sides`);
    const mass = renderPhantom(findings({ lungLesion: 1 }, 'Lung mass.'), seed, SIZE);
    t.ok(gain(mass, 0.1, 0.9, 0.1, 0.8) > 0.5, `seed ${seed}: a mass adds density in the lungs`);
    const tube = renderPhantom(findings({ supportDevices: 1 }, 'Endotracheal tube in place.'), seed, SIZE);
    // The column near the midline that gained most, over the neck and upper chest.
    const columnGain = Math.max(
      ...Array.from({ length: Math.floor(0.16 * SIZE) }, (_, k) => {
        const x = 0.42 + k / SIZE;
        return gain(tube, x, x + 1 / SIZE, 0.05, 0.3);
      }),
    );
    t.ok(columnGain > 10, `seed ${seed}: an endotracheal tube down the midline (+${columnGain.toFixed(1)})`);
    const pacemaker = renderPhantom(findings({ supportDevices: 1 }, 'Left chest wall pacemaker.'), seed, SIZE);
    t.ok(gain(pacemaker, 0.65, 0.8, 0.1, 0.25) > 5, `seed ${seed}: a pacemaker on the patient's left upper chest`);
  }
});
