#!/usr/bin/env node
/** `medsyn-gen`: the alias of `medsyn gen`. */
import { runCommand } from './_cli.js';
import { genCommand } from './_gen_command.js';

process.exitCode = await runCommand(genCommand, process.argv.slice(2));
