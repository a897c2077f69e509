/**
 * The phantom: a procedural frontal (PA) chest radiograph drawn from a report's
 * findings. A test double for real generators — it needs no weights and no GPU, and
 * its findings are plain enough for a trainer to learn — not medical image synthesis.
 *
 * @module
 */
import { invalidOption } from '../errors.js';
import type { Device, PhantomFindings, Side, Sides } from './phantom_findings.js';
import { SeededRandom } from './seeded_random.js';

/** The phantom's version: it changes whenever the same findings and seed would draw a different image. */
export const PHANTOM_MODEL = 'medsyn-phantom-1';

/**
 * Draws one image: 8-bit grayscale, `size` × `size`, row-major. Everything that varies
 * between images (anatomy, exposure, noise, where the seed places unstated findings)
 * comes from `seed`, drawn in a fixed order, so the same findings, seed and size give
 * the same bytes.
 *
 * The picture is a sum of densities, as an X-ray is: soft tissue of the body, air in the
 * lungs (dark), ribs, clavicles, spine, mediastinum and heart (bright), the diaphragm
 * below the lungs; then the findings: a wider heart (cardiomegaly), fluid with a
 * meniscus in the costophrenic angle (effusion), a pleural line with no lung markings
 * beyond it (pneumothorax), patchy density (consolidation, opacity), plate-like bands
 * (atelectasis), perihilar haze (edema), round densities (nodules, masses), pleural
 * thickening, a rib callus (fracture), and tubes, lines, wires and a pacemaker.
 * Intensity is `1 − exp(−2·density)`, then a per-seed exposure and quantum noise.
 *
 * @param size the width and height in pixels, 16 … 4096
 * @throws {MedsynError} `MEDSYN_ERR_INVALID_OPTION` for a size out of range
 * @example
 * ```ts
 * const pixels = renderPhantom(phantomFindings(report), deriveSeed(0, report.id, 0, 0), 512);
 * await sharp(pixels, { raw: { width: 512, height: 512, channels: 1 } }).png().toFile('phantom.png');
 * ```
 */
export function renderPhantom(findings: PhantomFindings, seed: number, size: number): Uint8Array {
  if (!Number.isInteger(size) || size < 16 || size > 4096) invalidOption('size', `must be an integer in 16 … 4096, got ${size}`);
  // Three streams from one seed: the same seed gives the same anatomy and the same noise
  // whatever the findings, so an image with a finding differs from one without only by it.
  const master = new SeededRandom(seed);
  const subSeed = (): number => (master.uint32() & 0x1fffff) * 2 ** 32 + master.uint32();
  const anatomyRandom = new SeededRandom(subSeed());
  const layoutRandom = new SeededRandom(subSeed());
  const noiseRandom = new SeededRandom(subSeed());
  const anatomy = drawAnatomy(anatomyRandom, findings);
  const layout = placeFindings(layoutRandom, findings, anatomy);
  // The smooth anatomy at half resolution for large images (a quarter of the work), the rest at full.
  const low = size >= 256 ? Math.ceil(size / 2) : size;
  const canvas = new Canvas(low);
  paintThorax(canvas, anatomy, findings, layout);
  paintBlobs(canvas, layout.blobs);
  const density = place(canvas.density, low, size, anatomy);
  paintStrokes(density, size, anatomy, layout);
  return expose(density, size, noiseRandom, anatomy);
}

/** Per-seed anatomy and exposure, in image-width units (x right, y down, origin top left). */
interface Anatomy {
  /** Midline. */
  cx: number;
  /** Half-width of the rib cage. */
  halfWidth: number;
  /** Lung apex. */
  top: number;
  /** Top of each hemidiaphragm's dome (the right is usually higher). */
  domeRight: number;
  domeLeft: number;
  /** How much lower the costophrenic angle is than the dome. */
  angleDrop: number;
  /** The lungs' medial edge, from the midline. */
  medial: number;
  heartHeight: number;
  hilumY: number;
  ribSpacing: number;
  ribStart: number;
  ribCurve: number;
  clavicleY: number;
  gain: number;
  offset: number;
  gamma: number;
  noise: number;
  /** The heel effect: the exposure's linear ramp across the image (0.25: ±12.5% at the edges) and its direction. */
  heel: number;
  heelAngle: number;
  /** Where the patient is in the image: image = rotate(anatomy − ½, rotation) × zoom + ½ + shift. */
  zoom: number;
  /** Radians, counter-clockwise. */
  rotation: number;
  shiftX: number;
  shiftY: number;
  /** Coarse lattices of value noise: soft-tissue texture and lung markings. */
  texture: ValueNoise;
  markings: ValueNoise;
}

