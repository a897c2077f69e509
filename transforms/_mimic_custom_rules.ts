/**
 * Per-study corrections of the official MIMIC-CXR section parser
 * (`custom_mimic_cxr_rules()` in MIT-LCP/mimic-cxr `txt/section_parser.py`):
 * reports whose layout defeats the heading rule. They apply only to those
 * MIMIC-CXR study ids.
 */

/** Studies whose final text is the last section of this (normalised) name. */
export const CUSTOM_SECTION_NAMES: ReadonlyMap<string, string> = new Map([
  ['s50913680', 'recommendations'],
  ['s59363654', 'examination'],
  ['s59279892', 'technique'],
  ['s59768032', 'recommendations'],
  ['s57936451', 'indication'],
  ['s50058765', 'indication'],
  ['s53356173', 'examination'],
  ['s53202765', 'technique'],
  ['s50808053', 'technique'],
  ['s51966317', 'indication'],
  ['s50743547', 'examination'],
  ['s56451190', 'note'],
  ['s59067458', 'recommendations'],
  ['s59215320', 'examination'],
  ['s55124749', 'indication'],
  ['s54365831', 'indication'],
  ['s59087630', 'recommendations'],
  ['s58157373', 'recommendations'],
  ['s56482935', 'recommendations'],
  ['s58375018', 'recommendations'],
  ['s54654948', 'indication'],
  ['s55157853', 'examination'],
  ['s51491012', 'history'],
]);

/**
 * Studies whose final text is the character range [start, end) of the report
 * (after universal-newline conversion). [0, 0] marks reports with no findings at all.
 */
export const CUSTOM_RANGES: ReadonlyMap<string, readonly [number, number]> = new Map([
  ['s50525523', [201, 349]],
  ['s57564132', [233, 554]],
  ['s59982525', [313, 717]],
  ['s53488209', [149, 475]],
  ['s54875119', [234, 988]],
  ['s50196495', [59, 399]],
  ['s56579911', [59, 218]],
  ['s52648681', [292, 631]],
  ['s59889364', [172, 453]],
  ['s53514462', [73, 377]],
  ['s59505494', [59, 450]],
  ['s53182247', [59, 412]],
  ['s51410602', [47, 320]],
  ['s56412866', [522, 822]],
  ['s54986978', [59, 306]],
  ['s59003148', [262, 505]],
  ['s57150433', [61, 394]],
  ['s56760320', [219, 457]],
  ['s59562049', [158, 348]],
  ['s52674888', [145, 296]],
  ['s55258338', [192, 568]],
  ['s59330497', [140, 655]],
  ['s52119491', [179, 454]],
  ['s58235663', [0, 0]],
  ['s50798377', [0, 0]],
  ['s54168089', [0, 0]],
  ['s53071062', [0, 0]],
  ['s56724958', [0, 0]],
  ['s54231141', [0, 0]],
  ['s53607029', [0, 0]],
  ['s52035334', [0, 0]],
]);
