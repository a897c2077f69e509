#!/usr/bin/env node
/** `medsyn-clean`: the alias of `medsyn clean`. */
import { runCommand } from './_cli.js';
import { cleanCommand } from './_clean_command.js';

process.exitCode = await runCommand(cleanCommand, process.argv.slice(2));
