import t from 'tap';
import { cleanReport, createCleaner } from '../../transforms/clean_report.js';
import { wordCountApproximation } from '../../transforms/fit_prompt.js';

const report = (text: string, extra: object = {}) => ({ id: 's1', subjectId: 'p1', source: 'a.txt', text, ...extra });

t.test('cleanReport makes caption, prompt, labels and attributes from the impression', async (t) => {
  const clean = cleanReport(report('FINAL REPORT\n FINDINGS: Clear.\n \n IMPRESSION:\n 1. Small left effusion\n 2. No pneumothorax.\n'));
  t.match(clean, {
    id: 's1',
    subjectId: 'p1',
    sectionUsed: 'impression',
    caption: 'Small left effusion. No pneumothorax.',
    prompt: 'Small left effusion. No pneumothorax.',
    labels: { pleuralEffusion: 1, pneumothorax: 0 },
    attributes: { pleuralEffusion: { laterality: 'left', size: 'small' } },
  });
  t.equal((clean as { text?: string }).text, undefined, 'no raw text by default');
  t.match(cleanReport(report('R\n IMPRESSION: Clear lungs.\n'), { keepText: true }), { text: 'R\n IMPRESSION: Clear lungs.\n' });
});

t.test('cleanReport rejects empty, sectionless, placeholder-only and too short reports with a reason', async (t) => {
  t.match(cleanReport(report('  \n ')), { reason: 'empty', id: 's1', source: 'a.txt' });
  t.match(cleanReport(report('R\n INDICATION: Cough.\n')), { reason: 'no_section' });
  t.match(cleanReport(report('R\n IMPRESSION: Dr. ___ was paged at ___.\n')), { reason: 'no_section', message: /placeholders or communication/ });
  t.match(cleanReport(report('R\n IMPRESSION: Normal.\n')), { reason: 'too_short', message: /1 word/ });
  t.match(cleanReport(report('R\n IMPRESSION: Normal.\n'), { minWords: 1 }), { caption: 'Normal.' });
  t.throws(() => cleanReport(report('x'), { minWords: -1 }), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});

t.test('cleanReport takes the sections a sectioned CSV gave, in the official order', async (t) => {
  const clean = cleanReport(report('', { sections: { findings: 'Lungs are clear.', comparison: 'None.' } }));
  t.match(clean, { sectionUsed: 'findings', caption: 'Lungs are clear.' });
  t.match(cleanReport(report('', { sections: { comparison: '   ' } })), { reason: 'empty' });
});

t.test('createCleaner fits prompts with the token counter it is given', async (t) => {
  const clean = createCleaner({ tokenCounter: wordCountApproximation(8) });
  t.match(clean(report('R\n IMPRESSION: Small left effusion. No pneumothorax.\n')), {
    caption: 'Small left effusion. No pneumothorax.',
    prompt: 'Small left effusion.',
  });
});