function drawAnatomy(random: SeededRandom, findings: PhantomFindings): Anatomy {
  const domeRight = random.range(0.66, 0.71);
  return {
    cx: random.range(0.485, 0.515),
    halfWidth: random.range(0.34, 0.39),
    top: random.range(0.12, 0.16),
    domeRight,
    domeLeft: domeRight + random.range(0.005, 0.035),
    angleDrop: random.range(0.06, 0.09),
    medial: random.range(0.05, 0.065),
    heartHeight: random.range(0.12, 0.15) * (findings.cardiothoracicRatio > 0.5 ? 1.12 : 1),
    hilumY: random.range(0.4, 0.45),
    ribSpacing: random.range(0.052, 0.06),
    ribStart: random.range(0.12, 0.15),
    ribCurve: random.range(1.1, 1.5),
    clavicleY: random.range(0.17, 0.2),
    gain: random.range(0.85, 1.1),
    offset: random.range(-0.03, 0.03),
    gamma: random.range(0.85, 1.2),
    noise: random.range(0.003, 0.007),
    texture: new ValueNoise(random, 8),
    markings: new ValueNoise(random, 36),
    heel: random.range(0, 0.25),
    heelAngle: random.range(0, 2 * Math.PI),
    zoom: random.range(0.94, 1.06),
    shiftX: random.range(-0.02, 0.02),
    shiftY: random.range(-0.02, 0.02),
    rotation: random.range(-0.035, 0.035),
  };
}

/** Smooth random values on a lattice of `cells` × `cells` over the image, interpolated with smoothstep. */
class ValueNoise {
  readonly #cells: number;
  readonly #values: Float32Array;
  /** Per image column: its lattice cell and smoothstep weight; per lattice column: the value at the current row. */
  #columnCell = new Int32Array(0);
  #columnWeight = new Float32Array(0);
  readonly #atRow: Float32Array;

