/**
 * What the phantom draws for a report: its labels, sides and sizes turned into
 * drawing parameters. Pure and separate from the renderer, so each rule can be read
 * and tested alone.
 *
 * @module
 */
import type { CleanReport, FindingAttributes, LabelValue } from '../records.js';

/** A side of the patient. The phantom is a PA view: the patient's right is on the image's left. */
export type Side = 'left' | 'right';

/** Which sides a finding takes: stated by the report, or `undefined` for the seed to choose. */
export type Sides = readonly Side[] | undefined;

/** A support device the phantom can draw. */
export type Device = 'endotracheal_tube' | 'enteric_tube' | 'central_line' | 'pacemaker' | 'sternotomy_wires';

/** A patchy or plate-like density in a lung. */
export interface PhantomOpacity {
  kind: 'consolidation' | 'opacity' | 'atelectasis';
  sides: Sides;
  /** Peak added density; uncertain findings get half. */
  strength: number;
  /** Blob radius as a share of the image width. */
  radius: number;
}

/** The drawing parameters of one report. */
export interface PhantomFindings {
  /** Cardiothoracic ratio: heart width over thorax width (normal about 0.45). */
  cardiothoracicRatio: number;
  /** Width factor of the upper mediastinum (1 normal). */
  mediastinumScale: number;
  /** Pleural effusions: fluid height as a share of the lung's height. */
  effusion?: { sides: Sides; height: number; strength: number };
  /** Pneumothorax: the gap between the chest wall and the pleural line, as a share of the image width. */
  pneumothorax?: { sides: Sides; gap: number; strength: number };
  opacities: PhantomOpacity[];
  /** Perihilar haze strength, 0 for none. */
  edema: number;
  /** Round densities: nodules, or a mass. */
  lesion?: { count: number; mass: boolean; strength: number };
  /** Pleural thickening along one chest wall. */
  pleuralThickening?: { sides: Sides; strength: number };
  /** A healing rib fracture (callus). */
  fracture?: { strength: number };
  devices: Device[];
}

const EFFUSION_HEIGHT = { small: 0.12, moderate: 0.25, large: 0.45 } as const;
const PNEUMOTHORAX_GAP = { small: 0.018, moderate: 0.04, large: 0.075 } as const;
const OPACITY_RADIUS = { small: 0.035, moderate: 0.055, large: 0.08 } as const;

const DEVICE_PATTERNS: ReadonlyArray<readonly [Device, RegExp]> = [
  ['endotracheal_tube', /\b(endotracheal|ET tube|ETT|intubat\w*)\b/iu],
  ['enteric_tube', /\b(nasogastric|orogastric|NG|OG|enteric|feeding|dobhoff|dobbhoff)\b( tube)?/iu],
  ['central_line', /\b(PICC|central (venous )?(line|catheter)|jugular|subclavian|swan[- ]ganz|port-?a-?cath|catheter)\b/iu],
  ['pacemaker', /\b(pacemaker|pacer|ICD|defibrillator|AICD|pacing)\b/iu],
  ['sternotomy_wires', /\b(sternotomy|sternal wires|sternal sutures|CABG)\b/iu],
];

/**
 * Turns a report's labels and attributes (and, for devices and lesion kind, a few
 * words of its caption) into drawing parameters. Positive findings are drawn at full
 * strength, uncertain ones (`-1`) at half, negative or absent ones not at all. Sides
 * and sizes come from the report's attributes; a side it does not state is left to the
 * seed, a size it does not state is moderate (small for uncertain findings).
 *
 * @example
 * ```ts
 * phantomFindings({ labels: { pleuralEffusion: 1 }, attributes: { pleuralEffusion: { laterality: 'left', size: 'small' } }, caption: 'Small left pleural effusion.' });
 * // { effusion: { sides: ['left'], height: 0.12, strength: 1 }, ... }
 * ```
 */
