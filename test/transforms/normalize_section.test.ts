import t from 'tap';
import { isCommunication, normalizeSection } from '../../transforms/normalize_section.js';

t.test('normalizeSection unwraps hard line breaks and collapses white space', async (t) => {
  t.equal(normalizeSection('Moderate right pleural effusion with overlying atelectasis, increased\n since    the prior study.\n'), 'Moderate right pleural effusion with overlying atelectasis, increased since the prior study.');
});

t.test('normalizeSection strips list numbering and keeps items as sentences', async (t) => {
  t.equal(
    normalizeSection('1. New left lower lobe consolidation.\n 2. Small left pleural effusion\n 3. No pneumothorax.'),
    'New left lower lobe consolidation. Small left pleural effusion. No pneumothorax.',
  );
  t.equal(normalizeSection('1) Pacemaker in place.\n 2) Stable cardiomegaly.'), 'Pacemaker in place. Stable cardiomegaly.');
  t.equal(normalizeSection('IMPRESSION: 1. Clear lungs. 2. Normal heart.'), 'IMPRESSION: Clear lungs. Normal heart.');
  t.equal(normalizeSection('1.5 cm nodule in the right upper lobe.'), '1.5 cm nodule in the right upper lobe.', 'a decimal is no list number');
});

t.test('normalizeSection separates paragraphs that lack a period', async (t) => {
  t.equal(normalizeSection('No pneumothorax\n \n Small effusion'), 'No pneumothorax. Small effusion');
});

t.test('normalizeSection removes ___ placeholders with the phrase they leave dangling', async (t) => {
  const cases: [string, string][] = [
    ['As compared to ___, there is a new opacity in the left lower lobe.', 'There is a new opacity in the left lower lobe.'],
    ['Increased since the prior study from ___.', 'Increased since the prior study.'],
    ['Heart size is top normal, unchanged from ___ at ___.', 'Heart size is top normal, unchanged.'],
    ['Compared to the prior study from ___ through ___, no change.', 'Compared to the prior study, no change.'],
    ['Since ___, the effusion has increased.', 'The effusion has increased.'],
    ['Worse than on ___, compatible with edema.', 'Worse, compatible with edema.'],
    ['Chest radiograph ___ shows clear lungs.', 'Chest radiograph shows clear lungs.'],
  ];
  for (const [input, expected] of cases) t.equal(normalizeSection(input), expected, input);
});

t.test('normalizeSection drops sentences that only record communication of results', async (t) => {
  t.equal(
    normalizeSection('Left chest tube in place. Findings discussed with Dr. ___ by telephone at 9:45 a.m. on ___. Subcutaneous emphysema.'),
    'Left chest tube in place. Subcutaneous emphysema.',
  );
  t.equal(normalizeSection('Trace effusions. The findings were communicated to the referring physician via the critical results dashboard.'), 'Trace effusions.');
  t.equal(normalizeSection('Dr. ___ was paged at ___.'), '', 'a section of only communication is empty');
  t.equal(
    normalizeSection('Large pneumothorax. Dr. ___ was paged.', { dropCommunication: false }),
    'Large pneumothorax. Was paged.',
    'kept on request, placeholder still removed',
  );
});

t.test('isCommunication needs a communication verb and a recipient or time', async (t) => {
  t.ok(isCommunication('Findings were reported to Dr. ___ at 3:00 pm.'));
  t.ok(isCommunication('The referring physician was notified.'));
  t.notOk(isCommunication('PA and lateral views were reported.'));
  t.notOk(isCommunication('Recommend follow-up chest CT in 3 months.'));
  t.notOk(isCommunication('Small left pleural effusion.'));
});
