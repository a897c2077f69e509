import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function readVersion(): string {
  // Run from source (tests) this file sits beside package.json; compiled, one folder below it.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 3; depth++) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'medsyn' && manifest.version) return manifest.version;
    } catch {
      // not here: look one folder up
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}

/** medsyn's version, from its package.json. */
export const VERSION: string = readVersion();
