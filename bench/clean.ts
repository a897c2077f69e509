/**
 * `npm run bench:clean [-- --count N] [-- --official DIR]`
 *
 * Generates a MIMIC-size corpus (230k synthetic reports in the official
 * mimic-cxr-reports.zip layout; written once to bench/out/) and measures
 * `medsyn-clean` on it end to end: reports/s and peak RSS. References measured in
 * the same run:
 * - the floor: medsyn's own zip reader alone (read, inflate, decode), one thread, no cleaning;
 * - node-stream-zip reading and decoding every entry (`entryDataSync`), the usual way;
 * - with `--official DIR` (the `txt/` folder of a MIT-LCP/mimic-cxr checkout), the
 *   official `create_section_files.py` on the same reports extracted to a folder.
 * Target (issue 2): ≥ 80,000 reports/s, 5× the official tool's ~16,000 reports/s.
 */
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import StreamZip from 'node-stream-zip';
import { readReports } from '../streams/read_reports.js';
import { mimicEntryName, syntheticReports, writeZip } from './_mimic_corpus.js';
import { measureCommand } from './_measure.js';
import { reportFigures, type Figure } from './_figures.js';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '230000' }, official: { type: 'string' }, out: { type: 'string' } },
});
const count = Number(values.count);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outDir = values.out ?? join(root, 'bench', 'out');
mkdirSync(outDir, { recursive: true });
const zipPath = join(outDir, `mimic-cxr-reports-${count}.zip`);
const cli = join(root, 'dist', 'bin', 'medsyn-clean.js');
// The generated corpus is cached in bench/out/ (git-ignored) and reused by later runs.
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const rate = (n: number, seconds: number): string => `${Math.round(n / seconds).toLocaleString('en-US')} reports/s`;

