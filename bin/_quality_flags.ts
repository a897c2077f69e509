/**
 * The quality thresholds as flags, shared by `medsyn-gen` and `medsyn-filter`.
 *
 * @module
 */
import { DEFAULT_THRESHOLDS, type QualityThresholds } from '../transforms/quality_filter.js';
import { integerFlag, numberFlag, type FlagSpec } from './_cli.js';

const d = DEFAULT_THRESHOLDS;

/** The threshold flags, each with its default in the help. */
export const QUALITY_FLAGS: FlagSpec = {
  'min-mean': { type: 'string', arg: 'V', help: `reject images darker than mean V (0-255; default ${d.minMean}): too_dark` },
  'max-mean': { type: 'string', arg: 'V', help: `reject images brighter than mean V (default ${d.maxMean}): too_bright` },
  'min-contrast': { type: 'string', arg: 'V', help: `reject a standard deviation of intensity below V (default ${d.minContrast}): low_contrast` },
  'min-entropy': { type: 'string', arg: 'BITS', help: `reject histogram entropy below BITS (0-8; default ${d.minEntropy}): low_entropy` },
  'min-sharpness': { type: 'string', arg: 'V', help: `reject a variance of the Laplacian below V (default ${d.minSharpness}): blurry` },
  'max-noise': { type: 'string', arg: 'V', help: `reject a noise standard deviation above V gray levels (default ${d.maxNoise}): noisy` },
  'max-black': { type: 'string', arg: 'SHARE', help: `reject more than SHARE of pixels <= 5 (default ${d.maxBlackShare}): too_black` },
  'max-white': { type: 'string', arg: 'SHARE', help: `reject more than SHARE of pixels >= 250 (default ${d.maxWhiteShare}): saturated` },
  'dup-distance': { type: 'string', arg: 'BITS', help: `near-duplicate candidates: kept images within BITS of the 64-bit pHash; off to skip the search (default ${d.dupDistance})` },
  'dup-fine-distance': { type: 'string', arg: 'BITS', help: `...are duplicates when the 256-bit fine hashes are within BITS too (default ${d.dupFineDistance}): duplicate` },
  'align-model': { type: 'string', arg: 'DIR', help: 'score image-caption alignment with a CLIP-style pair of ONNX encoders in DIR (transformers.js layout)' },
  'min-alignment': { type: 'string', arg: 'COS', help: `with --align-model: reject a cosine similarity below COS, -1 … 1, negative as --min-alignment=-0.1 (default ${d.minAlignment}): misaligned` },
};

/** The thresholds the flags set (only those given). */
export function qualityThresholds(values: Record<string, unknown>): QualityThresholds {
  const thresholds: QualityThresholds = {};
  const set = <K extends keyof QualityThresholds>(key: K, value: QualityThresholds[K] | undefined): void => {
    if (value !== undefined) thresholds[key] = value;
  };
  set('minMean', numberFlag(values, 'min-mean', 0, 255));
  set('maxMean', numberFlag(values, 'max-mean', 0, 255));
  set('minContrast', numberFlag(values, 'min-contrast', 0));
  set('minEntropy', numberFlag(values, 'min-entropy', 0, 8));
  set('minSharpness', numberFlag(values, 'min-sharpness', 0));
  set('maxNoise', numberFlag(values, 'max-noise', 0));
  set('maxBlackShare', numberFlag(values, 'max-black', 0, 1));
  set('maxWhiteShare', numberFlag(values, 'max-white', 0, 1));
  const dup = values['dup-distance'] === 'off' || values['dup-distance'] === '-1' ? -1 : integerFlag(values, 'dup-distance', 0);
  set('dupDistance', dup);
  set('dupFineDistance', integerFlag(values, 'dup-fine-distance', 0));
  set('minAlignment', numberFlag(values, 'min-alignment', -1, 1));
  return thresholds;
}
