/**
 * Phantom shards for the trainer's tests and benchmark: cleaned reports with
 * independent random findings (so nearly every caption is different), generated
 * with the phantom backend and written as shards, as `medsyn demo` does.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { CleanReport, Labels, Attributes } from '../records.js';
import { writeShards } from '../streams/shard_writer.js';
import { decodeSamples } from '../streams/tar_decoder.js';
import { runGenerate } from '../transforms/run_generate.js';
import { xorshift32 } from '../fixtures/_xorshift32.js';


/** How the phantom captions say the heart is not enlarged. */
const NORMAL_HEART = ['Heart size is normal.', 'No cardiomegaly.'];

/** Options of {@link phantomReports}. */
export interface PhantomReportsOptions {
  /**
   * Which absent findings captions state, as radiologists do: `some` says "No pleural
   * effusion." for half the reports without one and "No pneumothorax." for 30%; `all`
   * also says "Heart size is normal." / "No cardiomegaly." and "No pulmonary edema."
   * for half of those without. Without a stated negative a contrastive model never
   * sees what "No X." means; bag-of-words towers (clip-tiny) do better with `some`.
   * @default 'some'
   */
  statedNegatives?: 'some' | 'all';
}

/** `count` cleaned reports with random effusion, cardiomegaly, pneumothorax, edema, consolidation and devices. */
export function phantomReports(count: number, seed = 1, options: PhantomReportsOptions = {}): CleanReport[] {
  const negateAll = options.statedNegatives === 'all';
  const draw = xorshift32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(draw() * items.length)]!;
  const sides = ['left', 'right', 'bilateral'] as const;
  const reports: CleanReport[] = [];
  for (let i = 0; i < count; i++) {
    const labels: Labels = {};
    const attributes: Attributes = {};
    const sentences: string[] = [];
    if (draw() < 0.45) {
      const side = pick(sides);
      const size = pick(['moderate', 'large'] as const);
      labels.pleuralEffusion = 1;
      attributes.pleuralEffusion = { laterality: side, size };
      sentences.push(side === 'bilateral' ? `${size} bilateral pleural effusions.` : `${size} ${side} pleural effusion.`);
    } else {
      labels.pleuralEffusion = 0;
      if (draw() < 0.5) sentences.push('No pleural effusion.');
    }
    if (draw() < 0.45) {
      labels.cardiomegaly = 1;
      sentences.push(pick(['Cardiomegaly.', 'The heart is enlarged.']));
    } else {
      labels.cardiomegaly = 0;
      if (negateAll && draw() < 0.5) sentences.push(pick(NORMAL_HEART));
    }
    if (draw() < 0.25) {
      const side = pick(['left', 'right'] as const);
      labels.pneumothorax = 1;
      attributes.pneumothorax = { laterality: side, size: 'large' };
      sentences.push(`large ${side} pneumothorax.`);
    } else {
      labels.pneumothorax = 0;
      if (draw() < 0.3) sentences.push('No pneumothorax.');
    }
    if (draw() < 0.3) {
      labels.edema = 1;
      sentences.push('Pulmonary edema.');
    } else {
      labels.edema = 0;
      if (negateAll && draw() < 0.5) sentences.push('No pulmonary edema.');
    }
    if (draw() < 0.25) {
      const side = pick(['left', 'right'] as const);
      labels.consolidation = 1;
      attributes.consolidation = { laterality: side, size: 'large' };
      sentences.push(`${side} lower lobe consolidation.`);
    }
    if (draw() < 0.2) {
      labels.supportDevices = 1;
      sentences.push('Pacemaker in place.');
    }
    if (sentences.every((s) => s.startsWith('No ') || NORMAL_HEART.includes(s))) {
      labels.noFinding = 1;
      sentences.push(pick(['No acute cardiopulmonary process.', 'Clear lungs.', 'Normal chest.']));
    }
    const caption = sentences.map((s) => s[0]!.toUpperCase() + s.slice(1)).join(' ');
    reports.push({
      id: `s${String(50_000_000 + i)}`,
      source: `phantom:${i}`,
      sections: { impression: caption },
      sectionUsed: 'impression',
      prompt: caption,
      caption,
      labels,
      attributes,
    });
  }
  return reports;
}

/** Writes `count` phantom samples of `size` px as shards in `dir` (60 a shard); returns the reports. */
export async function makePhantomShards(dir: string, count: number, options: PhantomReportsOptions & { size?: number; seed?: number } = {}): Promise<CleanReport[]> {
  const reports = phantomReports(count, options.seed ?? 1, options);
  const cleanPath = join(dir, 'clean.ndjson');
  writeFileSync(cleanPath, reports.map((report) => JSON.stringify(report)).join('\n') + '\n');
  const tar = new PassThrough();
  await Promise.all([
    runGenerate(cleanPath, tar, { size: options.size ?? 64, checks: false, format: 'clean', workers: 0 }),
    writeShards(decodeSamples(tar), join(dir, 'shards'), { overwrite: true, maxCount: 60 }),
  ]);
  return reports;
}
