import t from 'tap';
import { OBSERVATIONS, type Attributes, type Labels } from '../../records.js';
import { TOKEN_PATTERN } from '../../transforms/_chexpert_phrases.js';
import { labelReport } from '../../transforms/chexpert_labels.js';

interface Case {
  /** What the case shows, after "labelReport ". */
  name: string;
  impression: string;
  labels: Labels;
  attributes?: Attributes;
}

// MIMIC-style impressions, as the cleaner leaves them, with the labels the CheXpert labeler's rules give.
const CASES: Case[] = [
  // Normal studies and No Finding.
  {
    name: "gives No Finding to 'No acute cardiopulmonary process.'",
    impression: 'No acute cardiopulmonary process.',
    labels: { noFinding: 1 },
  },
  {
    name: 'gives No Finding to a normal study with negated mentions',
    impression: 'Heart size is normal. The mediastinal and hilar contours are unremarkable. Lungs are clear without focal consolidation, pleural effusion or pneumothorax.',
    labels: { noFinding: 1, enlargedCardiomediastinum: 0, cardiomegaly: 0, consolidation: 0, pneumothorax: 0, pleuralEffusion: 0 },
  },
  {
    name: "reads 'heart size is normal' as negative cardiomegaly",
    impression: 'Lungs are clear. Heart size is normal. No pleural effusion or pneumothorax.',
    labels: { noFinding: 1, cardiomegaly: 0, pneumothorax: 0, pleuralEffusion: 0 },
  },
  {
    name: "reads 'normal heart size' and 'top-normal heart size' as negative cardiomegaly",
    impression: 'Normal heart size. Top-normal heart size on the portable view.',
    labels: { noFinding: 1, cardiomegaly: 0 },
  },
  {
    name: "reads 'the heart is not enlarged' as negative cardiomegaly",
    impression: 'The heart is not enlarged. No focal consolidation.',
    labels: { noFinding: 1, cardiomegaly: 0, consolidation: 0 },
  },
  {
    name: 'negates every structure a plural predicate covers',
    impression: 'The heart, mediastinum and hila are normal.',
    labels: { noFinding: 1, enlargedCardiomediastinum: 0, cardiomegaly: 0 },
  },
  {
    name: 'keeps No Finding when only support devices are positive',
    impression: 'Endotracheal tube terminates 4 cm above the carina. Nasogastric tube courses below the diaphragm. No acute cardiopulmonary process.',
    labels: { noFinding: 1, supportDevices: 1 },
  },
  {
    name: 'drops No Finding for a finding outside the 14 (granuloma, degenerative change)',
    impression: 'Calcified granuloma in the right upper lobe. Degenerative changes of the thoracic spine.',
    labels: {},
  },
  {
    name: 'keeps No Finding when the outside finding is negated',
    impression: 'No emphysema. No acute process.',
    labels: { noFinding: 1 },
  },
  {
    name: 'drops No Finding for an uncertain finding',
    impression: 'Possible small left pleural effusion.',
    labels: { pleuralEffusion: -1 },
    attributes: { pleuralEffusion: { laterality: 'left', size: 'small' } },
  },

  // Pleural effusion: side and size.
  {
    name: 'labels the example impression: effusion with side and size, atelectasis, negated pneumothorax, edema, a tube',
    impression: 'Small left pleural effusion with adjacent atelectasis. No pneumothorax. Mild pulmonary edema, possibly worse than prior. Endotracheal tube terminates 4 cm above the carina.',
    labels: { edema: 1, atelectasis: 1, pneumothorax: 0, pleuralEffusion: 1, supportDevices: 1 },
    attributes: { pleuralEffusion: { laterality: 'left', size: 'small' } },
  },
  {
    name: "reads 'bilateral effusions' as bilateral",
    impression: 'Small bilateral pleural effusions.',
    labels: { pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'bilateral', size: 'small' } },
  },
  {
    name: "reads 'right and left effusions' as bilateral",
    impression: 'Right and left pleural effusions, unchanged.',
    labels: { pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'bilateral' } },
  },
  {
    name: "takes the larger size of 'moderate-to-large'",
    impression: 'Moderate-to-large right pleural effusion, increased since the prior study.',
    labels: { pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'right', size: 'large' } },
  },
  {
    name: "reads 'trace' as small",
    impression: 'Trace left pleural effusion. Lungs otherwise clear.',
    labels: { pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'left', size: 'small' } },
  },
  {
    name: 'joins a left and a right effusion in two sentences into bilateral and keeps the larger size',
    impression: 'Large right pleural effusion with compressive atelectasis. Small left effusion. No pneumothorax.',
    labels: { atelectasis: 1, pneumothorax: 0, pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'bilateral', size: 'large' } },
  },
  {
    name: "reads ', left greater than right' as bilateral",
    impression: 'Moderate cardiomegaly with small pleural effusions, left greater than right.',
    labels: { cardiomegaly: 1, pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'bilateral', size: 'small' } },
  },
  {
    name: "does not count 'pericardial effusion' as a pleural effusion",
    impression: 'Enlarged cardiac silhouette, which may reflect pericardial effusion.',
    labels: { cardiomegaly: 1 },
  },
  {
    name: "reads 'no change in' as leaving the finding positive",
    impression: 'No change in moderate right pleural effusion.',
    labels: { pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'right', size: 'moderate' } },
  },
  {
    name: "negates 'interval resolution of' the effusion",
    impression: 'Interval resolution of the left pleural effusion. No pneumothorax.',
    labels: { noFinding: 1, pneumothorax: 0, pleuralEffusion: 0 },
  },

  // Pneumothorax.
  {
    name: 'gives a small apical pneumothorax its side and size and keeps the chest tube',
    impression: 'Tiny residual left apical pneumothorax. Left chest tube in place.',
    labels: { pneumothorax: 1, supportDevices: 1 },
    attributes: { pneumothorax: { laterality: 'left', size: 'small' } },
  },
  {
    name: "negates 'no residual pneumothorax'",
    impression: 'Left chest tube has been removed. No residual pneumothorax.',
    labels: { noFinding: 1, pneumothorax: 0, supportDevices: 0 },
  },
  {
    name: "negates 'pneumothorax is no longer seen' and 'has resolved'",
    impression: 'The right pneumothorax is no longer seen. Subcutaneous emphysema has resolved.',
    labels: { noFinding: 1, pneumothorax: 0 },
  },
  {
    name: "negates 'X is not seen'",
    impression: 'A pneumothorax is not seen.',
    labels: { noFinding: 1, pneumothorax: 0 },
  },
  {
    name: 'reads a side named after the mention',
    impression: 'Large pneumothorax on the right with leftward mediastinal shift.',
    labels: { pneumothorax: 1 },
    attributes: { pneumothorax: { laterality: 'right', size: 'large' } },
  },

  // Edema.
  {
    name: 'labels mild edema positive',
    impression: 'Mild interstitial pulmonary edema. Right PICC tip in the lower SVC.',
    labels: { edema: 1, supportDevices: 1 },
  },
  {
    name: 'labels moderate edema with bilateral effusions and unchanged cardiomegaly',
    impression: 'Moderate pulmonary edema and bilateral pleural effusions, larger on the right. Cardiomegaly is unchanged.',
    labels: { cardiomegaly: 1, edema: 1, pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'bilateral' } },
  },
  {
    name: "reads 'vascular congestion' as uncertain edema, as the labeler does",
    impression: 'The heart is mildly enlarged. There is mild pulmonary vascular congestion. No large effusion or pneumothorax.',
    labels: { cardiomegaly: 1, edema: -1, pneumothorax: 0, pleuralEffusion: 0 },
  },
  {
    name: "adds uncertain cardiomegaly for 'CHF'",
    impression: 'Findings consistent with CHF.',
    labels: { cardiomegaly: -1, edema: 1 },
  },

  // Pneumonia, atelectasis, consolidation, opacity.
  {
    name: "marks 'cannot exclude pneumonia' uncertain",
    impression: 'Low lung volumes with bibasilar atelectasis. Cannot exclude superimposed pneumonia.',
    labels: { pneumonia: -1, atelectasis: 1 },
  },
  {
    name: "marks 'pneumonia cannot be excluded' uncertain",
    impression: 'Patchy right basilar opacity. Pneumonia cannot be excluded.',
    labels: { lungOpacity: 1, pneumonia: -1 },
    attributes: { lungOpacity: { laterality: 'right' } },
  },
  {
    name: "keeps 'likely atelectasis' positive, as the labeler does",
    impression: 'Persistent bibasilar opacities, likely atelectasis.',
    labels: { lungOpacity: 1, atelectasis: 1 },
    attributes: { lungOpacity: { laterality: 'bilateral' } },
  },
  {
    name: "marks both sides of 'atelectasis versus pneumonia' uncertain",
    impression: 'Left lower lobe opacity, atelectasis versus pneumonia.',
    labels: { lungOpacity: 1, pneumonia: -1, atelectasis: -1 },
    attributes: { lungOpacity: { laterality: 'left' } },
  },
  {
    name: "marks what 'may reflect' introduces uncertain, not the opacity before it",
    impression: 'Minimal patchy airspace disease within the lingula may reflect atelectasis or consolidation.',
    labels: { lungOpacity: 1, consolidation: -1, atelectasis: -1 },
    attributes: { lungOpacity: { laterality: 'left', size: 'small' } },
  },
  {
    name: "marks 'concerning for pneumonia' uncertain and keeps the consolidation",
    impression: 'New left basilar consolidation, concerning for pneumonia. Small left pleural effusion.',
    labels: { consolidation: 1, pneumonia: -1, pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'left', size: 'small' }, consolidation: { laterality: 'left' } },
  },
  {
    name: "reads 'both lungs' as bilateral",
    impression: 'Diffuse opacities in both lungs compatible with severe pulmonary edema or ARDS.',
    labels: { lungOpacity: 1, edema: -1 },
    attributes: { lungOpacity: { laterality: 'bilateral' } },
  },
  {
    name: 'reads sides in two joined places as bilateral',
    impression: 'Consolidation in the right upper and left lower lobes.',
    labels: { consolidation: 1 },
    attributes: { consolidation: { laterality: 'bilateral' } },
  },
  {
    name: "marks 'no new consolidation' uncertain, as the labeler's pre-negation rule does",
    impression: 'No new focal consolidation.',
    labels: { consolidation: -1 },
  },
  {
    name: "negates 'no focal consolidation to suggest pneumonia'",
    impression: 'No focal consolidation to suggest pneumonia.',
    labels: { noFinding: 1, consolidation: 0, pneumonia: 0 },
  },

  // Heart and mediastinum.
  {
    name: "keeps 'stable cardiomegaly' positive",
    impression: 'Stable moderate cardiomegaly. No pulmonary edema.',
    labels: { cardiomegaly: 1, edema: 0 },
  },
  {
    name: "marks a silhouette only called 'stable' uncertain, as the labeler does",
    impression: 'Stable cardiomediastinal silhouette. Heart size is stable.',
    labels: { enlargedCardiomediastinum: -1, cardiomegaly: -1 },
  },
  {
    name: "keeps a 'stable enlarged cardiac silhouette' positive",
    impression: 'Stable enlarged cardiac silhouette.',
    labels: { cardiomegaly: 1 },
  },
  {
    name: "marks 'borderline heart size' uncertain",
    impression: 'Borderline heart size. No edema.',
    labels: { cardiomegaly: -1, edema: 0 },
  },
  {
    name: "labels 'mediastinal widening' enlarged cardiomediastinum",
    impression: 'Mediastinal widening, concerning for aortic injury.',
    labels: { enlargedCardiomediastinum: 1 },
  },
  {
    name: "does not count a catheter tip 'over the heart' as a heart mention",
    impression: 'Right IJ catheter tip projects over the right atrium. Pacer leads overlie the heart.',
    labels: { noFinding: 1, supportDevices: 1 },
  },

  // Lesions, fractures, devices.
  {
    name: "labels 'nodule' a lung lesion",
    impression: '1.5 cm right upper lobe pulmonary nodule.',
    labels: { lungLesion: 1 },
  },
  {
    name: "labels 'mass' a lung lesion and not 'massive'",
    impression: 'Left hilar mass. Massive hiatal hernia.',
    labels: { lungLesion: 1 },
  },
  {
    name: "does not count a 'calcified nodule' as a lesion",
    impression: 'Calcified nodule in the left lower lobe, unchanged.',
    labels: {},
  },
  {
    name: "labels 'rib fracture' and 'old healed fracture' positive",
    impression: 'Acute displaced fracture of the right seventh rib. Old healed left rib fractures.',
    labels: { fracture: 1 },
  },
  {
    name: "negates 'no displaced rib fracture'",
    impression: 'No displaced rib fracture. No pneumothorax.',
    labels: { noFinding: 1, pneumothorax: 0, fracture: 0 },
  },
  {
    name: 'labels lines and tubes support devices',
    impression: 'Endotracheal tube, nasogastric tube, and left subclavian central line are in appropriate position.',
    labels: { noFinding: 1, supportDevices: 1 },
  },
  {
    name: "negates a device 'removed' and keeps another present",
    impression: 'Interval removal of the endotracheal tube. Right PICC line remains in place.',
    labels: { noFinding: 1, supportDevices: 1 },
  },
  {
    name: "does not read 'plate-like' as a plate nor 'tuberculosis' as a tube",
    impression: 'Plate-like atelectasis at the left base. No evidence of tuberculosis.',
    labels: { atelectasis: 1 },
  },
  {
    name: "labels 'pleural thickening' pleural other",
    impression: 'Right apical pleural thickening.',
    labels: { pleuralOther: 1 },
  },

  // Coordination and scope.
  {
    name: "negates both of 'No pneumothorax or pleural effusion'",
    impression: 'No pneumothorax or pleural effusion.',
    labels: { noFinding: 1, pneumothorax: 0, pleuralEffusion: 0 },
  },
  {
    name: "negates only the first of 'No pneumothorax. Small effusion.'",
    impression: 'No pneumothorax. Small effusion.',
    labels: { pneumothorax: 0, pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { size: 'small' } },
  },
  {
    name: 'ends a negation at a comma that opens a new finding',
    impression: 'No pneumothorax, small left pleural effusion.',
    labels: { pneumothorax: 0, pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'left', size: 'small' } },
  },
  {
    name: "ends a negation at 'but'",
    impression: 'No pleural effusion, but there is a small right apical pneumothorax.',
    labels: { pneumothorax: 1, pleuralEffusion: 0 },
    attributes: { pneumothorax: { laterality: 'right', size: 'small' } },
  },
  {
    name: 'carries a negation through a list',
    impression: 'No focal consolidation, pleural effusion, pulmonary edema, or pneumothorax.',
    labels: { noFinding: 1, edema: 0, consolidation: 0, pneumothorax: 0, pleuralEffusion: 0 },
  },
  {
    name: "negates after 'without' but not before it",
    impression: 'Cardiomegaly without overt edema.',
    labels: { cardiomegaly: 1, edema: 0 },
  },
  {
    name: "ends uncertainty at 'with'",
    impression: 'Possible right lower lobe pneumonia with small right pleural effusion.',
    labels: { pneumonia: -1, pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'right', size: 'small' } },
  },
  {
    name: 'gives each finding its own side in one sentence',
    impression: 'Left pleural effusion and right pneumothorax.',
    labels: { pneumothorax: 1, pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'left' }, pneumothorax: { laterality: 'right' } },
  },
  {
    name: "marks a structure 'difficult to assess' uncertain",
    impression: 'Heart size is difficult to assess given low lung volumes. Plate atelectasis at the left base.',
    labels: { cardiomegaly: -1, atelectasis: 1 },
  },
  {
    name: 'keeps uncertain edema when congestion is hedged and frank edema negated',
    impression: 'Mild pulmonary vascular congestion without frank pulmonary edema.',
    labels: { edema: -1 },
  },
  {
    name: "ends a negation at 'and the' before a new clause",
    impression: 'No evidence of pneumonia, edema, or effusion, and the heart is mildly enlarged.',
    labels: { cardiomegaly: 1, edema: 0, pneumonia: 0, pleuralEffusion: 0 },
  },
  {
    name: "reads 'and/or' as 'or'",
    impression: 'Bibasilar atelectasis and/or consolidation.',
    labels: { consolidation: -1, atelectasis: -1 },
  },
];

