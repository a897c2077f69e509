import t from 'tap';
import { normalizeSectionNames, pyStrip, sectionText, universalNewlines } from '../../transforms/section_text.js';

t.test('sectionText splits at "\\n HEADING:" and keeps a preamble', async (t) => {
  const text = '   FINAL REPORT\n EXAMINATION:  CHEST\n \n IMPRESSION:  No acute process.\n';
  const { names, sections, offsets } = sectionText(text);
  t.same(names, ['preamble', 'examination', 'impression']);
  t.equal(sections[0], '   FINAL REPORT\n ');
  t.equal(sections[2], ' No acute process.\n', 'the heading regex takes one white-space character after the colon');
  t.equal(text.slice(offsets[2]!, offsets[2]! + 3), ' No');
});

t.test('sectionText needs the leading space: a heading at column 0 is no heading', async (t) => {
  t.same(sectionText('R\nIMPRESSION: x\n').names, ['full report']);
});

t.test('sectionText resumes the search after the first newline of a section', async (t) => {
  // "FINDINGS:" directly after "IMPRESSION:" on the same line is skipped, as the official parser skips it.
  const { names } = sectionText('R\n IMPRESSION: \n FINDINGS: Clear.\n');
  t.same(names, ['preamble', 'findings']);
  const same = sectionText('R\n COMPARISON: None. INDICATION: x\n FINDINGS: Clear.\n');
  t.same(same.names, ['preamble', 'comparison', 'findings']);
});

t.test('sectionText drops empty impression and findings sections', async (t) => {
  const { names, sections } = sectionText('R\n FINDINGS:\n \n IMPRESSION:  Clear lungs.\n');
  t.same(names, ['preamble', 'impression']);
  t.equal(sections[1], ' Clear lungs.\n');
});

t.test('sectionText makes a last_paragraph after the first blank line when there is no impression or findings', async (t) => {
  const { names, sections } = sectionText('R\n INDICATION:  Cough.\n \n Lungs clear.\n \n Heart normal.\n');
  t.same(names, ['preamble', 'indication', 'last_paragraph']);
  t.equal(sections[1], ' Cough.');
  t.equal(sections[2], ' Lungs clear.\n \n Heart normal.\n');
});

t.test('sectionText reads CRLF and CR as newlines', async (t) => {
  t.same(sectionText('R\r\n IMPRESSION:  Clear.\r\n').names, ['preamble', 'impression']);
  t.equal(universalNewlines('a\r\nb\rc'), 'a\nb\nc');
});

t.test('normalizeSectionNames maps synonyms, misspellings and view headings as the official parser does', async (t) => {
  t.same(
    normalizeSectionNames(['CONCLUSION', 'FINDINGS AND IMPRESSION', 'IMPRESSON', 'RECOMMENDATION(S)', 'PA AND LATERAL VIEWS OF THE CHEST', 'IMPRESSION AND PLAN', 'CLINICAL HISTORY', 'REASON FOR EXAM', 'SOMETHING ELSE', ' wet read ']),
    ['impression', 'impression', 'impression', 'recommendations', 'findings', 'impression', 'history', 'indication', 'something else', 'wet read'],
  );
});

t.test('pyStrip strips what Python strips, not U+FEFF', async (t) => {
  t.equal(pyStrip(' \t\n\u00a0x y\u2003\n'), 'x y');
  t.equal(pyStrip('\ufeffx'), '\ufeffx');
  t.equal(pyStrip('\u001cx\u0085'), 'x');
});
