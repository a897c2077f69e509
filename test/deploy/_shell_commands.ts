/**
 * The medsyn commands a deploy/ shell script runs and the flags it gives them, and the
 * flags a command's `--help` documents: enough to check that a deploy script only calls
 * what the package has.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, bin, sh } from '../bin/_pipes.js';

/** One medsyn command line found in a script. */
export interface MedsynCall {
  /** The command's name, e.g. `medsyn-gen`. */
  command: string;
  /** The flags given always, e.g. `--backend`. */
  flags: string[];
  /** The flags given only when a variable is set: `${MEDSYN_MODEL:+--model "$MEDSYN_MODEL"}` gives `--model`. */
  conditionalFlags: string[];
  /** The simple command as written, for messages. */
  text: string;
}

/**
 * The medsyn commands `script` (bash) runs: by name (`medsyn-gen ...`, `.../medsyn-gen`)
 * or through an array that the script's `find_medsyn VAR medsyn-NAME` filled
 * (`"${VAR[@]}" ...`). Comments are ignored; continued lines are joined; a pipeline or
 * list is split into its simple commands.
 *
 * @example
 * ```ts
 * medsynCalls('medsyn-gen in.zip --size 64 | medsyn-shard out/'); // [{ command: 'medsyn-gen', flags: ['--size'], ... }, { command: 'medsyn-shard', ... }]
 * ```
 */
export function medsynCalls(script: string): MedsynCall[] {
  const lines = script
    .replace(/\\\n/gu, ' ')
    .split('\n')
    .filter((line) => !/^\s*#/u.test(line));
  const arrays = new Map<string, string>();
  for (const line of lines) {
    const found = /^\s*find_medsyn\s+(\w+)\s+(medsyn(?:-[a-z]+)?)\s*$/u.exec(line);
    if (found) arrays.set(found[1]!, found[2]!);
  }
  const calls: MedsynCall[] = [];
  for (const segment of lines.join('\n').split(/\|\||&&|\||;|\$\(|\)|\n/u)) {
    const text = segment.trim().replace(/^exec\s+/u, '');
    const first = text.split(/\s+/u)[0] ?? '';
    const viaArray = /^"?\$\{(\w+)\[@\]\}"?$/u.exec(first);
    const command = viaArray ? arrays.get(viaArray[1]!) : /^(?:\S*\/)?(medsyn(?:-[a-z]+)?)$/u.exec(first.replace(/^["']|["']$/gu, ''))?.[1];
    if (command === undefined) continue;
    const conditionalFlags = [...text.matchAll(/\$\{\w+:\+(--[a-z][\w-]*)/gu)].map((match) => match[1]!);
    const flags = [...text.replace(/\$\{\w+:\+[^}]*\}/gu, '').matchAll(/(?:^|\s)"?(--[a-z][\w-]*)/gu)].map((match) => match[1]!);
    calls.push({ command, flags, conditionalFlags, text });
  }
  return calls;
}

/** The flags (`--name`) in a string of command-line arguments, such as `MEDSYN_GEN_ARGS`. */
export function flagsIn(args: string): string[] {
  return [...args.matchAll(/(?:^|\s)(--[a-z][\w-]*)/gu)].map((match) => match[1]!);
}

/** The names of package.json's `bin`. */
export function packageCommands(): string[] {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  return Object.keys(manifest.bin);
}

const helpCache = new Map<string, Promise<Set<string>>>();

/**
 * The flags that `command --help` (the built CLI in dist/bin) mentions.
 *
 * @throws {Error} when the command does not exit 0
 */
export function documentedFlags(command: string): Promise<Set<string>> {
  let flags = helpCache.get(command);
  if (!flags) {
    flags = sh(`${bin(command)} --help`).then((run) => {
      if (run.code !== 0) throw new Error(`${command} --help exited ${run.code}: ${run.stderr}`);
      return new Set([...run.stdout.toString().matchAll(/(?<![\w-])--[a-z][\w-]*/gu)].map((match) => match[0]));
    });
    helpCache.set(command, flags);
  }
  return flags;
}
