/**
 * Tar fixtures for the WebDataset tests, made at test time: samples, tars from
 * medsyn's encoder, GNU tar and Python's tarfile in each of their formats, hand
 * made hostile headers, and webdataset's grouping rule run by Python.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { encodeSamples } from '../../streams/tar_encoder.js';
import type { Sample } from '../../streams/sample.js';

/** Deterministic pseudo-random bytes (xorshift), so fixtures are the same on every run. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = state & 0xff;
  }
  return out;
}

/** `count` samples `s0000`... with a png of varied size, a caption and metadata. */
export function makeSamples(count: number, options: { seed?: number; pngBytes?: (index: number) => number; prefix?: string } = {}): Sample[] {
  const seed = options.seed ?? 1;
  return Array.from({ length: count }, (_, index) => {
    const key = `${options.prefix ?? 's'}${String(index).padStart(4, '0')}`;
    const pngBytes = options.pngBytes?.(index) ?? 200 + ((index * 997) % 1800);
    return {
      key,
      parts: {
        png: pseudoRandomBytes(pngBytes, seed * 100_003 + index),
        txt: Buffer.from(`Caption ${index}: no acute cardiopulmonary process.`),
        json: Buffer.from(JSON.stringify({ id: key, seed: index * 31 })),
      },
    };
  });
}

/** The bytes medsyn's encoder writes for `samples`. */
export async function encodeToBuffer(samples: Iterable<Sample>, mtime = 0): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of encodeSamples(samples, { mtime })) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A comparable view of samples: key, then each part's extension and sha256, in sorted order. */
export function digestSamples(samples: Iterable<Pick<Sample, 'key' | 'parts'>>): string[] {
  const out: string[] = [];
  for (const sample of samples) {
    const parts = Object.keys(sample.parts)
      .sort()
      .map((extension) => `${extension}:${createHash('sha256').update(sample.parts[extension]).digest('hex').slice(0, 16)}`);
    out.push(`${sample.key} ${parts.join(' ')}`);
  }
  return out;
}

/** Files for GNU tar and Python: `<key>.<ext>` per part, in sample order. */
export function sampleFiles(samples: Sample[]): { name: string; data: Buffer }[] {
  return samples.flatMap((sample) =>
    Object.keys(sample.parts)
      .sort()
      .map((extension) => ({ name: `${sample.key}.${extension}`, data: Buffer.from(sample.parts[extension]) })),
  );
}

/** A tar made by GNU tar in `format` (ustar, gnu, oldgnu, posix, v7) from files written under `dir`. */
export function gnuTar(dir: string, format: string, files: { name: string; data: Buffer }[], extraArgs: string[] = []): Buffer {
  const root = join(dir, `gnu-${format}`);
  for (const file of files) {
    mkdirSync(dirname(join(root, file.name)), { recursive: true });
    writeFileSync(join(root, file.name), file.data);
  }
  return execFileSync('tar', [`--format=${format}`, '-C', root, '-cf', '-', ...extraArgs, ...files.map((file) => file.name)], {
    maxBuffer: 1 << 30,
  });
}

/** A tar made by Python's tarfile in `format` (USTAR_FORMAT, GNU_FORMAT, PAX_FORMAT). */
export function pythonTar(format: string, files: { name: string; data: Buffer }[]): Buffer {
  const script = `
import base64, io, json, sys, tarfile
files = json.load(sys.stdin)
out = io.BytesIO()
with tarfile.open(fileobj=out, mode='w', format=tarfile.${format}) as tf:
    for f in files:
        data = base64.b64decode(f['data'])
        info = tarfile.TarInfo(f['name'])
        info.size = len(data)
        info.mtime = 1700000000
        tf.addfile(info, io.BytesIO(data))
sys.stdout.buffer.write(out.getvalue())
`;
  const input = JSON.stringify(files.map((file) => ({ name: file.name, data: file.data.toString('base64') })));
  return execFileSync('python3', ['-c', script], { input, maxBuffer: 1 << 30 });
}

/**
 * Reads tar files with Python's tarfile and groups the members as webdataset
 * does (key = path up to the first dot of the base name, extension = the rest,
 * adjacent members with the same key form a sample); returns {@link digestSamples}
 * lines, plus each member's name, mode, uid, gid, mtime and type.
 */
export function pythonWebdatasetView(paths: string[]): { samples: string[]; members: string[] } {
  const script = `
import hashlib, json, sys, tarfile
samples, members = [], []
current = None
for path in sys.argv[1:]:
    with tarfile.open(path) as tf:
        for m in tf:
            members.append('%s %o %d %d %d %s %s' % (m.name, m.mode, m.uid, m.gid, m.mtime, m.type.decode(), m.uname + '/' + m.gname))
            if not m.isreg():
                continue
            d, _, base = m.name.rpartition('/')
            key, dot, ext = base.partition('.')
            key = (d + '/' if d else '') + key
            if current is None or current[0] != key:
                current = [key, {}]
                samples.append(current)
            if ext in current[1]:
                raise ValueError('duplicate part ' + m.name)
            current[1][ext] = hashlib.sha256(tf.extractfile(m).read()).hexdigest()[:16]
print(json.dumps({
    'samples': [key + ' ' + ' '.join(ext + ':' + parts[ext] for ext in sorted(parts)) for key, parts in samples],
    'members': members,
}))
`;
  return JSON.parse(execFileSync('python3', ['-c', script, ...paths], { encoding: 'utf8', maxBuffer: 1 << 30 })) as {
    samples: string[];
    members: string[];
  };
}

/** A hand-made ustar header block with a valid checksum, for hostile tars. */
export function rawHeader(fields: { name: string; size?: number; typeflag?: string; linkname?: string; sizeField?: Buffer; mode?: number; magic?: string }): Buffer {
  const block = Buffer.alloc(512);
  block.write(fields.name, 0, 100, 'utf8');
  block.write(`${(fields.mode ?? 0o644).toString(8).padStart(6, '0')} `, 100, 'latin1');
  block.write('000000 ', 108, 'latin1');
  block.write('000000 ', 116, 'latin1');
  if (fields.sizeField) fields.sizeField.copy(block, 124);
  else block.write(`${(fields.size ?? 0).toString(8).padStart(11, '0')} `, 124, 'latin1');
  block.write('00000000000 ', 136, 'latin1');
  block.write(fields.typeflag ?? '0', 156, 'latin1');
  if (fields.linkname) block.write(fields.linkname, 157, 100, 'utf8');
  block.write(fields.magic ?? 'ustar\u000000', 257, 'latin1');
  let sum = 8 * 32;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += block[i];
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return block;
}

/** One regular-file entry (header, data, padding) with a hand-made header. */
export function rawEntry(name: string, data: Buffer, fields: Partial<Parameters<typeof rawHeader>[0]> = {}): Buffer {
  const pad = (512 - (data.byteLength % 512)) % 512;
  return Buffer.concat([rawHeader({ name, size: data.byteLength, ...fields }), data, Buffer.alloc(pad)]);
}

/** The end-of-archive marker. */
export const END = Buffer.alloc(1024);

/** Feeds `bytes` in pieces of `size` (the last may be shorter), each its own chunk. */
export async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size);
}

/** Collects the messages of process warnings emitted during test `t`. */
export function captureWarnings(t: { teardown(fn: () => void): void }): string[] {
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning.message);
  };
  process.on('warning', onWarning);
  t.teardown(() => {
    process.off('warning', onWarning);
  });
  return warnings;
}