for (const c of CASES) {
  t.test(`labelReport ${c.name}`, async (t) => {
    t.strictSame(labelReport(c.impression), { labels: c.labels, attributes: c.attributes ?? {} }, c.impression);
  });
}

t.test("labelReport aggregates mentions as the labeler's dict_to_vec does", async (t) => {
  t.strictSame(labelReport('Tiny left pneumothorax. Possible right pneumothorax.').labels, { pneumothorax: 1 }, '1 and -1 give 1');
  t.strictSame(labelReport('No right pneumothorax. Tiny left pneumothorax.').labels, { pneumothorax: 1 }, '0 and 1 give 1');
  t.strictSame(labelReport('No pleural effusion on the right. Possible left effusion.').labels, { pleuralEffusion: -1 }, '0 and -1 give -1');
  t.strictSame(
    labelReport('No pneumothorax. Possible small right pneumothorax. Tiny left pneumothorax.').labels,
    { pneumothorax: -1 },
    '0, -1 and 1 give -1: the labeler checks "0 and -1" first',
  );
});

t.test('labelReport takes attributes only from the mentions that carry the label', async (t) => {
  t.strictSame(labelReport('No right pleural effusion. Small left pleural effusion.').attributes, {
    pleuralEffusion: { laterality: 'left', size: 'small' },
  });
  t.strictSame(labelReport('Moderate right pleural effusion. Possible small left effusion.').attributes, {
    pleuralEffusion: { laterality: 'right', size: 'moderate' },
  });
});

