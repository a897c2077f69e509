#!/usr/bin/env node
/**
 * `medsyn <command> [options]`: the one CLI; `medsyn-<command>` aliases run the same code.
 *
 * @module
 */
import { runCommand } from './_cli.js';
import { COMMANDS } from './_commands.js';
import { VERSION } from '../version.js';

function overview(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length)) + 2;
  return [
    'Usage: medsyn <command> [options]',
    '',
    'Turn chest X-ray radiology reports into a synthetic image-text dataset.',
    '',
    'Commands:',
    ...COMMANDS.map((command) => `  ${command.name.padEnd(width)}${command.summary}`),
    '',
    "Run 'medsyn <command> --help' for a command's options. Each command is also",
    "installed as 'medsyn-<command>', e.g. 'medsyn-clean'.",
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process[name === undefined ? 'stderr' : 'stdout'].write(overview());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    process.stdout.write(`medsyn ${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) {
    process.stderr.write(`medsyn: unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')}) [MEDSYN_ERR_USAGE]\n`);
    return 2;
  }
  return runCommand(command, rest, `medsyn ${name}`);
}

process.exitCode = await main(process.argv.slice(2));