if (!existsSync(zipPath)) {
  const started = performance.now();
  const encoder = new TextEncoder();
  const entries = function* () {
    for (const report of syntheticReports(count)) yield { name: mimicEntryName(report), data: encoder.encode(report.text) };
  };
  await writeZip(`${zipPath}.tmp`, entries());
  const { renameSync } = await import('node:fs');
  renameSync(`${zipPath}.tmp`, zipPath);
  console.log(`generated ${zipPath} (${count} reports) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
console.log(`machine: ${(await import('node:os')).cpus().length} cores, Node ${process.version}`);

// Reference 1: the floor — medsyn's zip reader alone, in this process, no cleaning.
async function measureFloor(): Promise<number> {
  const started = performance.now();
  let chars = 0;
  for await (const item of readReports(zipPath)) if ('text' in item) chars += item.text.length;
  const seconds = (performance.now() - started) / 1000;
  console.log(`floor    medsyn zip reader only:      ${rate(count, seconds)} (${seconds.toFixed(2)} s, ${mb(chars)} of text)`);
  return seconds;
}

// Reference 2: node-stream-zip, entry by entry.
async function measureNodeStreamZip(): Promise<number> {
  const started = performance.now();
  const zip = new StreamZip({ file: zipPath });
  await new Promise<void>((resolve, reject) => {
    zip.on('ready', () => resolve());
    zip.on('error', reject);
  });
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (const entry of Object.values(zip.entries())) if (!entry.isDirectory) decoder.decode(zip.entryDataSync(entry));
  zip.close();
  const seconds = (performance.now() - started) / 1000;
  console.log(`ref      node-stream-zip read only:   ${rate(count, seconds)} (${seconds.toFixed(2)} s)`);
  return seconds;
}
const floorSeconds = await measureFloor();
const nodeStreamZipSeconds = await measureNodeStreamZip();

// medsyn-clean end to end, output to /dev/null.
const devNull = openSync('/dev/null', 'w');
const run = await measureCommand(process.execPath, [cli, zipPath], { stdout: devNull });
closeSync(devNull);
if (run.code !== 0) {
  console.error(run.stderr);
  process.exit(1);
}
console.log(`medsyn-clean end to end:             ${rate(count, run.seconds)} (${run.seconds.toFixed(2)} s), peak RSS ${mb(run.peakRss)}`);
console.log(`  ${run.stderr.trim()}`);
console.log(`  ratio to the floor: ${(floorSeconds / run.seconds).toFixed(2)} (1.00 = as fast as only reading the zip)`);
console.log(`  ratio to node-stream-zip read only: ${(nodeStreamZipSeconds / run.seconds).toFixed(2)}`);

// Memory stays flat: the same run on a tenth of the corpus.
let tenthRss = 0;
let tenthCount = 0;
{
  const small = Math.max(1000, Math.floor(count / 10));
  const smallZip = join(outDir, `mimic-cxr-reports-${small}.zip`);
  if (!existsSync(smallZip)) {
    const encoder = new TextEncoder();
    await writeZip(smallZip, (function* () {
      for (const report of syntheticReports(small)) yield { name: mimicEntryName(report), data: encoder.encode(report.text) };
    })());
  }
  const devNullSmall = openSync('/dev/null', 'w');
  const tenth = await measureCommand(process.execPath, [cli, smallZip, '--quiet'], { stdout: devNullSmall });
  closeSync(devNullSmall);
  console.log(`  peak RSS on ${small} reports: ${mb(tenth.peakRss)}; on ${count}: ${mb(run.peakRss)} (ratio ${(run.peakRss / tenth.peakRss).toFixed(2)})`);
  tenthRss = tenth.peakRss;
  tenthCount = small;
}

const figures: Figure[] = [
  {
    figure: `medsyn-clean end to end, ${count} reports`,
    value: count / run.seconds,
    unit: 'reports/s',
    reference: { label: 'medsyn zip reader alone', value: count / floorSeconds },
    note: 'target ≥ 80,000 reports/s',
  },
  { figure: 'medsyn-clean end to end', value: count / run.seconds, unit: 'reports/s', reference: { label: 'node-stream-zip read only', value: count / nodeStreamZipSeconds } },
  {
    figure: `medsyn-clean peak RSS, ${count} reports`,
    value: run.peakRss / 2 ** 20,
    unit: 'MiB',
    reference: { label: `on ${tenthCount} reports`, value: tenthRss / 2 ** 20 },
    note: 'flat memory: ratio ≈ 1',
  },
];

// Reference 2: the official Python tool on the same reports, from a folder as it reads them.
if (values.official) {
  const work = mkdtempSync(join(tmpdir(), 'medsyn-bench-'));
  try {
    const extract = await measureCommand('python3', ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])', zipPath, work]);
    if (extract.code !== 0) throw new Error(extract.stderr);
    const stub = join(work, 'stub');
    mkdirSync(stub);
    // The official script shows a tqdm progress bar; an identity stand-in keeps it from needing the package.
    writeFileSync(join(stub, 'tqdm.py'), 'def tqdm(items, *args, **kwargs):\n    return items\n');
    const official = await measureCommand('python3', [join(values.official, 'create_section_files.py'), '--reports_path', join(work, 'files'), '--output_path', join(work, 'out'), '--no_split'], {
      env: { ...process.env, PYTHONPATH: `${stub}:${values.official}` },
    });
    if (official.code !== 0) throw new Error(official.stderr.slice(-2000));
    console.log(`official create_section_files.py: ${rate(count, official.seconds)} (${official.seconds.toFixed(2)} s), peak RSS ${mb(official.peakRss)}`);
    console.log(`  ratio medsyn-clean / official: ${(official.seconds / run.seconds).toFixed(2)}× (target ≥ 5×)`);
    figures.push({ figure: 'medsyn-clean end to end', value: count / run.seconds, unit: 'reports/s', reference: { label: 'official create_section_files.py', value: count / official.seconds }, note: 'target ≥ 5' });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
} else {
  console.log('  (pass --official DIR, the txt/ folder of a MIT-LCP/mimic-cxr checkout, to time the official tool in the same run)');
}
reportFigures('clean', figures);
console.log(`target: ≥ 80,000 reports/s end to end → ${run.seconds > 0 && count / run.seconds >= 80_000 ? 'met' : 'NOT met'}`);