t.test('labelReport leaves out attributes of negated findings and findings with none stated', async (t) => {
  t.strictSame(labelReport('No large left pleural effusion. Pneumothorax.').attributes, {});
});

t.test('labelReport reads raw text with line breaks, capitals and repeated spaces as the cleaned line', async (t) => {
  const clean = 'Small left pleural effusion. No pneumothorax.';
  t.strictSame(labelReport(' SMALL LEFT PLEURAL\n EFFUSION.\r\n  No   pneumothorax.\n'), labelReport(clean));
});

t.test('labelReport lists label keys in OBSERVATIONS order', async (t) => {
  const { labels } = labelReport('Endotracheal tube in place. No pneumothorax. Rib fracture. Mild cardiomegaly. Small effusion.');
  const order = Object.keys(labels).map((key) => OBSERVATIONS.indexOf(key as (typeof OBSERVATIONS)[number]));
  t.same(order, [...order].sort((a, b) => a - b));
  t.strictSame(labels, { cardiomegaly: 1, pneumothorax: 0, pleuralEffusion: 1, fracture: 1, supportDevices: 1 });
});

t.test('labelReport is deterministic and returns fresh objects', async (t) => {
  const text = 'Moderate right pleural effusion. Possible pneumonia.';
  const first = labelReport(text);
  first.labels.pleuralEffusion = 0;
  first.attributes.pleuralEffusion!.size = 'small';
  t.strictSame(labelReport(text), {
    labels: { pneumonia: -1, pleuralEffusion: 1 },
    attributes: { pleuralEffusion: { laterality: 'right', size: 'moderate' } },
  });
});

t.test('labelReport gives No Finding to empty and phrase-free text, as the labeler does', async (t) => {
  t.strictSame(labelReport(''), { labels: { noFinding: 1 }, attributes: {} });
  t.strictSame(labelReport('...; ; :'), { labels: { noFinding: 1 }, attributes: {} });
  t.strictSame(labelReport('Épanchement — naïve “quotes” ✓'), { labels: { noFinding: 1 }, attributes: {} });
});

t.test('labelReport stays fast on hostile input', async (t) => {
  // A cue's reach is bounded, so a clause without end costs linear time, not quadratic.
  const texts = [
    'effusion '.repeat(5_000),
    'no possible effusion, '.repeat(2_000),
    'heart ' + 'nearly '.repeat(5_000) + 'normal',
    'stable heart '.repeat(4_000),
    'a/b and/or '.repeat(4_000),
  ];
  const start = performance.now();
  for (const text of texts) labelReport(text);
  t.ok(performance.now() - start < 1000, 'five ~45 kB texts in well under a second');
});

t.test('TOKEN_PATTERN stays well under the 20 KiB source size past which V8 runs it five times slower', async (t) => {
  t.ok(TOKEN_PATTERN.source.length < 19_000, `${TOKEN_PATTERN.source.length} characters`);
});