export function phantomFindings(report: Pick<CleanReport, 'labels' | 'attributes' | 'caption'>): PhantomFindings {
  const { labels, attributes, caption } = report;
  const findings: PhantomFindings = { cardiothoracicRatio: 0.45, mediastinumScale: 1, opacities: [], edema: 0, devices: [] };

  const cardiomegaly = strength(labels.cardiomegaly);
  if (cardiomegaly > 0) findings.cardiothoracicRatio = cardiomegaly === 1 ? 0.62 : 0.53;
  const mediastinum = strength(labels.enlargedCardiomediastinum);
  if (mediastinum > 0) {
    findings.mediastinumScale = 1 + 0.7 * mediastinum;
    if (cardiomegaly === 0) findings.cardiothoracicRatio = 0.45 + 0.05 * mediastinum;
  }

  const effusion = strength(labels.pleuralEffusion);
  if (effusion > 0) {
    const stated = attributes.pleuralEffusion;
    findings.effusion = {
      sides: sidesOf(stated, /\beffusions\b/iu.test(caption)),
      height: EFFUSION_HEIGHT[stated?.size ?? (effusion === 1 ? 'moderate' : 'small')],
      strength: effusion,
    };
  }

  const pneumothorax = strength(labels.pneumothorax);
  if (pneumothorax > 0) {
    const stated = attributes.pneumothorax;
    findings.pneumothorax = {
      sides: sidesOf(stated, /\bpneumothora(ces|xes)\b/iu.test(caption)),
      gap: PNEUMOTHORAX_GAP[stated?.size ?? (pneumothorax === 1 ? 'moderate' : 'small')],
      strength: pneumothorax,
    };
  }

  const patchy = (kind: 'consolidation' | 'opacity', stated: FindingAttributes | undefined, peak: number): PhantomOpacity => ({
    kind,
    sides: sidesOf(stated, /\bbilateral|bibasilar|both lungs\b/iu.test(caption)),
    strength: peak,
    radius: OPACITY_RADIUS[stated?.size ?? 'moderate'],
  });
  const consolidation = Math.max(strength(labels.consolidation), strength(labels.pneumonia));
  if (consolidation > 0) findings.opacities.push(patchy('consolidation', attributes.consolidation ?? attributes.lungOpacity, 0.34 * consolidation));
  const opacity = strength(labels.lungOpacity);
  if (opacity > 0 && consolidation === 0) findings.opacities.push(patchy('opacity', attributes.lungOpacity, 0.22 * opacity));
  const atelectasis = strength(labels.atelectasis);
  if (atelectasis > 0) {
    findings.opacities.push({
      kind: 'atelectasis',
      sides: /\b(bibasilar|bibasal|bilateral)\b/iu.test(caption) ? ['left', 'right'] : sideWords(caption, /atelecta/iu),
      strength: 0.26 * atelectasis,
      radius: 0.07,
    });
  }

  findings.edema = 0.2 * strength(labels.edema);

  const lesion = strength(labels.lungLesion);
  if (lesion > 0) {
    findings.lesion = { count: /\bnodules\b|\bmasses\b/iu.test(caption) ? 3 : 1, mass: /\bmass(es)?\b/iu.test(caption), strength: lesion };
  }
  const pleuralOther = strength(labels.pleuralOther);
  if (pleuralOther > 0) findings.pleuralThickening = { sides: sideWords(caption, /pleural/iu), strength: pleuralOther };
  const fracture = strength(labels.fracture);
  if (fracture > 0) findings.fracture = { strength: fracture };

  if (labels.supportDevices === 1 || labels.supportDevices === -1) {
    findings.devices = DEVICE_PATTERNS.filter(([, pattern]) => pattern.test(caption)).map(([device]) => device);
    if (findings.devices.length === 0) findings.devices = ['central_line'];
  }
  return findings;
}

function strength(value: LabelValue | undefined): number {
  return value === 1 ? 1 : value === -1 ? 0.5 : 0;
}

function sidesOf(stated: FindingAttributes | undefined, plural: boolean): Sides {
  switch (stated?.laterality) {
    case 'left':
      return ['left'];
    case 'right':
      return ['right'];
    case 'bilateral':
      return ['left', 'right'];
    default:
      return plural ? ['left', 'right'] : undefined;
  }
}

/** The side a sentence about `topic` names, for findings the labeler gives no side for. */
function sideWords(caption: string, topic: RegExp): Sides {
  for (const sentence of caption.split(/(?<=\.)\s+/u)) {
    if (!topic.test(sentence)) continue;
    const left = /\bleft\b/iu.test(sentence);
    const right = /\bright\b/iu.test(sentence);
    if (left && right) return ['left', 'right'];
    if (left) return ['left'];
    if (right) return ['right'];
  }
  return undefined;
}
