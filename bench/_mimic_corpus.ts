/**
 * A synthetic MIMIC-CXR-like corpus for benchmarks and scale tests: reports in the
 * official layout and wording style, made from a seeded generator (no patient
 * data), and a streaming writer of the official zip layout.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { deflateRawSync, crc32 as zlibCrc32 } from 'node:zlib';

/** One synthetic report with its ids. */
export interface SyntheticReport {
  subjectId: string;
  studyId: string;
  text: string;
}

const FINDINGS = [
  'There is no focal consolidation, pleural effusion or pneumothorax.',
  'The cardiomediastinal silhouette is normal.',
  'Heart size is mildly enlarged.',
  'Small left pleural effusion with adjacent atelectasis.',
  'Moderate right pleural effusion, increased since the prior study from ___.',
  'Mild pulmonary vascular congestion without frank edema.',
  'Patchy opacity at the right lung base may reflect atelectasis versus pneumonia.',
  'Endotracheal tube terminates 4 cm above the carina.',
  'Enteric tube courses below the diaphragm with the tip out of view.',
  'Right internal jugular central venous catheter terminates in the mid SVC.',
  'Tiny left apical pneumothorax.',
  'No acute osseous abnormality.',
  'Old healed fractures of the left fifth and sixth ribs.',
  'A 1.5 cm nodule projects over the right upper lung.',
  'Lungs are clear.',
  'Bibasilar atelectasis.',
  'Mediastinal contours are unchanged.',
  'Left PICC terminates in the lower SVC.',
];
const IMPRESSIONS = [
  'No acute cardiopulmonary process.',
  'Small left pleural effusion.',
  'Moderate pulmonary edema and bilateral pleural effusions, larger on the right.',
  'New left lower lobe consolidation, concerning for pneumonia.',
  'Pneumonia cannot be excluded.',
  'Stable mild cardiomegaly.',
  'Large right pneumothorax.',
  'Support lines and tubes in standard position.',
  'Resolving right lower lobe pneumonia.',
  'Interval placement of a left-sided pacemaker.',
];
const INDICATIONS = ['Cough.', 'Shortness of breath.', '___F with fever  // eval for pneumonia', 'Chest pain.', 'Line placement.'];

/** A small, fast, seeded PRNG (mulberry32). */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Wraps prose at about 76 columns with the leading space MIMIC-CXR lines have. */
function wrap(prose: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of prose.split(' ')) {
    if (line.length + word.length + 1 > 76) {
      lines.push(` ${line}`);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(` ${line}`);
  return lines.join('\n');
}

/**
 * `count` reports in MIMIC-CXR style: most with FINDINGS and IMPRESSION, some
 * with only findings, some with numbered impressions, some with a notification
 * section; ids unique; deterministic for a seed. About 1 KB a report, as MIMIC-CXR reports are.
 */
export function* syntheticReports(count: number, seed = 1): Generator<SyntheticReport> {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  for (let i = 0; i < count; i++) {
    const subject = 10_000_000 + Math.floor(i / 4);
    const subjectId = `p${subject}`;
    const studyId = `s${50_000_000 + i}`;
    const findings = Array.from({ length: 3 + Math.floor(random() * 5) }, () => pick(FINDINGS)).join('  ');
    const parts = [
      '                                 FINAL REPORT',
      ' EXAMINATION:  CHEST (PA AND LAT)',
      ' ',
      ` INDICATION:  ${pick(INDICATIONS)}`,
      ' ',
      ' COMPARISON:  ___',
      ' ',
      ' FINDINGS:',
      ' ',
      wrap(findings),
    ];
    const layout = random();
    if (layout < 0.85) {
      parts.push(' ', ' IMPRESSION:', ' ');
      if (layout < 0.15) parts.push(` 1. ${pick(IMPRESSIONS)}`, ` 2. ${pick(IMPRESSIONS)}`);
      else parts.push(wrap(pick(IMPRESSIONS)));
    }
    if (layout > 0.8) parts.push(' ', wrap('NOTIFICATION:  Dr. ___ was paged at 10:42 a.m. on ___ to discuss these findings.'));
    yield { subjectId, studyId, text: `${parts.join('\n')}\n` };
  }
}

/** The zip path of a report in the official archive. */
export function mimicEntryName(report: SyntheticReport): string {
  return `files/${report.subjectId.slice(0, 3)}/${report.subjectId}/${report.studyId}.txt`;
}

/**
 * Writes entries to a zip file as they come (deflated, with a central directory at
 * the end), so a corpus of any size is written with flat memory.
 */
export async function writeZip(path: string, entries: Iterable<{ name: string; data: Uint8Array }>): Promise<number> {
  const out = createWriteStream(path);
  const central: Buffer[] = [];
  let offset = 0;
  let count = 0;
  const write = async (chunk: Buffer): Promise<void> => {
    offset += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  };
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const compressed = deflateRawSync(data);
    const crc = zlibCrc32(data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(20, 6);
    header.writeUInt16LE(0x0800, 8);
    header.writeUInt16LE(8, 10);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(compressed.length, 20);
    header.writeUInt32LE(data.length, 24);
    header.writeUInt16LE(nameBytes.length, 28);
    header.writeUInt32LE(offset, 42);
    central.push(header, nameBytes);
    await write(Buffer.concat([local, nameBytes, compressed]));
    count++;
  }
  const centralStart = offset;
  for (let i = 0; i < central.length; i += 2048) await write(Buffer.concat(central.slice(i, i + 2048)));
  const centralSize = offset - centralStart;
  if (count > 0xffff) {
    // More entries than the classic end record can count: a ZIP64 end record and its locator come first.
    const zip64 = Buffer.alloc(56 + 20);
    zip64.writeUInt32LE(0x06064b50, 0);
    zip64.writeBigUInt64LE(44n, 4);
    zip64.writeUInt16LE(45, 12);
    zip64.writeUInt16LE(45, 14);
    zip64.writeBigUInt64LE(BigInt(count), 24);
    zip64.writeBigUInt64LE(BigInt(count), 32);
    zip64.writeBigUInt64LE(BigInt(centralSize), 40);
    zip64.writeBigUInt64LE(BigInt(centralStart), 48);
    zip64.writeUInt32LE(0x07064b50, 56);
    zip64.writeBigUInt64LE(BigInt(offset), 64);
    zip64.writeUInt32LE(1, 72);
    await write(zip64);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Math.min(count, 0xffff), 8);
  end.writeUInt16LE(Math.min(count, 0xffff), 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(centralStart, 16);
  await write(end);
  out.end();
  await once(out, 'close');
  return count;
}
