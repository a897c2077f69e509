import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseString } from 'fast-csv';
import { extractSections } from '../../transforms/extract_sections.js';
import { sectionText } from '../../transforms/section_text.js';

const fixtures = new URL('../../fixtures/', import.meta.url).pathname;

/** Every fixture report under fixtures/reports/files, by study id. */
function fixtureReports(): Map<string, string> {
  const reports = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.txt')) reports.set(entry.name.slice(0, -4), readFileSync(path, 'utf8'));
    }
  };
  walk(join(fixtures, 'reports/files'));
  return reports;
}

async function csvRows(path: string, headers: boolean): Promise<string[][]> {
  const rows: string[][] = [];
  await new Promise<void>((resolve, reject) => {
    parseString(readFileSync(path, 'utf8'), { headers: false })
      .on('data', (row: string[]) => rows.push(row))
      .on('error', reject)
      .on('end', () => resolve());
  });
  return headers ? rows.slice(1) : rows;
}

t.test('extractSections chooses the final text the official create_section_files.py writes', async (t) => {
  const reports = fixtureReports();
  const official = await csvRows(join(fixtures, 'official/mimic_cxr_sections.csv'), false);
  t.equal(official.length, reports.size, 'the official output covers every fixture report');
  for (const [study, finalText] of official) {
    const text = reports.get(study!);
    t.ok(text, `${study} is a fixture`);
    t.equal(extractSections(study!, text!).finalText, finalText, study);
  }
});

t.test('extractSections gives the sections the official mimic_cxr_sectioned.csv has', async (t) => {
  const reports = fixtureReports();
  const official = await csvRows(join(fixtures, 'official/mimic_cxr_sectioned.csv'), true);
  t.ok(official.length > 20);
  for (const [study, impression, findings, lastParagraph, comparison] of official) {
    const { sections } = extractSections(study!, reports.get(study!)!);
    // The official CSV writes a missing section and an empty one alike, as an empty cell.
    t.same(
      [sections.impression ?? '', sections.findings ?? '', sections.lastParagraph ?? '', sections.comparison ?? ''],
      [impression, findings, lastParagraph, comparison],
      study,
    );
  }
});

t.test('extractSections applies the official per-study corrections', async (t) => {
  const custom = extractSections('s51491012', 'R\n HISTORY:  Likely pneumonia.\n \n IMPRESSION:  Clear.\n');
  t.equal(custom.sectionUsed, 'custom');
  t.equal(custom.finalText, 'Likely pneumonia.');
  const range = extractSections('s58235663', 'R\n IMPRESSION:  Clear lungs.\n');
  t.equal(range.finalText, '', 'a [0, 0] range marks a report with no findings');
  t.equal(extractSections('s50000000', 'R\n IMPRESSION:  Clear lungs.\n').finalText, 'Clear lungs.');
});

t.test('extractSections prefers the last impression, then findings, last paragraph, comparison', async (t) => {
  t.match(extractSections('s1', 'R\n IMPRESSION: First.\n IMPRESSION: Second.\n'), { finalText: 'Second.', sectionUsed: 'impression' });
  t.match(extractSections('s1', 'R\n FINDINGS: Clear.\n'), { finalText: 'Clear.', sectionUsed: 'findings' });
  t.match(extractSections('s1', 'R\n COMPARISON: None.\n \n Clear lungs.\n'), { finalText: 'Clear lungs.', sectionUsed: 'lastParagraph' });
  t.match(extractSections('s1', 'R\n COMPARISON: Unchanged lungs.\n'), { finalText: 'Unchanged lungs.', sectionUsed: 'comparison' });
  t.match(extractSections('s1', 'R\n INDICATION: Cough.\n'), { finalText: '' });
  t.match(extractSections('s1', 'R\n INDICATION: Cough.\n'), { sections: { indication: 'Cough.' } });
});

t.test('sectionText and extractSections agree with the official parser on 400 generated layouts', async (t) => {
  // fixtures/official/random_cases.json: headings, blank lines, CR/LF, colons without space and
  // the per-study corrections in random combinations, with what the official code returned for each.
  const cases = JSON.parse(readFileSync(join(fixtures, 'official/random_cases.json'), 'utf8')) as Array<{
    study: string;
    text: string;
    names: string[];
    offsets: number[];
    final: string;
  }>;
  t.equal(cases.length, 400);
  let agree = 0;
  for (const expected of cases) {
    const { names, offsets } = sectionText(expected.text);
    const same = JSON.stringify([names, offsets]) === JSON.stringify([expected.names, expected.offsets]) && extractSections(expected.study, expected.text).finalText === expected.final;
    if (same) agree++;
    else t.fail(`differs on ${JSON.stringify(expected.text)}`);
  }
  t.equal(agree, cases.length);
});