  constructor(random: SeededRandom, cells: number) {
    this.#cells = cells;
    this.#values = new Float32Array((cells + 1) * (cells + 1));
    for (let i = 0; i < this.#values.length; i++) this.#values[i] = random.uniform();
    this.#atRow = new Float32Array(cells + 1);
  }

  /**
   * Fills `out` with the values along image row `row` of a `size` × `size` image, at
   * pixel centres: interpolated down the lattice columns once, then across per pixel.
   */
  fillRow(row: number, size: number, out: Float32Array): void {
    const n = this.#cells;
    if (this.#columnCell.length !== size) {
      this.#columnCell = new Int32Array(size);
      this.#columnWeight = new Float32Array(size);
      for (let col = 0; col < size; col++) {
        const g = ((col + 0.5) / size) * n;
        const cell = Math.min(Math.floor(g), n - 1);
        const f = g - cell;
        this.#columnCell[col] = cell;
        this.#columnWeight[col] = f * f * (3 - 2 * f);
      }
    }
    const gy = ((row + 0.5) / size) * n;
    const iy = Math.min(Math.floor(gy), n - 1);
    const fy = gy - iy;
    const sy = fy * fy * (3 - 2 * fy);
    const v = this.#values;
    const atRow = this.#atRow;
    for (let ix = 0; ix <= n; ix++) {
      const top = v[iy * (n + 1) + ix]!;
      atRow[ix] = top + (v[(iy + 1) * (n + 1) + ix]! - top) * sy;
    }
    const cells = this.#columnCell;
    const weights = this.#columnWeight;
    for (let col = 0; col < size; col++) {
      const cell = cells[col]!;
      const left = atRow[cell]!;
      out[col] = left + (atRow[cell + 1]! - left) * weights[col]!;
    }
  }
}

/** A Gaussian density added inside the lungs. */
interface Blob {
  x: number;
  y: number;
  sx: number;
  sy: number;
  density: number;
  /** Whether it shows only inside the lung fields. */
  inLung: boolean;
}

/** A radio-opaque stroke: a polyline of a width and density. */
interface Stroke {
  points: ReadonlyArray<readonly [number, number]>;
  width: number;
  density: number;
}

/** Where the seed put what the report does not place. */
interface Layout {
  effusionSides: Side[];
  pneumothoraxSides: Side[];
  thickeningSides: Side[];
  blobs: Blob[];
  strokes: Stroke[];
}

function pickSides(random: SeededRandom, sides: Sides): Side[] {
  const draw = random.uniform();
  if (sides !== undefined) return [...sides];
  return [draw < 0.5 ? 'right' : 'left'];
}

/** -1 for the patient's right (the image's left), +1 for the patient's left. */
function sign(side: Side): number {
  return side === 'right' ? -1 : 1;
}

function dome(anatomy: Anatomy, side: Side): number {
  return side === 'right' ? anatomy.domeRight : anatomy.domeLeft;
}

function placeFindings(random: SeededRandom, findings: PhantomFindings, anatomy: Anatomy): Layout {
  const layout: Layout = {
    effusionSides: pickSides(random, findings.effusion?.sides),
    pneumothoraxSides: pickSides(random, findings.pneumothorax?.sides),
    thickeningSides: pickSides(random, findings.pleuralThickening?.sides),
    blobs: [],
    strokes: [],
  };
  if (!findings.effusion) layout.effusionSides = [];
  if (!findings.pneumothorax) layout.pneumothoraxSides = [];
  if (!findings.pleuralThickening) layout.thickeningSides = [];
  const { cx, halfWidth, medial, top } = anatomy;

  for (const opacity of findings.opacities) {
    for (const side of pickSides(random, opacity.sides)) {
      const s = sign(side);
      const base = dome(anatomy, side);
      if (opacity.kind === 'atelectasis') {
        // Plate-like: a flat band low in the lung.
        const y = base - random.range(0.03, 0.07);
        const x = cx + s * random.range(medial + 0.09, halfWidth - 0.1);
        layout.blobs.push({ x, y, sx: opacity.radius, sy: 0.01, density: opacity.strength, inLung: true });
        continue;
      }
      // Mostly the lower zone, else the middle or upper zone.
      const zone = random.uniform();
      const zoneY = zone < 0.6 ? base - 0.08 : zone < 0.85 ? (top + base) / 2 : top + 0.1;
      const centreX = cx + s * random.range(medial + 0.08, halfWidth - 0.08);
      const patches = 5 + Math.floor(random.uniform() * 4);
      for (let i = 0; i < patches; i++) {
        const radius = opacity.radius * random.range(0.45, 0.9);
        layout.blobs.push({
          x: centreX + random.range(-1, 1) * opacity.radius,
          y: zoneY + random.range(-1, 1) * opacity.radius * 0.8,
          sx: radius,
          sy: radius * random.range(0.7, 1.2),
          density: opacity.strength * random.range(0.55, 1),
          inLung: true,
        });
      }
    }
  }
  if (findings.edema > 0) {
    for (const side of ['right', 'left'] as const) {
      layout.blobs.push({ x: cx + sign(side) * 0.13, y: anatomy.hilumY, sx: 0.1, sy: 0.13, density: findings.edema, inLung: true });
    }
  }
  if (findings.lesion) {
    for (let i = 0; i < findings.lesion.count; i++) {
      const side: Side = random.uniform() < 0.5 ? 'right' : 'left';
      const radius = findings.lesion.mass ? random.range(0.04, 0.06) : random.range(0.012, 0.02);
      const y = random.range(top + 0.06, dome(anatomy, side) - 0.08);
      layout.blobs.push({
        x: cx + sign(side) * random.range(medial + 0.07, halfWidth - 0.07),
        y,
        sx: radius,
        sy: radius,
        density: 0.42 * findings.lesion.strength,
        inLung: true,
      });
    }
  }
  if (findings.fracture) {
    const side: Side = random.uniform() < 0.5 ? 'right' : 'left';
    const rib = 2 + Math.floor(random.uniform() * 5);
    const along = random.range(0.15, 0.28);
    const y = anatomy.ribStart + (rib + 0.2) * anatomy.ribSpacing + anatomy.ribCurve * along * along;
    layout.blobs.push({ x: cx + sign(side) * along, y, sx: 0.016, sy: 0.011, density: 0.3 * findings.fracture.strength, inLung: false });
  }
  for (const device of findings.devices) layout.strokes.push(...deviceStrokes(device, random, anatomy));
  return layout;
}

function deviceStrokes(device: Device, random: SeededRandom, anatomy: Anatomy): Stroke[] {
  const { cx, domeLeft, hilumY } = anatomy;
  const carina = hilumY - 0.06;
  switch (device) {
    case 'endotracheal_tube': {
      const tip = carina - random.range(0.03, 0.06);
      return [{ points: [[cx + 0.01, 0], [cx + 0.004, 0.15], [cx, tip]], width: 0.007, density: 0.3 }];
    }
    case 'enteric_tube': {
      const end = domeLeft + random.range(0.06, 0.1);
      return [
        {
          points: [[cx - 0.01, 0], [cx - 0.005, 0.2], [cx + 0.02, 0.5], [cx + 0.06, domeLeft], [cx + 0.12, end], [cx + 0.17, end - 0.01]],
          width: 0.005,
          density: 0.32,
        },
      ];
    }
    case 'central_line': {
      // A right internal jugular line: down the neck into the superior vena cava.
      const tip = hilumY + random.range(-0.02, 0.03);
      return [{ points: [[cx - 0.09, 0.02], [cx - 0.07, 0.16], [cx - 0.04, 0.26], [cx - 0.03, tip]], width: 0.004, density: 0.3 }];
    }
    case 'pacemaker': {
      const x = cx + random.range(0.2, 0.26);
      const y = random.range(0.15, 0.2);
      const heartY = dome(anatomy, 'left') - 0.06;
      return [
        // The generator: a short, wide stroke reads as a rounded box.
        { points: [[x - 0.025, y], [x + 0.025, y]], width: 0.045, density: 0.9 },
        { points: [[x - 0.02, y + 0.01], [cx + 0.08, y + 0.06], [cx + 0.02, hilumY], [cx + 0.06, heartY]], width: 0.004, density: 0.45 },
      ];
    }
    case 'sternotomy_wires':
      return Array.from({ length: 5 }, (_, i) => {
        const y = 0.3 + i * 0.055 + random.range(-0.008, 0.008);
        return { points: [[cx - 0.012, y], [cx + 0.012, y + 0.004]], width: 0.006, density: 0.6 };
      });
  }
}

/** The density image, with the lung fields kept for findings that show only inside them. */
class Canvas {
  readonly size: number;
  readonly density: Float32Array;
  readonly lung: Float32Array;
  constructor(size: number) {
    this.size = size;
    this.density = new Float32Array(size * size);
    this.lung = new Float32Array(size * size);
  }
}

function smoothstep(edge0: number, edge1: number, x: number): number {
  const t = Math.min(Math.max((x - edge0) / (edge1 - edge0), 0), 1);
  return t * t * (3 - 2 * t);
}

/** Body, bones, mediastinum, heart, lungs, and the findings that follow the lungs' shape. */
function paintThorax(canvas: Canvas, anatomy: Anatomy, findings: PhantomFindings, layout: Layout): void {
  const { size, density, lung } = canvas;
  const { cx, halfWidth, top, medial, angleDrop, hilumY } = anatomy;
  const edge = 0.006;
  const heartWidth = findings.cardiothoracicRatio * 2 * halfWidth;
  const heartX = cx + 0.15 * heartWidth;
  const heartRx = heartWidth / 2;
  const heartBottom = (anatomy.domeRight + anatomy.domeLeft) / 2 + 0.02;
  const heartRy = anatomy.heartHeight;
  const heartY = heartBottom - heartRy * 0.8;
  // The heart's long axis tilts down towards the patient's left.
  const heartCos = Math.cos(0.35);
  const heartSin = Math.sin(0.35);
  const mediastinumHalf = 0.05 * findings.mediastinumScale;
  const knobX = cx + 0.055 * findings.mediastinumScale;
  const effusion = findings.effusion;
  const pneumothorax = findings.pneumothorax;
  const thickening = findings.pleuralThickening;

  // What depends on the column alone.
  const columnX = new Float64Array(size);
  const columnQ = new Float64Array(size);
  const columnBase = new Float64Array(size);
  const columnFlags = new Uint8Array(size);
  const EFFUSION = 1;
  const PNEUMOTHORAX = 2;
  const THICKENING = 4;
  for (let col = 0; col < size; col++) {
    const x = (col + 0.5) / size;
    const dx = x - cx;
    const side: Side = dx < 0 ? 'right' : 'left';
    const q = Math.min(Math.max((Math.abs(dx) - medial) / (halfWidth - medial), 0), 1);
    columnX[col] = x;
    columnQ[col] = q;
    columnBase[col] = dome(anatomy, side) + angleDrop * q * q;
    columnFlags[col] =
      (effusion && layout.effusionSides.includes(side) ? EFFUSION : 0) |
      (pneumothorax && layout.pneumothoraxSides.includes(side) ? PNEUMOTHORAX : 0) |
      (thickening && layout.thickeningSides.includes(side) ? THICKENING : 0);
  }

  const textureRow = new Float32Array(size);
  const markingsRow = new Float32Array(size);
  for (let row = 0; row < size; row++) {
    const y = (row + 0.5) / size;
    anatomy.texture.fillRow(row, size, textureRow);
    anatomy.markings.fillRow(row, size, markingsRow);
    // The body: neck, shoulders, chest wall; thicker (denser) towards the middle.
    const bodyHalf = y < 0.07 ? 0.09 : halfWidth + 0.075 + 0.1 * Math.exp(-(((y - 0.13) / 0.07) ** 2));
    const half = 0.09 + (bodyHalf - 0.09) * smoothstep(0.04, 0.11, y);
    const vertebra = 0.85 + 0.15 * Math.cos((2 * Math.PI * y) / 0.047);
    const trachea = y < hilumY - 0.06 ? 0.12 * smoothstep(0.03, 0.06, y) : 0;
    const mediastinum = y > 0.18 ? 0.18 * smoothstep(0.18, 0.24, y) : 0;
    const mediastinumWidth = mediastinumHalf * (1 + 0.4 * smoothstep(0.18, heartY, y));
    const knobY = (y - 0.33) / 0.024;
    const heartRows = y > heartY - heartRy * 1.3 && y < heartBottom + 0.02;
    const heartCut = smoothstep(heartBottom + 0.02, heartBottom - 0.01, y);
    const gastricY = (y - (anatomy.domeLeft + 0.045)) / 0.028;
    const markingsY2 = ((y - hilumY) * 0.8) ** 2;

    for (let col = 0; col < size; col++) {
      const x = columnX[col]!;
      const dx = x - cx;
      const a = dx < 0 ? -dx : dx;
      if (a > half + edge * 3) continue;
      const body = smoothstep(edge * 3, -edge * 3, a - half);
      const ratio = a / half;
      let d = body * (0.5 + 0.12 * (1 - Math.min(ratio * ratio, 1)) + 0.06 * (textureRow[col]! - 0.5));

      const q = columnQ[col]!;
      const base = columnBase[col]!;
      // Below the diaphragm: liver and spleen are denser; a gastric bubble under the left dome.
      if (y > base - edge) d += 0.1 * smoothstep(base - edge, base + edge * 3, y) * body;
      if (gastricY > -1.2 && gastricY < 1.2 && dx > 0.09 && dx < 0.21) {
        const gx = (dx - 0.15) / 0.05;
        d -= 0.22 * smoothstep(1.1, 0.8, Math.sqrt(gx * gx + gastricY * gastricY)) * body;
      }

      // Spine with vertebral bodies, trachea above the carina, upper mediastinum, aortic knob.
      if (a < 0.04) d += 0.12 * smoothstep(0.04, 0.032, a) * vertebra;
      if (trachea > 0 && a < 0.02) d -= trachea * smoothstep(0.02, 0.014, a);
      if (mediastinum > 0) {
        const m = Math.abs(dx - 0.008);
        if (m < mediastinumWidth + 0.01) d += mediastinum * smoothstep(mediastinumWidth + 0.01, mediastinumWidth - 0.01, m);
        if (knobY > -1.2 && knobY < 1.2) {
          const kx = (x - knobX) / 0.03;
          if (kx > -1.2 && kx < 1.2) d += 0.12 * smoothstep(1.1, 0.85, Math.sqrt(kx * kx + knobY * knobY));
        }
      }
      // The heart: a tilted ellipse on the diaphragm, further to the patient's left.
      if (heartRows) {
        const hx = x - heartX;
        const hy = y - heartY;
        const u = (hx * heartCos + hy * heartSin) / heartRx;
        const v = (-hx * heartSin + hy * heartCos) / heartRy;
        const r2 = u * u + v * v;
        if (r2 < 1.1) d += 0.28 * smoothstep(1.04, 0.96, Math.sqrt(r2)) * heartCut;
      }

      // The lung field of this side.
      const t = Math.min(Math.max((y - top) / (base - top), 0), 1);
      const lateral = medial + (halfWidth - medial) * (0.28 + 0.72 * Math.sqrt(t));
      const apex = top + 0.16 * (q - 0.3) * (q - 0.3);
      const inside = Math.min(lateral - a, a - medial, base - y, y - apex);

      // Ribs: posterior ribs sweep down and out from the spine; fainter anterior ribs rise.
      if (a > 0.035 && a < halfWidth + 0.02 && y < base + 0.05) {
        const cage = smoothstep(halfWidth + 0.02, halfWidth - 0.01, a) * smoothstep(0.035, 0.11, a);
        const phase = (y - anatomy.ribStart - anatomy.ribCurve * a * a) / anatomy.ribSpacing;
        if (phase > 0 && phase < 10) {
          const f = phase - Math.floor(phase);
          if (f < 0.4) d += 0.085 * cage * smoothstep(0, 0.08, f) * smoothstep(0.4, 0.3, f);
        }
        const anterior = (y - 0.22 + 0.9 * a * a) / (anatomy.ribSpacing * 1.6);
        if (anterior > 0 && anterior < 6) {
          const f = anterior - Math.floor(anterior);
          if (f < 0.35) d += 0.03 * cage * smoothstep(0, 0.1, f) * smoothstep(0.35, 0.25, f);
        }
      }

      if (inside > -edge) {
        const lungCover = smoothstep(-edge, edge, inside);
        // Air: the lung field is dark; vessels fan out from the hilum.
        const mx = a - 0.09;
        // Falls off with distance from the hilum about as exp(−r / 0.11) does, without exp or sqrt.
        const near = 1 / (1 + 50 * (mx * mx + markingsY2));
        let markings = 0.075 * near * near * (0.45 + 1.1 * markingsRow[col]!);
        let lungDensity = -0.42;
        const flags = columnFlags[col]!;
        if (flags !== 0) {
          const wall = Math.min(lateral - a, (y - apex) * 0.8);
          if ((flags & PNEUMOTHORAX) !== 0) {
            // Collapsed lung: beyond the pleural line there is only air, no markings.
            const { gap, strength } = pneumothorax!;
            const space = smoothstep(gap + 0.003, gap - 0.003, wall);
            const line = (wall - gap) / 0.0025;
            markings *= 1 - space;
            lungDensity += strength * (-0.07 * space + 0.04 * (1 - space) + (line * line < 16 ? 0.12 * Math.exp(-line * line) : 0));
          }
          if ((flags & EFFUSION) !== 0) {
            // Fluid fills the costophrenic angle, its meniscus rising towards the chest wall.
            const bottom = base - angleDrop * q * q + angleDrop;
            const level = bottom - effusion!.height * (bottom - top) * (0.72 + 0.28 * q);
            lungDensity += 0.43 * effusion!.strength * smoothstep(level - 0.02, level + 0.02, y);
          }
          if ((flags & THICKENING) !== 0) lungDensity += 0.2 * thickening!.strength * smoothstep(0.022, 0.008, wall);
        }
        d += lungCover * (lungDensity + markings);
        lung[row * size + col] = lungCover;
      }
      density[row * size + col] = d;
    }
  }
}

/** Gaussian densities, each over its own box (3 sigma), inside the lungs where it should be. */
function paintBlobs(canvas: Canvas, blobs: readonly Blob[]): void {
  const { size, density, lung } = canvas;
  for (const blob of blobs) {
    const x0 = Math.max(0, Math.floor((blob.x - 3 * blob.sx) * size));
    const x1 = Math.min(size - 1, Math.ceil((blob.x + 3 * blob.sx) * size));
    const y0 = Math.max(0, Math.floor((blob.y - 3 * blob.sy) * size));
    const y1 = Math.min(size - 1, Math.ceil((blob.y + 3 * blob.sy) * size));
    for (let row = y0; row <= y1; row++) {
      const gy = ((row + 0.5) / size - blob.y) / blob.sy;
      for (let col = x0; col <= x1; col++) {
        const gx = ((col + 0.5) / size - blob.x) / blob.sx;
        const i = row * size + col;
        const weight = blob.inLung ? lung[i]! : 1;
        if (weight > 0) density[i]! += blob.density * weight * Math.exp(-0.5 * (gx * gx + gy * gy));
      }
    }
  }
}

/** Tubes, lines, wires, the pacemaker and the clavicles: the densest of overlapping segments per pixel, as one object. */
function paintStrokes(density: Float32Array, size: number, anatomy: Anatomy, layout: Layout): void {
  const { cx, clavicleY } = anatomy;
  const strokes: Stroke[] = [
    { points: [[cx - 0.04, clavicleY], [cx - 0.17, clavicleY - 0.035], [cx - 0.3, clavicleY - 0.05]], width: 0.02, density: 0.2 },
    { points: [[cx + 0.04, clavicleY], [cx + 0.17, clavicleY - 0.035], [cx + 0.3, clavicleY - 0.05]], width: 0.02, density: 0.2 },
    ...layout.strokes,
  ];
  const { zoom, shiftX, shiftY } = anatomy;
  const cos = Math.cos(anatomy.rotation);
  const sin = Math.sin(anatomy.rotation);
  for (const drawn of strokes) {
    // Into the image's frame, as place() puts the rest of the anatomy.
    const stroke: Stroke = {
      points: drawn.points.map(([x, y]) => {
        const u = x - 0.5;
        const v = y - 0.5;
        return [(cos * u - sin * v) * zoom + 0.5 + shiftX, (sin * u + cos * v) * zoom + 0.5 + shiftY] as const;
      }),
      width: drawn.width * zoom,
      density: drawn.density,
    };
    const half = stroke.width / 2;
    const soft = Math.max(0.6 / size, half * 0.25);
    const reach = half + soft;
    const xs = stroke.points.map(([x]) => x);
    const ys = stroke.points.map(([, y]) => y);
    const x0 = Math.max(0, Math.floor((Math.min(...xs) - reach) * size));
    const x1 = Math.min(size - 1, Math.ceil((Math.max(...xs) + reach) * size));
    const y0 = Math.max(0, Math.floor((Math.min(...ys) - reach) * size));
    const y1 = Math.min(size - 1, Math.ceil((Math.max(...ys) + reach) * size));
    const width = x1 - x0 + 1;
    // Squared distance to the nearest segment over the stroke's box: each segment visits only its own box.
    const nearest = new Float32Array(width * (y1 - y0 + 1)).fill(Infinity);
    for (let k = 1; k < stroke.points.length; k++) {
      const [ax, ay] = stroke.points[k - 1]!;
      const [bx, by] = stroke.points[k]!;
      const vx = bx - ax;
      const vy = by - ay;
      const length2 = vx * vx + vy * vy;
      const r0 = Math.max(y0, Math.floor((Math.min(ay, by) - reach) * size));
      const r1 = Math.min(y1, Math.ceil((Math.max(ay, by) + reach) * size));
      const c0 = Math.max(x0, Math.floor((Math.min(ax, bx) - reach) * size));
      const c1 = Math.min(x1, Math.ceil((Math.max(ax, bx) + reach) * size));
      for (let row = r0; row <= r1; row++) {
        const y = (row + 0.5) / size;
        for (let col = c0; col <= c1; col++) {
          const x = (col + 0.5) / size;
          const t = length2 === 0 ? 0 : Math.min(Math.max(((x - ax) * vx + (y - ay) * vy) / length2, 0), 1);
          const dx = x - (ax + t * vx);
          const dy = y - (ay + t * vy);
          const d2 = dx * dx + dy * dy;
          const at = (row - y0) * width + (col - x0);
          if (d2 < nearest[at]!) nearest[at] = d2;
        }
      }
    }
    const reach2 = reach * reach;
    for (let row = y0; row <= y1; row++) {
      for (let col = x0; col <= x1; col++) {
        const d2 = nearest[(row - y0) * width + (col - x0)]!;
        if (d2 < reach2) density[row * size + col]! += stroke.density * smoothstep(reach, half - soft, Math.sqrt(d2));
      }
    }
  }
}

/**
 * The `low` × `low` density (drawn in the anatomy's frame) resampled to `size` × `size`
 * in the image's frame: the patient placed by the anatomy's zoom and shift, bilinear,
 * edges extended. The smooth anatomy is drawn at half resolution; the fine strokes and
 * the noise come after, at full resolution.
 */
function place(source: Float32Array, low: number, size: number, anatomy: Anatomy): Float32Array {
  const target = new Float32Array(size * size);
  const { zoom, shiftX, shiftY, rotation } = anatomy;
  // Image pixel centre → anatomy coordinate (the inverse of: rotate by `rotation` about the
  // centre, scale by `zoom`, shift) → source pixel coordinate, clamped to the source.
  const cos = Math.cos(rotation) / zoom;
  const sin = Math.sin(rotation) / zoom;
  const last = low - 1;
  for (let row = 0; row < size; row++) {
    const v = (row + 0.5) / size - 0.5 - shiftY;
    const out = row * size;
    for (let col = 0; col < size; col++) {
      const u = (col + 0.5) / size - 0.5 - shiftX;
      let sx = (cos * u + sin * v + 0.5) * low - 0.5;
      let sy = (-sin * u + cos * v + 0.5) * low - 0.5;
      sx = sx < 0 ? 0 : sx > last ? last : sx;
      sy = sy < 0 ? 0 : sy > last ? last : sy;
      const c = sx < last ? sx | 0 : last - 1;
      const r = sy < last ? sy | 0 : last - 1;
      const fx = sx - c;
      const fy = sy - r;
      const top = r * low + c;
      const upper = source[top]! + (source[top + 1]! - source[top]!) * fx;
      const lower = source[top + low]! + (source[top + low + 1]! - source[top + low]!) * fx;
      target[out + col] = upper + (lower - upper) * fy;
    }
  }
  return target;
}

/** Density to 8-bit intensity: attenuation, exposure and quantum noise. */
function expose(density: Float32Array, size: number, random: SeededRandom, anatomy: Anatomy): Uint8Array {
  // A clamped array rounds (half to even) and clamps to 0 … 255 as it stores.
  const pixels = new Uint8ClampedArray(density.length);
  const { gain, offset, gamma, noise, heel, heelAngle } = anatomy;
  // The tone curve in 0 … 255 units, tabulated: density 0 … 4 in steps of 1/1024, linearly interpolated.
  const steps = 4096;
  const curve = new Float64Array(steps + 2);
  for (let k = 0; k <= steps + 1; k++) curve[k] = 255 * (gain * (1 - Math.exp((-2 * k) / 1024)) ** gamma + offset);
  const amplitude = noise * 2.45;
  // The heel effect: the beam is stronger on one side, a linear ramp across the image.
  const heelX = (heel * Math.cos(heelAngle)) / size;
  const heelY = (heel * Math.sin(heelAngle)) / size;
  const heelAt = (i: number): number => {
    const row = Math.floor(i / size);
    return 1 + heelX * (i - row * size + 0.5 - size / 2) + heelY * (row + 0.5 - size / 2);
  };
  for (let i = 0; i < density.length; i += 2) {
    // One 32-bit draw gives two pixels' noise: each the sum of two 8-bit uniforms less 255 (triangular, σ ≈ 0.41 × 255).
    const bits = random.uint32();
    for (let k = 0; k < 2 && i + k < density.length; k++) {
      const shift = 16 * k;
      const grain = ((bits >>> shift) & 0xff) + ((bits >>> (shift + 8)) & 0xff) - 255;
      const d = density[i + k]!;
      const position = (d < 0 ? 0 : d > 4 ? 4 : d) * 1024;
      const index = position | 0;
      const tone = curve[index]! + (curve[index + 1]! - curve[index]!) * (position - index);
      pixels[i + k] = tone * heelAt(i + k) + amplitude * grain;
    }
  }
  return new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength);
}
